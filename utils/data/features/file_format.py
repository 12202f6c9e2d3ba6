"""The features file: :class:`FeatureSet` (what one holds), :func:`save_features` and :func:`load_features`.

The file's contract is written out in data/README.md. In short, N clips of T frames:
``keypoints`` float32 (N, T, 1662) in the original project's order (face, pose, left hand, right hand),
``frames`` uint8 (N, T, S, S, 3) RGB thumbnails (absent for MP_Data, which has no video),
``labels`` int64 (N,), ``classes`` str (C,), ``groups``/``split``/``paths`` str (N,),
``detected`` bool (N, T, 4), ``hand_crops`` uint8 (N, T, 2, C, C, 3) (left, right hand; absent when
extracted with ``hand_size=0`` or for MP_Data) and ``meta`` (a JSON string).

The same arrays can also live in a *features store* (any path not ending in ``.npz``): a folder with one
uncompressed ``.npy`` per array, written clip by clip and memory-mapped when read, for datasets larger than
memory (:mod:`utils.data.store`). :func:`load_features` reads either, and checks what it reads.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import FeatureFileError

NUM_PARTS = 4  # face, pose, left hand, right hand (see utils.keypoints.PARTS)


# ----------------------------------------------------------------------------- the feature set
@dataclass
class FeatureSet:
    """The content of a features file: keypoints, frames, labels and what describes each clip."""

    keypoints: np.ndarray  # float32 (N, T, 1662)
    frames: np.ndarray | None  # uint8 (N, T, S, S, 3), None for keypoint-only sources (MP_Data)
    labels: np.ndarray  # int64 (N,)
    classes: list[str]
    groups: np.ndarray  # str (N,), "" when unknown
    split: np.ndarray  # str (N,), "train" / "val" / "test" or ""
    paths: np.ndarray  # str (N,), relative to the source folder
    detected: np.ndarray | None = None  # bool (N, T, 4)
    meta: dict = field(default_factory=dict)
    hand_crops: np.ndarray | None = None  # uint8 (N, T, 2, C, C, 3), left and right hand; None without
    source_frames: np.ndarray | None = None  # int64 (N,): frames of each source clip before sampling to T
    source_fps: np.ndarray | None = None  # float32 (N,): frame rate of each source video, NaN when unknown

    def __len__(self) -> int:
        """Number of clips N."""
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return len(self.classes)

    @property
    def num_frames(self) -> int:
        """Frames per clip T."""
        return int(self.keypoints.shape[1])

    @property
    def image_size(self) -> int | None:
        """Thumbnail side S in pixels, None without frames."""
        return None if self.frames is None else int(self.frames.shape[2])

    def subset(self, indices: np.ndarray | list[int]) -> FeatureSet:
        """The clips at indices (same classes, so labels keep their meaning)."""
        indices = np.asarray(indices, dtype=np.int64)
        pick = lambda array: None if array is None else array[indices]  # noqa: E731
        return FeatureSet(keypoints=self.keypoints[indices], frames=pick(self.frames),
                          labels=self.labels[indices], classes=list(self.classes),
                          groups=self.groups[indices], split=self.split[indices], paths=self.paths[indices],
                          detected=pick(self.detected), meta=dict(self.meta),
                          hand_crops=pick(self.hand_crops), source_frames=pick(self.source_frames),
                          source_fps=pick(self.source_fps))


def write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed .npz through a temporary file and a rename, so no half-written file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


CLIP_ARRAYS = ("keypoints", "frames", "detected", "hand_crops")  # one row per clip: memory-mapped in a store
CLIP_DTYPES = {"keypoints": np.float32, "frames": np.uint8, "detected": bool, "hand_crops": np.uint8}


def is_npz_path(path: str | Path) -> bool:
    """True when path names a single .npz features file; any other name is a features store folder."""
    return Path(path).suffix.lower() == ".npz"


def _columns(features: FeatureSet) -> dict[str, np.ndarray]:
    """The (N,) arrays of a FeatureSet that describe each clip, with their file dtypes."""
    columns = {"labels": np.asarray(features.labels, dtype=np.int64),
               "groups": np.asarray(features.groups, dtype=str),
               "split": np.asarray(features.split, dtype=str), "paths": np.asarray(features.paths, dtype=str)}
    if features.source_frames is not None:
        columns["source_frames"] = np.asarray(features.source_frames, dtype=np.int64)
    if features.source_fps is not None:
        columns["source_fps"] = np.asarray(features.source_fps, dtype=np.float32)
    return columns


def _finite_clip(path: Path, row: int, clip: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The clip unchanged; FeatureFileError when its keypoints hold NaN/inf (a store is checked as it is
    written)."""
    if not np.isfinite(clip["keypoints"]).all():
        raise FeatureFileError(f"{path}: keypoints of clip {row} hold NaN/inf values; fix or drop that clip")
    return clip


