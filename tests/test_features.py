"""The one features file: extraction from each source kind, skipping bad clips, resuming, validation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from utils import paths
from utils.data import features, keypoints
from utils.data.features import FeatureSet, clip_jobs, extract_features, load_features, save_features
from utils.data.keypoints import FACE, KEYPOINT_DIM, LEFT_HAND, POSE, RIGHT_HAND
from utils.data.video import sample_frame_indices, write_video
from utils.errors import DatasetError, FeatureFileError

SOURCE_FRAMES, NUM_FRAMES, IMAGE_SIZE = 8, 4, 16


@pytest.fixture(autouse=True)
def cache_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own empty feature cache."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(paths, "CACHE_DIR", cache)
    return cache


def clip_frames(level: int, num_frames: int = SOURCE_FRAMES, size: int = 32) -> np.ndarray:
    """A small clip whose frames are a uniform grey `level` with a bright frame-number bar."""
    frames = np.full((num_frames, size, size, 3), level, dtype=np.uint8)
    for t in range(num_frames):
        frames[t, :4, : 4 * (t + 1)] = 255
    return frames


def make_video_folder(root: Path, classes=("hello", "thanks"), per_class: int = 2) -> Path:
    """<root>/<class>/clipN.mp4 with tiny videos."""
    for c, label in enumerate(classes):
        for i in range(per_class):
            write_video(root / label / f"clip{i}.mp4", clip_frames(40 + 60 * c + 20 * i))
    return root


def make_synthetic(root: Path, signers=("s01", "s02"), signs=("circle", "wave")) -> Path:
    """A synthetic-layout dataset whose stored keypoints encode (clip, frame) so sampling can be checked."""
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"kind": "synthetic"}))
    rows = ["path,label,signer"]
    for c, sign in enumerate(signs):
        for s, signer in enumerate(signers):
            video = write_video(root / sign / f"{signer}_000.mp4", clip_frames(50 + 50 * c + 10 * s))
            values = (100 * c + 10 * s + np.arange(SOURCE_FRAMES, dtype=np.float32))[:, None]
            np.savez(video.with_name(f"{signer}_000.keypoints.npz"),
                     keypoints=np.repeat(values, KEYPOINT_DIM, axis=1).astype(np.float32),
                     detected=np.ones((SOURCE_FRAMES, 4), dtype=bool))
            rows.append(f"{sign}/{signer}_000.mp4,{sign},{signer}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


class FakeExtractor:
    """Stands in for MediaPipe: keypoints = mean grey level of each frame; counts its clips."""

    calls: list[int] = []
    interrupt_at: int | None = None  # raise KeyboardInterrupt on this (1-based) clip
    sizes: list[int] = []  # max_side of each extractor made

    def __init__(self, max_side: int = 0, **options) -> None:
        self.max_side = max_side
        FakeExtractor.sizes.append(max_side)

    def extract(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        FakeExtractor.calls.append(len(frames))
        if FakeExtractor.interrupt_at == len(FakeExtractor.calls):
            raise KeyboardInterrupt
        levels = frames.reshape(len(frames), -1).mean(axis=1, dtype=np.float64) / 255
        return np.repeat(levels[:, None], KEYPOINT_DIM,
                         axis=1).astype(np.float32), np.ones((len(frames), 4), bool)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_mediapipe(monkeypatch: pytest.MonkeyPatch) -> type[FakeExtractor]:
    """Replace the Holistic extractor by FakeExtractor (fresh counters)."""
    monkeypatch.setattr(keypoints, "HolisticExtractor", FakeExtractor)
    FakeExtractor.calls, FakeExtractor.interrupt_at, FakeExtractor.sizes = [], None, []
    return FakeExtractor


def extract(source: Path, out: Path, **options) -> features.ExtractionReport:
    """extract_features with the small test settings."""
    settings = dict(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE, workers=1, progress=False) | options
    return extract_features(source, out, **settings)


# ----------------------------------------------------------------------------- extraction
def test_synthetic_uses_stored_keypoints_at_the_sampled_frames(tmp_path: Path) -> None:
    report = extract(make_synthetic(tmp_path / "synthetic"), tmp_path / "synthetic.npz")
    loaded = load_features(report.path)
    assert report.num_clips == len(loaded) == 4 and report.skipped == []
    assert loaded.classes == ["circle", "wave"] and loaded.labels.tolist() == [0, 0, 1, 1]
    assert loaded.groups.tolist() == ["s01", "s02", "s01", "s02"]
    assert loaded.paths.tolist()[0] == "circle/s01_000.mp4"
    assert loaded.frames.shape == (4, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE,
                                   3) and loaded.frames.dtype == np.uint8
    indices, _ = sample_frame_indices(SOURCE_FRAMES, NUM_FRAMES)
    assert np.array_equal(loaded.keypoints[3, :, 0], 100 + 10 + indices)  # wave, s02
    assert loaded.detected.shape == (4, NUM_FRAMES, 4)
    assert loaded.meta["kind"] == "synthetic" and loaded.meta["keypoints_from"] == "stored"
    assert loaded.meta["num_frames"] == NUM_FRAMES and "mediapipe" in loaded.meta["versions"]
    assert loaded.num_frames == NUM_FRAMES and loaded.image_size == IMAGE_SIZE and loaded.num_classes == 2


def test_video_folder_runs_the_extractor_on_full_resolution_frames(tmp_path: Path, fake_mediapipe) -> None:
    report = extract(make_video_folder(tmp_path / "videos"), tmp_path / "videos.npz")
    loaded = load_features(report.path)
    assert fake_mediapipe.calls == [NUM_FRAMES] * 4
    assert loaded.meta["keypoints_from"] == "mediapipe" and loaded.meta["kind"] == "video_folder"
    assert loaded.keypoints[0, 0, 0] < loaded.keypoints[3, 0, 0]  # darker clip -> smaller fake keypoints
    assert loaded.groups.tolist() == [""] * 4 and loaded.split.tolist() == [""] * 4


def test_corrupt_clip_is_skipped_and_listed(tmp_path: Path, fake_mediapipe, capsys) -> None:
    root = make_video_folder(tmp_path / "videos")
    (root / "hello" / "broken.mp4").write_bytes(b"\x00\x01 definitely not a video" * 50)
    report = extract(root, tmp_path / "videos.npz")
    assert report.num_clips == 4
    assert [path for path, _ in report.skipped] == ["hello/broken.mp4"]
    assert "VideoError" in report.skipped[0][1]
    assert "hello/broken.mp4" in capsys.readouterr().err
    assert "hello/broken.mp4" not in load_features(report.path).paths.tolist()


def test_no_readable_clip_raises_feature_file_error(tmp_path: Path, fake_mediapipe) -> None:
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.mp4").write_bytes(b"garbage")
    with pytest.raises(FeatureFileError, match="no clip could be read"):
        extract(tmp_path / "bad", tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_interrupted_extraction_resumes_without_recomputing(tmp_path: Path, fake_mediapipe,
                                                            cache_in_tmp) -> None:
    root = make_video_folder(tmp_path / "videos", per_class=3)
    fake_mediapipe.interrupt_at = 4
    with pytest.raises(KeyboardInterrupt):
        extract(root, tmp_path / "videos.npz")
    assert len(list((cache_in_tmp / "features").glob("*.npz"))) == 3  # clips 1-3 were kept
    assert not (tmp_path / "videos.npz").exists()
    fake_mediapipe.calls, fake_mediapipe.interrupt_at = [], None
    report = extract(root, tmp_path / "videos.npz")
    assert len(fake_mediapipe.calls) == 3 and report.cache_hits == 3 and report.num_clips == 6
    fake_mediapipe.calls = []
    again = extract(root, tmp_path / "again.npz")
    assert fake_mediapipe.calls == [] and again.cache_hits == 6
    first, second = load_features(report.path), load_features(again.path)
    assert np.array_equal(first.keypoints, second.keypoints) and np.array_equal(first.frames, second.frames)


def test_changed_settings_are_not_served_from_the_cache(tmp_path: Path, fake_mediapipe) -> None:
    root = make_video_folder(tmp_path / "videos")
    extract(root, tmp_path / "a.npz")
    fake_mediapipe.calls = []
    report = extract(root, tmp_path / "b.npz", num_frames=NUM_FRAMES + 1)
    assert len(fake_mediapipe.calls) == 4 and report.cache_hits == 0


def test_mediapipe_size_reaches_the_extractor_the_file_and_the_cache_key(tmp_path: Path,
                                                                         fake_mediapipe) -> None:
    root = make_video_folder(tmp_path / "videos")
    shrunk = load_features(extract(root, tmp_path / "a.npz", mediapipe_size=320).path)
    assert fake_mediapipe.sizes == [320] and len(fake_mediapipe.calls) == 4
    assert shrunk.meta["mediapipe_size"] == 320
    fake_mediapipe.calls = []
    full = extract(root, tmp_path / "b.npz", mediapipe_size=0)
    # another size is not served from the cache
    assert len(fake_mediapipe.calls) == 4 and full.cache_hits == 0
    assert load_features(full.path).meta["mediapipe_size"] == 0
    fake_mediapipe.calls = []
    assert extract(root, tmp_path / "c.npz",
                   mediapipe_size=320).cache_hits == 4 and fake_mediapipe.calls == []
    with pytest.raises(DatasetError, match="mediapipe_size"):
        extract(root, tmp_path / "d.npz", mediapipe_size=-1)


def test_stored_keypoints_ignore_mediapipe_size(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "synthetic")
    first = extract(root, tmp_path / "a.npz", mediapipe_size=320)
    assert load_features(first.path).meta["mediapipe_size"] is None  # MediaPipe never ran
    assert extract(root, tmp_path / "b.npz", mediapipe_size=0).cache_hits == 4


def test_limit_takes_clips_from_every_class(tmp_path: Path, fake_mediapipe) -> None:
    report = extract(make_video_folder(tmp_path / "videos", per_class=3), tmp_path / "small.npz", limit=2)
    assert load_features(report.path).classes == ["hello", "thanks"]


def test_keypoint_source_that_the_dataset_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no stored keypoints"):
        extract(make_video_folder(tmp_path / "videos"), tmp_path / "x.npz", keypoints_from="stored")


def make_mp_data(root: Path, num_frames: int) -> Path:
    """MP_Data/<sign>/<seq>/<frame>.npy whose parts hold distinct constants (pose 1, face 2, left 3, right
    4)."""
    vector = np.concatenate([np.full(132, 1.0), np.full(1404, 2.0), np.full(63, 3.0), np.full(63, 4.0)])
    for sign in ("hello", "no"):
        for sequence in range(2):
            folder = root / "MP_Data" / sign / str(sequence)
            folder.mkdir(parents=True)
            for frame in range(num_frames):
                np.save(folder / f"{frame}.npy", vector * (frame + 1))
    return root


def test_mp_data_is_reordered_and_padded(tmp_path: Path) -> None:
    report = extract(make_mp_data(tmp_path / "mp", num_frames=3), tmp_path / "mp.npz", num_frames=5)
    loaded = load_features(report.path)
    assert loaded.frames is None and loaded.image_size is None and loaded.meta["kind"] == "mp_data"
    assert loaded.keypoints.shape == (4, 5, KEYPOINT_DIM)
    indices, padded = sample_frame_indices(3, 5)
    assert padded and loaded.meta["num_padded"] == 4
    scale = (indices + 1)[:, None]
    for part, value in ((FACE, 2.0), (POSE, 1.0), (LEFT_HAND, 3.0), (RIGHT_HAND, 4.0)):
        assert np.allclose(loaded.keypoints[0][:, part], value * scale)


def test_extract_command(tmp_path: Path, capsys) -> None:
    from utils import cli

    out = tmp_path / "features" / "mp.npz"
    assert cli.main(["extract", str(make_mp_data(tmp_path / "mp", 6)), "--out", str(out), "--frames",
                     "6"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and len(load_features(out)) == 4
    (tmp_path / "empty").mkdir()
    assert cli.main(["extract", str(tmp_path / "empty"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "found no clips" in err and "Traceback" not in err


@pytest.mark.real
def test_real_mp_data_sample_lands_in_our_order(tmp_path: Path, real_dir: Path) -> None:
    source = real_dir / "mp_data_sample"
    loaded = load_features(extract(source, tmp_path / "real.npz", num_frames=30).path)
    assert len(loaded) == 30 and loaded.num_classes == 6
    pose = loaded.keypoints[..., POSE].reshape(30, 30, 33, 4)
    found = loaded.detected[..., 1]
    shoulders = pose[found][:, 11:13]  # landmarks 11/12 of frames where a pose was found
    assert np.all((shoulders[..., 3] >= 0) & (shoulders[..., 3] <= 1))  # visibility
    assert shoulders[..., 3].mean() > 0.9
    assert np.all((shoulders[..., :2] > 0.05) & (shoulders[..., :2] < 1.2))
    face = loaded.keypoints[..., FACE].reshape(30, 30, 468, 3)[loaded.detected[..., 0]]
    assert face.shape[1] == 468 and np.abs(face[..., 2]).max() < 0.2  # face z is small
    assert np.all((face[..., :2] > 0) & (face[..., :2] < 1))
    raw = np.load(source / "MP_Data" / loaded.paths[0].split("/", 1)[1] / "0.npy")
    assert np.allclose(loaded.keypoints[0, 0, POSE], raw[:132])
    assert np.allclose(loaded.keypoints[0, 0, FACE], raw[132:1536])


@pytest.mark.slow
@pytest.mark.real
def test_real_asl_clips_through_mediapipe(tmp_path: Path, real_dir: Path) -> None:
    for sign in ("help", "yes"):  # the two smallest real clips, linked into a class-folder dataset
        (tmp_path / "asl" / sign).mkdir(parents=True)
        (tmp_path / "asl" / sign / "kirichovka.mp4").symlink_to(
            real_dir / "asl_clips" / sign / "kirichovka.mp4"
        )
    loaded = load_features(extract(tmp_path / "asl", tmp_path / "asl.npz", image_size=32).path)
    assert loaded.classes == ["help", "yes"] and loaded.frames.shape == (2, NUM_FRAMES, 32, 32, 3)
    assert loaded.meta["keypoints_from"] == "mediapipe"
    assert loaded.detected[..., 1].mean() > 0.5  # MediaPipe found the signer's pose in most frames
    pose = loaded.keypoints[..., POSE].reshape(2, NUM_FRAMES, 33, 4)[loaded.detected[..., 1]]
    assert np.all((pose[:, 11:13, :2] > 0) & (pose[:, 11:13, :2] < 1))  # shoulders inside the picture


def test_worker_processes_give_the_same_file(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "synthetic")
    parallel = load_features(extract(root, tmp_path / "parallel.npz", workers=2, parallel="processes").path)
    serial = load_features(extract(root, tmp_path / "serial.npz", workers=1).path)  # cache hits now
    assert np.array_equal(parallel.keypoints,
                          serial.keypoints) and np.array_equal(parallel.frames, serial.frames)


def astronaut_videos(root: Path) -> Path:
    """<root>/<class>/clip.mp4: three short 192x192 clips of a person (skimage's astronaut), each moving
    differently."""
    from skimage import data

    from utils.data import video

    still = data.astronaut()
    clips = {"zoom": video.pan_zoom_clip(still, num_frames=10, output_size=192),
             "mirror": video.pan_zoom_clip(still[:, ::-1], num_frames=8, zoom=1.1, output_size=192),
             "dark": (video.pan_zoom_clip(still, num_frames=12, zoom=1.5,
                                          output_size=192) * 0.7).astype(np.uint8)}
    for label, frames in clips.items():
        write_video(root / label / "clip.mp4", frames)
    return root


def test_threads_give_the_file_of_one_process_with_mediapipe(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Two MediaPipe graphs in two threads, each on whole clips in order: the same landmarks as one graph
    alone."""
    pytest.importorskip("mediapipe")
    root = astronaut_videos(tmp_path / "videos")
    options = dict(keypoints_from="mediapipe", hand_size=8, num_frames=6)
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache_one")
    one = load_features(extract(root, tmp_path / "one.npz", workers=1, **options).path)
    # computed again, not read from the cache
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache_threads")
    threads = load_features(extract(root, tmp_path / "threads.npz", workers=2, parallel="threads",
                                    **options).path)
    assert one.detected[..., :2].mean() > 0.8, "MediaPipe should find the astronaut's face and pose"
    for name in ("keypoints", "detected", "frames", "hand_crops"):
        assert np.array_equal(getattr(one, name), getattr(threads, name)), name


class RecordingExtractor(FakeExtractor):
    """FakeExtractor that notes which extractor saw which frames, and slows down so the threads overlap."""

    seen: list[tuple[int, list[float]]] = []
    closed: list[int] = []

    def extract(self, frames) -> tuple[np.ndarray, np.ndarray]:
        import time

        levels = []
        for frame in frames:
            levels.append(float(frame.mean()))
            time.sleep(0.005)
        RecordingExtractor.seen.append((id(self), levels))
        return np.zeros((len(levels), KEYPOINT_DIM), np.float32), np.ones((len(levels), 4), bool)

    def close(self) -> None:
        RecordingExtractor.closed.append(id(self))


def test_threads_hand_each_extractor_whole_clips_in_order(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keypoints, "HolisticExtractor", RecordingExtractor)
    RecordingExtractor.seen, RecordingExtractor.closed = [], []
    root = make_video_folder(tmp_path / "videos", classes=("a", "b", "c"), per_class=2)
    extract(root, tmp_path / "threads.npz", workers=2, parallel="threads", num_frames=SOURCE_FRAMES)
    extractors = {owner for owner, _ in RecordingExtractor.seen}
    assert len(RecordingExtractor.seen) == 6 and len(extractors) == 2, "two threads, each its own extractor"
    assert sorted(RecordingExtractor.closed) == sorted(extractors), (
        "every thread's graph is closed at the end"
    )
    for _, levels in RecordingExtractor.seen:  # one clip's 8 frames, in order: the frame-number bar grows
        assert len(levels) == SOURCE_FRAMES and levels == sorted(levels)


def test_unknown_parallel_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="parallel"):
        extract(make_video_folder(tmp_path / "videos"), tmp_path / "x.npz", parallel="fibres")


