"""Turning any dataset folder into the one features file (.npz) the models train on; reading it back.

Two steps, one module each:

* :mod:`.file_format` - the features file: :class:`FeatureSet` (keypoints, frames, labels and what describes
  each clip), :func:`save_features` and :func:`load_features` (which checks what it reads). The same arrays
  can also live in a *features store* (any path not ending in ``.npz``), a folder memory-mapped when read,
  for datasets larger than memory (:mod:`utils.data.store`); :func:`load_features` reads either.
* building features from clips: :func:`extract_features` (:mod:`.extract`) plans one job per clip and runs
  them (:mod:`.clip_jobs`: in this process, worker processes or threads). Each clip is cached as soon as it
  is done (``data/cache/features/``), so an interrupted run loses nothing: run the same command again and
  it resumes.

``from utils.data import features`` then ``features.load_features(path)``, ``features.extract_features(...)``.
"""
from utils.data.features.extract import (
                                         CACHE_VERSION,
                                         DEFAULT_HAND_SIZE,
                                         KEYPOINT_SOURCES,
                                         ExtractionReport,
                                         extract_features,
)
from utils.data.features.file_format import (
                                         CLIP_ARRAYS,
                                         CLIP_DTYPES,
                                         NUM_PARTS,
                                         FeatureSet,
                                         detection_rates,
                                         is_npz_path,
                                         load_features,
                                         save_features,
)

__all__ = ["CACHE_VERSION", "CLIP_ARRAYS", "CLIP_DTYPES", "DEFAULT_HAND_SIZE", "KEYPOINT_SOURCES",
           "NUM_PARTS", "ExtractionReport", "FeatureSet", "detection_rates", "extract_features",
           "is_npz_path", "load_features", "save_features"]
