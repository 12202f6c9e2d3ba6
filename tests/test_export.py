"""Tests of utils.export: SavedModel and TFLite give the Keras model's probabilities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tiny_runs import convlstm_run, features, lstm_run  # noqa: F401  (pytest fixtures)


# ----------------------------------------------------------------------------- export
def _assert_same_as_keras(model, exported: Path, inputs: dict) -> None:
    from utils.export import predict_exported

    expected = np.asarray(model.predict(inputs, verbose=0))
    got = predict_exported(exported, inputs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_exported_lstm_gives_the_keras_probabilities(tmp_path, features, lstm_run):
    from utils.inputs import prepare_inputs
    from utils.export import export_model
    from utils.runs import load_run

    written = export_model(lstm_run, tmp_path / "export")
    names = sorted(p.name for p in written)
    assert names == ["labels.txt", "model.tflite", "run.json", "savedmodel"]
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == names  # no temporary folder left
    model, run_info = load_run(lstm_run)
    assert (tmp_path / "export" / "labels.txt").read_text().split() == run_info["classes"]
    inputs = prepare_inputs(features, run_info, np.arange(5))
    for path in written[:2]:
        _assert_same_as_keras(model, path, inputs)


def test_frame_model_exports_to_tflite(tmp_path, features, convlstm_run):
    """Our ConvLSTM layer converts with built-in ops once the batch size is fixed to 1."""
    from utils.inputs import prepare_inputs
    from utils.export import export_model
    from utils.runs import load_run

    written = export_model(convlstm_run, tmp_path / "export", formats=["tflite"], verbose=False)
    assert written[0].name == "model.tflite"
    model, run_info = load_run(convlstm_run)
    _assert_same_as_keras(model, written[0], prepare_inputs(features, run_info, np.arange(3)))