def test_worker_processes_start_mediapipe_without_tensorflow() -> None:
    """The pool's initializer keeps TensorFlow out of the workers (run in a child: it would break this
    process)."""
    import subprocess
    import sys

    code = ("from utils.data.features.clip_jobs import quiet_worker; quiet_worker(); import mediapipe, sys; "
            "mediapipe.solutions.holistic.Holistic().close(); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] == 'tensorflow' and sys.modules[m] is not None))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_pool_hands_out_the_largest_clips_first(tmp_path: Path) -> None:
    """Largest source file first (a folder, e.g. an MP_Data sequence, last), so workers finish together."""
    sizes = {"small.mp4": 10, "large.mp4": 300, "middle.mp4": 120}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    (tmp_path / "sequence").mkdir()
    jobs = [clip_jobs.ClipJob(source=str(tmp_path / name), relative=name, mode="mediapipe",
                              keypoints_path=None,
                             num_frames=4, image_size=8, cache_path=str(tmp_path / f"{name}.npz"))
            for name in ["small.mp4", "sequence", "large.mp4", "middle.mp4"]]
    assert [job.relative for job in clip_jobs.largest_first(jobs)] == ["large.mp4", "middle.mp4", "small.mp4",
                                                                      "sequence"]


# ----------------------------------------------------------------------------- the file and its checks
def small_feature_set(num_clips: int = 6) -> FeatureSet:
    """A valid in-memory feature set."""
    rng = np.random.default_rng(0)
    return FeatureSet(keypoints=rng.random((num_clips, 3, KEYPOINT_DIM), dtype=np.float32),
                      frames=rng.integers(0, 255, (num_clips, 3, 8, 8, 3), dtype=np.uint8),
                      labels=np.arange(num_clips) % 2, classes=["привет", "你好"],
                      groups=np.array(["a", "b", "c"] * (num_clips // 3)), split=np.array([""] * num_clips),
                      paths=np.array([f"clip{i}.mp4" for i in range(num_clips)]),
                      detected=np.ones((num_clips, 3, 4), bool), meta={"kind": "test"})


def test_save_load_round_trip_and_subset(tmp_path: Path) -> None:
    original = small_feature_set()
    loaded = load_features(save_features(tmp_path / "f.npz", original))
    assert loaded.classes == ["привет", "你好"] and loaded.meta == {"kind": "test"}
    assert np.array_equal(loaded.keypoints,
                          original.keypoints) and np.array_equal(loaded.frames, original.frames)
    part = loaded.subset([1, 4])
    assert len(part) == 2 and part.paths.tolist() == ["clip1.mp4",
                                                      "clip4.mp4"] and part.classes == loaded.classes
    assert part.frames.shape == (2, 3, 8, 8, 3) and part.detected.shape == (2, 3, 4)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left


def write_arrays(path: Path, **changes) -> Path:
    """Save a valid feature file, then rewrite it with some arrays changed (None = removed)."""
    save_features(path, small_feature_set())
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    for name, value in changes.items():
        arrays.pop(name) if value is None else arrays.__setitem__(name, value)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"labels": None}, "missing array.*labels"),
    ({"keypoints": np.zeros((6, 3, 1000), np.float32)}, r"'keypoints' has shape \(6, 3, 1000\)"),
    ({"labels": np.arange(5)}, r"'labels' has shape \(5,\)"),
    ({"frames": np.zeros((6, 2, 8, 8, 3), np.uint8)}, "'frames' has shape"),
    ({"labels": np.array([0, 1, 2, 0, 1, 0])}, "labels range over 0..2 but there are 2 classes"),
])
def test_load_features_explains_what_is_wrong(tmp_path: Path, changes: dict, message: str) -> None:
    path = write_arrays(tmp_path / "bad.npz", **changes)
    with pytest.raises(FeatureFileError, match=message) as error:
        load_features(path)
    assert str(path) in str(error.value) and "python -m utils extract" in str(error.value)


