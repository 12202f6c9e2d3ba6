"""Does the browser page see and answer what Python does? Keypoints, answers and speed, measured in Chromium.

For each clip, the same decoded frames go to Python MediaPipe (``HolisticExtractor``, as ``predict`` runs it)
and to the page's own code in headless Chromium (``window.signPage.keypointsOfPng``: MediaPipe Holistic for
JavaScript, the page's 1662-number vector), frame by frame at the clip's pace (MediaPipe's landmark smoothing
sees the same timestamps, 1/30 s apart, in both). Written per clip and per part:

* the share of frames in which each side found the part, and where both did, the mean and largest
  difference of the normalised x, y coordinates (1.0 = the picture's width or height);
* the page's answer (its windows and mean, ``signPage.clipAnswer``, run by LiteRT.js) beside
  ``python -m utils predict``'s answer on the same clip;
* speed on this machine, measured by the page itself: MediaPipe ms per frame and model ms per window,
  and frames per second of the live page with a fake camera (``--fps-seconds`` of it); a screenshot of
  that page goes to docs/web.png.

Clips: a few of the real ASL videos of ../shared/real/asl_clips (read in place, never copied) with a keypoint
model trained on the real MP_Data signers of ../shared/real (sequences.npz + crowd.npz), and one synthetic
signer (course-made) with a model trained on synthetic keypoints. Without ../shared/real only the synthetic
clip is measured.

Usage::

    python benchmarks/web_parity.py [--clips hello/alpyksl yes/alpyksl] [--epochs 20] [--out /tmp/web_parity]

writes benchmarks/web_parity.json and benchmarks/web_parity.md (and docs/web.png).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import keypoints as K  # noqa: E402
from utils.serving import predict, web  # noqa: E402

HERE = Path(__file__).resolve().parent
REAL = HERE.parents[1] / "shared" / "real"
SCREENSHOT = HERE.parent / "docs" / "web.png"
SIGNS = ("hello", "thanks", "yes", "no", "please")  # the synthetic model's signs
STEP_MS = 1000 / 30  # Python MediaPipe's solution API stamps frames 1/30 s apart; the page is fed the same


def train_real(out: Path, epochs: int) -> Path:
    """An LSTM (recommended configuration) trained on the real MP_Data signers, keypoints only."""
    from benchmarks.clip_answer import real_features
    from utils.training import loop as training

    run = out / "real_lstm"
    if not (run / "run.json").is_file():
        training.train(
            real_features(), "lstm", None, out_dir=run, epochs=epochs, verbose=0, measure_speed=False
        )
    return run


def train_synthetic(out: Path, epochs: int) -> Path:
    """An LSTM trained on the keypoints of synthetic signers (no video rendered: seconds)."""
    from utils.data import synthetic
    from utils.data.features import FeatureSet
    from utils.training import loop as training

    run = out / "synthetic_lstm"
    if (run / "run.json").is_file():
        return run
    rng = np.random.default_rng(0)
    keypoints, labels, groups = [], [], []
    for signer in synthetic.make_signers(12, rng):
        for _ in range(3):
            for label, sign in enumerate(SIGNS):
                exact = synthetic.simulate_keypoints(sign, signer, rng, 1.0, 30)
                keypoints.append(synthetic.simulate_detection(exact, rng, 1.0)[0])
                labels.append(label)
                groups.append(signer.id)
    count = len(labels)
    features = FeatureSet(
        keypoints=np.asarray(keypoints, np.float32),
        frames=None,
        labels=np.asarray(labels),
        classes=list(SIGNS),
        groups=np.asarray(groups),
        split=np.full(count, ""),
        paths=np.full(count, ""),
        meta={"fps": 30.0},
    )
    training.train(features, "lstm", None, out_dir=run, epochs=epochs, verbose=0, measure_speed=False)
    return run


def synthetic_clip(out: Path) -> Path:
    """A new synthetic signer (not among the training signers) signing 'hello': frames as .mp4 and .y4m."""
    from utils.data import synthetic
    from utils.data.video import write_video

    rng = np.random.default_rng(77)
    clip = synthetic.generate_clip("hello", synthetic.make_signers(1, rng)[0], rng, 1.0, 30, 256)
    web.write_y4m(out / "synthetic_hello.y4m", clip.frames)
    return write_video(out / "synthetic_hello.avi", clip.frames)


def python_keypoints(frames: list[np.ndarray], mediapipe_size: int) -> tuple[np.ndarray, list[float]]:
    """Python MediaPipe on each frame, as predict runs it: vectors (N, 1662) and ms per frame."""
    vectors, times = [], []
    with K.HolisticExtractor(warn_small_frames=False, max_side=mediapipe_size) as extractor:
        for frame in frames:
            started = time.perf_counter()
            vectors.append(extractor.extract_frame(frame)[0])
            times.append((time.perf_counter() - started) * 1000)
    return np.stack(vectors), times


def page_keypoints(page, frames: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """The page's vectors (N, 1662) of the same frames (sent as lossless PNG) and its MediaPipe ms/frame."""
    import cv2

    page.evaluate("window.signPage.resetTracking()")
    vectors, times = [], []
    for index, frame in enumerate(frames):
        png = base64.b64encode(
            cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))[1].tobytes()
        ).decode()
        result = page.evaluate(
            "([png, at]) => window.signPage.keypointsOfPng(png, at)", [png, index * STEP_MS]
        )
        vectors.append(np.asarray(result["vector"], np.float32))
        times.append(float(result["ms"]))
    return np.stack(vectors), times


