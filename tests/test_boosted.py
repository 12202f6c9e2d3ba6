"""The boosted baseline: scikit-learn's gradient-boosted trees on the linear model's segment statistics, held
in a Keras model, trained, evaluated, cross-validated, predicted and exported like the other models."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.test_training import NUM_CLASSES, NUM_FRAMES, tiny_features
from utils import models
from utils.errors import ConfigError


@pytest.fixture(autouse=True)
def one_thread():
    """scikit-learn's trees on one OpenMP thread: on a small, shared machine threads mostly wait for each
    other (a tiny fit took 6 s on two busy cores, 0.4 s on one)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _data(num_classes: int, count: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, T=7, D=5) random sequences whose class shifts one feature in the first frames, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    x = rng.normal(size=(count, 7, 5)).astype(np.float32)
    x[:, :3, 0] += labels[:, None]
    return x, labels


def easy_features(copies: int = 3):
    """The tiny signers' clips drawn ``copies`` times (other noise each time): 36 x copies clips. The trees
    need them: scikit-learn's default min_samples_leaf=20 splits no node of a training side under 40 clips."""
    from dataclasses import replace

    parts = [tiny_features(with_frames=False, seed=seed) for seed in range(copies)]
    return replace(
        parts[0],
        keypoints=np.concatenate([p.keypoints for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        groups=np.concatenate([p.groups for p in parts]),
        split=np.concatenate([p.split for p in parts]),
        paths=np.array(
            [
                f"copy{i // len(parts[0])}/{path}"
                for i, path in enumerate(np.concatenate([p.paths for p in parts]))
            ]
        ),
    )


def _tiny_config():
    """The boosted model on the tiny clips (T=NUM_FRAMES; their hands are points without a shape)."""
    return models.get_config("boosted").replace(
        num_frames=NUM_FRAMES, preprocessing={"normalize": True}, validation=False
    )  # every training signer for the trees


@pytest.mark.parametrize("num_classes", [2, 4])
def test_keras_probabilities_equal_sklearn(num_classes):
    x, labels = _data(num_classes)
    config = models.get_config("boosted").replace(num_frames=7)
    statistics = models.segment_statistics(x, config.segments)
    model = models.boosted.fit_boosted(config, statistics, labels, num_classes, keypoint_dim=5)
    classifier = models.boosted.make_classifier(0).fit(statistics, labels)
    new, _ = _data(num_classes, seed=1)  # other clips: values between the training thresholds
    expected = classifier.predict_proba(models.segment_statistics(new, config.segments))
    np.testing.assert_allclose(model.predict(new, verbose=0), expected, atol=1e-5)
    assert models.count_params(model)["total"] == model.count_params()


def test_classes_absent_from_training_get_no_probability():
    x, labels = _data(3)
    labels = np.where(labels == 1, 2, labels)  # classes 0 and 2 only: output 1 has no training clip
    config = models.get_config("boosted").replace(num_frames=7)
    model = models.boosted.fit_boosted(config, models.segment_statistics(x, 3), labels, 3, keypoint_dim=5)
    probabilities = model.predict(x, verbose=0)
    assert probabilities[:, 1].max() < 1e-9
    classifier = models.boosted.make_classifier(0).fit(models.segment_statistics(x, 3), labels)
    np.testing.assert_allclose(
        probabilities[:, [0, 2]], classifier.predict_proba(models.segment_statistics(x, 3)), atol=1e-5
    )


def test_float32_thresholds_decide_as_float64_ones():
    thresholds = np.array([0.1, 1 / 3, -2.7, 5.0, 1e-8])
    rounded = models.boosted._float32_at_most(thresholds)
    assert (rounded.astype(np.float64) <= thresholds).all()
    above = np.nextafter(rounded, np.float32(np.inf))  # the next float32 is already above the threshold
    assert (above.astype(np.float64) > thresholds).all()


def test_untrained_model_builds_and_no_seed_ensemble():
    config = models.get_config("boosted").replace(num_frames=7)
    model = models.build_model("boosted", config, num_classes=4, keypoint_dim=5)
    np.testing.assert_allclose(model.predict(np.zeros((2, 7, 5), np.float32), verbose=0), 0.25, atol=1e-6)
    with pytest.raises(ConfigError, match="ensemble=1"):
        models.build_model("boosted", config.replace(ensemble=3), num_classes=4, keypoint_dim=5)
    with pytest.raises(ConfigError, match="test_time_flip"):
        models.build_model("boosted", config.replace(test_time_flip=True), num_classes=4, keypoint_dim=5)
    assert "HistGradientBoosting" in models.get_config("boosted").description


def test_train_evaluate_reload_and_predict_a_run(tmp_path):
    """Trains on the tiny signers, beats chance on unseen ones, and the saved run reloads with the
    probabilities the fitted model gave before saving (evaluated, reloaded, and window by window as predict
    does)."""
    from utils.data.features import save_features
    from utils.evaluation import evaluate as evaluation
    from utils.inputs.spec import prepare_inputs
    from utils.serving.predict import WindowClassifier
    from utils.training import loop as training, runs

    features = easy_features()
    features_file = tmp_path / "tiny.npz"
    save_features(features_file, features)
    config = _tiny_config()
    metrics = training.train(
        str(features_file),
        "boosted",
        config,
        out_dir=tmp_path / "run",
        seed=0,
        verbose=0,
        measure_speed=False,
    )
    assert metrics["model"] == "boosted" and metrics["test_accuracy"] > 1 / NUM_CLASSES + 0.2
    scored = evaluation.evaluate_saved(tmp_path / "run", features_file, split="test")
    assert scored["accuracy"] == pytest.approx(metrics["test_accuracy"])

    model, run_info = runs.load_run(tmp_path / "run")
    assert run_info["model"] == "boosted" and run_info["inputs"] == ["keypoints"]
    with open(
        tmp_path / "run" / "predictions.csv", encoding="utf-8"
    ) as handle:  # the model before it was saved
        rows = list(csv.DictReader(handle))
    test = np.array([int(row["index"]) for row in rows])
    probabilities = model.predict(prepare_inputs(features, run_info, test), verbose=0)
    np.testing.assert_allclose(
        probabilities.max(axis=1), [float(row["confidence"]) for row in rows], atol=1e-5
    )
    assert [run_info["classes"][i] for i in probabilities.argmax(axis=1)] == [
        row["predicted"] for row in rows
    ]

    classify = WindowClassifier(model, run_info)  # what predict and the webcam run on each window
    window, _ = classify.probabilities(features.keypoints[test[0]], None)
    np.testing.assert_allclose(np.ravel(window), probabilities[0], atol=1e-5)


def test_crossval_by_signer(tmp_path):
    from utils.evaluation import crossval

    summary = crossval.run(
        easy_features(), "boosted", _tiny_config(), out_dir=tmp_path / "cv", folds=2, progress=False
    )
    assert summary["model"] == "boosted" and len(summary["per_fold"]) == 2
    assert summary["accuracy"]["mean"] > 1 / NUM_CLASSES + 0.2


def test_cli_accepts_boosted():
    from utils import cli

    args = cli.build_parser().parse_args(
        ["train", "--features", "f.npz", "--model", "boosted", "--out", "run"]
    )
    assert args.model == "boosted"


@pytest.mark.slow
def test_boosted_model_exports_with_the_keras_probabilities(tmp_path):
    """The trees are plain gathers and comparisons: SavedModel and TFLite give the Keras probabilities."""
    from tests.test_export import assert_same_as_keras, keras_probabilities, raw_clips
    from tests.tiny_runs import NUM_FRAMES as FRAMES, tiny_features as export_features
    from utils.serving.export import export_model
    from utils.training import loop as training

    features = export_features()
    config = models.get_config("boosted").replace(num_frames=FRAMES)
    training.train(features, "boosted", config, out_dir=tmp_path / "run", verbose=0, measure_speed=False)
    written = export_model(tmp_path / "run", tmp_path / "export")
    expected = keras_probabilities(tmp_path / "run", features, np.arange(5))
    for path in written[:2]:
        assert_same_as_keras(expected, path, raw_clips(tmp_path / "run", features, np.arange(5)))