def test_load_features_rejects_nan(tmp_path: Path) -> None:
    keypoints = small_feature_set().keypoints.copy()
    keypoints[2, 1, 7] = np.nan
    with pytest.raises(FeatureFileError, match="NaN/inf values \\(first in clip 2\\)"):
        load_features(write_arrays(tmp_path / "nan.npz", keypoints=keypoints))


def test_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(FeatureFileError, match="not found.*python -m utils extract"):
        load_features(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(FeatureFileError, match="not a readable .npz"):
        load_features(tmp_path / "text.npz")


# ----------------------------------------------------------------------------- hand crops
def hand_at(x: float, y: float, spread: float = 0.05) -> np.ndarray:
    """21 hand landmarks (21, 3) spread around the normalised point (x, y)."""
    angles = np.linspace(0, 2 * np.pi, 21, endpoint=False)
    return np.stack([x + spread * np.cos(angles), y + spread * np.sin(angles), np.zeros(21)], axis=1)


def frame_vector(left: np.ndarray | None = None, right: np.ndarray | None = None,
                 pose: np.ndarray | None = None) -> np.ndarray:
    """One frame's (1662,) vector with the given parts (the others missing, i.e. zeros)."""
    zeros = lambda shape: np.zeros(shape, np.float32)  # noqa: E731
    return keypoints.join_parts(zeros((468, 3)), zeros((33, 4)) if pose is None else pose,
                                zeros((21, 3)) if left is None else left,
                                zeros((21, 3)) if right is None else right)


def moving_square_clip(num_frames: int = 6, height: int = 96,
                       width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Dark frames with a white 12 px square (the 'right hand') crossing the frame, and its keypoints."""
    frames = np.full((num_frames, height, width, 3), 30, np.uint8)
    vectors = []
    for t in range(num_frames):
        cx, cy = 20 + 17 * t, 30 + 8 * t  # pixels
        frames[t, cy - 6:cy + 6, cx - 6:cx + 6] = 255
        vectors.append(frame_vector(right=hand_at(cx / width, cy / height, spread=6 / width)))
    return frames, np.stack(vectors)


def test_hand_crop_follows_the_hand() -> None:
    frames, vectors = moving_square_clip()
    crops = keypoints.hand_crops(frames, vectors, size=16)
    assert crops.shape == (6, 2, 16, 16, 3) and crops.dtype == np.uint8
    centre = crops[:, 1, 5:11, 5:11].reshape(6, -1)
    assert (centre.min(axis=1) > 200).all(), "the white square sits in the middle of every right-hand crop"
    assert (crops[:, 1].reshape(6, -1).mean(axis=1) < 200).all(), "with some dark background around it"
    assert not crops[:, 0].any(), "no left hand and no pose: the left crop is the empty crop"


def test_missing_hand_gives_the_empty_crop_or_the_pose_wrist_box() -> None:
    frames = np.full((2, 64, 64, 3), 90, np.uint8)
    nobody = np.stack([frame_vector(), frame_vector()])
    assert not keypoints.hand_crops(frames, nobody, size=8).any()
    pose = np.zeros((33, 4), np.float32)
    pose[[15, 17, 19, 21]] = [[0.25, 0.5, 0, 1], [0.27, 0.55, 0, 1], [0.23, 0.56, 0, 1], [0.22, 0.53, 0, 1]]
    boxes = keypoints.hand_boxes(frame_vector(pose=pose), 64, 64)
    assert boxes[1, 2] == 0, "the right arm's pose points are missing: no right box"
    assert boxes[0, 2] > 0 and abs(boxes[0, 0] - 0.2425 * 64) < 1e-6 and abs(boxes[0, 1] - 0.535 * 64) < 1e-6
    crops = keypoints.hand_crops(frames[:1], frame_vector(pose=pose)[None], size=8)
    assert (crops[0, 0] == 90).all() and not crops[0, 1].any()
    pose[15, 3] = 0.1  # wrist not visible: no fallback box
    assert keypoints.hand_boxes(frame_vector(pose=pose), 64, 64)[0, 2] == 0


@pytest.mark.parametrize("x, y", [(0.0, 0.0), (0.99, 0.5), (1.0, 1.0), (1.6, -0.4)])
def test_hand_crop_at_the_frame_border_is_padded_not_a_crash(x: float, y: float) -> None:
    frames = np.full((1, 40, 60, 3), 200, np.uint8)
    crops = keypoints.hand_crops(frames, frame_vector(left=hand_at(x, y, 0.05))[None], size=12)
    assert crops.shape == (1, 2, 12, 12, 3)
    inside = crops[0, 0]
    # part of the box overlaps the frame: that part is the frame, the rest black
    if x <= 1 and -0.05 <= y <= 1:
        assert inside.max() == 200 and inside.min() == 0
    else:
        assert not inside.any()


def test_extraction_stores_hand_crops_from_full_resolution_frames(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "synthetic")
    with_crops = load_features(extract(root, tmp_path / "crops.npz", hand_size=8).path)
    assert with_crops.hand_crops.shape == (4, NUM_FRAMES, 2, 8, 8,
                                           3) and with_crops.hand_crops.dtype == np.uint8
    assert with_crops.meta["hand_size"] == 8
    assert with_crops.subset([1, 2]).hand_crops.shape[0] == 2
    report = extract(root, tmp_path / "none.npz", hand_size=0)
    assert report.cache_hits == 0, "the crop size is part of the cache key"
    assert load_features(report.path).hand_crops is None and load_features(report.path).meta["hand_size"] == 0
    with pytest.raises(DatasetError, match="hand_size"):
        extract(root, tmp_path / "bad.npz", hand_size=-1)


# ----------------------------------------------------------------------------- manifest datasets
def test_mixed_manifest_picks_the_extraction_per_clip(tmp_path: Path, fake_mediapipe) -> None:
    root = make_mp_data(tmp_path / "set", num_frames=NUM_FRAMES)  # MP_Data/{hello,no}/{0,1}
    write_video(root / "videos" / "yes0.mp4", clip_frames(120))
    (root / "manifest.csv").write_text(
        "path,label,signer\nMP_Data/hello/0,hello,ann\nvideos/yes0.mp4,yes,bob\nMP_Data/no/1,no,bob\n",
        encoding="utf-8",
    )
    loaded = load_features(extract(root, tmp_path / "mixed.npz").path)
    assert loaded.meta["kind"] == "manifest" and loaded.meta["keypoints_from"] == "mixed"
    assert loaded.paths.tolist() == ["MP_Data/hello/0", "videos/yes0.mp4", "MP_Data/no/1"]
    assert loaded.groups.tolist() == ["ann", "bob", "bob"] and loaded.classes == ["hello", "no", "yes"]
    assert len(fake_mediapipe.calls) == 1  # MediaPipe ran on the one video only
    assert np.allclose(loaded.keypoints[0, 0, POSE], 1.0) and np.allclose(loaded.keypoints[0, 0, FACE], 2.0)
    # the fake extractor: mean grey level (+ a bar)
    assert np.allclose(loaded.keypoints[1], 120 / 255, atol=0.1)
    assert loaded.frames is None  # not every clip has frames


@pytest.mark.real
def test_expanded_real_signers_extract_with_signers_as_groups(tmp_path: Path, real_dir: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "signers"
    expand = real_dir / "mp_data_signers" / "expand.py"
    subprocess.run([sys.executable, str(expand), str(out), "--signer", "luja_manandhar", "--signer",
                    "sarmskunatham"],
                   check=True, capture_output=True)
    loaded = load_features(extract(out, tmp_path / "signers.npz", num_frames=30).path)
    assert loaded.meta["kind"] == "manifest" and loaded.meta["keypoints_from"] == "mp_data"
    assert sorted(set(loaded.groups)) == ["luja_manandhar", "sarmskunatham"] and len(loaded) == 210
    raw = np.load(out / loaded.paths[0] / "0.npy")
    assert np.allclose(loaded.keypoints[0, 0, POSE], raw[:132])
    assert np.allclose(loaded.keypoints[0, 0, FACE], raw[132:1536])
