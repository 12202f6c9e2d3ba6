""":func:`train`: one whole run, from a features file to a run folder with its model, metrics and figures."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from utils import paths
from utils.config import set_seed
from utils.errors import ConfigError, FeatureFileError, ensure_writable_folder
from utils.inputs.spec import features_name, prepare_inputs
from utils.training import distribute
from utils.training.loop.callbacks import best_epoch, start_partial
from utils.training.loop.ensembles import fit_model, member_summaries
from utils.training.loop.fitting import fit_linear, score
from utils.training.loop.settings import resolve_config, with_overrides
from utils.training.runs import describe_run, write_run


# ----------------------------------------------------------------------------- train
def as_features(features: Any) -> tuple[Any, str]:
    """A FeatureSet and its file name from a FeatureSet or a path."""
    if isinstance(features, (str, Path)):
        from utils.data.features import load_features

        loaded = load_features(features)
        loaded.meta = {**(loaded.meta or {}), "path": str(features)}
        return loaded, str(features)
    return features, features_name(features)


def train(features: Any, model_name: str, config: Any = None, out_dir: str | Path | None = None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
          test_group: str | None = None, verbose: int = 1, measure_speed: bool = True, resume: bool = False,
          tensorboard: bool = False, deterministic: bool | None = None,
          mixed_precision: bool | None = None) -> dict[str, Any]:
    """Split, train with augmentation and best-on-validation weights, test once, write the run folder; return
    metrics.

    ``features``: a FeatureSet or a features .npz path. ``config``: None (recommended), a name, or a
    ModelConfig. ``epochs`` / ``batch_size`` override the configuration's. ``verbose``: 0 silent, 1 a
    progress bar over epochs, 2 Keras's one line per epoch. ``measure_speed``: store the
    single-clip latency on a few test clips in metrics["latency"]. ``resume``: continue the interrupted run of
    the same out_dir and settings at its next epoch (same final weights as an uninterrupted run).
    ``tensorboard``: also write TensorBoard logs to ``<out_dir>/tensorboard``. ``deterministic`` and
    ``mixed_precision``: None = on without / with a GPU respectively (see :func:`utils.config.set_seed`,
    :func:`precision_policy`).
    """
    from utils import models
    from utils.data import splits as splits_module
    from utils.training.metrics import measure_latency

    features, features_file = as_features(features)
    config = resolve_config(model_name, config)
    if "hands" in models.model_inputs(model_name, config) and getattr(features, "hand_crops", None) is None:
        raise FeatureFileError(f"{features_file} has no hand crops, which frame_input={config.frame_input!r} "
                               "needs: extract it again with `python -m utils extract <dataset> --hand-size "
                               "32`")
    if "frames" in models.model_inputs(model_name, config) and features.frames is None:
        raise FeatureFileError(f"{features_file} has no frames: it was imported from keypoints only "
                               f"(MP_Data) — train --model lstm, or extract from videos")
    epochs, batch_size = int(epochs or config.epochs), int(batch_size or config.batch_size)
    out_dir = Path(out_dir) if out_dir is not None else paths.RUNS_DIR / f"{model_name}_{config.name}"
    # the chief's is out_dir; other workers write theirs beside it
    out_dir = distribute.worker_run_dir(out_dir)
    # fail before training, not after
    ensure_writable_folder(out_dir.expanduser().resolve().parent, "run folder")
    set_seed(seed, deterministic)
    split = splits_module.make_splits(features.labels, groups=features.groups, split=features.split,
                                      test_group=test_group, seed=seed,
                                      fractions=splits_module.split_fractions(config.validation))
    run_info = describe_run(features, features_file, model_name, config, split, seed, test_group)
    tensorboard_dir, members = None, []
    models.check_ensemble(model_name, config)
    if model_name in ("linear", "boosted"):  # scikit-learn fits it in one go: nothing to checkpoint or resume
        model, history, train_seconds = fit_linear(features, run_info, config, split, epochs, batch_size,
                                                   seed, verbose)
    else:
        partial = out_dir.with_name(out_dir.name + ".partial")
        resume = start_partial(partial, {**run_info, "epochs": epochs, "batch_size": batch_size}, resume)
        tensorboard_dir = out_dir.with_name(out_dir.name + ".tensorboard") if tensorboard else None
        if tensorboard_dir is not None and not resume and tensorboard_dir.exists():
            shutil.rmtree(tensorboard_dir)
        model, history, train_seconds = fit_model(features, run_info, config, split, epochs, batch_size, seed,
                                                  verbose, partial, resume, tensorboard_dir, mixed_precision)
        members = member_summaries(partial, seed) if config.ensemble > 1 else []

    test, probabilities = score(model, features, run_info, split.test, batch_size)
    val = score(model, features, run_info, split.val, batch_size)[0] if len(split.val) else None
    latency = {}
    if measure_speed:
        latency = measure_latency(model, prepare_inputs(features, run_info, split.test[:8]), repeats=10)
    metrics = {
        "model": model_name, "config": config.name, "config_name": config.name,
        "config_full": config.to_dict(), "classes": run_info["classes"], "test_accuracy": test["accuracy"],
        "val_accuracy": None if val is None else val["accuracy"], "macro_f1": test["macro_f1"],
        "per_class": test["per_class"], "confusion_matrix": test["confusion_matrix"],
        "n_train": int(len(split.train)), "n_val": int(len(split.val)), "n_test": int(len(split.test)),
        "epochs_run": len(history.get("loss", [])), "best_epoch": best_epoch(history),
        "train_seconds": round(train_seconds, 2), "load_average": _load_average(),
        "params": int(model.count_params()), "history": history,
        "split_strategy": split.strategy, "test_group": test_group,
        "test_groups": run_info["split"]["test_groups"], "seed": seed, "batch_size": batch_size,
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
    """The machine's load average over 1, 5 and 15 minutes when training ended (read train_seconds beside it);
    None where the system does not tell."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def train_from_file(features_path: str | Path, model_name: str, config_name: str | None = None,
                    out_dir: str | Path | None = None, epochs: int | None = None, seed: int = 0,
                    test_group: str | None = None, batch_size: int | None = None, verbose: int = 1,
                    num_frames: int | None = None, ensemble: int | None = None,
                    validation: bool | None = None, **options: Any) -> dict[str, Any]:
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
