"""Where data, caches and results live; every path is overridable by an environment variable."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


DATA_DIR = _env_path("COURSE_DATA_DIR", REPO_ROOT / "data")
RAW_DIR = DATA_DIR / "raw"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
FEATURES_DIR = DATA_DIR / "features"
CACHE_DIR = _env_path("COURSE_CACHE_DIR", DATA_DIR / "cache")
RESULTS_DIR = _env_path("COURSE_RESULTS_DIR", REPO_ROOT / "results")
FIGURES_DIR = RESULTS_DIR / "figures"
RUNS_DIR = RESULTS_DIR / "runs"
# Real recordings used by some tests and notebook 02 when present (never part of the repository).
REAL_RECORDINGS_DIR = _env_path("COURSE_REAL_DIR", REPO_ROOT.parent / "shared" / "real")
