"""The recorder (python -m utils record) driven without a window: a generated video stands in for the camera
and a script of letters for the keyboard (k keep, r redo, s skip, q quit)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from utils.data import datasets, record, recordings
from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import CameraError, CourseError, DatasetError

FPS = 30.0


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    """Two seconds of a synthetic signer, as an .mp4 that stands in for a camera."""
    from utils.data import synthetic, video

    signer = synthetic.make_signers(1, np.random.default_rng(0))[0]
    frames = np.concatenate(
        [
            synthetic.generate_clip("hello", signer, np.random.default_rng(seed), 1.0, 30, 128).frames
            for seed in range(2)
        ]
    )
    return video.write_video(tmp_path_factory.mktemp("camera") / "camera.mp4", frames, fps=FPS)


class FakeExtractor:
    """Stands in for MediaPipe where only the recorder's bookkeeping is tested (fast): zeros, as if nobody
    was found."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def extract_frame(self, frame):
        return np.zeros(KEYPOINT_DIM, np.float32), np.zeros(4, bool)

    def extract(self, frames):
        return np.zeros((len(frames), KEYPOINT_DIM), np.float32), np.zeros((len(frames), 4), bool)


@pytest.fixture
def fake_mediapipe(monkeypatch):
    monkeypatch.setattr("utils.data.keypoints.HolisticExtractor", FakeExtractor)


def _run(out: Path, camera: Path, keys: str | None = None, yes: bool = False, **kwargs) -> dict:
    options = dict(
        signs=["a", "b"],
        signer="s1",
        clips=2,
        out=out,
        camera=str(camera),
        order="fixed",
        seconds=0.3,
        countdown=0.2,
        verbose=False,
    )
    options.update(kwargs)
    return record.record(keys=keys, yes=yes, show=False, **options)


def _rows(out: Path) -> list[dict]:
    with (out / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_keep_redo_skip_and_quit_end_up_in_the_manifest_or_not(tmp_path, camera_file, fake_mediapipe):
    # fixed order: a, a, b, b. k keeps a; r redoes the 2nd a, s skips it; k keeps the 1st b;
    # the script ends: quit
    summary = _run(tmp_path, camera_file, keys="krsk")
    assert (summary["kept"], summary["redone"], summary["skipped"], summary["quit"]) == (2, 1, 1, True)
    rows = _rows(tmp_path)
    assert [row["label"] for row in rows] == ["a", "b"]
    assert all(row["signer"] == "s1" and row["session"] == summary["session"] for row in rows)
    assert (
        rows[0]["fps"] == "30" and rows[0]["frames"] == "9" and rows[0]["width"] == rows[0]["height"] == "128"
    )
    assert rows[0]["mirrored"] == "0" and rows[0]["mediapipe"] == recordings.mediapipe_version()
    assert rows[0]["camera"] == "camera.mp4", "a video file is named without its folders"
    # exactly the kept clips are on disk: a video and its keypoints each, nothing else but
    # the two bookkeeping files
    kept = [row["path"] for row in rows] + [row["keypoints"] for row in rows]
    assert _files(tmp_path) == sorted(kept + ["manifest.csv", "recordings.json"])
    with np.load(tmp_path / rows[0]["keypoints"]) as data:
        assert data["keypoints"].shape == (9, KEYPOINT_DIM) and data["detected"].shape == (9, 4)
    # and the course reads the folder as a manifest dataset, with the signer as group
    kind, records = datasets.discover(tmp_path)
    assert kind == "manifest" and [(r.label, r.group) for r in records] == [("a", "s1"), ("b", "s1")]


def test_quit_keeps_what_was_kept_and_a_second_run_resumes(tmp_path, camera_file, fake_mediapipe, capsys):
    first = _run(tmp_path, camera_file, keys="kq", session="one")
    assert first["kept"] == 1 and first["quit"]
    assert recordings.RecordingFolder(tmp_path).counts("s1", ["a", "b"]) == {"a": 1, "b": 0}
    second = _run(tmp_path, camera_file, yes=True, session="one", verbose=True)
    assert second["kept"] == 3 and not second["quit"], "only the three missing clips are recorded"
    assert "a  #.  1/2" in capsys.readouterr().out, "the counts so far are shown at the start"
    rows = _rows(tmp_path)
    assert sorted(row["label"] for row in rows) == ["a", "a", "b", "b"]
    assert len({row["path"] for row in rows}) == 4 and {row["session"] for row in rows} == {"one"}
    # a new named session has clips of its own; without a session name, every session counts
    assert _run(tmp_path, camera_file, yes=True, session="two", clips=1)["kept"] == 2
    assert _run(tmp_path, camera_file, yes=True, clips=3)["kept"] == 0, "3 of each already: nothing recorded"
    # another signer in the same folder starts from zero
    assert _run(tmp_path, camera_file, yes=True, signer="s2", clips=1)["kept"] == 2
    assert len(_rows(tmp_path)) == 8


def test_an_interrupted_write_leaves_nothing_half_written(tmp_path, camera_file, fake_mediapipe, monkeypatch):
    _run(tmp_path, camera_file, keys="kq", session="one")
    before = _files(tmp_path)

    def broken_write(path, frames, fps=30.0):  # dies half-way through writing the second clip's video
        tmp = Path(path).with_name(f".{Path(path).stem}.tmp.mp4")
        tmp.write_bytes(b"half a video")
        raise KeyboardInterrupt

    monkeypatch.setattr("utils.data.video.write_video", broken_write)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, camera_file, yes=True, session="two")
    assert len(_rows(tmp_path)) == 1, "the clip being written has no manifest row"
    folder = recordings.RecordingFolder(tmp_path)  # opening the folder again tidies it
    assert sorted(folder.removed) == ["a/.s1_two_000.tmp.mp4", "a/s1_two_000.keypoints.npz"]
    assert _files(tmp_path) == before


