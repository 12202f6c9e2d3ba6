"""Training with seeds, augmentation per batch, best-on-validation weights, one test evaluation.

One call, :func:`train`, does a whole run and writes a self-contained run folder (its files and format:
:mod:`utils.runs`). Clips become model inputs through :mod:`utils.inputs` only (the same path as
evaluation, cross-validation and prediction). Model selection uses the validation split only and the
test split is scored once (defect 6 of the original chose the model on test; defect 5 averaged accuracy
per batch: here it is per clip).

While training, ``<out_dir>.partial/`` holds ``history.csv`` (one row per finished epoch) and ``checkpoints/``
(``best.weights.h5``, ``last.weights.h5`` and a backup of everything a resumed run needs):
``train(..., resume=True)`` (``python -m utils train ... --resume``) continues an interrupted run at the epoch
after its last finished one and ends with the same weights as a run that was never interrupted.

Seed ensembles (``ModelConfig.ensemble`` = N > 1, ``--ensemble N``): the N networks are fitted one after another,
member i with seed ``seed + i - 1`` (its own initial weights, batch order and augmentation; member 1 is the network
a single run of that seed trains), each with its own early stopping on the same validation signers and the same
class weights, in ``<out_dir>.partial/member<i>/``. They are then saved as ONE Keras model whose output is the mean
of their probabilities (:func:`utils.models.ensemble_model`), so evaluation, cross-validation, prediction, the webcam
and export take it like any model. A resumed run reads finished members back and continues the unfinished one.
``history.csv`` and the curves are member 1's; ``metrics.json`` keeps every member's under ``"members"``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import keras
import numpy as np

from utils import paths
from utils.training import distribute
from utils.inputs import preprocessing
from utils.errors import ConfigError, FeatureFileError, ModelDirError, ensure_writable_folder
from utils.training.metrics import predict_clips
from utils.inputs.spec import as_spec, features_name, finish_inputs, prepare_inputs, raw_inputs, sample_clips, stored_arrays
from utils.data.keypoints import KEYPOINT_DIM
from utils.training.runs import describe_run, write_run

CHECKPOINTS = "checkpoints"  # inside <out_dir>.partial while a run trains


# ----------------------------------------------------------------------------- configuration and seeds
def resolve_config(model_name: str, config: Any = None) -> Any:
    """A ModelConfig from None (recommended), a configuration name, a dict or a ModelConfig."""
    from utils import models

    if config is None or isinstance(config, str):
        return models.get_config(model_name, config)
    if isinstance(config, Mapping):
        return models.ModelConfig.from_dict(dict(config))
    return config


def with_ensemble(config: Any, members: int) -> Any:
    """The configuration with ``ensemble=members`` (``--ensemble N``); ConfigError unless N is at least 1."""
    if int(members) < 1:
        raise ConfigError(f"--ensemble {members}: give the number of networks to average, 1 (one network) or more")
    return config.replace(ensemble=int(members))


def with_overrides(config: Any, ensemble: int | None = None, validation: bool | None = None) -> Any:
    """The configuration with the command line's ``--ensemble N`` and ``--[no-]validation`` (None: as it is)."""
    if ensemble is not None:
        config = with_ensemble(config, ensemble)
    return config if validation is None else config.replace(validation=bool(validation))


def gpu_available() -> bool:
    """True when TensorFlow sees at least one GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def set_seeds(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python, NumPy and Keras/TensorFlow; deterministic ops on request (None: on without a GPU, where they
    cost little; off with one, where they are slow)."""
    from tensorflow.python.framework import config as tf_config

    from utils.config import set_seed

    set_seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic is None:
        deterministic = not gpu_available()
    if deterministic:
        tf_config.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def precision_policy(mixed: bool | None = None) -> Iterator[str]:
    """Build models inside this block under 'mixed_float16' (None: only when a GPU is present), else float32.

    The models' softmax stays float32 either way; the global policy is restored on exit."""
    previous = keras.mixed_precision.global_policy()
    if mixed is None:
        mixed = gpu_available()
    name = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)


# ----------------------------------------------------------------------------- batches
class TrainingBatches(keras.utils.PyDataset):
    """Shuffled, augmented (raw keypoints and frames), then preprocessed training batches.

    ``raw``: the stored arrays ({"keypoints", "frames", "hands"}), whole (``rows``: the training clips' rows in
    them) or already the training clips (``rows`` None). Each batch indexes only its clips, so from a features
    store (memory maps) the training split is never in memory, and samples (T, S), augments and preprocesses
    just them (:mod:`utils.inputs`).
    Batch ``index`` is drawn from (seed, :attr:`epoch`, index) only, so a run gives the same batches every time.
    :attr:`epoch` counts Keras's calls of :meth:`on_epoch_end` (one more than the epochs trained, as Keras also
    calls it after peeking at the first batches); a resumed run restores it (:class:`ResumableBackup`).
    """

    def __init__(self, raw: Mapping[str, Any], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                 batch_size: int, seed: int, rows: np.ndarray | None = None) -> None:
        super().__init__()
        self.raw, self.labels, self.spec = raw, labels, as_spec(spec)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.augmentation, self.batch_size, self.seed = dict(augmentation), batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))
        # every batch full (the last one wraps around): one input shape, so TensorFlow traces the step once
        chosen = order[np.arange(index * self.batch_size, (index + 1) * self.batch_size) % len(self.labels)]
        picked = chosen if self.rows is None else self.rows[chosen]
        batch = sample_clips({name: value[picked] for name, value in self.raw.items()}, self.spec)
        if any(float(v) > 0 for v in self.augmentation.values()):
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            some_frames = batch.get("frames", batch.get("hands"))
            augmented = preprocessing.augment_clips(batch["keypoints"] if "keypoints" in batch
                                                    else _frames_only_keypoints(some_frames),
                                                    batch.get("frames"), rng, self.augmentation,
                                                    **({"hand_crops": batch["hands"]} if "hands" in batch else {}))
            for name, value in zip(("keypoints", "frames", "hands"), augmented):  # flipped and warped together
                if name in batch:
                    batch[name] = value
        return finish_inputs(batch, self.spec), self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.epoch += 1


def training_batches(raw: Mapping[str, Any], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                     batch_size: int, seed: int, rows: np.ndarray | None = None) -> TrainingBatches:
    """A keras.utils.PyDataset of shuffled, augmented (raw keypoints and frames), then preprocessed batches."""
    return TrainingBatches(raw, labels, spec, augmentation, batch_size, seed, rows)


class ClipBatches(keras.utils.PyDataset):
    """The clips at ``rows`` in order, in batches, prepared for the model (no augmentation): validation and scoring
    read one batch at a time, never the whole split. Batch i is (inputs, labels), or inputs without labels."""

    def __init__(self, features: Any, spec: Any, rows: np.ndarray, labels: np.ndarray | None,
                 batch_size: int) -> None:
        super().__init__()
        self.features, self.spec, self.batch_size = features, as_spec(spec), int(batch_size)
        self.rows, self.labels = np.asarray(rows, dtype=np.int64), labels

    def __len__(self) -> int:
        return int(np.ceil(len(self.rows) / self.batch_size))

    def __getitem__(self, index: int) -> Any:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        inputs = prepare_inputs(self.features, self.spec, self.rows[part])
        return inputs if self.labels is None else (inputs, np.asarray(self.labels)[part])


def _frames_only_keypoints(frames: np.ndarray) -> np.ndarray:
    """Empty keypoints matching frames, so frame-only models reuse the same (time and flip) augmentation."""
    return np.zeros((*frames.shape[:2], KEYPOINT_DIM), dtype=np.float32)


