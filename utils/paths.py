"""Where data, caches and results live; every path is overridable by an environment variable.

Everything hangs off one *project folder*: the repository when the code runs from a checkout (editable
install or ``python -m utils`` inside it), else ``$COURSE_HOME``, else the current folder. A regular
``pip install`` therefore never writes ``data/`` or ``results/`` into site-packages.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _is_checkout(folder: Path) -> bool:
    """True when folder is this course's repository (pyproject.toml next to utils/), not site-packages."""
    return (folder / "pyproject.toml").is_file() and (folder / "utils" / "__init__.py").is_file() \
        and "site-packages" not in folder.parts and "dist-packages" not in folder.parts


def project_dir(package_dir: Path = PACKAGE_DIR, environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Path:
    """The project folder: the checkout holding package_dir, else $COURSE_HOME, else the current folder."""
    environ = os.environ if environ is None else environ
    if _is_checkout(package_dir.parent):
        return package_dir.parent
    if environ.get("COURSE_HOME"):
        return Path(environ["COURSE_HOME"]).expanduser().resolve()
    return (cwd or Path.cwd()).resolve()


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


PROJECT_DIR = project_dir()
REPO_ROOT = PROJECT_DIR  # the older name, kept for code written before installs outside a checkout
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
DATA_DIR = _env_path("COURSE_DATA_DIR", PROJECT_DIR / "data")
RAW_DIR = DATA_DIR / "raw"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
FEATURES_DIR = DATA_DIR / "features"
CACHE_DIR = _env_path("COURSE_CACHE_DIR", DATA_DIR / "cache")
RESULTS_DIR = _env_path("COURSE_RESULTS_DIR", PROJECT_DIR / "results")
FIGURES_DIR = RESULTS_DIR / "figures"
RUNS_DIR = RESULTS_DIR / "runs"
# Real recordings used by some tests and notebook 02 when present (never part of the repository).
REAL_RECORDINGS_DIR = _env_path("COURSE_REAL_DIR", PROJECT_DIR.parent / "shared" / "real")