def compare_parts(python: np.ndarray, page: np.ndarray) -> dict[str, dict]:
    """Per part: share of frames found by each side; x, y differences where both found it."""
    found_py, found_page = K.parts_present(python), K.parts_present(page)
    parts_py, parts_page = K.split_parts(python), K.split_parts(page)
    result = {}
    for index, part in enumerate(K.PARTS):
        both = found_py[:, index] & found_page[:, index]
        row = {
            "found_python": float(found_py[:, index].mean()),
            "found_page": float(found_page[:, index].mean()),
            "frames_both": int(both.sum()),
        }
        if both.any():
            difference = np.abs(parts_py[part][both][..., :2] - parts_page[part][both][..., :2])
            row.update(mean_xy_difference=float(difference.mean()), max_xy_difference=float(difference.max()))
        result[part] = row
    return result


def measure_clip(page, name: str, video: Path, run: Path) -> dict:
    """Keypoints of both sides, the two answers and the timings of one clip."""
    from utils.data.video import iter_frames, video_info
    from utils.inputs.spec import InputSpec
    from utils.training.runs import load_run

    spec = InputSpec.from_run(load_run(run, inference=True)[1])
    info = video_info(video)
    frames = list(iter_frames(video))
    print(
        f"{name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} at {info.fps:.2f} fps",
        flush=True,
    )
    mediapipe_size = predict.mediapipe_size_for(spec)
    python, python_ms = python_keypoints(frames, mediapipe_size)
    page_vectors, page_ms = page_keypoints(page, frames)
    expected = predict.predict_video(video, run, progress=False, verbose=False)
    got = page.evaluate("([v, fps]) => window.signPage.clipAnswer(v, fps)", [page_vectors.tolist(), info.fps])
    model_ms = page.evaluate("window.signPage.state.allModelMs")
    return {
        "clip": name,
        "frames": len(frames),
        "size": [frames[0].shape[1], frames[0].shape[0]],
        "fps": info.fps,
        "model": str(run.name),
        "parts": compare_parts(python, page_vectors),
        "predict": {
            "label": expected.answer.label,
            "probability": expected.answer.probability,
            "windows": expected.answer.num_windows,
        },
        "page": {"label": got["top"][0][0], "probability": got["top"][0][1], "windows": got["windows"]},
        "same_answer": expected.answer.label == got["top"][0][0],
        "max_probability_difference": float(
            np.abs(np.asarray(got["probabilities"]) - np.asarray(expected.answer.probabilities)).max()
        ),
        "python_mediapipe_ms": float(np.mean(python_ms[1:])),
        "page_mediapipe_ms": float(np.mean(page_ms[1:])),  # the first frame starts MediaPipe's graphs
        "page_model_ms": float(np.mean(model_ms[1:] or model_ms)),
    }