# ----------------------------------------------------------------------------- callbacks
class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the best val_accuracy epoch (ties: lower val_loss), stop after ``patience`` epochs
    without progress, and restore the best weights at the end. With ``folder``, the best weights are also saved
    there as ``best.weights.h5`` whenever they change. Without validation clips (no ``val_accuracy`` in the logs:
    ``ModelConfig.validation=False``) there is nothing to select on: the last epoch counts as best and its weights,
    already in the model, stay (nothing is copied or written)."""

    def __init__(self, patience: int | None = None, folder: Path | None = None) -> None:
        super().__init__()
        self.patience, self.folder = patience, folder
        self.best: tuple[float, float] | None = None
        self.best_epoch, self.weights, self.wait, self.last_epoch = -1, None, 0, -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch <= self.last_epoch:  # an epoch already judged before an interruption, trained again identically
            return
        self.last_epoch = epoch
        logs = logs or {}
        if "val_accuracy" not in logs:  # no validation clips: nothing to select on, the last weights stay
            self.best, self.best_epoch, self.wait = (float(epoch), 0.0), epoch, 0
            return
        score = (logs["val_accuracy"], -logs.get("val_loss", 0.0))
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self.wait = (float(score[0]), float(score[1])), epoch, 0
            self.weights = self.model.get_weights()
            if self.folder is not None:
                self.model.save_weights(self.folder / "best.weights.h5")
            return
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)

    def state(self) -> dict[str, Any]:
        """Everything needed to continue after an interruption (the best weights as a list of arrays)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "last_epoch": self.last_epoch,
                "weights": self.weights}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an interrupted run."""
        self.best = tuple(state["best"]) if state["best"] is not None else None
        self.best_epoch, self.wait, self.last_epoch = state["best_epoch"], state["wait"], state["last_epoch"]
        self.weights = state["weights"]


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore (weights, optimizer state, epoch) plus what it leaves out and an exact resume needs:
    the dropout random state, Python's random state (Keras shuffles the order of the batches with it), KeepBest's
    best weights and score, and the epoch counter the training batches are drawn with.

    The extra state of epoch ``e`` is written before Keras's backup of that epoch and read back for the epoch the
    backup names, so an interruption between the two writes still resumes consistently; Keras keeps the previous
    backup too (a kill in the middle of writing one falls back to it), so the previous extra state is kept as well.
    """

    def __init__(self, backup_dir: Path, keep_best: KeepBest, batches: TrainingBatches | None = None) -> None:
        super().__init__(str(backup_dir), double_checkpoint=True)
        self.folder, self.keep_best, self.batches = Path(backup_dir), keep_best, batches
        self.initial_epoch = 0
        self._batches_epoch: int | None = None  # set by a resume, applied when the first epoch begins

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        metadata = self.folder / "training_metadata.json"
        self.initial_epoch = int(json.loads(metadata.read_text())["epoch"]) if metadata.is_file() else 0
        if self.initial_epoch:
            self._restore_extra(self.folder / f"extra-{self.initial_epoch}.npz")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.batches is not None and self._batches_epoch is not None:
            self.batches.epoch, self._batches_epoch = self._batches_epoch, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._save_extra(self.folder / f"extra-{epoch + 1}.npz")
        super().on_epoch_end(epoch, logs)
        for old in self.folder.glob("extra-*.npz"):
            if old.name not in (f"extra-{epoch}.npz", f"extra-{epoch + 1}.npz"):
                old.unlink()

    def _seed_states(self) -> list[Any]:
        """The random-state variables of the model's layers (dropout), which model weights do not include."""
        return [v for v in self.model.variables if v.name == "seed_generator_state"]

    def _save_extra(self, path: Path) -> None:
        """Write the seed states, Python's random state, the batches' epoch and KeepBest's state (atomically)."""
        state = self.keep_best.state()
        arrays = {f"seed_{i}": np.asarray(v.numpy()) for i, v in enumerate(self._seed_states())}
        arrays.update({f"best_{i}": w for i, w in enumerate(state.pop("weights") or [])})
        batches_epoch = None if self.batches is None else self.batches.epoch  # already counts this epoch's end
        arrays["state"] = np.array(json.dumps({**state, "python_random": random.getstate(),
                                               "batches_epoch": batches_epoch}))
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    def _restore_extra(self, path: Path) -> None:
        """Read back what :meth:`_save_extra` wrote; a missing file means a backup from another version."""
        if not path.is_file():
            raise ModelDirError(f"{path} is missing: the checkpoint in {self.folder} cannot be resumed exactly; "
                                "train again without --resume")
        with np.load(path) as data:
            for i, variable in enumerate(self._seed_states()):
                variable.assign(data[f"seed_{i}"])
            weights = [data[f"best_{i}"] for i in range(sum(k.startswith("best_") for k in data.files))]
            state = json.loads(str(data["state"]))
        version, internal, gauss = state.pop("python_random")
        random.setstate((version, tuple(internal), gauss))
        self._batches_epoch = state.pop("batches_epoch")
        self.keep_best.restore({**state, "weights": weights or None})


