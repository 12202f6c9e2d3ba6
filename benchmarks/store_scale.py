"""Peak memory of the features store as the dataset grows (``python -m utils bench --scale``).

For each size N (default 2,000, 10,000 and 20,000 clips) it builds a synthetic features store of N clips
(keypoints (30, 1662) float32 and frames 30x64x64x3 uint8: the 400 clips of the synthetic features file, tiled
and perturbed, written clip by clip) in a temporary folder, then measures, each in a fresh process:

- ``write``: building the store (what ``extract --out <folder>`` does after the per-clip cache);
- ``read all``: reading every clip's keypoints and frames once, in batches (a full epoch's reads);
- ``train lstm`` / ``train fused``: a fixed number of training steps of the recommended configuration, batches
  streamed from the store (:class:`utils.training.TrainingBatches`), plus a few validation and prediction
  batches (:class:`utils.training.ClipBatches`, :func:`utils.evaluation.predict_clips`).

Peak memory is each process's peak resident set (``ru_maxrss`` of that child, from ``os.wait4``), which counts
the memory-mapped pages it holds. The store of each size is deleted before the next one is built.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SIZES = (2000, 10000, 20000)
TRAIN_STEPS = 10  # training steps per measurement
READ_BATCH = 64  # clips per read in the "read all" measurement
BASE_FILE = "synthetic_T30_S64.npz"  # written by `python -m utils extract synthetic` (notebook 01)
TARGET_MB = 3 * 1024


# ----------------------------------------------------------------------------- the synthetic store
def tiled_clip(base: Any, row: int) -> dict[str, np.ndarray]:
    """Clip ``row`` of a tiled dataset: base clip row % n with its keypoints jittered and its frames
    shifted."""
    source, copy = row % len(base), row // len(base)
    rng = np.random.default_rng([row, 7])
    keypoints = np.array(base.keypoints[source], dtype=np.float32)
    present = keypoints != 0
    keypoints[present] += rng.normal(0, 0.002, int(present.sum())).astype(np.float32)
    clip = {"keypoints": keypoints, "frames": np.roll(base.frames[source], copy % 7 - 3, axis=2)}
    if base.detected is not None:
        clip["detected"] = base.detected[source]
    return clip


def tiled_columns(base: Any, num_clips: int) -> dict[str, np.ndarray]:
    """The (N,) columns of the tiled dataset: labels, signers (groups) and paths of the base clips,
    repeated."""
    source = np.arange(num_clips) % len(base)
    copies = np.arange(num_clips) // len(base)
    return {"labels": np.asarray(base.labels)[source], "groups": np.asarray(base.groups)[source],
            "split": np.full(num_clips, ""),
            "paths": np.array([f"{base.paths[s]}#{c}" for s, c in zip(source, copies)])}


def build_store(base_path: str | Path, folder: str | Path, num_clips: int) -> Path:
    """Write a store of num_clips tiled clips of the base features file, one clip at a time."""
    from utils.data import store
    from utils.data.features import CLIP_DTYPES, load_features

    base = load_features(base_path)
    if base.frames is None:
        raise SystemExit(f"{base_path} has no frames; use a features file extracted from videos")
    clips: Iterator[dict[str, np.ndarray]] = (tiled_clip(base, row) for row in range(num_clips))
    meta = {**base.meta, "tiled_from": str(base_path), "num_base_clips": len(base)}
    return store.write_store(folder, clips, num_clips, tiled_columns(base, num_clips), list(base.classes),
                             meta, CLIP_DTYPES)


# ----------------------------------------------------------------------------- what each child process
# measures
def read_all(folder: str | Path) -> int:
    """Read every clip's keypoints and frames once, in batches; return the clips read."""
    from utils.data.features import load_features

    features = load_features(folder)
    total = 0
    for start in range(0, len(features), READ_BATCH):
        rows = np.arange(start, min(start + READ_BATCH, len(features)))
        keypoints, frames = features.keypoints[rows], features.frames[rows]
        total += min(len(keypoints), len(frames))
    return total


