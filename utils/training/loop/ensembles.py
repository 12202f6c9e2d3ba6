"""Seed ensembles: N networks fitted one after another, saved as ONE model that averages their probabilities.

(``ModelConfig.ensemble`` = N > 1, ``--ensemble N``): member i trains with seed ``seed + i - 1`` (its own
initial weights, batch order and augmentation; member 1 is the network a single run of that seed trains), each
with its own early stopping on the same validation signers and the same class weights, in
``<out_dir>.partial/member<i>/``. They are then saved as ONE Keras model whose output is the mean of their
probabilities (:func:`utils.models.ensemble_model`), so evaluation, cross-validation, prediction, the webcam
and export take it like any model. A resumed run reads finished members back and continues the unfinished one.
``history.csv`` and the curves are member 1's; ``metrics.json`` keeps every member's under ``"members"``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from utils.config import set_seed
from utils.training import distribute
from utils.training.loop.callbacks import CHECKPOINTS, MEMBER_HISTORY, MEMBER_WEIGHTS, best_epoch
from utils.training.loop.fitting import build_compiled, fit_network
from utils.training.loop.settings import precision_policy


def fit_model(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int, batch_size: int,
         seed: int, verbose: int, folder: Path, resume: bool = False, tensorboard_dir: Path | None = None,
         mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """One network (:func:`fit_network`) or, with ``config.ensemble`` > 1, a seed ensemble
    (:func:`fit_ensemble`)."""
    if config.ensemble > 1:
        return fit_ensemble(features, run_info, config, split, epochs, batch_size, seed, verbose, folder,
                            resume,
                             tensorboard_dir, mixed_precision)
    return fit_network(features, run_info, config, split, epochs, batch_size, seed, verbose, folder, resume,
                        tensorboard_dir, mixed_precision)


def fit_ensemble(features: Any, run_info: dict[str, Any], config: Any, split: Any, epochs: int,
                 batch_size: int,
                  seed: int, verbose: int, folder: Path, resume: bool = False,
                 tensorboard_dir: Path | None = None,
                  mixed_precision: bool | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """Fit ``config.ensemble`` networks one after another, member i with seed ``seed + i - 1`` (its own
    initial weights, batch order and augmentation), each with its own early stopping on the same validation
    signers, then average them in one model (:func:`utils.models.ensemble_model`). Each member trains in
    ``folder/member<i>`` (checkpoints, history.csv); a finished one is kept there, so a resumed run trains
    only the unfinished members. Returns (model, member 1's history (the curves and history.csv; every
    member's: :func:`member_summaries`), seconds)."""
    from tensorflow.python.framework import config as tf_config

    from utils import models

    start, single, members, histories = time.perf_counter(), config.replace(ensemble=1), [], []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(config.ensemble):
        member_folder = folder / f"{models.MEMBER_PREFIX}{index + 1}"
        if verbose:
            print(f"member {index + 1}/{config.ensemble} (seed {seed + index})", flush=True)
        set_seed(seed + index, deterministic=tf_config.is_op_determinism_enabled())
        if resume and (member_folder / MEMBER_WEIGHTS).is_file():
            member = build_compiled(run_info, single, mixed_precision)
            member.load_weights(member_folder / MEMBER_WEIGHTS)
            history = json.loads((member_folder / MEMBER_HISTORY).read_text(encoding="utf-8"))
        else:
            member_resume = (
                resume and (member_folder / CHECKPOINTS / "backup" / "training_metadata.json").is_file()
            )
            member, history, _ = fit_network(features, run_info, single, split, epochs, batch_size,
                                             seed + index,
                                              verbose, member_folder, member_resume,
                                              tensorboard_dir if index == 0 else None, mixed_precision)
            member.save_weights(member_folder / MEMBER_WEIGHTS)
            (member_folder / MEMBER_HISTORY).write_text(json.dumps(history), encoding="utf-8")
        members.append(member)
        histories.append(history)
    with precision_policy(mixed_precision), distribute.choose_strategy().scope():
        model = models.compile_model(models.ensemble_model(members,
                                                           name=f"{run_info['model']}_{config.name}"), config)
    return model, histories[0], time.perf_counter() - start


def member_summaries(folder: Path, seed: int) -> list[dict[str, Any]]:
    """Each finished member of an ensemble trained in ``folder`` (``member<i>/``): its seed, epochs, best
    epoch and per-epoch history (what metrics.json keeps under "members")."""
    from utils import models

    found = []
    for index in range(1, len(list(folder.glob(f"{models.MEMBER_PREFIX}*"))) + 1):
        path = folder / f"{models.MEMBER_PREFIX}{index}" / MEMBER_HISTORY
        if path.is_file():
            history = json.loads(path.read_text(encoding="utf-8"))
            found.append({"member": index, "seed": seed + index - 1,
                          "epochs_run": len(history.get("loss", [])), "best_epoch": best_epoch(history),
                          "history": history})
    return found
