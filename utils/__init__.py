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
# TensorFlow's oneDNN CPU kernels are off by default on CPUs without AVX-512 and make the models' training
# about 3x faster there (``python -m utils bench`` measures it).
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices
_os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines
