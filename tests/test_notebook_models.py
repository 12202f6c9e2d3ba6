"""What notebooks 03-05 build in view is the network utils.models builds: same layers, shapes, sizes,
settings."""
from pathlib import Path

import keras
import nbformat
import pytest

from utils import models, plots
from utils.inputs import preprocessing

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Layer settings that change what a layer computes without changing its type, shape or parameter count.
COMPARED_SETTINGS = ("activation", "recurrent_activation", "return_sequences", "kernel_size", "padding",
                     "momentum", "epsilon", "rate", "scale", "offset")


def cell_source(notebook: str, cell_id: str) -> str:
    """The source of the cell with this id in notebooks/<notebook>."""
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    matches = [cell.source for cell in cells if cell.get("id") == cell_id]
    assert matches, f"{notebook}: no cell with id {cell_id!r} (the model-building cell)"
    return matches[0]


def run_cell(notebook: str, cell_id: str) -> dict:
    """Execute one notebook cell with the names the notebook imported; return its namespace."""
    namespace = {"keras": keras, "models": models}
    exec(compile(cell_source(notebook, cell_id), f"{notebook}:{cell_id}", "exec"), namespace)
    return namespace


def signature(model: keras.Model) -> dict:
    """Layer types, output shapes, parameter counts and compute-relevant settings, independent of names."""
    layers = []
    for layer in model.layers:
        settings = layer.get_config()
        layers.append((type(layer).__name__, tuple(layer.output.shape), layer.count_params(),
                       tuple(str(settings.get(key)) for key in COMPARED_SETTINGS)))
    return {"inputs": [tuple(t.shape) for t in model.inputs], "output": tuple(model.output.shape),
            "params": model.count_params(), "layers": sorted(layers)}


@pytest.mark.parametrize("config_name", models.config_names())
def test_notebook_03_lstm_is_utils_lstm(config_name):
    keypoint_lstm = run_cell("03_lstm_baseline.ipynb", "03-model")["keypoint_lstm"]
    cfg = models.get_config("lstm", config_name)
    dim = preprocessing.output_dim(cfg.preprocessing)
    assert signature(keypoint_lstm(cfg, 7,
                                   dim)) == signature(models.build_model("lstm", cfg, 7, keypoint_dim=dim))


def test_notebook_03_seed_ensemble_is_utils_ensemble():
    keypoint_lstm = run_cell("03_lstm_baseline.ipynb", "03-model")["keypoint_lstm"]
    cfg = models.get_config("lstm").replace(ensemble=2)
    dim = preprocessing.output_dim(cfg.preprocessing)
    in_view = keypoint_lstm(cfg, 7, dim)
    assert [m.name for m in models.ensemble_members(in_view)] == ["member1", "member2"]
    assert signature(in_view) == signature(models.build_model("lstm", cfg, 7, keypoint_dim=dim))
    assert signature(in_view) != signature(models.build_model("lstm", cfg.replace(ensemble=3), 7,
                                                              keypoint_dim=dim))


@pytest.mark.parametrize("config_name", models.config_names())
def test_notebook_04_convlstm_is_utils_convlstm(config_name):
    frame_convlstm = run_cell("04_convlstm_baseline.ipynb", "04-model")["frame_convlstm"]
    cfg = models.get_config("convlstm", config_name)
    assert signature(frame_convlstm(cfg, 7)) == signature(models.build_model("convlstm", cfg, 7))


def test_notebook_05_fused_is_utils_fused_at_original():
    fused_in_view = run_cell("05_fused_model.ipynb", "05-model")["fused_in_view"]
    original = models.get_config("fused", "original")
    assert signature(fused_in_view) == signature(models.build_model("fused", original, num_classes=10))
    assert fused_in_view.count_params() == models.formula_param_count("fused", original, 10)["total"]


def test_signature_tells_different_networks_apart():
    """The comparison is not vacuous: one LSTM less, or tanh for ReLU, is a different network."""
    keypoint_lstm = run_cell("03_lstm_baseline.ipynb", "03-model")["keypoint_lstm"]
    frame_convlstm = run_cell("04_convlstm_baseline.ipynb", "04-model")["frame_convlstm"]
    original = models.get_config("lstm", "original")
    assert signature(keypoint_lstm(original.replace(lstm_units=(512,)), 7, 1662)) != \
        signature(models.build_model("lstm", original, 7))
    small = models.get_config("convlstm", "small")
    assert signature(frame_convlstm(small.replace(convlstm_activation="tanh"), 7)) != \
        signature(models.build_model("convlstm", small, 7))


@pytest.mark.parametrize("notebook, cell_id", [("03_lstm_baseline.ipynb", "03-model-summary"),
                                               ("04_convlstm_baseline.ipynb", "04-model-summary"),
                                               ("05_fused_model.ipynb", "05-03")])
def test_notebook_prints_summary_and_draws_the_architecture(notebook, cell_id):
    source = cell_source(notebook, cell_id)
    assert ".summary()" in source and "plots.plot_architecture(" in source and "save_as=" in source


def test_plot_architecture_draws_branches_and_saves(tmp_path):
    model = models.build_model("fused", models.get_config("fused", "small"), num_classes=4)
    layout = plots.architecture_layout(model)
    assert set(layout) == {layer.name for layer in model.layers}
    assert layout["keypoints"][0] != layout["frames"][0], "the two inputs get their own columns"
    assert layout["fuse"][1] > max(layout["keypoints_lstm2"][1], layout["frames_flatten"][1])
    assert layout["probabilities"][1] == layout["fuse"][1] + 1
    plots.plot_architecture(model, save_as=tmp_path / "fused.png")
    assert (tmp_path / "fused.png").stat().st_size > 5_000
