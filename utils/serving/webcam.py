"""Live recognition from a camera: the loop over frames and its OpenCV window (q or Esc quits).

Frames are read in a background thread (a short queue, so the picture stays live); each goes through
MediaPipe at the run's ``mediapipe_size`` (full resolution unless the run's features were made otherwise; hand
crops always from the full frame); every ``stride`` frames the last ``window`` frames
(default: the duration of the run's training clips at the camera's frame rate) become one window,
sampled, prepared and classified exactly as :mod:`utils.predict` does for a video file.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError
from utils.serving.predict import (
    WindowClassifier,
    WindowPrediction,
    frames_of,
    latency_line,
    mediapipe_size_for,
)

QUIT_KEYS = (ord("q"), 27)  # q or Esc closes the webcam window
CAMERA_QUEUE = 2  # frames read ahead from a camera: more would show the signer late when MediaPipe lags


def check_display() -> None:
    """CourseError when no window can be shown: no DISPLAY/WAYLAND_DISPLAY on Linux, or an OpenCV without
    GUI."""
    import cv2

    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display:
        raise CourseError("no display: the webcam demo opens a window, but DISPLAY is not set (a server, CI "
                          "or an ssh session without -X). Run it on a desktop, or record a clip and use "
                          "`python -m utils predict VIDEO --model RUN --out annotated.mp4` instead")
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        raise CourseError("this OpenCV build has no GUI (opencv-python-headless?), so it cannot show a "
                          "window: install opencv-contrib-python from requirements.txt, or use "
                          "`python -m utils predict VIDEO --out annotated.mp4` instead")


def open_camera(camera: int | str):
    """An opened cv2.VideoCapture for a camera index (or a video file); CourseError if it cannot be opened."""
    import cv2

    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        capture.release()
        raise CourseError(
            f"camera {camera!r} could not be opened: no camera at that index, it is used by "
            "another program, or this machine has none (a server or CI). Try --webcam 1, "
            f"close other video apps, or use `python -m utils predict VIDEO` on a recorded clip"
        )
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


def run_webcam(model_dir: str | Path, camera_index: int | str = 0, stride: int | str | None = None,
               show: bool = True, max_frames: int | None = None, verbose: bool = True,
               window: int | str | None = None, mediapipe_size: int | None = None, fast: bool = False) -> int:
    """Live recognition from a camera in an OpenCV window (q or Esc quits); returns 0 (the CLI's exit code).

    A prediction is made every `stride` frames (default: a quarter of the window) on the last `window` frames
    (default: the training clips' duration); both in frames (30) or seconds ("1.5s"). ``mediapipe_size``:
    longer side of the frames MediaPipe sees (default: as the run's features were extracted). ``show=False``
    (with a video file as ``camera_index`` and ``max_frames``) runs the same loop without a window, e.g. in
    tests. CourseError when there is no display or the camera cannot be opened.
    """
    from utils.data.keypoints import HolisticExtractor, draw_prediction, hand_crops
    from utils.data.video import DEFAULT_FPS, capture_fps, read_ahead, resize_frames, sample_frame_indices
    from utils.training.runs import load_run

    if show:
        check_display()
    frames_of(window, DEFAULT_FPS, "window")  # a typo fails here, before the model loads
    frames_of(stride, DEFAULT_FPS, "stride")
    model, run_info = load_run(model_dir, fast=fast)
    if verbose and fast:
        print(f"model: {run_info['inference']}")
    classify = WindowClassifier(model, run_info)
    mediapipe_size = mediapipe_size_for(classify.spec, mediapipe_size)
    capture = open_camera(camera_index)
    fps = capture_fps(capture)
    num_frames = frames_of(window, fps, "window") or classify.spec.window_frames(fps)
    stride = frames_of(stride, fps, "stride") or max(1, num_frames // 4)
    chosen = sample_frame_indices(num_frames, classify.spec.clip_frames)[0]
    uses_frames, uses_hands = classify.spec.wants("frames"), classify.spec.wants("hands")
    recent_keypoints: deque[np.ndarray] = deque(maxlen=num_frames)
    recent_thumbnails: deque[np.ndarray] = deque(maxlen=num_frames)
    recent_hands: deque[np.ndarray] = deque(maxlen=num_frames)
    prediction: WindowPrediction | None = None
    model_ms, mp_ms = [], []
    title = f"sign recognition ({run_info['model']}) - q to quit"
    frames = read_ahead(_camera_frames(capture, max_frames), CAMERA_QUEUE)
    try:
        with HolisticExtractor(warn_small_frames=False, max_side=mediapipe_size) as extractor:
            for index, frame in enumerate(frames):
                started = time.perf_counter()
                vector, _ = extractor.extract_frame(frame)
                mp_ms.append((time.perf_counter() - started) * 1000)
                recent_keypoints.append(vector)
                if uses_frames:
                    recent_thumbnails.append(resize_frames(frame[None], classify.spec.thumbnail_size)[0])
                if uses_hands:  # cut from the full-resolution camera frame, as extract does
                    recent_hands.append(hand_crops(frame[None], vector[None], classify.spec.crop_size)[0])
                if len(recent_keypoints) == num_frames and (index + 1 - num_frames) % stride == 0:
                    prediction = classify(index + 1 - num_frames, index + 1,
                                          np.stack(recent_keypoints)[chosen],
                                          np.stack(recent_thumbnails)[chosen] if uses_frames else None,
                                          hand_crops=np.stack(recent_hands)[chosen] if uses_hands else None)
                    model_ms.append(prediction.model_ms)
                    if verbose:
                        print(prediction.describe(), flush=True)
                if show and not _show(draw_prediction(frame, prediction.top if prediction else [], vector),
                                      title):
                    break
    finally:
        frames.close()  # stops the reading thread, which releases the camera
        capture.release()
        if show:
            _close_windows()
    if verbose:
        print(latency_line(mp_ms, "MediaPipe per frame"))
        print(latency_line(model_ms, "model per window") + " (first call excluded: warm-up)")
    return 0


def _close_windows() -> None:
    """Close OpenCV windows, ignoring builds without a GUI."""
    import cv2

    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass
