"""Tests of utils.inference: sliding windows, predict_video, overlay, webcam loop, export to TFLite/SavedModel.

One tiny LSTM run (T=8, 2 epochs) is trained once for the module; a frame-only (convlstm) run folder is
made from it with an untrained model, which is enough to check inputs, export and equality of outputs.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from utils.errors import CourseError, ModelDirError

NUM_FRAMES, IMAGE_SIZE, NUM_CLASSES = 8, 16, 3


def _tiny_features():
    """A hand-made FeatureSet: 24 clips of 8 frames, 3 classes, 4 groups, keypoints that differ by class."""
    from utils.features import FeatureSet

    rng = np.random.default_rng(0)
    count = 24
    labels = np.arange(count) % NUM_CLASSES
    keypoints = (rng.random((count, NUM_FRAMES, 1662)) * 0.1 + labels[:, None, None] * 0.3).astype(np.float32)
    frames = (rng.random((count, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3)) * 255).astype(np.uint8)
    return FeatureSet(keypoints=keypoints, frames=frames, labels=labels, classes=["alpha", "beta", "gamma"],
                      groups=np.array([f"signer{i % 4}" for i in range(count)]), split=np.full(count, ""),
                      paths=np.array([f"clip{i}.mp4" for i in range(count)]))


@pytest.fixture(scope="module")
def features():
    return _tiny_features()


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, features) -> Path:
    """A finished run folder of a tiny LSTM trained for 2 epochs."""
    from utils import models, training

    config = models.get_config("lstm", "small").replace(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE,
                                                         lstm_units=(16,), epochs=2, batch_size=8)
    out_dir = tmp_path_factory.mktemp("runs") / "lstm_tiny"
    training.train(features, "lstm", config, out_dir=out_dir, verbose=0)
    return out_dir


@pytest.fixture(scope="module")
def convlstm_run(tmp_path_factory, lstm_run) -> Path:
    """A run folder for an untrained frame-only convlstm (run.json derived from the LSTM run's)."""
    from utils import models

    config = models.get_config("convlstm", "small").replace(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE,
                                                             convlstm_filters=(4,))
    model = models.build_model("convlstm", config, num_classes=NUM_CLASSES)
    folder = tmp_path_factory.mktemp("runs") / "convlstm_tiny"
    folder.mkdir()
    model.save(folder / "model.keras")
    info = json.loads((lstm_run / "run.json").read_text())
    info.update(model="convlstm", config_name=config.name, config=config.to_dict(), inputs=["frames"])
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def _write_noise_video(path: Path, num_frames: int, height: int = 48, width: int = 64) -> Path:
    """A small video of random noise (no person in it)."""
    from utils.video import write_video

    rng = np.random.default_rng(1)
    return write_video(path, (rng.random((num_frames, height, width, 3)) * 255).astype(np.uint8))


# ----------------------------------------------------------------------------- windows
def test_window_starts_cover_the_clip_and_end_at_its_last_frame():
    from utils.inference import window_starts

    assert window_starts(20, 8, 5) == [0, 5, 10, 12]
    assert window_starts(16, 8, 8) == [0, 8]
    assert window_starts(8, 8, 3) == [0]
    assert window_starts(5, 8, 3) == [0]


def test_window_indices_pad_a_short_clip_and_resample_a_long_window():
    from utils.inference import window_indices

    indices, padded = window_indices(0, 5, 8, 8)
    assert padded and len(indices) == 8 and indices.max() == 4 and np.all(np.diff(indices) >= 0)
    indices, padded = window_indices(4, 20, 8, 8)
    assert not padded and indices.tolist() == list(range(4, 12))
    indices, padded = window_indices(2, 40, 16, 8)  # a window spanning 16 frames, resampled to T=8
    assert not padded and indices[0] == 2 and indices[-1] == 17 and len(indices) == 8


# ----------------------------------------------------------------------------- predict_video
def test_predict_video_uses_the_training_preprocessing(monkeypatch, tmp_path, features, lstm_run):
    """Windows of known keypoints (two training clips back to back) give exactly the model's training-path output."""
    from utils import inference, training

    clip_keypoints = np.concatenate([features.keypoints[0], features.keypoints[1]])  # 16 frames
    fake = inference.VideoKeypoints(num_frames=16, fps=25.0, keypoints=clip_keypoints,
                                    detected=np.ones((16, 4), dtype=bool), thumbnails=None, mediapipe_ms=[1.0] * 16)
    monkeypatch.setattr(inference, "read_video_keypoints", lambda *args, **kwargs: fake)
    predictions = inference.predict_video(_write_noise_video(tmp_path / "v.mp4", 16), lstm_run, stride=8,
                                          progress=False, verbose=False)
    model, run_info = inference.load_model_dir(lstm_run)
    expected = model.predict(training.prepare_inputs(features, run_info, [0, 1]), verbose=0)
    assert [(p.start, p.end) for p in predictions] == [(0, 8), (8, 16)]
    for prediction, probabilities in zip(predictions, expected):
        best = int(np.argmax(probabilities))
        assert prediction.label == run_info["classes"][best]
        assert prediction.probability == pytest.approx(float(probabilities[best]), abs=1e-5)
        assert [p for _, p in prediction.top] == sorted((p for _, p in prediction.top), reverse=True)
        assert len(prediction.top) == 3 and not prediction.padded


def test_short_video_without_person_is_padded_said_so_and_annotated(tmp_path, lstm_run, capsys):
    import cv2

    from utils.inference import predict_video

    video = _write_noise_video(tmp_path / "short.mp4", 5)
    out = tmp_path / "out" / "annotated.mp4"
    predictions = predict_video(video, lstm_run, out_path=out, stride=2, progress=False)
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
    import utils.keypoints

    from utils.inference import predict_video

    def no_mediapipe(*args, **kwargs):
        raise AssertionError("MediaPipe must not run for a frame-only model without --out")

    monkeypatch.setattr(utils.keypoints, "HolisticExtractor", no_mediapipe)
    predictions = predict_video(_write_noise_video(tmp_path / "v.mp4", 12), convlstm_run, stride=4,
                                progress=False, verbose=False)
    assert [(p.start, p.end) for p in predictions] == [(0, 8), (4, 12)]
    assert all(0.0 <= p.probability <= 1.0 for p in predictions)


def test_run_json_from_another_configuration_is_refused(tmp_path, lstm_run):
    from utils.inference import load_model_dir

    mixed = tmp_path / "mixed"
    shutil.copytree(lstm_run, mixed)
    info = json.loads((mixed / "run.json").read_text())
    info["num_frames"] = 30
    (mixed / "run.json").write_text(json.dumps(info))
    with pytest.raises(ModelDirError, match="different configurations"):
        load_model_dir(mixed)


# ----------------------------------------------------------------------------- overlay
def test_annotate_frame_draws_the_panel_only_where_it_belongs():
    from utils.inference import WindowPrediction, annotate_frame

    frame = np.full((240, 320, 3), 128, dtype=np.uint8)
    prediction = WindowPrediction(0, 8, "alpha", 0.7, [("alpha", 0.7), ("beta", 0.2), ("gamma", 0.1)])
    annotated = annotate_frame(frame, None, prediction)
    assert annotated.shape == frame.shape and annotated.dtype == np.uint8
    assert np.any(annotated[:60, :120] != 128)  # label and bars, top left
    assert np.all(annotated[-60:, -60:] == 128)  # nothing drawn elsewhere
    assert np.all(frame == 128)  # the input is left alone


def test_current_prediction_is_the_latest_finished_window():
    from utils.inference import WindowPrediction, current_prediction

    windows = [WindowPrediction(s, s + 8, f"w{s}", 0.5, []) for s in (0, 4, 8)]
    assert current_prediction(windows, 0).label == "w0"
    assert current_prediction(windows, 7).label == "w0"
    assert current_prediction(windows, 11).label == "w4"
    assert current_prediction(windows, 40).label == "w8"


# ----------------------------------------------------------------------------- webcam
def test_webcam_without_display_is_a_clear_error(monkeypatch, lstm_run):
    from utils import inference

    monkeypatch.setattr(inference.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CourseError, match="no display"):
        inference.run_webcam(lstm_run)


def test_webcam_that_cannot_be_opened_is_a_clear_error(lstm_run):
    from utils.inference import run_webcam

    with pytest.raises(CourseError, match="camera 97 could not be opened"):
        run_webcam(lstm_run, camera_index=97, show=False)


def test_webcam_loop_predicts_every_stride_frames(tmp_path, lstm_run, capsys):
    from utils.inference import run_webcam

    video = _write_noise_video(tmp_path / "camera.mp4", 14)
    assert run_webcam(lstm_run, camera_index=str(video), stride=3, show=False, max_frames=14) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("frames")]
    assert [line.split()[1] for line in lines] == ["0-", "3-", "6-"]


