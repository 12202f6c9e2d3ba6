"""Training runs on a tiny, separable feature file: held-out accuracy, the run folder's contract, determinism,
refusals, evaluate_saved and load_run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from utils.data import keypoints as K
from utils.data.features import FeatureSet, save_features
from utils.errors import ConfigError, FeatureFileError, ModelDirError
from utils.evaluation.evaluate import evaluate_saved
from utils.inputs.spec import finish_inputs, prepare_inputs
from utils.training.runs import load_run

NUM_CLASSES, CLIPS_PER_CLASS, NUM_FRAMES, IMAGE_SIZE, NUM_SIGNERS = 3, 12, 8, 16, 4


def tiny_features(with_frames: bool = True, seed: int = 0) -> FeatureSet:
    """3 signs x 12 clips by 4 signers (each at its own place and size); sign = direction of the right
    hand."""
    rng = np.random.default_rng(seed)
    num_clips = NUM_CLASSES * CLIPS_PER_CLASS
    labels = np.repeat(np.arange(NUM_CLASSES), CLIPS_PER_CLASS)
    signers = np.arange(num_clips) % NUM_SIGNERS
    t = np.linspace(0, 1, NUM_FRAMES)[:, None]
    keypoints = np.zeros((num_clips, NUM_FRAMES, K.KEYPOINT_DIM), np.float32)
    frames = np.zeros((num_clips, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for clip in range(num_clips):
        cx, cy, width = 0.4 + 0.06 * signers[clip], 0.5, 0.18 + 0.03 * signers[clip]
        face = np.zeros((NUM_FRAMES, 468, 3), np.float32)
        face[..., 0], face[..., 1] = cx + rng.normal(0, 0.02, 468), cy - width
        pose = np.zeros((NUM_FRAMES, 33, 4), np.float32)
        pose[..., 0], pose[..., 1], pose[..., 3] = cx + rng.normal(0, 0.01, 33), cy + 0.3 * width, 1
        pose[:, K.POSE_LEFT_SHOULDER, :2] = (cx + width / 2, cy)
        pose[:, K.POSE_RIGHT_SHOULDER, :2] = (cx - width / 2, cy)
        angle = 2 * np.pi * labels[clip] / NUM_CLASSES
        right = np.zeros((NUM_FRAMES, 21, 3), np.float32)
        right[..., 0] = (
            cx - width / 2 + 0.8 * width * t * np.cos(angle) + rng.normal(0, 0.01, (NUM_FRAMES, 21))
        )
        right[..., 1] = cy + 0.2 + 0.8 * width * t * np.sin(angle) + rng.normal(0, 0.01, (NUM_FRAMES, 21))
        keypoints[clip] = K.join_parts(face, pose, np.zeros((NUM_FRAMES, 21, 3)), right)
        frames[clip, ..., labels[clip]] = 200  # the sign is also visible as a colour, for the frame models
    return FeatureSet(keypoints=keypoints, frames=frames if with_frames else None,
                      labels=labels.astype(np.int64), classes=[f"sign_{c}" for c in range(NUM_CLASSES)],
                      groups=np.array([f"s{s}" for s in signers]), split=np.full(num_clips, ""),
                      paths=np.array([f"sign_{label}/clip{i}.mp4" for i, label in enumerate(labels)]),
                      meta={"kind": "test", "num_frames": NUM_FRAMES, "image_size": IMAGE_SIZE})


def tiny_config(model_name: str = "lstm", epochs: int = 12):
    """The recommended configuration, shrunk to seconds: T=8, S=16, a few units, no weight decay."""
    from utils import models

    return models.get_config(model_name, "recommended").replace(
        num_frames=NUM_FRAMES, image_size=IMAGE_SIZE, lstm_units=(16,), convlstm_filters=(4,), kernel_size=3,
        head_units=(16,), l2=0.0, learning_rate=3e-3, batch_size=8, epochs=epochs, patience=None,
        lr_milestones=(), ensemble=1,  # one network: tests of ensembles ask for them (tests/test_ensemble.py)
        validation=True)  # selection on validation clips (the recommended lstm trains without: tested apart)


@pytest.fixture(scope="module")
def features_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("features") / "tiny.npz"
    save_features(path, tiny_features())
    return path


@pytest.fixture(scope="module")
def lstm_run(features_file, tmp_path_factory):
    from utils.training import loop as training

    out_dir = tmp_path_factory.mktemp("runs") / "lstm"
    metrics = training.train(str(features_file), "lstm", tiny_config(), out_dir=out_dir, seed=0, verbose=0,
                             measure_speed=False)
    return out_dir, metrics


@pytest.mark.slow
def test_lstm_beats_chance_on_unseen_signers(lstm_run):
    _, metrics = lstm_run
    assert metrics["split_strategy"] == "group-disjoint"
    assert metrics["n_test"] >= 6
    assert metrics["test_accuracy"] >= 0.7, metrics["test_accuracy"]  # chance is 1/3


@pytest.mark.slow
def test_run_folder_contract(lstm_run):
    out_dir, metrics = lstm_run
    for name in ("metrics.json", "run.json", "model.keras", "history.csv", "predictions.csv", "curves.png",
                 "confusion_matrix.png"):
        assert (out_dir / name).is_file(), name
    assert not out_dir.with_name(out_dir.name + ".partial").exists()
    stored = json.loads((out_dir / "metrics.json").read_text())
    assert stored["test_accuracy"] == metrics["test_accuracy"]
    types = {"model": str, "config": str, "config_full": dict, "classes": list, "test_accuracy": float,
             "val_accuracy": float, "macro_f1": float, "per_class": dict, "confusion_matrix": list,
             "n_train": int, "n_val": int, "n_test": int, "epochs_run": int, "train_seconds": float,
             "params": int, "history": dict, "split_strategy": str, "seed": int, "features_path": str,
             "features_meta": dict}
    for key, kind in types.items():
        assert isinstance(stored[key], kind), (key, type(stored[key]))
    assert stored["classes"] == ["sign_0", "sign_1", "sign_2"]
    assert set(stored["per_class"]["sign_0"]) == {"precision", "recall", "f1", "support"}
    cm = np.array(stored["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == stored["n_test"]
    assert np.trace(cm) / cm.sum() == pytest.approx(stored["test_accuracy"])
    assert stored["n_train"] + stored["n_val"] + stored["n_test"] == NUM_CLASSES * CLIPS_PER_CLASS
    assert set(stored["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(stored["history"]["loss"]) == stored["epochs_run"] == 12
    run = json.loads((out_dir / "run.json").read_text())
    assert (
        run["model"] == "lstm" and run["num_frames"] == NUM_FRAMES and run["keypoint_dim"] == K.KEYPOINT_DIM
    )
    assert run["preprocessing"]["normalize"] is True and run["classes"] == stored["classes"]
    rows = list(csv.DictReader(open(out_dir / "predictions.csv")))
    assert len(rows) == stored["n_test"]
    assert set(rows[0]) == {"index", "path", "group", "true", "predicted", "confidence"}
    correct = np.mean([r["true"] == r["predicted"] for r in rows])
    assert correct == pytest.approx(stored["test_accuracy"])


@pytest.mark.slow
def test_evaluate_saved_round_trip_and_load_run(lstm_run, features_file):
    out_dir, metrics = lstm_run
    scored = evaluate_saved(out_dir, features_file, split="test")
    assert scored["n"] == metrics["n_test"]
    assert scored["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert scored["confusion_matrix"] == metrics["confusion_matrix"]
    everything = evaluate_saved(out_dir, features_file, split="all")
    assert everything["n"] == NUM_CLASSES * CLIPS_PER_CLASS
    model, run = load_run(out_dir)
    inputs = prepare_inputs(training_features(features_file), run, [0, 1])
    assert set(inputs) == {"keypoints"} and inputs["keypoints"].shape == (2, NUM_FRAMES, run["input_dim"])
    assert model.predict(inputs, verbose=0).shape == (2, NUM_CLASSES)


def training_features(path: Path) -> FeatureSet:
    from utils.data.features import load_features

    return load_features(path)


@pytest.mark.slow
def test_same_seed_same_metrics(lstm_run, features_file, tmp_path):
    from utils.training import loop as training

    _, first = lstm_run
    second = training.train(str(features_file), "lstm", tiny_config(), out_dir=tmp_path / "again", seed=0,
                            verbose=0,
                             measure_speed=False)
    assert second["history"] == first["history"]
    assert second["test_accuracy"] == first["test_accuracy"]
    assert second["confusion_matrix"] == first["confusion_matrix"]


@pytest.mark.slow
@pytest.mark.parametrize("fusion, staged, rows", [("concat", False, 1),  # one network, one epoch
                                                  # each branch 1 epoch, then the fusion
                                                  ("logits", True, 3)])
def test_fused_trains_on_frames_and_keypoints(features_file, tmp_path, fusion, staged, rows):
    from utils.training import loop as training

    config = tiny_config("fused", epochs=1).replace(num_frames=4, image_size=8,  # the file has T=8, S=16
                                                    fusion=fusion, staged=staged, frame_input="frames")
    metrics = training.train(str(features_file), "fused", config, out_dir=tmp_path / "fused", seed=0,
                             verbose=0, measure_speed=False)
    assert metrics["epochs_run"] == rows and metrics["n_test"] > 0
    model, run = load_run(tmp_path / "fused")
    assert run["inputs"] == ["keypoints", "frames"] and run["image_size"] == 8 and run["num_frames"] == 4
    inputs = prepare_inputs(training_features(features_file), run, [0, 1, 2])
    # differences are signed
    frame_dtype = np.uint8 if run["preprocessing"]["frames"] == "rgb" else np.float32
    assert inputs["frames"].shape == (3, 4, 8, 8, 3) and inputs["frames"].dtype == frame_dtype
    assert inputs["keypoints"].shape == (3, 4, run["input_dim"])


def test_frame_models_refuse_keypoint_only_files(tmp_path):
    from utils.training import loop as training

    path = tmp_path / "mp_data.npz"
    save_features(path, tiny_features(with_frames=False))
    for model_name in ("convlstm", "fused"):
        with pytest.raises(FeatureFileError, match="has no frames.*train --model lstm"):
            training.train_from_file(path, model_name, "small", tmp_path / model_name, epochs=1)
        assert not (tmp_path / model_name).exists()


def test_load_run_errors(tmp_path):
    with pytest.raises(ModelDirError, match="not a folder"):
        load_run(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text("{}")
    with pytest.raises(ModelDirError, match="model.keras"):
        load_run(tmp_path / "half")


def test_finish_inputs_applies_frame_differences_from_the_spec():
    from utils import models

    config = models.get_config("convlstm", "small").replace(preprocessing={"frames": "diff"})
    frames = np.random.default_rng(0).integers(0, 255, (2, 3, 4, 4, 3), dtype=np.uint8)
    out = finish_inputs({"frames": frames}, ("convlstm", config))["frames"]
    np.testing.assert_array_equal(out[:, 0], 0)
    np.testing.assert_array_equal(out[:, 1], frames[:, 1].astype(np.float32) - frames[:, 0])
    assert finish_inputs({"frames": frames},
                         ("convlstm", config.replace(preprocessing={})))["frames"] is frames


class _Interrupt:
    """Wraps fitting.training_callbacks (where a network's fit gets its callbacks) to add a callback that
    raises KeyboardInterrupt when `after` epochs have ended (like Ctrl-C right after an epoch) and records
    which epochs the run trained."""

    def __init__(self, after: int | None = None) -> None:
        self.after, self.epochs = after, []

    def __call__(self, original):
        import keras

        recorder = self

        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                recorder.epochs.append(epoch)

            def on_epoch_end(self, epoch, logs=None):
                if recorder.after is not None and epoch + 1 == recorder.after:
                    raise KeyboardInterrupt

        def wrapped(*args, **kwargs):
            callbacks, backup = original(*args, **kwargs)
            return callbacks + [Kill()], backup

        return wrapped


def _final_weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(run_dir / "model.keras", compile=False).get_weights()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(features_file, tmp_path, monkeypatch):
    """Interrupted after epoch 2 of 5 and resumed: trains epochs 3-5 only and ends with the uninterrupted
    weights.

    Dropout and augmentation are on, so a wrong batch epoch or random state would change them; from epoch 3
    the learning rate is 100x too high, so the best epoch comes before the interruption and must survive
    it."""
    from utils.training import loop as training
    from utils.training.loop import fitting

    config = tiny_config(epochs=5).replace(lr_milestones=(2,), lr_decay=100.0)
    assert config.dropout > 0 and any(float(v) > 0 for v in config.augmentation.values())
    options = dict(seed=3, verbose=0, measure_speed=False)
    whole = training.train(str(features_file), "lstm", config, out_dir=tmp_path / "whole", **options)
    # else this test would not check the best weights' survival
    assert whole["best_epoch"] <= 2, whole["history"]

    original = fitting.training_callbacks
    killed = _Interrupt(after=2)
    monkeypatch.setattr(fitting, "training_callbacks", killed(original))
    with pytest.raises(KeyboardInterrupt):
        training.train(str(features_file), "lstm", config, out_dir=tmp_path / "cut", **options)
    partial = tmp_path / "cut.partial"
    assert killed.epochs == [0, 1] and not (tmp_path / "cut").exists()
    assert len(list(csv.DictReader(open(partial / "history.csv")))) == 2  # written as it goes
    assert (partial / "checkpoints" / "best.weights.h5").is_file()
    assert (partial / "checkpoints" / "last.weights.h5").is_file()

    resumed = _Interrupt()
    monkeypatch.setattr(fitting, "training_callbacks", resumed(original))
    metrics = training.train(str(features_file), "lstm", config, out_dir=tmp_path / "cut", resume=True,
                             **options)
    assert resumed.epochs == [2, 3, 4], resumed.epochs  # the next epoch, not from scratch
    for key, values in whole["history"].items():
        np.testing.assert_allclose(metrics["history"][key], values, rtol=1e-6, err_msg=key)
    for ours, theirs in zip(_final_weights(tmp_path / "cut"), _final_weights(tmp_path / "whole")):
        assert np.allclose(ours, theirs, rtol=0, atol=1e-6)
    assert metrics["epochs_run"] == 5 and metrics["best_epoch"] == whole["best_epoch"]
    assert metrics["test_accuracy"] == whole["test_accuracy"]


@pytest.mark.slow
def test_resume_refuses_other_settings_and_starts_fresh_without_a_checkpoint(features_file, tmp_path,
                                                                            monkeypatch):
    from utils.errors import ConfigError
    from utils.training import loop as training
    from utils.training.loop import fitting

    original = fitting.training_callbacks
    monkeypatch.setattr(fitting, "training_callbacks", _Interrupt(after=1)(original))
    with pytest.raises(KeyboardInterrupt):
        training.train(str(features_file), "lstm", tiny_config(epochs=3), out_dir=tmp_path / "run", seed=0,
                       verbose=0, measure_speed=False)
    with pytest.raises(ConfigError, match="other settings"):
        training.train(str(features_file), "lstm", tiny_config(epochs=3), out_dir=tmp_path / "run", seed=1,
                       verbose=0, measure_speed=False, resume=True)
    fresh = _Interrupt()
    monkeypatch.setattr(fitting, "training_callbacks", fresh(original))
    training.train(str(features_file), "lstm", tiny_config(epochs=2), out_dir=tmp_path / "new", seed=0,
                   verbose=0, measure_speed=False, resume=True)
    assert fresh.epochs == [0, 1]


def test_op_determinism_is_a_switch():
    from tensorflow.python.framework import config as tf_config

    from utils import config

    try:
        config.set_seed(0, deterministic=False)
        assert not tf_config.is_op_determinism_enabled()
        config.set_seed(0, deterministic=True)
        assert tf_config.is_op_determinism_enabled()
        config.set_seed(0, deterministic=False)
        config.set_seed(0)  # default: on without a GPU
        assert tf_config.is_op_determinism_enabled() == (not config.gpu_available())
    finally:
        config.set_seed(0, deterministic=True)


def test_mixed_precision_keeps_weights_and_softmax_in_float32():
    import keras

    from utils import models
    from utils.config import gpu_available
    from utils.training import loop as training

    with training.precision_policy(True) as name:
        model = models.build_model("fused", tiny_config("fused"), num_classes=NUM_CLASSES, keypoint_dim=20)
    assert name == "mixed_float16" and keras.mixed_precision.global_policy().name == "float32"
    assert any(layer.compute_dtype == "float16" for layer in model.layers)
    assert model.get_layer("probabilities").compute_dtype == "float32"
    assert all(weight.dtype == "float32" for weight in model.weights)
    # every input the recommended fused model takes (keypoints, frames, hand crops), flip averaging inside
    inputs = {tensor.name.split(":")[0]: np.zeros((2, *tensor.shape[1:]),
                                                  np.float32) for tensor in model.inputs}
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (2, NUM_CLASSES)
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with training.precision_policy(False) as name:
        assert name == "float32"
    with training.precision_policy(None) as name:  # automatic: float16 compute only on a GPU
        assert name == ("mixed_float16" if gpu_available() else "float32")


@pytest.mark.slow
def test_mixed_precision_run_with_tensorboard(features_file, tmp_path):
    from utils.training import loop as training

    metrics = training.train(str(features_file), "lstm", tiny_config(epochs=2), out_dir=tmp_path / "mixed",
                             seed=0, verbose=0, measure_speed=False, mixed_precision=True, tensorboard=True,
                             deterministic=False)
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["history"]["loss"]).all()
    assert list((tmp_path / "mixed" / "tensorboard").rglob("events.out.tfevents.*"))
    assert not (tmp_path / "mixed.tensorboard").exists() and not (tmp_path / "mixed.partial").exists()
    model, _ = load_run(tmp_path / "mixed")
    assert model.get_layer("probabilities").compute_dtype == "float32"


def test_train_command_passes_resume_tensorboard_and_switches(monkeypatch, tmp_path):
    from utils import cli
    from utils.training import loop as training

    seen = {}

    def fake_train(**kwargs):
        seen.update(kwargs)
        return {"model": "lstm", "config": "small", "test_accuracy": 1.0, "macro_f1": 1.0}

    monkeypatch.setattr(training, "train_from_file", fake_train)
    base = ["train", "--features", "f.npz", "--model", "lstm", "--out", str(tmp_path / "run")]
    assert cli.main(base + ["--resume", "--tensorboard", "--no-deterministic", "--mixed-precision"]) == 0
    assert (seen["resume"], seen["tensorboard"], seen["deterministic"],
            seen["mixed_precision"]) == (True, True, False, True)
    assert cli.main(base) == 0
    assert (seen["resume"], seen["tensorboard"], seen["deterministic"],
            seen["mixed_precision"]) == (False, False, None, None)


def test_balanced_class_weights_make_every_class_weigh_the_same_in_total():
    from utils.training import loop as training

    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    weights = training.class_weights(labels, "balanced")
    totals = [weights[c] * np.sum(labels == c) for c in range(3)]
    np.testing.assert_allclose(totals, [len(labels) / 3] * 3)
    assert training.class_weights(labels, None) is None
    # balanced: no change
    assert training.class_weights(np.array([2, 2, 5, 5]), "balanced") == {2: 1.0, 5: 1.0}
    with pytest.raises(ConfigError, match="class_weight"):
        training.class_weights(labels, "inverse")


def test_train_passes_the_configured_class_weights_to_fit(features_file, tmp_path, monkeypatch):
    import keras

    from utils.training import loop as training

    seen = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("class_weight"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    training.train(str(features_file), "lstm", tiny_config(epochs=1).replace(class_weight="balanced"),
                   out_dir=tmp_path / "run", seed=0, verbose=0, measure_speed=False)
    assert len(seen) == 1 and seen[0] is not None and len(seen[0]) >= 2
    assert all(weight > 0 for weight in seen[0].values())


def test_keep_best_without_validation_keeps_the_last_weights_not_the_best_training_epoch(tmp_path):
    import keras

    from utils.training.loop import KeepBest

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = KeepBest(patience=1, folder=tmp_path)
    keep.set_model(model)
    # training accuracy falls: nothing may be "selected" on it
    for epoch, accuracy in enumerate((0.9, 0.5, 0.4)):
        model.set_weights([np.full((2, 1), float(epoch), np.float32), np.zeros(1, np.float32)])
        keep.on_epoch_end(epoch, {"accuracy": accuracy, "loss": 1.0 + epoch})
        assert not getattr(model, "stop_training", False)  # patience never runs out: every epoch is "best"
    keep.on_train_end()
    assert keep.best_epoch == 2 and float(model.get_weights()[0][0, 0]) == 2.0
    # nothing to select, so no copy of the weights is kept or written each epoch
    assert keep.state()["weights"] is None and not (tmp_path / "best.weights.h5").exists()


def test_configurations_with_the_same_seed_are_tested_on_the_same_signers(tmp_path) -> None:
    """With and without validation signers, and for the linear model too: one seed, one set of test
    signers."""
    from tests.tiny_runs import NUM_FRAMES, tiny_features
    from utils import models
    from utils.training import loop as training

    features = tiny_features()
    tested = {}
    for name, model_name, validation in (("lstm_val", "lstm", True), ("lstm_no_val", "lstm", False),
                                         ("linear", "linear", False)):
        config = models.get_config(model_name, "small").replace(num_frames=NUM_FRAMES, epochs=1, batch_size=8,
                                                                validation=validation)
        if model_name == "lstm":
            config = config.replace(lstm_units=(8,))
        metrics = training.train(features, model_name, config, out_dir=tmp_path / name, seed=3, verbose=0)
        assert (metrics["n_val"] > 0) == validation
        tested[name] = metrics["test_groups"]
    assert tested["lstm_val"] == tested["lstm_no_val"] == tested["linear"] != []


def test_balanced_sampling_draws_every_class_alike_and_a_resumed_run_draws_the_same_clips():
    from utils import models
    from utils.training import loop as training

    config = models.get_config("lstm").replace(ensemble=1)
    keypoints = np.random.default_rng(0).random((60, 8, 1662)).astype(np.float32)
    labels = np.array([0] * 50 + [1] * 8 + [2] * 2)  # one common sign, two rare ones
    rows = np.arange(100, 160)  # the training clips' rows in a larger store
    raw = {"keypoints": np.concatenate([np.zeros((100, 8, 1662), np.float32), keypoints])}
    counts = np.zeros(3)
    batches = training.training_batches(raw, labels, ("lstm", config), {}, 16, 0, rows, sampling="balanced")
    for _ in range(20):
        assert len(batches.labels) == 60 and set(batches.rows) <= set(rows)
        assert np.array_equal(batches.labels, labels[batches.rows - 100])  # each drawn clip keeps its label
        counts += np.bincount(batches.labels, minlength=3)
        batches.on_epoch_end()
    assert np.allclose(counts / counts.sum(), 1 / 3, atol=0.03)  # unbalanced 50 / 8 / 2, drawn alike
    resumed = training.training_batches(raw, labels, ("lstm", config), {}, 16, 0, rows, sampling="balanced")
    resumed.epoch = batches.epoch  # what ResumableBackup does when a run continues
    assert np.array_equal(resumed[0][1], batches[0][1])
    with pytest.raises(ConfigError, match="sampling"):
        training.training_batches(raw, labels, ("lstm", config), {}, 16, 0, rows, sampling="uniform")
