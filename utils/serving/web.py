"""The browser page of a trained keypoint run: a static folder that recognises signs with the camera.

``python -m utils export --model RUN --web OUT`` (or ``make web RUN=...``) writes OUT, servable by any static
server (``python -m http.server -d OUT``)::

    index.html, style.css, app.js   the page (web/ in the repository; app.js bundled by esbuild)
    holistic/                       MediaPipe Holistic for JavaScript (npm @mediapipe/holistic): wasm + models
    litert/                         LiteRT.js's WebAssembly runtime (npm @litertjs/core)
    model/                          model.tflite (built-in ops, batch 1, preprocessing inside), export.json

The page runs MediaPipe Holistic on each frame, builds the course's 1662-number vector (face, pose, left
hand, right hand; :mod:`utils.data.keypoints`), keeps a sliding window that spans what a training clip
spanned, samples it to the model's frame count as ``predict`` does, and shows the top signs. Nothing is
fetched from another site at run time. Building needs Node.js and npm (``npm ci`` installs the pinned
packages of web/package-lock.json into web/node_modules the first time).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from utils import paths
from utils.errors import CourseError, check_can_write

WEB_SOURCE = paths.PROJECT_DIR / "web"
#: The files of the page itself, copied from web/ (app.js is bundled from web/src/).
PAGE_FILES = ("index.html", "style.css")
#: What the page needs of @mediapipe/holistic: the solution script, its graph, wasm (with and without SIMD),
#: packed models, and the pose model of model_complexity=1 (the course's setting).
HOLISTIC_FILES = (
    "holistic.js",
    "holistic.binarypb",
    "holistic_solution_packed_assets.data",
    "holistic_solution_packed_assets_loader.js",
    "holistic_solution_simd_wasm_bin.data",
    "holistic_solution_simd_wasm_bin.js",
    "holistic_solution_simd_wasm_bin.wasm",
    "holistic_solution_wasm_bin.js",
    "holistic_solution_wasm_bin.wasm",
    "pose_landmark_full.tflite",
)
#: LiteRT.js's CPU runtime: the relaxed-SIMD build, and the compatible one for browsers without relaxed SIMD.
LITERT_FILES = (
    "litert_wasm_internal.js",
    "litert_wasm_internal.wasm",
    "litert_wasm_compat_internal.js",
    "litert_wasm_compat_internal.wasm",
)


def find_npm() -> str | None:
    """The npm command on PATH, or None."""
    return shutil.which("npm")


def install_packages(source: Path = WEB_SOURCE, quiet: bool = True) -> Path:
    """``npm ci`` in web/ when node_modules is missing or older than package-lock.json; returns it."""
    npm = find_npm()
    if npm is None:
        raise CourseError(
            "npm was not found: install Node.js 18 or newer (Debian/Ubuntu: apt install nodejs npm) "
            "to build the web page"
        )
    modules, lock = source / "node_modules", source / "package-lock.json"
    stamp = modules / ".package-lock.json"  # npm writes it on every install
    if stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return modules
    command = [npm, "ci", "--no-audit", "--no-fund"] + (["--silent"] if quiet else [])
    done = subprocess.run(command, cwd=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise CourseError(f"npm ci in {source} failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")
    return modules


def bundle_app(out_file: Path, source: Path = WEB_SOURCE) -> Path:
    """Bundle web/src/app.js and its imports (LiteRT.js included) into one ES module with esbuild."""
    # esbuild's command: its native program, or a Node.js script that starts it (both run as they are)
    esbuild = source / "node_modules" / "esbuild" / "bin" / "esbuild"
    command = [
        str(esbuild),
        str(source / "src" / "app.js"),
        "--bundle",
        "--format=esm",
        "--target=es2020",
        "--log-level=warning",
        f"--outfile={out_file}",
    ]
    done = subprocess.run(command, cwd=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise CourseError(
            f"esbuild could not bundle web/src/app.js:\n{(done.stdout + done.stderr).strip()[-2000:]}"
        )
    return out_file


def tflite_ops(path: Path) -> list[str]:
    """The names of the operators in a .tflite file (Select TF ops show as Flex...)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT is the successor)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    return sorted({detail["op_name"] for detail in interpreter._get_ops_details()})


