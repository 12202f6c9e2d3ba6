"""Using a trained model on a new video: sliding windows, one prediction per window, an annotated copy.

A trained run folder (``python -m utils train``) holds ``model.keras`` and ``run.json``; ``run.json`` says
which inputs the model takes, its window length T (``num_frames``), its frame size S (``image_size``) and
the keypoint preprocessing it was trained with (:class:`utils.inputs.InputSpec`). Recognition here
follows exactly the same path as training: MediaPipe Holistic on the full-resolution frames (never on
thumbnails), then :func:`utils.inputs.clip_inputs` with the run's spec.

A new video is cut into windows of T frames (``stride`` frames apart); each window gets one prediction.
A clip shorter than T becomes one window whose frames repeat (as short clips were padded in training).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError, check_can_write
from utils.inputs import InputSpec, clip_inputs

TOP_K = 3
VIDEO_SUFFIXES = (".mp4", ".avi")


@dataclass
class WindowPrediction:
    """The model's answer for one window of frames: frames start..end-1, best label, its probability, top-3."""

    start: int
    end: int  # exclusive
    label: str
    probability: float
    top: list[tuple[str, float]]  # the TOP_K best (label, probability), best first
    padded: bool = False  # True when the clip was shorter than T and frames repeat
    person_fraction: float = 1.0  # share of the window's frames in which MediaPipe found a pose or a hand
    model_ms: float = 0.0  # time of the model call for this window

    def describe(self) -> str:
        """One line: frame range, recognised sign, probability and the top-3."""
        top = ", ".join(f"{label} {p:.2f}" for label, p in self.top)
        note = "  (padded)" if self.padded else ""
        person = "" if self.person_fraction >= 0.5 else f"  (person in {self.person_fraction:.0%} of frames)"
        return (f"frames {self.start:4d}-{self.end - 1:4d}  {self.label:<14} {self.probability:5.2f}   "
                f"top-{len(self.top)}: {top}{note}{person}")


@dataclass
class VideoKeypoints:
    """What one pass over a video gives: keypoints and detected parts per frame, thumbnails, and timings."""

    num_frames: int
    fps: float
    keypoints: np.ndarray | None  # (N, 1662) float32, or None when MediaPipe was not needed
    detected: np.ndarray | None  # (N, 4) bool, face / pose / left hand / right hand
    thumbnails: np.ndarray | None  # (N, S, S, 3) uint8 for frame models, else None
    mediapipe_ms: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------- one window -> one prediction
def window_inputs(spec: Any, keypoints: np.ndarray | None, thumbnails: np.ndarray | None) -> dict[str, np.ndarray]:
    """Model inputs (batch of 1) of one window of frames, prepared exactly as in training."""
    spec = spec if isinstance(spec, InputSpec) else InputSpec.from_run(spec)
    raw: dict[str, np.ndarray] = {}
    if spec.wants("keypoints"):
        raw["keypoints"] = np.asarray(keypoints, dtype=np.float32)[None]
    if spec.wants("frames"):
        raw["frames"] = np.asarray(thumbnails, dtype=np.uint8)[None]
    return clip_inputs(raw, spec)


def _top(probabilities: np.ndarray, classes: Sequence[str], k: int = TOP_K) -> list[tuple[str, float]]:
    """The k most probable (label, probability), best first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(str(classes[i]), float(probabilities[i])) for i in order]


class WindowClassifier:
    """A trained model with its InputSpec and classes: raw frames of one window in, a WindowPrediction out.

    The first call is made twice (the first traces the graph), so that every timed call is a warm one.
    """

    def __init__(self, model: Any, run_info: Mapping[str, Any]) -> None:
        self.model, self.spec = model, InputSpec.from_run(run_info)
        self.classes = list(run_info["classes"])
        self.calls = 0

    def probabilities(self, keypoints: np.ndarray | None, thumbnails: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Class probabilities (C,) of one window and the milliseconds the model call took."""
        inputs = window_inputs(self.spec, keypoints, thumbnails)
        if self.calls == 0:
            self.model.predict_on_batch(inputs)  # warm-up: the first call traces the graph
        self.calls += 1
        started = time.perf_counter()
        probabilities = np.asarray(self.model.predict_on_batch(inputs))[0]
        return probabilities, (time.perf_counter() - started) * 1000

    def __call__(self, start: int, end: int, keypoints: np.ndarray | None, thumbnails: np.ndarray | None,
                 padded: bool = False, person_fraction: float = 1.0) -> WindowPrediction:
        """The prediction for the window of frames start..end-1."""
        probabilities, elapsed = self.probabilities(keypoints, thumbnails)
        top = _top(probabilities, self.classes)
        return WindowPrediction(start=start, end=end, label=top[0][0], probability=top[0][1], top=top,
                                padded=padded, person_fraction=person_fraction, model_ms=elapsed)