def test_camera_stopping_mid_clip_keeps_the_kept_clips(tmp_path, camera_file, fake_mediapipe, monkeypatch):
    read = record.Camera.read

    def failing_read(self):
        if self.frames_read >= 20:  # the first clip (6 + 9 frames) is kept, the second dies while recording
            raise CameraError("camera 0 stopped giving frames")
        return read(self)

    monkeypatch.setattr(record.Camera, "read", failing_read)
    with pytest.raises(CameraError):
        _run(tmp_path, camera_file, yes=True)
    assert [row["label"] for row in _rows(tmp_path)] == ["a"]
    assert not [name for name in _files(tmp_path) if ".tmp" in name]


def test_no_camera_is_one_clear_error(tmp_path, capsys):
    from utils import cli

    with pytest.raises(CameraError, match=r"tried index 99\b"):
        record.Camera(99)
    with pytest.raises(CameraError, match="no such video file"):
        record.Camera(str(tmp_path / "missing.mp4"))
    (tmp_path / "not_a_video.mp4").write_text("hello")
    with pytest.raises(CameraError, match="cannot read this video file"):
        record.Camera(str(tmp_path / "not_a_video.mp4"))
    assert issubclass(CameraError, CourseError)
    code = cli.main(
        [
            "record",
            "--signs",
            "a",
            "--signer",
            "s1",
            "--camera",
            "99",
            "--yes",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: no camera could be opened (tried index 99)")
    assert len(err.splitlines()) == 1, "one line, no traceback"


def test_bad_names_folders_and_keys_are_explained(tmp_path, camera_file):
    with pytest.raises(DatasetError, match="letters, digits"):
        _run(tmp_path / "a", camera_file, yes=True, signs=["../up"])
    with pytest.raises(DatasetError, match="letters, digits"):
        _run(tmp_path / "b", camera_file, yes=True, signer="anna smith")
    foreign = tmp_path / "someone_elses"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a recordings folder"):
        _run(foreign, camera_file, yes=True)
    assert _files(foreign) == ["notes.txt"]
    with pytest.raises(CourseError, match="unknown letter"):
        _run(tmp_path / "c", camera_file, keys="kx")
    with pytest.raises(CourseError, match="--yes"):
        record.record(["a"], "s1", out=tmp_path / "d", camera=str(camera_file), show=False)


def test_names_with_underscores_never_overwrite_a_clip(tmp_path, camera_file, fake_mediapipe):
    # "anna" in session "x_1" and "anna_x" in session "1" make the same file-name prefix: the numbers go on
    _run(tmp_path, camera_file, yes=True, signs=["a"], signer="anna", session="x_1", clips=1)
    _run(tmp_path, camera_file, yes=True, signs=["a"], signer="anna_x", session="1", clips=1)
    assert sorted(row["path"] for row in _rows(tmp_path)) == ["a/anna_x_1_000.mp4", "a/anna_x_1_001.mp4"]
    assert len(list(tmp_path.rglob("*.mp4"))) == 2


def test_random_order_shuffles_the_missing_clips():
    rng = np.random.default_rng(0)
    slots = record.plan({"a": 1, "b": 0, "c": 3}, 3, "random", rng)
    assert sorted(slots) == ["a", "a", "b", "b", "b"]
    assert record.plan({"a": 1, "b": 0}, 2, "fixed", rng) == ["a", "b", "b"]


def test_the_recorder_screens_draw(camera_file):
    frame = np.zeros((128, 160, 3), np.uint8)
    screen = record.compose(
        frame,
        np.zeros(KEYPOINT_DIM, np.float32),
        True,
        "sign: a",
        record.REVIEW_HELP,
        countdown=3,
        progress=0.5,
        status="review",
    )
    assert screen.dtype == np.uint8 and min(screen.shape[:2]) >= 480 and screen.any()
    assert record.progress_screen({"a": 1, "b": 2}, 2, "s1", "space: start").shape[0] > 100


def test_real_mediapipe_keypoints_are_stored(tmp_path, camera_file):
    summary = _run(tmp_path, camera_file, yes=True, signs=["hello"], clips=1, countdown=0, seconds=1.0)
    assert summary["kept"] == 1
    row = _rows(tmp_path)[0]
    with np.load(tmp_path / row["keypoints"]) as data:
        keypoints, detected = data["keypoints"], data["detected"]
    assert keypoints.shape == (30, KEYPOINT_DIM) and detected[:, 1].mean() > 0.5, "MediaPipe finds the pose"
    assert np.abs(keypoints[detected[:, 1]][:, 1404:1536]).sum() > 0


def _mp_data(root: Path, sign: str, sequences: int = 2, frames: int = 5) -> None:
    for sequence in range(sequences):
        folder = root / sign / str(sequence)
        folder.mkdir(parents=True)
        for frame in range(frames):
            np.save(folder / f"{frame}.npy", np.full(KEYPOINT_DIM, 0.5, np.float32))


def test_merge_joins_recordings_and_mp_data_by_sign_name(tmp_path, camera_file, fake_mediapipe):
    mine = tmp_path / "mine"
    _run(mine, camera_file, yes=True, signs=["hello", "thanks"], clips=1, session="one")
    _run(mine, camera_file, yes=True, signs=["hello", "thanks"], clips=1, session="two")
    other = tmp_path / "MP_Data"
    _mp_data(other, "Hello")
    _mp_data(other, "iloveyou")
    manifest = recordings.merge([mine, other], tmp_path / "merged")
    records = datasets.read_manifest(manifest)
    by_source = {(r.source, r.label, r.group) for r in records}
    assert by_source == {
        ("video", "hello", "s1"),
        ("video", "thanks", "s1"),
        ("mp_data", "hello", "MP_Data"),
        ("mp_data", "iloveyou", "MP_Data"),
    }
    assert len(records) == 4 + 4
    assert "8 clips, 3 signs, 2 signers" in recordings.describe_manifest(manifest)
    by_session = datasets.read_manifest(recordings.merge([mine], tmp_path / "sessions", group_by="session"))
    assert sorted({r.group for r in by_session}) == ["one", "two"]
    with pytest.raises(DatasetError, match="group_by"):
        recordings.merge([mine], tmp_path / "x", group_by="colour")


@pytest.mark.slow
def test_record_extract_train_from_the_command_line(tmp_path, camera_file):
    # each command in a process of its own, as typed in a terminal (MediaPipe and TensorFlow in one process
    # crashed on a machine with a display)
    import subprocess
    import sys

    def command(*arguments) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "utils", *map(str, arguments)], capture_output=True,
                              text=True, timeout=600)

    out = tmp_path / "mine"
    done = command("record", "--camera", camera_file, "--signs", "a", "b", "--signer", "s1", "--clips", 2,
                   "--yes", "--out", out, "--countdown", 0, "--seconds", 1)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(rows) == 4 and sorted(row["label"] for row in rows) == ["a", "a", "b", "b"]
    assert len(list(out.rglob("*.mp4"))) == 4
    features = tmp_path / "mine.npz"
    done = command("extract", out, "--out", features, "--workers", 1)
    assert done.returncode == 0, done.stderr
    done = command("train", "--features", features, "--model", "linear", "--epochs", 2,
                   "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


class FakeWindow:
    """Stands in for the OpenCV window: each show() returns the next key of a list (None: no key pressed)."""

    def __init__(self, presses: list) -> None:
        self.presses, self.screens = list(presses), 0

    def __call__(self, show: bool, fps: float, paced: bool):
        self.enabled = show
        return self

    def show(self, image, wait_ms=None):
        assert image.dtype == np.uint8 and image.ndim == 3
        self.screens += 1
        return self.presses.pop(0) if self.presses else None

    def close(self) -> None:
        pass


def test_keys_pressed_in_the_window_keep_redo_and_quit_mid_recording(tmp_path, camera_file, fake_mediapipe,
                                                                      monkeypatch):
    # screens per clip at 30 fps: 6 of countdown (0.2 s), 9 of recording (0.3 s), then the review replays
    nothing = [None]
    presses = ([ord(" ")]                                   # the progress screen: space starts
               + nothing * 15 + [ord("r")]                  # clip 1: countdown, recording, review: redo
               + nothing * 15 + nothing * 9 + [13]          # again; one whole replay, then Enter keeps it
               + nothing * 6 + nothing * 3 + [ord("q")])    # clip 2: q while recording
    window = FakeWindow(presses)
    monkeypatch.setattr(record, "Display", window)
    monkeypatch.setattr(record, "check_display", lambda: None)
    summary = record.record(["a", "b"], "s1", clips=1, out=tmp_path, camera=str(camera_file), order="fixed",
                            seconds=0.3, countdown=0.2, verbose=False)
    assert (summary["kept"], summary["redone"], summary["quit"]) == (1, 1, True)
    assert not window.presses, "every key was read where it was meant to be"
    assert [row["label"] for row in _rows(tmp_path)] == ["a"]
    assert not [name for name in _files(tmp_path) if ".tmp" in name]


@pytest.mark.skipif(not os.environ.get("DISPLAY"),
                    reason="needs a display (run under xvfb-run to test the window)")
def test_the_window_opens_and_closes(tmp_path, camera_file, fake_mediapipe):
    summary = record.record(["a"], "s1", clips=1, out=tmp_path, camera=str(camera_file), keys="k", show=True,
                            seconds=0.2, countdown=0.1, verbose=False)
    assert summary["kept"] == 1
