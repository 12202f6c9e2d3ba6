"""Tests of utils.predict: sliding windows, predict_video, the overlay and the refusal of mixed run
folders."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tiny_runs import convlstm_run, features, lstm_run, write_noise_video  # noqa: F401  (pytest fixtures)
from utils.errors import ModelDirError


# ----------------------------------------------------------------------------- windows
def test_window_starts_cover_the_clip_and_end_at_its_last_frame():
    from utils.serving.predict import window_starts

    assert window_starts(20, 8, 5) == [0, 5, 10, 12]
    assert window_starts(16, 8, 8) == [0, 8]
    assert window_starts(8, 8, 3) == [0]
    assert window_starts(5, 8, 3) == [0]


def test_window_indices_pad_a_short_clip_and_resample_a_long_window():
    from utils.serving.predict import window_indices

    indices, padded = window_indices(0, 5, 8, 8)
    assert padded and len(indices) == 8 and indices.max() == 4 and np.all(np.diff(indices) >= 0)
    indices, padded = window_indices(4, 20, 8, 8)
    assert not padded and indices.tolist() == list(range(4, 12))
    indices, padded = window_indices(2, 40, 16, 8)  # a window spanning 16 frames, resampled to T=8
    assert not padded and indices[0] == 2 and indices[-1] == 17 and len(indices) == 8


# ----------------------------------------------------------------------------- predict_video
def test_predict_video_uses_the_training_preprocessing(monkeypatch, tmp_path, features, lstm_run):
    """Windows of known keypoints (two training clips back to back) give exactly the model's training-path
    output."""
    from utils.inputs.spec import prepare_inputs
    from utils.serving import predict
    from utils.training.runs import load_run

    clip_keypoints = np.concatenate([features.keypoints[0], features.keypoints[1]])  # 16 frames
    fake = predict.VideoKeypoints(num_frames=16, fps=25.0, keypoints=clip_keypoints,
                                  detected=np.ones((16, 4), dtype=bool), thumbnails=None,
                                  mediapipe_ms=[1.0] * 16)
    monkeypatch.setattr(predict, "read_video_keypoints", lambda *args, **kwargs: fake)
    predictions = predict.predict_video(write_noise_video(tmp_path / "v.mp4", 16), lstm_run, stride=8,
                                        progress=False, verbose=False).windows
    model, run_info = load_run(lstm_run)
    expected = model.predict(prepare_inputs(features, run_info, [0, 1]), verbose=0)
    assert [(p.start, p.end) for p in predictions] == [(0, 8), (8, 16)]
    for prediction, probabilities in zip(predictions, expected):
        best = int(np.argmax(probabilities))
        assert prediction.label == run_info["classes"][best]
        assert prediction.probability == pytest.approx(float(probabilities[best]), abs=1e-5)
        assert [p for _, p in prediction.top] == sorted((p for _, p in prediction.top), reverse=True)
        assert len(prediction.top) == 3 and not prediction.padded


@pytest.mark.parametrize("recorded, requested, expected",
                         [(320, None, 320), (320, 0, 0), (None, None, "default")])
def test_mediapipe_sees_frames_of_the_size_the_run_was_trained_with(monkeypatch, tmp_path, lstm_run, recorded,
                                                                   requested, expected):
    """run.json's sampling.mediapipe_size (from the features file) reaches MediaPipe; --mediapipe-size
    overrides it."""
    from utils import config
    from utils.serving import predict

    run = tmp_path / "run"
    shutil.copytree(lstm_run, run)
    info = json.loads((run / "run.json").read_text())
    info["sampling"]["mediapipe_size"] = recorded
    (run / "run.json").write_text(json.dumps(info))
    seen = {}

    def fake_read(video, need_keypoints, image_size, progress=True, hand_size=None, mediapipe_size=0):
        seen["size"] = mediapipe_size
        return predict.VideoKeypoints(num_frames=8, fps=25.0, keypoints=np.zeros((8, 1662), np.float32),
                                      detected=np.zeros((8, 4), bool), thumbnails=None)

    monkeypatch.setattr(predict, "read_video_keypoints", fake_read)
    predict.predict_video(write_noise_video(tmp_path / "v.mp4", 8), run, progress=False, verbose=False,
                          mediapipe_size=requested)
    assert seen["size"] == (config.MEDIAPIPE_SIZE if expected == "default" else expected)


def test_short_video_without_person_is_padded_said_so_and_annotated(tmp_path, lstm_run, capsys):
    import cv2

    from utils.serving.predict import predict_video

    video = write_noise_video(tmp_path / "short.mp4", 5)
    out = tmp_path / "out" / "annotated.mp4"
    predictions = predict_video(video, lstm_run, out_path=out, stride=2, progress=False).windows
    printed = capsys.readouterr().out
    assert len(predictions) == 1 and predictions[0].padded and predictions[0].person_fraction == 0.0
    assert "fewer than one window" in printed and "no person found" in printed
    assert "MediaPipe per frame: mean" in printed and "model per window: mean" in printed
    assert "frames    0-   4" in printed
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
    assert sorted(p.name for p in out.parent.iterdir()) == ["annotated.mp4"]  # no temporary file left


def test_frame_model_runs_without_mediapipe(monkeypatch, tmp_path, convlstm_run):
    import utils.data.keypoints
    from utils.serving.predict import predict_video

    def no_mediapipe(*args, **kwargs):
        raise AssertionError("MediaPipe must not run for a frame-only model without --out")

    monkeypatch.setattr(utils.data.keypoints, "HolisticExtractor", no_mediapipe)
    predictions = predict_video(write_noise_video(tmp_path / "v.mp4", 12), convlstm_run, stride=4,
                                progress=False, verbose=False).windows
    assert [(p.start, p.end) for p in predictions] == [(0, 8), (4, 12)]
    assert all(0.0 <= p.probability <= 1.0 for p in predictions)


def test_run_json_from_another_configuration_is_refused(tmp_path, lstm_run):
    from utils.training.runs import load_run

    mixed = tmp_path / "mixed"
    shutil.copytree(lstm_run, mixed)
    info = json.loads((mixed / "run.json").read_text())
    info["num_frames"] = 30
    (mixed / "run.json").write_text(json.dumps(info))
    with pytest.raises(ModelDirError, match="different configurations"):
        load_run(mixed)


# ----------------------------------------------------------------------------- overlay
def test_draw_prediction_draws_the_panel_only_where_it_belongs():
    from utils.data.keypoints import draw_prediction

    frame = np.full((240, 320, 3), 128, dtype=np.uint8)
    annotated = draw_prediction(frame, [("alpha", 0.7), ("beta", 0.2), ("gamma", 0.1)])
    assert annotated.shape == frame.shape and annotated.dtype == np.uint8
    assert np.any(annotated[:60, :120] != 128)  # label and bars, top left
    assert np.all(annotated[-60:, -60:] == 128)  # nothing drawn elsewhere
    assert np.all(frame == 128)  # the input is left alone


def test_current_prediction_is_the_latest_finished_window():
    from utils.serving.predict import WindowPrediction, current_prediction

    windows = [WindowPrediction(s, s + 8, f"w{s}", 0.5, []) for s in (0, 4, 8)]
    assert current_prediction(windows, 0).label == "w0"
    assert current_prediction(windows, 7).label == "w0"
    assert current_prediction(windows, 11).label == "w4"
    assert current_prediction(windows, 40).label == "w8"


# ----------------------------------------------------------------------------- real recordings
@pytest.mark.slow
@pytest.mark.real
def test_real_clip_finds_the_signer_and_reports_latency(real_dir, lstm_run, capsys):
    from utils.serving.predict import predict_video

    predictions = predict_video(real_dir / "asl_clips" / "hello" / "alpyksl.mp4", lstm_run, stride=8,
                                progress=False).windows
    printed = capsys.readouterr().out
    assert "no person found" not in printed
    assert predictions and all(p.person_fraction > 0.5 for p in predictions)
    assert "MediaPipe per frame: mean" in printed


