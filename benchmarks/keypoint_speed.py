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
   ``extract`` gives sampled (MediaPipe) frames/s and video frames consumed/s (every frame is decoded), with
   its clips in threads (the default) and in worker processes, alternated, with the CPU ms per sampled frame
   and the rate that implies on idle cores (a projection, labelled), and a table of where a sampled frame's
   time goes (decode, thumbnails, MediaPipe, hand crops, worker start-up).

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

from utils.data import (
    keypoints as K,  # noqa: E402
    video,  # noqa: E402
)

REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "real" / "asl_clips"
OUT_MD = Path(__file__).with_suffix(".md")
SIZES = (960, 640, 480, 320)
QUICK_SIZE = 640  # the one size --quick compares with full resolution
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
    """Keypoints (N, 1662) and detected (N, 4) of a clip's frames for each setting (a size, 0 = full, or
    NOISE), every setting its own extractor in video mode, fed frame by frame (the frames are read only once).

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
            rows.append(
                f"| {name} | {len(np.concatenate(self.flips[setting]))} | " + " | ".join(cells) + " |"
            )
        return rows


AGREEMENT_HEADER = ("| MediaPipe input (longer side) | frames | face | pose | left | right | face flips | "
                    "pose flips | left flips | right flips | face dist | pose dist | left dist | right dist "
                    "|\n|" + "---|" * 14)


def measure_agreement(clips: list[Path], sizes: list[int], every_frame: bool) -> tuple[Agreement, Agreement]:
    """Agreement over all clips, and over the clips larger than the largest size (those every size
    shrinks)."""
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


def agreement_section(clips: list[Path], sizes: list[int], every_frame: bool = True) -> list[str]:
    """The markdown of the agreement tables: the frames extract samples, and every frame (unless
    every_frame=False)."""
    lines = []
    modes = ((True, "every frame, video mode (predict, webcam)"),
             (False, f"{EXTRACT_FRAMES} frames sampled per clip (extract)"))
    for mode_every_frame, title in modes[0 if every_frame else 1:]:
        print(f"agreement: {title}", flush=True)
        everything, shrunk = measure_agreement(clips, sizes, mode_every_frame)
        lines += [f"\n### {title}\n", f"All {len(clips)} clips:\n", AGREEMENT_HEADER, *everything.rows(),
                  f"\nOnly the clips whose longer side exceeds {max(sizes)} px (shrunk by every size):\n",
                  AGREEMENT_HEADER, *shrunk.rows()]
    return lines


# ----------------------------------------------------------------------------- speed
MODELS = ("lstm", "fused")  # a keypoint-only model and the heaviest one (keypoints, frames and hand crops)
SPEED_MIN_SIDE = 720  # clips whose shorter side is at least this are timed (720p-1080p)
WINDOW_SECONDS = 2.0  # the window predict would use for training clips of this length


def speed_clips(folder: Path = REAL_CLIPS, max_clips: int | None = None) -> tuple[list[Path], str]:
    """The 720p-1080p real clips (at most max_clips: the longest of each frame size first), else one synthetic
    1080p video of a person (written under a temp folder)."""
    infos = [video.video_info(p, count=False) for p in real_clips(folder)]
    infos = sorted((i for i in infos if min(i.width, i.height) >= SPEED_MIN_SIDE),
                   key=lambda i: -i.num_frames)
    sizes = {(i.width, i.height) for i in infos}
    longest_of_each = [next(i for i in infos if (i.width, i.height) == size) for size in sorted(sizes)]
    chosen = (longest_of_each + [i for i in infos if i not in longest_of_each])[:max_clips or len(infos)]
    if chosen:
        shapes = ", ".join(f"{i.path.parent.name}/{i.path.name} {i.width}x{i.height} {i.num_frames} frames"
                           for i in chosen)
        return [i.path for i in chosen], f"{len(chosen)} real clips of 720p-1080p ({shapes})"
    from skimage import data

    frames = video.pan_zoom_clip(data.astronaut(), num_frames=90, output_size=1080)
    canvas = np.zeros((len(frames), 1080, 1920, 3), dtype=np.uint8)
    canvas[:, :, 420:1500] = frames
    path = Path(tempfile.mkdtemp(prefix="keypoint_speed_")) / "astronaut_1080p.mp4"
    video.write_video(path, canvas, fps=30.0)
    return [path], f"no real clips ({folder} absent): one synthetic 1080p video of a person, 90 frames"


def cpu_seconds() -> float:
    """CPU time used so far by this process (all its threads) and its finished child processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def decode_fps(clips: list[Path]) -> tuple[float, float]:
    """Frames per second of decoding alone (OpenCV, to RGB): per wall-clock second and per CPU second."""
    started, cpu, count = time.perf_counter(), cpu_seconds(), 0
    for path in clips:
        count += sum(1 for _ in video.iter_frames(path))
    return count / (time.perf_counter() - started), count / (cpu_seconds() - cpu)


