"""Finding the clips of a dataset folder (class, group, split of each), and getting the real datasets.

Layouts recognised by :func:`discover` (the folder may wrap them in extra folders, e.g. ``data/``):

``synthetic``     ``dataset.json`` (kind "synthetic") + ``manifest.csv`` + ``<sign>/<signer>_<nnn>.mp4``
                  with ``<signer>_<nnn>.keypoints.npz`` beside each clip; group = signer.
``manifest``      ``manifest.csv`` with columns ``path,label`` and optionally ``signer`` (or ``group``) and
                  ``split``; each ``path`` (relative to the manifest's folder) is a video file or an MP_Data
                  sequence folder of numbered ``.npy`` frames; both kinds may be mixed.
``mp_data``       ``<class>/<sequence>/<frame>.npy`` (the MediaPipe+LSTM tutorials' ``MP_Data``).
``ucf11``         videos named ``v_<action>_<gg>_<cc>.mpg`` (UCF11 / UCF YouTube Action; also UCF50/101's
                  ``v_<Action>_g<gg>_c<cc>.avi``); class = action, group = ``<action>_<gg>``.
``asl``           flat ``NNNN_<label>.mp4`` files (the Kaggle ASL dataset), class from the name.
``video_folder``  ``<class>/*.mp4`` (any video extension), class = the folder holding the clip.

``train/``, ``val/`` (``valid/``, ``validation/``) and ``test/`` folders set each clip's split.
Hidden files and folders, and UCF11's ``Annotation`` folders, are ignored.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from utils import paths
from utils.errors import DatasetError, DownloadError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mpg", ".mpeg", ".mkv", ".webm", ".m4v"})
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
IGNORED_FOLDERS = frozenset({"annotation", "annotations", "__macosx"})
LAYOUTS = ("synthetic", "manifest", "mp_data", "ucf11", "asl", "video_folder")
MANIFEST_NAME = "manifest.csv"
CLIP_SOURCES = ("video", "mp_data")  # a video file, or an MP_Data folder of numbered .npy keypoint frames

KAGGLE_DATASETS = {
    "asl": {
        "handle": "eashankaushik/americansignlanguageactionrekognition",
        "manual": "download the archive from the Kaggle page and unpack it",
    },
    "ucf11": {
        # A Kaggle mirror that holds the official UCF11_updated_mpg folder.
        "handle": "pypiahmad/realistic-action-recognition-ucf50-dataset",
        "manual": "download https://www.crcv.ucf.edu/data/UCF11_updated_mpg.rar (1 GB, official UCF "
                  "source) and unpack it with `unrar x` or 7-Zip",
    },
}

_UCF_NAME = re.compile(r"^v_(?P<action>.+?)_g?(?P<group>\d+)_c?(?P<clip>\d+)$", re.IGNORECASE)
_NUMBERED_NAME = re.compile(r"^\d+_(?P<label>.+)$")
_SYNTHETIC_NAME = re.compile(r"^(?P<signer>.+)_(?P<index>\d+)$")


@dataclass
class ClipRecord:
    """One clip of a dataset: where it is, its class, its group (signer, UCF group) and given split."""

    path: Path
    label: str
    group: str = ""
    split: str = ""
    keypoints_path: Path | None = None
    # one of CLIP_SOURCES: "video" (a file) or "mp_data" (a folder of numbered .npy frames)
    source: str = "video"


# ----------------------------------------------------------------------------- walking the folder
def _nfc(text: str) -> str:
    """Unicode NFC form, so a class name read on macOS (NFD) equals the same name typed elsewhere."""
    return unicodedata.normalize("NFC", text)


def natural_key(relative: Path) -> list:
    """Sort key that puts 'seq/2' before 'seq/10' (numbers compared as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", relative.as_posix()) if part]


def _is_ignored(relative: Path) -> bool:
    """True for hidden files/folders and annotation folders anywhere in a path relative to the root."""
    return any(part.startswith(".") or part.lower() in IGNORED_FOLDERS for part in relative.parts)


def _walk_files(root: Path, suffixes: frozenset[str]) -> list[Path]:
    """All non-hidden files under root whose extension is in suffixes, sorted."""
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        relative_folder = Path(folder).relative_to(root)
        subfolders[:] = sorted(d for d in subfolders if not _is_ignored(relative_folder / d))
        found += [Path(folder) / f for f in files
                  if Path(f).suffix.lower() in suffixes and not f.startswith(".")]
    return sorted(found, key=lambda p: natural_key(p.relative_to(root)))


def _split_of(relative_folder: Path) -> str:
    """'train' / 'val' / 'test' when a folder of the path (relative to the root) is a split folder, else
    ''."""
    for part in reversed(relative_folder.parts):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return ""


# ----------------------------------------------------------------------------- the layouts
def parse_ucf11_name(name: str) -> tuple[str, str]:
    """Action and group of a UCF11-style clip name: 'v_walk_dog_03_02.mpg' -> ('walk_dog', 'walk_dog_03')."""
    stem = Path(name).name
    stem = stem[: -len(Path(stem).suffix)] if Path(stem).suffix.lower() in VIDEO_EXTENSIONS else stem
    match = _UCF_NAME.match(stem)
    if not match:
        raise ValueError(f"{name!r} is not a UCF11 clip name; expected v_<action>_<group>_<clip>, "
                         "e.g. v_shooting_01_01.mpg")
    action = _nfc(match["action"])
    return action, f"{action}_{match['group']}"


def _is_ucf_name(path: Path) -> bool:
    """True when the file is named like a UCF11 clip."""
    try:
        parse_ucf11_name(path.name)
    except ValueError:
        return False
    return True


def _numbered_frames(folder: Path) -> list[Path]:
    """The numbered .npy frames (0.npy, 1.npy, ...) of an MP_Data sequence folder, unsorted."""
    return [
        f for f in folder.iterdir() if f.suffix == ".npy" and f.stem.isdigit() and not f.name.startswith(".")
    ]


def _manifest_row_problem(path: Path, label: str, split: str) -> str | None:
    """What is wrong with one manifest row (None when it is fine)."""
    if not label:
        return "the label is empty"
    if split and split.lower() not in SPLIT_FOLDERS:
        return f"split {split!r} is not one of train, val, test (or empty)"
    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir():
        return None if _numbered_frames(path) else f"the sequence folder {path} holds no numbered .npy frames"
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return f"{path.name} is neither a video ({', '.join(sorted(VIDEO_EXTENSIONS))}) nor a sequence folder"
    return None


def read_manifest(manifest: str | Path, fix: str = "") -> list[ClipRecord]:
    """The clips listed in a manifest.csv (path,label[,signer|group][,split]); DatasetError naming bad
    rows."""
    manifest = Path(manifest)
    fix = fix or "Fix those rows (paths are relative to the manifest's folder) or remove them."
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or ()]
        if not {"path", "label"} <= set(columns):
            raise DatasetError(f"{manifest}: needs the columns path, label (optionally signer or group, and "
                               f"split); found {', '.join(columns) or 'none'}. Write a header line such as "
                               "`path,label,signer`.")
        group_column = "signer" if "signer" in columns else "group" if "group" in columns else None
        records, problems, seen = [], [], {}
        for row_number, row in enumerate(reader, start=1):
            row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if not row.get("path"):
                problems.append(f"row {row_number} (line {reader.line_num}): the path is empty")
                continue
            path = manifest.parent / row["path"].replace("\\", "/")  # a manifest written on Windows
            split = row.get("split", "")
            problem = _manifest_row_problem(path, row["label"], split)
            if problem is None and path.resolve() in seen:
                problem = f"{row['path']} is listed twice (also row {seen[path.resolve()]})"
            seen.setdefault(path.resolve(), row_number)
            if problem:
                problems.append(f"row {row_number} (line {reader.line_num}): {problem}")
                continue
            records.append(ClipRecord(path=path, label=_nfc(row["label"]),
                                      group=row.get(group_column, "") if group_column else "",
                                      split=SPLIT_FOLDERS.get(split.lower(), ""),
                                      source="mp_data" if path.is_dir() else "video"))
    if problems:
        listed = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DatasetError(f"{manifest}: {len(problems)} bad row(s): {listed}. {fix}")
    if not records:
        raise DatasetError(f"{manifest}: lists no clips. Add one row per clip: path,label[,signer].")
    return records


