"""Helpers for the course "Skeleton-based sign-language and action recognition".

Modules, each named after what it holds (see ARCHITECTURE in the README):
``video``, ``keypoints``, ``synthetic``, ``datasets``, ``features``, ``splits``,
``preprocessing``, ``models``, ``training``, ``evaluation``, ``plots``, ``inference``.
Import the module you need (``from utils import keypoints``); importing ``utils``
itself stays cheap and never loads TensorFlow or MediaPipe.
"""
__version__ = "0.1.0"
