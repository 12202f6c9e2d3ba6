"""Dataset writing: :func:`make_dataset` writes videos, keypoints, ``manifest.csv`` and ``dataset.json``.

Deterministic for a seed whatever the number of worker processes; a complete folder is reused, an
interrupted one resumes.
"""
from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from utils import paths
from utils.data.synthetic.motion import DEFAULT_NUM_FRAMES, SIGNS
from utils.data.synthetic.render import DEFAULT_IMAGE_SIZE, check_sizes, generate_clip
from utils.data.synthetic.signers import Signer, face_template, make_signers, set_face_template
from utils.errors import DatasetError

GENERATOR_VERSION = 1


# ----------------------------------------------------------------------------------------------- dataset
_PARAMS_FILE = ".synthetic_params.json"


def _dataset_params(clips_per_class: int, num_signers: int, difficulty: float, seed: int, num_frames: int,
                    image_size: int) -> dict:
    """The parameters that define a synthetic dataset folder."""
    return {"kind": "synthetic", "signs": list(SIGNS), "seed": int(seed), "difficulty": float(difficulty),
            "clips_per_class": int(clips_per_class), "num_signers": int(num_signers),
            "num_frames": int(num_frames), "image_size": int(image_size),
            "generator_version": GENERATOR_VERSION}


def _check_folder(out_dir: Path, params: dict) -> bool:
    """True if ``out_dir`` already holds exactly this dataset; raise DatasetError if it holds another one."""
    for name in ("dataset.json", _PARAMS_FILE):
        path = out_dir / name
        if path.exists():
            try:
                found = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise DatasetError(
                    f"{path} is unreadable ({error}): delete {out_dir} or pick another --out"
                ) from error
            if found != params:
                changed = sorted(k for k in set(found) | set(params) if found.get(k) != params.get(k))
                raise DatasetError(
                    f"{out_dir} already holds a synthetic dataset made with other parameters "
                    f"({', '.join(f'{k}: {found.get(k)!r} there, {params.get(k)!r} now' for k in changed)}). "
                    "Pick another --out folder or delete that one.")
            return name == "dataset.json"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(
            f"{out_dir} is not empty and is not a synthetic dataset folder: pick another --out"
        )
    return False


def _write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _clip_paths(out_dir: Path, sign: str, signer_id: str, clip_index: int) -> tuple[Path, Path]:
    """Video and keypoint file of one clip."""
    stem = f"{signer_id}_{clip_index:03d}"
    return out_dir / sign / f"{stem}.mp4", out_dir / sign / f"{stem}.keypoints.npz"


def _clip_rng(seed: int, sign_index: int, clip_index: int) -> np.random.Generator:
    """The random generator of one clip, independent of workers and order."""
    return np.random.default_rng([seed, sign_index, clip_index])


def _signers_for(seed: int, num_signers: int) -> list[Signer]:
    """The dataset's signers, derived from the seed alone."""
    return make_signers(num_signers, np.random.default_rng([seed, 7_777_777]))


def _write_clip(out_dir: Path, sign_index: int, clip_index: int, signer: Signer, params: dict) -> None:
    """Generate one clip and write its .mp4 and .keypoints.npz (each atomically)."""
    from utils.data.video import write_video

    sign = SIGNS[sign_index]
    video_path, keypoint_path = _clip_paths(out_dir, sign, signer.id, clip_index)
    clip = generate_clip(sign, signer, _clip_rng(params["seed"], sign_index, clip_index),
                         params["difficulty"], params["num_frames"], params["image_size"])
    keypoint_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = keypoint_path.with_name(f".{keypoint_path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, keypoints=clip.keypoints, detected=clip.detected)
    os.replace(tmp, keypoint_path)
    write_video(video_path, clip.frames, fps=30.0)


def _write_clip_in_worker(args: tuple) -> None:
    """Process-pool entry point for :func:`_write_clip`."""
    _write_clip(*args)


def _write_manifest(out_dir: Path, rows: list[tuple[str, str, str]]) -> None:
    """manifest.csv with columns path (relative, posix), label, signer."""
    tmp = out_dir / ".manifest.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "signer"])
        writer.writerows(rows)
    os.replace(tmp, out_dir / "manifest.csv")


def make_dataset(out_dir: str | Path | None = None, clips_per_class: int = 40, num_signers: int = 10,
                 difficulty: float = 1.0, seed: int = 0, num_frames: int = DEFAULT_NUM_FRAMES,
                 image_size: int = DEFAULT_IMAGE_SIZE, workers: int | None = None) -> Path:
    """Write the synthetic dataset (videos, keypoints, manifest.csv, dataset.json) and return its folder.

    Clips go round-robin over the signers, so every signer performs every sign. Deterministic for a seed
    whatever ``workers`` is; a complete folder returns at once, an interrupted one resumes.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir) if out_dir is not None else paths.SYNTHETIC_DIR
    if clips_per_class < 1:
        raise DatasetError(f"clips_per_class must be at least 1, got {clips_per_class}")
    check_sizes(num_frames, image_size, difficulty)
    params = _dataset_params(clips_per_class, num_signers, difficulty, seed, num_frames, image_size)
    if _check_folder(out_dir, params):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / _PARAMS_FILE, params)
    signers = _signers_for(seed, num_signers)
    jobs, rows = [], []
    for sign_index, sign in enumerate(SIGNS):
        for clip_index in range(clips_per_class):
            signer = signers[clip_index % num_signers]
            video_path, keypoint_path = _clip_paths(out_dir, sign, signer.id, clip_index)
            rows.append((video_path.relative_to(out_dir).as_posix(), sign, signer.id))
            if not (video_path.exists() and keypoint_path.exists()):
                jobs.append((out_dir, sign_index, clip_index, signer, params))
    template = face_template()
    workers = min(workers or os.cpu_count() or 1, max(1, len(jobs)))
    progress = tqdm(total=len(jobs), desc="synthetic clips", unit="clip", disable=not jobs)
    if workers <= 1:
        for job in jobs:
            _write_clip(*job)
            progress.update()
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=set_face_template,
                                 initargs=(template,)) as pool:
            for future in as_completed([pool.submit(_write_clip_in_worker, job) for job in jobs]):
                future.result()
                progress.update()
    progress.close()
    _write_manifest(out_dir, rows)
    _write_json(out_dir / "dataset.json", params)  # last: its presence means "complete"
    return out_dir
