"""Using a trained model on a new video: sliding windows, one prediction per window, one answer for the clip.

A trained run folder (``python -m utils train``) holds ``model.keras`` and ``run.json``; ``run.json`` says
which inputs the model takes, its T (``num_frames``) and S (``image_size``), the preprocessing it was
trained with, and how its training clips were sampled (``sampling``): all read as one
:class:`utils.inputs.InputSpec`. Recognition follows exactly the path of training: MediaPipe Holistic
on the full-resolution frames (never on thumbnails), frames resized to the stored thumbnail size, each
window sampled evenly to the features file's frame count as ``extract`` did, then
:func:`utils.inputs.clip_inputs` (T, S, preprocessing).

A window spans, by default, what a training clip spanned (its median duration, at the video's frame
rate), so a sign is shown at the speed the model learnt it. Windows are ``stride`` frames apart; a
clip shorter than a window becomes one window (whose frames repeat if it has fewer than the features
file's T, as short clips were padded in training). The clip's answer is the mean of the window
probabilities (``CLIP_ANSWER``, chosen by measurement).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError, check_can_write
from utils.inputs.spec import InputSpec, clip_inputs

TOP_K = 3
VIDEO_SUFFIXES = (".mp4", ".avi")


@dataclass
class WindowPrediction:
    """The model's answer for one window of frames: frames start..end-1, best label, its probability,
    top-3."""

    start: int
    end: int  # exclusive
    label: str
    probability: float
    top: list[tuple[str, float]]  # the TOP_K best (label, probability), best first
    padded: bool = False  # True when the clip was shorter than T and frames repeat
    person_fraction: float = 1.0  # share of the window's frames in which MediaPipe found a pose or a hand
    model_ms: float = 0.0  # time of the model call for this window
    probabilities: list[float] = field(default_factory=list)  # every class, in the model's class order

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
    # (N, 2, C, C, 3) uint8 from the full-resolution frames, for hand models
    hand_crops: np.ndarray | None = None
    seconds: float = 0.0  # wall time of the whole pass: decoding, MediaPipe, thumbnails and crops


# ----------------------------------------------------------------------------- one window -> one prediction
def window_inputs(spec: Any, keypoints: np.ndarray | None, thumbnails: np.ndarray | None,
                  hand_crops: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Model inputs (batch of 1) of one window of frames, prepared exactly as in training."""
    spec = spec if isinstance(spec, InputSpec) else InputSpec.from_run(spec)
    raw: dict[str, np.ndarray] = {}
    if spec.wants("keypoints") or (spec.draws_landmarks and spec.wants("frames")):
        raw["keypoints"] = np.asarray(keypoints, dtype=np.float32)[None]
    if spec.wants("frames"):
        raw["frames"] = np.asarray(thumbnails, dtype=np.uint8)[None]
    if spec.wants("hands"):
        raw["hands"] = np.asarray(hand_crops, dtype=np.uint8)[None]
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

    def probabilities(self, keypoints: np.ndarray | None, thumbnails: np.ndarray | None,
                      hand_crops: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Class probabilities (C,) of one window and the milliseconds the model call took."""
        inputs = window_inputs(self.spec, keypoints, thumbnails, hand_crops)
        if self.calls == 0:
            self.model.predict_on_batch(inputs)  # warm-up: the first call traces the graph
        self.calls += 1
        started = time.perf_counter()
        probabilities = np.asarray(self.model.predict_on_batch(inputs))[0]
        return probabilities, (time.perf_counter() - started) * 1000

    def __call__(self, start: int, end: int, keypoints: np.ndarray | None, thumbnails: np.ndarray | None,
                 padded: bool = False, person_fraction: float = 1.0,
                 hand_crops: np.ndarray | None = None) -> WindowPrediction:
        """The prediction for the window of frames start..end-1."""
        probabilities, elapsed = self.probabilities(keypoints, thumbnails, hand_crops)
        top = _top(probabilities, self.classes)
        return WindowPrediction(start=start, end=end, label=top[0][0], probability=top[0][1], top=top,
                                padded=padded, person_fraction=person_fraction, model_ms=elapsed,
                                probabilities=[float(p) for p in probabilities])


# ----------------------------------------------------------------------------- windows
def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """First frame of each window of `window` frames, `stride` apart; the last window ends at the last
    frame."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


def window_indices(start: int, num_available: int, window: int, num_frames: int) -> tuple[np.ndarray, bool]:
    """Frame indices of the window at `start` resampled to the model's num_frames, and whether frames
    repeat."""
    from utils.data.video import sample_frame_indices

    span = min(window, num_available - start)
    indices, padded = sample_frame_indices(span, num_frames)
    return indices + start, padded


def mediapipe_size_for(spec: InputSpec, requested: int | None = None) -> int:
    """The longer side, in pixels, of the frames MediaPipe sees (0 = full resolution): ``requested`` when
    given, else what the run's features were extracted with, else the course default
    (``config.MEDIAPIPE_SIZE``)."""
    from utils.config import MEDIAPIPE_SIZE

    for size in (requested, spec.mediapipe_size):
        if size is not None:
            if int(size) != size or int(size) < 0:
                raise CourseError("mediapipe_size must be 0 (full resolution) or a positive number of "
                                  f"pixels, got {size!r}")
            return int(size)
    return MEDIAPIPE_SIZE


def check_positive(value: int, name: str) -> int:
    """value as int; CourseError when it is not a positive whole number."""
    if int(value) != value or int(value) < 1:
        raise CourseError(f"{name} must be a positive whole number of frames, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- reading a video
def read_video_keypoints(video: str | Path, need_keypoints: bool, image_size: int | None,
                         progress: bool = True, hand_size: int | None = None,
                         mediapipe_size: int = 0) -> VideoKeypoints:
    """Run MediaPipe on every frame (if needed) and keep image_size thumbnails (if given) and hand_size crops
    of both hands, cut from the full-resolution frame (if given; needs the keypoints).

    MediaPipe sees each frame shrunk to a longer side of ``mediapipe_size`` (0 = full resolution); frames
    are decoded in a background thread (:func:`utils.video.read_ahead`) while MediaPipe works."""
    from tqdm.auto import tqdm

    from utils.data import video as video_module
    from utils.data.keypoints import hand_crops as cut_hands

    started_pass = time.perf_counter()
    info = video_module.video_info(video, count=False)
    keypoints, detected, thumbnails, crops, mp_ms = [], [], [], [], []
    count, extractor = 0, None
    frames = video_module.read_ahead(video_module.iter_frames(video))  # an unreadable file fails here
    if need_keypoints:
        from utils.data.keypoints import HolisticExtractor

        extractor = HolisticExtractor(warn_small_frames=False, max_side=mediapipe_size).open()
    try:
        for frame in tqdm(frames, total=info.num_frames or None, desc=f"MediaPipe {Path(video).name}",
                          unit="frame", disable=not progress, leave=False):
            count += 1
            if extractor is not None:
                started = time.perf_counter()
                vector, found = extractor.extract_frame(frame)
                mp_ms.append((time.perf_counter() - started) * 1000)
                keypoints.append(vector)
                detected.append(found)
                if hand_size:
                    crops.append(cut_hands(frame[None], vector[None], hand_size)[0])
            if image_size:
                thumbnails.append(video_module.resize_frames(frame[None], image_size)[0])
    finally:
        frames.close()
        if extractor is not None:
            extractor.close()
    return VideoKeypoints(num_frames=count, fps=info.fps,
                          keypoints=np.stack(keypoints) if keypoints else None,
                          detected=np.stack(detected) if detected else None,
                          thumbnails=np.stack(thumbnails) if image_size and thumbnails else None,
                          mediapipe_ms=mp_ms, hand_crops=np.stack(crops) if crops else None,
                          seconds=time.perf_counter() - started_pass)


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


def latency_summary(predictions: Sequence[WindowPrediction],
                    mediapipe_ms: Sequence[float]) -> dict[str, float]:
    """Mean and p95 of MediaPipe ms/frame and model ms/window, as numbers."""
    summary: dict[str, float] = {}
    for name, values in (("mediapipe_ms_per_frame", mediapipe_ms),
                         ("model_ms_per_window", [p.model_ms for p in predictions])):
        if len(values):
            summary[f"{name}_mean"] = float(np.mean(values))
            summary[f"{name}_p95"] = float(np.percentile(values, 95))
    return summary


# ----------------------------------------------------------------------------- window and stride
def frames_of(span: int | float | str | None, fps: float, name: str) -> int | None:
    """A window or stride in frames, given in frames (30, "30") or seconds ("1.5s") at `fps`; None stays
    None."""
    if span is None:
        return None
    text = str(span).strip().lower()
    try:
        if text.endswith("s"):
            seconds = float(text[:-1])
            if not np.isfinite(seconds) or seconds <= 0:
                raise ValueError(text)
            return max(1, int(round(seconds * fps)))
        value = float(text)
    except ValueError:
        raise CourseError(f"{name} must be a number of frames (e.g. 30) or of seconds (e.g. 1.5s), "
                          f"got {span!r}") from None
    return check_positive(value, name)


# ----------------------------------------------------------------------------- the answer for the clip
ANSWER_METHODS = ("mean", "whole")
#: A clip at most this many training-clip spans long counts as "about one sign" for the "whole" answer.
ONE_SIGN_SPANS = 2.0
#: The default answer, chosen by measurement (``benchmarks/clip_answer.py``; README, "Using a trained model"):
#: over 150 synthetic one-sign clips of new signers the mean of windows was right 136 times, the whole clip
#: 127 (the gap is in clips with stillness before and after the sign: 28 vs 21 of 30); over the 24 real ASL
#: videos, 13 vs 14 — one clip, within noise.
CLIP_ANSWER = "mean"


@dataclass
class ClipAnswer:
    """One answer for a whole clip: the sign, its probability, the top-3, and how it was reached."""

    label: str
    probability: float
    top: list[tuple[str, float]]
    probabilities: list[float]  # every class, in the model's class order
    method: str  # "whole clip" or "mean of windows"
    num_windows: int  # windows that went into the answer (1 for the whole clip)

    def describe(self) -> str:
        """The last line predict prints: the clip's sign, probability, top-3 and how it was reached."""
        top = ", ".join(f"{label} {p:.2f}" for label, p in self.top)
        how = (
            "the whole clip as one window"
            if self.method == "whole clip"
            else f"mean of {self.num_windows} windows"
        )
        return f"clip: {self.label} {self.probability:.2f}   top-{len(self.top)}: {top}   ({how})"


def clip_answer(windows: Sequence[WindowPrediction], whole: WindowPrediction | None,
                classes: Sequence[str]) -> ClipAnswer:
    """The clip's answer: the whole-clip window when given, else the mean of the window probabilities."""
    if whole is not None:
        probabilities, method, count = np.asarray(whole.probabilities), "whole clip", 1
    else:
        probabilities = np.mean([w.probabilities for w in windows], axis=0)
        method, count = "mean of windows", len(windows)
    top = _top(probabilities, classes)
    return ClipAnswer(label=top[0][0], probability=top[0][1], top=top,
                      probabilities=[float(p) for p in probabilities], method=method, num_windows=count)


@dataclass
class VideoPrediction:
    """Everything predict found in one video: how it was cut, the windows, and the clip's answer."""

    video: str
    fps: float
    num_frames: int
    window: int  # source frames per window
    stride: int  # source frames between window starts
    windows: list[WindowPrediction]
    answer: ClipAnswer
    latency: dict[str, float] = field(default_factory=dict)

    def to_json(self, run_info: Mapping[str, Any], model_dir: str | Path) -> dict[str, Any]:
        """The --json content (its keys are documented in the README, "Using a trained model")."""
        def seconds(frames: int) -> float | None:
            return round(frames / self.fps, 4) if self.fps else None

        def top(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
            return [{"label": label, "probability": p} for label, p in pairs]

        return {
            "video": self.video, "model_dir": str(model_dir), "model": run_info.get("model"),
            "classes": list(run_info["classes"]), "fps": self.fps, "num_frames": self.num_frames,
            "window": {"frames": self.window, "seconds": seconds(self.window)},
            "stride": {"frames": self.stride, "seconds": seconds(self.stride)},
            "windows": [{"start": w.start, "end": w.end, "start_seconds": seconds(w.start),
                         "end_seconds": seconds(w.end), "label": w.label, "probability": w.probability,
                         "top": top(w.top), "probabilities": w.probabilities, "padded": w.padded,
                         "person_fraction": w.person_fraction, "model_ms": w.model_ms} for w in self.windows],
            "answer": {"label": self.answer.label, "probability": self.answer.probability,
                       "top": top(self.answer.top), "probabilities": self.answer.probabilities,
                       "method": self.answer.method, "num_windows": self.answer.num_windows},
            "latency": self.latency,
        }


# ----------------------------------------------------------------------------- predict_video
def predict_video(video: str | Path, model_dir: str | Path, out_path: str | Path | None = None,
                  stride: int | str | None = None, progress: bool = True, window: int | str | None = None,
                  verbose: bool = True, json_path: str | Path | None = None,
                  answer: str = CLIP_ANSWER, mediapipe_size: int | None = None,
                  fast: bool = False) -> VideoPrediction:
    """Recognise the sign in a video with a trained run: one prediction per window, and one answer for the
    clip.

    ``window`` (default: the median duration of the run's training clips, at this video's frame rate)
    and ``stride`` (default: a quarter of the window) are frames (``30``) or seconds (``"1.5s"``). Each
    window is sampled to the training clips' frame count evenly, exactly as ``extract`` sampled them,
    and its frames resized as in training (full frame -> the stored thumbnail size -> the model's size),
    so a training clip's video gives the model exactly the inputs the clip gave it in training.

    The clip's answer (``answer="mean"``, the default) is the mean of the window probabilities.
    ``answer="whole"`` instead gives a clip at most ``ONE_SIGN_SPANS`` training spans long to the model
    whole, as one window sampled like a training clip (longer clips still get the mean). The mean was
    chosen by measurement (``CLIP_ANSWER``): it was as good on real clips and better on clips where the
    signer holds still before and after the sign, which the whole-clip window squeezes into the sign.

    Prints one line per window, the latency of MediaPipe (ms/frame) and of the model (ms/window), and
    ends with ONE line for the clip. ``out_path`` (.mp4/.avi) also writes the video with the landmarks,
    the current sign and the top-3 bars; ``json_path`` writes every window and the answer as JSON.
    """
    from utils.data.video import video_info
    from utils.training.runs import load_run

    if answer not in ANSWER_METHODS:
        raise CourseError(f"answer must be one of {', '.join(ANSWER_METHODS)}, got {answer!r}")
    out_path = _check_video_out(out_path)
    json_path = _check_json_out(json_path)
    # a missing, empty or non-video file fails here, before the model loads
    info = video_info(video, count=False)
    window_frames = frames_of(window, info.fps, "window")
    stride_frames = frames_of(stride, info.fps, "stride")
    model, run_info = load_run(model_dir, fast=fast)
    if verbose and fast:
        print(f"model: {run_info['inference']}")
    classify = WindowClassifier(model, run_info)
    spec = classify.spec
    mediapipe_size = mediapipe_size_for(spec, mediapipe_size)
    window_frames = window_frames or spec.window_frames(info.fps)
    stride_frames = stride_frames or max(1, window_frames // 4)
    clip = read_video_keypoints(video, spec.wants("keypoints") or spec.wants("hands") or spec.draws_landmarks
                                or out_path is not None,
                                spec.thumbnail_size if spec.wants("frames") else None, progress=progress,
                                hand_size=spec.crop_size if spec.wants("hands") else None,
                                mediapipe_size=mediapipe_size)
    say = print if verbose else (lambda *args, **kwargs: None)
    say(f"{video}: {clip.num_frames} frames at {clip.fps:.1f} fps; {run_info['model']} model, windows of "
        f"{window_frames} frames ({window_frames / clip.fps:.2f} s) sampled to {spec.clip_frames}, "
        f"stride {stride_frames}; MediaPipe input {_size_text(mediapipe_size)}")
    if clip.num_frames < window_frames:
        say(f"note: the video has only {clip.num_frames} frames, fewer than one window ({window_frames}): "
            f"one window{', padded by repeating frames' if clip.num_frames < spec.clip_frames else ''}")
    person = _person_per_frame(clip)
    if person is not None and not person.any():
        say(f"note: no person found in {video}: MediaPipe saw no face, pose or hands in any of its "
            f"{clip.num_frames} frames, so the predictions below are guesses from empty keypoints")
    result = predict_clip(classify, clip, window_frames, stride_frames, answer, str(video))
    windows = result.windows
    for prediction in windows:
        say(prediction.describe())
    say(latency_line(clip.mediapipe_ms, "MediaPipe per frame"))
    say(latency_line([p.model_ms for p in windows], "model per window") + " (first call excluded: warm-up)")
    if clip.seconds > 0:
        say(f"read + MediaPipe: {clip.num_frames} frames in {clip.seconds:.1f} s "
            f"({clip.num_frames / clip.seconds:.1f} frames/s)")
    if out_path is not None:
        write_annotated_video(video, out_path, windows, clip.keypoints, clip.fps)
        say(f"annotated video -> {out_path}")
    if json_path is not None:
        from utils.training.runs import write_json

        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_path, result.to_json(run_info, model_dir))
        say(f"windows and answer -> {json_path}")
    say(result.answer.describe())
    return result


def predict_clip(classify: WindowClassifier, clip: VideoKeypoints, window: int, stride: int,
                 answer: str = CLIP_ANSWER, name: str = "") -> VideoPrediction:
    """The windows of a clip already read (keypoints and/or thumbnails per frame) and the clip's answer."""
    person = _person_per_frame(clip)
    windows = _predict_windows(classify, clip, person, window, stride)
    whole = None
    if answer == "whole" and clip.num_frames <= ONE_SIGN_SPANS * window:
        covers_clip = len(windows) == 1 and windows[0].end == clip.num_frames
        whole = windows[0] if covers_clip else _predict_windows(classify, clip, person, clip.num_frames,
                                                                clip.num_frames)[0]
    return VideoPrediction(video=name, fps=clip.fps, num_frames=clip.num_frames, window=window, stride=stride,
                           windows=windows, answer=clip_answer(windows, whole, classify.classes),
                           latency=latency_summary(windows, clip.mediapipe_ms))


def _size_text(mediapipe_size: int) -> str:
    """'full resolution' or 'longer side 640 px'."""
    return "full resolution" if not mediapipe_size else f"longer side {mediapipe_size} px"


def _check_json_out(json_path: str | Path | None) -> Path | None:
    """The --json path, checked before any work: a folder that can hold it."""
    if json_path is None:
        return None
    json_path = Path(json_path)
    check_can_write(json_path)
    return json_path


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
        indices, padded = window_indices(start, clip.num_frames, window, classify.spec.clip_frames)
        end = min(start + window, clip.num_frames)
        predictions.append(classify(
            start, end, None if clip.keypoints is None else clip.keypoints[indices],
            None if clip.thumbnails is None else clip.thumbnails[indices], padded=padded,
            person_fraction=1.0 if person is None else float(person[start:end].mean()),
            hand_crops=None if clip.hand_crops is None else clip.hand_crops[indices]))
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
    from utils.data.keypoints import draw_prediction
    from utils.data.video import VideoWriter, fit_frame, iter_frames

    out_path = Path(out_path)
    with VideoWriter(out_path, fps) as writer:
        for index, frame in enumerate(iter_frames(video)):
            vector = keypoints[index] if keypoints is not None and index < len(keypoints) else None
            top = current_prediction(predictions, index).top
            writer.write(draw_prediction(fit_frame(frame, min_side, max_side), top, vector))
    return out_path
