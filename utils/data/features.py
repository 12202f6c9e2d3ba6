"""Turning any dataset folder into the one features file (.npz) the models train on; reading it back.

The file's contract is written out in data/README.md. In short, N clips of T frames:
``keypoints`` float32 (N, T, 1662) in the original project's order (face, pose, left hand, right hand),
``frames`` uint8 (N, T, S, S, 3) RGB thumbnails (absent for MP_Data, which has no video),
``labels`` int64 (N,), ``classes`` str (C,), ``groups``/``split``/``paths`` str (N,),
``detected`` bool (N, T, 4), ``hand_crops`` uint8 (N, T, 2, C, C, 3) (left, right hand; absent when
extracted with ``hand_size=0`` or for MP_Data) and ``meta`` (a JSON string).

The same arrays can also live in a *features store* (any ``--out`` not ending in ``.npz``): a folder with one
uncompressed ``.npy`` per array, written clip by clip and memory-mapped when read, for datasets larger than
memory (:mod:`utils.store`). :func:`load_features` reads either.

Extraction keeps one small cache file per clip (``data/cache/features/``), written as soon as the clip
is done, so an interrupted run loses nothing: run the same command again and it resumes.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from utils import paths
from utils.config import EXTRACT_PARALLEL, EXTRACT_PARALLEL_MODES, IMAGE_SIZE, MEDIAPIPE_SIZE, NUM_FRAMES
from utils.data.datasets import ClipRecord, discover, resolve_dataset
from utils.errors import DatasetError, FeatureFileError, ensure_writable_folder
from utils.data.keypoints import KEYPOINT_DIM, hand_crops, mp_data_to_original, parts_present

CACHE_VERSION = 2  # bump when the content of a cached clip changes, so old caches are not reused
KEYPOINT_SOURCES = ("auto", "mediapipe", "stored")
DEFAULT_HAND_SIZE = 32  # side C of the hand crops in pixels; 0 = no crops
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
        return FeatureSet(keypoints=self.keypoints[indices], frames=pick(self.frames), labels=self.labels[indices],
                          classes=list(self.classes), groups=self.groups[indices], split=self.split[indices],
                          paths=self.paths[indices], detected=pick(self.detected), meta=dict(self.meta),
                          hand_crops=pick(self.hand_crops), source_frames=pick(self.source_frames),
                          source_fps=pick(self.source_fps))


def _write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
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
    columns = {"labels": np.asarray(features.labels, dtype=np.int64), "groups": np.asarray(features.groups, dtype=str),
               "split": np.asarray(features.split, dtype=str), "paths": np.asarray(features.paths, dtype=str)}
    if features.source_frames is not None:
        columns["source_frames"] = np.asarray(features.source_frames, dtype=np.int64)
    if features.source_fps is not None:
        columns["source_fps"] = np.asarray(features.source_fps, dtype=np.float32)
    return columns


def _finite_clip(path: Path, row: int, clip: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The clip unchanged; FeatureFileError when its keypoints hold NaN/inf (a store is checked as it is written)."""
    if not np.isfinite(clip["keypoints"]).all():
        raise FeatureFileError(f"{path}: keypoints of clip {row} hold NaN/inf values; fix or drop that clip")
    return clip


def save_features(path: str | Path, features: FeatureSet) -> Path:
    """Write a FeatureSet atomically: one compressed .npz when path ends in .npz, else a features store folder
    (:mod:`utils.store`, written clip by clip)."""
    from utils.data import store

    path = Path(path)
    clip_arrays = {name: getattr(features, name) for name in CLIP_ARRAYS if getattr(features, name) is not None}
    if not is_npz_path(path):
        clips = (_finite_clip(path, row, {name: values[row] for name, values in clip_arrays.items()})
                 for row in range(len(features)))
        return store.write_store(path, clips, len(features), _columns(features), list(features.classes),
                                 features.meta, CLIP_DTYPES)
    arrays = {name: np.asarray(values, dtype=CLIP_DTYPES[name]) for name, values in clip_arrays.items()}
    arrays.update(_columns(features))
    arrays["classes"] = np.asarray(list(features.classes), dtype=str)
    arrays["meta"] = np.asarray(json.dumps(features.meta, ensure_ascii=False))
    _write_npz_atomically(path, arrays)
    return path


