"""Training with seeds, augmentation per batch, best-on-validation weights, one test evaluation, and run outputs.

One call, :func:`train`, does a whole run and writes a self-contained folder::

    <out_dir>/
        metrics.json            test/val accuracy, macro-F1, per-class report, confusion matrix, history, ...
        run.json                what inference needs: model name, config, classes, shapes, preprocessing
        model.keras             the best-on-validation weights
        history.csv             loss / accuracy / val_loss / val_accuracy per epoch
        predictions.csv         every test clip: index, path, group, true, predicted, confidence
        curves.png, confusion_matrix.png

The folder is written as ``<out_dir>.partial`` and renamed at the end, so an interrupted run never leaves
a folder that looks finished. :func:`prepare_inputs` is the one way clips become model inputs (used by
training, :func:`evaluate_saved` and inference). Model selection uses the validation split only and the
test split is scored once (defect 6 of the original chose the model on test; defect 5 averaged accuracy
per batch: here it is per clip).
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from utils import paths, preprocessing
from utils.errors import ConfigError, FeatureFileError, ModelDirError, ensure_writable_folder
from utils.keypoints import KEYPOINT_DIM

RUN_FILES = ("model.keras", "run.json")


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


def _spec_parts(spec: Any) -> tuple[tuple[str, ...] | None, int, int, dict[str, Any]]:
    """(input names or None, num_frames, image_size, preprocessing options) from a run_info dict or a config."""
    from utils import models

    if isinstance(spec, tuple):  # (model_name, config)
        _, num_frames, image_size, options = _spec_parts(spec[1])
        return models.model_inputs(spec[0]), num_frames, image_size, options
    if isinstance(spec, Mapping):
        config = spec.get("config", spec)
        inputs = spec.get("inputs") or (models.model_inputs(spec["model"]) if "model" in spec else None)
        return (tuple(inputs) if inputs else None, int(config["num_frames"]), int(config["image_size"]),
                dict(config.get("preprocessing") or {}))
    return None, int(spec.num_frames), int(spec.image_size), dict(spec.preprocessing or {})


# ----------------------------------------------------------------------------- inputs (one way everywhere)
def raw_inputs(features: Any, spec: Any, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Keypoints (n, T, 1662) and/or frames (n, T, S, S, 3) of the chosen clips, resampled to the spec's T and S."""
    inputs, num_frames, image_size, _ = _spec_parts(spec)
    indices = np.arange(len(features.labels)) if indices is None else np.asarray(indices, dtype=np.int64)
    wanted = inputs or (("keypoints", "frames") if features.frames is not None else ("keypoints",))
    out: dict[str, np.ndarray] = {}
    if "keypoints" in wanted:
        out["keypoints"] = preprocessing.resample_time(np.asarray(features.keypoints[indices], np.float32), num_frames)
    if "frames" in wanted:
        if features.frames is None:
            raise FeatureFileError(f"{_features_name(features)} has no frames: it was imported from keypoints only "
                                   "(MP_Data) — train --model lstm, or extract from videos")
        frames = preprocessing.resample_time(np.asarray(features.frames[indices]), num_frames)
        out["frames"] = preprocessing.resize_frames(frames, image_size)
    return out


def finish_inputs(raw: Mapping[str, np.ndarray], spec: Any) -> dict[str, np.ndarray]:
    """Apply the spec's preprocessing to raw inputs: keypoint options, and frame differences if ``frames="diff"``."""
    _, _, _, options = _spec_parts(spec)
    out = dict(raw)
    if "keypoints" in out:
        out["keypoints"] = preprocessing.preprocess_keypoints(out["keypoints"], options)
    if "frames" in out:
        out["frames"] = preprocessing.preprocess_frames(out["frames"], options)
    return out


