"""The main job: execute the notebooks in order, keep the executed copies, and print a summary.

``python -m utils course`` (``make run``) writes the executed notebooks and ``course_run.json`` (seconds per
notebook, the commit, the machine) under ``results/notebooks``; ``python -m utils course --publish`` copies
them into ``docs/notebooks/`` (figures recompressed, progress bars dropped), where a reader on GitHub sees
every chapter with its outputs, and ``python -m utils report`` takes the chapters' times from there.
"""
from __future__ import annotations

import base64
import io
import json
import os
import platform
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from utils import paths
from utils.errors import CourseError

NOTEBOOKS_DIR = paths.NOTEBOOKS_DIR


def course_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks of the course, in reading order; CourseError when the folder has none."""
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise CourseError(f"no course notebooks (NN_*.ipynb) in {folder}: they come with the repository, not "
                          "with `pip install`. Clone the repository and run from inside it, or set "
                          "COURSE_HOME to the folder that holds notebooks/ (project folder now: "
                          f"{paths.PROJECT_DIR})")
    return notebooks


def execute_notebook(path: Path, out_path: Path, timeout: int = 1800) -> float:
    """Execute one notebook in its own folder, write the executed copy (also when it fails); return
    seconds."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = out_path.with_suffix(".log")  # the kernel's own stderr (TensorFlow/MediaPipe start-up noise)
    try:
        with open(log_path, "w") as log:
            client.execute(stderr=log)
    except CellExecutionError as error:
        nbformat.write(notebook, out_path)
        raise CourseError(
            f"{path.name} failed; the executed copy with the error is {out_path}\n{error}"
        ) from None
    nbformat.write(notebook, out_path)
    return time.perf_counter() - start


def summary_table(runs_dir: Path) -> str:
    """A text table of every run under runs_dir (:func:`utils.evaluation.evaluate.compare_runs`), and the
    signers each run was tested on."""
    from utils.evaluation.evaluate import compare_runs

    run_dirs = [path.parent for path in sorted(runs_dir.glob("*/metrics.json"))]
    if not run_dirs:
        return f"(no runs with metrics.json under {runs_dir})"
    tested: dict[str, list[str]] = {}
    lines = [f"{'run':<28} {'model':<9} {'config':<12} {'test acc':>8} {'macro-F1':>8} {'params':>10} "
             f"{'train s':>8}"]
    for row in compare_runs(run_dirs).fillna({"params": 0}).itertuples():
        lines.append(f"{row.run:<28} {row.model:<9} {row.config:<12} {row.test_accuracy:>8.3f} "
                     f"{row.macro_f1:>8.3f} {int(row.params):>10,} {row.train_seconds:>8.0f}")
        tested.setdefault(row.test_groups or "(not recorded)", []).append(row.run)
    if len(tested) == 1 and "(not recorded)" not in tested:
        lines.append(f"Every run was tested on the same held-out signers: {next(iter(tested))}.")
    else:
        lines.append("The runs were tested on different signers, so compare them with care:")
        lines += [f"  {signers}: {', '.join(runs)}" for signers, runs in tested.items()]
    return "\n".join(lines)


