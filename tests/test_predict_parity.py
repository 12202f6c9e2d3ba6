"""predict on a clip's own video gives the model exactly what training gave it, for each model type.

A tiny synthetic dataset (videos of 20 frames at 30 fps, with the generator's exact keypoints stored
beside each video) is extracted with ``extract`` (T=12, 24x24 thumbnails), and each model type is
trained for one epoch in its recommended configuration (T=30 or 16, 32x32, frame differences for the
ConvLSTM). ``predict`` then reads the same videos. Only the MediaPipe call is replaced, by one that
returns the keypoints the features file was made from (``--keypoints-from stored``), so every other
step — decoding, choosing the frames, resizing, preprocessing — is the real one. Before the fix each of
them differed: a window of T consecutive frames instead of the clip sampled evenly to 12 then 30/16,
and frames resized straight to 32x32 instead of via the 24x24 thumbnails.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from utils.data import keypoints as K

CLIP_FRAMES, THUMBNAIL, SOURCE_FRAMES, FPS = 12, 24, 20, 30.0
# Same arrays in, same model: only the batch (1 clip vs several) differs, which moves float32 sums by ~1e-7.
TOLERANCE = 1e-5

pytestmark = pytest.mark.slow


class StoredKeypoints:
    """Stands in for utils.keypoints.HolisticExtractor: frame i of `video` gets the keypoints stored for
    it."""

    video: Path | None = None

    def __init__(self, *args, **kwargs) -> None:
        with np.load(str(self.video).replace(".mp4", ".keypoints.npz")) as data:
            self.keypoints, self.detected = (
                data["keypoints"].astype(np.float32),
                data["detected"].astype(bool),
            )
        self.count = 0

    def open(self) -> StoredKeypoints:
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> StoredKeypoints:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def extract_frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.count += 1
        return self.keypoints[self.count - 1], self.detected[self.count - 1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset folder, features file) of 10 signs x 3 signers, 20-frame videos at 30 fps."""
    from utils import paths
    from utils.data import synthetic
    from utils.data.features import extract_features

    root = tmp_path_factory.mktemp("parity")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "CACHE_DIR", root / "cache")
        source = synthetic.make_dataset(root / "synthetic", clips_per_class=3, num_signers=3,
                                        num_frames=SOURCE_FRAMES, image_size=128, workers=1)
        report = extract_features(source, root / "features.npz", num_frames=CLIP_FRAMES, image_size=THUMBNAIL,
                                  workers=1, keypoints_from="stored", progress=False)
    return source, report.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dataset) -> dict[str, Path]:
    """One run folder per model type, recommended configuration, one epoch."""
    from utils import models
    from utils.training import loop as training

    _, features_path = dataset
    out = tmp_path_factory.mktemp("runs")
    for name in models.MODEL_NAMES:
        config = models.get_config(name, "recommended").replace(epochs=1, batch_size=8)
        training.train(features_path, name, config, out_dir=out / name, verbose=0, measure_speed=False)
    return {name: out / name for name in models.MODEL_NAMES}


def _predict(monkeypatch, video: Path, run: Path, **kwargs):
    """predict_video on a video with MediaPipe replaced by the stored keypoints of that video."""
    from utils.serving.predict import predict_video

    StoredKeypoints.video = video
    monkeypatch.setattr(K, "HolisticExtractor", StoredKeypoints)
    return predict_video(video, run, progress=False, verbose=False, **kwargs)


@pytest.mark.parametrize("model_name", ["lstm", "convlstm", "fused"])
def test_predict_on_a_clip_video_gives_the_evaluate_probabilities(monkeypatch, dataset, runs, model_name):
    from utils.data.features import load_features
    from utils.inputs.spec import prepare_inputs
    from utils.training.runs import load_run

    source, features_path = dataset
    features = load_features(features_path)
    model, run_info = load_run(runs[model_name])
    for index in (0, 7, 21):
        expected = model.predict(prepare_inputs(features, run_info, [index]), verbose=0)[0]
        result = _predict(monkeypatch, source / features.paths[index], runs[model_name])
        # the default window: the whole clip
        assert (result.window, len(result.windows)) == (SOURCE_FRAMES, 1)
        np.testing.assert_allclose(result.windows[0].probabilities, expected, atol=TOLERANCE)
        np.testing.assert_allclose(result.answer.probabilities, expected, atol=TOLERANCE)
        assert result.answer.label == run_info["classes"][int(np.argmax(expected))]