def _discover_synthetic(root: Path) -> list[ClipRecord]:
    """Records of a synthetic dataset from its manifest.csv (or its file names when the manifest is
    missing)."""
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        records = read_manifest(manifest, fix="Regenerate the dataset with `python -m utils data synthetic`.")
    else:
        records = []
        for clip in _walk_files(root, VIDEO_EXTENSIONS):
            match = _SYNTHETIC_NAME.match(clip.stem)
            records.append(ClipRecord(path=clip, label=_nfc(clip.parent.name),
                                      group=match["signer"] if match else ""))
    for record in records:
        record.keypoints_path = record.path.with_name(record.path.stem + ".keypoints.npz")
    return sorted(records, key=lambda r: natural_key(r.path.relative_to(root)))


def _manifest_root(root: Path) -> Path | None:
    """The folder holding manifest.csv: root itself, or its only subfolder that has one."""
    if (root / MANIFEST_NAME).is_file():
        return root
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_NAME).is_file()
    ]
    return found[0] if len(found) == 1 else None


def _discover_mp_data(root: Path) -> list[ClipRecord]:
    """One record per <class>/<sequence>/ folder holding numbered .npy frames."""
    sequences = sorted({npy.parent for npy in _walk_files(root, frozenset({".npy"})) if npy.stem.isdigit()},
                       key=lambda p: natural_key(p.relative_to(root)))
    return [ClipRecord(path=seq, label=_nfc(seq.parent.name), split=_split_of(seq.relative_to(root)),
                       source="mp_data") for seq in sequences if seq.parent != root]


