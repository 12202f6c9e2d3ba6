"""Layout discovery on small fake folders shaped like each dataset, UCF11 names, downloads (offline)."""
from __future__ import annotations

import json
import sys
import types
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from utils import paths
from utils.data import datasets
from utils.errors import DatasetError, DownloadError


def touch(path: Path, content: bytes = b"not decoded by discovery") -> Path:
    """Create a file (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def relative_paths(root: Path, records: list[datasets.ClipRecord]) -> list[str]:
    """Record paths relative to root, as posix strings."""
    return [r.path.relative_to(root).as_posix() for r in records]


def make_synthetic_folder(root: Path) -> Path:
    """A minimal synthetic-layout folder: dataset.json, manifest.csv, clips and keypoint files."""
    (root).mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps({"kind": "synthetic"}))
    rows = ["path,label,signer"]
    for sign in ("wave", "circle"):
        for signer in ("s01", "s02"):
            touch(root / sign / f"{signer}_000.mp4")
            touch(root / sign / f"{signer}_000.keypoints.npz")
            rows.append(f"{sign}/{signer}_000.mp4,{sign},{signer}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_class_folders_with_unicode_names_and_hidden_files_ignored(tmp_path: Path) -> None:
    touch(tmp_path / "привет" / "a.mp4")
    touch(tmp_path / "你好" / "b.avi")
    touch(tmp_path / "hello" / "c.MOV")
    touch(tmp_path / "hello" / "d.webm")
    touch(tmp_path / "hello" / ".e.mp4")  # hidden file
    touch(tmp_path / ".cache" / "f.mp4")  # hidden folder
    touch(tmp_path / "hello" / "notes.txt")  # not a video
    kind, records = datasets.discover(tmp_path)
    assert kind == "video_folder"
    assert relative_paths(tmp_path, records) == ["hello/c.MOV", "hello/d.webm", "привет/a.mp4", "你好/b.avi"]
    assert datasets.class_names(records) == sorted(["hello", "привет", "你好"])
    assert all(r.split == "" and r.group == "" and r.keypoints_path is None for r in records)


def test_class_names_are_unicode_normalised(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "café")  # how macOS file systems store it
    touch(tmp_path / decomposed / "a.mp4")
    touch(tmp_path / "tea" / "b.mp4")
    _, records = datasets.discover(tmp_path)
    assert "café" in datasets.class_names(records)  # typed (NFC) form


def test_flat_numbered_files_in_split_folders_are_the_kaggle_asl_layout(tmp_path: Path) -> None:
    data = tmp_path / "dataset" / "data"
    for name in ("train/0001_hello.mp4", "train/0002_thanks.mp4", "train/0010_thank_you.mp4",
                 "valid/0003_hello.mp4", "test/0004_thanks.mp4"):
        touch(data / name)
    kind, records = datasets.discover(tmp_path)
    assert kind == "asl"
    by_name = {r.path.name: r for r in records}
    assert by_name["0001_hello.mp4"].label == "hello"
    assert by_name["0010_thank_you.mp4"].label == "thank_you"
    assert [r.split for r in records] == ["test", "train", "train", "train", "val"]
    assert relative_paths(tmp_path, records)[1:3] == ["dataset/data/train/0001_hello.mp4",
                                                      "dataset/data/train/0002_thanks.mp4"]


def test_class_folders_inside_train_val_test_folders(tmp_path: Path) -> None:
    touch(tmp_path / "train" / "yes" / "a.mp4")
    touch(tmp_path / "validation" / "yes" / "b.mp4")
    touch(tmp_path / "Test" / "no" / "c.mp4")
    kind, records = datasets.discover(tmp_path)
    assert kind == "video_folder"
    assert {(r.label, r.split) for r in records} == {("yes", "train"), ("yes", "val"), ("no", "test")}


def test_ucf11_nesting_groups_and_annotation_folders(tmp_path: Path) -> None:
    root = tmp_path / "UCF11_updated_mpg"
    for group in ("01", "02"):
        for clip in ("01", "02"):
            touch(root / "basketball" / f"v_shooting_{group}" / f"v_shooting_{group}_{clip}.mpg")
    touch(root / "walking" / "v_walk_dog_03" / "v_walk_dog_03_01.mpg")
    touch(root / "basketball" / "Annotation" / "v_shooting_01_01.xgtf")
    touch(root / "basketball" / "Annotation" / "v_shooting_09_01.mpg")  # must be ignored
    kind, records = datasets.discover(tmp_path)
    assert kind == "ucf11"
    assert len(records) == 5
    assert datasets.class_names(records) == ["shooting", "walk_dog"]
    assert [r.group for r in records] == ["shooting_01", "shooting_01", "shooting_02", "shooting_02",
                                          "walk_dog_03"]


@pytest.mark.parametrize("name, expected", [
    ("v_shooting_01_01.mpg", ("shooting", "shooting_01")),
    ("v_walk_dog_25_07.mpg", ("walk_dog", "walk_dog_25")),
    ("v_ApplyEyeMakeup_g08_c01.avi", ("ApplyEyeMakeup", "ApplyEyeMakeup_08")),
    ("v_golf_10_03", ("golf", "golf_10")),
])
def test_parse_ucf11_name(name: str, expected: tuple[str, str]) -> None:
    assert datasets.parse_ucf11_name(name) == expected


@pytest.mark.parametrize("name", ["shooting_01_01.mpg", "v_shooting_01.mpg", "0001_hello.mp4"])
def test_parse_ucf11_name_rejects_other_names(name: str) -> None:
    with pytest.raises(ValueError, match="v_<action>_<group>_<clip>"):
        datasets.parse_ucf11_name(name)


def test_mp_data_one_record_per_sequence_in_numeric_order(tmp_path: Path) -> None:
    for sign in ("hello", "thanks"):
        for sequence in (0, 2, 10):
            folder = tmp_path / "MP_Data" / sign / str(sequence)
            folder.mkdir(parents=True)
            for frame in range(3):
                np.save(folder / f"{frame}.npy", np.zeros(1662))
    kind, records = datasets.discover(tmp_path)
    assert kind == "mp_data"
    assert relative_paths(tmp_path, records) == [f"MP_Data/{sign}/{seq}" for sign in ("hello", "thanks")
                                                 for seq in (0, 2, 10)]
    assert datasets.class_names(records) == ["hello", "thanks"]


def test_synthetic_layout_uses_manifest_signers_and_keypoint_files(tmp_path: Path) -> None:
    root = make_synthetic_folder(tmp_path / "synthetic")
    kind, records = datasets.discover(root)
    assert kind == "synthetic"
    assert [(r.label, r.group) for r in records] == [("circle", "s01"), ("circle", "s02"), ("wave", "s01"),
                                                     ("wave", "s02")]
    assert all(r.keypoints_path == r.path.with_name(r.path.stem + ".keypoints.npz") for r in records)
    assert datasets.discover(tmp_path)[0] == "synthetic"  # found one folder down too


def test_empty_or_missing_folder_raises_dataset_error_naming_it(tmp_path: Path) -> None:
    touch(tmp_path / "readme.txt")
    with pytest.raises(DatasetError, match="found no clips") as error:
        datasets.discover(tmp_path)
    assert str(tmp_path) in str(error.value) and "MP_Data" in str(error.value)
    with pytest.raises(DatasetError, match="no such folder"):
        datasets.discover(tmp_path / "absent")


def test_discovery_is_deterministic(tmp_path: Path) -> None:
    for index in (3, 1, 2):
        touch(tmp_path / "b" / f"clip{index}.mp4")
        touch(tmp_path / "a" / f"clip{index}.mp4")
    first, second = datasets.discover(tmp_path)[1], datasets.discover(tmp_path)[1]
    assert first == second
    assert relative_paths(tmp_path, first) == [f"{c}/clip{i}.mp4" for c in "ab" for i in (1, 2, 3)]


# ----------------------------------------------------------------------------- downloads
def fail_offline(handle: str, dest: Path) -> Path:
    """Stand-in for a download with no network."""
    raise ConnectionError("Failed to resolve 'www.kaggle.com'")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Both download routes fail as they do offline; data/raw points into tmp_path."""
    monkeypatch.setattr(datasets, "_download_with_kagglehub", fail_offline)
    monkeypatch.setattr(datasets, "_download_with_kaggle_client", fail_offline)
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path / "data" / "raw")
    return tmp_path


