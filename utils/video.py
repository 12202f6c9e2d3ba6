"""Reading, sampling, resizing and writing video clips (RGB uint8 frames). Knows nothing of MediaPipe or models."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.errors import VideoError


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) to an .mp4 (mp4v) or .avi (MJPG), atomically (temp file, then rename)."""
    import cv2

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (width, height))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open a video writer here (is the folder writable?)")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    tmp.replace(path)
    return path
