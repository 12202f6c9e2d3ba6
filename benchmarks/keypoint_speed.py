"""How fast is the keypoint path (decode + MediaPipe Holistic + model), and what does shrinking frames cost?

Two measurements, written to ``benchmarks/keypoint_speed.md`` (and printed):

1. **Agreement** (real clips only): MediaPipe Holistic run on the 24 real ASL videos of ``../shared/real``
   at full resolution and with each frame first shrunk to a longer side of each ``--sizes`` value
   (``utils.video.shrink_frame``). Per part: detection rate, share of frames whose detected/not-detected
   flag differs from full resolution, and the mean distance of the landmarks (x, y, normalised to the
   frame) between the two, over frames where both found the part. Pose points count where full
   resolution saw them (visibility >= 0.5). The row ``full + noise`` is full resolution with invisible
   Gaussian pixel noise (sigma 2 of 255) added: MediaPipe's own sensitivity, the floor any size is
   measured against. Two ways of feeding frames: every frame in video mode (``predict``, webcam) and the
   30 frames ``extract`` samples per clip.
2. **Speed** (frames/s): decoding alone, MediaPipe per size, the model per window, and end-to-end
   ``predict`` (decode in a thread + MediaPipe + windows) per size, on the real clips of 720p and up, or on
   a synthetic 1080p video when ``../shared/real`` is absent (then agreement is skipped with the reason).

The machine may be shared: the load average is printed with every figure; the speed measurement is
repeated ``--repeats`` times and the best and median are reported. Usage::

    python benchmarks/keypoint_speed.py [--sizes 960 640 480 320] [--repeats 3] [--skip-agreement]

``main(argv)`` is the entry point (``make bench`` can call ``main([])``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import keypoints as K  # noqa: E402
from utils import video  # noqa: E402

REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "real" / "asl_clips"
OUT_MD = Path(__file__).with_suffix(".md")
SIZES = (960, 640, 480, 320)
NOISE = "full + noise"
NOISE_SIGMA = 2.0
MIN_VISIBILITY = 0.5
EXTRACT_FRAMES = 30


def load_average() -> str:
    """The 1-minute load average (and core count), for every printed figure."""
    try:
        return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "load unknown"


def real_clips(folder: Path = REAL_CLIPS) -> list[Path]:
    """The real ASL videos, sorted; empty when the folder is absent."""
    return sorted(folder.glob("*/*.mp4")) if folder.is_dir() else []


# ----------------------------------------------------------------------------- agreement
def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame with Gaussian pixel noise of NOISE_SIGMA (out of 255) added."""
    return np.clip(frame + rng.normal(0, NOISE_SIGMA, frame.shape), 0, 255).astype(np.uint8)


def run_settings(frames, settings: list, longest: int, seed: int = 0) -> dict:
    """Keypoints (N, 1662) and detected (N, 4) of a clip's frames for each setting (a size, 0 = full, or NOISE),
    every setting its own extractor in video mode, fed frame by frame (the frames are read only once).

    A size at least the clip's ``longest`` side leaves its frames as they are, so it gets the full-resolution
    result without running MediaPipe again."""
    rng = np.random.default_rng(seed)
    shrinks = [s for s in settings if s == NOISE or s == 0 or s < longest]
    extractors = {s: K.HolisticExtractor(warn_small_frames=False, max_side=0 if s == NOISE else s).open()
                  for s in shrinks}
    out = {s: ([], []) for s in shrinks}
    try:
        for frame in frames:
            for setting, extractor in extractors.items():
                vector, found = extractor.extract_frame(_noisy(frame, rng) if setting == NOISE else frame)
                out[setting][0].append(vector)
                out[setting][1].append(found)
    finally:
        for extractor in extractors.values():
            extractor.close()
    results = {s: (np.stack(v), np.stack(d)) for s, (v, d) in out.items()}
    return {s: results[s if s in results else 0] for s in settings}