def train_steps(folder: str | Path, model_name: str, steps: int) -> dict[str, Any]:
    """Train the recommended configuration of model_name for ``steps`` batches streamed from the store, then
    validate and predict a few batches; return what was done."""
    import keras

    from utils import models
    from utils.config import set_seed
    from utils.data import splits
    from utils.data.features import load_features
    from utils.inputs import preprocessing
    from utils.inputs.spec import InputSpec, stored_arrays
    from utils.training import loop as training
    from utils.training.metrics import predict_clips

    features = load_features(folder)
    config = training.resolve_config(model_name)
    spec = InputSpec.from_config(model_name, config)
    labels = np.asarray(features.labels, dtype=np.int64)
    split = splits.make_splits(labels, groups=features.groups, split=features.split, seed=0)
    set_seed(0)
    batches = training.TrainingBatches(stored_arrays(features, spec), labels[split.train], spec,
                                       config.augmentation or {}, config.batch_size, 0, split.train)
    validation = training.ClipBatches(features, spec, split.val, labels[split.val], config.batch_size)
    keypoint_dim = preprocessing.output_dim(preprocessing.resolve_options(config.preprocessing))
    model = models.build_model(model_name, config, num_classes=len(features.classes),
                               keypoint_dim=keypoint_dim)
    models.compile_model(model, config)
    fit = model.fit(batches, epochs=1, steps_per_epoch=min(steps, len(batches)), validation_data=validation,
                    validation_steps=min(2, len(validation)), verbose=0)
    predict_clips(model, features, spec, split.test[:2 * config.batch_size], config.batch_size)
    keras.backend.clear_session()
    return {"batch_size": config.batch_size, "n_train": len(split.train),
            "loss": float(fit.history["loss"][-1])}


def child(argv: list[str]) -> None:
    """Entry point of one measurement process: do one task, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_scale")
    parser.add_argument("task", choices=["write", "read", "lstm", "fused"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--base", default=None)
    parser.add_argument("--clips", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.task == "write":
        build_store(args.base, args.store, args.clips)
        result: dict[str, Any] = {"clips": args.clips}
    elif args.task == "read":
        result = {"clips": read_all(args.store)}
    else:
        result = train_steps(args.store, args.task, args.steps)
    print(json.dumps({**result, "seconds": round(time.perf_counter() - started, 1)}), flush=True)


# ----------------------------------------------------------------------------- the parent
def measure(task: str, store: Path, **options: Any) -> dict[str, Any]:
    """Run one task in a fresh Python process; its JSON result plus its peak resident memory (MB)."""
    command = [sys.executable, "-m", "benchmarks.store_scale", task, "--store", str(store)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env,
                                   cwd=Path(__file__).resolve().parents[1])
        output = process.stdout.read()
        # this child's own peak RSS, not the maximum over all children
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{errors.read()[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def base_features_path() -> Path:
    """The synthetic features file the store is tiled from; SystemExit saying how to make it when missing."""
    from utils import paths

    path = paths.FEATURES_DIR / BASE_FILE
    if not path.is_file():
        raise SystemExit(f"{path} not found: create it with `python -m utils data synthetic` and "
                         f"`python -m utils extract synthetic --out {path}` (or run notebook 01)")
    return path


def run(sizes: tuple[int, ...] = SIZES, steps: int = TRAIN_STEPS, workdir: str | Path | None = None,
        tasks: tuple[str, ...] = ("write", "read", "lstm", "fused")) -> list[dict[str, Any]]:
    """Measure every task at every size (one store at a time, deleted after); one row per (size, task)."""
    base = base_features_path()
    folder = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=workdir))
    rows = []
    try:
        for size in sizes:
            store = folder / f"store_{size}"
            for task in tasks:
                options = {"base": base, "clips": size} if task == "write" else {"steps": steps} if task in (
                    "lstm", "fused") else {}
                result = measure(task, store, **options)
                if task == "write":
                    result["gb_on_disk"] = sum(f.stat().st_size for f in store.iterdir()) / 1e9
                rows.append({"clips": size, "task": task, **result})
                print(format_row(rows[-1]), flush=True)
            shutil.rmtree(store)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def format_row(row: dict[str, Any]) -> str:
    """One line of the table."""
    extra = f", {row['gb_on_disk']:.1f} GB on disk" if "gb_on_disk" in row else ""
    if "batch_size" in row:
        extra = f", batch {row['batch_size']}, {row['n_train']} training clips"
    return (f"{row['clips']:>7,} clips  {row['task']:<6}  peak RSS {row['peak_rss_mb']:7.0f} MB  "
            f"{row['seconds']:6.1f} s{extra}")


def main(sizes: tuple[int, ...] = SIZES, steps: int = TRAIN_STEPS,
         workdir: str | Path | None = None) -> list[dict]:
    """Print peak memory of writing, reading and training at each size, and whether it stays under the
    target."""
    print(f"peak resident memory per process; store tiled from {BASE_FILE}; {steps} training steps; "
          f"target < {TARGET_MB} MB, flat in N")
    rows = run(tuple(sizes), steps, workdir)
    worst = max(rows, key=lambda row: row["peak_rss_mb"])
    print(f"largest peak: {worst['peak_rss_mb']:.0f} MB ({worst['task']}, {worst['clips']:,} clips) -> "
          f"{'under' if worst['peak_rss_mb'] < TARGET_MB else 'OVER'} the {TARGET_MB} MB target")
    return rows


if __name__ == "__main__":
    child(sys.argv[1:])
