"""The run folder: what ``train`` writes, and loading it back with the model checked against run.json.

One run is a self-contained folder::

    <out_dir>/
        metrics.json            test/val accuracy, macro-F1, per-class report, confusion matrix, history, ...
        run.json                what inference needs: model name, config, classes, shapes, preprocessing
        model.keras             the best-on-validation weights (a seed ensemble: all members in one model)
        history.csv             loss / accuracy / val_loss / val_accuracy per epoch (an ensemble: member 1's;
                                every member's is in metrics.json under "members")
        predictions.csv         every test clip: index, path, group, true, predicted, confidence
        curves.png, confusion_matrix.png

The folder is written as ``<out_dir>.partial`` and renamed at the end, so an interrupted run never leaves
a folder that looks finished. :func:`load_run` refuses folders that are incomplete, damaged, or mixed
from two runs.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import ModelDirError
from utils.inputs import preprocessing

RUN_FILES = ("model.keras", "run.json")
RUN_KEYS = ("model", "classes", "inputs", "num_frames", "image_size")


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


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write data as indented JSON."""
    path.write_text(json.dumps(_json_ready(data), indent=2, ensure_ascii=False), encoding="utf-8")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write a list of dicts as CSV (header from the first row)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


def publish_folder(partial: Path, out_dir: Path) -> None:
    """Move a finished `.partial` folder into place, replacing an older run of the same name."""
    old = out_dir.with_name(out_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    partial.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def describe_run(features: Any, features_file: str, model_name: str, config: Any, split: Any, seed: int,
                  test_group: str | None) -> dict[str, Any]:
    """The run.json content: everything needed to prepare new clips for this model and read its outputs."""
    from utils import models
    from utils.inputs.spec import training_sampling

    keypoint_options = preprocessing.resolve_options(config.preprocessing)
    return {
        "model": model_name, "config_name": config.name, "config": config.to_dict(),
        "classes": list(features.classes), "inputs": list(models.model_inputs(model_name, config)),
        "num_frames": config.num_frames, "image_size": config.image_size, "keypoint_dim": KEYPOINT_DIM,
        "input_dim": preprocessing.output_dim(keypoint_options), "preprocessing": keypoint_options,
        "augmentation": preprocessing.resolve_augmentation(config.augmentation),
        "split": {"strategy": split.strategy, "seed": seed, "test_group": test_group,
                  "test_groups": split.groups_of("test", getattr(features, "groups", None))},
        "sampling": training_sampling(features, split.train),
        "features_path": features_file, "features_meta": dict(getattr(features, "meta", {}) or {}),
    }


def prediction_rows(features: Any, indices: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
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


def _save_figures(folder: Path, history: Mapping[str, list], confusion: list, classes: list[str],
                  title: str) -> None:
    """curves.png and confusion_matrix.png of a run."""
    import matplotlib.pyplot as plt

    from utils import plots

    for name, fig in (("curves", plots.plot_history(history, title=title)),
                      ("confusion_matrix",
                       plots.plot_confusion_matrix(confusion, classes, title=f"{title}: test"))):
        plots.save_fig(fig, name, folder=folder)
        plt.close(fig)


def write_run(out_dir: Path, model: Any, run_info: dict[str, Any], metrics: dict[str, Any], features: Any,
               test_indices: np.ndarray, probabilities: np.ndarray) -> None:
    """Write every file of a run into ``<out_dir>.partial``, then move it into place."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    model.save(partial / "model.keras")
    write_json(partial / "run.json", run_info)
    write_json(partial / "metrics.json", metrics)
    history = metrics["history"]
    write_csv(partial / "history.csv", [{"epoch": i + 1, **{k: v[i] for k, v in history.items()}}
                                         for i in range(metrics["epochs_run"])])
    labels = np.asarray(features.labels, dtype=np.int64)
    write_csv(partial / "predictions.csv",
               prediction_rows(features, test_indices, labels, probabilities, run_info["classes"]))
    _save_figures(partial, history, metrics["confusion_matrix"], run_info["classes"],
                  f"{run_info['model']} ({run_info['config_name']})")
    publish_folder(partial, out_dir)


# ----------------------------------------------------------------------------- loading a run
FAST_COPY_NOTE = "fast inference copy (utils.models.fast: batch norms folded, gates compiled)"


def load_run(model_dir: str | Path, fast: bool = False) -> tuple[Any, dict[str, Any]]:
    """The trained model and its run.json from a folder written by :func:`train`; ModelDirError if incomplete,
    damaged, or mixed from two runs. ``fast``: the model as :func:`utils.models.inference_model` gives it (the
    same function, less work; ``run_info["inference"]`` then says so, and so does every output made with
    it)."""
    import keras

    from utils import models  # registers the custom layers before loading

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
        raise ModelDirError(f"{model_dir / 'model.keras'} could not be loaded ({type(error).__name__}: "
                            f"{first_line}); train the model again with this version of the course") from None
    _check_model_matches_run(model, run_info, model_dir)
    if isinstance(model, keras.Model) and not isinstance(model.input, (list, tuple, dict)):
        # a one-input model saved by an earlier version takes a bare tensor: rewrap it (same layers, same
        # weights) to take its input by name like every other model, so that feeding {"keypoints": x} does not
        # warn
        model = keras.Model([model.input], model.output, name=model.name)
    if not fast:
        return model, run_info
    return models.inference_model(model), {**run_info, "inference": FAST_COPY_NOTE}


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
    if "keypoints" in shapes and "input_dim" in run_info \
            and int(shapes["keypoints"][-1]) != int(run_info["input_dim"]):
        problems.append(f"keypoints have {shapes['keypoints'][-1]} numbers vs input_dim "
                        f"{run_info['input_dim']}")
    outputs = int(model.outputs[0].shape[-1])
    if outputs != len(run_info["classes"]):
        problems.append(f"{outputs} outputs vs {len(run_info['classes'])} classes")
    if problems:
        raise ModelDirError(f"{model_dir}: model.keras and run.json come from different configurations "
                            f"({'; '.join(problems)}); do not mix files of two runs, train again")