def mediapipe_fps(clips: list[Path], size: int) -> tuple[float, float]:
    """Frames per second of MediaPipe alone (shrinking included), video mode, per wall-clock and per CPU
    second."""
    elapsed, cpu, count = 0.0, 0.0, 0
    with K.HolisticExtractor(warn_small_frames=False, max_side=size) as extractor:
        for path in clips:
            extractor.reset()
            for frame in video.iter_frames(path):
                started, started_cpu = time.perf_counter(), cpu_seconds()
                extractor.extract_frame(frame)
                elapsed += time.perf_counter() - started
                cpu += cpu_seconds() - started_cpu
                count += 1
    return count / elapsed, count / cpu


def untrained_classifier(name: str):
    """A WindowClassifier of the recommended model `name` with random weights (as fast as a trained one)."""
    from utils import models
    from utils.inputs import preprocessing
    from utils.serving import predict

    config = models.get_config(name, "recommended")
    input_dim = preprocessing.output_dim(preprocessing.resolve_options(config.preprocessing))
    classes = [f"sign_{i}" for i in range(7)]
    run_info = {"model": name, "config": config.to_dict(), "classes": classes,
                "inputs": list(models.model_inputs(name, config)),
                "sampling": {"clip_frames": 30, "thumbnail_size": 64, "hand_crop_size": 32,
                             "source_seconds": WINDOW_SECONDS}}
    model = models.build_model(name, config, num_classes=len(classes), keypoint_dim=input_dim)
    return predict.WindowClassifier(model, run_info)


