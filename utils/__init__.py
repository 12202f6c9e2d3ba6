"""Helpers for the course "Skeleton-based sign-language and action recognition".

Modules, each named after what it holds (see ARCHITECTURE in the README):
``video``, ``keypoints``, ``synthetic``, ``datasets``, ``features``, ``splits``,
``preprocessing``, ``models``, ``training``, ``evaluation``, ``plots``, ``inference``.
Import the module you need (``from utils import keypoints``); importing ``utils``
itself stays cheap and never loads TensorFlow or MediaPipe.
"""
__version__ = "0.1.0"

import os as _os

# TensorFlow's oneDNN CPU kernels are off by default on some CPUs and make the models' training about 3x
# faster there; the switch only works before TensorFlow is first imported, so it is set here.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
