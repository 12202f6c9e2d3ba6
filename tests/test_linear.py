"""The linear baseline: a Keras model whose probabilities are scikit-learn's, trained and saved like the
others."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_training import NUM_CLASSES, NUM_FRAMES, tiny_features
from utils import models


def _fit_sklearn(statistics: np.ndarray, labels: np.ndarray, c: float = 0.1):
    """StandardScaler + LogisticRegression as the linear model's training path fits them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(statistics)
    return scaler, LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(statistics), labels)


def _data(num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, T=7, D=5) random sequences whose class shifts one feature, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(40) % num_classes
    x = rng.normal(size=(40, 7, 5)).astype(np.float32)
    x[:, :, 0] += labels[:, None]
    return x, labels


def test_segment_statistics_are_segment_means_and_std():
    x, _ = _data(3)
    stats = models.segment_statistics(x, segments=3)  # T=7: segments [0, 2), [2, 5), [5, 7)
    expected = np.concatenate([x[:, :2].mean(1), x[:, 2:5].mean(1), x[:, 5:].mean(1), x.std(1)], axis=-1)
    np.testing.assert_allclose(stats, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_keras_probabilities_equal_sklearn(num_classes):
    x, labels = _data(num_classes)
    config = models.get_config("linear").replace(num_frames=7)
    stats = models.segment_statistics(x, config.segments)
    scaler, classifier = _fit_sklearn(stats, labels)
    model = models.build_model("linear", config, num_classes=num_classes, keypoint_dim=5)
    models.set_linear_weights(model, scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_,
                              classes=classifier.classes_)
    expected = classifier.predict_proba(scaler.transform(stats))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_classes_absent_from_training_get_no_probability():
    x, labels = _data(2)  # the model has 3 outputs; sklearn saw classes 0 and 2 only
    labels = labels * 2
    config = models.get_config("linear").replace(num_frames=7)
    stats = models.segment_statistics(x, config.segments)
    scaler, classifier = _fit_sklearn(stats, labels)
    model = models.build_model("linear", config, num_classes=3, keypoint_dim=5)
    models.set_linear_weights(model, scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_,
                              classes=classifier.classes_)
    probabilities = model.predict(x, verbose=0)
    assert probabilities[:, 1].max() < 1e-9
    np.testing.assert_allclose(probabilities[:, [0, 2]], classifier.predict_proba(scaler.transform(stats)),
                               atol=1e-5)


def test_train_linear_writes_a_run_that_evaluates_and_reloads(tmp_path):
    from utils.data.features import save_features
    from utils.evaluation import evaluate as evaluation
    from utils.training import loop as training, runs

    features_file = tmp_path / "tiny.npz"
    save_features(features_file, tiny_features(with_frames=False))
    # the tiny clips' hands are points (no shape): hand shapes would be noise divided by noise
    config = models.get_config("linear").replace(num_frames=NUM_FRAMES, preprocessing={"normalize": True})
    metrics = training.train(str(features_file), "linear", config, out_dir=tmp_path / "run", seed=0,
                             verbose=0, measure_speed=False)
    assert metrics["test_accuracy"] > 1 / NUM_CLASSES + 0.2  # the sign is the hand's direction: linear enough
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"] == "linear" and run["inputs"] == ["keypoints"]
    scored = evaluation.evaluate_saved(tmp_path / "run", features_file, split="test")
    assert scored["accuracy"] == pytest.approx(metrics["test_accuracy"])
    model, _ = runs.load_run(tmp_path / "run")
    assert model.get_layer("keypoints_statistics").segments == config.segments


def test_cli_accepts_linear():
    from utils import cli

    args = cli.build_parser().parse_args(["train", "--features", "f.npz", "--model", "linear", "--out",
                                          "run"])
    assert args.model == "linear"


def _study():
    """benchmarks/real_signers.py as a module."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "real_signers.py"
    spec = importlib.util.spec_from_file_location("real_signers", path)
    study = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_signers", study)  # dataclasses look their module up while the file runs
    spec.loader.exec_module(study)
    return study


def test_study_cache_keys_and_cached_probabilities(tmp_path):
    study = _study()
    config = models.get_config("lstm").replace(class_weight=None, ensemble=1, label_smoothing=0.0)
    keys = study.cache_keys(config, False, "four", "0:a", 0)
    # linear_blend, class_weight at their defaults: also the key written before they existed
    assert len(keys) == 2
    for other in (study.cache_keys(config, False, "four", "0:b", 0),
                  study.cache_keys(config, False, "four", "0:a", 1),
                  study.cache_keys(config, True, "four", "0:a", 0),
                  study.cache_keys(config.replace(epochs=3), False, "four", "0:a", 0)):
        assert not set(other) & set(keys)
    assert study.cache_keys(config.replace(name="x", description="y"), False, "four", "0:a", 0) == keys
    balanced = study.cache_keys(config.replace(class_weight="balanced"), False, "four", "0:a", 0)
    assert not set(balanced) & set(keys)
    for later in ({"label_smoothing": 0.1}, {"keypoint_encoder": "lstm"}):
        assert not set(study.cache_keys(config.replace(**later), False, "four", "0:a", 0)) & set(keys)
    stored = np.array([[0.2, 0.8]], np.float32)
    np.savez(tmp_path / f"{keys[1]}.npz", probabilities=stored, seconds=12.5)  # an older spelling of the key
    # no fit
    probabilities, seconds = study.fit_and_predict(config, False, 0, None, None, None, tmp_path, keys)
    np.testing.assert_array_equal(probabilities, stored)
    assert seconds == 12.5


def test_study_folds_are_signer_disjoint_and_cover_every_signer():
    study = _study()
    signers = np.array([f"s{i % 40}" for i in range(400)])
    folds = study.group_folds(signers, 5)
    assert [len(f) for f in folds] == [8] * 5
    assert sorted(np.concatenate(folds).tolist()) == sorted(set(signers.tolist()))
    assert [f.tolist() for f in study.group_folds(signers[:12],
                                                  None)] == [[f"s{i}"] for i in sorted(range(12), key=str)]
    low, high = study.t_interval([0.5, 0.7, 0.6])
    assert low < 0.6 < high and high - 0.6 == pytest.approx(0.6 - low)


def test_study_extra_signers_join_the_training_side_only():
    study = _study()
    clips = study.ClipSet(np.zeros((4, 2, 3)), np.array(["a", "b", "a", "b"]),
                          np.array(["s1", "s1", "s2", "s2"]))
    extra = study.ClipSet(np.ones((2, 2, 3)), np.array(["a", "c"]), np.array(["f1", "f1"]))
    test = np.array([False, False, True, True])
    both, train, test_after = study.with_extra_signers(clips, ~test, test, extra)
    assert train.tolist() == [True, True, False, False, True, True]
    assert test_after.tolist() == [False, False, True, True, False, False]
    assert both.labels[train].tolist() == ["a", "b", "a",
                                           "c"] and both.signers[test_after].tolist() == ["s2", "s2"]
    assert both.keypoints.shape == (6, 2, 3) and both.keypoints[train].sum() == 12  # the extra clips' ones


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["linear", "lstm"])
def test_linear_and_recommended_keypoint_models_export_with_the_keras_probabilities(tmp_path, model_name):
    """The linear model and the recommended conv_gru keypoint model survive SavedModel/TFLite export (raw
    inputs)."""
    from tests.test_export import assert_same_as_keras, keras_probabilities, raw_clips
    from tests.tiny_runs import NUM_FRAMES as FRAMES, tiny_features as export_features
    from utils.serving.export import export_model
    from utils.training import loop as training

    features = export_features()
    config = models.get_config(model_name).replace(num_frames=FRAMES, lstm_units=(8, 8), head_units=(8,),
                                                   epochs=1, batch_size=8)
    training.train(features, model_name, config, out_dir=tmp_path / "run", verbose=0, measure_speed=False)
    written = export_model(tmp_path / "run", tmp_path / "export")
    expected = keras_probabilities(tmp_path / "run", features, np.arange(5))
    for path in written[:2]:
        assert_same_as_keras(expected, path, raw_clips(tmp_path / "run", features, np.arange(5)))


def test_study_chance_row_and_every_sign_with_its_training_signers():
    """The chance row scores 1 / (training signs) on a seen sign, 0 on a sign no training signer showed; each
    sign is reported with its test clips and the training and test signers who showed it."""
    study = _study()
    labels = np.array(["a", "b", "a", "c", "a", "b"])
    signers = np.array(["s1", "s1", "s2", "s2", "s3", "s3"])
    clips = study.ClipSet(np.zeros((6, 2, 3), np.float32), labels, signers)
    test = signers == "s2"  # a (seen: s1 and s3 show it) and c (no training signer shows it)
    chance = study.Candidate("chance", None, chance=True)
    fold = study.run_fold(chance, "four", "0:s2", clips, ~test, test, None, None, None)
    assert fold["accuracy"] == pytest.approx(0.25) and fold["accuracy_seen"] == pytest.approx(0.5)
    assert fold["per_sign"]["a"] == {"n": 1, "correct": 0.5, "train_signers": 2, "test_signers": 1}
    assert fold["per_sign"]["c"] == {"n": 1, "correct": 0.0, "train_signers": 0, "test_signers": 1}
    assert fold["per_sign"]["b"]["n"] == 0 and fold["test_signers"] == ["s2"]
    summary = study.table.sign_summary({"folds": [fold, fold]})
    assert summary["a"]["recall"] == [0.5, 0.5] and summary["b"]["recall"] == [None, None]
    assert summary["c"]["train_signers"] == [0, 0] and summary["a"]["n"] == 2