def predict_fps(clips: list[Path], size: int, classify) -> tuple[float, float, float, float]:
    """End-to-end frames/s of predict's path (decode in a thread + MediaPipe + thumbnails/crops + every
    window) per wall-clock and per CPU second, frames/s of the reading pass alone, and the model's mean ms per
    window."""
    from utils.serving import predict

    spec = classify.spec
    elapsed, reading, count, model_ms, cpu = 0.0, 0.0, 0, [], cpu_seconds()
    for path in clips:
        started = time.perf_counter()
        clip = predict.read_video_keypoints(path, True, spec.thumbnail_size if spec.wants("frames") else None,
                                            progress=False, mediapipe_size=size,
                                            hand_size=spec.crop_size if spec.wants("hands") else None)
        window = spec.window_frames(clip.fps)
        result = predict.predict_clip(classify, clip, window, max(1, window // 4))
        elapsed += time.perf_counter() - started
        reading += clip.seconds
        count += clip.num_frames
        model_ms += [w.model_ms for w in result.windows]
    return count / elapsed, count / (cpu_seconds() - cpu), count / reading, float(np.mean(model_ms))


def extract_fps(clips: list[Path], size: int, workers: int,
                parallel: str = "threads") -> tuple[float, float, float]:
    """Sampled frames per wall-clock and per CPU second of `extract` (fresh cache; ``workers`` clips at once
    as threads or worker processes, whose CPU time is included) on the clips, linked into a class-folder
    dataset, and the video frames it decoded (consumed) per wall second."""
    from utils import paths
    from utils.config import NUM_FRAMES
    from utils.data import features

    consumed = sum(video.video_info(path, count=False).num_frames for path in clips)
    cpu = cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="keypoint_speed_extract_") as tmp:
        root = Path(tmp) / "clips"
        for number, path in enumerate(clips):
            (root / path.parent.name).mkdir(parents=True, exist_ok=True)
            (root / path.parent.name / f"{number}_{path.name}").symlink_to(path.resolve())
        cache, paths.CACHE_DIR = paths.CACHE_DIR, Path(tmp) / "cache"
        try:
            report = features.extract_features(root, Path(tmp) / "f.npz", workers=workers, progress=False,
                                               mediapipe_size=size, keypoints_from="mediapipe",
                                               parallel=parallel)
        finally:
            paths.CACHE_DIR = cache
    frames = report.num_clips * NUM_FRAMES
    return frames / report.seconds, frames / (cpu_seconds() - cpu), consumed / report.seconds


def _timed_call(function) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = function()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def extract_breakdown(clips: list[Path], size: int = 0) -> dict[str, tuple[float, float]]:
    """Where a sampled frame's time goes in `extract`, in this process: step -> (wall ms, CPU ms) per sampled
    frame, pooled over the clips: decoding every frame (grab) and converting the 30 kept ones, their
    thumbnails, MediaPipe on them (video mode, as extract), the hand crops; and a worker's start-up (once per
    process)."""

    totals: dict[str, list[float]] = {}

    def add(step: str, wall: float, cpu: float) -> None:
        totals.setdefault(step, [0.0, 0.0])
        totals[step][0] += wall
        totals[step][1] += cpu

    with K.HolisticExtractor(max_side=size) as extractor:
        # the graph's first frame: start-up, below
        extractor.extract_frame(np.zeros((720, 1280, 3), np.uint8))
        for path in clips:
            capture_wall, capture_cpu = time.perf_counter(), cpu_seconds()
            indices, _ = video.sample_frame_indices(video.video_info(path, count=False).num_frames,
                                                    EXTRACT_FRAMES)
            selected, _ = video._read_selected_frames(path, set(indices.tolist()))
            add("decode every frame, keep the sampled ones (RGB)", time.perf_counter() - capture_wall,
                cpu_seconds() - capture_cpu)
            frames = np.stack([selected[int(i)] for i in indices])
            # each lambda is called at once, inside this iteration (default arguments bind this clip's arrays)
            add("thumbnails (64x64, INTER_AREA)",
                *_timed_call(lambda frames=frames: video.resize_frames(frames, 64))[1:])
            (vectors, _), wall, cpu = _timed_call(lambda frames=frames: extractor.extract(frames))
            add(f"MediaPipe Holistic ({_size_name(size)}, video mode)", wall, cpu)
            add("hand crops (32x32)",
                *_timed_call(lambda frames=frames, vectors=vectors: K.hand_crops(frames, vectors, 32))[1:])
    count = len(clips) * EXTRACT_FRAMES
    out = {step: (1000 * wall / count, 1000 * cpu / count) for step, (wall, cpu) in totals.items()}
    out["sum of the steps"] = tuple(float(sum(values[i] for values in out.values())) for i in range(2))
    startup = _worker_startup_seconds()
    out["worker start-up (once per process, seconds)"] = startup
    return out


def _worker_startup_seconds() -> tuple[float, float]:
    """(wall, CPU) seconds for a fresh process to start as an extract worker: import, MediaPipe graph, first
    frame."""
    import subprocess

    code = ("from utils.data.features.clip_jobs import quiet_worker; quiet_worker(); from "
            "utils.data.keypoints import HolisticExtractor; import numpy as np; "
            "HolisticExtractor().extract_frame(np.zeros((720, 1280, 3), np.uint8))")
    wall, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - wall, cpu_seconds() - cpu


def best_and_median(measure, repeats: int) -> tuple[str, list[float]]:
    """'best / median | median per CPU second' of `repeats` calls of measure() -> (wall fps, CPU fps), and the
    load average after each."""
    values, loads = [], []
    for _ in range(repeats):
        values.append(measure())
        loads.append(os.getloadavg()[0])
    wall, cpu = np.array(values).T
    return f"{wall.max():.1f} / {np.median(wall):.1f} | {np.median(cpu):.1f}", loads


def speed_section(clips: list[Path], description: str, sizes: list[int], repeats: int,
                  extract_workers: int) -> list[str]:
    """The markdown of the speed tables."""
    rows = ["| what | MediaPipe input | frames/s best / median | frames per CPU-second (median) "
            "| load average during |", "|---|---|---|---|---|"]

    def add(what: str, size: str, measure) -> None:
        text, loads = best_and_median(measure, repeats)
        rows.append(f"| {what} | {size} | {text} | {min(loads):.1f}-{max(loads):.1f} |")
        print(rows[-1], flush=True)

    add("decode (OpenCV -> RGB)", "–", lambda: decode_fps(clips))
    for size in [0, *sizes]:
        add("MediaPipe Holistic", _size_name(size), lambda size=size: mediapipe_fps(clips, size))
    model_rows = ["| model | MediaPipe input | end-to-end frames/s best / median | end-to-end frames per "
                  "CPU-second (median) | reading pass frames/s (median) | model ms per window (median) | "
                  "load average during |",
                  "|---|---|---|---|---|---|---|"]
    for name in MODELS:
        classify = untrained_classifier(name)
        for size in [0, *sizes]:
            results, loads = [], []
            for _ in range(repeats):
                results.append(predict_fps(clips, size, classify))
                loads.append(os.getloadavg()[0])
            e2e, cpu, read, model = (np.array(column) for column in zip(*results))
            model_rows.append(f"| {name} (recommended) | {_size_name(size)} | {e2e.max():.1f} / "
                              f"{np.median(e2e):.1f} | {np.median(cpu):.1f} | {np.median(read):.1f} | "
                              f"{np.median(model):.1f} | {min(loads):.1f}-{max(loads):.1f} |")
            print(model_rows[-1], flush=True)
    extract_rows = []
    if extract_workers:
        extract_rows = extract_table(clips, [0, *sizes], repeats, extract_workers)
        breakdown_rows = ["", f"Where a sampled frame's time goes in extract (one process, the same clips, "
                          f"{load_average()} before):", "",
                          "| step | wall ms per sampled frame | CPU ms per sampled frame |", "|---|---|---|"]
        for step, (wall, cpu) in extract_breakdown(clips).items():
            breakdown_rows.append(f"| {step} | {wall:.2f} | {cpu:.2f} |" if "seconds" not in step else
                                  f"| {step} | {wall:.2f} s | {cpu:.2f} s |")
        print("\n".join(breakdown_rows), flush=True)
        extract_rows += breakdown_rows
    return [f"Clips: {description}; {repeats} repeats of each measurement.\n", *rows, "", *model_rows, "",
            *extract_rows]


# extract's two ways to run clips at once (features.extract_features)
EXTRACT_MODES = ("threads", "processes")


def extract_table(clips: list[Path], sizes: list[int], repeats: int, workers: int,
                  modes: tuple[str, ...] = EXTRACT_MODES) -> list[str]:
    """Markdown rows of extract's speed per mode and size; the modes alternate within each repeat (paired,
    about the same load). The projection is the cores divided by the CPU time per sampled frame: what an idle
    machine would give if the work spread over all cores, labelled as such (the load decides the measured
    figure)."""
    rows = ["| extract, 30 frames sampled per clip, whole video decoded | MediaPipe input "
            "| sampled (MediaPipe) frames/s best / median | CPU ms per sampled frame (median) "
            f"| projected on {os.cpu_count()} idle cores (cores / CPU s per frame) "
            "| video frames consumed/s (median) | load average during |", "|---|---|---|---|---|---|---|"]
    for size in sizes:
        results = {mode: [] for mode in modes}
        loads = {mode: [] for mode in modes}
        for _ in range(repeats):
            for mode in modes:
                results[mode].append(extract_fps(clips, size, workers, mode))
                loads[mode].append(os.getloadavg()[0])
        for mode in modes:
            wall, cpu, consumed = (np.array(column) for column in zip(*results[mode]))
            cpu_ms = 1000 / np.median(cpu)
            what = f"{workers} threads, one process" if mode == "threads" else f"{workers} worker processes"
            rows.append(f"| extract, {what} | {_size_name(size)} | {wall.max():.1f} / {np.median(wall):.1f} "
                        f"| {cpu_ms:.1f} | {os.cpu_count() * 1000 / cpu_ms:.1f} | {np.median(consumed):.1f} "
                        f"| {min(loads[mode]):.1f}-{max(loads[mode]):.1f} |")
            print(rows[-1], flush=True)
    return rows


def _size_name(size: int) -> str:
    """'full' or the longer side in px."""
    return "full" if not size else f"{size} px"


# ----------------------------------------------------------------------------- the report
DECISION_RULE = """How a MediaPipe input size is adopted: on the clips it
shrinks, every part's detection rate within 2 percentage points of full resolution, and every part's mean
landmark distance at most 0.005 of the frame (about 3 px at 640, 10 px at 1920; a hand spans about 0.1) or
twice the `full + noise` row, whichever is larger — MediaPipe's own response to noise nobody can see is not a
loss. Among the sizes that pass, the one with the largest gain in frames per CPU-second (the machine is
shared, so wall-clock frames/s move with the load); no size is adopted when none gains more than the spread
between repeats. Hand crops and thumbnails are cut from the full-resolution frames whatever MediaPipe sees."""

def _section(lines: list[str], title: str, command: str) -> str:
    """One section of the markdown report, headed by the command and the machine's state."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join([f"## {title}", "", f"`{command}` — {when}, {load_average()} at the end.", "", *lines,
                      ""])


def write_report(sections: dict[str, str], out: Path = OUT_MD) -> Path:
    """Write the report, keeping a section of the previous report that this run did not measure."""
    kept = {}
    if out.is_file():
        for block in out.read_text().split("\n<!-- section: ")[1:]:
            name, _, text = block.partition(" -->\n")
            kept[name] = text
    kept.update(sections)
    header = ("# Keypoint path speed and MediaPipe input size\n\nWritten by `benchmarks/keypoint_speed.py` "
              "(see its docstring for what each figure means).\n\n" + DECISION_RULE + "\n")
    body = "".join(
        f"\n<!-- section: {name} -->\n{kept[name]}" for name in ("agreement", "speed") if name in kept
    )
    out.write_text(header + body)
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure agreement (real clips) and speed, print them and write benchmarks/keypoint_speed.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="longer sides to compare with full")
    parser.add_argument("--speed-sizes", type=int, nargs="+", default=None,
                        help="sizes timed (default: --sizes); full resolution is always timed")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every speed measurement")
    parser.add_argument("--only", choices=["agreement", "speed"], default=None, help="run one part only")
    parser.add_argument("--max-clips", type=int, default=None,
                        help="time at most this many clips (default: all "
                        "720p-1080p real clips)")
    parser.add_argument("--extract-workers", type=int, default=2,
                        help="clips at once in the extract timing, as threads and as processes (0 = skip)")
    parser.add_argument("--quick", action="store_true",
                        help=f"for make bench: full resolution and {QUICK_SIZE} px only, agreement on "
                             f"extract's {EXTRACT_FRAMES} frames per clip, speed on 2 clips, 1 repeat, no "
                             "extract timing (a few minutes)")
    parser.add_argument("--out", type=Path, default=OUT_MD, help="markdown report")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.max_clips, args.extract_workers = [QUICK_SIZE], 1, 2, 0
    command = "python benchmarks/keypoint_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"keypoint path speed ({load_average()})", flush=True)
    sections = {}
    clips = real_clips()
    if args.only != "speed":
        if clips:
            sections["agreement"] = _section(agreement_section(clips, args.sizes, every_frame=not args.quick),
                                             "Agreement with full resolution", command)
        else:
            print(
                f"agreement skipped: {REAL_CLIPS} is absent (the real clips are not part of the repository)"
            )
    if args.only != "agreement":
        speed, description = speed_clips(max_clips=args.max_clips)
        sections["speed"] = _section(speed_section(speed, description, args.speed_sizes or args.sizes,
                                                   args.repeats, args.extract_workers),
                                     "Speed on this machine", command)
    path = write_report(sections, args.out)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
