"""Helpers for the course "Skeleton-based sign-language and action recognition".

Modules, each named after what it holds (see ARCHITECTURE in the README):
``video``, ``keypoints``, ``synthetic``, ``datasets``, ``features``, ``splits``,
``preprocessing``, ``inputs``, ``models``, ``training``, ``runs``, ``evaluation``, ``crossval``, ``plots``,
``predict``, ``webcam``, ``export``.
Import the module you need (``from utils import keypoints``); importing ``utils``
itself stays cheap and never loads TensorFlow or MediaPipe.
"""
__version__ = "0.1.0"

import os as _os

# The one place for TensorFlow's (and MediaPipe's) environment variables: they only take effect before
# TensorFlow is first imported, and every ``utils`` module is imported after this file.
# TensorFlow turns its oneDNN CPU kernels on by itself only on recent CPUs (AVX-512 VNNI/BF16, AMX; the course's
# 2-core machine has them); this turns them on everywhere. ``python -m utils bench --settings keras
# keras-no-onednn`` measures what they change for the ConvLSTM models.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices
_os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines
