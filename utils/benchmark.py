"""Training and inference speed, and peak memory, of each model on this machine (``python -m utils bench``).

Each measurement builds the model with random weights, feeds one random batch (keypoints float32, frames
raw uint8), takes one warm-up step (graph tracing), then times ``steps`` calls of ``train_on_batch`` and of
``predict_on_batch``. Speeds are clips per second (batch size / seconds per call, best of the timed calls,
so another program's burst of activity does not count). Peak memory is the process's resident-set
high-water mark during the measurement (reset before it where Linux allows, else since start).

The fused model is measured twice, with our :class:`utils.models.ConvLSTM` and with the stock
``keras.layers.ConvLSTM2D``; both compute the same function (``tests/test_models.py``).
"""
from __future__ import annotations

import os

# oneDNN convolutions are ~1.5-2x faster than TensorFlow's default (Eigen) on CPUs without AVX-512;
# it only takes effect if set before TensorFlow is first imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import resource  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SEED_BATCH_SIZE = 16  # the seed shapes are measured at batch 16 (original: 64) to fit 2 cores' time
NUM_CLASSES = 10
# A straightforward PyTorch version of the original fused model on the course's 2-core reference machine.
PYTORCH_REFERENCE = {"train_clips_per_s": 1.2, "infer_clips_per_s": 5.6}


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


def _best_seconds(function, steps: int) -> float:
    """Fastest of ``steps`` timed calls."""
    times = []
    for _ in range(max(1, steps)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(model_name: str, config_name: str = "small", batch_size: int | None = None, steps: int = 3,
            convlstm_impl: str = "fast", jit_compile: bool | str | None = None) -> Measurement:
    """Train and inference clips/s and peak memory of one model at one configuration's shapes."""
    import keras

    from utils import models

    config = models.get_config(model_name, config_name)
    batch_size = batch_size or config.batch_size
    keras.backend.clear_session()
    _reset_peak_memory()
    model = models.compile_model(models.build_model(model_name, config, NUM_CLASSES, convlstm_impl=convlstm_impl),
                                 config, jit_compile=jit_compile)
    inputs = random_batch(model_name, config.num_frames, config.image_size, batch_size)
    labels = np.random.default_rng(1).integers(0, NUM_CLASSES, batch_size)
    model.train_on_batch(inputs, labels)  # warm-up: traces the training graph
    train_seconds = _best_seconds(lambda: model.train_on_batch(inputs, labels), steps)
    model.predict_on_batch(inputs)  # warm-up: traces the inference graph
    infer_seconds = _best_seconds(lambda: model.predict_on_batch(inputs), steps)
    return Measurement(model_name, config_name, convlstm_impl if model_name != "lstm" else "-", batch_size,
                       model.count_params(), batch_size / train_seconds, batch_size / infer_seconds,
                       _peak_memory_mb())


def plan(quick: bool = False) -> list[tuple[str, str, int | None, str]]:
    """(model, config, batch size, convlstm impl) of every measurement, in order."""
    rows = []
    configs = [("small", None)] if quick else [("small", None), ("seed", SEED_BATCH_SIZE)]
    for config_name, batch_size in configs:
        rows += [("lstm", config_name, batch_size, "fast"), ("convlstm", config_name, batch_size, "fast"),
                 ("fused", config_name, batch_size, "fast"), ("fused", config_name, batch_size, "stock")]
    return rows


def format_table(rows: list[Measurement]) -> str:
    """The measurements as an aligned text table."""
    header = f"{'model':9} {'config':7} {'convlstm':8} {'batch':>5} {'params':>10} {'train clips/s':>14} " \
             f"{'infer clips/s':>14} {'peak MB':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.model:9} {row.config:7} {row.convlstm_impl:8} {row.batch_size:5d} {row.params:10,d} "
                     f"{row.train_clips_per_s:14.2f} {row.infer_clips_per_s:14.2f} {row.peak_memory_mb:8.0f}")
    return "\n".join(lines)


def speedup_summary(rows: list[Measurement]) -> str:
    """Fast vs stock ConvLSTM (fused model) per configuration, and the seed fused model vs PyTorch."""
    lines = []
    for config_name in dict.fromkeys(row.config for row in rows):
        fused = {row.convlstm_impl: row for row in rows if row.model == "fused" and row.config == config_name}
        if {"fast", "stock"} <= set(fused):
            fast, stock = fused["fast"], fused["stock"]
            lines.append(f"{config_name}: fast ConvLSTM vs stock ConvLSTM2D (fused): training "
                         f"{fast.train_clips_per_s / stock.train_clips_per_s:.1f}x, inference "
                         f"{fast.infer_clips_per_s / stock.infer_clips_per_s:.1f}x")
        if config_name == "seed" and "fast" in fused:
            lines.append(f"seed fused vs the PyTorch original on the 2-core reference machine "
                         f"(train {PYTORCH_REFERENCE['train_clips_per_s']}, infer "
                         f"{PYTORCH_REFERENCE['infer_clips_per_s']} clips/s): training "
                         f"{fused['fast'].train_clips_per_s / PYTORCH_REFERENCE['train_clips_per_s']:.2f}x, "
                         f"inference {fused['fast'].infer_clips_per_s / PYTORCH_REFERENCE['infer_clips_per_s']:.2f}x")
    return "\n".join(lines)


def environment_line() -> str:
    """CPU count, load average, TensorFlow version and whether oneDNN is on."""
    import tensorflow as tf

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPU cores, load average {load:.1f}, TensorFlow {tf.__version__}, "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")


def run(quick: bool = False, steps: int = 3) -> list[Measurement]:
    """Measure every row of :func:`plan` with a progress bar; returns the measurements."""
    from tqdm.auto import tqdm

    rows = []
    for model_name, config_name, batch_size, impl in tqdm(plan(quick), desc="benchmark", unit="model"):
        rows.append(measure(model_name, config_name, batch_size, steps, impl))
    return rows


def main(quick: bool = False, steps: int = 3) -> list[Measurement]:
    """Print the speed/memory table (small configuration; also the seed shapes unless quick)."""
    print(environment_line())
    rows = run(quick, steps)
    print(format_table(rows))
    print(speedup_summary(rows))
    return rows
