"""Metrics, latency, run comparison and the figures of utils.plots."""
from __future__ import annotations

import json

import numpy as np
import pytest

from utils import plots
from utils.data import figures
from utils.errors import ModelDirError
from utils.evaluation import evaluate as evaluation
from utils.training import metrics


def test_classification_metrics_by_hand():
    classes = ["a", "b", "c"]
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    m = metrics.classification_metrics(y_true, y_pred, classes)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["n"] == 6
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]  # rows = true class
    assert m["per_class"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3,
                                                 "support": 3})
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    json.dumps(m)  # plain Python types only


def test_accuracy_is_per_clip_not_per_batch():
    # 9 clips right in a batch of 9, 0 of 1 in a last batch of 1: per clip 0.9, per-batch average 0.5
    m = metrics.classification_metrics([0] * 10, [0] * 9 + [1], ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.9)


def test_classification_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        metrics.classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        metrics.classification_metrics([], [], ["a", "b"])


class _CountingModel:
    """A stand-in model: returns one probability row per clip and counts calls."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def predict_on_batch(self, inputs):
        size = len(inputs["keypoints"])
        self.batch_sizes.append(size)
        return np.full((size, 2), 0.5)


def test_measure_latency_times_single_clips_and_a_batch():
    model = _CountingModel()
    result = metrics.measure_latency(model, {"keypoints": np.zeros((4, 3, 5))}, repeats=5, warmup=1)
    assert model.batch_sizes == [1] * 6 + [4, 4]
    assert result["ms_per_clip"] > 0 and result["clips_per_second"] > 0 and result["repeats"] == 5


def _fake_run(folder, name, accuracy, model="lstm", config="small", latency=None):
    run = folder / name
    run.mkdir()
    metrics = {"model": model, "config": config, "test_accuracy": accuracy, "macro_f1": accuracy - 0.05,
               "params": 1000, "train_seconds": 12.5, "per_class": {"a": {"f1": accuracy}, "b": {"f1": 0.5}}}
    if latency is not None:
        metrics["latency"] = {"ms_per_clip": latency}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_compare_runs_table(tmp_path):
    runs = [_fake_run(tmp_path, "one", 0.8, latency=3.0), _fake_run(tmp_path, "two", 0.6, model="fused")]
    df = evaluation.compare_runs(runs)
    assert list(df["run"]) == ["one", "two"] and list(df["model"]) == ["lstm", "fused"]
    assert df["test_accuracy"].tolist() == [0.8, 0.6]
    assert df["ms_per_clip"].iloc[0] == 3.0 and np.isnan(df["ms_per_clip"].iloc[1])
    with pytest.raises(ModelDirError, match="metrics.json"):
        evaluation.compare_runs([tmp_path / "nothing"])


def test_every_plot_returns_a_figure_and_saves_it(tmp_path, monkeypatch):
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    monkeypatch.setattr(plots.paths, "FIGURES_DIR", tmp_path / "figures")
    runs = [_fake_run(tmp_path, "one", 0.8), _fake_run(tmp_path, "two", 0.6)]
    history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.7]}
    report = pd.DataFrame({"train": [3, 4], "val": [1, 1], "test": [1, 2], "total": [5, 7]},
                          index=pd.Index(["a", "b"], name="class"))
    made = {
        "history": plots.plot_history(history, "run", save_as="history"),
        "cm": plots.plot_confusion_matrix([[2, 1], [0, 3]], ["a", "b"], save_as="cm"),
        "counts": plots.plot_class_counts(report, save_as="counts"),
        "grid": plots.plot_frame_grid([np.zeros((8, 8, 3), np.uint8)] * 3, ["x", "y", "z"], save_as="grid"),
        "hands": figures.plot_hand_crops([np.zeros((40, 60, 3), np.uint8)], [np.full(1662, 0.5, np.float32)],
                                         8,
                                       save_as="hands"),
        "f1": plots.plot_per_class_f1(runs, save_as="f1"),
        "comparison": plots.plot_model_comparison(evaluation.compare_runs(runs), save_as="comparison"),
    }
    for name, fig in made.items():
        assert hasattr(fig, "savefig")
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 1000, name
    path = plots.save_fig(made["cm"], "again", folder=tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "again.png" and path.is_file()
    assert plots.plot_history(history) is not None and not (tmp_path / "figures" / "None.png").exists()
