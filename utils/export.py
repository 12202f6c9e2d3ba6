"""Exporting a trained run: a TensorFlow SavedModel (any batch size) and a TensorFlow Lite file (batch 1).

Both take the model's inputs as :func:`utils.inputs.clip_inputs` prepares them (the run's T, S and
preprocessing); ``labels.txt`` and ``run.json`` are written beside them so that a deployment knows the
class order and how to prepare a clip. With TF 2.19 the LSTM, our ConvLSTM layer and
keras.layers.ConvLSTM2D all convert with built-in ops once the batch size is fixed.
:func:`predict_exported` runs an exported file, for parity checks against Keras.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError, check_can_write

EXPORT_FORMATS = ("tflite", "savedmodel")
TFLITE_NAME = "model.tflite"
SAVEDMODEL_NAME = "savedmodel"
LABELS_NAME = "labels.txt"


def _export_signature(model: Any, batch_size: int | None) -> list[Any]:
    """The input_signature for model.export: one TensorSpec, or a dict of them for a two-input model."""
    import tensorflow as tf

    specs = {tensor.name.split(":")[0]: tf.TensorSpec((batch_size, *tensor.shape[1:]), tf.float32,
                                                      name=tensor.name.split(":")[0])
             for tensor in model.inputs}
    return [next(iter(specs.values()))] if len(specs) == 1 else [specs]


def _export_savedmodel(model: Any, folder: Path, batch_size: int | None) -> None:
    """Write a TensorFlow SavedModel with a 'serve' endpoint (fixed batch_size, or any when None)."""
    model.export(str(folder), format="tf_saved_model", input_signature=_export_signature(model, batch_size),
                 verbose=False)


def _convert_tflite(saved_model_dir: Path) -> tuple[bytes, str]:
    """TFLite bytes from a batch-1 SavedModel: built-in ops if possible, else with Select TF ops; and which."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    try:
        return converter.convert(), "built-in ops"
    except Exception as builtin_error:  # noqa: BLE001  (the converter raises ConverterError and others)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False
        try:
            return converter.convert(), "built-in + Select TF ops (needs the Flex delegate)"
        except Exception as error:  # noqa: BLE001
            last = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
            first = str(builtin_error).strip().splitlines()[-1][:200] if str(builtin_error).strip() else ""
            raise CourseError(f"TensorFlow Lite could not convert {saved_model_dir} ({last}; built-in ops only: "
                              f"{first}); export --formats savedmodel instead") from None


def export_model(model_dir: str | Path, out_dir: str | Path,
                 formats: Iterable[str] = EXPORT_FORMATS, verbose: bool = True) -> list[Path]:
    """Export a trained run to TensorFlow Lite (model.tflite, batch 1) and/or a SavedModel; return the paths written.

    labels.txt (one class per line, in output order) and run.json are written beside them. Each file
    appears only once complete (written under a temporary name, then renamed).
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise CourseError(f"unknown export format(s) {unknown or formats}; choose from {', '.join(EXPORT_FORMATS)}")
    out_dir = Path(out_dir)
    check_can_write(out_dir, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CourseError(f"{out_dir}: exists and is not a folder; choose another --out")
    from utils.runs import load_run

    model, run_info = load_run(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / f".export.{os.getpid()}.tmp"
    written: list[Path] = []
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        if "savedmodel" in formats:
            _export_savedmodel(model, scratch / SAVEDMODEL_NAME, batch_size=None)
            written.append(_publish(scratch / SAVEDMODEL_NAME, out_dir / SAVEDMODEL_NAME))
        if "tflite" in formats:
            _export_savedmodel(model, scratch / "batch1", batch_size=1)
            content, ops = _convert_tflite(scratch / "batch1")
            (scratch / TFLITE_NAME).write_bytes(content)
            written.append(_publish(scratch / TFLITE_NAME, out_dir / TFLITE_NAME))
            if verbose:
                print(f"TensorFlow Lite: {len(content) / 1e6:.2f} MB, {ops}, batch size 1", flush=True)
        (scratch / LABELS_NAME).write_text("\n".join(run_info["classes"]) + "\n", encoding="utf-8")
        written.append(_publish(scratch / LABELS_NAME, out_dir / LABELS_NAME))
        (scratch / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
        written.append(_publish(scratch / "run.json", out_dir / "run.json"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def _publish(source: Path, target: Path) -> Path:
    """Move a finished file or folder into place, replacing an older one."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(source, target)
    return target


def _as_input_dict(inputs: Mapping[str, np.ndarray] | np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Inputs as {name: float32 array}; a bare array is allowed for a one-input model."""
    if isinstance(inputs, Mapping):
        missing = [name for name in names if name not in inputs]
        if missing:
            raise CourseError(f"inputs lack {', '.join(missing)}; the exported model takes {', '.join(names)}")
        return {name: np.asarray(inputs[name], dtype=np.float32) for name in names}
    if len(names) != 1:
        raise CourseError(f"the exported model takes {', '.join(names)}: pass a dict of arrays")
    return {names[0]: np.asarray(inputs, dtype=np.float32)}


def predict_exported(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Class probabilities (n, C) from an exported model.tflite (one clip per call) or SavedModel folder."""
    path = Path(path)
    if path.suffix == ".tflite":
        return _predict_tflite(path, inputs)
    if (path / "saved_model.pb").is_file():
        return _predict_savedmodel(path, inputs)
    raise CourseError(f"{path}: neither a .tflite file nor a SavedModel folder; pass what export_model wrote")


def load_tflite(path: str | Path) -> Any:
    """A TFLite signature runner ('serving_default') for a .tflite file."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT is the successor)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner()


def _predict_tflite(path: Path, inputs: Mapping[str, np.ndarray] | np.ndarray, runner: Any = None) -> np.ndarray:
    """Probabilities from a batch-1 TFLite model, one clip at a time."""
    runner = runner or load_tflite(path)
    names = sorted(runner.get_input_details())
    arrays = _as_input_dict(inputs, names)
    count = len(next(iter(arrays.values())))
    outputs = []
    for index in range(count):
        result = runner(**{name: value[index:index + 1] for name, value in arrays.items()})
        outputs.append(np.asarray(next(iter(result.values())))[0])
    return np.stack(outputs)


def _predict_savedmodel(path: Path, inputs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Probabilities from a SavedModel's 'serve' endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    names = sorted(signature.structured_input_signature[1])
    arrays = _as_input_dict(inputs, names)
    result = signature(**{name: tf.constant(value) for name, value in arrays.items()})
    return np.asarray(next(iter(result.values())))


def time_tflite(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per clip of a TFLite model (mean, p95) over `repeats` single-clip calls after a warm-up."""
    runner = load_tflite(path)
    one = {name: value[:1] for name, value in _as_input_dict(inputs, sorted(runner.get_input_details())).items()}
    _predict_tflite(Path(path), one, runner)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _predict_tflite(Path(path), one, runner)
        times.append((time.perf_counter() - started) * 1000)
    return {"mean_ms": float(np.mean(times)), "p95_ms": float(np.percentile(times, 95))}