def test_offline_download_gives_one_clear_message(offline: Path) -> None:
    with pytest.raises(DownloadError) as error:
        datasets.download("asl")
    message = str(error.value)
    for needed in ("kagglehub", "kaggle client", "kaggle.json", "KAGGLE_USERNAME", "data/raw/asl",
                   "https://www.kaggle.com/datasets/eashankaushik/americansignlanguageactionrekognition"):
        assert needed in message
    assert not (offline / "data" / "raw" / "asl").exists()  # no empty folder left behind


def test_offline_download_of_ucf11_names_the_official_archive(offline: Path) -> None:
    with pytest.raises(DownloadError, match="UCF11_updated_mpg.rar"):
        datasets.download("UCF11")


def test_download_command_prints_the_message_without_traceback(offline: Path, capsys) -> None:
    pytest.importorskip("utils.data.synthetic", reason="the data command imports utils.data.synthetic")
    from utils import cli

    assert cli.main(["data", "asl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not download") and "Traceback" not in err and "kaggle.json" in err


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(DatasetError, match="known: asl, ucf11"):
        datasets.download("imagenet")


def test_download_reuses_a_folder_that_already_has_clips(offline: Path) -> None:
    dest = offline / "mine"
    touch(dest / "hello" / "a.mp4")
    assert datasets.download("asl", dest) == dest  # no network needed


def test_kaggle_client_exit_at_authentication_becomes_an_exception(monkeypatch, tmp_path: Path) -> None:
    class ExitingApi:
        def authenticate(self) -> None:
            print("Authentication required ...")
            sys.exit(1)

    fake = types.ModuleType("kaggle.api.kaggle_api_extended")
    fake.KaggleApi = ExitingApi
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", fake)
    with pytest.raises(RuntimeError, match="no Kaggle credentials"):
        datasets._download_with_kaggle_client("owner/name", tmp_path)


def test_resolve_dataset(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path / "raw")
    monkeypatch.setattr(paths, "SYNTHETIC_DIR", make_synthetic_folder(tmp_path / "synthetic"))
    assert datasets.resolve_dataset("synthetic") == tmp_path / "synthetic"
    assert datasets.resolve_dataset(str(tmp_path)) == tmp_path
    with pytest.raises(DownloadError, match="python -m utils data asl"):
        datasets.resolve_dataset("asl")
    touch(tmp_path / "raw" / "ucf11" / "golf" / "v_golf_01" / "v_golf_01_01.mpg")
    assert datasets.resolve_dataset("ucf11") == tmp_path / "raw" / "ucf11"
    with pytest.raises(DatasetError, match="neither a dataset name"):
        datasets.resolve_dataset(str(tmp_path / "nowhere"))


# ----------------------------------------------------------------------------- manifest.csv
def make_sequence(folder: Path, num_frames: int = 3) -> Path:
    """An MP_Data sequence folder of numbered .npy frames."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(num_frames):
        np.save(folder / f"{frame}.npy", np.zeros(1662))
    return folder


def write_manifest(root: Path, lines: list[str]) -> Path:
    """root/manifest.csv with these lines (header first)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "manifest.csv"


def test_manifest_of_mp_data_sequences_gives_signers_as_groups(tmp_path: Path) -> None:
    for signer in ("ann", "bob"):
        for sign in ("hello", "thanks"):
            make_sequence(tmp_path / signer / "MP_Data" / sign / "0")
    write_manifest(tmp_path, ["path,label,signer"] + [f"{s}/MP_Data/{g}/0,{g},{s}" for s in ("bob", "ann")
                                                      for g in ("thanks", "hello")])
    kind, records = datasets.discover(tmp_path)
    assert kind == "manifest"  # not the folder-name based mp_data layout: the manifest knows the signers
    assert [(r.label, r.group, r.source) for r in records] == [
        ("thanks", "bob", "mp_data"), ("hello", "bob", "mp_data"), ("thanks", "ann", "mp_data"),
        ("hello", "ann", "mp_data")]  # in the manifest's order
    assert records[0].path == tmp_path / "bob" / "MP_Data" / "thanks" / "0"


def test_manifest_of_videos_with_group_and_split_columns(tmp_path: Path) -> None:
    touch(tmp_path / "clips" / "a.mp4")
    touch(tmp_path / "clips" / "b.MOV")
    write_manifest(tmp_path / "set", ["label,path,group,split", "hello,../clips/a.mp4,g1,train",
                                      "café,..\\clips\\b.MOV,g2,Validation"])  # Windows separators work too
    kind, records = datasets.discover(tmp_path / "set")
    assert kind == "manifest"
    assert [(r.label, r.group, r.split, r.source) for r in records] == [("hello", "g1", "train", "video"),
                                                                         ("café", "g2", "val", "video")]


def test_mixed_manifest_one_folder_down(tmp_path: Path) -> None:
    touch(tmp_path / "data" / "videos" / "x.mp4")
    make_sequence(tmp_path / "data" / "seqs" / "7")
    write_manifest(tmp_path / "data", ["path,label,signer", "videos/x.mp4,yes,s1", "seqs/7,no,s2"])
    kind, records = datasets.discover(tmp_path)
    assert kind == "manifest" and [r.source for r in records] == ["video", "mp_data"]


def test_synthetic_manifest_is_checked_too(tmp_path: Path) -> None:
    root = make_synthetic_folder(tmp_path / "synthetic")
    (root / "wave" / "s02_000.mp4").unlink()
    with pytest.raises(DatasetError, match=r"manifest.csv: 1 bad row.*row 2 \(line 3\).*does not exist.*"
                                           r"python -m utils data synthetic"):
        datasets.discover(root)


@pytest.mark.parametrize("lines, message", [
    (["file,label", "a.mp4,hello"], r"needs the columns path, label.*found file, label"),
    (["path,label,signer", "a.mp4,,s1"], r"row 1 \(line 2\): the label is empty"),
    (["path,label,signer", "a.mp4,hello,s1", "gone.mp4,hello,s1"],
     r"row 2 \(line 3\): .*gone.mp4 does not exist"),
    (["path,label,signer", "empty_seq,hello,s1"],
     r"row 1 \(line 2\): the sequence folder .*empty_seq holds no"),
    (["path,label,signer", "notes.txt,hello,s1"], r"row 1 \(line 2\): notes.txt is neither a video"),
    (["path,label,split", "a.mp4,hello,holdout"],
     r"row 1 \(line 2\): split 'holdout' is not one of train, val, test"),
    (["path,label", "a.mp4,hello", "a.mp4,hello"], r"row 2 \(line 3\): a.mp4 is listed twice \(also row 1\)"),
    (["path,label", ",hello"], r"row 1 \(line 2\): the path is empty"),
    (["path,label"], r"lists no clips"),
])
def test_bad_manifests_raise_one_error_naming_the_file_and_row(tmp_path: Path, lines: list[str],
                                                               message: str) -> None:
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "notes.txt")
    (tmp_path / "empty_seq").mkdir()
    touch(tmp_path / "empty_seq" / "readme.md")
    manifest = write_manifest(tmp_path, lines)
    with pytest.raises(DatasetError, match=message) as error:
        datasets.discover(tmp_path)
    assert str(error.value).startswith(str(manifest))


def test_all_bad_rows_are_listed_in_one_error(tmp_path: Path) -> None:
    write_manifest(tmp_path, ["path,label,signer"] + [f"gone{i}.mp4,hello,s1" for i in range(12)])
    with pytest.raises(DatasetError, match=r"12 bad row\(s\): row 1 .*row 10 .*and 2 more\. Fix those rows"):
        datasets.discover(tmp_path)
