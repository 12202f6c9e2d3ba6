"""Tests of utils.webcam: clear errors without a display or a camera, and the live loop run on a video
file."""
from __future__ import annotations

import pytest

from tiny_runs import features, lstm_run, write_noise_video  # noqa: F401  (pytest fixtures)
from utils.errors import CourseError


# ----------------------------------------------------------------------------- webcam
def test_webcam_without_display_is_a_clear_error(monkeypatch, lstm_run):
    from utils.serving import webcam

    monkeypatch.setattr(webcam.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CourseError, match="no display"):
        webcam.run_webcam(lstm_run)


def test_webcam_that_cannot_be_opened_is_a_clear_error(lstm_run):
    from utils.serving.webcam import run_webcam

    with pytest.raises(CourseError, match="camera 97 could not be opened"):
        run_webcam(lstm_run, camera_index=97, show=False)


def test_webcam_loop_predicts_every_stride_frames(tmp_path, lstm_run, capsys):
    from utils.serving.webcam import run_webcam

    video = write_noise_video(tmp_path / "camera.mp4", 14)
    assert run_webcam(lstm_run, camera_index=str(video), stride=3, show=False, max_frames=14) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("frames")]
    assert [line.split()[1] for line in lines] == ["0-", "3-", "6-"]



def test_webcam_window_that_cannot_open_is_a_clear_error(monkeypatch, tmp_path, lstm_run):
    """cv2.imshow failing (no usable display) ends in a CourseError, not an OpenCV traceback."""
    import cv2

    from utils.serving.webcam import run_webcam

    def no_window(*args, **kwargs):
        raise cv2.error("OpenCV(4.11.0) error: (-2:Unspecified error) can't open display")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "imshow", no_window)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    video = write_noise_video(tmp_path / "camera.mp4", 3)
    with pytest.raises(CourseError, match="could not open a window"):
        run_webcam(lstm_run, camera_index=str(video), max_frames=3)
