"""Using a trained model: sign recognition on a new video or a webcam (sliding window), overlay, export.

A trained run folder (``python -m utils train``) holds ``model.keras`` and ``run.json``; ``run.json`` says
which inputs the model takes, its window length T (``num_frames``), its frame size S (``image_size``) and
the keypoint preprocessing it was trained with. Recognition here follows exactly the same path as
training: MediaPipe Holistic on the full-resolution frames (never on thumbnails), then
:func:`utils.training.finish_inputs` with the run's options.

A new video is cut into windows of T frames (``stride`` frames apart); each window gets one prediction.
A clip shorter than T becomes one window whose frames repeat (as short clips were padded in
training). Export writes a SavedModel (any batch size) and a TensorFlow Lite file (batch size 1, built-in
ops only) for all three models: with TF 2.19 the LSTM, our ConvLSTM layer and keras.layers.ConvLSTM2D all
convert once the batch size is fixed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError, VideoError

TOP_K = 3
EXPORT_FORMATS = ("tflite", "savedmodel")
TFLITE_NAME = "model.tflite"
SAVEDMODEL_NAME = "savedmodel"
LABELS_NAME = "labels.txt"
VIDEO_SUFFIXES = (".mp4", ".avi")
QUIT_KEYS = (ord("q"), 27)  # q or Esc closes the webcam window


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


# ----------------------------------------------------------------------------- the trained run
def load_model_dir(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The model and run.json of a run folder, checked to be complete and consistent (ModelDirError if not)."""
    from utils.training import load_run

    return load_run(model_dir)


def window_inputs(run_info: Mapping[str, Any], keypoints: np.ndarray | None,
                  thumbnails: np.ndarray | None) -> dict[str, np.ndarray]:
    """Model inputs (batch of 1) of one window of T frames, preprocessed exactly as in training."""
    from utils.training import finish_inputs

    raw: dict[str, np.ndarray] = {}
    if "keypoints" in run_info["inputs"]:
        raw["keypoints"] = np.asarray(keypoints, dtype=np.float32)[None]
    if "frames" in run_info["inputs"]:
        raw["frames"] = np.asarray(thumbnails, dtype=np.uint8)[None]
    return finish_inputs(raw, run_info)


def _top(probabilities: np.ndarray, classes: Sequence[str], k: int = TOP_K) -> list[tuple[str, float]]:
    """The k most probable (label, probability), best first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(str(classes[i]), float(probabilities[i])) for i in order]


def _predict_once(model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Class probabilities (C,) of one window (``predict_on_batch``: a compiled call, no tf.data overhead)."""
    return np.asarray(model.predict_on_batch(dict(inputs)))[0]


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


def _check_positive(value: int, name: str) -> int:
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
    _check_writable_folder(out_path.parent, out_path)
    return out_path


def _check_writable_folder(folder: Path, target: Path) -> None:
    """CourseError when `folder` cannot be created or written (a file in the way, no permission)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CourseError(f"{target}: cannot write there, {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CourseError(f"{target}: cannot write there, the folder {existing} is read-only; choose another "
                          "folder or change its permissions")


def _latency_line(values_ms: Sequence[float], what: str) -> str:
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
    from utils.video import video_info

    stride = _check_positive(stride, "stride")
    out_path = _check_video_out(out_path)
    video_info(video, count=False)  # a missing, empty or non-video file fails here, before the model loads
    model, run_info = load_model_dir(model_dir)
    num_frames = int(run_info["num_frames"])
    window = _check_positive(window or num_frames, "window")
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
    predictions = _predict_windows(model, run_info, clip, person, window, stride)
    for prediction in predictions:
        say(prediction.describe())
    say(_latency_line(clip.mediapipe_ms, "MediaPipe per frame"))
    say(_latency_line([p.model_ms for p in predictions], "model per window") + " (first call excluded: warm-up)")
    if out_path is not None:
        write_annotated_video(video, out_path, predictions, clip.keypoints, clip.fps)
        say(f"annotated video -> {out_path}")
    return predictions


def _person_per_frame(clip: VideoKeypoints) -> np.ndarray | None:
    """Bool (N,): MediaPipe found a pose or a hand in the frame; None when MediaPipe was not run."""
    if clip.detected is None:
        return None
    return clip.detected[:, 1:].any(axis=1)


def _predict_windows(model: Any, run_info: Mapping[str, Any], clip: VideoKeypoints, person: np.ndarray | None,
                     window: int, stride: int) -> list[WindowPrediction]:
    """One WindowPrediction per window of the clip, each model call timed (after one warm-up call)."""
    num_frames, classes = int(run_info["num_frames"]), list(run_info["classes"])
    predictions = []
    for number, start in enumerate(window_starts(clip.num_frames, window, stride)):
        indices, padded = window_indices(start, clip.num_frames, window, num_frames)
        inputs = window_inputs(run_info, None if clip.keypoints is None else clip.keypoints[indices],
                               None if clip.thumbnails is None else clip.thumbnails[indices])
        if number == 0:
            _predict_once(model, inputs)  # warm-up: the first call traces the graph
        started = time.perf_counter()
        probabilities = _predict_once(model, inputs)
        elapsed = (time.perf_counter() - started) * 1000
        top = _top(probabilities, classes)
        end = min(start + window, clip.num_frames)
        predictions.append(WindowPrediction(
            start=start, end=end, label=top[0][0], probability=top[0][1], top=top, padded=padded,
            person_fraction=1.0 if person is None else float(person[start:end].mean()), model_ms=elapsed))
    return predictions


# ----------------------------------------------------------------------------- overlay and annotated video
def current_prediction(predictions: Sequence[WindowPrediction], frame_index: int) -> WindowPrediction:
    """The prediction to show at a frame: the latest window that has ended by then (else the first window)."""
    shown = predictions[0]
    for prediction in predictions:
        if prediction.end - 1 <= frame_index:
            shown = prediction
    return shown


def annotate_frame(frame: np.ndarray, vector: np.ndarray | None, prediction: WindowPrediction | None) -> np.ndarray:
    """An RGB frame with the landmarks, the recognised sign and a bar per top-3 probability drawn on it."""
    import cv2

    from utils.keypoints import draw_landmarks

    canvas = draw_landmarks(frame, vector) if vector is not None else frame.copy()
    if prediction is None:
        return canvas
    height, width = canvas.shape[:2]
    scale = max(0.4, min(width, height) / 480)
    line = int(28 * scale)
    panel_width = int(min(width, 260 * scale))
    panel_height = line * (len(prediction.top) + 1) + line // 2
    overlay = canvas.copy()
    cv2.rectangle(overlay, (0, 0), (panel_width, panel_height), (0, 0, 0), -1)
    canvas = cv2.addWeighted(overlay, 0.55, canvas, 0.45, 0)
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(scale * 1.5)))
    cv2.putText(canvas, f"{prediction.label} {prediction.probability:.2f}", (6, line), font, 0.8 * scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    bar_left, bar_width = int(panel_width * 0.45), int(panel_width * 0.5)
    for rank, (label, probability) in enumerate(prediction.top, start=1):
        y = line * (rank + 1)
        cv2.putText(canvas, label[:12], (6, y), font, 0.55 * scale, (230, 230, 230), max(1, thick - 1), cv2.LINE_AA)
        top_left, bottom_right = (bar_left, y - int(line * 0.6)), (bar_left + int(bar_width * probability), y)
        cv2.rectangle(canvas, top_left, bottom_right, (60, 200, 90) if rank == 1 else (150, 150, 150), -1)
        cv2.putText(canvas, f"{probability:.2f}", (bar_left + 3, y - 3), font, 0.45 * scale, (255, 255, 255),
                    1, cv2.LINE_AA)
    return canvas


class _VideoSink:
    """Write RGB frames one by one to a temporary file, renamed to `path` only when all went well."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, path.with_name(f".{path.stem}.tmp{path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, float(fps), size)
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"{path}: OpenCV cannot open a video writer here (is the folder writable?)")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one RGB frame."""
        import cv2

        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def __enter__(self) -> _VideoSink:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.writer.release()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_annotated_video(video: str | Path, out_path: str | Path, predictions: Sequence[WindowPrediction],
                          keypoints: np.ndarray | None, fps: float, max_side: int = 960,
                          min_side: int = 360) -> Path:
    """Re-read the video and write it with landmarks, the current sign and the top-3 bars (resized to fit
    between min_side and max_side pixels, so that the text stays readable)."""
    import cv2

    from utils.video import iter_frames

    out_path = Path(out_path)
    sink = None
    try:
        for index, frame in enumerate(iter_frames(video)):
            factor = _display_scale(frame.shape[:2], min_side, max_side)
            if factor != 1.0:
                size = (int(round(frame.shape[1] * factor)) // 2 * 2, int(round(frame.shape[0] * factor)) // 2 * 2)
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
            vector = keypoints[index] if keypoints is not None and index < len(keypoints) else None
            annotated = annotate_frame(frame, vector, current_prediction(predictions, index))
            if sink is None:
                sink = _VideoSink(out_path, fps, (annotated.shape[1], annotated.shape[0])).__enter__()
            sink.write(annotated)
    except BaseException as error:
        if sink is not None:
            sink.__exit__(type(error), error, None)
        raise
    if sink is not None:
        sink.__exit__(None, None, None)
    return out_path


def _display_scale(shape: tuple[int, int], min_side: int, max_side: int) -> float:
    """Resize factor bringing the shorter side up to min_side or the longer side down to max_side (else 1)."""
    if max(shape) > max_side:
        return max_side / max(shape)
    if min(shape) < min_side:
        return min(min_side / min(shape), max_side / max(shape))
    return 1.0


# ----------------------------------------------------------------------------- webcam
def check_display() -> None:
    """CourseError when no window can be shown: no DISPLAY/WAYLAND_DISPLAY on Linux, or an OpenCV without GUI."""
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CourseError("no display: the webcam demo opens a window, but DISPLAY is not set (a server, CI or "
                          "an ssh session without -X). Run it on a desktop, or record a clip and use "
                          "`python -m utils predict VIDEO --model RUN --out annotated.mp4` instead")
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        raise CourseError("this OpenCV build has no GUI (opencv-python-headless?), so it cannot show a window: "
                          "install opencv-contrib-python from requirements.txt, or use "
                          "`python -m utils predict VIDEO --out annotated.mp4` instead")


def open_camera(camera: int | str):
    """An opened cv2.VideoCapture for a camera index (or a video file); CourseError if it cannot be opened."""
    import cv2

    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        capture.release()
        raise CourseError(f"camera {camera!r} could not be opened: no camera at that index, it is used by another "
                          "program, or this machine has none (a server or CI). Try --webcam 1, close other "
                          "video apps, or use `python -m utils predict VIDEO` on a recorded clip")
    return capture


def _camera_frames(capture: Any, max_frames: int | None) -> Iterator[np.ndarray]:
    """RGB frames from an opened capture until it ends or max_frames are read; releases it at the end."""
    import cv2

    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _show(frame_rgb: np.ndarray, title: str) -> bool:
    """Show a frame in an OpenCV window; False when the user pressed q or Esc or closed the window.

    CourseError if no window can open.
    """
    import cv2

    try:
        cv2.imshow(title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        pressed = cv2.waitKey(1) & 0xFF
        return pressed not in QUIT_KEYS and cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error as error:
        raise CourseError(f"OpenCV could not open a window ({str(error).strip().splitlines()[-1]}); run on a "
                          "desktop, or use `python -m utils predict VIDEO --out annotated.mp4`") from None


def run_webcam(model_dir: str | Path, camera_index: int | str = 0, stride: int = 5, show: bool = True,
               max_frames: int | None = None, verbose: bool = True) -> int:
    """Live recognition from a camera in an OpenCV window (q or Esc quits); returns 0 (the CLI's exit code).

    A prediction is made every `stride` frames on the last T frames. ``show=False`` (with a video file
    as ``camera_index`` and ``max_frames``) runs the same loop without a window, e.g. in tests.
    CourseError when there is no display or the camera cannot be opened.
    """
    stride = _check_positive(stride, "stride")
    if show:
        check_display()
    model, run_info = load_model_dir(model_dir)
    from utils.keypoints import HolisticExtractor
    from utils.video import resize_frames

    num_frames, classes = int(run_info["num_frames"]), list(run_info["classes"])
    uses_frames = "frames" in run_info["inputs"]
    recent_keypoints: deque[np.ndarray] = deque(maxlen=num_frames)
    recent_thumbnails: deque[np.ndarray] = deque(maxlen=num_frames)
    capture = open_camera(camera_index)
    prediction, model_ms, mp_ms = None, [], []
    title = f"sign recognition ({run_info['model']}) - q to quit"
    try:
        with HolisticExtractor(warn_small_frames=False) as extractor:
            for index, frame in enumerate(_camera_frames(capture, max_frames)):
                started = time.perf_counter()
                vector, _ = extractor.extract_frame(frame)
                mp_ms.append((time.perf_counter() - started) * 1000)
                recent_keypoints.append(vector)
                if uses_frames:
                    recent_thumbnails.append(resize_frames(frame[None], int(run_info["image_size"]))[0])
                if len(recent_keypoints) == num_frames and (index + 1 - num_frames) % stride == 0:
                    inputs = window_inputs(run_info, np.stack(recent_keypoints),
                                           np.stack(recent_thumbnails) if uses_frames else None)
                    started = time.perf_counter()
                    probabilities = _predict_once(model, inputs)
                    model_ms.append((time.perf_counter() - started) * 1000)
                    top = _top(probabilities, classes)
                    prediction = WindowPrediction(index + 1 - num_frames, index + 1, top[0][0], top[0][1], top,
                                                  model_ms=model_ms[-1])
                    if verbose:
                        print(prediction.describe(), flush=True)
                if show and not _show(annotate_frame(frame, vector, prediction), title):
                    break
    finally:
        capture.release()
        if show:
            _close_windows()
    if verbose:
        print(_latency_line(mp_ms, "MediaPipe per frame"))
        print(_latency_line(model_ms[1:], "model per window") + " (first call excluded: warm-up)")
    return 0


def _close_windows() -> None:
    """Close OpenCV windows, ignoring builds without a GUI."""
    import cv2

    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass


# ----------------------------------------------------------------------------- export
def _export_signature(model: Any, batch_size: int | None) -> list[Any]:
    """The input_signature for model.export: one TensorSpec, or a dict of them for a two-input model."""
    import tensorflow as tf

    specs = {tensor.name.split(":")[0]: tf.TensorSpec((batch_size, *tensor.shape[1:]), tf.float32,
                                                      name=tensor.name.split(":")[0])
             for tensor in model.inputs}
    return [next(iter(specs.values()))] if len(specs) == 1 else [specs]


def _export_savedmodel(model: Any, folder: Path, batch_size: int | None) -> None:
    """Write a TensorFlow SavedModel with a 'serve' endpoint (fixed batch_size, or any when None)."""
    model.export(str(folder), format="tf_saved_model", input_signature=_export_signature(model, batch_size),
                 verbose=False)


def _convert_tflite(saved_model_dir: Path) -> tuple[bytes, str]:
    """TFLite bytes from a batch-1 SavedModel: built-in ops if possible, else with Select TF ops; and which."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    try:
        return converter.convert(), "built-in ops"
    except Exception as builtin_error:  # noqa: BLE001  (the converter raises ConverterError and others)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False
        try:
            return converter.convert(), "built-in + Select TF ops (needs the Flex delegate)"
        except Exception as error:  # noqa: BLE001
            last = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
            first = str(builtin_error).strip().splitlines()[-1][:200] if str(builtin_error).strip() else ""
            raise CourseError(f"TensorFlow Lite could not convert {saved_model_dir} ({last}; built-in ops only: "
                              f"{first}); export --formats savedmodel instead") from None


def export_model(model_dir: str | Path, out_dir: str | Path,
                 formats: Iterable[str] = EXPORT_FORMATS, verbose: bool = True) -> list[Path]:
    """Export a trained run to TensorFlow Lite (model.tflite, batch 1) and/or a SavedModel; return the paths written.

    labels.txt (one class per line, in output order) and run.json are written beside them. Each file
    appears only once complete (written under a temporary name, then renamed).
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise CourseError(f"unknown export format(s) {unknown or formats}; choose from {', '.join(EXPORT_FORMATS)}")
    out_dir = Path(out_dir)
    _check_writable_folder(out_dir, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CourseError(f"{out_dir}: exists and is not a folder; choose another --out")
    model, run_info = load_model_dir(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / f".export.{os.getpid()}.tmp"
    written: list[Path] = []
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        if "savedmodel" in formats:
            _export_savedmodel(model, scratch / SAVEDMODEL_NAME, batch_size=None)
            written.append(_publish(scratch / SAVEDMODEL_NAME, out_dir / SAVEDMODEL_NAME))
        if "tflite" in formats:
            _export_savedmodel(model, scratch / "batch1", batch_size=1)
            content, ops = _convert_tflite(scratch / "batch1")
            (scratch / TFLITE_NAME).write_bytes(content)
            written.append(_publish(scratch / TFLITE_NAME, out_dir / TFLITE_NAME))
            if verbose:
                print(f"TensorFlow Lite: {len(content) / 1e6:.2f} MB, {ops}, batch size 1", flush=True)
        (scratch / LABELS_NAME).write_text("\n".join(run_info["classes"]) + "\n", encoding="utf-8")
        written.append(_publish(scratch / LABELS_NAME, out_dir / LABELS_NAME))
        (scratch / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
        written.append(_publish(scratch / "run.json", out_dir / "run.json"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def _publish(source: Path, target: Path) -> Path:
    """Move a finished file or folder into place, replacing an older one."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(source, target)
    return target


def _as_input_dict(inputs: Mapping[str, np.ndarray] | np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Inputs as {name: float32 array}; a bare array is allowed for a one-input model."""
    if isinstance(inputs, Mapping):
        missing = [name for name in names if name not in inputs]
        if missing:
            raise CourseError(f"inputs lack {', '.join(missing)}; the exported model takes {', '.join(names)}")
        return {name: np.asarray(inputs[name], dtype=np.float32) for name in names}
    if len(names) != 1:
        raise CourseError(f"the exported model takes {', '.join(names)}: pass a dict of arrays")
    return {names[0]: np.asarray(inputs, dtype=np.float32)}


def predict_exported(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Class probabilities (n, C) from an exported model.tflite (one clip per call) or SavedModel folder."""
    path = Path(path)
    if path.suffix == ".tflite":
        return _predict_tflite(path, inputs)
    if (path / "saved_model.pb").is_file():
        return _predict_savedmodel(path, inputs)
    raise CourseError(f"{path}: neither a .tflite file nor a SavedModel folder; pass what export_model wrote")


def load_tflite(path: str | Path) -> Any:
    """A TFLite signature runner ('serving_default') for a .tflite file."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT is the successor)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner()


def _predict_tflite(path: Path, inputs: Mapping[str, np.ndarray] | np.ndarray, runner: Any = None) -> np.ndarray:
    """Probabilities from a batch-1 TFLite model, one clip at a time."""
    runner = runner or load_tflite(path)
    names = sorted(runner.get_input_details())
    arrays = _as_input_dict(inputs, names)
    count = len(next(iter(arrays.values())))
    outputs = []
    for index in range(count):
        result = runner(**{name: value[index:index + 1] for name, value in arrays.items()})
        outputs.append(np.asarray(next(iter(result.values())))[0])
    return np.stack(outputs)


def _predict_savedmodel(path: Path, inputs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Probabilities from a SavedModel's 'serve' endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    names = sorted(signature.structured_input_signature[1])
    arrays = _as_input_dict(inputs, names)
    result = signature(**{name: tf.constant(value) for name, value in arrays.items()})
    return np.asarray(next(iter(result.values())))


def time_tflite(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per clip of a TFLite model (mean, p95) over `repeats` single-clip calls after a warm-up."""
    runner = load_tflite(path)
    one = {name: value[:1] for name, value in _as_input_dict(inputs, sorted(runner.get_input_details())).items()}
    _predict_tflite(Path(path), one, runner)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _predict_tflite(Path(path), one, runner)
        times.append((time.perf_counter() - started) * 1000)
    return {"mean_ms": float(np.mean(times)), "p95_ms": float(np.percentile(times, 95))}
