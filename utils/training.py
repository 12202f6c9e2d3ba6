"""Training with seeds, augmentation per batch, best-on-validation weights, one test evaluation.

One call, :func:`train`, does a whole run and writes a self-contained run folder (its files and format:
:mod:`utils.runs`). Clips become model inputs through :mod:`utils.inputs` only (the same path as
evaluation, cross-validation and prediction). Model selection uses the validation split only and the
test split is scored once (defect 6 of the original chose the model on test; defect 5 averaged accuracy
per batch: here it is per clip).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from utils import distribute, paths, preprocessing
from utils.errors import FeatureFileError, ensure_writable_folder
from utils.inputs import (as_spec, features_name, finish_inputs,  # noqa: F401  (prepare_inputs: notebook 05)
                          prepare_inputs, raw_inputs)
from utils.keypoints import KEYPOINT_DIM
from utils.runs import describe_run, write_run


# ----------------------------------------------------------------------------- configuration and seeds
def resolve_config(model_name: str, config: Any = None) -> Any:
    """A ModelConfig from None (recommended), a configuration name, a dict or a ModelConfig."""
    from utils import models

    if config is None or isinstance(config, str):
        return models.get_config(model_name, config)
    if isinstance(config, Mapping):
        return models.ModelConfig.from_dict(dict(config))
    return config


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and Keras/TensorFlow, and ask TensorFlow for deterministic ops."""
    import keras
    import tensorflow as tf

    from utils.config import set_seed

    set_seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# ----------------------------------------------------------------------------- batches
