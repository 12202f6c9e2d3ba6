"""Cross-validation by signer (group): a run folder per fold, resume, ``crossval.json`` with intervals.

Signer-independent recognition is measured by training on some signers and testing on the others, in turn:
leave-one-group-out (``folds="loso"``, one fold per signer) or K group-disjoint folds (``folds=K``, signers
spread so each fold's classes are as balanced as possible). Each fold is one :func:`utils.training.train` run
with the fold's signers as ``test_group``; its validation signers (early stopping, best epoch) come from the
training side, so nothing is selected on test signers. :func:`run` writes::

    <out_dir>/
        crossval.json           per fold: accuracy, macro-F1, n, test/validation groups; mean, std, 95% CI
        folds.png               per-fold accuracies with the mean and its interval
        confusion_matrix.png    the test clips of every fold, pooled
        fold_0/, fold_1/, ...   the run folder of each fold (model.keras, metrics.json, ...) + fold.json

A fold whose folder is complete and whose ``fold.json`` names the same features, model, configuration,
epochs, seed and test groups is read back, not retrained: run the same command again after an interruption.

A test signer may show a class that no training signer shows (it cannot be recognised). ``accuracy`` counts
such clips as errors; ``accuracy_seen_classes`` leaves them out. Both are reported.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import ConfigError, SplitError, ensure_writable_folder

SUMMARY_FILE = "crossval.json"
FOLD_FILE = "fold.json"
FOLD_METRICS = ("accuracy", "accuracy_seen_classes", "macro_f1")
CONFIDENCE = 0.95


# ----------------------------------------------------------------------------- folds
def parse_folds(value: str | int) -> str | int:
    """'loso' (leave one group out) or a number of folds K >= 2; ConfigError otherwise."""
    text = str(value).strip().lower()
    if text in ("loso", "logo"):
        return "loso"
    if text.isdigit() and int(text) >= 2:
        return int(text)
    raise ConfigError(f"folds={value!r}: use 'loso' (one fold per signer) or a number of folds of at least 2")


def _group_names(groups: np.ndarray) -> list[str]:
    """Sorted distinct groups; SplitError when some clip has none or there are fewer than two."""
    groups = np.asarray(groups).astype(str)
    missing = int(np.sum(groups == ""))
    if missing:
        raise SplitError(f"{missing} of {len(groups)} clips have no group (signer); cross-validation by "
                         "group needs one for every clip: give the dataset's manifest.csv a signer column "
                         f"and extract again")
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise SplitError(f"cross-validation by group needs at least 2 groups (signers), found {names}")
    return names


def _balanced_folds(labels: np.ndarray, groups: np.ndarray, names: list[str], k: int,
                    seed: int) -> list[list[str]]:
    """K group-disjoint folds: biggest groups first, each to the fold whose class counts it brings closest to
    1/K."""
    classes = np.unique(labels)
    counts = np.array([[np.sum((groups == g) & (labels == c)) for c in classes] for g in names], dtype=float)
    sizes, totals = counts.sum(axis=1), np.maximum(counts.sum(axis=0), 1)
    targets, size_target = counts.sum(axis=0) / k, sizes.sum() / k
    shuffled = np.random.default_rng(seed).permutation(len(names))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    current, fold_sizes, members = np.zeros((k, len(classes))), np.zeros(k), [[] for _ in range(k)]
    for position, row in enumerate(order):
        cost = (((current + counts[row] - targets) ** 2 - (current - targets) ** 2) / totals).sum(axis=1)
        cost += ((fold_sizes + sizes[row] - size_target) ** 2 - (fold_sizes - size_target) ** 2) / sizes.sum()
        empty = fold_sizes == 0
        if len(names) - position <= empty.sum():  # just enough groups left: fill the empty folds
            cost[~empty] = np.inf
        fold = int(np.argmin(cost))
        current[fold] += counts[row]
        fold_sizes[fold] += sizes[row]
        members[fold].append(names[row])
    return [sorted(fold) for fold in members]


def make_folds(labels: Sequence | np.ndarray, groups: Sequence | np.ndarray, folds: str | int = "loso",
               seed: int = 0) -> list[list[str]]:
    """The test groups of each fold: one group per fold ('loso') or K class-balanced group-disjoint folds."""
    folds = parse_folds(folds)
    labels, groups = np.asarray(labels), np.asarray(groups).astype(str)
    names = _group_names(groups)
    if folds == "loso":
        return [[name] for name in names]
    if folds > len(names):
        raise SplitError(f"{folds} folds need at least {folds} groups (signers); this dataset has "
                         f"{len(names)}: {', '.join(names)}. Use --folds loso or fewer folds.")
    return _balanced_folds(labels, groups, names, folds, seed)


# ----------------------------------------------------------------------------- statistics
def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean, sample standard deviation and the Student t interval of the mean over n values (n-1 dof)."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "ci95": None, "n": 0}
    mean = float(values.mean())
    if n == 1:
        return {"mean": mean, "std": None, "ci95": None, "n": 1}
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / np.sqrt(n)
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": n}


def _seen_accuracy(confusion: np.ndarray, seen: np.ndarray) -> tuple[float | None, int]:
    """Accuracy over the clips of seen classes only (None when there are none) and their number."""
    n_seen = int(confusion[seen].sum())
    return (float(np.trace(confusion[np.ix_(seen, seen)]) / n_seen) if n_seen else None), n_seen


# ----------------------------------------------------------------------------- one fold
DIGEST_CHUNK = 256  # clips hashed at a time

def features_digest(features: Any) -> str:
    """A SHA-256 of what a fold's result depends on in a FeatureSet (clips, labels, groups, splits)."""
    digest = hashlib.sha256()
    for array in (features.keypoints, features.frames, features.labels, features.groups, features.split,
                  features.paths, np.asarray(list(features.classes), dtype=str)):
        if array is not None:  # in chunks of clips: a features store is never read whole
            digest.update(f"{array.dtype}{tuple(array.shape)}".encode())
            for start in range(0, len(array), DIGEST_CHUNK):
                digest.update(np.ascontiguousarray(array[start:start + DIGEST_CHUNK]).tobytes())
    return digest.hexdigest()


