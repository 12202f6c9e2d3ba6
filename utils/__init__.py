"""Helpers for the course "Skeleton-based sign-language and action recognition".

The folders are the stages a clip goes through, in order; a stage imports only from itself and the stages
before it (``tests/test_architecture.py`` checks it):

    data/        clips, MediaPipe keypoints, the synthetic signers, datasets, the features file, splits
    models/      the Keras networks and their configurations inputs/      how a stored clip becomes a model's
    inputs (preprocessing, InputSpec) training/    fitting a model and writing its run folder
    evaluation/  cross-validation by signer, reading and comparing results
    serving/     predict on a video, the webcam, export

``errors``, ``paths``, ``config`` and ``plots`` are used by every stage; ``cli`` and ``course`` are the
commands (``python -m utils --help``). Import the module you need (``from utils.data import keypoints``);
importing ``utils`` itself stays cheap and never loads TensorFlow or MediaPipe.
"""
__version__ = "0.1.0"

import os as _os

# The one place for TensorFlow's (and MediaPipe's) environment variables: they only take effect before
# TensorFlow is first imported, and every ``utils`` module is imported after this file.
# TensorFlow turns its oneDNN CPU kernels on by itself only on recent CPUs (AVX-512 VNNI/BF16, AMX; the
# course's 2-core machine has them); this turns them on everywhere. ``python -m benchmarks.speed --settings
# keras keras-no-onednn`` measures what they change for the ConvLSTM models.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ log lines (see config.quiet_tensorflow)
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines

from utils import config as _config  # noqa: E402  (after the variables above)

_config.quiet_tensorflow()

import warnings as _warnings  # noqa: E402

# tqdm's notebook progress bars need ipywidgets; without it they fall back to text bars, with a warning a
# student can do nothing about
_warnings.filterwarnings("ignore", message="IProgress not found")