# ----------------------------------------------------------------------------- loading with checks
def _problem(path: Path, text: str) -> FeatureFileError:
    """A FeatureFileError naming the file, the problem and the way out."""
    return FeatureFileError(f"{path}: {text}. Re-create it with `python -m utils extract <dataset> --out {path}`.")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz (no pickles), or FeatureFileError when it is missing or unreadable."""
    if not path.is_file():
        raise FeatureFileError(f"{path}: features file (or store folder) not found. Create it with "
                               f"`python -m utils extract <dataset folder or 'synthetic'> --out {path}`.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as error:  # BadZipFile, ValueError (pickled object), OSError ...
        raise _problem(path, f"not a readable .npz features file ({type(error).__name__}: {error})") from error


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
    """A FeatureSet from raw arrays, after checking names, shapes, label range and (check_values) finite keypoints."""
    missing = [name for name in ("keypoints", "labels", "classes") if name not in arrays]
    if missing:
        raise _problem(path, f"missing array(s) {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'})")
    keypoints = arrays["keypoints"]
    if keypoints.ndim != 3 or keypoints.shape[2] != KEYPOINT_DIM:
        raise _problem(path, f"array 'keypoints' has shape {keypoints.shape}, expected (N, T, {KEYPOINT_DIM})")
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
        raise _problem(path, f"labels range over {labels.min()}..{labels.max()} but there are {len(classes)} classes")
    bad = ~np.isfinite(keypoints) if check_values else np.zeros(1, dtype=bool)
    if bad.any():
        clip = int(np.argwhere(bad)[0][0])
        raise _problem(path, f"keypoints hold {int(bad.sum())} NaN/inf values (first in clip {clip})")
    empty = np.full(num_clips, "", dtype=str)
    meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    return FeatureSet(keypoints=_as_dtype(keypoints, np.float32), frames=arrays.get("frames"),
                      labels=labels.astype(np.int64), classes=[str(c) for c in classes],
                      groups=arrays.get("groups", empty).astype(str), split=arrays.get("split", empty).astype(str),
                      paths=arrays.get("paths", empty).astype(str),
                      detected=None if "detected" not in arrays else _as_dtype(arrays["detected"], bool), meta=meta,
                      hand_crops=arrays.get("hand_crops"),
                      source_frames=arrays["source_frames"].astype(np.int64) if "source_frames" in arrays else None,
                      source_fps=arrays["source_fps"].astype(np.float32) if "source_fps" in arrays else None)


def load_features(path: str | Path) -> FeatureSet:
    """Read a features .npz, or open a features store folder, and check it; FeatureFileError names the problem.

    From a store, the clip arrays (keypoints, frames, hand crops, detected) are :class:`utils.store.MappedArray`:
    nothing of them is read until clips are indexed, and only those clips are (see :mod:`utils.store`). Their
    keypoints were checked finite when the store was written.
    """
    from utils.data import store

    path = Path(path)
    if path.is_dir():
        arrays, classes, meta = store.read_store(path)
        return _validated(path, {**arrays, "classes": np.asarray(classes, dtype=str),
                                 "meta": np.asarray(json.dumps(meta))}, check_values=False)
    return _validated(path, _read_npz(path))


# ----------------------------------------------------------------------------- one clip
@dataclass(frozen=True)
class _ClipJob:
    """Everything a worker process needs to turn one clip into its cache file."""

    source: str  # absolute path of the clip (a video, or an MP_Data sequence folder)
    relative: str  # path relative to the dataset folder, for messages and the features file
    mode: str  # "mediapipe", "stored" (synthetic keypoints beside the video) or "mp_data"
    keypoints_path: str | None
    num_frames: int
    image_size: int
    cache_path: str
    hand_size: int = 0  # side of the hand crops, 0 = none
    mediapipe_size: int = 0  # longer side of the frames MediaPipe sees, 0 = full resolution


class _ExtractorHolder:
    """One MediaPipe Holistic extractor, created on first use and reused for every clip."""

    def __init__(self) -> None:
        self._extractor = None

    def get(self, max_side: int = 0):
        """The extractor for frames shrunk to a longer side of max_side (0 = full), created now if needed."""
        if self._extractor is not None and getattr(self._extractor, "max_side", max_side) != max_side:
            self.close()
        if self._extractor is None:
            from utils.data.keypoints import HolisticExtractor

            self._extractor = HolisticExtractor(max_side=max_side)
        return self._extractor

    def close(self) -> None:
        """Free the extractor (and its MediaPipe graph)."""
        if self._extractor is not None and hasattr(self._extractor, "close"):
            self._extractor.close()
        self._extractor = None


_WORKER_EXTRACTOR = _ExtractorHolder()  # one per worker process


def _mp_data_frames(folder: Path) -> np.ndarray:
    """The (F, 1662) float64 keypoints of one MP_Data sequence folder, frames in numeric order."""
    files = sorted((f for f in folder.iterdir() if f.suffix == ".npy" and f.stem.isdigit()),
                   key=lambda f: int(f.stem))
    if not files:
        raise FeatureFileError(f"{folder}: no numbered .npy frames")
    frames = [np.load(f, allow_pickle=False).reshape(-1) for f in files]
    wrong = [f.name for f, frame in zip(files, frames) if frame.shape != (KEYPOINT_DIM,)]
    if wrong:
        raise FeatureFileError(f"{folder}: frame(s) {', '.join(wrong[:3])} do not hold {KEYPOINT_DIM} numbers")
    return np.stack(frames)


def _stored_keypoints(keypoints_path: str | None, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and detected flags stored beside a synthetic clip, at the sampled frame indices."""
    if keypoints_path is None or not Path(keypoints_path).is_file():
        raise FeatureFileError(f"{keypoints_path}: stored keypoints not found (use keypoints_from='mediapipe')")
    with np.load(keypoints_path, allow_pickle=False) as data:
        keypoints = data["keypoints"]
        detected = data["detected"] if "detected" in data.files else parts_present(keypoints)
    if indices.max() >= len(keypoints):
        raise FeatureFileError(f"{keypoints_path}: holds {len(keypoints)} frames but the video has more")
    return keypoints[indices].astype(np.float32), detected[indices].astype(bool)