class EpochBar(keras.callbacks.Callback):
    """A tqdm bar over epochs with loss and accuracies (a resumed run starts it at its first epoch)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs, self.bar = epochs, None

    def on_train_begin(self, logs: dict | None = None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, desc="epochs", unit="epoch")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()
                              if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
        self.bar.update(epoch + 1 - self.bar.n)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.bar.close()


def _callbacks(config: Any, verbose: int, epochs: int, folder: Path, batches: TrainingBatches, resume: bool,
               tensorboard_dir: Path | None = None) -> tuple[list[Any], ResumableBackup]:
    """Best-on-validation weights (with early stopping), history.csv, checkpoints and a backup to resume from, the
    LR schedule, TensorBoard and a progress bar; returns (callbacks, the backup callback)."""
    from utils import models

    checkpoints = folder / CHECKPOINTS
    checkpoints.mkdir(parents=True, exist_ok=True)
    keep_best = KeepBest(config.patience, checkpoints)
    backup = ResumableBackup(checkpoints / "backup", keep_best, batches)
    # order matters: the schedule adds learning_rate to the logs before the CSV row is written, and KeepBest,
    # the CSV row and the last weights of an epoch are written before its backup
    callbacks: list[Any] = []
    if config.lr_milestones:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch)))
    callbacks += [
        keep_best,
        keras.callbacks.CSVLogger(str(folder / "history.csv"), append=resume),
        keras.callbacks.ModelCheckpoint(str(checkpoints / "last.weights.h5"), save_weights_only=True),
        backup,
    ]
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    if verbose == 1:
        callbacks.append(EpochBar(epochs))
    return callbacks, backup


def _read_history_csv(path: Path) -> dict[str, list[float]]:
    """Per-epoch logs from history.csv written by CSVLogger (a repeated epoch keeps its last row)."""
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row.pop("epoch"))] = row
    keys = list(next(iter(rows.values()))) if rows else []
    return {key: [float(rows[epoch][key]) for epoch in sorted(rows)] for key in keys}


# ----------------------------------------------------------------------------- train
def _as_features(features: Any) -> tuple[Any, str]:
    """A FeatureSet and its file name from a FeatureSet or a path."""
    if isinstance(features, (str, Path)):
        from utils.data.features import load_features

        loaded = load_features(features)
        loaded.meta = {**(loaded.meta or {}), "path": str(features)}
        return loaded, str(features)
    return features, features_name(features)


CLASS_WEIGHTS = (None, "balanced")


def class_weights(labels: np.ndarray, mode: str | None) -> dict[int, float] | None:
    """Loss weight of each class for ``ModelConfig.class_weight``: None (every clip counts once) or "balanced"
    (N / (classes x clips of the class): a sign that few training clips show counts as much as a common one)."""
    if mode is None:
        return None
    if mode != "balanced":
        raise ConfigError(f"unknown class_weight {mode!r}; use one of {', '.join(map(str, CLASS_WEIGHTS))}")
    classes, counts = np.unique(np.asarray(labels, dtype=np.int64), return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def _fit(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
         seed: int, verbose: int, folder: Path, resume: bool = False, tensorboard_dir: Path | None = None,
         mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """One network (:func:`_fit_network`) or, with ``config.ensemble`` > 1, a seed ensemble (:func:`_fit_ensemble`)."""
    if config.ensemble > 1:
        return _fit_ensemble(features, run_info, config, split, epochs, batch_size, seed, verbose, folder, resume,
                             tensorboard_dir, mixed_precision)
    return _fit_network(features, run_info, config, split, epochs, batch_size, seed, verbose, folder, resume,
                        tensorboard_dir, mixed_precision)


MEMBER_WEIGHTS, MEMBER_HISTORY = "member.weights.h5", "member_history.json"  # a finished member, in member<i>/


def _fit_ensemble(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
                  seed: int, verbose: int, folder: Path, resume: bool = False, tensorboard_dir: Path | None = None,
                  mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """Fit ``config.ensemble`` networks one after another, member i with seed ``seed + i - 1`` (its own initial
    weights, batch order and augmentation), each with its own early stopping on the same validation signers, then
    average them in one model (:func:`utils.models.ensemble_model`). Each member trains in ``folder/member<i>``
    (checkpoints, history.csv); a finished one is kept there, so a resumed run trains only the unfinished members.
    Returns (model, member 1's history (the curves and history.csv; every member's: :func:`member_summaries`),
    seconds)."""
    from tensorflow.python.framework import config as tf_config

    from utils import models

    start, single, members, histories = time.perf_counter(), config.replace(ensemble=1), [], []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(config.ensemble):
        member_folder = folder / f"{models.MEMBER_PREFIX}{index + 1}"
        if verbose:
            print(f"member {index + 1}/{config.ensemble} (seed {seed + index})", flush=True)
        set_seeds(seed + index, deterministic=tf_config.is_op_determinism_enabled())
        if resume and (member_folder / MEMBER_WEIGHTS).is_file():
            member = _build_compiled(run_info, single, mixed_precision)
            member.load_weights(member_folder / MEMBER_WEIGHTS)
            history = json.loads((member_folder / MEMBER_HISTORY).read_text(encoding="utf-8"))
        else:
            member_resume = resume and (member_folder / CHECKPOINTS / "backup" / "training_metadata.json").is_file()
            member, history, _ = _fit_network(features, run_info, single, split, epochs, batch_size, seed + index,
                                              verbose, member_folder, member_resume,
                                              tensorboard_dir if index == 0 else None, mixed_precision)
            member.save_weights(member_folder / MEMBER_WEIGHTS)
            (member_folder / MEMBER_HISTORY).write_text(json.dumps(history), encoding="utf-8")
        members.append(member)
        histories.append(history)
    with precision_policy(mixed_precision), distribute.choose_strategy().scope():
        model = models.compile_model(models.ensemble_model(members, name=f"{run_info['model']}_{config.name}"), config)
    return model, histories[0], time.perf_counter() - start


def member_summaries(folder: Path, seed: int) -> list[dict[str, Any]]:
    """Each finished member of an ensemble trained in ``folder`` (``member<i>/``): its seed, epochs, best epoch and
    per-epoch history (what metrics.json keeps under "members")."""
    from utils import models

    found = []
    for index in range(1, len(list(folder.glob(f"{models.MEMBER_PREFIX}*"))) + 1):
        path = folder / f"{models.MEMBER_PREFIX}{index}" / MEMBER_HISTORY
        if path.is_file():
            history = json.loads(path.read_text(encoding="utf-8"))
            found.append({"member": index, "seed": seed + index - 1, "epochs_run": len(history.get("loss", [])),
                          "best_epoch": _best_epoch(history), "history": history})
    return found


def _build_compiled(run_info: dict[str, Any], config: Any, mixed_precision: bool | None) -> Any:
    """The model of run_info and config, built and compiled under the precision policy and distribution strategy."""
    from utils import models

    with precision_policy(mixed_precision), distribute.choose_strategy().scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        return models.compile_model(model, config)


def _fit_network(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
                 seed: int, verbose: int, folder: Path, resume: bool = False, tensorboard_dir: Path | None = None,
                 mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """Build, compile and fit one network with best-on-validation weights, checkpoints and history.csv in folder
    (continuing its backup when resume); return (model, history of every epoch, seconds of this call)."""
    from utils import models

    labels = np.asarray(features.labels, dtype=np.int64)
    strategy = distribute.choose_strategy()  # batch_size is per replica: each step reads the global batch
    global_batch = distribute.global_batch_size(batch_size, strategy.num_replicas_in_sync)
    # the stored arrays whole: each batch reads its clips only (a features store is never read whole)
    batches = training_batches(stored_arrays(features, run_info), labels[split.train], run_info,
                               config.augmentation or {}, global_batch, seed, split.train)
    validation = ClipBatches(features, run_info, split.val, labels[split.val], global_batch) if len(split.val) else None
    start = time.perf_counter()
    with precision_policy(mixed_precision), strategy.scope():
        model = models.build_model(run_info["model"], config, num_classes=len(run_info["classes"]),
                                   keypoint_dim=run_info["input_dim"])
        if models.linear_output_layer(model) is not None:  # a blend: the linear branch first, then the neural part alone
            fit_linear_weights(model, _segment_statistics_of(features, run_info, split.train, config.segments),
                               labels[split.train], config, seed)
        models.compile_model(model, config)
        trained = models.neural_part(model)
        if trained is not model:
            models.compile_model(trained, config)
        distribute.prepare_model(trained)
    callbacks, backup = _callbacks(config, verbose, epochs, folder, batches, resume, tensorboard_dir)
    if getattr(config, "staged", False) and models.branch_models(model):
        return model, _fit_staged(model, batches, validation, config, epochs, verbose,
                                  class_weights(labels[split.train], config.class_weight)), time.perf_counter() - start
    fit = trained.fit(batches, epochs=epochs, verbose=2 if verbose >= 2 else 0, validation_data=validation,
                      callbacks=callbacks, class_weight=class_weights(labels[split.train], config.class_weight))
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    if backup.initial_epoch:  # a resumed run: the epochs before the interruption come from history.csv
        earlier = _read_history_csv(folder / "history.csv")
        history = {key: earlier.get(key, [])[:backup.initial_epoch] + values for key, values in history.items()}
    return model, history, time.perf_counter() - start


FUSION_STEPS, FUSION_LEARNING_RATE = 100, 0.05  # stage 2 of staged training: full-batch steps on the fusion weights


def _fit_staged(model: Any, batches: Any, validation: ClipBatches | None, config: Any, epochs: int,
                verbose: int, class_weight: dict[int, float] | None = None) -> dict[str, list[float]]:
    """Staged training: each branch alone with its own head (best on validation), then only the fusion weights.

    The fusion is fit on the validation clips, whose signers no branch trained on: a branch that memorised
    the training signers earns little weight there. Returns the stages' histories one after the other.
    """
    from utils import models

    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for name, branch in models.branch_models(model).items():  # stage 1, sharing the fused model's layers
        models.compile_model(branch, config)
        branch_validation = None if validation is None else OneInput(validation, name)
        fit = branch.fit(OneInput(batches, name), epochs=epochs, verbose=2 if verbose >= 2 else 0,
                         validation_data=branch_validation, callbacks=_branch_callbacks(config, verbose, epochs),
                         class_weight=class_weight)
        for key in history:
            history[key] += [float(v) for v in fit.history.get(key, fit.history.get(key.replace("val_", ""), []))]
    # the fusion is fit on the validation clips (read batch by batch); without validation signers, a training batch
    inputs, labels = (validation, validation.labels) if validation is not None else batches[0]
    fusion = fit_fusion(model, inputs, labels)
    for key in history:  # stage 2 (one row): it trains on the validation clips, so its loss is also theirs
        history[key].append(fusion[key.replace("val_", "")][-1])
    return history


def _branch_callbacks(config: Any, verbose: int, epochs: int) -> list[Any]:
    """Stage 1 of staged training, one branch: best-on-validation weights with early stopping, the LR schedule."""
    from utils import models

    callbacks: list[Any] = [KeepBest(config.patience)]
    if config.lr_milestones:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch)))
    if verbose == 1:
        callbacks.append(EpochBar(epochs))
    return callbacks


def fit_fusion(model: Any, inputs: Mapping[str, np.ndarray] | keras.utils.PyDataset,
               labels: np.ndarray) -> dict[str, list[float]]:
    """Stage 2 of staged training: fit only the fusion weights of a late-fusion model (full batch); its history.

    ``inputs``: the clips' model inputs, or a PyDataset of their batches (e.g. :class:`ClipBatches`) in order.
    The branches are frozen, so their outputs are computed once (inference mode) and only the fusion layer
    is trained on them: a few milliseconds per step instead of a pass through every branch.
    """
    import keras

    from utils import models

    history: dict[str, list[float]] = {}
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    for fusion in models.fusion_layers(model):
        sources = fusion.input if isinstance(fusion.input, (list, tuple)) else [fusion.input]
        branches = keras.Model(model.inputs, list(sources))
        fed = (branches.predict(inputs, verbose=0) if isinstance(inputs, keras.utils.PyDataset)
               else branches.predict({name: inputs[name] for name in names}, batch_size=64, verbose=0))
        fed = fed if isinstance(fed, (list, tuple)) else [fed]
        history = fit_fusion_layer(fusion, [np.asarray(value) for value in fed], labels)
    return history


def fit_fusion_layer(fusion: Any, fed: list[np.ndarray], labels: np.ndarray) -> dict[str, list[float]]:
    """Fit only a fusion layer's weights on its inputs computed beforehand (e.g. branch log-probabilities), full
    batch; its history. The layer is the model's own, so the model's fusion changes with it."""
    import keras

    heads = [keras.Input(value.shape[1:], dtype="float32") for value in fed]
    head = keras.Model(heads, fusion(heads))
    head.compile(optimizer=keras.optimizers.Adam(FUSION_LEARNING_RATE), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"], jit_compile=False)
    fit = head.fit(fed, np.asarray(labels), batch_size=len(labels), epochs=FUSION_STEPS, verbose=0)
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


class OneInput(keras.utils.PyDataset):
    """Another PyDataset's batches with only the input ``name`` (one branch of staged training)."""

    def __init__(self, batches: Any, name: str) -> None:
        super().__init__()
        self.batches, self.name = batches, name

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, labels = self.batches[index]
        return inputs[self.name], labels

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()


