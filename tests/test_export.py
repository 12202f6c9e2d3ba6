"""Tests of utils.export: the exported SavedModel and TFLite take RAW clips and give the Keras model's
probabilities.

Keras is fed the NumPy input path (utils.inputs.prepare_inputs); the exported files get the stored clips
(raw keypoints, uint8 64x64 thumbnails, 30 frames) and prepare them inside their graph. Models are built from
their registered configurations with random weights (no training needed for parity) on synthetic signers
of both hands with detector drop-outs, so every preprocessing step changes the answer.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_tf_preprocessing import synthetic_keypoints
from tiny_runs import convlstm_run, features, lstm_run, untrained_run  # noqa: F401  (pytest fixtures)

ATOL = 1e-4  # Keras vs SavedModel vs TFLite (float32)
FP16_ATOL = 2e-3  # Keras vs TFLite with float16 weights; the argmax must agree too
CLIPS = np.arange(6)  # parity on these clips: left- and right-handed signers, gaps, a clip without a pose


def signer_features():
    """A FeatureSet of 13 synthetic clips, T=30, with random 64x64 uint8 thumbnails and 5 classes."""
    from utils.data.features import FeatureSet

    keypoints = synthetic_keypoints()
    count = len(keypoints)
    frames = (np.random.default_rng(0).random((count, 30, 64, 64, 3)) * 255).astype(np.uint8)
    crops = (np.random.default_rng(1).random((count, 30, 2, 32, 32, 3)) * 255).astype(np.uint8)
    return FeatureSet(keypoints=keypoints, frames=frames, hand_crops=crops, labels=np.arange(count) % 5,
                      classes=list("abcde"),
                      groups=np.array([f"s{i % 4}" for i in range(count)]), split=np.full(count, ""),
                      paths=np.array([f"clip{i}.mp4" for i in range(count)]))


@pytest.fixture(scope="module")
def signers():
    return signer_features()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, signers):
    """runs(model_name, config_name): an untrained run folder of a registered configuration, made once per
    module."""
    from utils import models

    made: dict[tuple[str, str], Path] = {}
    root = tmp_path_factory.mktemp("config_runs")

    def get(model_name: str, config_name: str) -> Path:
        if (model_name, config_name) not in made:
            import keras

            keras.utils.set_random_seed(0)  # the same random weights whichever tests built other models first
            made[model_name, config_name] = untrained_run(root / f"{model_name}_{config_name}", signers,
                                                          model_name,
                                                          models.get_config(model_name, config_name))
        return made[model_name, config_name]

    return get


def keras_probabilities(run: Path, features, indices: np.ndarray) -> np.ndarray:
    """The Keras model of a run on the NumPy input path."""
    from utils.inputs.spec import prepare_inputs
    from utils.training.runs import load_run

    model, run_info = load_run(run)
    return np.asarray(model.predict(prepare_inputs(features, run_info, indices), verbose=0))


def raw_clips(run: Path, features, indices: np.ndarray) -> dict:
    """The stored clips (raw keypoints, uint8 thumbnails) an exported model of the run takes."""
    from utils.inputs.spec import stored_clips
    from utils.training.runs import load_run

    return stored_clips(features, load_run(run)[1], indices)


def assert_same_as_keras(expected: np.ndarray, exported: Path, raw: dict, atol: float = ATOL) -> None:
    """The exported file's probabilities on raw clips equal Keras's (within atol) and pick the same
    classes."""
    from utils.serving.export import predict_exported

    got = predict_exported(exported, raw)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0, err_msg=str(exported))
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def _check_export(tmp_path: Path, features, run: Path) -> dict:
    """Export a run; Keras, SavedModel and TFLite agree on raw clips; return export.json."""
    from utils.serving.export import export_model

    written = export_model(run, tmp_path / "export", verbose=False)
    assert [p.name for p in written] == ["savedmodel", "model.tflite", "labels.txt", "run.json",
                                         "export.json"]
    expected = keras_probabilities(run, features, CLIPS)
    assert expected.max(axis=1).min() < 0.99, "outputs saturated: the parity check would see nothing"
    raw = raw_clips(run, features, CLIPS)
    for path in written[:2]:
        assert_same_as_keras(expected, path, raw)
    return json.loads((tmp_path / "export" / "export.json").read_text())


@pytest.mark.parametrize("model_name", ["lstm", "convlstm", "fused"])
def test_recommended_models_export_with_the_preprocessing_inside(tmp_path, signers, runs, model_name):
    from utils import models

    info = _check_export(tmp_path, signers, runs(model_name, "recommended"))
    config = models.get_config(model_name)
    assert [i["name"] for i in info["inputs"]] == list(models.model_inputs(model_name, config))
    shapes = {i["name"]: (i["shape"], i["dtype"]) for i in info["inputs"]}
    assert shapes.get("keypoints", ([1, 30, 1662], "float32")) == ([1, 30, 1662], "float32")
    assert shapes.get("frames", ([1, 30, 64, 64, 3], "uint8")) == ([1, 30, 64, 64, 3], "uint8")
    assert shapes.get("hands", ([1, 30, 2, 32, 32, 3], "uint8")) == ([1, 30, 2, 32, 32, 3], "uint8")
    if model_name == "convlstm":  # whole frames and hand crops, flip-averaged inside the exported file too
        assert list(shapes) == ["frames", "hands"] and config.test_time_flip
    assert info["classes"] == list("abcde") and info["clip_frames"] == 30
    assert info["model_frames"] == config.num_frames and info["preprocessing_inside"] is True
    from utils.serving.export import load_tflite

    runner = load_tflite(tmp_path / "export" / "model.tflite")
    assert list(runner.get_output_details()) == [info["output"]["name"]] == ["probabilities"]
    assert {name: (list(d["shape"]), d["dtype"].__name__) for name,
            d in runner.get_input_details().items()} == \
        {name: (shape, dtype) for name, (shape, dtype) in shapes.items()}


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["lstm", "convlstm", "fused"])
def test_seed_models_export_with_the_preprocessing_inside(tmp_path, signers, runs, model_name):
    """The original's shapes (T=30, 64x64 frames, LSTM 512x2): no resizing, raw keypoints."""
    _check_export(tmp_path, signers, runs(model_name, "seed"))


