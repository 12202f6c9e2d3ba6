"""Bad input through the command line: each case ends in ONE clear message (exit code 2, no traceback) that
names the file or value and says what to do, and leaves no half-written output behind.

Commands run in-process through ``utils.cli.main`` (much faster than a subprocess), so an exception that
escapes the CLI fails the test with its traceback.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

NUM_FRAMES, NUM_CLASSES = 8, 3
CLASSES = ["alpha", "beta", "gamma"]


# ----------------------------------------------------------------------------- helpers
def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `python -m utils ARGV` in-process; return (exit code, stdout, stderr)."""
    from utils.cli import main

    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_clear_error(code: int, err: str, *must_name: object) -> str:
    """Exit code 2 and exactly one 'error: ...' line (progress bars aside) naming each of must_name."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for text in must_name:
        assert str(text) in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Write arrays to an .npz (no checks: these are deliberately broken feature files)."""
    np.savez(path, **arrays)
    return path


def good_arrays(num_clips: int = 24) -> dict[str, np.ndarray]:
    """Arrays of a valid keypoints-only features file: class-dependent keypoints, 4 groups."""
    rng = np.random.default_rng(0)
    labels = np.arange(num_clips) % NUM_CLASSES
    keypoints = (rng.random((num_clips, NUM_FRAMES,
                             1662)) * 0.1 + labels[:, None, None] * 0.3).astype(np.float32)
    return {"keypoints": keypoints, "labels": labels.astype(np.int64), "classes": np.array(CLASSES),
            "groups": np.array([f"signer{i % 4}" for i in range(num_clips)])}