def prepare_inputs(features: Any, spec: Any, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Model inputs {'keypoints': (n, T, D'), 'frames': (n, T, S, S, 3)} for the clips at indices (default all).

    ``spec`` is a run's ``run.json`` dict or a ``(model_name, ModelConfig)`` pair (then only the inputs that
    model takes are built), or a bare ModelConfig (then keypoints, and frames when the features have them).
    """
    return finish_inputs(raw_inputs(features, spec, indices), spec)


def _features_name(features: Any) -> str:
    """The file a FeatureSet came from, for messages."""
    meta = getattr(features, "meta", None) or {}
    return str(meta.get("path") or meta.get("file") or getattr(features, "path", None) or "the features file")


def training_batches(raw: Mapping[str, np.ndarray], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                     batch_size: int, seed: int) -> Any:
    """A keras.utils.PyDataset of shuffled, augmented (raw keypoints and frames), then preprocessed batches."""
    import keras

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


# ----------------------------------------------------------------------------- writing a run
def _json_ready(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and Paths for json.dumps."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write data as indented JSON."""
    path.write_text(json.dumps(_json_ready(data), indent=2, ensure_ascii=False), encoding="utf-8")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write a list of dicts as CSV (header from the first row)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


def _publish(partial: Path, out_dir: Path) -> None:
    """Move a finished `.partial` folder into place, replacing an older run of the same name."""
    old = out_dir.with_name(out_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    partial.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def _save_figures(folder: Path, history: Mapping[str, list], confusion: list, classes: list[str], title: str) -> None:
    """curves.png and confusion_matrix.png of a run."""
    import matplotlib.pyplot as plt

    from utils import plots

    for name, fig in (("curves", plots.plot_history(history, title=title)),
                      ("confusion_matrix", plots.plot_confusion_matrix(confusion, classes, title=f"{title}: test"))):
        plots.save_fig(fig, name, folder=folder)
        plt.close(fig)


# ----------------------------------------------------------------------------- train
def _as_features(features: Any) -> tuple[Any, str]:
    """A FeatureSet and its file name from a FeatureSet or a path."""
    if isinstance(features, (str, Path)):
        from utils.features import load_features

        loaded = load_features(features)
        loaded.meta = {**(loaded.meta or {}), "path": str(features)}
        return loaded, str(features)
    return features, _features_name(features)


def _distribution_scope() -> Any:
    """MirroredStrategy scope on several GPUs, else a no-op context."""
    import contextlib

    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def _describe_run(features: Any, features_file: str, model_name: str, config: Any, split: Any, seed: int,
                  test_group: str | None) -> dict[str, Any]:
    """The run.json content: everything needed to prepare new clips for this model and read its outputs."""
    from utils import models

    keypoint_options = preprocessing.resolve_options(config.preprocessing)
    return {
        "model": model_name, "config_name": config.name, "config": config.to_dict(), "classes": list(features.classes),
        "inputs": list(models.model_inputs(model_name)), "num_frames": config.num_frames,
        "image_size": config.image_size, "keypoint_dim": KEYPOINT_DIM,
        "input_dim": preprocessing.output_dim(keypoint_options), "preprocessing": keypoint_options,
        "augmentation": preprocessing.resolve_augmentation(config.augmentation),
        "split": {"strategy": split.strategy, "seed": seed, "test_group": test_group},
        "features_path": features_file, "features_meta": dict(getattr(features, "meta", {}) or {}),
    }


def _fit(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
         seed: int, verbose: int) -> tuple[Any, dict[str, list[float]], float]:
    """Build, compile and fit the model with best-on-validation weights; return (model, history, seconds)."""
    from utils import models

    labels = np.asarray(features.labels, dtype=np.int64)
    batches = training_batches(raw_inputs(features, run_info, split.train), labels[split.train], run_info,
                               config.augmentation or {}, batch_size, seed)
    validation = (prepare_inputs(features, run_info, split.val), labels[split.val]) if len(split.val) else None
    with _distribution_scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        models.compile_model(model, config)
    start = time.perf_counter()
    fit = model.fit(batches, epochs=epochs, verbose=2 if verbose >= 2 else 0, validation_data=validation,
                    callbacks=_callbacks(config, config.patience, verbose, epochs))
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return model, history, time.perf_counter() - start


def _fit_linear(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
                seed: int, verbose: int) -> tuple[Any, dict[str, list[float]], float]:
    """Fit scikit-learn's StandardScaler + LogisticRegression(C=config.linear_c) on the training clips' segment
    statistics and copy them into the Keras linear model; return (model, one-step history, seconds)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    from utils import models

    start = time.perf_counter()
    labels = np.asarray(features.labels, dtype=np.int64)
    statistics = models.segment_statistics(prepare_inputs(features, run_info, split.train)["keypoints"], config.segments)
    scaler = StandardScaler().fit(statistics)
    classifier = LogisticRegression(C=config.linear_c, max_iter=2000, random_state=seed)
    classifier.fit(scaler.transform(statistics), labels[split.train])
    model = models.build_model("linear", config, num_classes=len(run_info["classes"]), keypoint_dim=run_info["input_dim"])
    models.set_linear_weights(model, scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_,
                              classes=classifier.classes_)
    models.compile_model(model, config)
    history: dict[str, list[float]] = {}
    for name, indices in (("", split.train), ("val_", split.val)):
        if len(indices):
            probabilities = model.predict(prepare_inputs(features, run_info, indices), batch_size=batch_size, verbose=0)
            history[f"{name}loss"] = [float(log_loss(labels[indices], probabilities,
                                                     labels=np.arange(len(run_info["classes"]))))]
            history[f"{name}accuracy"] = [float(np.mean(probabilities.argmax(axis=1) == labels[indices]))]
    return model, history, time.perf_counter() - start


def _score(model: Any, features: Any, run_info: dict[str, Any], indices: np.ndarray,
           batch_size: int) -> tuple[dict[str, Any], np.ndarray]:
    """Classification metrics and class probabilities of the model on the clips at indices."""
    from utils.evaluation import classification_metrics

    probabilities = model.predict(prepare_inputs(features, run_info, indices), batch_size=batch_size, verbose=0)
    labels = np.asarray(features.labels, dtype=np.int64)[indices]
    return classification_metrics(labels, probabilities.argmax(axis=1), run_info["classes"]), probabilities


def _write_run(out_dir: Path, model: Any, run_info: dict[str, Any], metrics: dict[str, Any], features: Any,
               test_indices: np.ndarray, probabilities: np.ndarray) -> None:
    """Write every file of a run into ``<out_dir>.partial``, then move it into place."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    model.save(partial / "model.keras")
    _write_json(partial / "run.json", run_info)
    _write_json(partial / "metrics.json", metrics)
    history = metrics["history"]
    _write_csv(partial / "history.csv", [{"epoch": i + 1, **{k: v[i] for k, v in history.items()}}
                                         for i in range(metrics["epochs_run"])])
    labels = np.asarray(features.labels, dtype=np.int64)
    _write_csv(partial / "predictions.csv",
               _prediction_rows(features, test_indices, labels, probabilities, run_info["classes"]))
    _save_figures(partial, history, metrics["confusion_matrix"], run_info["classes"],
                  f"{run_info['model']} ({run_info['config_name']})")
    _publish(partial, out_dir)


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
    run_info = _describe_run(features, features_file, model_name, config, split, seed, test_group)
    fit = _fit_linear if model_name == "linear" else _fit
    model, history, train_seconds = fit(features, run_info, config, split, epochs, batch_size, seed, verbose)

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
    }
    _write_run(out_dir, model, run_info, metrics, features, split.test, probabilities)
    return metrics


def _best_epoch(history: Mapping[str, list[float]]) -> int:
    """1-based epoch of the best validation accuracy (ties: lower val_loss), as KeepBest chose it."""
    accuracy = history.get("val_accuracy") or history.get("accuracy") or []
    losses = history.get("val_loss") or history.get("loss") or [0.0] * len(accuracy)
    if not accuracy:
        return 0
    return int(max(range(len(accuracy)), key=lambda i: (accuracy[i], -losses[i], -i)) + 1)


def _prediction_rows(features: Any, indices: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                     classes: list[str]) -> list[dict[str, Any]]:
    """One row per test clip for predictions.csv."""
    clip_paths = getattr(features, "paths", None)
    groups = getattr(features, "groups", None)
    rows = []
    for row, index in enumerate(indices):
        rows.append({"index": int(index), "path": str(clip_paths[index]) if clip_paths is not None else "",
                     "group": str(groups[index]) if groups is not None else "",
                     "true": classes[labels[index]], "predicted": classes[int(probabilities[row].argmax())],
                     "confidence": round(float(probabilities[row].max()), 5)})
    return rows


def train_from_file(features_path: str | Path, model_name: str, config_name: str | None = None,
                    out_dir: str | Path | None = None, epochs: int | None = None, seed: int = 0,
                    test_group: str | None = None, batch_size: int | None = None, verbose: int = 1) -> dict[str, Any]:
    """:func:`train` on a features .npz (what ``python -m utils train`` calls)."""
    return train(features_path, model_name, config_name, out_dir=out_dir, epochs=epochs, batch_size=batch_size,
                 seed=seed, test_group=test_group, verbose=verbose)


# ----------------------------------------------------------------------------- reuse a run
def load_run(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The trained model and its run.json from a folder written by :func:`train`; ModelDirError if incomplete,
    damaged, or mixed from two runs."""
    import keras

    from utils import models  # noqa: F401  (registers the custom layers before loading)

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir} is not a folder: train a model first, e.g. "
                            f"python -m utils train --features FILE --model lstm --out {model_dir}")
    missing = [name for name in RUN_FILES if not (model_dir / name).is_file()]
    if missing:
        hint = " (an interrupted run? train again)" if model_dir.name.endswith(".partial") else ""
        raise ModelDirError(f"{model_dir} lacks {', '.join(missing)}{hint}: it is not a finished run of "
                            "python -m utils train")
    try:
        run_info = json.loads((model_dir / "run.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelDirError(f"{model_dir / 'run.json'} is not valid JSON ({error}); train again") from None
    missing = [key for key in RUN_KEYS if key not in run_info]
    if missing:
        raise ModelDirError(f"{model_dir / 'run.json'} lacks {', '.join(missing)}: it was not written by "
                            "python -m utils train of this course; train the model again")
    try:
        model = keras.models.load_model(model_dir / "model.keras", compile=False)
    except Exception as error:  # a damaged model.keras, a layer this code does not know, ...
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        raise ModelDirError(f"{model_dir / 'model.keras'} could not be loaded ({type(error).__name__}: {first_line}); "
                            "train the model again with this version of the course") from None
    _check_model_matches_run(model, run_info, model_dir)
    return model, run_info


RUN_KEYS = ("model", "classes", "inputs", "num_frames", "image_size")


def _input_shapes(model: Any) -> dict[str, tuple]:
    """The model's input shapes by input name ('keypoints', 'frames'), batch axis dropped."""
    return {tensor.name.split(":")[0]: tuple(tensor.shape[1:]) for tensor in model.inputs}


def _check_model_matches_run(model: Any, run_info: Mapping[str, Any], model_dir: Path) -> None:
    """ModelDirError when model.keras and run.json disagree (files mixed from different runs)."""
    shapes = _input_shapes(model)
    problems = []
    if sorted(shapes) != sorted(run_info["inputs"]):
        problems.append(f"model inputs {sorted(shapes)} vs run.json inputs {sorted(run_info['inputs'])}")
    for name, shape in shapes.items():
        if shape and shape[0] is not None and int(shape[0]) != int(run_info["num_frames"]):
            problems.append(f"{name} has {shape[0]} frames vs num_frames {run_info['num_frames']}")
    frame_size = shapes.get("frames", (None, None))[1]
    if frame_size is not None and int(frame_size) != int(run_info["image_size"]):
        problems.append(f"frames are {frame_size} px vs image_size {run_info['image_size']}")
    if "keypoints" in shapes and "input_dim" in run_info and int(shapes["keypoints"][-1]) != int(run_info["input_dim"]):
        problems.append(f"keypoints have {shapes['keypoints'][-1]} numbers vs input_dim {run_info['input_dim']}")
    outputs = int(model.outputs[0].shape[-1])
    if outputs != len(run_info["classes"]):
        problems.append(f"{outputs} outputs vs {len(run_info['classes'])} classes")
    if problems:
        raise ModelDirError(f"{model_dir}: model.keras and run.json come from different configurations "
                            f"({'; '.join(problems)}); do not mix files of two runs, train again")


def _map_labels(features: Any, run_info: Mapping[str, Any], features_path: str | Path) -> np.ndarray:
    """The features' labels as indices into the model's classes; FeatureFileError for unknown classes."""
    model_classes = list(run_info["classes"])
    unknown = [c for c in features.classes if c not in model_classes]
    if unknown:
        raise FeatureFileError(f"{features_path} has classes the model was not trained on: {unknown[:10]}; "
                               f"the model knows {model_classes}. Use a features file of the same dataset.")
    lookup = np.array([model_classes.index(c) for c in features.classes], dtype=np.int64)
    return lookup[np.asarray(features.labels, dtype=np.int64)]


def evaluate_saved(model_dir: str | Path, features_path: str | Path, split: str = "all") -> dict[str, Any]:
    """Re-score a saved run on a features file: accuracy, macro_f1, n, per_class, confusion_matrix.

    ``split``: "all" clips, or "train"/"val"/"test" re-drawn exactly as the run split them (same seed,
    strategy and test group), which is meaningful for the features file the run was trained on.
    """
    from utils import splits as splits_module
    from utils.evaluation import classification_metrics
    from utils.features import load_features

    model, run_info = load_run(model_dir)
    features = load_features(features_path)
    if features.keypoints.shape[-1] != run_info.get("keypoint_dim", KEYPOINT_DIM):
        raise FeatureFileError(f"{features_path} has {features.keypoints.shape[-1]} numbers per frame; "
                               f"{model_dir} expects {run_info.get('keypoint_dim', KEYPOINT_DIM)}")
    if "frames" in run_info.get("inputs", []) and features.frames is None:
        raise FeatureFileError(f"{features_path} has no frames but the {run_info['model']} model in {model_dir} "
                               "needs them; use a features file extracted from videos")
    labels = _map_labels(features, run_info, features_path)
    if split == "all":
        indices = np.arange(len(labels))
    elif split in splits_module.SPLIT_NAMES:
        params = run_info.get("split", {})
        indices = splits_module.make_splits(features.labels, groups=features.groups, split=features.split,
                                            test_group=params.get("test_group"), seed=int(params.get("seed", 0)))[split]
    else:
        raise ConfigError(f"--split must be 'all', 'train', 'val' or 'test', got {split!r}")
    if len(indices) == 0:
        raise FeatureFileError(f"{features_path}: the {split} split is empty")
    inputs = prepare_inputs(features, run_info, indices)
    predicted = model.predict(inputs, batch_size=64, verbose=0).argmax(axis=1)
    return classification_metrics(labels[indices], predicted, run_info["classes"])
