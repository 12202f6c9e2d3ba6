"""Reading, sampling, resizing and writing video clips (RGB uint8 frames). Knows nothing of MediaPipe or
models.

Frames are always RGB ``uint8`` arrays, a clip is ``(T, H, W, 3)``. Reading goes frame by frame until
the decoder stops, because the frame count a container announces (``CAP_PROP_FRAME_COUNT``) is only a
hint: some codecs and truncated files report more (or fewer) frames than can be decoded.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from utils.config import IMAGE_SIZE, NUM_FRAMES
from utils.errors import VideoError

DEFAULT_FPS = 30.0  # used when a container does not say its frame rate
READ_AHEAD = 8  # frames a background decoder may hold ready (read_ahead): ~50 MB at 1080p
Item = TypeVar("Item")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame count, frame rate and frame size."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    frames_counted: bool  # True: num_frames was counted by decoding; False: the container's (unreliable) hint


@dataclass
class Clip:
    """A clip sampled to a fixed number of frames: full-resolution frames (for MediaPipe) and thumbnails (for
    the ConvLSTM)."""

    path: Path
    frames: np.ndarray  # (T, H, W, 3) uint8, full resolution
    thumbnails: np.ndarray  # (T, S, S, 3) uint8
    indices: np.ndarray  # (T,) source frame index of each sampled frame
    padded: bool  # True when the source had fewer than T frames, so some frames repeat
    num_source_frames: int
    fps: float

    @property
    def num_frames(self) -> int:
        """Number of sampled frames T."""
        return len(self.indices)


# ----------------------------------------------------------------------------- opening and reading
def _open_capture(path: str | Path):
    """Open a video with OpenCV, raising VideoError for a missing, empty or unreadable file."""
    import cv2

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: file not found (check the path; datasets live under data/, see README)")
    if not path.is_file():
        raise VideoError(f"{path}: not a file but a folder; pass the path of one video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty (0 bytes); re-download or re-record it")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: OpenCV could not open it: not a video, truncated, or a codec this OpenCV "
                         "build lacks; check that it plays in a video player, or re-encode it to H.264 .mp4")
    return capture


def _no_frames_error(path: str | Path) -> VideoError:
    """The error for a file that opens but yields no frame."""
    return VideoError(f"{path}: OpenCV could not decode any frame: not a video or truncated; "
                      "check that it plays in a video player, or re-download it")


def _to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """Convert one decoded OpenCV frame (BGR, or grey/BGRA for odd codecs) to RGB uint8."""
    import cv2

    if frame_bgr.ndim == 2:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
    if frame_bgr.shape[-1] == 4:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the RGB uint8 frames (H, W, 3) of a video one by one, until the decoder stops.

    Raises :class:`VideoError` at once for a missing, empty or unreadable file, and for a file that
    decodes no frame at all. A truncated file that still decodes some frames yields those frames.
    """
    capture = _open_capture(path)
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise _no_frames_error(path)
    return _frames_from(capture, first)