def noise_video(path: Path, num_frames: int) -> Path:
    """A small video of random noise: no person in it."""
    from utils.data.video import write_video

    rng = np.random.default_rng(1)
    return write_video(path, (rng.random((num_frames, 48, 64, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def features_path(tmp_path_factory) -> Path:
    return save_npz(tmp_path_factory.mktemp("features") / "good.npz", **good_arrays())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, features_path) -> Path:
    """A finished run of a tiny LSTM (T=8, 2 epochs)."""
    from utils import models
    from utils.training import loop as training

    config = models.get_config("lstm", "small").replace(num_frames=NUM_FRAMES, lstm_units=(16,), epochs=2,
                                                         batch_size=8)
    out_dir = tmp_path_factory.mktemp("runs") / "tiny"
    training.train(features_path, "lstm", config, out_dir=out_dir, verbose=0)
    return out_dir


@pytest.fixture
def blocker(tmp_path) -> Path:
    """A regular file; paths under it cannot be created, even by root."""
    path = tmp_path / "file.txt"
    path.write_text("not a folder\n")
    return path


# ----------------------------------------------------------------------------- predict: bad videos
def _broken_videos(folder: Path) -> dict[str, Path]:
    """Missing, empty, non-video and truncated (.mp4 without its index) files."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    whole = noise_video(folder / "whole.mp4", 12).read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 3])
    return {"missing": folder / "nosuch.mp4", "empty": empty, "not a video": text, "truncated": truncated}


@pytest.mark.parametrize("kind", ["missing", "empty", "not a video", "truncated"])
def test_predict_bad_video_is_one_clear_error_and_writes_nothing(kind, tmp_path, run_dir, capsys):
    video = _broken_videos(tmp_path)[kind]
    out = tmp_path / "out" / "annotated.mp4"
    code, _, err = run_cli(capsys, "predict", video, "--model", run_dir, "--out", out)
    assert_one_clear_error(code, err, video)
    assert not out.parent.exists()


def test_predict_truncated_avi_uses_the_frames_it_has(tmp_path, run_dir, capsys):
    """An MJPG .avi cut in half still decodes its first frames: recognition runs on those (padded)."""
    whole = noise_video(tmp_path / "whole.avi", 12).read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(whole[: len(whole) // 2])
    code, out, err = run_cli(capsys, "predict", truncated, "--model", run_dir)
    assert code == 0, err
    assert "fewer than one window" in out and "(padded)" in out


def test_predict_short_video_works_padded_and_says_so(tmp_path, run_dir, capsys):
    code, out, err = run_cli(capsys, "predict", noise_video(tmp_path / "short.mp4", 5), "--model", run_dir)
    assert code == 0, err
    assert "only 5 frames, fewer than one window (8)" in out and "(padded)" in out


def test_predict_video_without_person_works_and_says_so(tmp_path, run_dir, capsys):
    code, out, err = run_cli(capsys, "predict", noise_video(tmp_path / "empty_room.mp4", 12), "--model",
                             run_dir, "--stride", "4")
    assert code == 0, err
    assert "no person found" in out
    assert sum(line.startswith("frames") for line in out.splitlines()) == 2


def test_predict_bad_stride_and_missing_video(tmp_path, run_dir, capsys):
    video = noise_video(tmp_path / "v.mp4", 10)
    assert_one_clear_error(*run_cli(capsys, "predict", video, "--model", run_dir, "--stride", "0")[::2],
                           "stride")
    assert_one_clear_error(*run_cli(capsys, "predict", "--model", run_dir)[::2], "VIDEO")


def test_webcam_on_a_server_is_one_clear_error(monkeypatch, run_dir, capsys):
    from utils.serving import webcam

    monkeypatch.setattr(webcam.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert_one_clear_error(*run_cli(capsys, "predict", "--webcam", "--model", run_dir)[::2], "DISPLAY")


# ----------------------------------------------------------------------------- model folders
def test_model_folder_missing_or_incomplete(tmp_path, run_dir, features_path, capsys):
    video = noise_video(tmp_path / "v.mp4", 10)
    missing = tmp_path / "no_run"
    incomplete = tmp_path / "incomplete"
    shutil.copytree(run_dir, incomplete)
    (incomplete / "run.json").unlink()
    for folder, name in ((missing, missing), (incomplete, "run.json")):
        assert_one_clear_error(*run_cli(capsys, "predict", video, "--model", folder)[::2], name)
        assert_one_clear_error(*run_cli(capsys, "evaluate", "--model", folder, "--features",
                                        features_path)[::2],
                               name)
        assert_one_clear_error(*run_cli(capsys, "export", "--model", folder, "--out", tmp_path / "exp")[::2],
                               name)
    assert not (tmp_path / "exp").exists()


def _mixed_run(run_dir: Path, folder: Path) -> Path:
    """A copy of a run whose run.json claims another window length (files of two runs mixed)."""
    shutil.copytree(run_dir, folder)
    info = json.loads((folder / "run.json").read_text())
    info["num_frames"] = 30
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def test_predict_with_model_folder_from_another_configuration(tmp_path, run_dir, capsys):
    mixed = _mixed_run(run_dir, tmp_path / "mixed")
    code, _, err = run_cli(capsys, "predict", noise_video(tmp_path / "v.mp4", 10), "--model", mixed)
    assert_one_clear_error(code, err, mixed, "different configurations")


def test_evaluate_with_model_folder_from_another_configuration(tmp_path, run_dir, features_path, capsys):
    mixed = _mixed_run(run_dir, tmp_path / "mixed")
    code, _, err = run_cli(capsys, "evaluate", "--model", mixed, "--features", features_path)
    assert_one_clear_error(code, err, mixed)


def test_evaluate_with_damaged_model_file(tmp_path, run_dir, features_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "model.keras").write_text("junk")
    code, _, err = run_cli(capsys, "evaluate", "--model", damaged, "--features", features_path)
    assert_one_clear_error(code, err, "model.keras")


def test_predict_with_damaged_model_file(tmp_path, run_dir, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "model.keras").write_text("junk")
    code, _, err = run_cli(capsys, "predict", noise_video(tmp_path / "v.mp4", 10), "--model", damaged)
    assert_one_clear_error(code, err, "model.keras", "train the model again")


# ----------------------------------------------------------------------------- feature files
@pytest.mark.parametrize("problem, text", [
    ("wrong shape", "shape"), ("missing labels", "missing array"), ("NaN", "NaN"),
    ("not an npz", "not a readable"), ("missing file", "not found"),
])
def test_train_on_bad_features_is_one_clear_error_and_leaves_no_run(problem, text, tmp_path, capsys):
    arrays = good_arrays(6)
    path = tmp_path / "features.npz"
    if problem == "wrong shape":
        save_npz(path, **{**arrays, "keypoints": arrays["keypoints"][..., :100]})
    elif problem == "missing labels":
        save_npz(path, **{k: v for k, v in arrays.items() if k != "labels"})
    elif problem == "NaN":
        arrays["keypoints"][2, 3, 4] = np.nan
        save_npz(path, **arrays)
    elif problem == "not an npz":
        path.write_text("garbage")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--features", path, "--model", "lstm", "--out", out)
    assert_one_clear_error(code, err, path, text)
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_evaluate_with_classes_the_model_does_not_know(tmp_path, run_dir, capsys):
    path = save_npz(tmp_path / "other.npz", **{**good_arrays(6), "classes": np.array(["x", "y", "z"])})
    code, _, err = run_cli(capsys, "evaluate", "--model", run_dir, "--features", path)
    assert_one_clear_error(code, err, path, "not trained on")




@pytest.mark.parametrize("case", [
    "unknown configuration",
    "unknown test group",
    "one clip of a class",
    "unknown split",
])
def test_bad_values_for_train_and_evaluate(case, tmp_path, run_dir, features_path, capsys):
    out = tmp_path / "run"
    train = ["train", "--features", features_path, "--model", "lstm", "--epochs", "1", "--out", out]
    if case == "unknown configuration":
        argv = [*train, "--config", "nosuch"]
    elif case == "unknown test group":
        argv = [*train, "--test-group", "nosuch"]
    elif case == "one clip of a class":
        # labels 0 1 2 0 1: one clip of class 2
        arrays = {k: v for k, v in good_arrays(5).items() if k != "groups"}
        argv = ["train", "--features", save_npz(tmp_path / "few.npz", **arrays), "--model", "lstm",
                "--epochs", "1", "--out", out]
    else:
        argv = ["evaluate", "--model", run_dir, "--features", features_path, "--split", "nosuch"]
    code, _, err = run_cli(capsys, *argv)
    assert_one_clear_error(code, err, "nosuch" if "nosuch" in argv else "clip")
    assert not out.exists()


# ----------------------------------------------------------------------------- interrupted work
def _mp_data_folder(root: Path, clips: int = 3) -> Path:
    """A tiny MP_Data folder (<class>/<sequence>/<frame>.npy): extraction needs no MediaPipe."""
    rng = np.random.default_rng(2)
    for index in range(clips):
        sequence = root / ("hello" if index % 2 == 0 else "thanks") / str(index)
        sequence.mkdir(parents=True)
        for frame in range(6):
            np.save(sequence / f"{frame}.npy", rng.random(1662))
    return root


def test_interrupted_extraction_leaves_no_file_and_resumes(monkeypatch, tmp_path, capsys):
    from utils import paths
    from utils.data import features
    from utils.data.features import clip_jobs

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    source, out = _mp_data_folder(tmp_path / "MP_Data"), tmp_path / "features.npz"
    real_run_job, calls = clip_jobs._run_job, []

    def interrupt_second(job, extractors=None):
        calls.append(job.relative)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_job(job, extractors)

    monkeypatch.setattr(clip_jobs, "_run_job", interrupt_second)
    code, _, err = run_cli(capsys, "extract", source, "--out", out, "--frames", "4")
    assert code == 130 and "run the same command again to resume" in err
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []

    calls.clear()
    monkeypatch.setattr(clip_jobs, "_run_job", lambda job, extractors=None: calls.append(job.relative)
                        or real_run_job(job, extractors))
    code, printed, err = run_cli(capsys, "extract", source, "--out", out, "--frames", "4")
    assert code == 0, err
    assert len(calls) == 2  # the first clip came from the cache
    assert len(features.load_features(out)) == 3


def test_interrupted_training_leaves_no_finished_looking_folder(monkeypatch, tmp_path, features_path, capsys):
    import keras

    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--features", features_path, "--model", "lstm", "--config",
                           "small", "--epochs", "1", "--out", out)
    assert code == 130 and "interrupted" in err and "--resume" in err
    # only <out>.partial is left (checkpoints to resume from), never a folder that looks like a finished run
    assert [path.name for path in tmp_path.iterdir()] in ([], ["run.partial"])
    assert not out.exists() and not (tmp_path / "run.partial" / "model.keras").exists()


# ----------------------------------------------------------------------------- outputs that cannot be written
def test_predict_and_export_to_a_path_under_a_file(tmp_path, run_dir, blocker, capsys):
    video = noise_video(tmp_path / "v.mp4", 10)
    assert_one_clear_error(*run_cli(capsys, "predict", video, "--model", run_dir, "--out",
                                    blocker / "out.mp4")[::2], blocker)
    assert_one_clear_error(*run_cli(capsys, "export", "--model", run_dir, "--out", blocker / "exp")[::2],
                           blocker)
    assert blocker.read_text() == "not a folder\n"


def test_predict_into_a_read_only_folder(tmp_path, run_dir, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip(
                "running as root: chmod does not stop writes (the path-under-a-file test covers this)"
            )
        code, _, err = run_cli(capsys, "predict", noise_video(tmp_path / "v.mp4", 10), "--model", run_dir,
                               "--out", folder / "out.mp4")
        assert_one_clear_error(code, err, folder, "read-only")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_extract_to_a_path_under_a_file(monkeypatch, tmp_path, blocker, capsys):
    from utils import paths

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    source = _mp_data_folder(tmp_path / "MP_Data")
    code, _, err = run_cli(capsys, "extract", source, "--out", blocker / "features.npz", "--frames", "4")
    assert_one_clear_error(code, err, blocker)


@pytest.mark.slow  # trains for one epoch before it fails
def test_train_to_a_path_under_a_file(features_path, blocker, capsys):
    code, _, err = run_cli(capsys, "train", "--features", features_path, "--model", "lstm", "--config",
                           "small", "--epochs", "1", "--out", blocker / "run")
    assert_one_clear_error(code, err, blocker)


# ----------------------------------------------------------------------------- extraction sources, datasets
def test_extract_from_missing_or_unreadable_sources(tmp_path, monkeypatch, capsys):
    from utils import paths

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "features.npz"
    assert_one_clear_error(*run_cli(capsys, "extract", tmp_path / "nosuch", "--out", out)[::2], "nosuch")
    broken = _broken_videos(tmp_path / "scratch")
    for index, name in enumerate(("empty", "not a video")):
        target = tmp_path / "videos" / f"class{index}" / f"clip{index}.mp4"
        target.parent.mkdir(parents=True)
        shutil.copy(broken[name], target)
    code, _, err = run_cli(capsys, "extract", tmp_path / "videos", "--out", out, "--workers", "1")
    assert_one_clear_error(code, err, "no clip could be read", "clip0.mp4", "clip1.mp4")
    assert not out.exists()


def test_unknown_dataset_names(capsys):
    from utils.cli import main
    from utils.data.datasets import resolve_dataset
    from utils.errors import DatasetError

    with pytest.raises(SystemExit) as exit_info:
        main(["data", "nosuch"])
    assert exit_info.value.code == 2 and "invalid choice: 'nosuch'" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="nosuch"):
        resolve_dataset("nosuch")


def test_download_offline_without_credentials(monkeypatch, tmp_path, capsys):
    """No network (sockets refused) and no Kaggle token: one message saying where the token goes."""
    def no_network(*args, **kwargs):
        raise OSError("network disabled for this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no_kaggle_config"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    dest = tmp_path / "asl"
    code, _, err = run_cli(capsys, "data", "asl", "--out", dest)
    assert_one_clear_error(code, err, "kaggle.json", "internet")
    assert not dest.exists()
