"""The main job: execute notebooks 01-06 in order, keep the executed copies, and print a summary."""
from __future__ import annotations

import json
import time
from pathlib import Path

from utils import paths
from utils.errors import CourseError

NOTEBOOKS_DIR = paths.NOTEBOOKS_DIR


def course_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks of the course, in reading order; CourseError when the folder has none."""
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise CourseError(f"no course notebooks (NN_*.ipynb) in {folder}: they come with the repository, not with "
                          f"`pip install`. Clone the repository and run from inside it, or set COURSE_HOME to the "
                          f"folder that holds notebooks/ (project folder now: {paths.PROJECT_DIR})")
    return notebooks


def execute_notebook(path: Path, out_path: Path, timeout: int = 1800) -> float:
    """Execute one notebook in its own folder, write the executed copy (also when it fails); return seconds."""
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
        raise CourseError(f"{path.name} failed; the executed copy with the error is {out_path}\n{error}") from None
    nbformat.write(notebook, out_path)
    return time.perf_counter() - start


def summary_table(runs_dir: Path) -> str:
    """A text table of every run's metrics.json under runs_dir."""
    rows = []
    for metrics_path in sorted(runs_dir.glob("*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        rows.append((metrics_path.parent.name, metrics.get("model", "?"), metrics.get("config", {}),
                     metrics.get("test_accuracy", float("nan")), metrics.get("macro_f1", float("nan")),
                     metrics.get("params", 0), metrics.get("train_seconds", float("nan"))))
    if not rows:
        return f"(no runs with metrics.json under {runs_dir})"
    lines = [f"{'run':<28} {'model':<9} {'config':<12} {'test acc':>8} {'macro-F1':>8} {'params':>10} {'train s':>8}"]
    for run, model, config, acc, f1, params, seconds in rows:
        config_name = config.get("name", "?") if isinstance(config, dict) else str(config)
        lines.append(f"{run:<28} {model:<9} {config_name:<12} {acc:>8.3f} {f1:>8.3f} {params:>10,} {seconds:>8.0f}")
    return "\n".join(lines)


def run_course(only: list[str] | None = None) -> Path:
    """Execute the course notebooks in order (or those whose names start with `only`); return the output folder."""
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
    for notebook in notebooks:
        print(f"  {notebook.name:<32}", end=" ", flush=True)
        seconds = execute_notebook(notebook, out_dir / notebook.name)
        print(f"{seconds:6.0f} s", flush=True)
    print(f"\nAll notebooks ran in {(time.perf_counter() - total) / 60:.1f} min. Models trained:\n")
    print(summary_table(settings.runs_dir))
    print(f"\nFigures: {paths.FIGURES_DIR}\nExecuted notebooks: {out_dir}")
    return out_dir