def _has_progress(partial: Path) -> bool:
    """Whether ``<out>.partial`` holds a finished epoch to resume from (an ensemble: of any member, or a member)."""
    backups = [partial / CHECKPOINTS / "backup", *partial.glob(f"member*/{CHECKPOINTS}/backup")]
    return (any((backup / "training_metadata.json").is_file() for backup in backups)
            or any(partial.glob(f"member*/{MEMBER_WEIGHTS}")))


def _start_partial(partial: Path, run_info: Mapping[str, Any], resume: bool) -> bool:
    """Prepare ``<out>.partial`` for training: keep it when resuming an interrupted run of the same settings, else
    start empty; return whether training resumes."""
    stamp = partial / CHECKPOINTS / "run.json"
    current = json.loads(json.dumps(run_info, default=str, sort_keys=True))
    if resume and _has_progress(partial) and stamp.is_file():
        if json.loads(stamp.read_text(encoding="utf-8")) != current:
            raise ConfigError(f"{partial} holds an interrupted run with other settings (model, configuration, data, "
                              "split or seed): repeat the interrupted command with --resume, or drop --resume")
        print(f"resuming the interrupted run in {partial}", flush=True)
        return True
    if resume:
        print(f"nothing to resume in {partial} (no finished epoch): training from the start", flush=True)
    if partial.exists():
        shutil.rmtree(partial)
    stamp.parent.mkdir(parents=True)
    stamp.write_text(json.dumps(current, indent=1), encoding="utf-8")
    return False


