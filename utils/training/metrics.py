"""The scores of a classifier on clips: accuracy, macro-F1, the per-class report and confusion matrix, class
probabilities of many clips in chunks, and latency.

Accuracy is always counted per clip over the whole evaluated set (the original averaged per-batch
accuracies, which over-weights a small last batch). Training writes these scores into a run's
``metrics.json``; :mod:`utils.evaluation` reads them back and compares runs.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = true
    class)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    labels = np.arange(len(classes))
    if len(y_true) == 0:
        raise ValueError("no clips to evaluate (empty y_true)")
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    # macro-F1 over the classes that occur, so a subset of classes is not penalised
    present = np.unique(y_true)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {str(name): {"precision": float(precision[i]), "recall": float(recall[i]),
                                  "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _one_clip(inputs: Mapping[str, np.ndarray] | np.ndarray, index: int) -> Any:
    """The index-th clip of the inputs, keeping a batch axis of 1."""
    if isinstance(inputs, Mapping):
        return {name: np.asarray(value[index:index + 1]) for name, value in inputs.items()}
    return np.asarray(inputs[index:index + 1])


def _num_clips(inputs: Mapping[str, np.ndarray] | np.ndarray) -> int:
    """Number of clips in model inputs (a dict of arrays or one array)."""
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    return len(first)


def measure_latency(model: Any, inputs: Mapping[str, np.ndarray] | np.ndarray, repeats: int = 20,
                    warmup: int = 2) -> dict[str, float]:
    """Milliseconds per clip for single-clip `model.predict_on_batch` calls (median, mean, p90) and for one
    batch."""
    total = _num_clips(inputs)
    if total == 0:
        raise ValueError("measure_latency needs at least one clip")
    predict = getattr(model, "predict_on_batch", None) or (lambda x: model(x, training=False))
    for i in range(warmup):
        predict(_one_clip(inputs, i % total))
    times = []
    for i in range(repeats):
        clip = _one_clip(inputs, i % total)
        start = time.perf_counter()
        np.asarray(predict(clip))
        times.append((time.perf_counter() - start) * 1000)
    batch = inputs if isinstance(inputs, Mapping) else np.asarray(inputs)
    np.asarray(predict(batch))  # warm the batched shape
    start = time.perf_counter()
    np.asarray(predict(batch))
    batched_ms = (time.perf_counter() - start) * 1000 / total
    times = np.asarray(times)
    return {"ms_per_clip": float(np.median(times)), "ms_mean": float(times.mean()),
            "ms_p90": float(np.percentile(times, 90)), "batched_ms_per_clip": float(batched_ms),
            "clips_per_second": float(1000 / np.median(times)), "repeats": int(repeats),
            "batch_size": int(total)}


PREDICT_CHUNK = 256  # clips prepared at a time by predict_clips (e.g. ~380 MB of float32 frame differences)


def predict_clips(model: Any, features: Any, spec: Any, indices: Sequence[int] | np.ndarray,
                  batch_size: int = 64) -> np.ndarray:
    """Class probabilities (n, C) of the clips at indices, prepared PREDICT_CHUNK clips at a time and
    predicted in batches (a features store is never read whole; under tf.distribute each chunk is split as one
    array is)."""
    from utils.inputs.spec import prepare_inputs

    indices = np.asarray(indices, dtype=np.int64)
    chunk = max(PREDICT_CHUNK, int(batch_size))
    parts = [np.asarray(model.predict(prepare_inputs(features, spec, indices[start:start + chunk]),
                                      batch_size=batch_size, verbose=0))
             for start in range(0, len(indices), chunk)]
    if not parts:
        return np.zeros((0, int(model.outputs[0].shape[-1])), dtype=np.float32)
    return np.concatenate(parts)