def _commit() -> str:
    """The checkout's commit (short hash, '+' when files differ from it), or 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.PROJECT_DIR,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=paths.PROJECT_DIR, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_course(only: list[str] | None = None) -> Path:
    """Execute the course notebooks in order (or those whose names start with `only`); return the output
    folder."""
    from utils.config import course_settings

    settings = course_settings()
    out_dir = paths.RESULTS_DIR / "notebooks"
    notebooks = course_notebooks()
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not notebooks:
        raise CourseError(f"no notebooks in {NOTEBOOKS_DIR} start with {' or '.join(only)}")
    print(f"Running {len(notebooks)} notebooks on {settings.dataset} (FAST={int(settings.fast)}); "
          f"executed copies go to {out_dir}", flush=True)
    total = time.perf_counter()
    record = {"commit": _commit(), "dataset": settings.dataset, "fast": bool(settings.fast),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "started": _now(), "notebooks": {}}
    earlier = out_dir / RUN_RECORD
    if only and earlier.is_file():  # a partial run keeps the other notebooks' entries (each names its commit)
        kept = json.loads(earlier.read_text())
        if (kept.get("dataset"), kept.get("fast")) == (record["dataset"], record["fast"]):
            record["notebooks"] = kept.get("notebooks", {})
    for notebook in notebooks:
        print(f"  {notebook.name:<32}", end=" ", flush=True)
        seconds = execute_notebook(notebook, out_dir / notebook.name)
        print(f"{seconds:6.0f} s", flush=True)
        record["notebooks"][notebook.name] = {"seconds": round(seconds, 1), "load_average": _load_average(),
                                              "commit": record["commit"]}
        record["notebooks"] = dict(sorted(record["notebooks"].items()))
        (out_dir / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    print(f"\nAll notebooks ran in {(time.perf_counter() - total) / 60:.1f} min. Models trained:\n")
    print(summary_table(settings.runs_dir))
    print(f"\nFigures: {paths.FIGURES_DIR}\nExecuted notebooks: {out_dir}")
    return out_dir


RUN_RECORD = "course_run.json"
PUBLISHED_DIR = paths.PROJECT_DIR / "docs" / "notebooks"
MAX_IMAGE_SIDE = 1000  # pixels: larger figures are shrunk when published


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _smaller_png(data: str) -> str:
    """A base64 PNG re-encoded with at most 256 colours and MAX_IMAGE_SIDE pixels (the original if not
    smaller)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    buffer = io.BytesIO()
    image.convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    smaller = base64.b64encode(buffer.getvalue()).decode("ascii")
    return smaller if len(smaller) < len(data) else data


MAX_ANIMATION_SIDE, MAX_ANIMATION_FRAMES = 240, 12  # an animation is published smaller, with fewer frames


def _smaller_gif(data: str) -> str:
    """A base64 GIF animation shrunk to MAX_ANIMATION_SIDE pixels and at most MAX_ANIMATION_FRAMES frames
    (evenly spaced, each shown longer so the animation lasts as long), or the original if not smaller."""
    from PIL import Image, ImageSequence

    animation = Image.open(io.BytesIO(base64.b64decode(data)))
    frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(animation)]
    step = max(1, -(-len(frames) // MAX_ANIMATION_FRAMES))
    kept = []
    for frame in frames[::step]:
        frame.thumbnail((MAX_ANIMATION_SIDE, MAX_ANIMATION_SIDE))
        kept.append(frame.quantize(128))
    buffer = io.BytesIO()
    duration = animation.info.get("duration", 100) * step
    kept[0].save(buffer, format="GIF", save_all=True, append_images=kept[1:], duration=duration, loop=0,
                 optimize=True)
    smaller = base64.b64encode(buffer.getvalue()).decode("ascii")
    return smaller if len(smaller) < len(data) else data


def _clean_outputs(cell: dict) -> None:
    """Drop progress bars (stderr streams, widget views) and shrink figures, in place."""
    outputs = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            continue
        data = output.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data:
            continue
        if "image/png" in data:
            data["image/png"] = _smaller_png(data["image/png"])
        if "image/gif" in data:
            data["image/gif"] = _smaller_gif(data["image/gif"])
        outputs.append(output)
    cell["outputs"] = outputs


def publish(source: Path | None = None, dest: Path = PUBLISHED_DIR) -> list[Path]:
    """Copy the executed notebooks and course_run.json of ``make run`` into docs/notebooks/ for readers on
    GitHub."""
    import nbformat

    source = source or paths.RESULTS_DIR / "notebooks"
    record_path = source / RUN_RECORD
    if not record_path.is_file():
        raise CourseError(f"{record_path} not found: run `make run` (python -m utils course) first")
    record = json.loads(record_path.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in record["notebooks"]:
        notebook = nbformat.read(source / name, as_version=4)
        notebook.metadata.pop("widgets", None)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                _clean_outputs(cell)
        commit = record["notebooks"][name].get("commit", record["commit"])
        note = (f"*Executed by `make run` at commit `{commit}` on {record['machine']} "
                f"({record['started'][:10]}, dataset `{record['dataset']}`"
                f"{', FAST' if record['fast'] else ''}). The chapter itself is [`notebooks/{name}`]"
                f"(../../notebooks/{name}).*")
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(note))
        nbformat.write(notebook, dest / name)
        written.append(dest / name)
    shutil.copyfile(record_path, dest / RUN_RECORD)
    return written