# ----------------------------------------------------------------------------- windows
def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """First frame of each window of `window` frames, `stride` apart; the last window ends at the last frame."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


def window_indices(start: int, num_available: int, window: int, num_frames: int) -> tuple[np.ndarray, bool]:
    """Frame indices of the window at `start` resampled to the model's num_frames, and whether frames repeat."""
    from utils.video import sample_frame_indices

    span = min(window, num_available - start)
    indices, padded = sample_frame_indices(span, num_frames)
    return indices + start, padded


def check_positive(value: int, name: str) -> int:
    """value as int; CourseError when it is not a positive whole number."""
    if int(value) != value or int(value) < 1:
        raise CourseError(f"{name} must be a positive whole number of frames, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- reading a video
def read_video_keypoints(video: str | Path, need_keypoints: bool, image_size: int | None,
                         progress: bool = True) -> VideoKeypoints:
    """Run MediaPipe on every frame at full resolution (if needed) and keep image_size thumbnails (if given)."""
    from tqdm.auto import tqdm

    from utils import video as video_module

    info = video_module.video_info(video, count=False)
    keypoints, detected, thumbnails, mp_ms = [], [], [], []
    count, extractor = 0, None
    if need_keypoints:
        from utils.keypoints import HolisticExtractor

        extractor = HolisticExtractor(warn_small_frames=False).open()
    try:
        frames = video_module.iter_frames(video)
        for frame in tqdm(frames, total=info.num_frames or None, desc=f"MediaPipe {Path(video).name}",
                          unit="frame", disable=not progress, leave=False):
            count += 1
            if extractor is not None:
                started = time.perf_counter()
                vector, found = extractor.extract_frame(frame)
                mp_ms.append((time.perf_counter() - started) * 1000)
                keypoints.append(vector)
                detected.append(found)
            if image_size:
                thumbnails.append(video_module.resize_frames(frame[None], image_size)[0])
    finally:
        if extractor is not None:
            extractor.close()
    return VideoKeypoints(num_frames=count, fps=info.fps,
                          keypoints=np.stack(keypoints) if keypoints else None,
                          detected=np.stack(detected) if detected else None,
                          thumbnails=np.stack(thumbnails) if image_size and thumbnails else None,
                          mediapipe_ms=mp_ms)


def _check_video_out(out_path: str | Path | None) -> Path | None:
    """The output video path, checked before any work: a known suffix and a folder that can hold it."""
    if out_path is None:
        return None
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise CourseError(f"{out_path}: the annotated video must end in {' or '.join(VIDEO_SUFFIXES)}")
    check_can_write(out_path)
    return out_path


def latency_line(values_ms: Sequence[float], what: str) -> str:
    """'what: mean X ms, p95 Y ms (n)' for a list of milliseconds."""
    if not values_ms:
        return f"{what}: not measured"
    values = np.asarray(values_ms, dtype=np.float64)
    return f"{what}: mean {values.mean():.1f} ms, p95 {np.percentile(values, 95):.1f} ms (n={len(values)})"


def latency_summary(predictions: Sequence[WindowPrediction], mediapipe_ms: Sequence[float]) -> dict[str, float]:
    """Mean and p95 of MediaPipe ms/frame and model ms/window, as numbers."""
    summary: dict[str, float] = {}
    for name, values in (("mediapipe_ms_per_frame", mediapipe_ms),
                         ("model_ms_per_window", [p.model_ms for p in predictions])):
        if len(values):
            summary[f"{name}_mean"] = float(np.mean(values))
            summary[f"{name}_p95"] = float(np.percentile(values, 95))
    return summary


# ----------------------------------------------------------------------------- predict_video
def predict_video(video: str | Path, model_dir: str | Path, out_path: str | Path | None = None, stride: int = 5,
                  progress: bool = True, window: int | None = None, verbose: bool = True) -> list[WindowPrediction]:
    """Recognise signs in a video with a trained run: one prediction per window of T frames, `stride` apart.

    Prints one line per window (frames, sign, probability, top-3) and the latency of MediaPipe
    (ms/frame) and of the model (ms/window). ``out_path`` (.mp4/.avi) also writes the video with the
    landmarks, the current sign and a bar of the top-3 probabilities. ``window``: how many source frames
    one window spans (default T; e.g. 2*T resamples every other frame, matching clips that were
    subsampled in training).
    """
    from utils.runs import load_run
    from utils.video import video_info

    stride = check_positive(stride, "stride")
    out_path = _check_video_out(out_path)
    video_info(video, count=False)  # a missing, empty or non-video file fails here, before the model loads
    model, run_info = load_run(model_dir)
    num_frames = int(run_info["num_frames"])
    window = check_positive(window or num_frames, "window")
    uses_frames = "frames" in run_info["inputs"]
    need_keypoints = "keypoints" in run_info["inputs"] or out_path is not None
    clip = read_video_keypoints(video, need_keypoints, int(run_info["image_size"]) if uses_frames else None,
                                progress=progress)
    say = print if verbose else (lambda *args, **kwargs: None)
    say(f"{video}: {clip.num_frames} frames at {clip.fps:.1f} fps; {run_info['model']} model, windows of "
        f"{window} frames{'' if window == num_frames else f' resampled to {num_frames}'}, stride {stride}")
    if clip.num_frames < window:
        say(f"note: the video has only {clip.num_frames} frames, fewer than one window ({window}): "
            f"one window, padded by repeating frames")
    person = _person_per_frame(clip)
    if person is not None and not person.any():
        say(f"note: no person found in {video}: MediaPipe saw no face, pose or hands in any of its "
            f"{clip.num_frames} frames, so the predictions below are guesses from empty keypoints")
    predictions = _predict_windows(WindowClassifier(model, run_info), clip, person, window, stride)
    for prediction in predictions:
        say(prediction.describe())
    say(latency_line(clip.mediapipe_ms, "MediaPipe per frame"))
    say(latency_line([p.model_ms for p in predictions], "model per window") + " (first call excluded: warm-up)")
    if out_path is not None:
        write_annotated_video(video, out_path, predictions, clip.keypoints, clip.fps)
        say(f"annotated video -> {out_path}")
    return predictions


def _person_per_frame(clip: VideoKeypoints) -> np.ndarray | None:
    """Bool (N,): MediaPipe found a pose or a hand in the frame; None when MediaPipe was not run."""
    if clip.detected is None:
        return None
    return clip.detected[:, 1:].any(axis=1)


def _predict_windows(classify: WindowClassifier, clip: VideoKeypoints, person: np.ndarray | None,
                     window: int, stride: int) -> list[WindowPrediction]:
    """One WindowPrediction per window of the clip."""
    predictions = []
    for start in window_starts(clip.num_frames, window, stride):
        indices, padded = window_indices(start, clip.num_frames, window, classify.spec.num_frames)
        end = min(start + window, clip.num_frames)
        predictions.append(classify(
            start, end, None if clip.keypoints is None else clip.keypoints[indices],
            None if clip.thumbnails is None else clip.thumbnails[indices], padded=padded,
            person_fraction=1.0 if person is None else float(person[start:end].mean())))
    return predictions


# ----------------------------------------------------------------------------- annotated video
def current_prediction(predictions: Sequence[WindowPrediction], frame_index: int) -> WindowPrediction:
    """The prediction to show at a frame: the latest window that has ended by then (else the first window)."""
    shown = predictions[0]
    for prediction in predictions:
        if prediction.end - 1 <= frame_index:
            shown = prediction
    return shown


def write_annotated_video(video: str | Path, out_path: str | Path, predictions: Sequence[WindowPrediction],
                          keypoints: np.ndarray | None, fps: float, max_side: int = 960,
                          min_side: int = 360) -> Path:
    """Re-read the video and write it with landmarks, the current sign and the top-3 bars (resized to fit
    between min_side and max_side pixels, so that the text stays readable)."""
    from utils.keypoints import draw_prediction
    from utils.video import VideoWriter, fit_frame, iter_frames

    out_path = Path(out_path)
    with VideoWriter(out_path, fps) as writer:
        for index, frame in enumerate(iter_frames(video)):
            vector = keypoints[index] if keypoints is not None and index < len(keypoints) else None
            top = current_prediction(predictions, index).top
            writer.write(draw_prediction(fit_frame(frame, min_side, max_side), top, vector))
    return out_path
