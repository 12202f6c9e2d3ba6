"""evaluation.results_table and find_crossval_dirs: cross-validated results (mean, interval, n folds) next to
single-split runs (labelled one split) and chance, read from the crossval.json files crossval.run writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils.data.features import FeatureSet
from utils.data.keypoints import KEYPOINT_DIM
from utils.evaluation import crossval, evaluate as evaluation


def _features() -> FeatureSet:
    """4 signers a..d, 3 clips of each of 3 classes (36 clips of 2 frames)."""
    labels = np.tile(np.repeat([0, 1, 2], 3), 4)
    groups = np.repeat(list("abcd"), 9)
    n = len(labels)
    return FeatureSet(keypoints=np.zeros((n, 2, KEYPOINT_DIM), np.float32), frames=None, labels=labels,
                      classes=["hello", "thanks", "yes"], groups=groups, split=np.full(n, ""),
                      paths=np.array([f"clip{i}" for i in range(n)]))


def _fake_train(features, model_name, config=None, out_dir=None, test_group=None, **_):
    """Stands in for training.train: signer a's clips all right, every other test clip right only if class
    0."""
    is_test = np.isin(features.groups, test_group)
    true = features.labels[is_test]
    predicted = np.where(features.groups[is_test] == "a", true, 0)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (true, predicted), 1)
    metrics = {"test_accuracy": float(np.mean(true == predicted)), "macro_f1": 0.5,
               "confusion_matrix": confusion.tolist(), "epochs_run": 1, "best_epoch": 1, "train_seconds": 0.1}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "run.json"):
        (out_dir / name).write_text("{}")
    (out_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


@pytest.fixture
def crossval_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from utils.training import loop as training

    monkeypatch.setattr(training, "train", _fake_train)
    crossval.run(_features(), "lstm", "small", out_dir=tmp_path / "runs" / "crossval" / "lstm_small",
                 folds="loso", progress=False)
    return tmp_path / "runs" / "crossval" / "lstm_small"


def test_results_table_puts_crossval_mean_interval_and_n_beside_one_split_and_chance(crossval_dir, tmp_path):
    run_dir = tmp_path / "runs" / "lstm_recommended"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"model": "lstm", "config": "recommended",
                                                      "test_accuracy": 0.75, "macro_f1": 0.7, "n_test": 12,
                                                      "split_strategy": "group-disjoint"}))
    table = evaluation.results_table([crossval_dir], run_dirs=[run_dir], num_classes=3)
    assert list(table["result"]) == ["lstm_small", "lstm_recommended", "chance"]
    assert list(table["kind"]) == ["cross-validated", "one split", "chance"]
    cv_row, split_row, chance = table.iloc[0], table.iloc[1], table.iloc[2]
    # leave-one-signer-out: signer a all right (1.0), b, c, d only class 0 right (1/3 each)
    assert cv_row["n"] == 4 and cv_row["accuracy"] == pytest.approx((1 + 3 * (1 / 3)) / 4)
    assert cv_row["worst fold"] == pytest.approx(1 / 3)
    low, high = crossval.load_summary(crossval_dir)["accuracy"]["ci95"]
    assert low < cv_row["accuracy"] < high and cv_row["accuracy 95% interval"] == f"[{low:.3f}, {high:.3f}]"
    assert "leave one group out" in cv_row["protocol"] and "36 test clips" in cv_row["protocol"]
    assert split_row["n"] == 1 and split_row["accuracy"] == 0.75
    assert split_row["protocol"].startswith("one split (group-disjoint), 12 test clips")
    assert split_row["accuracy 95% interval"] == "none (one split)"
    assert chance["accuracy"] == pytest.approx(1 / 3) and chance["n"] is pd.NA


def test_find_crossval_dirs_finds_summaries_not_folds_and_filters_by_features(crossval_dir, tmp_path):
    roots = [tmp_path / "runs", tmp_path / "absent"]
    # fold_0... hold metrics.json, not crossval.json
    assert evaluation.find_crossval_dirs(roots) == [crossval_dir]
    digest = crossval.features_digest(_features())
    assert evaluation.find_crossval_dirs(roots, features_sha256=digest) == [crossval_dir]
    assert evaluation.find_crossval_dirs(roots, features_sha256="0" * 64) == []