@pytest.mark.slow
def test_hand_crop_model_exports_with_the_resizing_inside(tmp_path, signers):
    """A fused model on keypoints, whole frames and hand crops stored at 40 px (resized to 32 inside)."""
    from dataclasses import replace

    from utils import models
    from utils.serving.export import export_model

    crops = (np.random.default_rng(2).random((len(signers), 30, 2, 40, 40, 3)) * 255).astype(np.uint8)
    features = replace(signers, hand_crops=crops)
    config = models.get_config("fused").replace(frame_input="both", convlstm_filters=(4,))
    run = untrained_run(tmp_path / "fused_both", features, "fused", config)
    written = export_model(run, tmp_path / "export", verbose=False)
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert {i["name"]: i["shape"] for i in info["inputs"]}["hands"] == [1, 30, 2, 40, 40, 3]
    expected = keras_probabilities(run, features, CLIPS[:3])
    for path in written[:2]:
        assert_same_as_keras(expected, path, raw_clips(run, features, CLIPS[:3]))


def test_fp16_export_is_smaller_and_agrees(tmp_path, signers, runs, capsys):
    """float16 weights: 2 bytes per weight instead of float32's 4, same answers within FP16_ATOL.

    Compared with the float32 file, not with 4 bytes per weight: the recommended models are small enough that
    the graph (input preparation, the unrolled ConvLSTM) is a large part of the file."""
    from utils.serving.export import export_model
    from utils.training.runs import load_run

    run = runs("fused", "recommended")
    half = export_model(run, tmp_path / "half", formats=["tflite"], fp16=True)
    printed = capsys.readouterr().out
    assert half[0].name == "model_fp16.tflite" and f"{half[0]}" in printed and " MB " in printed
    full = export_model(run, tmp_path / "full", formats=["tflite"])
    saved = full[0].stat().st_size - half[0].stat().st_size
    assert saved > 1.5 * load_run(run)[0].count_params()  # ~2 bytes saved per weight
    assert json.loads((tmp_path / "half" / "export.json").read_text())["tflite_weights"] == "float16"
    expected = keras_probabilities(run, signers, CLIPS)
    assert_same_as_keras(expected, half[0], raw_clips(run, signers, CLIPS), atol=FP16_ATOL)


# ----------------------------------------------------------------------------- a wrong export is caught
def _float_frames(original):
    return lambda frames, options=None: original(frames, {"frames": "rgb"})


#: A TensorFlow step, a model whose input it changes, and "skip it" (given the step, its replacement).
SKIPPED_STEPS = {
    "preprocess_frames": ("convlstm", _float_frames),  # no frame differences
    "canonicalize_handedness": ("fused", lambda original: lambda kp, method="motion": kp),
    "fill_hand_gaps": ("lstm", lambda original: lambda kp, max_gap: kp),
    "_normalize_parts": ("lstm", lambda original: lambda parts, *args: list(parts)),
    "hand_shape": ("lstm", lambda original: lambda kp, use_z=True: 0 * original(kp, use_z)),
}


