"""Building features from clips: :func:`extract_features` turns a dataset folder into one features file.

It plans one job per clip (where its cache lives, where its keypoints come from), runs the jobs that are not
cached yet (:mod:`.clip_jobs`), then stacks every clip into a ``.npz`` file or a features store. Run the same
command again after an interruption and it resumes from the cache (``data/cache/features/``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from utils import paths
from utils.config import EXTRACT_PARALLEL, EXTRACT_PARALLEL_MODES, IMAGE_SIZE, MEDIAPIPE_SIZE, NUM_FRAMES
from utils.data.datasets import ClipRecord, discover, resolve_dataset
from utils.data.features.clip_jobs import ClipJob, run_in_pool, run_in_process, run_in_threads
from utils.data.features.file_format import CLIP_ARRAYS, CLIP_DTYPES, FeatureSet, is_npz_path, save_features
from utils.errors import DatasetError, FeatureFileError, ensure_writable_folder

CACHE_VERSION = 2  # bump when the content of a cached clip changes, so old caches are not reused
KEYPOINT_SOURCES = ("auto", "mediapipe", "stored")
DEFAULT_HAND_SIZE = 32  # side C of the hand crops in pixels; 0 = no crops


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
                     # 0: old key
                     + ([int(mediapipe_size)] if mode == "mediapipe" and mediapipe_size else []))
    return paths.CACHE_DIR / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def _relative(root: Path, path: Path) -> str:
    """A clip's path relative to the dataset folder, as posix text (with '..' when a manifest points
    outside)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def _clip_mode(record: ClipRecord, video_mode: str) -> str:
    """Where one clip's keypoints come from: 'mp_data' for a sequence folder, else the dataset's video
    mode."""
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
    """The .npz counterpart of :class:`utils.store.StoreWriter`: keeps every clip, stacks and saves them at
    the end."""

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
            keypoints=stacked["keypoints"], frames=stacked.get("frames"), labels=columns["labels"],
            classes=classes, groups=columns["groups"], split=columns["split"], paths=columns["paths"],
            detected=stacked["detected"], meta=meta, hand_crops=stacked.get("hand_crops"),
            source_frames=columns["source_frames"], source_fps=columns["source_fps"]))


def _write_extracted(out: Path, root: Path, kind: str, records: list[ClipRecord], jobs: list[ClipJob],
                     num_frames: int, image_size: int,
                     failures: dict[str, str]) -> tuple[Path, int, list[tuple[str, str]]]:
    """Write the cached clips, one at a time, into the .npz or the store at out; return (path, clips,
    skipped)."""
    from utils.data import store

    candidates = [(record, job) for record, job in zip(records, jobs) if job.relative not in failures]
    skipped = [(job.relative, failures[job.relative]) for job in jobs if job.relative in failures]
    kept, lengths, num_padded = [], [], 0
    writer = (
        _StackingWriter(out) if is_npz_path(out) else store.StoreWriter(out, len(candidates), CLIP_DTYPES)
    )
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
                # a manifest of videos and MP_Data folders
                "keypoints_from": modes[0] if len(modes) == 1 else "mixed",
                "versions": _versions(),
                "hand_size": int(writer.row_shape("hand_crops")[2]) if "hand_crops" in complete else 0,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "num_padded": num_padded,
                "skipped": skipped,  # the side MediaPipe saw (0 = full resolution), None when it did not run:
                "mediapipe_size": next((job.mediapipe_size for _, job in kept if job.mode == "mediapipe"),
                                       None)}
        columns = {"labels": np.array([classes.index(record.label) for record, _ in kept], dtype=np.int64),
                   "groups": np.array([record.group for record, _ in kept], dtype=str),
                   "split": np.array([record.split for record, _ in kept], dtype=str),
                   "paths": np.array([job.relative for _, job in kept], dtype=str),
                   "source_frames": np.array([frames for frames, _ in lengths], dtype=np.int64),
                   "source_fps": np.array([fps for _, fps in lengths], dtype=np.float32)}
        path = writer.finish(columns, classes, meta, len(kept))
    return path, len(kept), skipped


def _source_length(part: dict[str, np.ndarray], job: ClipJob) -> tuple[int, float]:
    """Frames and frame rate of a clip's source; for a clip cached before they were stored, read from the
    source (the container's frame count and fps; the number of .npy frames of an MP_Data sequence, fps
    unknown)."""
    if "source_frames" in part:
        return int(part["source_frames"]), float(part["source_fps"])
    if job.mode == "mp_data":
        return sum(1 for f in Path(job.source).iterdir() if f.suffix == ".npy" and f.stem.isdigit()), float(
            "nan"
        )
    from utils.data.video import video_info

    info = video_info(job.source, count=False)
    return int(info.num_frames), float(info.fps)


def extract_features(source: str | Path, out: str | Path, num_frames: int = NUM_FRAMES,
                     image_size: int = IMAGE_SIZE, workers: int | None = None, keypoints_from: str = "auto",
                     limit: int | None = None, progress: bool = True, hand_size: int = DEFAULT_HAND_SIZE,
                     mediapipe_size: int = MEDIAPIPE_SIZE,
                     parallel: str = EXTRACT_PARALLEL) -> ExtractionReport:
    """Extract every clip of a dataset folder (or 'synthetic', 'asl', 'ucf11') into one features .npz (``out``
    ends in .npz) or a features store folder (any other name; written clip by clip, see :mod:`utils.store`).

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
        raise DatasetError("hand_size must be 0 (no hand crops) or a positive number of pixels, got "
                           f"{hand_size}")
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
    jobs = [ClipJob(source=str(r.path.resolve()), relative=_relative(root, r.path),
                    mode=_clip_mode(r, video_mode),
                     keypoints_path=str(r.keypoints_path) if r.keypoints_path else None,
                    num_frames=int(num_frames),
                     image_size=int(image_size), hand_size=_clip_hand_size(r, video_mode, hand_size),
                     mediapipe_size=int(mediapipe_size),
                     cache_path=str(_cache_path(root, r, num_frames, image_size, _clip_mode(r, video_mode),
                                                _clip_hand_size(r, video_mode, hand_size),
                                                int(mediapipe_size))))
            for r in records]
    todo = [job for job in jobs if not Path(job.cache_path).is_file()]
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(todo) or 1))
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"extract {root.name}", unit="clip",
              disable=not progress) as bar:
        if workers == 1 or all(job.mode == "mp_data" for job in todo):  # reading .npy files needs no pool
            failures = run_in_process(todo, bar)
        elif parallel == "threads":
            failures = run_in_threads(todo, workers, bar)
        else:
            failures = run_in_pool(todo, workers, bar)
    path, num_clips, skipped = _write_extracted(Path(out), root, kind, records, jobs, num_frames, image_size,
                                                failures)
    if skipped:
        print(f"skipped {len(skipped)} of {len(jobs)} clips:", *(f"  {p}: {r}" for p, r in skipped),
              sep="\n", file=sys.stderr)
    return ExtractionReport(path=path, num_clips=num_clips, skipped=skipped,
                            seconds=time.perf_counter() - started, cache_hits=len(jobs) - len(todo))