def _discover_ucf11(videos: list[Path], root: Path) -> list[ClipRecord]:
    """Records of UCF11-named clips: class = action from the name, group = <action>_<gg>."""
    records = []
    for clip in videos:
        action, group = parse_ucf11_name(clip.name)
        records.append(ClipRecord(path=clip, label=action, group=group,
                                  split=_split_of(clip.parent.relative_to(root))))
    return records


def _discover_video_folder(videos: list[Path], root: Path) -> tuple[str, list[ClipRecord]]:
    """Records of class-folder videos, or flat NNNN_label files (the Kaggle ASL layout)."""
    records, from_names = [], 0
    for clip in videos:
        relative = clip.relative_to(root)
        folder = clip.parent.name
        numbered = _NUMBERED_NAME.match(clip.stem)
        if clip.parent == root or folder.lower() in SPLIT_FOLDERS:
            if not numbered:
                continue  # a loose file with no class folder and no label in its name
            label, from_names = numbered["label"], from_names + 1
        else:
            label = folder
        records.append(ClipRecord(path=clip, label=_nfc(label), split=_split_of(relative.parent)))
    kind = "asl" if records and from_names == len(records) else "video_folder"
    return kind, records


def _synthetic_root(root: Path) -> Path | None:
    """The folder holding a dataset.json of kind 'synthetic' (root itself or one level down), if any."""
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        info = candidate / "dataset.json"
        if info.is_file():
            try:
                if json.loads(info.read_text(encoding="utf-8")).get("kind") == "synthetic":
                    return candidate
            except (json.JSONDecodeError, AttributeError):
                continue
    return None


def discover(root: str | Path) -> tuple[str, list[ClipRecord]]:
    """Detect the layout of a dataset folder; return its kind and one record per clip (sorted by path, or in a
    manifest's order)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is a file, not a dataset folder" if root.exists() else "no such folder"
        raise DatasetError(f"{root}: {what}. Pass a dataset folder, or 'synthetic', 'asl' or 'ucf11'.")
    synthetic_root = _synthetic_root(root)
    if synthetic_root is not None:
        records = _discover_synthetic(synthetic_root)
        if records:
            return "synthetic", records
    manifest_root = _manifest_root(root)
    if manifest_root is not None:
        return "manifest", read_manifest(manifest_root / MANIFEST_NAME)
    videos = _walk_files(root, VIDEO_EXTENSIONS)
    ucf_videos = [v for v in videos if _is_ucf_name(v)]
    if ucf_videos and len(ucf_videos) * 2 >= len(videos):
        return "ucf11", _discover_ucf11(ucf_videos, root)
    if videos:
        kind, records = _discover_video_folder(videos, root)
        if records:
            return kind, records
    records = _discover_mp_data(root)
    if records:
        return "mp_data", records
    raise DatasetError(
        f"{root}: found no clips. Expected one of these layouts: <class>/<clip>.mp4 (any of "
        f"{', '.join(sorted(VIDEO_EXTENSIONS))}), optionally inside train/ val/ test/ folders; flat "
        "NNNN_<label>.mp4 files (Kaggle ASL); UCF11's <action>/v_<action>_<gg>/v_<action>_<gg>_<cc>.mpg; "
        "MP_Data's <class>/<sequence>/<frame>.npy; a manifest.csv with columns path,label[,signer][,split]; "
        "or a synthetic dataset (dataset.json + manifest.csv).")


def class_names(records: list[ClipRecord]) -> list[str]:
    """Sorted distinct class names of some records."""
    return sorted({r.label for r in records})


# ----------------------------------------------------------------------------- downloads
def _kaggle_page(name: str) -> str:
    """The Kaggle web page of a known dataset."""
    return f"https://www.kaggle.com/datasets/{KAGGLE_DATASETS[name]['handle']}"


def _check_known(name: str) -> str:
    """The lower-cased name of a downloadable dataset, or DatasetError listing the known ones."""
    key = str(name).strip().lower()
    if key not in KAGGLE_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(KAGGLE_DATASETS))} "
                           "(or 'synthetic', generated offline, or a path to your own folder)")
    return key


def _has_clips(folder: Path) -> bool:
    """True when discover() finds clips in folder."""
    try:
        return bool(folder.is_dir() and discover(folder)[1])
    except DatasetError:
        return False


def _download_with_kagglehub(handle: str, dest: Path) -> Path:
    """Download a public Kaggle dataset with kagglehub (anonymous) straight into dest."""
    import kagglehub

    return Path(kagglehub.dataset_download(handle, output_dir=str(dest)))


def _download_with_kaggle_client(handle: str, dest: Path) -> Path:
    """Download and unzip a Kaggle dataset into dest with the kaggle client (needs credentials)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:  # the package authenticates (and may print or exit) at import
            from kaggle.api.kaggle_api_extended import KaggleApi
        except SystemExit as error:
            raise RuntimeError("the kaggle package could not start") from error
        api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit as error:
            raise RuntimeError("no Kaggle credentials found") from error
    api.dataset_download_files(handle, path=str(dest), unzip=True, quiet=True)
    return dest