def part_distances(reference: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Per part, the mean (x, y) landmark distance of each frame where both found the part (NaN elsewhere)."""
    ref, oth = K.split_parts(reference.astype(np.float64)), K.split_parts(other.astype(np.float64))
    found_ref, found_oth = K.parts_present(reference), K.parts_present(other)
    out = {}
    for index, part in enumerate(K.PARTS):
        distance = np.linalg.norm(ref[part][..., :2] - oth[part][..., :2], axis=-1)  # (N, points)
        if part == "pose":
            seen = ref[part][..., 3] >= MIN_VISIBILITY
            with np.errstate(invalid="ignore"):
                mean = np.where(seen.any(axis=1), (distance * seen).sum(axis=1) / seen.sum(axis=1), np.nan)
        else:
            mean = distance.mean(axis=1)
        out[part] = np.where(found_ref[:, index] & found_oth[:, index], mean, np.nan)
    return out


@dataclass
class Agreement:
    """Per setting, pooled over clips: detected flags (N, 4), flags differing from full (N, 4), distances."""

    detected: dict = field(default_factory=dict)
    flips: dict = field(default_factory=dict)
    distances: dict = field(default_factory=dict)  # setting -> part -> (N,) with NaN where not both found

    def add(self, results: dict) -> None:
        """Pool one clip's results (``run_settings``) against its full-resolution run."""
        ref_vectors, ref_found = results[0]
        for setting, (vectors, found) in results.items():
            self.detected.setdefault(setting, []).append(found)
            self.flips.setdefault(setting, []).append(found != ref_found)
            for part, values in part_distances(ref_vectors, vectors).items():
                self.distances.setdefault(setting, {}).setdefault(part, []).append(values)

    def rows(self) -> list[str]:
        """Markdown rows: setting, detection rates, flag flips and mean distances per part."""
        rows = []
        for setting in self.detected:
            detected = np.concatenate(self.detected[setting]).mean(axis=0)
            flips = np.concatenate(self.flips[setting]).mean(axis=0)
            means = [np.concatenate(self.distances[setting][p]) for p in K.PARTS]
            cells = ([f"{d:.1%}" for d in detected] + [f"{f:.1%}" for f in flips] +
                     [("–" if not np.isfinite(m).any() else f"{np.nanmean(m):.4f}") for m in means])
            name = "full" if setting == 0 else setting
            rows.append(f"| {name} | {len(np.concatenate(self.flips[setting]))} | " + " | ".join(cells) + " |")
        return rows


AGREEMENT_HEADER = ("| MediaPipe input (longer side) | frames | face | pose | left | right | face flips | pose flips "
                    "| left flips | right flips | face dist | pose dist | left dist | right dist |\n|" + "---|" * 14)


def measure_agreement(clips: list[Path], sizes: list[int], every_frame: bool) -> tuple[Agreement, Agreement]:
    """Agreement over all clips, and over the clips larger than the largest size (those every size shrinks)."""
    settings = [0, NOISE, *sizes]
    everything, shrunk = Agreement(), Agreement()
    for number, path in enumerate(clips, start=1):
        frames = video.iter_frames(path) if every_frame else video.load_clip(path, EXTRACT_FRAMES, 8).frames
        info = video.video_info(path, count=False)
        results = run_settings(frames, settings, max(info.width, info.height), seed=number)
        everything.add(results)
        if max(info.width, info.height) > max(sizes):
            shrunk.add(results)
        print(f"  [{number}/{len(clips)}] {path.parent.name}/{path.name} {info.width}x{info.height} "
              f"({load_average()})", flush=True)
    return everything, shrunk


def agreement_section(clips: list[Path], sizes: list[int]) -> list[str]:
    """The markdown of the agreement tables (both ways of feeding frames)."""
    lines = []
    for every_frame, title in ((True, "every frame, video mode (predict, webcam)"),
                               (False, f"{EXTRACT_FRAMES} frames sampled per clip (extract)")):
        print(f"agreement: {title}", flush=True)
        everything, shrunk = measure_agreement(clips, sizes, every_frame)
        lines += [f"\n### {title}\n", f"All {len(clips)} clips:\n", AGREEMENT_HEADER, *everything.rows(),
                  f"\nOnly the clips whose longer side exceeds {max(sizes)} px (shrunk by every size):\n",
                  AGREEMENT_HEADER, *shrunk.rows()]
    return lines
