"""Training and inference speed, and peak memory, of the models on this machine (``python -m utils bench``).

Two parts, both printed:

1. **The comparison** (:func:`compare`): the fused model at the original's shapes (the ``seed`` configuration:
   T=30, 64x64 frames, LSTM 512x2, ConvLSTM 16x2), batch 16, timed under each setting the course's text talks
   about, every setting in a process of its own (TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` only when it is
   first imported): the original in PyTorch (``benchmarks/torch_original.py``, the optional ``torch`` extra),
   the course's Keras model with its defaults, with XLA on, with oneDNN off, and the exported TensorFlow Lite
   model (inference). Each process builds its model with random weights, takes one warm-up step, then
   times ``steps`` batches: clips/s is batch size / mean seconds per batch. The settings run one after the
   other, ``repeats`` rounds; the table gives the best and the median over rounds, and each setting's speed
   relative to PyTorch in the same round (the median of those ratios), beside the load average and threads.
2. **The model table** (:func:`measure`): every model at the ``small`` configuration (and the LSTM and
   ConvLSTM at the seed shapes unless ``--quick``), in this process, with peak memory.

A shared machine makes every figure noisy: compare settings only within one run, and read the load average.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import ConfigError

SEED_BATCH_SIZE = 16  # the seed shapes are measured at batch 16 (original: 64) to fit 2 cores' time
NUM_CLASSES = 10
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
TORCH_SCRIPT = BENCHMARKS_DIR / "torch_original.py"
RESULT_PREFIX = "BENCH_RESULT "
# name: (what is timed, environment of its process); the course's defaults are XLA off and oneDNN on
SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "pytorch": ("the original in PyTorch (benchmarks/torch_original.py)", {}),
    "keras": ("course fused model, course defaults (XLA off, oneDNN on)", {}),
    "keras-xla": ("the same with XLA on (jit_compile=True)", {}),
    "keras-no-onednn": ("the same with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "keras-bf16": ("the same computing in bfloat16 (models.with_compute_dtype; weights float32): lower "
                   "precision",
                   {}),
    "tflite": ("course fused model exported to TensorFlow Lite, batch 1 (inference)", {}),
}
DEFAULT_SETTINGS = tuple(SETTINGS)
ONCE_SETTINGS = ("keras-xla", "keras-no-onednn")  # several times slower: timed in the first round only
REFERENCE = "pytorch"
# a setting's process is stopped after this long (XLA on a loaded CPU can take that)
SETTING_TIMEOUT_S = 1800.0


@dataclass
class Measurement:
    """One row of the benchmark table."""

    model: str
    config: str
    convlstm_impl: str
    batch_size: int
    params: int
    train_clips_per_s: float
    infer_clips_per_s: float
    peak_memory_mb: float


def _reset_peak_memory() -> bool:
    """Reset the process's peak-RSS counter (Linux /proc/self/clear_refs); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_memory_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM on Linux, else getrusage maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024 / (1024 if os.uname().sysname == "Darwin" else 1)


