"""One clip's features (a job), and running many jobs: in this process, in worker processes or in threads.

Each job turns one clip (a video, or an MP_Data sequence folder) into a small cache file, written as soon as
the clip is done, so an interrupted extraction loses nothing.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.data.features.file_format import write_npz_atomically
from utils.data.keypoints import KEYPOINT_DIM, hand_crops, mp_data_to_original, parts_present
from utils.errors import FeatureFileError


# ----------------------------------------------------------------------------- one clip
@dataclass(frozen=True)
class ClipJob:
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
        raise FeatureFileError(
            f"{folder}: frame(s) {', '.join(wrong[:3])} do not hold {KEYPOINT_DIM} numbers"
        )
    return np.stack(frames)


def _stored_keypoints(keypoints_path: str | None, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and detected flags stored beside a synthetic clip, at the sampled frame indices."""
    if keypoints_path is None or not Path(keypoints_path).is_file():
        raise FeatureFileError(f"{keypoints_path}: stored keypoints not found (use "
                               "keypoints_from='mediapipe')")
    with np.load(keypoints_path, allow_pickle=False) as data:
        keypoints = data["keypoints"]
        detected = data["detected"] if "detected" in data.files else parts_present(keypoints)
    if indices.max() >= len(keypoints):
        raise FeatureFileError(f"{keypoints_path}: holds {len(keypoints)} frames but the video has more")
    return keypoints[indices].astype(np.float32), detected[indices].astype(bool)


def _extract_clip(job: ClipJob, extractors: _ExtractorHolder) -> dict[str, np.ndarray]:
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
    arrays = {"keypoints": np.asarray(keypoints, dtype=np.float32),
              "detected": np.asarray(detected, dtype=bool), "frames": clip.thumbnails,
              "padded": np.asarray(clip.padded), "source_frames": np.asarray(clip.num_source_frames),
              "source_fps": np.asarray(clip.fps)}
    if job.hand_size > 0:  # from the full-resolution frames, where the hand has most pixels
        arrays["hand_crops"] = hand_crops(clip.frames, arrays["keypoints"], job.hand_size)
    return arrays


def _run_job(job: ClipJob, extractors: _ExtractorHolder | None = None) -> str | None:
    """Extract one clip into its cache file; return None, or why the clip could not be read."""
    try:
        arrays = _extract_clip(job, extractors or _WORKER_EXTRACTOR)
        if arrays["keypoints"].shape != (job.num_frames, KEYPOINT_DIM):
            return f"keypoints came out with shape {arrays['keypoints'].shape}"
        if not np.isfinite(arrays["keypoints"]).all():
            return "keypoints contain NaN/inf"
        write_npz_atomically(Path(job.cache_path), arrays)
    except Exception as error:  # any unreadable clip is skipped and listed, never the end of the run
        return f"{type(error).__name__}: {error}"
    return None


# ----------------------------------------------------------------------------- running the jobs
def run_in_process(jobs: list[ClipJob], bar) -> dict[str, str]:
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


def quiet_worker() -> None:
    """Start a worker process: no TensorFlow/MediaPipe start-up chatter, and no TensorFlow at all.

    ``import mediapipe`` imports TensorFlow when it is installed, only for its documentation tools, and
    falls back without it; a worker never needs TensorFlow, and skipping it makes each worker start with
    about 0.9 instead of 5.3 CPU-seconds (measured on the 2-core machine).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    sys.modules.setdefault("tensorflow", None)  # `import tensorflow` now raises ModuleNotFoundError here


def largest_first(jobs: list[ClipJob]) -> list[ClipJob]:
    """The jobs, largest source file first: the workers then finish at about the same time.

    A clip's work (decoding every frame, MediaPipe on the sampled ones) grows with its file; handed out in
    dataset order, a long clip that comes last keeps one worker busy while the others wait (3 real 720p-1080p
    clips on 2 workers: one worker decoded 94 + 153 frames, the other 117). The features file keeps the
    dataset's order whatever order the clips are extracted in."""
    def size(job: ClipJob) -> int:
        path = Path(job.source)
        return path.stat().st_size if path.is_file() else 0

    return sorted(jobs, key=size, reverse=True)


def _collect(pending: dict, bar) -> dict[str, str]:
    """Wait for the submitted clip jobs ({future: job}) as they finish, ticking the bar; return the
    failures."""
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


def run_in_pool(jobs: list[ClipJob], workers: int, bar) -> dict[str, str]:
    """Run jobs in worker processes (each with its own extractor); return the failures."""
    import multiprocessing

    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=quiet_worker)
    try:
        failures = _collect({executor.submit(_run_job, job): job for job in largest_first(jobs)}, bar)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return failures


def run_in_threads(jobs: list[ClipJob], threads: int, bar) -> dict[str, str]:
    """Run jobs in `threads` threads of this process, each thread with its own MediaPipe graph; return the
    failures.

    A thread takes a whole clip (decode, MediaPipe on its frames in order, thumbnails, crops), so each graph
    sees one clip's frames in order, reset at the clip's start: the same landmarks as one graph running the
    clips one after the other. OpenCV and MediaPipe's ``process`` release Python's lock, so the threads
    overlap; unlike worker processes they share one MediaPipe import and start-up, and no extra copy of the
    libraries in memory."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if any(job.mode == "mediapipe" for job in jobs):
        from utils.data.keypoints import import_mediapipe

        import_mediapipe()  # once, here, before the threads (it keeps TensorFlow out while it runs)
    local, holders, lock = threading.local(), [], threading.Lock()

    def run(job: ClipJob) -> str | None:
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