def save_features(path: str | Path, features: FeatureSet) -> Path:
    """Write a FeatureSet atomically: one compressed .npz when path ends in .npz, else a features store folder
    (:mod:`utils.store`, written clip by clip)."""
    from utils.data import store

    path = Path(path)
    clip_arrays = {name: getattr(features,
                                 name) for name in CLIP_ARRAYS if getattr(features, name) is not None}
    if not is_npz_path(path):
        clips = (_finite_clip(path, row, {name: values[row] for name, values in clip_arrays.items()})
                 for row in range(len(features)))
        return store.write_store(path, clips, len(features), _columns(features), list(features.classes),
                                 features.meta, CLIP_DTYPES)
    arrays = {name: np.asarray(values, dtype=CLIP_DTYPES[name]) for name, values in clip_arrays.items()}
    arrays.update(_columns(features))
    arrays["classes"] = np.asarray(list(features.classes), dtype=str)
    arrays["meta"] = np.asarray(json.dumps(features.meta, ensure_ascii=False))
    write_npz_atomically(path, arrays)
    return path


# ----------------------------------------------------------------------------- loading with checks
def _problem(path: Path, text: str) -> FeatureFileError:
    """A FeatureFileError naming the file, the problem and the way out."""
    return FeatureFileError(f"{path}: {text}. Re-create it with `python -m utils extract <dataset> --out "
                            f"{path}`.")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz (no pickles), or FeatureFileError when it is missing or unreadable."""
    if not path.is_file():
        raise FeatureFileError(f"{path}: features file (or store folder) not found. Create it with "
                               f"`python -m utils extract <dataset folder or 'synthetic'> --out {path}`.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as error:  # BadZipFile, ValueError (pickled object), OSError ...
        raise _problem(path,
                       f"not a readable .npz features file ({type(error).__name__}: {error})") from error


def _check_shape(path: Path, arrays: dict[str, np.ndarray], name: str, shape: tuple) -> None:
    """FeatureFileError when arrays[name] does not have the expected shape (None = any length)."""
    actual = arrays[name].shape
    if len(actual) != len(shape) or any(want is not None and want != got for want, got in zip(shape, actual)):
        wanted = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise _problem(path, f"array '{name}' has shape {actual}, expected {wanted}")


def _as_dtype(array: Any, dtype: Any) -> Any:
    """array with dtype: unchanged when it already has it (a store's memory-mapped array stays unread)."""
    return array if array.dtype == np.dtype(dtype) else np.asarray(array).astype(dtype)


def _validated(path: Path, arrays: dict[str, Any], check_values: bool = True) -> FeatureSet:
    """A FeatureSet from raw arrays, after checking names, shapes, label range and (check_values) finite
    keypoints."""
    missing = [name for name in ("keypoints", "labels", "classes") if name not in arrays]
    if missing:
        raise _problem(path,
                       f"missing array(s) {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'})")
    keypoints = arrays["keypoints"]
    if keypoints.ndim != 3 or keypoints.shape[2] != KEYPOINT_DIM:
        raise _problem(path,
                       f"array 'keypoints' has shape {keypoints.shape}, expected (N, T, {KEYPOINT_DIM})")
    num_clips, num_frames = keypoints.shape[:2]
    _check_shape(path, arrays, "labels", (num_clips,))
    _check_shape(path, arrays, "classes", (None,))
    if "frames" in arrays:
        _check_shape(path, arrays, "frames", (num_clips, num_frames, None, None, 3))
        if arrays["frames"].shape[2] != arrays["frames"].shape[3]:
            raise _problem(path, f"frames are not square: {arrays['frames'].shape}")
    if "detected" in arrays:
        _check_shape(path, arrays, "detected", (num_clips, num_frames, NUM_PARTS))
    if "hand_crops" in arrays:
        _check_shape(path, arrays, "hand_crops", (num_clips, num_frames, 2, None, None, 3))
    for name in ("groups", "split", "paths", "source_frames", "source_fps"):
        if name in arrays:
            _check_shape(path, arrays, name, (num_clips,))
    labels, classes = arrays["labels"], arrays["classes"]
    if not np.issubdtype(labels.dtype, np.integer):
        raise _problem(path, f"labels must be integers, got {labels.dtype}")
    if num_clips and (labels.min() < 0 or labels.max() >= len(classes)):
        raise _problem(path,
                       f"labels range over {labels.min()}..{labels.max()} but there are {len(classes)} "
                       "classes")
    bad = ~np.isfinite(keypoints) if check_values else np.zeros(1, dtype=bool)
    if bad.any():
        clip = int(np.argwhere(bad)[0][0])
        raise _problem(path, f"keypoints hold {int(bad.sum())} NaN/inf values (first in clip {clip})")
    empty = np.full(num_clips, "", dtype=str)
    meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    return FeatureSet(
        keypoints=_as_dtype(keypoints, np.float32),
        frames=arrays.get("frames"),
        labels=labels.astype(np.int64),
        classes=[str(c) for c in classes],
        groups=arrays.get("groups", empty).astype(str),
        split=arrays.get("split", empty).astype(str),
        paths=arrays.get("paths", empty).astype(str),
        detected=None if "detected" not in arrays else _as_dtype(arrays["detected"], bool),
        meta=meta,
        hand_crops=arrays.get("hand_crops"),
        source_frames=arrays["source_frames"].astype(np.int64) if "source_frames" in arrays else None,
        source_fps=arrays["source_fps"].astype(np.float32) if "source_fps" in arrays else None,
    )


def load_features(path: str | Path) -> FeatureSet:
    """Read a features .npz, or open a features store folder, and check it; FeatureFileError names the
    problem.

    From a store, the clip arrays (keypoints, frames, hand crops, detected) are
    :class:`utils.store.MappedArray`: nothing of them is read until clips are indexed, and only those clips
    are (see :mod:`utils.store`). Their keypoints were checked finite when the store was written.
    """
    from utils.data import store

    path = Path(path)
    if path.is_dir():
        arrays, classes, meta = store.read_store(path)
        return _validated(path, {**arrays, "classes": np.asarray(classes, dtype=str),
                                 "meta": np.asarray(json.dumps(meta))}, check_values=False)
    return _validated(path, _read_npz(path))


def detection_rates(features: FeatureSet) -> pandas.DataFrame:  # noqa: F821
    """Share of frames in which each part (face, pose, left, right hand) was found, per class and overall."""
    import pandas as pd

    from utils.data.keypoints import PARTS, parts_present

    detected = features.detected if features.detected is not None else parts_present(features.keypoints)
    rows = {name: detected[features.labels == index].reshape(-1, len(PARTS)).mean(axis=0)
            for index, name in enumerate(features.classes)}
    rows["all clips"] = detected.reshape(-1, len(PARTS)).mean(axis=0)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(PARTS))