def random_batch(model_name: str, num_frames: int, image_size: int, batch_size: int,
                 keypoint_dim: int = 1662, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a model: keypoints float32 and raw uint8 frames, only those the model takes."""
    from utils import models

    rng = np.random.default_rng(seed)
    batch = {}
    if "keypoints" in models.model_inputs(model_name):
        batch["keypoints"] = rng.normal(size=(batch_size, num_frames, keypoint_dim)).astype("float32")
    if "frames" in models.model_inputs(model_name):
        batch["frames"] = rng.integers(0, 256, size=(batch_size, num_frames, image_size, image_size, 3),
                                       dtype=np.uint8)
    return batch


def _mean_seconds(function: Any, steps: int) -> float:
    """Mean wall time of ``steps`` calls (the caller has already made a warm-up call)."""
    start = time.perf_counter()
    for _ in range(max(1, steps)):
        function()
    return (time.perf_counter() - start) / max(1, steps)


def _timed(function: Any, steps: int) -> tuple[float, float]:
    """(wall, process CPU) seconds per call, mean of ``steps`` calls after one warm-up call."""
    function()
    cpu = time.process_time()
    wall = _mean_seconds(function, steps)
    return wall, (time.process_time() - cpu) / max(1, steps)


def measure(model_name: str, config_name: str = "small", batch_size: int | None = None, steps: int = 3,
            convlstm_impl: str = "fast", jit_compile: bool | str | None = None) -> Measurement:
    """Train and inference clips/s (mean of ``steps`` batches after a warm-up) and peak memory of one
    model."""
    import keras

    from utils import models

    config = models.get_config(model_name, config_name)
    batch_size = batch_size or config.batch_size
    keras.backend.clear_session()
    _reset_peak_memory()
    model = models.compile_model(models.build_model(model_name, config, NUM_CLASSES,
                                                    convlstm_impl=convlstm_impl),
                                 config, jit_compile=jit_compile)
    inputs = random_batch(model_name, config.num_frames, config.image_size, batch_size)
    labels = np.random.default_rng(1).integers(0, NUM_CLASSES, batch_size)
    train_seconds, _ = _timed(lambda: model.train_on_batch(inputs, labels), steps)
    infer_seconds, _ = _timed(lambda: model.predict_on_batch(inputs), steps)
    return Measurement(model_name, config_name, convlstm_impl if model_name != "lstm" else "-", batch_size,
                       model.count_params(), batch_size / train_seconds, batch_size / infer_seconds,
                       _peak_memory_mb())


def plan(quick: bool = False) -> list[tuple[str, str, int | None, str]]:
    """(model, config, batch size, convlstm impl) of every row of the model table, in order.

    The fused model at the seed shapes is not here: :func:`compare` times it under every setting."""
    rows = [("lstm", "small", None, "fast"), ("convlstm", "small", None, "fast"),
            ("fused", "small", None, "fast"), ("fused", "small", None, "stock")]
    if not quick:
        rows += [("lstm", "seed", SEED_BATCH_SIZE, "fast"), ("convlstm", "seed", SEED_BATCH_SIZE, "fast")]
    return rows


def format_table(rows: list[Measurement]) -> str:
    """The measurements as an aligned text table."""
    header = f"{'model':9} {'config':7} {'convlstm':8} {'batch':>5} {'params':>10} {'train clips/s':>14} " \
             f"{'infer clips/s':>14} {'peak MB':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.model:9} {row.config:7} {row.convlstm_impl:8} {row.batch_size:5d} "
                     f"{row.params:10,d} {row.train_clips_per_s:14.2f} {row.infer_clips_per_s:14.2f} "
                     f"{row.peak_memory_mb:8.0f}")
    return "\n".join(lines)


def speedup_summary(rows: list[Measurement]) -> str:
    """Fast vs stock ConvLSTM (fused model) per configuration of the model table."""
    lines = []
    for config_name in dict.fromkeys(row.config for row in rows):
        fused = {row.convlstm_impl: row for row in rows if row.model == "fused" and row.config == config_name}
        if {"fast", "stock"} <= set(fused):
            fast, stock = fused["fast"], fused["stock"]
            lines.append(f"{config_name}: fast ConvLSTM vs stock ConvLSTM2D (fused): training "
                         f"{fast.train_clips_per_s / stock.train_clips_per_s:.1f}x, inference "
                         f"{fast.infer_clips_per_s / stock.infer_clips_per_s:.1f}x")
    return "\n".join(lines)


def load_average() -> float:
    """The 1-minute load average (nan where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def environment_line() -> str:
    """CPU count, load average, TensorFlow version, oneDNN and thread settings of this process."""
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads() or "all cores"
    inter = tf.config.threading.get_inter_op_parallelism_threads() or "all cores"
    return (f"{os.cpu_count()} CPU cores, load average {load_average():.1f}, TensorFlow {tf.__version__}, "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}, threads: intra-op "
            f"{intra}, inter-op {inter}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def run(quick: bool = False, steps: int = 3) -> list[Measurement]:
    """Measure every row of :func:`plan` with a progress bar; returns the measurements."""
    from tqdm.auto import tqdm

    rows = []
    for model_name, config_name, batch_size, impl in tqdm(plan(quick), desc="benchmark", unit="model"):
        rows.append(measure(model_name, config_name, batch_size, steps, impl))
    return rows


# ----------------------------------------------------------------------------- the comparison (one process
# per setting)
def _tf_threads() -> str:
    """TensorFlow's intra-/inter-op thread settings ('default' = as many as cores)."""
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    inter = tf.config.threading.get_inter_op_parallelism_threads() or "default"
    return f"TF intra {intra}, inter {inter}"


COMPARISON_CONFIG = "original"  # the configuration the comparison builds (the tests shrink it)


def _comparison_model(jit_compile: bool | str | None = None) -> tuple[Any, Any]:
    """The fused model at :data:`COMPARISON_CONFIG`, random weights (seed 0), compiled; and its
    configuration."""
    import keras

    from utils import models

    keras.utils.set_random_seed(0)
    config = COMPARISON_CONFIG if isinstance(COMPARISON_CONFIG, models.ModelConfig) else \
        models.get_config("fused", COMPARISON_CONFIG)
    model = models.compile_model(models.build_model("fused", config, NUM_CLASSES), config,
                                 jit_compile=jit_compile)
    return model, config


def _inference_copy(model: Any, config: Any, jit_compile: bool | None = None) -> Any:
    """What ``predict``, ``evaluate`` and ``export`` run with ``--fast`` (``runs.load_run(..., fast=True)``):
    the model as :func:`utils.models.inference_model` gives it, compiled like the model."""
    from utils import models

    return models.compile_model(models.inference_model(model), config, jit_compile=jit_compile)


def _keras_setting(name: str, batch_size: int, steps: int, threads: int | None = None) -> dict[str, Any]:
    """Train and inference speed of the comparison's fused model in this process (XLA on for 'keras-xla');
    inference times the model's inference copy (:func:`_inference_copy`), as ``predict`` runs it."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    model, config = _comparison_model(jit_compile=True if name == "keras-xla" else None)
    if name == "keras-bf16":
        from utils import models

        model = models.compile_model(models.with_compute_dtype(model, "bfloat16"), config)
    inputs = random_batch("fused", config.num_frames, config.image_size, batch_size)
    labels = np.random.default_rng(1).integers(0, NUM_CLASSES, batch_size)
    train_wall, train_cpu = _timed(lambda: model.train_on_batch(inputs, labels), steps)
    infer = _inference_copy(model, config, jit_compile=True if name == "keras-xla" else None)
    infer_wall, infer_cpu = _timed(lambda: infer.predict_on_batch(inputs), steps)
    return {"framework": f"TensorFlow {tf.__version__}", "params": model.count_params(),
            "threads": _tf_threads(), "train_clips_per_s": batch_size / train_wall,
            "infer_clips_per_s": batch_size / infer_wall, "train_cpu_s_per_clip": train_cpu / batch_size,
            "infer_cpu_s_per_clip": infer_cpu / batch_size}


def _write_run(folder: Path) -> tuple[Path, Any]:
    """A run folder (model.keras + run.json) of the comparison's fused model with random weights, for
    export_model."""
    from utils import models
    from utils.training.runs import write_json

    model, config = _comparison_model()
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    write_json(folder / "run.json", {
        "model": "fused", "config_name": config.name, "config": config.to_dict(),
        "classes": [f"class{i}" for i in range(NUM_CLASSES)],
        "inputs": list(models.model_inputs("fused", config)), "num_frames": config.num_frames,
        "image_size": config.image_size, "input_dim": 1662})
    return folder, config


def _tflite_setting(batch_size: int, steps: int, threads: int | None = None) -> dict[str, Any]:
    """Inference speed of the exported fused model in TensorFlow Lite: ``steps`` x ``batch_size`` single
    clips."""
    import tensorflow as tf

    from utils.serving import export

    threads = threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench_tflite_") as scratch:
        run_dir, config = _write_run(Path(scratch) / "run")
        paths = export.export_model(run_dir, Path(scratch) / "export", formats=["tflite"], verbose=False)
        tflite_path = next(path for path in paths if path.suffix == ".tflite")
        size_mb = tflite_path.stat().st_size / 1e6
        interpreter = tf.lite.Interpreter(model_path=str(tflite_path), num_threads=threads)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    clip = random_batch("fused", config.num_frames, config.image_size, 1)
    one = {name: clip[name].astype(details[name]["dtype"]) for name in details}

    def batch() -> None:
        for _ in range(batch_size):
            runner(**one)

    infer_wall, infer_cpu = _timed(batch, steps)
    return {"framework": f"TensorFlow Lite {tf.__version__} (XNNPACK, {size_mb:.1f} MB)", "params": None,
            "threads": f"TFLite {threads}", "train_clips_per_s": None,
            "infer_clips_per_s": batch_size / infer_wall, "infer_cpu_s_per_clip": infer_cpu / batch_size}


def measure_setting(name: str, batch_size: int = SEED_BATCH_SIZE, steps: int = 4,
                    threads: int | None = None) -> dict[str, Any]:
    """One setting's figures in this process (called in a fresh process by :func:`compare`)."""
    if name not in SETTINGS or name == "pytorch":
        raise ConfigError(f"unknown setting {name!r} for this process; use one of "
                          f"{', '.join(n for n in SETTINGS if n != 'pytorch')}")
    load = load_average()
    if name == "tflite":
        result = _tflite_setting(batch_size, steps, threads)
    else:
        result = _keras_setting(name, batch_size, steps, threads)
    return {"setting": name, "batch_size": batch_size, "steps": steps, "load_before": load,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), **result}


def torch_available() -> bool:
    """True when PyTorch can be imported (the optional ``torch`` extra)."""
    return importlib.util.find_spec("torch") is not None


def setting_command(name: str, batch_size: int, steps: int, threads: int | None = None) -> list[str]:
    """The command line of the process that measures one setting (``threads``: None = each framework's
    default)."""
    options = ["--batch-size", str(batch_size), "--steps",
               str(steps)] + (["--threads", str(threads)] if threads else [])
    if name == "pytorch":
        return [sys.executable, str(TORCH_SCRIPT), "--json", *options]
    return [sys.executable, "-m", "benchmarks.speed", "--setting", name, *options]


def run_setting(name: str, batch_size: int, steps: int, timeout: float | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """Measure one setting in a fresh process; its result, or {'setting', 'error'} when the process failed."""
    env = {**os.environ, **SETTINGS[name][1]}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS_DIR.parent), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(setting_command(name, batch_size, steps, threads), env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=str(BENCHMARKS_DIR.parent))
    except subprocess.TimeoutExpired:
        return {"setting": name, "error": f"stopped after {timeout:g} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX) or line.startswith("{"):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return {"setting": name, "error": f"exit status {done.returncode}: {last}"}


@dataclass
class Comparison:
    """Every round's result of every setting of :func:`compare` (None where a setting was skipped or
    failed)."""

    settings: list[str]
    rounds: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def values(self, setting: str, key: str) -> list[float]:
        """The figures ``key`` of one setting over the rounds where it has one."""
        return [r[setting][key] for r in self.rounds if r.get(setting, {}).get(key) is not None]

    def ratios(self, setting: str, key: str, reference: str = REFERENCE) -> list[float]:
        """setting / reference of ``key`` within each round where both have it (paired, same load)."""
        return [r[setting][key] / r[reference][key] for r in self.rounds
                if r.get(setting, {}).get(key) is not None and r.get(reference, {}).get(key)]

    def cpu_ratios(self, setting: str, key: str, reference: str = REFERENCE) -> list[float]:
        """reference / setting of the CPU seconds per clip ``key`` within each round: the speed per CPU
        second, which the load changes less than the clips/s of the wall clock."""
        return [r[reference][key] / r[setting][key] for r in self.rounds
                if r.get(setting, {}).get(key) and r.get(reference, {}).get(key)]


def compare(settings: tuple[str, ...] = DEFAULT_SETTINGS, repeats: int = 3, steps: int = 4,
            batch_size: int = SEED_BATCH_SIZE, progress: bool = True, once: tuple[str, ...] = ONCE_SETTINGS,
            timeout: float | None = SETTING_TIMEOUT_S, threads: int | None = None) -> Comparison:
    """Time each setting in its own process, one after the other, ``repeats`` rounds (``once``: the first
    only)."""
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown:
        raise ConfigError(f"unknown benchmark setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    comparison = Comparison(list(settings))
    if "pytorch" in settings and not torch_available():
        comparison.skipped["pytorch"] = "PyTorch is not installed (pip install -e '.[torch]')"
    elif "pytorch" in settings and not TORCH_SCRIPT.is_file():
        comparison.skipped["pytorch"] = f"{TORCH_SCRIPT} not found (run from a checkout of the course)"
    for index in range(repeats):
        results: dict[str, dict[str, Any]] = {}
        for name in settings:
            if name in comparison.skipped or (index > 0 and name in once):
                continue
            if progress:
                print(f"round {index + 1}/{repeats}: {name} (load {load_average():.1f}) ...", flush=True)
            results[name] = run_setting(name, batch_size, steps, timeout, threads)
            if progress:
                print(f"  {_result_line(results[name])}", flush=True)
        comparison.rounds.append(results)
    return comparison


def _result_line(result: dict[str, Any]) -> str:
    """One process's figures in a line (shown as each setting finishes, so a stopped run keeps what it
    measured)."""
    if "error" in result:
        return f"{result['setting']} failed: {result['error']}"
    train = result.get("train_clips_per_s")
    return (f"{result['setting']}: training {'-' if train is None else f'{train:.2f}'} clips/s, inference "
            f"{result['infer_clips_per_s']:.2f} clips/s (load {result.get('load_before', float('nan')):.1f})")


def _best_median(values: list[float], digits: int = 2) -> str:
    """'best / median' of some figures, or '-' when there are none."""
    if not values:
        return "-"
    return f"{max(values):.{digits}f} / {statistics.median(values):.{digits}f}"


def _ratio_text(values: list[float]) -> str:
    """The median of paired ratios, e.g. '1.52x', or '-'."""
    return f"{statistics.median(values):.2f}x" if values else "-"


def format_comparison(comparison: Comparison, reference: str = REFERENCE) -> str:
    """The comparison table: best / median clips/s per setting, the median ratio to the reference in clips/s,
    and per CPU second (training / inference; the figure to read on a shared machine)."""
    header = (f"{'setting':16} {'train clips/s':>15} {'infer clips/s':>15} {'CPU s/clip':>11} "
              f"{'train vs ' + reference:>17} {'infer vs ' + reference:>17} {'per CPU s':>11}  what")
    lines = [header, "-" * len(header)]
    for name in comparison.settings:
        if name in comparison.skipped:
            lines.append(f"{name:16} skipped: {comparison.skipped[name]}")
            continue
        errors = [r[name]["error"] for r in comparison.rounds if "error" in r.get(name, {})]
        if errors and len(errors) == len(comparison.rounds):
            lines.append(f"{name:16} failed: {errors[0]}")
            continue
        cpu_text = "/".join(f"{min(values):.2f}" if values else "-" for values in
                            (comparison.values(name, "train_cpu_s_per_clip"),
                             comparison.values(name, "infer_cpu_s_per_clip")))
        train_ratio = _ratio_text(comparison.ratios(name, "train_clips_per_s",
                                                    reference)) if name != reference else "1"
        infer_ratio = _ratio_text(comparison.ratios(name, "infer_clips_per_s",
                                                    reference)) if name != reference else "1"
        cpu_ratio = "/".join(_ratio_text(comparison.cpu_ratios(name, key, reference)).removesuffix("x")
                             for key in ("train_cpu_s_per_clip",
                                         "infer_cpu_s_per_clip")) if name != reference else "1"
        lines.append(f"{name:16} {_best_median(comparison.values(name, 'train_clips_per_s')):>15} "
                     f"{_best_median(comparison.values(name, 'infer_clips_per_s')):>15} {cpu_text:>11} "
                     f"{train_ratio:>17} {infer_ratio:>17} {cpu_ratio:>11}  {SETTINGS[name][0]}")
    return "\n".join(lines)


def comparison_notes(comparison: Comparison) -> str:
    """Load average before each round's processes and the frameworks and thread counts they used."""
    loads = [[f"{result['load_before']:.1f}" for result in r.values() if "load_before" in result]
             for r in comparison.rounds]
    seen: dict[str, str] = {}
    for r in comparison.rounds:
        for name, result in r.items():
            if "framework" in result:
                seen.setdefault(name, f"{name}: {result['framework']}, threads {result['threads']}")
    rounds = "; ".join(f"round {i + 1}: {', '.join(load)}" for i, load in enumerate(loads))
    return "\n".join([f"load average when each process started ({os.cpu_count()} cores): {rounds}",
                      *seen.values()])


def load_keypoint_speed() -> Any:
    """benchmarks/keypoint_speed.py, the keypoint path's own benchmark."""
    from benchmarks import keypoint_speed

    return keypoint_speed


def keypoint_speed_args(quick: bool) -> list[str]:
    """The arguments make bench passes to keypoint_speed.main(): its own quick mode (a few minutes) or
    everything."""
    return ["--quick"] if quick else []


def _keypoint_speed(quick: bool) -> None:
    """benchmarks/keypoint_speed.py's main()."""
    load_keypoint_speed().main(keypoint_speed_args(quick))


def main(quick: bool = False, steps: int = 4, repeats: int = 3, settings: tuple[str, ...] = DEFAULT_SETTINGS,
         threads: int | None = None, model_table: bool = True) -> Comparison:
    """Print the comparison at the seed shapes, the model table and the keypoint path's speed."""
    print(f"Fused model at the original's shapes (T=30, 64x64, batch {SEED_BATCH_SIZE}): each setting in its "
          f"own process, {1 if quick else repeats} round(s) ({', '.join(ONCE_SETTINGS)}: the first only), "
          f"mean of {steps} batches after a warm-up; best / median over rounds, ratios = median of the same "
          f"round's ratios; threads: {threads or 'each framework default'}", flush=True)
    comparison = compare(settings, repeats=1 if quick else repeats, steps=steps, threads=threads)
    print(format_comparison(comparison))
    print(comparison_notes(comparison))
    if model_table:
        print(environment_line())
        rows = run(quick, steps=3)
        print(format_table(rows))
        print(speedup_summary(rows))
        _keypoint_speed(quick)
    return comparison


def _setting_main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.speed --setting NAME``: measure one setting and print it as one JSON line."""
    parser = argparse.ArgumentParser(description="one setting of the comparison (benchmarks.speed.compare)")
    parser.add_argument("--setting", required=True, choices=[name for name in SETTINGS if name != "pytorch"])
    parser.add_argument("--batch-size", type=int, default=SEED_BATCH_SIZE)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    print(RESULT_PREFIX + json.dumps(measure_setting(args.setting, args.batch_size, args.steps,
                                                     args.threads)),
          flush=True)


def cli(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.speed`` (what ``make bench`` runs); ``--setting NAME`` measures one setting."""
    argv = sys.argv[1:] if argv is None else argv
    if "--setting" in argv:
        _setting_main(argv)
        return 0

    p = argparse.ArgumentParser(prog="python -m benchmarks.speed",
                                description="Time the fused model at the original's shapes under each "
                                   "setting (PyTorch original, Keras defaults, XLA on, oneDNN off, "
                                   "TensorFlow Lite), each in its own process, and print ratios to PyTorch; "
                                   "then every model's speed and memory.")
    p.add_argument("--quick", action="store_true",
                   help="one round of the comparison; small configuration only")
    p.add_argument("--steps", type=int, default=4,
                   help="timed batches per measurement, after one warm-up batch")
    p.add_argument("--repeats", type=int, default=3,
                   help="rounds of the comparison (best and median reported)")
    p.add_argument("--settings", nargs="+", default=None, metavar="NAME",
                   help="settings of the comparison (default: all): pytorch keras keras-xla keras-no-onednn "
                        "tflite")
    p.add_argument("--threads", type=int, default=None,
                   help="threads of every framework in the comparison (default: each one's own, all cores); "
                        "1 measures the work per core, steadier on a shared machine")
    p.add_argument("--comparison-only", action="store_true",
                   help="skip the model table and the keypoint path")
    p.add_argument("--scale", action="store_true",
                   help="instead: peak memory of writing, reading and training from a features store of "
                        "--clips synthetic clips (tiled from data/features/synthetic_T30_S64.npz; ~0.57 MB "
                        "per clip on disk)")
    p.add_argument("--clips", type=int, nargs="+", default=[2000, 10000, 20000], help="--scale: store sizes")
    p.add_argument("--train-steps", type=int, default=10, help="--scale: training steps per measurement")
    p.add_argument("--workdir", default=None,
                   help="--scale: where the temporary stores go (default: the system's temp folder)")
    args = p.parse_args(argv)
    if args.scale:  # peak memory of the features store at growing sizes (benchmarks/store_scale.py)
        from benchmarks import store_scale

        store_scale.main(tuple(args.clips), steps=args.train_steps, workdir=args.workdir)
        return 0
    settings = tuple(args.settings) if args.settings else DEFAULT_SETTINGS
    main(quick=args.quick, steps=args.steps, repeats=args.repeats, settings=settings, threads=args.threads,
         model_table=not args.comparison_only)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
