"""Course-wide settings read from the environment: which dataset, quick mode, seed, and where things go.

Every notebook's setup cell calls :func:`course_settings`, so ``DATASET=asl make run`` or ``FAST=1``
change all notebooks the same way.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import paths

KNOWN_DATASETS = ("synthetic", "asl", "ucf11")

# ----------------------------------------------------------------------------- defaults (the one place)
NUM_FRAMES = 30  # T: frames sampled evenly over each clip by `extract` (the original used 30)
IMAGE_SIZE = 64  # S: side of the frame thumbnails `extract` stores (the original's ConvLSTM size)
SYNTHETIC_CLIPS_PER_CLASS = 40  # synthetic clips per sign
SYNTHETIC_SIGNERS = 10  # distinct synthetic signers (the groups of signer-disjoint splits)
SYNTHETIC_RENDER_SIZE = 128  # side in pixels of the rendered synthetic videos
# Longer side in pixels of the frames MediaPipe Holistic sees (0 = full resolution); hand crops and thumbnails
# always come from the full-resolution frames. Full resolution by measurement (benchmarks/keypoint_speed.md):
# on 720p-1080p clips MediaPipe costs the same CPU time per frame at 1080p, 960, 640 or 480 px (its models
# take fixed 192-256 px inputs), so shrinking buys no speed, and it moves the landmarks a little.
MEDIAPIPE_SIZE = 0
# How `extract` runs several clips at once: "threads" (one process, each thread its own MediaPipe graph) or
# "processes" (one worker process per clip). Threads by measurement (benchmarks/keypoint_speed.md): on 3 real
# 720p-1080p clips, 52-54 CPU ms per sampled frame against 77-84 for 2 worker processes, the same arrays.
EXTRACT_PARALLEL_MODES = ("threads", "processes")
EXTRACT_PARALLEL = "threads"

# The synthetic default: 10 signs x 40 clips by 10 signers (400 clips). FAST=1 shrinks it for smoke tests.
SYNTHETIC_DEFAULT = dict(clips_per_class=SYNTHETIC_CLIPS_PER_CLASS, num_signers=SYNTHETIC_SIGNERS,
                         num_frames=NUM_FRAMES, image_size=SYNTHETIC_RENDER_SIZE)
SYNTHETIC_FAST = dict(clips_per_class=8, num_signers=4, num_frames=NUM_FRAMES,
                      image_size=SYNTHETIC_RENDER_SIZE)


@dataclass
class CourseSettings:
    """What one run of the course works on; printed by every notebook's setup cell."""

    dataset: str
    fast: bool
    seed: int
    num_frames: int = NUM_FRAMES
    image_size: int = IMAGE_SIZE
    epochs: int | None = None  # None = each configuration's own number of epochs
    synthetic: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Short name of the dataset, for file names."""
        base = self.dataset if self.dataset in KNOWN_DATASETS else Path(self.dataset).name
        return f"{base}_fast" if self.fast else base

    @property
    def source_dir(self) -> Path:
        """Folder holding the raw clips of the dataset."""
        if self.dataset == "synthetic":
            return paths.DATA_DIR / ("synthetic_fast" if self.fast else "synthetic")
        if self.dataset in KNOWN_DATASETS:
            return paths.RAW_DIR / self.dataset
        return Path(self.dataset).expanduser().resolve()

    @property
    def features_path(self) -> Path:
        """The one feature file every notebook after 01 reads."""
        return paths.FEATURES_DIR / f"{self.name}_T{self.num_frames}_S{self.image_size}.npz"

    @property
    def runs_dir(self) -> Path:
        """Where trained models and their metrics go (one sub-folder per run)."""
        return paths.RUNS_DIR / self.name

    def __str__(self) -> str:
        epochs = "per configuration" if self.epochs is None else self.epochs
        return (f"dataset={self.dataset} fast={self.fast} seed={self.seed} T={self.num_frames} "
                f"S={self.image_size} epochs={epochs}\n  source:   {self.source_dir}\n"
                f"  features: {self.features_path}\n  runs:     {self.runs_dir}")


def course_settings(dataset: str | None = None, fast: bool | None = None, seed: int = 42) -> CourseSettings:
    """Settings from arguments, else the DATASET and FAST environment variables (default: synthetic, full)."""
    dataset = dataset or os.environ.get("DATASET", "synthetic")
    if fast is None:
        fast = os.environ.get("FAST", "0").lower() in ("1", "true", "yes")
    settings = CourseSettings(dataset=dataset, fast=fast, seed=seed,
                              epochs=3 if fast else None,
                              synthetic=dict(SYNTHETIC_FAST if fast else SYNTHETIC_DEFAULT))
    if dataset == "ucf11":
        settings.num_frames = 20  # the original used 20 frames per UCF11 clip
    return settings


def gpu_count() -> int:
    """How many GPUs TensorFlow sees (imports TensorFlow)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def gpu_available() -> bool:
    """True when TensorFlow sees at least one GPU."""
    return gpu_count() > 0