def _extract_clip(job: _ClipJob, extractors: _ExtractorHolder) -> dict[str, np.ndarray]:
    """Frames, keypoints and detected flags of one clip (T frames each)."""
    from utils.data import video

    if job.mode == "mp_data":
        sequence = _mp_data_frames(Path(job.source))
        indices, padded = video.sample_frame_indices(len(sequence), job.num_frames)
        keypoints = mp_data_to_original(sequence[indices]).astype(np.float32)
        return {"keypoints": keypoints, "detected": parts_present(keypoints), "padded": np.asarray(padded),
                "source_frames": np.asarray(len(sequence)), "source_fps": np.asarray(np.nan)}
    clip = video.load_clip(job.source, job.num_frames, job.image_size)
    if job.mode == "stored":
        keypoints, detected = _stored_keypoints(job.keypoints_path, clip.indices)
    else:
        keypoints, detected = extractors.get(job.mediapipe_size).extract(clip.frames)
    arrays = {"keypoints": np.asarray(keypoints, dtype=np.float32), "detected": np.asarray(detected, dtype=bool),
              "frames": clip.thumbnails, "padded": np.asarray(clip.padded),
              "source_frames": np.asarray(clip.num_source_frames), "source_fps": np.asarray(clip.fps)}
    if job.hand_size > 0:  # from the full-resolution frames, where the hand has most pixels
        arrays["hand_crops"] = hand_crops(clip.frames, arrays["keypoints"], job.hand_size)
    return arrays


def _run_job(job: _ClipJob, extractors: _ExtractorHolder | None = None) -> str | None:
    """Extract one clip into its cache file; return None, or why the clip could not be read."""
    try:
        arrays = _extract_clip(job, extractors or _WORKER_EXTRACTOR)
        if arrays["keypoints"].shape != (job.num_frames, KEYPOINT_DIM):
            return f"keypoints came out with shape {arrays['keypoints'].shape}"
        if not np.isfinite(arrays["keypoints"]).all():
            return "keypoints contain NaN/inf"
        _write_npz_atomically(Path(job.cache_path), arrays)
    except Exception as error:  # any unreadable clip is skipped and listed, never the end of the run
        return f"{type(error).__name__}: {error}"
    return None


