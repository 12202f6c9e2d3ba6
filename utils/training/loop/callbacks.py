"""What runs beside ``fit``, and resuming: best-on-validation weights, backups, the progress bar.

While a run trains, ``<out_dir>.partial/`` holds ``history.csv`` (one row per finished epoch) and
``checkpoints/`` (``best.weights.h5``, ``last.weights.h5`` and a backup of everything a resumed run needs):
``train(..., resume=True)`` (``python -m utils train ... --resume``) continues an interrupted run at the epoch
after its last finished one and ends with the same weights as a run that was never interrupted.
"""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from utils.errors import ConfigError, ModelDirError
from utils.training.loop.batches import TrainingBatches

CHECKPOINTS = "checkpoints"  # inside <out_dir>.partial while a run trains


# a finished member, in member<i>/
MEMBER_WEIGHTS, MEMBER_HISTORY = "member.weights.h5", "member_history.json"


# ----------------------------------------------------------------------------- callbacks
class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the best val_accuracy epoch (ties: lower val_loss), stop after ``patience``
    epochs without progress, and restore the best weights at the end. With ``folder``, the best weights are
    also saved there as ``best.weights.h5`` whenever they change. Without validation clips (no
    ``val_accuracy`` in the logs: ``ModelConfig.validation=False``) there is nothing to select on: the last
    epoch counts as best and its weights, already in the model, stay (nothing is copied or written)."""

    def __init__(self, patience: int | None = None, folder: Path | None = None) -> None:
        super().__init__()
        self.patience, self.folder = patience, folder
        self.best: tuple[float, float] | None = None
        self.best_epoch, self.weights, self.wait, self.last_epoch = -1, None, 0, -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # an epoch already judged before an interruption, trained again identically
        if epoch <= self.last_epoch:
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
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "last_epoch": self.last_epoch, "weights": self.weights}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an interrupted run."""
        self.best = tuple(state["best"]) if state["best"] is not None else None
        self.best_epoch, self.wait, self.last_epoch = state["best_epoch"], state["wait"], state["last_epoch"]
        self.weights = state["weights"]


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore (weights, optimizer state, epoch) plus what it leaves out and an exact resume
    needs: the dropout random state, Python's random state (Keras shuffles the order of the batches with it),
    KeepBest's best weights and score, and the epoch counter the training batches are drawn with.

    The extra state of epoch ``e`` is written before Keras's backup of that epoch and read back for the epoch
    the backup names, so an interruption between the two writes still resumes consistently; Keras keeps the
    previous backup too (a kill in the middle of writing one falls back to it), so the previous extra state is
    kept as well.
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
        """Write the seed states, Python's random state, the batches' epoch and KeepBest's state
        (atomically)."""
        state = self.keep_best.state()
        arrays = {f"seed_{i}": np.asarray(v.numpy()) for i, v in enumerate(self._seed_states())}
        arrays.update({f"best_{i}": w for i, w in enumerate(state.pop("weights") or [])})
        # already counts this epoch's end
        batches_epoch = None if self.batches is None else self.batches.epoch
        arrays["state"] = np.array(json.dumps({**state, "python_random": random.getstate(),
                                               "batches_epoch": batches_epoch}))
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    def _restore_extra(self, path: Path) -> None:
        """Read back what :meth:`_save_extra` wrote; a missing file means a backup from another version."""
        if not path.is_file():
            raise ModelDirError(f"{path} is missing: the checkpoint in {self.folder} cannot be resumed "
                                f"exactly; train again without --resume")
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


def training_callbacks(config: Any, verbose: int, epochs: int, folder: Path, batches: TrainingBatches,
                       resume: bool,
               tensorboard_dir: Path | None = None) -> tuple[list[Any], ResumableBackup]:
    """Best-on-validation weights (with early stopping), history.csv, checkpoints and a backup to resume from,
    the LR schedule, TensorBoard and a progress bar; returns (callbacks, the backup callback)."""
    from utils import models

    checkpoints = folder / CHECKPOINTS
    checkpoints.mkdir(parents=True, exist_ok=True)
    keep_best = KeepBest(config.patience, checkpoints)
    backup = ResumableBackup(checkpoints / "backup", keep_best, batches)
    # order matters: the schedule adds learning_rate to the logs before the CSV row is written, and KeepBest,
    # the CSV row and the last weights of an epoch are written before its backup
    callbacks: list[Any] = []
    if config.lr_milestones:
        callbacks.append(
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch)))
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


def read_history_csv(path: Path) -> dict[str, list[float]]:
    """Per-epoch logs from history.csv written by CSVLogger (a repeated epoch keeps its last row)."""
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row.pop("epoch"))] = row
    keys = list(next(iter(rows.values()))) if rows else []
    return {key: [float(rows[epoch][key]) for epoch in sorted(rows)] for key in keys}


def _has_progress(partial: Path) -> bool:
    """Whether ``<out>.partial`` holds a finished epoch to resume from (an ensemble: of any member, or a
    member)."""
    backups = [partial / CHECKPOINTS / "backup", *partial.glob(f"member*/{CHECKPOINTS}/backup")]
    return (any((backup / "training_metadata.json").is_file() for backup in backups)
            or any(partial.glob(f"member*/{MEMBER_WEIGHTS}")))


def start_partial(partial: Path, run_info: Mapping[str, Any], resume: bool) -> bool:
    """Prepare ``<out>.partial`` for training: keep it when resuming an interrupted run of the same settings,
    else start empty; return whether training resumes."""
    stamp = partial / CHECKPOINTS / "run.json"
    current = json.loads(json.dumps(run_info, default=str, sort_keys=True))
    if resume and _has_progress(partial) and stamp.is_file():
        if json.loads(stamp.read_text(encoding="utf-8")) != current:
            raise ConfigError(f"{partial} holds an interrupted run with other settings (model, "
                              "configuration, data, split or seed): repeat the interrupted command with "
                              "--resume, or drop --resume")
        print(f"resuming the interrupted run in {partial}", flush=True)
        return True
    if resume:
        print(f"nothing to resume in {partial} (no finished epoch): training from the start", flush=True)
    if partial.exists():
        shutil.rmtree(partial)
    stamp.parent.mkdir(parents=True)
    stamp.write_text(json.dumps(current, indent=1), encoding="utf-8")
    return False


def best_epoch(history: Mapping[str, list[float]]) -> int:
    """1-based epoch of the best validation accuracy (ties: lower val_loss), as KeepBest chose it; the last
    epoch when the run had no validation clips."""
    accuracy = history.get("val_accuracy") or []
    losses = history.get("val_loss") or [0.0] * len(accuracy)
    if not accuracy:
        return len(history.get("accuracy") or history.get("loss") or [])
    return int(max(range(len(accuracy)), key=lambda i: (accuracy[i], -losses[i], -i)) + 1)