def _frames_from(capture, first: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the already-read first frame, then the rest of the capture, releasing it at the end."""
    try:
        yield _to_rgb(first)
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            yield _to_rgb(frame)
    finally:
        capture.release()


def read_ahead(items: Iterable[Item], max_queued: int = READ_AHEAD) -> Iterator[Item]:
    """Yield the items of ``items`` (e.g. :func:`iter_frames`) in order while a background thread reads ahead.

    At most ``max_queued`` items wait in the queue, so memory stays bounded. An error raised while reading
    is raised here, after the items read before it. Leaving early (``break``, an error in the loop, closing
    this generator) stops the thread and closes ``items``, so a video file or camera is released at once.
    OpenCV decodes without holding Python's lock, so decoding overlaps with MediaPipe and the model.
    """
    import queue
    import threading

    if int(max_queued) < 1:
        raise ValueError(f"max_queued must be at least 1, got {max_queued}")
    waiting: queue.Queue = queue.Queue(maxsize=int(max_queued))
    stop = threading.Event()
    source = iter(items)

    def offer(entry: tuple[bool, Any]) -> bool:
        """Put an entry in the queue unless the consumer has left; False when it has."""
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        """Read every item into the queue, then an end marker (False, error or None)."""
        try:
            for item in source:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            offer((False, error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read_ahead", daemon=True)
    thread.start()
    try:
        while True:
            has_item, item = waiting.get()
            if not has_item:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def read_video(path: str | Path) -> np.ndarray:
    """Read every decodable frame of a video as RGB uint8 (N, H, W, 3).

    Reads until the decoder stops (the container's frame count is not trusted). A truncated file that
    still decodes some frames returns those frames; one that decodes none raises :class:`VideoError`,
    as do missing, empty and non-video files. Long videos take N x H x W x 3 bytes: use
    :func:`iter_frames` or :func:`load_clip` for those.
    """
    frames = list(iter_frames(path))
    shapes = {frame.shape for frame in frames}
    if len(shapes) > 1:
        raise VideoError(f"{path}: frame size changes inside the video ({sorted(shapes)}); re-encode it "
                         "with one frame size")
    return np.stack(frames)


def _frame_count_hint(capture) -> int:
    """The frame count the container announces (may be wrong or 0)."""
    import cv2

    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if np.isfinite(count) and count > 0 else 0


def capture_fps(capture) -> float:
    """The container's frame rate, or DEFAULT_FPS when it does not say."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS


def count_frames(path: str | Path) -> int:
    """Count the decodable frames of a video (decodes all of it; skips only the colour conversion)."""
    capture = _open_capture(path)
    try:
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise _no_frames_error(path)
    return count


def video_info(path: str | Path, count: bool = True) -> VideoInfo:
    """Frame count, fps and size of a video; ``count=False`` trusts the container's frame-count hint (fast,
    may lie)."""
    capture = _open_capture(path)
    try:
        fps = capture_fps(capture)
        hint = _frame_count_hint(capture)
        ok, first = capture.read()
    finally:
        capture.release()
    if not ok or first is None:
        raise _no_frames_error(path)
    height, width = first.shape[:2]  # the decoded frame, not the container's claim
    if count or hint == 0:
        return VideoInfo(Path(path), count_frames(path), fps, width, height, frames_counted=True)
    return VideoInfo(Path(path), hint, fps, width, height, frames_counted=False)


# ----------------------------------------------------------------------------- sampling and resizing
def sample_frame_indices(num_available: int, num_frames: int) -> tuple[np.ndarray, bool]:
    """Pick exactly ``num_frames`` source indices spread evenly over ``num_available`` frames, first and last
    included.

    Returns ``(indices, padded)``: ``indices`` is int64 (num_frames,), non-decreasing; ``padded`` is True
    when the clip is shorter than ``num_frames``, so that some frames repeat (spread over the clip,
    not piled up at its end). With ``num_frames == 1`` the first frame is picked.
    """
    if int(num_available) < 1:
        raise ValueError("num_available must be at least 1 (a clip with no frames cannot be sampled), got "
                         f"{num_available}")
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    positions = np.linspace(0, int(num_available) - 1, int(num_frames))
    indices = np.floor(positions + 0.5).astype(np.int64)  # round half up, so equal steps stay equal
    return indices, int(num_available) < int(num_frames)


def resize_frames(frames: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize RGB frames (T, H, W, 3) to (T, S, S, 3) uint8 squares with ``cv2.INTER_AREA``.

    The frame is squashed to a square (aspect ratio not kept, no cropping), as the original project did.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    size = int(image_size)
    resized = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        frame = frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
        resized[i] = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return resized


def fit_frame(frame: np.ndarray, min_side: int = 360, max_side: int = 960) -> np.ndarray:
    """An RGB frame resized (even sides) so that its longer side is at most max_side and, if possible, its
    shorter side at least min_side; unchanged when it already fits."""
    import cv2

    height, width = frame.shape[:2]
    if max(height, width) > max_side:
        factor = max_side / max(height, width)
    elif min(height, width) < min_side:
        factor = min(min_side / min(height, width), max_side / max(height, width))
    else:
        return frame
    size = (int(round(width * factor)) // 2 * 2, int(round(height * factor)) // 2 * 2)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def shrink_frame(frame: np.ndarray, max_side: int) -> np.ndarray:
    """An RGB frame resized (``cv2.INTER_AREA``, aspect ratio kept) so its longer side is at most
    ``max_side``.

    Never enlarges: a frame that already fits, and ``max_side=0`` (no limit), come back unchanged (the same
    array).
    """
    import cv2

    if int(max_side) < 0:
        raise ValueError("max_side must be 0 (full resolution) or a positive number of pixels, got "
                         f"{max_side}")
    height, width = frame.shape[:2]
    longest = max(height, width)
    if not max_side or longest <= int(max_side):
        return frame
    factor = int(max_side) / longest
    size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _read_selected_frames(path: str | Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """Decode a whole video, keep the RGB frames whose index is in ``wanted``; also return the true frame
    count."""
    capture = _open_capture(path)
    selected: dict[int, np.ndarray] = {}
    count = 0
    try:
        while capture.grab():
            if count in wanted:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break
                selected[count] = _to_rgb(frame)
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise _no_frames_error(path)
    return selected, count


def load_clip(path: str | Path, num_frames: int = NUM_FRAMES, image_size: int = IMAGE_SIZE) -> Clip:
    """Read a video into a :class:`Clip` of ``num_frames`` evenly spaced frames plus their ``image_size``
    thumbnails.

    Only the sampled frames are kept in memory. The container's frame count is used as a first guess
    and checked while decoding; when it was wrong the clip is sampled again from the true count. A
    truncated file that still decodes some frames is sampled from the frames it has.
    """
    capture = _open_capture(path)
    try:
        fps = capture_fps(capture)
        hint = _frame_count_hint(capture)
    finally:
        capture.release()
    num_available = hint if hint > 0 else count_frames(path)
    indices, padded = sample_frame_indices(num_available, num_frames)
    selected, true_count = _read_selected_frames(path, set(indices.tolist()))
    if true_count != num_available or any(int(i) not in selected for i in indices):
        num_available = true_count
        indices, padded = sample_frame_indices(num_available, num_frames)
        selected, _ = _read_selected_frames(path, set(indices.tolist()))
    if any(int(i) not in selected for i in indices):
        raise VideoError(f"{path}: OpenCV stopped decoding part-way through the file (corrupt or truncated); "
                         "re-download or re-encode it")
    shapes = {frame.shape for frame in selected.values()}
    if len(shapes) != 1:
        raise VideoError(f"{path}: frame size changes inside the video ({sorted(shapes)}); re-encode it "
                         "with one frame size")
    frames = np.stack([selected[int(i)] for i in indices])
    return Clip(path=Path(path), frames=frames, thumbnails=resize_frames(frames, image_size), indices=indices,
                padded=padded, num_source_frames=num_available, fps=fps)


# ----------------------------------------------------------------------------- writing
class VideoWriter:
    """Write RGB uint8 frames one by one to an .mp4 (mp4v) or .avi (MJPG); the file appears only when all went
    well.

    Use as a context manager: frames go to a temporary file that is renamed to ``path`` on a clean exit
    and deleted when an error leaves the block. The frame size is taken from the first frame.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS) -> None:
        self.path, self.fps = Path(path), float(fps)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self.writer: Any = None

    def _open(self, width: int, height: int) -> None:
        """Open the OpenCV writer for frames of this size; VideoError when it cannot."""
        import cv2

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (width, height))
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: OpenCV cannot open a video writer here (is the folder writable?)")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3)."""
        import cv2

        if self.writer is None:
            self._open(frame_rgb.shape[1], frame_rgb.shape[0])
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self.writer is not None:
            self.writer.release()
        if exc_type is None and self.writer is not None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) to an .mp4 (mp4v) or .avi (MJPG), atomically (temp file, then
    rename)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def pan_zoom_clip(image: np.ndarray, num_frames: int = 16, zoom: float = 1.3,
                  output_size: int | None = None) -> np.ndarray:
    """A short "camera move" over a still RGB image (slow zoom in and pan), as (T, H, W, 3) uint8 frames."""
    import cv2

    image = np.asarray(image)
    height, width = image.shape[:2]
    output_size = output_size or min(height, width)
    frames = []
    for step in np.linspace(0.0, 1.0, num_frames):
        scale = 1.0 + (zoom - 1.0) * step
        crop_h, crop_w = int(height / scale), int(width / scale)
        top = int((height - crop_h) * (0.5 - 0.3 * step))
        left = int((width - crop_w) * (0.5 + 0.3 * np.sin(np.pi * step)))
        top, left = max(0, min(top, height - crop_h)), max(0, min(left, width - crop_w))
        crop = image[top:top + crop_h, left:left + crop_w]
        frames.append(cv2.resize(crop, (output_size, output_size), interpolation=cv2.INTER_AREA))
    return np.stack(frames).astype(np.uint8)


# ----------------------------------------------------------------------------- square crops
def crop_square(frame: np.ndarray, centre_x: float, centre_y: float, side: float, size: int) -> np.ndarray:
    """The square of ``side`` pixels centred on (centre_x, centre_y), resized to (size, size, 3) uint8.

    The part of the square outside the frame is black (zero padding), so a box at the frame border keeps
    its shape and position. ``side <= 0`` (or NaN) gives the empty crop: all zeros.
    """
    import cv2

    empty = np.zeros((int(size), int(size), 3), dtype=np.uint8)
    if not np.isfinite([centre_x, centre_y, side]).all() or side <= 0:
        return empty
    height, width = frame.shape[:2]
    side_px = int(min(max(1, round(side)), 4 * max(height, width)))
    left, top = int(np.floor(centre_x - side_px / 2 + 0.5)), int(np.floor(centre_y - side_px / 2 + 0.5))
    square = np.zeros((side_px, side_px, 3), dtype=np.uint8)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side_px, width), min(top + side_px, height)
    if x1 <= x0 or y1 <= y0:
        return empty
    square[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0:y1, x0:x1]
    interpolation = cv2.INTER_AREA if side_px >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (int(size), int(size)), interpolation=interpolation)