def test_default_window_spans_the_training_clips_at_the_videos_frame_rate(monkeypatch, tmp_path, dataset,
                                                                          runs):
    from utils.data.features import load_features
    from utils.data.video import read_video, write_video

    source, features_path = dataset
    features = load_features(features_path)
    assert features.source_frames.tolist() == [SOURCE_FRAMES] * len(features)
    assert np.allclose(features.source_fps, FPS)
    sampling = json.loads((runs["lstm"] / "run.json").read_text())["sampling"]
    assert sampling["clip_frames"] == CLIP_FRAMES and sampling["thumbnail_size"] == THUMBNAIL
    assert sampling["source_frames"] == SOURCE_FRAMES
    assert sampling["source_seconds"] == pytest.approx(SOURCE_FRAMES / FPS)
    video = source / features.paths[0]
    frames = read_video(video)
    for fps, expected_window in ((60.0, 40), (15.0, 10)):
        other = write_video(tmp_path / f"at{int(fps)}.mp4", frames, fps=fps)
        (tmp_path / f"at{int(fps)}.keypoints.npz").write_bytes(
            Path(str(video).replace(".mp4", ".keypoints.npz")).read_bytes())
        result = _predict(monkeypatch, other, runs["convlstm"])
        assert result.window == expected_window  # 0.67 s, as the training clips spanned
        assert result.stride == max(1, expected_window // 4)


def test_window_and_stride_accept_frames_or_seconds(monkeypatch, dataset, runs):
    from utils.data.features import load_features
    from utils.errors import CourseError

    source, features_path = dataset
    video = source / load_features(features_path).paths[0]
    result = _predict(monkeypatch, video, runs["lstm"], window="0.5s", stride=5)
    assert (result.window, result.stride) == (15, 5)
    assert [(w.start, w.end) for w in result.windows] == [(0, 15), (5, 20)]
    assert _predict(monkeypatch, video, runs["lstm"], window=8, stride="0.1s").stride == 3
    with pytest.raises(CourseError, match="seconds"):
        _predict(monkeypatch, video, runs["lstm"], window="half")


def test_clip_answer_of_one_sign(monkeypatch, dataset, runs):
    """A one-sign clip is answered from the mean of its windows; with answer="whole", from the whole clip."""
    from utils.data.features import load_features

    source, features_path = dataset
    video = source / load_features(features_path).paths[3]
    # 2 spans: one sign
    whole = _predict(monkeypatch, video, runs["fused"], window=10, stride=5, answer="whole")
    assert whole.answer.method == "whole clip" and len(whole.windows) == 3
    single = _predict(monkeypatch, video, runs["fused"])  # the default window is the whole clip
    np.testing.assert_allclose(whole.answer.probabilities, single.windows[0].probabilities, atol=TOLERANCE)
    mean = _predict(monkeypatch, video, runs["fused"], window=10, stride=5)  # the default answer
    assert mean.answer.method == "mean of windows" and mean.answer.num_windows == 3
    np.testing.assert_allclose(mean.answer.probabilities,
                               np.mean([w.probabilities for w in mean.windows], axis=0), atol=1e-6)
    longer = _predict(monkeypatch, video, runs["fused"], window=6, stride=6, answer="whole")  # over 2 spans
    assert longer.answer.method == "mean of windows"


def test_predict_json_contract_and_last_line(monkeypatch, tmp_path, dataset, runs, capsys):
    from utils.cli import main
    from utils.data.features import load_features

    source, features_path = dataset
    video = source / load_features(features_path).paths[0]
    StoredKeypoints.video = video
    monkeypatch.setattr(K, "HolisticExtractor", StoredKeypoints)
    out = tmp_path / "out" / "windows.json"
    assert main(["predict", str(video), "--model", str(runs["lstm"]), "--json", str(out), "--window", "10",
                 "--stride", "5"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    data = json.loads(out.read_text())
    assert set(data) == {"video", "model_dir", "model", "classes", "fps", "num_frames", "window", "stride",
                         "windows", "answer", "latency"}
    assert data["window"] == {"frames": 10, "seconds": pytest.approx(10 / FPS, abs=1e-3)}
    assert data["stride"]["frames"] == 5 and data["num_frames"] == SOURCE_FRAMES
    assert [(w["start"], w["end"]) for w in data["windows"]] == [(0, 10), (5, 15), (10, 20)]
    for window in data["windows"]:
        assert set(window) == {"start", "end", "start_seconds", "end_seconds", "label", "probability", "top",
                               "probabilities", "padded", "person_fraction", "model_ms"}
        assert len(window["probabilities"]) == len(data["classes"])
        assert sum(window["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert window["label"] == data["classes"][int(np.argmax(window["probabilities"]))]
    answer = data["answer"]
    assert set(answer) == {"label", "probability", "top", "probabilities", "method", "num_windows"}
    assert answer["label"] == data["classes"][int(np.argmax(answer["probabilities"]))]
    assert printed[-1].startswith(f"clip: {answer['label']} {answer['probability']:.2f}")
    assert sum(line.startswith("clip:") for line in printed) == 1