def training_batches(raw: Mapping[str, np.ndarray], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                     batch_size: int, seed: int) -> Any:
    """A keras.utils.PyDataset of shuffled, augmented (raw keypoints and frames), then preprocessed batches."""
    import keras

    spec = as_spec(spec)

    class _Batches(keras.utils.PyDataset):
        """Batches re-drawn every epoch from (seed, epoch, batch): the same run gives the same batches."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0

        def __len__(self) -> int:
            return int(np.ceil(len(labels) / batch_size))

        def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
            order = np.random.default_rng([seed, self.epoch]).permutation(len(labels))
            # every batch full (the last one wraps around): one input shape, so TensorFlow traces the step once
            chosen = order[np.arange(index * batch_size, (index + 1) * batch_size) % len(labels)]
            batch = {name: value[chosen] for name, value in raw.items()}
            if any(float(v) > 0 for v in augmentation.values()):
                rng = np.random.default_rng([seed, self.epoch, index, 1])
                kp, frames = preprocessing.augment_clips(batch["keypoints"] if "keypoints" in batch
                                                         else _frames_only_keypoints(batch["frames"]),
                                                         batch.get("frames"), rng, augmentation)
                if "keypoints" in batch:
                    batch["keypoints"] = kp
                if frames is not None:
                    batch["frames"] = frames
            return finish_inputs(batch, spec), labels[chosen]

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return _Batches()


def _frames_only_keypoints(frames: np.ndarray) -> np.ndarray:
    """Empty keypoints matching frames, so frame-only models reuse the same (time and flip) augmentation."""
    return np.zeros((*frames.shape[:2], KEYPOINT_DIM), dtype=np.float32)


# ----------------------------------------------------------------------------- callbacks
def _callbacks(config: Any, patience: int | None, verbose: int, epochs: int) -> list[Any]:
    """Best-on-validation weights (with early stopping), the LR schedule and a progress bar."""
    import keras

    from utils import models

    class KeepBest(keras.callbacks.Callback):
        """Remember the weights of the best val_accuracy epoch (ties: lower val_loss); restore them at the end."""

        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] | None = None
            self.best_epoch, self.weights, self.wait = -1, None, 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            score = (logs.get("val_accuracy", logs.get("accuracy", 0.0)), -logs.get("val_loss", logs.get("loss", 0.0)))
            if self.best is None or score > self.best:
                self.best, self.best_epoch, self.wait = score, epoch, 0
                self.weights = self.model.get_weights()
                return
            self.wait += 1
            if patience is not None and self.wait >= patience:
                self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.weights is not None:
                self.model.set_weights(self.weights)

    callbacks: list[Any] = [KeepBest()]
    if config.lr_milestones:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch)))
    if verbose == 1:
        callbacks.append(_epoch_bar(epochs))
    return callbacks


def _epoch_bar(epochs: int) -> Any:
    """A keras Callback showing a tqdm bar over epochs with loss and accuracies."""
    import keras
    from tqdm.auto import tqdm

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = tqdm(total=epochs, desc="epochs", unit="epoch")

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()
                                  if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
            self.bar.update(1)

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()

    return Bar()


# ----------------------------------------------------------------------------- train
def _as_features(features: Any) -> tuple[Any, str]:
    """A FeatureSet and its file name from a FeatureSet or a path."""
    if isinstance(features, (str, Path)):
        from utils.features import load_features

        loaded = load_features(features)
        loaded.meta = {**(loaded.meta or {}), "path": str(features)}
        return loaded, str(features)
    return features, features_name(features)


def _fit(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
         seed: int, verbose: int) -> tuple[Any, dict[str, list[float]], float]:
    """Build, compile and fit the model with best-on-validation weights; return (model, history, seconds)."""
    from utils import models

    labels = np.asarray(features.labels, dtype=np.int64)
    strategy = distribute.choose_strategy()  # batch_size is per replica: each step reads the global batch
    batches = training_batches(raw_inputs(features, run_info, split.train), labels[split.train], run_info,
                               config.augmentation or {},
                               distribute.global_batch_size(batch_size, strategy.num_replicas_in_sync), seed)
    validation = (prepare_inputs(features, run_info, split.val), labels[split.val]) if len(split.val) else None
    with strategy.scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        models.compile_model(model, config)
        distribute.prepare_model(model, strategy)
    start = time.perf_counter()
    fit = model.fit(batches, epochs=epochs, verbose=2 if verbose >= 2 else 0, validation_data=validation,
                    callbacks=_callbacks(config, config.patience, verbose, epochs))
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return model, history, time.perf_counter() - start


def _score(model: Any, features: Any, run_info: dict[str, Any], indices: np.ndarray,
           batch_size: int) -> tuple[dict[str, Any], np.ndarray]:
    """Classification metrics and class probabilities of the model on the clips at indices."""
    from utils.evaluation import classification_metrics

    probabilities = model.predict(prepare_inputs(features, run_info, indices), batch_size=batch_size, verbose=0)
    labels = np.asarray(features.labels, dtype=np.int64)[indices]
    return classification_metrics(labels, probabilities.argmax(axis=1), run_info["classes"]), probabilities




def train(features: Any, model_name: str, config: Any = None, out_dir: str | Path | None = None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
          test_group: str | None = None, verbose: int = 1, measure_speed: bool = True) -> dict[str, Any]:
    """Split, train with augmentation and best-on-validation weights, test once, write the run folder; return metrics.

    ``features``: a FeatureSet or a features .npz path. ``config``: None (recommended), a name, or a
    ModelConfig. ``epochs`` / ``batch_size`` override the configuration's. ``verbose``: 0 silent, 1 a
    progress bar over epochs, 2 Keras's one line per epoch. ``measure_speed``: store the
    single-clip latency on a few test clips in metrics["latency"].
    """
    from utils import models, splits as splits_module
    from utils.evaluation import measure_latency

    features, features_file = _as_features(features)
    config = resolve_config(model_name, config)
    if "frames" in models.model_inputs(model_name) and features.frames is None:
        raise FeatureFileError(f"{features_file} has no frames: it was imported from keypoints only (MP_Data) — "
                               f"train --model lstm, or extract from videos")
    epochs, batch_size = int(epochs or config.epochs), int(batch_size or config.batch_size)
    out_dir = Path(out_dir) if out_dir is not None else paths.RUNS_DIR / f"{model_name}_{config.name}"
    ensure_writable_folder(out_dir.expanduser().resolve().parent, "run folder")  # fail before training, not after
    set_seeds(seed)
    split = splits_module.make_splits(features.labels, groups=features.groups, split=features.split,
                                      test_group=test_group, seed=seed)
    run_info = describe_run(features, features_file, model_name, config, split, seed, test_group)
    model, history, train_seconds = _fit(features, run_info, config, split, epochs, batch_size, seed, verbose)

    test, probabilities = _score(model, features, run_info, split.test, batch_size)
    val = _score(model, features, run_info, split.val, batch_size)[0] if len(split.val) else None
    latency = {}
    if measure_speed:
        latency = measure_latency(model, prepare_inputs(features, run_info, split.test[:8]), repeats=10)
    metrics = {
        "model": model_name, "config": config.name, "config_name": config.name, "config_full": config.to_dict(),
        "classes": run_info["classes"], "test_accuracy": test["accuracy"],
        "val_accuracy": None if val is None else val["accuracy"], "macro_f1": test["macro_f1"],
        "per_class": test["per_class"], "confusion_matrix": test["confusion_matrix"],
        "n_train": int(len(split.train)), "n_val": int(len(split.val)), "n_test": int(len(split.test)),
        "epochs_run": len(history.get("loss", [])), "best_epoch": _best_epoch(history),
        "train_seconds": round(train_seconds, 2), "params": int(model.count_params()), "history": history,
        "split_strategy": split.strategy, "test_group": test_group, "seed": seed, "batch_size": batch_size,
        "features_path": features_file, "features_meta": run_info["features_meta"], "latency": latency,
        **distribute.describe(distribute.choose_strategy(), batch_size),
    }
    with distribute.run_folder(out_dir) as folder:  # only the chief (worker 0) of several machines writes out_dir
        write_run(folder, model, run_info, metrics, features, split.test, probabilities)
    return metrics


def _best_epoch(history: Mapping[str, list[float]]) -> int:
    """1-based epoch of the best validation accuracy (ties: lower val_loss), as KeepBest chose it."""
    accuracy = history.get("val_accuracy") or history.get("accuracy") or []
    losses = history.get("val_loss") or history.get("loss") or [0.0] * len(accuracy)
    if not accuracy:
        return 0
    return int(max(range(len(accuracy)), key=lambda i: (accuracy[i], -losses[i], -i)) + 1)




def train_from_file(features_path: str | Path, model_name: str, config_name: str | None = None,
                    out_dir: str | Path | None = None, epochs: int | None = None, seed: int = 0,
                    test_group: str | None = None, batch_size: int | None = None, verbose: int = 1) -> dict[str, Any]:
    """:func:`train` on a features .npz (what ``python -m utils train`` calls)."""
    return train(features_path, model_name, config_name, out_dir=out_dir, epochs=epochs, batch_size=batch_size,
                 seed=seed, test_group=test_group, verbose=verbose)