def _download_error(name: str, dest: Path, failures: list[str]) -> DownloadError:
    """One clear message: what failed, where credentials go, the Kaggle page and the manual route."""
    return DownloadError(
        f"could not download the {name!r} dataset ({'; '.join(failures)}). "
        f"Check the internet connection. For the kaggle client, put your API token in ~/.kaggle/kaggle.json "
        f"(from https://www.kaggle.com/settings, 'Create New Token') or set KAGGLE_USERNAME and KAGGLE_KEY "
        f"(or KAGGLE_API_TOKEN). Dataset page: {_kaggle_page(name)}. Manual alternative: "
        f"{KAGGLE_DATASETS[name]['manual']} into {dest}/ (by default data/raw/{name}/), then run "
        f"`python -m utils extract {dest} --out data/features/{name}.npz`.")


def download(name: str, dest: str | Path | None = None) -> Path:
    """Download 'asl' or 'ucf11' from Kaggle into dest (default data/raw/<name>); return the folder."""
    name = _check_known(name)
    dest = Path(dest).expanduser() if dest is not None else paths.RAW_DIR / name
    if _has_clips(dest):
        return dest
    handle, failures = KAGGLE_DATASETS[name]["handle"], []
    routes = (("kagglehub", _download_with_kagglehub), ("kaggle client", _download_with_kaggle_client))
    for method, downloader in routes:
        try:
            dest.mkdir(parents=True, exist_ok=True)
            folder = downloader(handle, dest)
        except Exception as error:  # offline, unauthorised, not found, package missing ...
            first_line = str(error).splitlines()[0][:200] if str(error) else ""
            failures.append(f"{method}: {type(error).__name__}: {first_line}")
            continue
        inside_dest = folder.resolve() == dest.resolve() or dest.resolve() in folder.resolve().parents
        if folder.is_dir() and not inside_dest:  # downloaded to a cache elsewhere: copy it in
            shutil.copytree(folder, dest, dirs_exist_ok=True)
        if _has_clips(dest):
            return dest
        failures.append(f"{method}: finished but {dest} holds no recognisable clips")
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    raise _download_error(name, dest, failures)


def resolve_dataset(name_or_path: str | Path) -> Path:
    """The folder of 'synthetic' (generated if absent), 'asl' / 'ucf11' (already downloaded) or a path."""
    key = str(name_or_path).strip()
    if key.lower() == "synthetic":
        # absent, or interrupted: make_dataset resumes
        if not (paths.SYNTHETIC_DIR / "dataset.json").is_file():
            from utils.data import synthetic

            return Path(synthetic.make_dataset(out_dir=paths.SYNTHETIC_DIR))
        return paths.SYNTHETIC_DIR
    if key.lower() in KAGGLE_DATASETS:
        folder = paths.RAW_DIR / key.lower()
        if _has_clips(folder):
            return folder
        raise DownloadError(
            f"the {key.lower()!r} dataset is not in {folder}/. Get it with `python -m utils data "
            f"{key.lower()}` (needs internet; Kaggle page: {_kaggle_page(key.lower())}), or "
            f"{KAGGLE_DATASETS[key.lower()]['manual']} into {folder}/.")
    folder = Path(key).expanduser()
    if folder.is_dir():
        return folder
    raise DatasetError(f"{key!r} is neither a dataset name ('synthetic', 'asl', 'ucf11') nor an existing "
                       "folder")