def set_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python and NumPy and, once Keras is imported, Keras/TensorFlow with its deterministic ops.

    ``deterministic``: TensorFlow's deterministic ops on or off (None: on without a GPU, where they cost
    little; off with one, where they are slow). A notebook that has not imported Keras yet gets Python and
    NumPy seeded only, and stays free of TensorFlow; training seeds again after Keras is loaded.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if "keras" not in sys.modules:
        return
    import keras
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(seed)
    if deterministic is None:
        deterministic = not gpu_available()
    if deterministic:
        tf_config.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def _stderr_hidden():
    """Send the process's standard error (file descriptor 2, where C++ libraries write) to /dev/null
    meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def native_logs_hidden():
    """Hide what C++ libraries write to standard error meanwhile (MediaPipe's notices: "Created TensorFlow
    Lite XNNPACK delegate", "Feedback manager requires a model ..."); ``COURSE_TF_LOGS=1`` keeps them. Errors
    still reach Python as exceptions."""
    if os.environ.get("COURSE_TF_LOGS") == "1":
        yield
        return
    with _stderr_hidden():
        yield


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but runs its import with standard error hidden (see
    :func:`quiet_tensorflow`); it removes itself after that first import."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            loader = spec.loader

            class QuietLoader(importlib.abc.Loader):
                def create_module(self, spec: Any) -> Any:
                    return loader.create_module(spec)

                def exec_module(self, module: Any) -> None:
                    with _stderr_hidden():
                        loader.exec_module(module)
                    # TensorFlow's Python warnings (e.g. "triggered tf.function retracing" when a notebook
                    # builds and predicts with many small models in a row) say nothing a student can act on;
                    # errors stay
                    logging.getLogger("tensorflow").setLevel(logging.ERROR)

            spec.loader = QuietLoader()
        return spec


def quiet_tensorflow() -> None:
    """Have TensorFlow load without its start-up lines, whoever imports it first (Keras, the course's
    modules).

    ``TF_CPP_MIN_LOG_LEVEL=3`` (set in ``utils/__init__.py``) hides TensorFlow's own log lines, but a few are
    written while TensorFlow loads, before its logging is set up ("Unable to register cuDNN factory", "All log
    messages before absl::InitializeLog() ..."): harmless notices about GPU plugins, printed even on a machine
    without a GPU. Importing ``utils`` calls this; TensorFlow's import then runs with standard error hidden
    (an import that fails still raises its error). ``COURSE_TF_LOGS=1`` keeps every line.
    """
    if "tensorflow" in sys.modules or os.environ.get("COURSE_TF_LOGS") == "1":
        return
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def package_versions(names: tuple[str, ...] = ("numpy", "tensorflow", "keras", "mediapipe", "cv2",
                                               "sklearn", "matplotlib")) -> dict[str, str]:
    """Installed versions of the given packages ('missing' when not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            versions[name] = "missing"
    return versions


def print_versions(names: tuple[str, ...] | None = None) -> None:
    """Print package versions, one per line (the first thing every notebook shows)."""
    import platform

    print(f"python     {platform.python_version()}")
    for name, version in (package_versions(names) if names else package_versions()).items():
        print(f"{name:<10} {version}")
