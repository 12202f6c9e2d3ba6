"""Fitting one model: a network with its callbacks (or staged), or the linear model with scikit-learn; scoring
it."""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import ConfigError
from utils.inputs.spec import prepare_inputs, stored_arrays
from utils.training import distribute
from utils.training.loop.batches import ClipBatches, training_batches
from utils.training.loop.callbacks import read_history_csv, training_callbacks
from utils.training.loop.settings import precision_policy
from utils.training.loop.staged import fit_staged
from utils.training.metrics import predict_clips

CLASS_WEIGHTS = (None, "balanced")


def class_weights(labels: np.ndarray, mode: str | None) -> dict[int, float] | None:
    """Loss weight of each class for ``ModelConfig.class_weight``: None (every clip counts once) or "balanced"
    (N / (classes x clips of the class): a sign that few training clips show counts as much as a common
    one)."""
    if mode is None:
        return None
    if mode != "balanced":
        raise ConfigError(f"unknown class_weight {mode!r}; use one of {', '.join(map(str, CLASS_WEIGHTS))}")
    classes, counts = np.unique(np.asarray(labels, dtype=np.int64), return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def build_compiled(run_info: dict[str, Any], config: Any, mixed_precision: bool | None) -> Any:
    """The model of run_info and config, built and compiled under the precision policy and distribution
    strategy."""
    from utils import models

    with precision_policy(mixed_precision), distribute.choose_strategy().scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        return models.compile_model(model, config)


def fit_network(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int,
                batch_size: int,
                 seed: int, verbose: int, folder: Path, resume: bool = False,
                tensorboard_dir: Path | None = None,
                 mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """Build, compile and fit one network with best-on-validation weights, checkpoints and history.csv in
    folder (continuing its backup when resume); return (model, history of every epoch, seconds of this
    call)."""
    from utils import models

    labels = np.asarray(features.labels, dtype=np.int64)
    strategy = distribute.choose_strategy()  # batch_size is per replica: each step reads the global batch
    global_batch = distribute.global_batch_size(batch_size, strategy.num_replicas_in_sync)
    # the stored arrays whole: each batch reads its clips only (a features store is never read whole)
    batches = training_batches(stored_arrays(features, run_info), labels[split.train], run_info,
                               config.augmentation or {}, global_batch, seed, split.train,
                               config.sampling)
    validation = ClipBatches(features, run_info, split.val, labels[split.val],
                             global_batch) if len(split.val) else None
    start = time.perf_counter()
    with precision_policy(mixed_precision), strategy.scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        models.compile_model(model, config)
        distribute.prepare_model(model)
    callbacks, backup = training_callbacks(config, verbose, epochs, folder, batches, resume, tensorboard_dir)
    if getattr(config, "staged", False) and models.branch_models(model):
        return model, fit_staged(model, batches, validation, config, epochs, verbose,
                                  class_weights(labels[split.train],
                                                config.class_weight)), time.perf_counter() - start
    fit = model.fit(batches, epochs=epochs, verbose=2 if verbose >= 2 else 0, validation_data=validation,
                      callbacks=callbacks,
                      class_weight=class_weights(labels[split.train], config.class_weight))
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    if backup.initial_epoch:  # a resumed run: the epochs before the interruption come from history.csv
        earlier = read_history_csv(folder / "history.csv")
        history = {key: earlier.get(key, [])[:backup.initial_epoch] + values for key,
                   values in history.items()}
    return model, history, time.perf_counter() - start


def _segment_statistics_of(features: Any, run_info: Mapping[str, Any], indices: np.ndarray,
                           segments: int) -> np.ndarray:
    """The linear model's segment statistics of the prepared keypoints of these clips, read in chunks."""
    from utils import models

    chunks = [indices[start:start + 1024] for start in range(0, len(indices), 1024)]  # per clip: in chunks
    return np.concatenate([models.segment_statistics(prepare_inputs(features, run_info, chunk)["keypoints"],
                                                     segments)
                           for chunk in chunks])


def fit_linear_weights(model: Any, statistics: np.ndarray, labels: np.ndarray, config: Any,
                       seed: int = 0) -> Any:
    """Fit scikit-learn's StandardScaler + LogisticRegression(C=config.linear_c) on segment statistics
    (:func:`utils.models.segment_statistics` of the prepared keypoints) and copy them into the model's linear
    branch (a linear model or a blend)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from utils import models

    scaler = StandardScaler().fit(statistics)
    classifier = LogisticRegression(C=config.linear_c, max_iter=2000, random_state=seed)
    classifier.fit(scaler.transform(statistics), labels)
    return models.set_linear_weights(model, scaler.mean_, scaler.scale_, classifier.coef_,
                                     classifier.intercept_, classes=classifier.classes_)


def fit_linear(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
                seed: int, verbose: int) -> tuple[Any, dict[str, list[float]], float]:
    """Fit scikit-learn's StandardScaler + LogisticRegression(C=config.linear_c) (the boosted model: its
    HistGradientBoostingClassifier) on the training clips' segment statistics and copy them into the Keras
    model; return (model, one-step history, seconds)."""
    from sklearn.metrics import log_loss

    from utils import models

    start = time.perf_counter()
    labels = np.asarray(features.labels, dtype=np.int64)
    statistics = _segment_statistics_of(features, run_info, split.train, config.segments)
    # gradient-boosted trees on the same statistics (utils/models/boosted.py)
    if run_info["model"] == "boosted":
        model = models.boosted.fit_boosted(config, statistics, labels[split.train], len(run_info["classes"]),
                                           run_info["input_dim"], seed)
    else:
        model = models.build_model("linear", config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        fit_linear_weights(model, statistics, labels[split.train], config, seed)
    models.compile_model(model, config)
    history: dict[str, list[float]] = {}
    for name, indices in (("", split.train), ("val_", split.val)):
        if len(indices):
            probabilities = predict_clips(model, features, run_info, indices, batch_size)
            history[f"{name}loss"] = [float(log_loss(labels[indices], probabilities,
                                                     labels=np.arange(len(run_info["classes"]))))]
            history[f"{name}accuracy"] = [float(np.mean(probabilities.argmax(axis=1) == labels[indices]))]
    return model, history, time.perf_counter() - start


def score(model: Any, features: Any, run_info: dict[str, Any], indices: np.ndarray,
           batch_size: int) -> tuple[dict[str, Any], np.ndarray]:
    """Classification metrics and class probabilities of the model on the clips at indices."""
    from utils.training.metrics import classification_metrics

    probabilities = predict_clips(model, features, run_info, indices, batch_size)
    labels = np.asarray(features.labels, dtype=np.int64)[indices]
    return classification_metrics(labels, probabilities.argmax(axis=1), run_info["classes"]), probabilities