def _fingerprint(digest: str, model_name: str, config: Any, epochs: int | None, batch_size: int | None,
                 seed: int, test_groups: list[str]) -> dict[str, Any]:
    """What identifies a fold's training run; a finished fold is reused only when this matches."""
    return json.loads(json.dumps({"features_sha256": digest, "model": model_name, "config": config.to_dict(),
                                  "epochs": epochs, "batch_size": batch_size, "seed": int(seed),
                                  "test_groups": [str(g) for g in test_groups]}, default=str))


def _finished_metrics(fold_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of a complete fold folder trained as fingerprint says, else None (it must be trained)."""
    from utils.training.runs import RUN_FILES

    needed = [fold_dir / name for name in (*RUN_FILES, "metrics.json", FOLD_FILE)]
    if not all(path.is_file() for path in needed):
        return None
    try:
        record = json.loads((fold_dir / FOLD_FILE).read_text(encoding="utf-8"))
        metrics = json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return metrics if record.get("fingerprint") == fingerprint and "confusion_matrix" in metrics else None


def _fold_split(features: Any, test_groups: list[str], seed: int, validation: bool = True) -> Any:
    """The split training uses for this fold (same call, same seed); SplitError if val touches a test
    group."""
    from utils.data.splits import make_splits, split_fractions

    split = make_splits(features.labels, groups=features.groups, split=features.split, test_group=test_groups,
                        seed=seed, fractions=split_fractions(validation))
    leaked = set(np.asarray(features.groups)[split.val]) & set(test_groups)
    if leaked:
        raise SplitError(f"validation clips of test group(s) {sorted(leaked)}: selection would see test "
                         "signers")
    return split


def _fold_result(index: int, metrics: dict[str, Any], features: Any, test_groups: list[str], split: Any,
                 fold_dir: Path, resumed: bool) -> dict[str, Any]:
    """One fold's line of crossval.json, from its run's metrics and its split."""
    confusion = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    labels, groups = np.asarray(features.labels), np.asarray(features.groups).astype(str)
    seen = np.zeros(len(features.classes), dtype=bool)
    seen[np.unique(labels[split.train])] = True
    tested = confusion.sum(axis=1) > 0
    seen_accuracy, n_seen = _seen_accuracy(confusion, seen)
    return {
        "fold": index, "test_groups": list(test_groups),
        "val_groups": sorted(set(groups[split.val].tolist())), "n": int(confusion.sum()),
        "n_seen_classes": n_seen, "n_train": int(len(split.train)), "n_val": int(len(split.val)),
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "accuracy_seen_classes": seen_accuracy, "macro_f1": float(metrics["macro_f1"]),
        "unseen_classes": [c for c, s, t in zip(features.classes, seen, tested) if t and not s],
        # validation clips of classes the model never trains on: they cannot guide early stopping
        "val_classes_not_trained": [features.classes[c] for c in np.unique(labels[split.val]) if not seen[c]],
        "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
        "train_seconds": metrics.get("train_seconds"), "load_average": metrics.get("load_average"),
        "run_dir": fold_dir.name, "resumed": resumed,
        "confusion_matrix": confusion.tolist(),
    }


# ----------------------------------------------------------------------------- the whole run
def _check_model(model_name: str) -> None:
    """ConfigError for a model name that utils.models does not know."""
    from utils import models

    if model_name not in models.MODEL_NAMES:
        raise ConfigError(f"unknown model {model_name!r}; known models: {', '.join(models.MODEL_NAMES)}")


def _summarise(folds: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Mean, std and interval of each fold metric, and the pooled confusion matrix and accuracies."""
    confusion = np.sum([np.asarray(f["confusion_matrix"]) for f in folds], axis=0)
    seen_clips = sum(f["n_seen_classes"] for f in folds)
    seen_correct = sum(round(f["accuracy_seen_classes"] * f["n_seen_classes"]) for f in folds
                       if f["accuracy_seen_classes"] is not None)
    return {
        **{metric: t_interval([f[metric] for f in folds]) for metric in FOLD_METRICS},
        "pooled": {"n": int(confusion.sum()),
                   "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
                   "n_seen_classes": int(seen_clips),
                   "accuracy_seen_classes": seen_correct / seen_clips if seen_clips else None},
        "classes": list(classes), "confusion_matrix": confusion.tolist(),
    }


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run(features: Any, model_name: str, config: Any = None, out_dir: str | Path | None = None,
        folds: str | int = "loso", seed: int = 0, epochs: int | None = None, batch_size: int | None = None,
        progress: bool = True, verbose: int = 0) -> dict[str, Any]:
    """Cross-validate a model by group (signer); write crossval.json, the figures and one run folder per fold.

    ``features``: a FeatureSet or a features .npz path. ``config``: None (recommended), a name, a dict or a
    ModelConfig. ``out_dir``: default results/crossval/<model>_<config>. ``folds``: 'loso' or K. ``epochs`` /
    ``batch_size`` override the configuration's. ``verbose`` is passed to each fold's training. Returns the
    content of crossval.json.
    """
    from tqdm.auto import tqdm

    from utils import paths, plots
    from utils.training import loop as training

    _check_model(model_name)
    folds = parse_folds(folds)
    features, features_file = training.as_features(features)
    config = training.resolve_config(model_name, config)
    fold_groups = make_folds(features.labels, features.groups, folds, seed)
    default_dir = paths.RESULTS_DIR / "crossval" / f"{model_name}_{config.name}"
    out_dir = ensure_writable_folder(Path(out_dir).expanduser() if out_dir else default_dir,
                                     "cross-validation folder")
    digest, started, results = features_digest(features), time.perf_counter(), []
    with tqdm(total=len(fold_groups), desc=f"crossval {model_name}", unit="fold",
              disable=not progress) as bar:
        for index, test_groups in enumerate(fold_groups):
            fold_dir = out_dir / f"fold_{index}"
            fingerprint = _fingerprint(digest, model_name, config, epochs, batch_size, seed, test_groups)
            split = _fold_split(features, test_groups, seed, config.validation)
            metrics = _finished_metrics(fold_dir, fingerprint)
            resumed = metrics is not None
            if not resumed:
                metrics = training.train(features, model_name, config, out_dir=fold_dir, epochs=epochs,
                                         batch_size=batch_size, seed=seed, test_group=list(test_groups),
                                         verbose=verbose, measure_speed=False)
                _write_json_atomically(fold_dir / FOLD_FILE, {"fold": index, "fingerprint": fingerprint})
            results.append(_fold_result(index, metrics, features, test_groups, split, fold_dir, resumed))
            bar.set_postfix(accuracy=f"{results[-1]['accuracy']:.2f}")
            bar.update(1)
    summary = {
        "model": model_name, "config": config.name, "config_full": config.to_dict(), "folds": folds,
        "num_folds": len(results), "seed": int(seed), "epochs": epochs, "batch_size": batch_size,
        "features_path": features_file, "features_sha256": digest, "n_clips": int(len(features)),
        "interval": f"{CONFIDENCE:.0%} Student t interval of the mean over the n folds (n - 1 degrees of "
                    "freedom)",
        "unseen_classes": "accuracy counts test clips of classes absent from the fold's training clips as "
                          "errors; accuracy_seen_classes leaves them out",
        **_summarise(results, list(features.classes)), "per_fold": results,
        "seconds": round(time.perf_counter() - started, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json_atomically(out_dir / SUMMARY_FILE, summary)
    plots.save_crossval_figures(summary, out_dir)
    return summary


# ----------------------------------------------------------------------------- reading results back
def load_summary(crossval_dir: str | Path) -> dict[str, Any]:
    """The crossval.json of a folder written by :func:`run`; ConfigError naming the folder when absent."""
    path = Path(crossval_dir) / SUMMARY_FILE
    if not path.is_file():
        raise ConfigError(f"{path} not found: run `python -m utils crossval --features F --model M --out "
                          f"{crossval_dir}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def format_interval(stats: dict[str, Any], digits: int = 3) -> str:
    """'0.620 [0.450, 0.790]': the mean of :func:`t_interval`'s stats with its 95% interval, or the mean alone
    when there is none (one fold). The bounds have ``digits`` decimals and stay within [0, 1]: every score
    reported this way (accuracy, macro-F1) is a fraction, which a t-interval near 0 or 1 can run past."""
    if stats.get("mean") is None:
        return "n/a"
    if not stats.get("ci95"):
        return f"{stats['mean']:.3f}"
    low, high = stats["ci95"]
    return f"{stats['mean']:.3f} [{max(low, 0.0):.{digits}f}, {min(high, 1.0):.{digits}f}]"


def describe(summary: dict[str, Any]) -> str:
    """One line: model, folds and the mean accuracies with their intervals."""
    return (f"{summary['model']} ({summary['config']}), {summary['num_folds']} folds ({summary['folds']}): "
            f"accuracy {format_interval(summary['accuracy'])}, seen classes "
            f"{format_interval(summary['accuracy_seen_classes'])}, macro-F1 "
            f"{format_interval(summary['macro_f1'])} (mean [{CONFIDENCE:.0%} t-interval], n = "
            f"{summary['num_folds']} folds)")