# ----------------------------------------------------------------------------- planning
def _signature(path: Path) -> tuple[int, int]:
    """Size and latest modification time (ns) of a file, or of all files in a folder."""
    if path.is_dir():
        stats = [f.stat() for f in path.iterdir() if f.is_file()]
        return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _cache_path(root: Path, record: ClipRecord, num_frames: int, image_size: int, mode: str,
                hand_size: int = 0, mediapipe_size: int = 0) -> Path:
    """Cache file of one clip, named by a hash of what its content depends on."""
    try:
        size, mtime = _signature(record.path)
    except OSError:
        size, mtime = -1, -1  # unreadable: the worker will report why
    stored = record.keypoints_path if mode == "stored" else None
    extra = _signature(stored) if stored is not None and stored.is_file() else ()
    key = json.dumps([CACHE_VERSION, str(root.resolve()), _relative(root, record.path), size, mtime,
                      num_frames, image_size, mode, list(extra), int(hand_size)]
                     + ([int(mediapipe_size)] if mode == "mediapipe" and mediapipe_size else []))  # 0: old key
    return paths.CACHE_DIR / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def _relative(root: Path, path: Path) -> str:
    """A clip's path relative to the dataset folder, as posix text (with '..' when a manifest points outside)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def _clip_mode(record: ClipRecord, video_mode: str) -> str:
    """Where one clip's keypoints come from: 'mp_data' for a sequence folder, else the dataset's video mode."""
    return "mp_data" if record.source == "mp_data" else video_mode


def _keypoint_mode(kind: str, keypoints_from: str) -> str:
    """Where keypoints come from for the videos of this dataset kind: 'mediapipe', 'stored' or 'mp_data'."""
    if keypoints_from not in KEYPOINT_SOURCES:
        raise DatasetError(f"keypoints_from={keypoints_from!r}; use one of {', '.join(KEYPOINT_SOURCES)}")
    if kind == "mp_data":
        if keypoints_from == "mediapipe":
            raise DatasetError("an MP_Data folder holds keypoints only (no video to run MediaPipe on); "
                               "use keypoints_from='auto'")
        return "mp_data"
    if keypoints_from == "stored" and kind != "synthetic":
        raise DatasetError(f"a {kind} dataset has no stored keypoints (only the synthetic one has); "
                           "use keypoints_from='auto' or 'mediapipe'")
    if keypoints_from == "auto":
        return "stored" if kind == "synthetic" else "mediapipe"
    return keypoints_from


def _clip_hand_size(record: ClipRecord, video_mode: str, hand_size: int) -> int:
    """The hand-crop size for one clip: 0 for an MP_Data sequence (no video to crop)."""
    return 0 if _clip_mode(record, video_mode) == "mp_data" else int(hand_size)


def _take_balanced(records: list[ClipRecord], limit: int | None) -> list[ClipRecord]:
    """The first `limit` records taken in turn from each class (all when limit is None)."""
    if limit is None or limit >= len(records):
        return records
    by_class: dict[str, list[ClipRecord]] = {}
    for record in records:
        by_class.setdefault(record.label, []).append(record)
    queues = [by_class[label] for label in sorted(by_class)]
    taken = [queue[row] for row in range(max(map(len, queues))) for queue in queues if row < len(queue)]
    chosen = {id(r) for r in taken[:max(0, int(limit))]}
    return [r for r in records if id(r) in chosen]


# ----------------------------------------------------------------------------- running the jobs
def _run_in_process(jobs: list[_ClipJob], bar) -> dict[str, str]:
    """Run jobs one after another here; return {relative path: reason} of the clips that failed."""
    failures, extractors = {}, _ExtractorHolder()
    try:
        for job in jobs:
            reason = _run_job(job, extractors)
            if reason:
                failures[job.relative] = reason
            bar.update(1)
    finally:
        extractors.close()
    return failures


def _quiet_worker() -> None:
    """Start a worker process: no TensorFlow/MediaPipe start-up chatter, and no TensorFlow at all.

    ``import mediapipe`` imports TensorFlow when it is installed, only for its documentation tools, and
    falls back without it; a worker never needs TensorFlow, and skipping it makes each worker start with
    about 0.9 instead of 5.3 CPU-seconds (measured on the 2-core machine).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    sys.modules.setdefault("tensorflow", None)  # `import tensorflow` now raises ModuleNotFoundError here


