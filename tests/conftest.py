"""Shared pytest fixtures: the real recordings folder and small synthetic video files."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# Set before any test module imports TensorFlow or matplotlib.
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # keep TensorFlow's start-up noise out of test output
os.environ["MPLBACKEND"] = "Agg"  # figures render off-screen
# broken test videos are on purpose: no FFmpeg complaints
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "real"


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real recordings beside the repository (../shared/real); skips the test when they are absent."""
    if not REAL_DIR.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DIR}: they live beside the repository, see README")
    return REAL_DIR


def synthetic_frames(num_frames: int = 10, height: int = 48, width: int = 64) -> np.ndarray:
    """RGB uint8 (T, H, W, 3) test frames: frame i is a uniform grey of level frame_level(i, T) with a red
    square moving left to right in its bottom half."""
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    square = max(4, min(height, width) // 4)
    for i in range(num_frames):
        frames[i] = frame_level(i, num_frames)
        left = round(i * (width - square) / max(num_frames - 1, 1))
        frames[i, height - square:, left:left + square] = (220, 30, 30)
    return frames


def frame_level(index: int, num_frames: int) -> int:
    """Grey level of frame ``index`` in :func:`synthetic_frames` (20 for the first frame up to 235 for the
    last)."""
    return round(20 + 215 * index / max(num_frames - 1, 1))


@pytest.fixture
def tmp_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``tmp_video(num_frames=10, height=48, width=64, fps=25.0, suffix=".mp4", name="clip")`` writes
    a small synthetic RGB clip and returns its path.

    Frame i is a uniform grey of level ``frame_level(i, num_frames)`` (read it in the top-left corner to
    tell which source frame you got; mp4 is lossy by a few levels, .avi (MJPG) less) with a red square
    moving left to right along the bottom.
    """
    from utils.data.video import write_video

    def make(num_frames: int = 10, height: int = 48, width: int = 64, fps: float = 25.0,
             suffix: str = ".mp4", name: str = "clip") -> Path:
        frames = synthetic_frames(num_frames, height, width)
        return write_video(tmp_path / f"{name}{suffix}", frames, fps=fps)

    return make
