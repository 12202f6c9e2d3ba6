"""Cross-validation by group: folds (leave-one-group-out, K balanced folds), the crossval.json contract,
unseen classes counted both ways, resume after an interruption, figures, and one tiny real training run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from utils.data.features import FeatureSet, save_features
from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import ConfigError, SplitError
from utils.evaluation import crossval


def grouped_features(num_frames: int = 4) -> FeatureSet:
    """5 signers a..e, 4 clips of each of their signs: hello and thanks by everyone, help by e only (44
    clips)."""
    labels, groups = [], []
    for signer in "abcde":
        for label in ((0, 1, 2) if signer == "e" else (0, 1)):
            labels += [label] * 4
            groups += [signer] * 4
    n = len(labels)
    rng = np.random.default_rng(0)
    return FeatureSet(keypoints=rng.normal(size=(n, num_frames, KEYPOINT_DIM)).astype(np.float32),
                      frames=None, labels=np.array(labels, dtype=np.int64),
                      classes=["hello", "thanks", "help"], groups=np.array(groups), split=np.full(n, ""),
                      paths=np.array([f"clip{i}" for i in range(n)]))


class FakeTrain:
    """Stands in for training.train: writes a run folder; right for classes the training side has, else
    'hello'."""

    def __init__(self, fail_at_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_at_call = fail_at_call

    def __call__(self, features, model_name, config=None, out_dir=None, epochs=None, batch_size=None, seed=0,
                 test_group=None, verbose=1, measure_speed=True):
        if self.fail_at_call is not None and len(self.calls) == self.fail_at_call:
            raise KeyboardInterrupt("stopped during a fold")
        self.calls.append(list(test_group))
        is_test = np.isin(features.groups, test_group)
        known = set(features.labels[~is_test].tolist())
        true = features.labels[is_test]
        predicted = np.array([label if label in known else 0 for label in true])
        confusion = np.zeros((features.num_classes, features.num_classes), dtype=int)
        np.add.at(confusion, (true, predicted), 1)
        metrics = {"test_accuracy": float(np.mean(true == predicted)), "macro_f1": 0.5,
                   "confusion_matrix": confusion.tolist(), "epochs_run": 3, "best_epoch": 2,
                   "train_seconds": 0.1}
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("model.keras", "run.json"):
            (out_dir / name).write_text("{}")
        (out_dir / "metrics.json").write_text(json.dumps(metrics))
        return metrics


@pytest.fixture
def fake_train(monkeypatch: pytest.MonkeyPatch) -> FakeTrain:
    from utils.training import loop as training

    fake = FakeTrain()
    monkeypatch.setattr(training, "train", fake)
    return fake


# ----------------------------------------------------------------------------- folds
def test_loso_gives_one_fold_per_group_covering_every_clip_once():
    features = grouped_features()
    folds = crossval.make_folds(features.labels, features.groups, "loso")
    assert folds == [["a"], ["b"], ["c"], ["d"], ["e"]]


def test_k_folds_are_group_disjoint_cover_every_clip_once_and_balance_classes():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"s{i:02d}" for i in range(12)], 10)
    labels = rng.integers(0, 3, len(groups))
    labels[groups == "s00"] = 2  # a few groups lean on one class
    labels[groups == "s01"] = 2
    folds = crossval.make_folds(labels, groups, 3, seed=5)
    assert len(folds) == 3 and all(folds)
    flat = [g for fold in folds for g in fold]
    # each group in exactly one fold
    assert sorted(flat) == sorted(set(groups)) and len(flat) == len(set(flat))
    test_count = np.zeros(len(groups), dtype=int)
    for fold in folds:
        test_count[np.isin(groups, fold)] += 1
    assert (test_count == 1).all()  # every clip tested exactly once
    for fold in folds:
        share = np.bincount(labels[np.isin(groups, fold)], minlength=3) / np.bincount(labels, minlength=3)
        assert np.all(np.abs(share - 1 / 3) < 0.15), share
    assert crossval.make_folds(labels, groups, 3, seed=5) == folds  # deterministic for a seed


@pytest.mark.parametrize("value, message", [(1, "at least 2"), ("all", "loso"), ("-3", "at least 2")])
def test_parse_folds_refuses_nonsense(value, message):
    with pytest.raises(ConfigError, match=message):
        crossval.parse_folds(value)


def test_folds_need_enough_groups_and_a_group_for_every_clip():
    features = grouped_features()
    with pytest.raises(SplitError, match="6 folds need at least 6 groups.*has 5"):
        crossval.make_folds(features.labels, features.groups, 6)
    groups = features.groups.copy()
    groups[:3] = ""
    with pytest.raises(SplitError, match="3 of 44 clips have no group.*signer column"):
        crossval.make_folds(features.labels, groups, "loso")


def test_t_interval_matches_the_t_table():
    stats = crossval.t_interval([0.5, 0.7, 0.9])
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.7) and stats["std"] == pytest.approx(0.2)
    half = 4.302653 * 0.2 / np.sqrt(3)  # t(0.975, 2 dof)
    assert stats["ci95"] == pytest.approx([0.7 - half, 0.7 + half], abs=1e-6)
    assert crossval.t_interval([0.4])["ci95"] is None


# ----------------------------------------------------------------------------- the run, with a fake training
def test_crossval_json_contract_and_unseen_classes_counted_both_ways(tmp_path, fake_train):
    summary = crossval.run(grouped_features(), "lstm", "small", out_dir=tmp_path / "cv", progress=False)
    stored = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert stored["per_fold"] == json.loads(json.dumps(summary["per_fold"]))
    for key in ("model", "config", "folds", "num_folds", "seed", "features_sha256", "interval", "accuracy",
                "accuracy_seen_classes", "macro_f1", "pooled", "classes", "confusion_matrix", "per_fold"):
        assert key in stored, key
    assert stored["num_folds"] == 5 and stored["folds"] == "loso"
    for fold in stored["per_fold"]:
        # validation signers from the training side
        assert set(fold["val_groups"]).isdisjoint(fold["test_groups"])
        assert fold["val_groups"] and fold["n"] == fold["n_seen_classes"] + (
            4 if fold["unseen_classes"] else 0
        )
        assert fold["val_classes_not_trained"] == (["help"] if fold["val_groups"] == ["e"] else [])
    fold_e = stored["per_fold"][4]
    assert fold_e["test_groups"] == ["e"] and fold_e["unseen_classes"] == ["help"]
    assert fold_e["accuracy"] == pytest.approx(8 / 12) and fold_e["accuracy_seen_classes"] == 1.0
    assert stored["accuracy"]["mean"] == pytest.approx((4 + 8 / 12) / 5)
    assert stored["accuracy_seen_classes"]["mean"] == 1.0 and stored["accuracy"]["n"] == 5
    low, high = stored["accuracy"]["ci95"]
    assert low < stored["accuracy"]["mean"] < high
    assert np.array(stored["confusion_matrix"]).sum() == stored["pooled"]["n"] == 44
    assert stored["pooled"]["accuracy"] == pytest.approx(40 / 44)
    for name in ("folds.png", "confusion_matrix.png"):
        assert (tmp_path / "cv" / name).stat().st_size > 1000
    assert (tmp_path / "cv" / "fold_0" / "fold.json").is_file()


def test_k_fold_run_tests_every_clip_once(tmp_path, fake_train):
    features = grouped_features()
    summary = crossval.run(features, "lstm", "small", out_dir=tmp_path / "cv", folds=2, seed=3,
                           progress=False)
    assert summary["num_folds"] == 2 and summary["pooled"]["n"] == len(features)
    tested = sorted(g for fold in fake_train.calls for g in fold)
    assert tested == ["a", "b", "c", "d", "e"]


def test_an_interrupted_run_resumes_without_retraining_finished_folds(tmp_path, monkeypatch):
    from utils.training import loop as training

    features, out = grouped_features(), tmp_path / "cv"
    monkeypatch.setattr(training, "train", FakeTrain(fail_at_call=1))
    with pytest.raises(KeyboardInterrupt):
        crossval.run(features, "lstm", "small", out_dir=out, progress=False)
    assert (out / "fold_0" / "fold.json").is_file() and not (out / "crossval.json").exists()

    again = FakeTrain()
    monkeypatch.setattr(training, "train", again)
    summary = crossval.run(features, "lstm", "small", out_dir=out, progress=False)
    assert again.calls == [["b"], ["c"], ["d"], ["e"]]  # fold 0 (signer a) is read back, not retrained
    assert [f["resumed"] for f in summary["per_fold"]] == [True, False, False, False, False]

    other = FakeTrain()
    monkeypatch.setattr(training, "train", other)
    # another setting: retrain all
    crossval.run(features, "lstm", "small", out_dir=out, epochs=7, progress=False)
    assert len(other.calls) == 5


def test_a_fold_folder_of_other_features_is_retrained(tmp_path, fake_train):
    features, out = grouped_features(), tmp_path / "cv"
    crossval.run(features, "lstm", "small", out_dir=out, progress=False)
    features.keypoints[0, 0, 0] += 1.0  # same shapes, other content
    crossval.run(features, "lstm", "small", out_dir=out, progress=False)
    assert len(fake_train.calls) == 10


def test_unknown_model_is_refused_before_any_work(tmp_path, fake_train):
    with pytest.raises(ConfigError, match="unknown model 'nosuch'"):
        crossval.run(grouped_features(), "nosuch", out_dir=tmp_path / "cv", progress=False)
    assert not fake_train.calls and not (tmp_path / "cv").exists()


def test_the_results_table_compares_folders(tmp_path, fake_train):
    from utils.evaluation import evaluate

    features = grouped_features()
    crossval.run(features, "lstm", "small", out_dir=tmp_path / "loso", progress=False)
    crossval.run(features, "lstm", "small", out_dir=tmp_path / "two", folds=2, progress=False)
    table = evaluate.results_table([tmp_path / "loso", tmp_path / "two"])
    assert list(table["result"]) == ["loso", "two"] and list(table["n"]) == [5, 2]
    assert table.loc[0, "accuracy 95% interval"].startswith("[")
    summary = crossval.load_summary(tmp_path / "two")
    assert crossval.format_interval(summary["accuracy"]).startswith(f"{table.loc[1, 'accuracy']:.3f} [")
    with pytest.raises(ConfigError, match="crossval.json not found"):
        crossval.load_summary(tmp_path / "missing")


def test_crossval_command_prints_the_summary(tmp_path, fake_train, capsys):
    from utils import cli

    path = tmp_path / "f.npz"
    save_features(path, grouped_features())
    code = cli.main(["crossval", "--features", str(path), "--model", "lstm", "--config", "small", "--folds",
                     "2", "--out", str(tmp_path / "cv")])
    assert code == 0
    out = capsys.readouterr().out
    assert "2 folds (2)" in out and "95% t-interval" in out and "crossval.json" in out
    with pytest.raises(SystemExit) as refused:  # argparse names the models it knows
        cli.main(["crossval", "--features", str(path), "--model", "nosuch", "--out", str(tmp_path / "x")])
    assert refused.value.code == 2 and "invalid choice: 'nosuch'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- one tiny real training
def test_tiny_k_fold_training_run(tmp_path):
    from test_training import tiny_config, tiny_features

    features = tiny_features(with_frames=False)
    summary = crossval.run(features, "lstm", tiny_config(epochs=4), out_dir=tmp_path / "cv", folds=2,
                           progress=False)
    assert summary["num_folds"] == 2 and summary["pooled"]["n"] == len(features)
    for fold in summary["per_fold"]:
        metrics = json.loads((tmp_path / "cv" / fold["run_dir"] / "metrics.json").read_text())
        assert metrics["test_group"] == fold["test_groups"] and metrics["n_val"] > 0
        val_accuracy, val_loss = metrics["history"]["val_accuracy"], metrics["history"]["val_loss"]
        best = max(range(len(val_accuracy)), key=lambda i: (val_accuracy[i], -val_loss[i], -i)) + 1
        assert metrics["best_epoch"] == best  # chosen on the validation signers
        assert set(fold["val_groups"]).isdisjoint(fold["test_groups"])
    assert (tmp_path / "cv" / "folds.png").is_file() and (tmp_path / "cv" / "confusion_matrix.png").is_file()


# ----------------------------------------------------------------------------- without validation signers
def test_without_validation_every_training_signer_trains(tmp_path, fake_train):
    from utils import models

    config = models.get_config("lstm", "small").replace(validation=False)
    summary = crossval.run(grouped_features(), "lstm", config, out_dir=tmp_path / "cv", progress=False)
    for fold in summary["per_fold"]:
        assert fold["val_groups"] == [] and fold["n_val"] == 0
        assert fold["n_train"] == 44 - fold["n"]  # the whole training side trains
    with_validation = crossval.run(grouped_features(), "lstm", "small", out_dir=tmp_path / "cv2",
                                   progress=False)
    assert all(fold["n_val"] > 0 for fold in with_validation["per_fold"])


def test_no_validation_flag_reaches_the_folds(tmp_path, fake_train):
    from utils import cli

    path = tmp_path / "f.npz"
    save_features(path, grouped_features())
    assert cli.main(["crossval", "--features", str(path), "--model", "lstm", "--config", "small", "--folds",
                     "2", "--no-validation", "--out", str(tmp_path / "cv")]) == 0
    stored = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert stored["config_full"]["validation"] is False
    assert all(fold["n_val"] == 0 for fold in stored["per_fold"])


def test_tiny_training_without_validation_keeps_the_last_epoch(tmp_path):
    from test_training import tiny_config, tiny_features

    features = tiny_features(with_frames=False)
    summary = crossval.run(features, "lstm", tiny_config(epochs=3).replace(validation=False),
                           out_dir=tmp_path / "cv", folds=2, progress=False)
    for fold in summary["per_fold"]:
        metrics = json.loads((tmp_path / "cv" / fold["run_dir"] / "metrics.json").read_text())
        assert metrics["n_val"] == 0 and metrics["epochs_run"] == 3 and metrics["best_epoch"] == 3
