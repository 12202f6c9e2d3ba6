"""Exporting a trained run: a TensorFlow SavedModel (any batch size) and a TensorFlow Lite file (batch 1).

Both take RAW clip data, with the run's input preparation inside the graph (:mod:`utils.tf_preprocessing`, the
TensorFlow twin of :func:`utils.inputs.clip_inputs`): ``keypoints`` (n, t, 1662) float32 MediaPipe Holistic
vectors (face, pose, left hand, right hand; zeros where a part was not found) and, for frame models,
``frames`` (n, t, s, s, 3) uint8 RGB frames squashed to the stored thumbnail size s (``cv2.INTER_AREA``), and
``hands`` (n, t, 2, c, c, 3) uint8 hand crops. t is the features file's frames per clip, spread evenly over
one sign. Time resampling to the model's T, resizing to its S, normalisation, handedness, velocities and frame
differences all happen inside, so a phone or a browser needs only MediaPipe and the exported file.

``export.json`` beside them says what to feed (input names, shapes, dtypes, the keypoint layout), the class
order, T and the window a clip spans (seconds, frames at the training videos' fps); ``labels.txt`` and
``run.json`` are written too. ``fp16=True`` stores the TFLite weights as float16 (about half the size).
:func:`predict_exported` runs an exported file on raw inputs, for parity checks against Keras.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import CourseError, check_can_write

EXPORT_FORMATS = ("tflite", "savedmodel")
TFLITE_NAME = "model.tflite"
TFLITE_FP16_NAME = "model_fp16.tflite"
SAVEDMODEL_NAME = "savedmodel"
LABELS_NAME = "labels.txt"
INFO_NAME = "export.json"
OUTPUT_NAME = "probabilities"
RAW_DTYPES = {"keypoints": "float32", "frames": "uint8", "hands": "uint8"}


def raw_input_shapes(spec: Any, batch_size: int | None = 1) -> dict[str, tuple]:
    """Shapes of the raw inputs an exported model takes: the features file's t frames, thumbnails, crops."""
    from utils.data.keypoints import KEYPOINT_DIM
    from utils.inputs.spec import as_spec

    spec = as_spec(spec)
    t, s, c = spec.clip_frames, spec.thumbnail_size, spec.crop_size
    shapes = {"keypoints": (batch_size, t, KEYPOINT_DIM), "frames": (batch_size, t, s, s, 3),
              "hands": (batch_size, t, 2, c, c, 3)}
    return {name: shapes[name] for name in spec.inputs or ("keypoints",)}


def _raw_signature(spec: Any, batch_size: int | None) -> list[Any]:
    """The input_signature of the exported function: one dict of named TensorSpecs of raw inputs."""
    import tensorflow as tf

    return [{name: tf.TensorSpec(shape, RAW_DTYPES[name], name=name)
             for name, shape in raw_input_shapes(spec, batch_size).items()}]


def serving_function(model: Any, spec: Any) -> Any:
    """raw inputs {name: tensor} -> {'probabilities': (n, C)}: the TensorFlow input preparation, then the
    model."""
    import keras

    from utils.inputs import tf_preprocessing
    from utils.inputs.spec import as_spec

    spec = as_spec(spec)
    tf_preprocessing.check_ported(spec.preprocessing)

    def serve(raw: Mapping[str, Any]) -> dict[str, Any]:
        prepared = tf_preprocessing.clip_inputs(raw, spec)
        # the prepared tensors in the structure the model was built with (one input, or a list of them)
        arguments = keras.tree.map_structure(lambda tensor: prepared[tensor.name.split(":")[0]], model.input)
        return {OUTPUT_NAME: model(arguments, training=False)}

    return serve