def _copy_files(source: Path, names: tuple[str, ...], target: Path) -> None:
    """Copy the named files of a folder into target, which is created."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (source / name).is_file():
            raise CourseError(f"{source / name} is missing: run `npm ci` in {WEB_SOURCE} again")
        shutil.copy2(source / name, target / name)


def build_web(model_dir: str | Path, out_dir: str | Path, verbose: bool = True) -> Path:
    """Write the static page of a trained keypoint run into out_dir and return out_dir.

    Fails with a CourseError when the run is not a keypoint-only model, when its TFLite file would need
    Select TF ops (LiteRT.js runs built-in ops only), or when npm is missing.
    """
    from utils.serving.export import INFO_NAME, export_model

    out_dir = Path(out_dir)
    check_can_write(out_dir, out_dir)
    run_info = (
        json.loads((Path(model_dir) / "run.json").read_text())
        if (Path(model_dir) / "run.json").is_file()
        else None
    )
    if run_info is not None and list(run_info.get("inputs") or ["keypoints"]) != ["keypoints"]:
        raise CourseError(
            f"{model_dir}: the web page runs keypoint models only; this run takes "
            f"{', '.join(run_info['inputs'])}"
        )
    modules = install_packages()
    out_dir.mkdir(parents=True, exist_ok=True)
    export_model(model_dir, out_dir / "model", formats=["tflite"], verbose=verbose)
    ops = tflite_ops(out_dir / "model" / "model.tflite")
    flex = [op for op in ops if op.lower().startswith("flex")]
    if flex:
        raise CourseError(
            f"{model_dir}: its TFLite file needs Select TF ops ({', '.join(flex)}), which LiteRT.js "
            "cannot run in a browser; choose a model that converts with built-in ops"
        )
    info = json.loads((out_dir / "model" / INFO_NAME).read_text())
    info["tflite_ops"] = ops
    (out_dir / "model" / INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    for name in PAGE_FILES:
        shutil.copy2(WEB_SOURCE / name, out_dir / name)
    bundle_app(out_dir / "app.js")
    _copy_files(modules / "@mediapipe" / "holistic", HOLISTIC_FILES, out_dir / "holistic")
    _copy_files(modules / "@litertjs" / "core" / "wasm", LITERT_FILES, out_dir / "litert")
    if verbose:
        size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file()) / 1e6
        print(
            f"web page: {out_dir} ({size:.0f} MB); serve it with  python -m http.server -d {out_dir}  "
            "and open "
            "http://localhost:8000",
            flush=True,
        )
    return out_dir


# ----------------------------------------------------------------------------- checking the page in a browser
#: Chromium's names on Debian/Ubuntu and elsewhere; CHROMIUM=/path/to/chrome chooses another.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) program: $CHROMIUM, else the first of CHROMIUM_NAMES on PATH."""
    import os

    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)


def write_y4m(path: str | Path, frames, fps: int = 30) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) as an uncompressed .y4m video (4:2:0), the format Chromium's fake
    camera plays (--use-file-for-fake-video-capture). Width and height must be even."""
    import cv2
    import numpy as np

    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    if frames.ndim != 4 or frames.dtype != np.uint8 or height % 2 or width % 2:
        raise ValueError(
            f"write_y4m needs uint8 (T, H, W, 3) frames of even size, got {frames.dtype} {frames.shape}"
        )
    path = Path(path)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


class StaticServer:
    """``python -m http.server`` for a folder, in a thread: ``with StaticServer(folder) as url:``."""

    def __init__(self, folder: str | Path) -> None:
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # no line per request
                pass

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
        )

    def __enter__(self) -> str:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser_args(fake_camera: str | Path | None = None) -> list[str]:
    """Chromium's command-line switches: a fake camera playing a .y4m file (absolute path) without asking."""
    if fake_camera is None:
        return []
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={Path(fake_camera).resolve()}",
    ]


def is_runtime_log(text: str) -> bool:
    """Console lines that are MediaPipe's own log lines (glog "I0000 ...", "W0000 ...") rather than errors."""
    import re

    return bool(re.match(r"^[IW]\d{4} ", text))