# ----------------------------------------------------------------------------- export
def _assert_same_as_keras(model, exported: Path, inputs: dict) -> None:
    from utils.inference import predict_exported

    expected = np.asarray(model.predict(inputs, verbose=0))
    got = predict_exported(exported, inputs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_exported_lstm_gives_the_keras_probabilities(tmp_path, features, lstm_run):
    from utils import training
    from utils.inference import export_model, load_model_dir

    written = export_model(lstm_run, tmp_path / "export")
    names = sorted(p.name for p in written)
    assert names == ["labels.txt", "model.tflite", "run.json", "savedmodel"]
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == names  # no temporary folder left
    model, run_info = load_model_dir(lstm_run)
    assert (tmp_path / "export" / "labels.txt").read_text().split() == run_info["classes"]
    inputs = training.prepare_inputs(features, run_info, np.arange(5))
    for path in written[:2]:
        _assert_same_as_keras(model, path, inputs)


def test_frame_model_exports_to_tflite(tmp_path, features, convlstm_run):
    """Our ConvLSTM layer converts with built-in ops once the batch size is fixed to 1."""
    from utils import training
    from utils.inference import export_model, load_model_dir

    written = export_model(convlstm_run, tmp_path / "export", formats=["tflite"], verbose=False)
    assert written[0].name == "model.tflite"
    model, run_info = load_model_dir(convlstm_run)
    _assert_same_as_keras(model, written[0], training.prepare_inputs(features, run_info, np.arange(3)))


# ----------------------------------------------------------------------------- real recordings
@pytest.mark.slow
@pytest.mark.real
def test_real_clip_finds_the_signer_and_reports_latency(real_dir, lstm_run, capsys):
    from utils.inference import predict_video

    predictions = predict_video(real_dir / "asl_clips" / "hello" / "alpyksl.mp4", lstm_run, stride=8, progress=False)
    printed = capsys.readouterr().out
    assert "no person found" not in printed
    assert predictions and all(p.person_fraction > 0.5 for p in predictions)
    assert "MediaPipe per frame: mean" in printed


def test_webcam_window_that_cannot_open_is_a_clear_error(monkeypatch, tmp_path, lstm_run):
    """cv2.imshow failing (no usable display) ends in a CourseError, not an OpenCV traceback."""
    import cv2

    from utils.inference import run_webcam

    def no_window(*args, **kwargs):
        raise cv2.error("OpenCV(4.11.0) error: (-2:Unspecified error) can't open display")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "imshow", no_window)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    video = _write_noise_video(tmp_path / "camera.mp4", 3)
    with pytest.raises(CourseError, match="could not open a window"):
        run_webcam(lstm_run, camera_index=str(video), max_frames=3)