def _export_savedmodel(model: Any, spec: Any, folder: Path, batch_size: int | None) -> None:
    """Write a SavedModel whose 'serve' endpoint takes raw inputs (fixed batch_size, or any when None)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serving_function(model, spec),
                         input_signature=_raw_signature(spec, batch_size))
    archive.write_out(str(folder), verbose=False)


def _convert_tflite(saved_model_dir: Path, fp16: bool = False) -> tuple[bytes, str]:
    """TFLite bytes from a batch-1 SavedModel: built-in ops if possible, else with Select TF ops; and
    which."""
    import tensorflow as tf

    def converter() -> Any:
        made = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
        if fp16:  # weights stored as float16, computed in float32
            made.optimizations = [tf.lite.Optimize.DEFAULT]
            made.target_spec.supported_types = [tf.float16]
        return made

    try:
        return converter().convert(), "built-in ops"
    except Exception as builtin_error:  # noqa: BLE001  (the converter raises ConverterError and others)
        fallback = converter()
        fallback.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        fallback._experimental_lower_tensor_list_ops = False
        try:
            return fallback.convert(), "built-in + Select TF ops (needs the Flex delegate)"
        except Exception as error:  # noqa: BLE001
            last = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
            first = str(builtin_error).strip().splitlines()[-1][:200] if str(builtin_error).strip() else ""
            raise CourseError(f"TensorFlow Lite could not convert {saved_model_dir} ({last}; built-in ops "
                              f"only: {first}); export --formats savedmodel instead") from None


def export_info(run_info: Mapping[str, Any], tflite_name: str | None, fp16: bool) -> dict[str, Any]:
    """The export.json content: what to feed the exported model, what it answers, and the clip it expects."""
    from utils.data import keypoints as kp
    from utils.inputs.spec import InputSpec
    from utils.serving.predict import mediapipe_size_for

    spec = InputSpec.from_run(run_info)
    descriptions = {"keypoints": "raw MediaPipe Holistic vectors, zeros where a part was not found",
                    "frames": f"RGB frames squashed to {spec.thumbnail_size}x{spec.thumbnail_size} "
                              "(cv2.INTER_AREA)",
                    "hands": f"left and right hand crops, RGB, {spec.crop_size}x{spec.crop_size}"}
    sampling = spec.sampling
    return {
        "inputs": [
            {"name": name, "shape": list(shape), "dtype": RAW_DTYPES[name], "description": descriptions[name]}
            for name, shape in raw_input_shapes(spec, 1).items()
        ],
        "output": {
            "name": OUTPUT_NAME,
            "shape": [1, len(run_info["classes"])],
            "dtype": "float32",
            "description": "class probabilities, in the order of classes",
        },
        "classes": list(run_info["classes"]),
        "inference": run_info.get("inference", "the trained model as it was saved (utils.models.build)"),
        "keypoint_layout": {name: [part.start, part.stop] for name, part in
                            (("face", kp.FACE), ("pose", kp.POSE), ("left_hand", kp.LEFT_HAND),
                             ("right_hand", kp.RIGHT_HAND))},
        "mediapipe_size": mediapipe_size_for(spec),
        "clip_frames": spec.clip_frames, "model_frames": spec.num_frames, "image_size": spec.image_size,
        "window": {"seconds": sampling.get("source_seconds"), "fps": sampling.get("source_fps"),
                   "frames": spec.window_frames(sampling.get("source_fps") or 0.0),
                   "how": f"a window spans what one training clip spanned: 'seconds' of video (or 'frames' "
                          f"video frames when seconds are unknown); feed {spec.clip_frames} frames spread "
                          f"evenly "
                          "over it"},
        "preprocessing": spec.options, "model": run_info.get("model"),
        "config_name": run_info.get("config_name"),
        "tflite": tflite_name, "tflite_weights": "float16" if fp16 else "float32",
        "preprocessing_inside": True,
    }


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


def export_model(model_dir: str | Path, out_dir: str | Path, formats: Iterable[str] = EXPORT_FORMATS,
                 verbose: bool = True, fp16: bool = False, fast: bool = False) -> list[Path]:
    """Export a trained run to TensorFlow Lite (batch 1) and/or a SavedModel taking raw inputs; return the
    paths.

    ``fp16``: the TFLite file (``model_fp16.tflite``) stores float16 weights. export.json, labels.txt (one
    class per line, in output order) and run.json are written beside them; with ``verbose`` every file's size
    is printed. Each file appears only once complete (written under a temporary name, then renamed).
    ``fast``: export the fast inference copy (:mod:`utils.models.fast`); export.json then says so.
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise CourseError(
            f"unknown export format(s) {unknown or formats}; choose from {', '.join(EXPORT_FORMATS)}"
        )
    out_dir = Path(out_dir)
    check_can_write(out_dir, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CourseError(f"{out_dir}: exists and is not a folder; choose another --out")
    from utils.inputs.spec import InputSpec
    from utils.training.runs import load_run

    model, run_info = load_run(model_dir, fast=fast)
    spec = InputSpec.from_run(run_info)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / f".export.{os.getpid()}.tmp"
    written: list[Path] = []
    tflite_name = (TFLITE_FP16_NAME if fp16 else TFLITE_NAME) if "tflite" in formats else None
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        if "savedmodel" in formats:
            _export_savedmodel(model, spec, scratch / SAVEDMODEL_NAME, batch_size=None)
            written.append(_publish(scratch / SAVEDMODEL_NAME, out_dir / SAVEDMODEL_NAME))
        if tflite_name:
            _export_savedmodel(model, spec, scratch / "batch1", batch_size=1)
            content, ops = _convert_tflite(scratch / "batch1", fp16=fp16)
            (scratch / tflite_name).write_bytes(content)
            written.append(_publish(scratch / tflite_name, out_dir / tflite_name))
            if verbose:
                print(f"TensorFlow Lite: {ops}, batch size 1, {'float16' if fp16 else 'float32'} weights",
                      flush=True)
        (scratch / LABELS_NAME).write_text("\n".join(run_info["classes"]) + "\n", encoding="utf-8")
        written.append(_publish(scratch / LABELS_NAME, out_dir / LABELS_NAME))
        (scratch / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
        written.append(_publish(scratch / "run.json", out_dir / "run.json"))
        info = export_info(run_info, tflite_name, fp16)
        (scratch / INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
        written.append(_publish(scratch / INFO_NAME, out_dir / INFO_NAME))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if verbose:
        for path in written:
            print(f"{_size(path) / 1e6:9.3f} MB  {path}", flush=True)
    return written


def _publish(source: Path, target: Path) -> Path:
    """Move a finished file or folder into place, replacing an older one."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(source, target)
    return target


def _as_input_dict(inputs: Mapping[str, np.ndarray] | np.ndarray,
                   dtypes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Raw inputs as {name: array of the exported model's dtype}; a bare array is allowed for a one-input
    model."""
    names = sorted(dtypes)
    if isinstance(inputs, Mapping):
        missing = [name for name in names if name not in inputs]
        if missing:
            raise CourseError(
                f"inputs lack {', '.join(missing)}; the exported model takes {', '.join(names)}"
            )
        return {name: np.asarray(inputs[name]).astype(dtypes[name], copy=False) for name in names}
    if len(names) != 1:
        raise CourseError(f"the exported model takes {', '.join(names)}: pass a dict of arrays")
    return {names[0]: np.asarray(inputs).astype(dtypes[names[0]], copy=False)}


def predict_exported(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Class probabilities (n, C) from an exported .tflite file (one clip per call) or SavedModel folder.

    ``inputs``: RAW clips as export.json describes them, e.g. {'keypoints': (n, t, 1662) float32,
    'frames': (n, t, s, s, 3) uint8} (:func:`utils.inputs.stored_clips` of a features file gives them).
    """
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


def _predict_tflite(path: Path, inputs: Mapping[str, np.ndarray] | np.ndarray,
                    runner: Any = None) -> np.ndarray:
    """Probabilities from a batch-1 TFLite model, one clip at a time."""
    runner = runner or load_tflite(path)
    arrays = _as_input_dict(inputs,
                            {name: detail["dtype"] for name, detail in runner.get_input_details().items()})
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
    specs = signature.structured_input_signature[1]
    arrays = _as_input_dict(inputs, {name: spec.dtype.as_numpy_dtype for name, spec in specs.items()})
    result = signature(**{name: tf.constant(value) for name, value in arrays.items()})
    return np.asarray(next(iter(result.values())))


def time_tflite(path: str | Path, inputs: Mapping[str, np.ndarray] | np.ndarray,
                repeats: int = 20) -> dict[str, float]:
    """Milliseconds per clip of a TFLite model (mean, p95) over `repeats` single-clip calls after a
    warm-up."""
    runner = load_tflite(path)
    dtypes = {name: detail["dtype"] for name, detail in runner.get_input_details().items()}
    one = {name: value[:1] for name, value in _as_input_dict(inputs, dtypes).items()}
    _predict_tflite(Path(path), one, runner)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _predict_tflite(Path(path), one, runner)
        times.append((time.perf_counter() - started) * 1000)
    return {"mean_ms": float(np.mean(times)), "p95_ms": float(np.percentile(times, 95))}