def _segment_statistics_of(features: Any, run_info: Mapping[str, Any], indices: np.ndarray, segments: int) -> np.ndarray:
    """The linear model's segment statistics of the prepared keypoints of these clips, read in chunks."""
    from utils import models

    chunks = [indices[start:start + 1024] for start in range(0, len(indices), 1024)]  # per clip: in chunks
    return np.concatenate([models.segment_statistics(prepare_inputs(features, run_info, chunk)["keypoints"], segments)
                           for chunk in chunks])


def fit_linear_weights(model: Any, statistics: np.ndarray, labels: np.ndarray, config: Any, seed: int = 0) -> Any:
    """Fit scikit-learn's StandardScaler + LogisticRegression(C=config.linear_c) on segment statistics
    (:func:`utils.models.segment_statistics` of the prepared keypoints) and copy them into the model's linear
    branch (a linear model or a blend)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from utils import models

    scaler = StandardScaler().fit(statistics)
    classifier = LogisticRegression(C=config.linear_c, max_iter=2000, random_state=seed)
    classifier.fit(scaler.transform(statistics), labels)
    return models.set_linear_weights(model, scaler.mean_, scaler.scale_, classifier.coef_, classifier.intercept_,
                                     classes=classifier.classes_)


def _fit_linear(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
                seed: int, verbose: int) -> tuple[Any, dict[str, list[float]], float]:
    """Fit scikit-learn's StandardScaler + LogisticRegression(C=config.linear_c) (the boosted model: its
    HistGradientBoostingClassifier) on the training clips' segment statistics and copy them into the Keras model;
    return (model, one-step history, seconds)."""
    from sklearn.metrics import log_loss

    from utils import models

    start = time.perf_counter()
    labels = np.asarray(features.labels, dtype=np.int64)
    statistics = _segment_statistics_of(features, run_info, split.train, config.segments)
    if run_info["model"] == "boosted":  # gradient-boosted trees on the same statistics (utils/models/boosted.py)
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


def _score(model: Any, features: Any, run_info: dict[str, Any], indices: np.ndarray,
           batch_size: int) -> tuple[dict[str, Any], np.ndarray]:
    """Classification metrics and class probabilities of the model on the clips at indices."""
    from utils.training.metrics import classification_metrics

    probabilities = predict_clips(model, features, run_info, indices, batch_size)
    labels = np.asarray(features.labels, dtype=np.int64)[indices]
    return classification_metrics(labels, probabilities.argmax(axis=1), run_info["classes"]), probabilities




def train(features: Any, model_name: str, config: Any = None, out_dir: str | Path | None = None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
          test_group: str | None = None, verbose: int = 1, measure_speed: bool = True, resume: bool = False,
          tensorboard: bool = False, deterministic: bool | None = None,
          mixed_precision: bool | None = None) -> dict[str, Any]:
    """Split, train with augmentation and best-on-validation weights, test once, write the run folder; return metrics.

    ``features``: a FeatureSet or a features .npz path. ``config``: None (recommended), a name, or a
    ModelConfig. ``epochs`` / ``batch_size`` override the configuration's. ``verbose``: 0 silent, 1 a
    progress bar over epochs, 2 Keras's one line per epoch. ``measure_speed``: store the
    single-clip latency on a few test clips in metrics["latency"]. ``resume``: continue the interrupted run of
    the same out_dir and settings at its next epoch (same final weights as an uninterrupted run).
    ``tensorboard``: also write TensorBoard logs to ``<out_dir>/tensorboard``. ``deterministic`` and
    ``mixed_precision``: None = on without / with a GPU respectively (see :func:`set_seeds`, :func:`precision_policy`).
    """
    from utils import models
    from utils.data import splits as splits_module
    from utils.training.metrics import measure_latency

    features, features_file = _as_features(features)
    config = resolve_config(model_name, config)
    if "hands" in models.model_inputs(model_name, config) and getattr(features, "hand_crops", None) is None:
        raise FeatureFileError(f"{features_file} has no hand crops, which frame_input={config.frame_input!r} needs: "
                               "extract it again with `python -m utils extract <dataset> --hand-size 32`")
    if "frames" in models.model_inputs(model_name, config) and features.frames is None:
        raise FeatureFileError(f"{features_file} has no frames: it was imported from keypoints only (MP_Data) — "
                               f"train --model lstm, or extract from videos")
    epochs, batch_size = int(epochs or config.epochs), int(batch_size or config.batch_size)
    out_dir = Path(out_dir) if out_dir is not None else paths.RUNS_DIR / f"{model_name}_{config.name}"
    out_dir = distribute.worker_run_dir(out_dir)  # the chief's is out_dir; other workers write theirs beside it
    ensure_writable_folder(out_dir.expanduser().resolve().parent, "run folder")  # fail before training, not after
    set_seeds(seed, deterministic)
    split = splits_module.make_splits(features.labels, groups=features.groups, split=features.split,
                                      test_group=test_group, seed=seed,
                                      fractions=splits_module.split_fractions(config.validation))
    run_info = describe_run(features, features_file, model_name, config, split, seed, test_group)
    tensorboard_dir, members = None, []
    models.check_ensemble(model_name, config)
    if model_name in ("linear", "boosted"):  # scikit-learn fits it in one go: nothing to checkpoint or resume
        model, history, train_seconds = _fit_linear(features, run_info, config, split, epochs, batch_size, seed,
                                                    verbose)
    else:
        partial = out_dir.with_name(out_dir.name + ".partial")
        resume = _start_partial(partial, {**run_info, "epochs": epochs, "batch_size": batch_size}, resume)
        tensorboard_dir = out_dir.with_name(out_dir.name + ".tensorboard") if tensorboard else None
        if tensorboard_dir is not None and not resume and tensorboard_dir.exists():
            shutil.rmtree(tensorboard_dir)
        model, history, train_seconds = _fit(features, run_info, config, split, epochs, batch_size, seed, verbose,
                                             partial, resume, tensorboard_dir, mixed_precision)
        members = member_summaries(partial, seed) if config.ensemble > 1 else []

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
        "train_seconds": round(train_seconds, 2), "load_average": _load_average(),
        "params": int(model.count_params()), "history": history,
        "split_strategy": split.strategy, "test_group": test_group, "test_groups": run_info["split"]["test_groups"],
        "seed": seed, "batch_size": batch_size,
        "features_path": features_file, "features_meta": run_info["features_meta"], "latency": latency,
        "ensemble": int(config.ensemble), **({"members": members} if members else {}),
        **distribute.describe(distribute.choose_strategy(), batch_size),
    }
    write_run(out_dir, model, run_info, metrics, features, split.test, probabilities)
    if tensorboard_dir is not None and tensorboard_dir.exists():
        tensorboard_dir.rename(out_dir / "tensorboard")
    distribute.discard_worker_run(out_dir)  # a worker other than the chief deletes its copy
    return metrics


def _load_average() -> list[float] | None:
    """The machine's load average over 1, 5 and 15 minutes when training ended (read train_seconds beside it); None
    where the system does not tell."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _best_epoch(history: Mapping[str, list[float]]) -> int:
    """1-based epoch of the best validation accuracy (ties: lower val_loss), as KeepBest chose it; the last epoch
    when the run had no validation clips."""
    accuracy = history.get("val_accuracy") or []
    losses = history.get("val_loss") or [0.0] * len(accuracy)
    if not accuracy:
        return len(history.get("accuracy") or history.get("loss") or [])
    return int(max(range(len(accuracy)), key=lambda i: (accuracy[i], -losses[i], -i)) + 1)




def train_from_file(features_path: str | Path, model_name: str, config_name: str | None = None,
                    out_dir: str | Path | None = None, epochs: int | None = None, seed: int = 0,
                    test_group: str | None = None, batch_size: int | None = None, verbose: int = 1,
                    num_frames: int | None = None, ensemble: int | None = None, validation: bool | None = None,
                    **options: Any) -> dict[str, Any]:
    """:func:`train` on a features .npz (what ``python -m utils train`` calls); ``num_frames`` overrides the
    configuration's T (e.g. ``seed`` at T=20 for UCF11), ``ensemble`` its number of networks averaged,
    ``validation`` whether validation clips are carved from training; options: resume, tensorboard,
    deterministic, mixed_precision."""
    config = with_overrides(resolve_config(model_name, config_name), ensemble, validation)
    if num_frames is not None:
        if num_frames < 1:
            raise ConfigError(f"--frames must be a positive number of frames, got {num_frames}")
        config = config.replace(num_frames=int(num_frames))
    return train(features_path, model_name, config, out_dir=out_dir, epochs=epochs, batch_size=batch_size,
                 seed=seed, test_group=test_group, verbose=verbose, **options)