@pytest.mark.parametrize("step", sorted(SKIPPED_STEPS))
def test_parity_check_sees_a_skipped_step(signers, runs, monkeypatch, step):
    """The exported function with one preprocessing step skipped is off by far more than the tolerance."""
    import tensorflow as tf

    from utils.inputs import tf_preprocessing
    from utils.serving.export import serving_function
    from utils.training.runs import load_run

    model_name, skip = SKIPPED_STEPS[step]
    run = runs(model_name, "recommended")
    model, run_info = load_run(run)
    raw = {name: tf.constant(value) for name,
           value in raw_clips(run, signers, np.arange(len(signers))).items()}
    expected = keras_probabilities(run, signers, np.arange(len(signers)))
    right = serving_function(model, run_info)(raw)["probabilities"].numpy()
    np.testing.assert_allclose(right, expected, atol=ATOL, rtol=0)
    monkeypatch.setattr(tf_preprocessing, step, skip(getattr(tf_preprocessing, step)))
    wrong = serving_function(model, run_info)(raw)["probabilities"].numpy()
    # far outside the parity tolerance: untrained weights answer almost uniformly, and the recommended models
    # (an ensemble of 3 keypoint networks; a ConvLSTM with two branches and two flip views) damp one skipped
    # step's effect to about 90-100 x ATOL
    assert np.abs(wrong - expected).max() > 10 * ATOL


def test_an_exported_file_that_skips_a_step_fails_the_parity_check(tmp_path, signers, runs, monkeypatch):
    """Once through a real export: a SavedModel without frame differences does not pass."""
    from utils.inputs import tf_preprocessing
    from utils.serving.export import export_model

    run = runs("fused", "recommended")
    monkeypatch.setattr(tf_preprocessing, "preprocess_frames",
                        _float_frames(tf_preprocessing.preprocess_frames))
    written = export_model(run, tmp_path / "export", formats=["savedmodel"], verbose=False)
    with pytest.raises(AssertionError):
        assert_same_as_keras(keras_probabilities(run, signers, CLIPS), written[0],
                             raw_clips(run, signers, CLIPS))


# ----------------------------------------------------------------------------- the tiny trained runs
def test_exported_lstm_gives_the_keras_probabilities(tmp_path, features, lstm_run):
    from utils.serving.export import export_model
    from utils.training.runs import load_run

    written = export_model(lstm_run, tmp_path / "export")
    names = sorted(p.name for p in written)
    assert names == ["export.json", "labels.txt", "model.tflite", "run.json", "savedmodel"]
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == names  # no temporary folder left
    _, run_info = load_run(lstm_run)
    assert (tmp_path / "export" / "labels.txt").read_text().split() == run_info["classes"]
    expected = keras_probabilities(lstm_run, features, np.arange(5))
    for path in written[:2]:
        assert_same_as_keras(expected, path, raw_clips(lstm_run, features, np.arange(5)))


def test_frame_model_exports_to_tflite(tmp_path, features, convlstm_run):
    """Our ConvLSTM layer converts with built-in ops once the batch size is fixed to 1."""
    from utils.serving.export import export_model

    written = export_model(convlstm_run, tmp_path / "export", formats=["tflite"], verbose=False)
    assert written[0].name == "model.tflite"
    raw = raw_clips(convlstm_run, features, np.arange(3))
    assert raw["frames"].dtype == np.uint8
    assert_same_as_keras(keras_probabilities(convlstm_run, features, np.arange(3)), written[0], raw)


def test_cli_export_fp16_prints_the_sizes(tmp_path, features, lstm_run, capsys):
    """`python -m utils export --fp16` writes model_fp16.tflite taking raw keypoints and prints every file's
    size."""
    from utils import cli

    assert cli.main(["export", "--model", str(lstm_run), "--out", str(tmp_path / "out"), "--formats",
                     "tflite", "--fp16"]) == 0
    printed = capsys.readouterr().out
    for name in ("model_fp16.tflite", "labels.txt", "run.json", "export.json"):
        assert f"MB  {tmp_path / 'out' / name}" in printed
    info = json.loads((tmp_path / "out" / "export.json").read_text())
    assert info["inputs"] == [{"name": "keypoints", "shape": [1, 8, 1662], "dtype": "float32",
                               "description": "raw MediaPipe Holistic vectors, zeros where a part was not "
                                              "found"}]
    expected = keras_probabilities(lstm_run, features, np.arange(3))
    assert_same_as_keras(expected, tmp_path / "out" / "model_fp16.tflite",
                         raw_clips(lstm_run, features, np.arange(3)), atol=FP16_ATOL)


def test_load_run_for_inference_runs_the_convlstm_stack_with_the_same_answers(signers, runs):
    """--fast (load_run(fast=True)): the ConvLSTM layers and batch norms as one ConvLSTMStack, the same
    probabilities     as the saved model, and the run's description says the copy was used; by default the
    saved model runs."""
    from utils import models
    from utils.inputs.spec import prepare_inputs
    from utils.training.runs import load_run

    run = runs("fused", "recommended")
    saved, run_info = load_run(run)
    fast, fast_info = load_run(run, fast=True)
    assert "inference" not in run_info and "fast inference copy" in fast_info["inference"]
    assert not any(isinstance(layer, models.ConvLSTMStack) for layer in saved.layers)
    assert any(isinstance(layer, models.ConvLSTMStack) for layer in fast.layers)
    inputs = prepare_inputs(signers, run_info, CLIPS)
    np.testing.assert_allclose(fast.predict(inputs, verbose=0), saved.predict(inputs, verbose=0), atol=1e-5)