def largest_first(jobs: list[_ClipJob]) -> list[_ClipJob]:
    """The jobs, largest source file first: the workers then finish at about the same time.

    A clip's work (decoding every frame, MediaPipe on the sampled ones) grows with its file; handed out in
    dataset order, a long clip that comes last keeps one worker busy while the others wait (3 real 720p-1080p
    clips on 2 workers: one worker decoded 94 + 153 frames, the other 117). The features file keeps the
    dataset's order whatever order the clips are extracted in."""
    def size(job: _ClipJob) -> int:
        path = Path(job.source)
        return path.stat().st_size if path.is_file() else 0

    return sorted(jobs, key=size, reverse=True)


def _collect(pending: dict, bar) -> dict[str, str]:
    """Wait for the submitted clip jobs ({future: job}) as they finish, ticking the bar; return the failures."""
    failures: dict[str, str] = {}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            job = pending.pop(future)
            try:
                reason = future.result()
            except Exception as error:  # a worker process died (e.g. out of memory) or a thread raised
                reason = f"worker failed: {type(error).__name__}: {error}"
            if reason:
                failures[job.relative] = reason
            bar.update(1)
    return failures


def _run_in_pool(jobs: list[_ClipJob], workers: int, bar) -> dict[str, str]:
    """Run jobs in worker processes (each with its own extractor); return the failures."""
    import multiprocessing

    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_quiet_worker)
    try:
        failures = _collect({executor.submit(_run_job, job): job for job in largest_first(jobs)}, bar)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return failures


def _run_in_threads(jobs: list[_ClipJob], threads: int, bar) -> dict[str, str]:
    """Run jobs in `threads` threads of this process, each thread with its own MediaPipe graph; return the failures.

    A thread takes a whole clip (decode, MediaPipe on its frames in order, thumbnails, crops), so each graph sees
    one clip's frames in order, reset at the clip's start: the same landmarks as one graph running the clips one
    after the other. OpenCV and MediaPipe's ``process`` release Python's lock, so the threads overlap; unlike worker
    processes they share one MediaPipe import and start-up, and no extra copy of the libraries in memory."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if any(job.mode == "mediapipe" for job in jobs):
        from utils.data.keypoints import import_mediapipe

        import_mediapipe()  # once, here, before the threads (it keeps TensorFlow out while it runs)
    local, holders, lock = threading.local(), [], threading.Lock()

    def run(job: _ClipJob) -> str | None:
        """Extract one clip with this thread's own extractor."""
        if not hasattr(local, "holder"):
            local.holder = _ExtractorHolder()
            with lock:
                holders.append(local.holder)
        return _run_job(job, local.holder)

    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="extract")
    try:
        failures = _collect({executor.submit(run, job): job for job in largest_first(jobs)}, bar)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)  # a running clip finishes; threads cannot be killed
        raise
    finally:
        executor.shutdown(wait=True)
        for holder in holders:
            holder.close()
    return failures