def open_page(playwright, site: Path, url: str, query: str = "?source=none", camera: Path | None = None):
    """A headless Chromium page of the built site, ready; console errors collected in page.errors."""
    browser = playwright.chromium.launch(executable_path=web.find_chromium(), args=web.browser_args(camera))
    page = browser.new_page(viewport={"width": 1000, "height": 560})
    page.errors = []
    page.on(
        "console",
        lambda m: m.type == "error" and not web.is_runtime_log(m.text) and page.errors.append(m.text),
    )
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url + "index.html" + query)
    page.wait_for_function("window.signPage && window.signPage.ready", timeout=180_000)
    return browser, page


def _shrink_png(path: Path, colours: int = 64) -> None:
    """Store a screenshot with a palette of `colours` colours (a few times smaller, still sharp)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def live_speed(playwright, site: Path, camera: Path, seconds: float) -> dict:
    """The live page with a fake camera: its frames per second and timings after `seconds`; a screenshot."""
    with web.StaticServer(site) as url:
        browser, page = open_page(playwright, site, url, "", camera)
        try:
            page.wait_for_function(
                "window.signPage.state.frames >= 2 && window.signPage.state.answer",
                timeout=300_000,
                polling=1000,
            )
            page.evaluate("window.signPage.state.allMediapipeMs.length = 0")  # drop the start-up frame
            time.sleep(seconds)
            stats = page.evaluate(
                "({fps: window.signPage.fps, mp: window.signPage.state.allMediapipeMs, "
                "model: window.signPage.state.allModelMs, frames: window.signPage.state.frames,"
                " answer: window.signPage.state.answer})"
            )
            page.evaluate(
                "window.signPage.pause()"
            )  # MediaPipe holds the page's thread for seconds per frame
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), timeout=120_000)
            _shrink_png(SCREENSHOT)
            errors = list(page.errors)
        finally:
            browser.close()
    return {
        "frames_per_second": stats["fps"],
        "mediapipe_ms": float(np.mean(stats["mp"])),
        "model_ms": float(np.mean(stats["model"])) if stats["model"] else None,
        "frames": stats["frames"],
        "mediapipe_frames": len(stats["mp"]),
        "answer": stats["answer"],
        "console_errors": errors,
        "seconds": seconds,
    }


def write_markdown(result: dict, path: Path) -> None:
    """benchmarks/web_parity.md from the measured result."""
    lines = [
        "# The browser page against Python (benchmarks/web_parity.py)",
        "",
        f"Written by `{result.get('command', 'python benchmarks/web_parity.py')}` on {result['machine']} "
        f"({result['date']}), a machine shared with other jobs while it ran. Headless {result['chromium']}, "
        f"`@mediapipe/holistic` {result['holistic']}, `@litertjs/core` {result['litert']}; "
        f"Python mediapipe {result['python_mediapipe']}.",
        "",
        "Keypoints: the same decoded frames to Python MediaPipe and to the page; x, y differences in units "
        "of the "
        "picture's width and height, over frames where both found the part. Found: share of frames "
        "(Python / page).",
        "",
        "| clip | frames | part | found (Python / page) | mean x,y difference | max x,y difference |",
        "|---|---|---|---|---|---|",
    ]
    for clip in result["clips"]:
        for part, row in clip["parts"].items():
            mean = f"{row['mean_xy_difference']:.4f}" if "mean_xy_difference" in row else "-"
            largest = f"{row['max_xy_difference']:.3f}" if "max_xy_difference" in row else "-"
            lines.append(
                f"| {clip['clip']} | {clip['frames']} | {part} | {row['found_python']:.2f} / "
                f"{row['found_page']:.2f} | {mean} | {largest} |"
            )
    lines += [
        "",
        "Answers: `python -m utils predict` on the clip, and the page (its windows and mean, LiteRT.js) on "
        "its own keypoints of the same frames.",
        "",
        "| clip | model | predict | page | same | largest probability difference |",
        "|---|---|---|---|---|---|",
    ]
    for clip in result["clips"]:
        lines.append(
            f"| {clip['clip']} | {clip['model']} | {clip['predict']['label']} "
            f"{clip['predict']['probability']:.2f} | {clip['page']['label']} "
            f"{clip['page']['probability']:.2f}"
            f" | {'yes' if clip['same_answer'] else 'no'} | {clip['max_probability_difference']:.3f} |"
        )
    same = sum(clip["same_answer"] for clip in result["clips"])
    lines += [
        "",
        f"Same answer on {same} of {len(result['clips'])} clips.",
        "",
        "Speed on this machine (measured by the page; MediaPipe runs its WebGL graphs in software here, "
        "no GPU):",
        "",
        "| what | page | Python |",
        "|---|---|---|",
    ]
    for clip in result["clips"]:
        lines.append(
            f"| MediaPipe ms/frame, {clip['clip']} ({clip['size'][0]}x{clip['size'][1]}) | "
            f"{clip['page_mediapipe_ms']:.0f} | {clip['python_mediapipe_ms']:.0f} |"
        )
    model_ms = np.mean([clip["page_model_ms"] for clip in result["clips"]])
    lines.append(f"| model ms/window (LiteRT.js, WebAssembly) | {model_ms:.1f} | |")
    live = result.get("live")
    if live:
        lines.append(
            f"| live page, fake camera 256x256: frames/s (MediaPipe ms/frame, model ms/window) | "
            f"{live['frames_per_second']:.2f} ({live['mediapipe_ms']:.0f}, "
            f"{live['model_ms'] or float('nan'):.1f}) | |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def versions() -> dict:
    """Versions of the browser, the npm packages and Python mediapipe."""
    import subprocess

    import mediapipe

    lock = json.loads((web.WEB_SOURCE / "package-lock.json").read_text())["packages"]
    chromium = subprocess.run(
        [web.find_chromium(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "chromium": chromium,
        "holistic": lock["node_modules/@mediapipe/holistic"]["version"],
        "litert": lock["node_modules/@litertjs/core"]["version"],
        "python_mediapipe": mediapipe.__version__,
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--clips",
        nargs="*",
        default=["hello/alpyksl", "yes/alpyksl"],
        help="real ASL clips <sign>/<source> of ../shared/real/asl_clips",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fps-seconds", type=float, default=60.0)
    parser.add_argument("--out", default="/tmp/web_parity")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite web_parity.md from the web_parity.json already written",
    )
    args = parser.parse_args()
    if args.markdown_only:
        write_markdown(json.loads((HERE / "web_parity.json").read_text()), HERE / "web_parity.md")
        return
    if web.find_chromium() is None or web.find_npm() is None:
        raise SystemExit("this benchmark needs Chromium and npm (apt install chromium nodejs npm)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [("synthetic hello (new signer)", synthetic_clip(out), train_synthetic(out, args.epochs))]
    if REAL.is_dir():
        real_run = train_real(out, args.epochs)
        tasks += [(f"real {clip}", REAL / "asl_clips" / f"{clip}.mp4", real_run) for clip in args.clips]
    else:
        print(f"{REAL} not found: the synthetic clip only")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/web_parity.py " + " ".join(sys.argv[1:]),
        "epochs": args.epochs,
        **versions(),
        "clips": [],
    }
    sites = {}
    with sync_playwright() as playwright:
        for name, video, run in tasks:
            if run not in sites:
                sites[run] = web.build_web(run, out / f"site_{run.name}", verbose=False)
            with web.StaticServer(sites[run]) as url:
                browser, page = open_page(playwright, sites[run], url)
                try:
                    result["clips"].append(measure_clip(page, name, video, run))
                    result["clips"][-1]["console_errors"] = list(page.errors)
                finally:
                    browser.close()
            print(json.dumps(result["clips"][-1], indent=1)[:1500], flush=True)
        synthetic_run = tasks[0][2]
        result["live"] = live_speed(
            playwright, sites[synthetic_run], out / "synthetic_hello.y4m", args.fps_seconds
        )
        print(result["live"], flush=True)
    (HERE / "web_parity.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    write_markdown(result, HERE / "web_parity.md")
    print(f"wrote {HERE / 'web_parity.json'}, {HERE / 'web_parity.md'} and {SCREENSHOT}")


if __name__ == "__main__":
    main()
