"""Tests for utils.video: reading (incl. broken files), sampling, resizing, clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import frame_level, synthetic_frames
from utils.data import video
from utils.errors import CourseError, VideoError

READERS = [video.read_video, lambda p: list(video.iter_frames(p)), video.video_info, video.load_clip,
           video.count_frames]
READER_IDS = ["read_video", "iter_frames", "video_info", "load_clip", "count_frames"]


def corner_levels(frames: np.ndarray) -> np.ndarray:
    """Mean grey level of the top-left 8x8 corner of each frame (where synthetic clips encode the frame
    index)."""
    return frames[:, :8, :8].reshape(len(frames), -1).mean(axis=1)


# ----------------------------------------------------------------------------- reading
@pytest.mark.parametrize("suffix, tolerance", [(".avi", 3), (".mp4", 6)])
def test_read_video_returns_rgb_frames_in_order(tmp_video, suffix, tolerance):
    path = tmp_video(num_frames=7, height=48, width=64, suffix=suffix)
    frames = video.read_video(path)
    assert frames.shape == (7, 48, 64, 3) and frames.dtype == np.uint8
    expected = [frame_level(i, 7) for i in range(7)]
    np.testing.assert_allclose(corner_levels(frames), expected, atol=tolerance)
    red_square = frames[0, -8:, :8].reshape(-1, 3).mean(axis=0)
    assert red_square[0] > 150 and red_square[2] < 80, f"channels are not RGB: {red_square}"


def test_iter_frames_matches_read_video(tmp_video):
    path = tmp_video(num_frames=5, suffix=".avi")
    streamed = np.stack(list(video.iter_frames(path)))
    np.testing.assert_array_equal(streamed, video.read_video(path))


def test_iter_frames_raises_before_iteration(tmp_path):
    with pytest.raises(VideoError, match="file not found"):
        video.iter_frames(tmp_path / "nothing.mp4")  # no next() needed


def test_video_info_counts_frames(tmp_video):
    path = tmp_video(num_frames=9, height=40, width=56, fps=12.0, suffix=".avi")
    info = video.video_info(path)
    assert (info.num_frames, info.width, info.height, info.frames_counted) == (9, 56, 40, True)
    assert info.fps == pytest.approx(12.0)
    hint = video.video_info(path, count=False)
    assert hint.frames_counted is False and hint.num_frames == 9
    assert video.count_frames(path) == 9


# ----------------------------------------------------------------------------- broken files
def _missing(tmp_path: Path, tmp_video) -> Path:
    return tmp_path / "missing.mp4"


def _empty(tmp_path: Path, tmp_video) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def _text(tmp_path: Path, tmp_video) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    return path


def _truncated(tmp_path: Path, tmp_video) -> Path:
    source = tmp_video(num_frames=10, suffix=".mp4")  # mp4v puts its index (moov) at the end
    path = tmp_path / "truncated.mp4"
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.3)])
    return path


def _folder(tmp_path: Path, tmp_video) -> Path:
    return tmp_path


BROKEN = {"missing": (_missing, "file not found"), "empty": (_empty, "file is empty"),
          "text": (_text, "OpenCV could not"), "truncated": (_truncated, "OpenCV could not"),
          "folder": (_folder, "not a file")}


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_raise_video_error_naming_file_and_cause(tmp_path, tmp_video, reader, case):
    make, cause = BROKEN[case]
    path = make(tmp_path, tmp_video)
    with pytest.raises(VideoError) as error:
        reader(path)
    assert str(path) in str(error.value) and cause in str(error.value)
    assert isinstance(error.value, CourseError)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.97])
@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_truncated_files_never_crash(tmp_path, tmp_video, suffix, fraction):
    source = tmp_video(num_frames=10, suffix=suffix)
    path = tmp_path / f"cut{suffix}"
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    try:
        frames = video.read_video(path)
    except VideoError:
        return
    assert 1 <= len(frames) <= 10 and frames.shape[1:] == (48, 64, 3)
    clip = video.load_clip(path, num_frames=4, image_size=16)
    assert clip.num_source_frames == len(frames)
    assert clip.indices.max() == len(frames) - 1


def test_truncated_real_mp4_returns_the_frames_it_has(real_dir, tmp_path):
    source = real_dir / "asl_clips" / "hello" / "kirichovka.mp4"  # index (moov) at the start: parts decode
    path = tmp_path / "first_30_percent.mp4"
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.3)])
    full_count = video.count_frames(source)
    frames = video.read_video(path)
    assert 0 < len(frames) < full_count
    hint = video.video_info(path, count=False).num_frames
    print(f"\ntruncated to 30%: container says {hint} frames, {len(frames)} decode (full clip {full_count})")
    clip = video.load_clip(path, num_frames=8)
    assert clip.num_source_frames == len(frames) and clip.indices[-1] == len(frames) - 1
    np.testing.assert_array_equal(clip.frames[-1], frames[-1])


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("num_available, num_frames, expected, padded", [
    (1, 1, [0], False),
    (10, 1, [0], False),
    (1, 4, [0, 0, 0, 0], True),
    (3, 5, [0, 1, 1, 2, 2], True),  # positions 0, .5, 1, 1.5, 2 rounded half up
    (5, 5, [0, 1, 2, 3, 4], False),
    (9, 5, [0, 2, 4, 6, 8], False),
    (10, 4, [0, 3, 6, 9], False),
])
def test_sample_frame_indices_cases(num_available, num_frames, expected, padded):
    indices, was_padded = video.sample_frame_indices(num_available, num_frames)
    assert indices.tolist() == expected and was_padded is padded
    assert indices.dtype == np.int64


def test_sample_frame_indices_properties_over_many_lengths():
    for num_frames in (2, 8, 30):
        for num_available in range(1, 200):
            indices, padded = video.sample_frame_indices(num_available, num_frames)
            assert len(indices) == num_frames and padded == (num_available < num_frames)
            assert indices[0] == 0 and indices[-1] == num_available - 1
            assert np.all(np.diff(indices) >= 0)
            if not padded:
                assert len(set(indices.tolist())) == num_frames, (num_available, num_frames)
            else:
                assert set(indices.tolist()) == set(range(num_available)), (
                    "a short clip must use all its frames"
                )


@pytest.mark.parametrize("num_available, num_frames", [(0, 5), (-1, 5), (5, 0), (5, -2)])
def test_sample_frame_indices_rejects_non_positive(num_available, num_frames):
    with pytest.raises(ValueError, match="at least 1"):
        video.sample_frame_indices(num_available, num_frames)


# ----------------------------------------------------------------------------- resizing
def test_resize_frames_squashes_to_square():
    frames = np.zeros((3, 40, 100, 3), dtype=np.uint8)
    frames[:, :, 50:] = 200  # right half bright
    small = video.resize_frames(frames, image_size=10)
    assert small.shape == (3, 10, 10, 3) and small.dtype == np.uint8
    assert np.all(small[:, :, :5] == 0) and np.all(small[:, :, 5:] == 200)  # squashed, not cropped


@pytest.mark.parametrize("shape", [(2, 30, 20, 3), (1, 64, 64, 3), (4, 200, 300, 3)])
@pytest.mark.parametrize("image_size", [8, 64])
def test_resize_frames_shapes(shape, image_size):
    frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert video.resize_frames(frames, image_size).shape == (shape[0], image_size, image_size, 3)


@pytest.mark.parametrize("frames, image_size", [(np.zeros((5, 5, 3), np.uint8), 4),
                                                (np.zeros((1, 5, 5), np.uint8), 4),
                                                (np.zeros((1, 5, 5, 3), np.uint8), 0)])
def test_resize_frames_rejects_bad_input(frames, image_size):
    with pytest.raises(ValueError):
        video.resize_frames(frames, image_size)


# ----------------------------------------------------------------------------- clips
def test_load_clip_samples_the_right_source_frames(tmp_video):
    path = tmp_video(num_frames=20, height=60, width=80, fps=20.0, suffix=".avi")
    clip = video.load_clip(path, num_frames=6, image_size=16)
    assert clip.indices.tolist() == video.sample_frame_indices(20, 6)[0].tolist()
    assert clip.frames.shape == (6, 60, 80, 3) and clip.thumbnails.shape == (6, 16, 16, 3)
    assert clip.num_frames == 6 and clip.num_source_frames == 20 and not clip.padded
    assert clip.fps == pytest.approx(20.0) and clip.path == path
    np.testing.assert_allclose(corner_levels(clip.frames), [frame_level(i, 20) for i in clip.indices], atol=3)


def test_load_clip_pads_short_clips(tmp_video):
    path = tmp_video(num_frames=3, suffix=".avi")
    clip = video.load_clip(path, num_frames=7, image_size=8)
    assert clip.padded and clip.num_source_frames == 3
    assert clip.frames.shape[0] == 7 and clip.thumbnails.shape == (7, 8, 8, 3)
    np.testing.assert_array_equal(clip.frames[0], clip.frames[1])  # index 0 repeats


def test_load_clip_matches_read_video(tmp_video):
    path = tmp_video(num_frames=12, suffix=".mp4")
    all_frames = video.read_video(path)
    clip = video.load_clip(path, num_frames=5, image_size=32)
    np.testing.assert_array_equal(clip.frames, all_frames[clip.indices])
    np.testing.assert_array_equal(clip.thumbnails, video.resize_frames(all_frames[clip.indices], 32))


# ----------------------------------------------------------------------------- writing
def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError):
        video.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        video.write_video(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), dtype=np.uint8))


def test_write_then_read_round_trip(tmp_path):
    frames = synthetic_frames(6, 32, 48)
    path = video.write_video(tmp_path / "sub" / "clip.avi", frames, fps=10)
    assert path.exists() and not list(path.parent.glob(".*tmp*"))
    back = video.read_video(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4


# ----------------------------------------------------------------------------- shrinking frames for MediaPipe
@pytest.mark.parametrize("height, width, max_side, expected", [
    (1080, 1920, 640, (360, 640)), (1920, 1080, 640, (640, 360)), (720, 1280, 480, (270, 480)),
    (333, 1000, 640, (213, 640)), (1080, 1920, 1920, (1080, 1920))])
def test_shrink_frame_keeps_the_aspect_ratio(height, width, max_side, expected):
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    shrunk = video.shrink_frame(frame, max_side)
    assert shrunk.shape == (*expected, 3) and shrunk.dtype == np.uint8
    assert shrunk.shape[1] / shrunk.shape[0] == pytest.approx(width / height, rel=0.01)


@pytest.mark.parametrize("max_side", [0, 640, 2000])
def test_shrink_frame_never_enlarges(max_side):
    frame = np.full((320, 640, 3), 7, dtype=np.uint8)
    assert video.shrink_frame(frame, max_side) is frame  # fits already (or 0 = full resolution): untouched


def test_shrink_frame_averages_pixels_and_rejects_negative_sizes():
    frame = np.zeros((4, 8, 3), dtype=np.uint8)
    frame[:, ::2] = 200  # one-pixel stripes average to grey, not to a sampled stripe
    assert np.all(video.shrink_frame(frame, 4) == 100)
    with pytest.raises(ValueError, match="max_side"):
        video.shrink_frame(frame, -1)


# ----------------------------------------------------------------------------- reading ahead in a thread
def test_read_ahead_yields_the_same_frames_in_order(tmp_video):
    path = tmp_video(num_frames=9, suffix=".avi")
    plain = list(video.iter_frames(path))
    ahead = list(video.read_ahead(video.iter_frames(path), max_queued=2))
    assert len(ahead) == len(plain) == 9
    for mine, theirs in zip(ahead, plain):
        np.testing.assert_array_equal(mine, theirs)


def _counting_source(log: dict, fail_at: int | None = None):
    """Yields 0, 1, 2, ... forever (or raises at fail_at), recording what was read and whether it was
    closed."""
    try:
        index = 0
        while True:
            if index == fail_at:
                raise VideoError(f"frame {index}: decoder gave up")
            log["read"] = index + 1
            yield index
            index += 1
    finally:
        log["closed"] = True


def _reader_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "read_ahead"]


def test_read_ahead_raises_the_readers_error_after_the_frames_before_it():
    log: dict = {}
    received = []
    with pytest.raises(VideoError, match="frame 3: decoder gave up"):
        for item in video.read_ahead(_counting_source(log, fail_at=3), max_queued=2):
            received.append(item)
    assert received == [0, 1, 2] and log["closed"] and not _reader_threads()


def test_read_ahead_stops_the_thread_and_closes_the_source_on_early_exit():
    import time

    log: dict = {}
    frames = video.read_ahead(_counting_source(log), max_queued=3)
    received = [next(frames), next(frames)]
    time.sleep(0.2)  # let the reader fill its queue
    assert log["read"] <= 2 + 3 + 1  # bounded: what was taken, the queue, and one waiting to be put
    frames.close()  # what `break` or an error in the consumer's loop does
    assert received == [0, 1] and log["closed"] and not _reader_threads()


def test_read_ahead_releases_a_video_on_early_exit(tmp_video):
    path = tmp_video(num_frames=20, suffix=".avi")
    source = video.iter_frames(path)
    for index, _ in enumerate(video.read_ahead(source, max_queued=2)):
        if index == 1:
            break
    assert source.gi_frame is None  # the decoding generator ran its `finally` (capture.release())
    with pytest.raises(ValueError, match="max_queued"):
        next(video.read_ahead(iter([]), max_queued=0))