def _versions() -> dict[str, str]:
    """Versions of the libraries that shape the features, read without importing them."""
    from importlib import metadata

    found = {}
    for name in ("mediapipe", "opencv-contrib-python", "opencv-python", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass
class ExtractionReport:
    """What an extraction produced: the file, how many clips, which were skipped and why, how long it took."""

    path: Path
    num_clips: int
    skipped: list[tuple[str, str]]
    seconds: float
    cache_hits: int = 0  # clips whose features were already cached (not recomputed)


class _StackingWriter:
    """The .npz counterpart of :class:`utils.store.StoreWriter`: keeps every clip, stacks and saves them at the end."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, {}

    def __enter__(self) -> _StackingWriter:
        return self

    def __exit__(self, *error: Any) -> None:
        self.rows = {}

    def put(self, row: int, clip: dict[str, np.ndarray]) -> None:
        """Keep one clip's arrays."""
        for name, values in clip.items():
            self.rows.setdefault(name, {})[row] = values

    def complete(self, num_rows: int) -> list[str]:
        """Names of the arrays every one of the first num_rows clips has."""
        return [name for name, rows in self.rows.items() if all(row in rows for row in range(num_rows))]

    def row_shape(self, name: str) -> tuple[int, ...] | None:
        """Shape of one clip of array name (None when no clip had it)."""
        return next(iter(self.rows[name].values())).shape if name in self.rows else None

    def finish(self, columns: dict[str, np.ndarray], classes: list[str], meta: dict, num_rows: int) -> Path:
        """Stack the clips and write the .npz."""
        stacked = {name: np.stack([self.rows[name][row] for row in range(num_rows)])
                   for name in self.complete(num_rows)}
        return save_features(self.path, FeatureSet(
            keypoints=stacked["keypoints"], frames=stacked.get("frames"), labels=columns["labels"], classes=classes,
            groups=columns["groups"], split=columns["split"], paths=columns["paths"], detected=stacked["detected"],
            meta=meta, hand_crops=stacked.get("hand_crops"), source_frames=columns["source_frames"],
            source_fps=columns["source_fps"]))


def _write_extracted(out: Path, root: Path, kind: str, records: list[ClipRecord], jobs: list[_ClipJob], num_frames: int,
                     image_size: int, failures: dict[str, str]) -> tuple[Path, int, list[tuple[str, str]]]:
    """Write the cached clips, one at a time, into the .npz or the store at out; return (path, clips, skipped)."""
    from utils.data import store

    candidates = [(record, job) for record, job in zip(records, jobs) if job.relative not in failures]
    skipped = [(job.relative, failures[job.relative]) for job in jobs if job.relative in failures]
    kept, lengths, num_padded = [], [], 0
    writer = _StackingWriter(out) if is_npz_path(out) else store.StoreWriter(out, len(candidates), CLIP_DTYPES)
    with writer:
        for record, job in candidates:
            try:
                with np.load(job.cache_path, allow_pickle=False) as data:
                    part = {name: data[name] for name in data.files}
            except Exception as error:  # cache removed or damaged meanwhile
                skipped.append((job.relative, f"cache unreadable ({type(error).__name__}); run again"))
                continue
            writer.put(len(kept), {name: part[name] for name in CLIP_ARRAYS if name in part})
            kept.append((record, job))
            lengths.append(_source_length(part, job))
            num_padded += bool(part["padded"])
            del part  # one clip at a time
        if not kept:
            reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:10]) or "no clips found"
            raise FeatureFileError(f"{root}: no clip could be read ({reasons}). "
                                   "Check the files play in a video player.")
        classes = sorted({record.label for record, _ in kept})
        complete = writer.complete(len(kept))
        modes = sorted({job.mode for _, job in kept})
        meta = {"source": str(root.resolve()), "kind": kind, "num_frames": num_frames,
                "image_size": image_size if "frames" in complete else None,
                "keypoints_from": modes[0] if len(modes) == 1 else "mixed",  # a manifest of videos and MP_Data folders
                "versions": _versions(),
                "hand_size": int(writer.row_shape("hand_crops")[2]) if "hand_crops" in complete else 0,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "num_padded": num_padded,
                "skipped": skipped,  # the side MediaPipe saw (0 = full resolution), None when it did not run:
                "mediapipe_size": next((job.mediapipe_size for _, job in kept if job.mode == "mediapipe"), None)}
        columns = {"labels": np.array([classes.index(record.label) for record, _ in kept], dtype=np.int64),
                   "groups": np.array([record.group for record, _ in kept], dtype=str),
                   "split": np.array([record.split for record, _ in kept], dtype=str),
                   "paths": np.array([job.relative for _, job in kept], dtype=str),
                   "source_frames": np.array([frames for frames, _ in lengths], dtype=np.int64),
                   "source_fps": np.array([fps for _, fps in lengths], dtype=np.float32)}
        path = writer.finish(columns, classes, meta, len(kept))
    return path, len(kept), skipped


def _source_length(part: dict[str, np.ndarray], job: _ClipJob) -> tuple[int, float]:
    """Frames and frame rate of a clip's source; for a clip cached before they were stored, read from the source
    (the container's frame count and fps; the number of .npy frames of an MP_Data sequence, fps unknown)."""
    if "source_frames" in part:
        return int(part["source_frames"]), float(part["source_fps"])
    if job.mode == "mp_data":
        return sum(1 for f in Path(job.source).iterdir() if f.suffix == ".npy" and f.stem.isdigit()), float("nan")
    from utils.data.video import video_info

    info = video_info(job.source, count=False)
    return int(info.num_frames), float(info.fps)


def extract_features(source: str | Path, out: str | Path, num_frames: int = NUM_FRAMES, image_size: int = IMAGE_SIZE,
                     workers: int | None = None, keypoints_from: str = "auto", limit: int | None = None,
                     progress: bool = True, hand_size: int = DEFAULT_HAND_SIZE,
                     mediapipe_size: int = MEDIAPIPE_SIZE, parallel: str = EXTRACT_PARALLEL) -> ExtractionReport:
    """Extract every clip of a dataset folder (or 'synthetic', 'asl', 'ucf11') into one features .npz (``out`` ends
    in .npz) or a features store folder (any other name; written clip by clip, see :mod:`utils.store`).

    ``hand_size``: side in pixels of the crops around each hand (``hand_crops``), 0 for none.
    ``mediapipe_size``: longer side of the frames MediaPipe sees (0 = full resolution), recorded in the
    file's meta; hand crops and thumbnails are cut from the full-resolution frames either way.
    ``workers`` clips run at once (default: one per core), as threads of this process (``parallel="threads"``,
    each thread its own MediaPipe graph) or as worker processes (``"processes"``); the file is the same.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if int(num_frames) < 1 or int(image_size) < 1:
        raise DatasetError(f"num_frames and image_size must be positive, got {num_frames} and {image_size}")
    if int(hand_size) < 0:
        raise DatasetError(f"hand_size must be 0 (no hand crops) or a positive number of pixels, got {hand_size}")
    if int(mediapipe_size) < 0:
        raise DatasetError(f"mediapipe_size must be 0 (full resolution) or a positive number of pixels, "
                           f"got {mediapipe_size}")
    if parallel not in EXTRACT_PARALLEL_MODES:
        raise DatasetError(f"parallel={parallel!r}; use one of {', '.join(EXTRACT_PARALLEL_MODES)}")
    ensure_writable_folder(Path(out).expanduser().resolve().parent, "features file")  # fail before the work
    root = resolve_dataset(source)
    kind, records = discover(root)
    video_mode = _keypoint_mode(kind, keypoints_from)
    records = _take_balanced(records, limit)
    jobs = [_ClipJob(source=str(r.path.resolve()), relative=_relative(root, r.path), mode=_clip_mode(r, video_mode),
                     keypoints_path=str(r.keypoints_path) if r.keypoints_path else None, num_frames=int(num_frames),
                     image_size=int(image_size), hand_size=_clip_hand_size(r, video_mode, hand_size),
                     mediapipe_size=int(mediapipe_size),
                     cache_path=str(_cache_path(root, r, num_frames, image_size, _clip_mode(r, video_mode),
                                                _clip_hand_size(r, video_mode, hand_size), int(mediapipe_size))))
            for r in records]
    todo = [job for job in jobs if not Path(job.cache_path).is_file()]
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(todo) or 1))
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"extract {root.name}", unit="clip",
              disable=not progress) as bar:
        if workers == 1 or all(job.mode == "mp_data" for job in todo):  # reading .npy files needs no pool
            failures = _run_in_process(todo, bar)
        elif parallel == "threads":
            failures = _run_in_threads(todo, workers, bar)
        else:
            failures = _run_in_pool(todo, workers, bar)
    path, num_clips, skipped = _write_extracted(Path(out), root, kind, records, jobs, num_frames, image_size, failures)
    if skipped:
        print(f"skipped {len(skipped)} of {len(jobs)} clips:", *(f"  {p}: {r}" for p, r in skipped),
              sep="\n", file=sys.stderr)
    return ExtractionReport(path=path, num_clips=num_clips, skipped=skipped,
                            seconds=time.perf_counter() - started, cache_hits=len(jobs) - len(todo))


def detection_rates(features: FeatureSet) -> "pandas.DataFrame":  # noqa: F821
    """Share of frames in which each part (face, pose, left, right hand) was found, per class and overall."""
    import pandas as pd

    from utils.data.keypoints import PARTS, parts_present

    detected = features.detected if features.detected is not None else parts_present(features.keypoints)
    rows = {name: detected[features.labels == index].reshape(-1, len(PARTS)).mean(axis=0)
            for index, name in enumerate(features.classes)}
    rows["all clips"] = detected.reshape(-1, len(PARTS)).mean(axis=0)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(PARTS))
