"""The course's result tables, written from the results files, never typed (``python -m utils report``).

A table in the README or in ``docs/*.md`` sits between two markers::

    <!-- table: expect -->
    | ... generated rows ... |
    <!-- end table -->

``python -m utils report`` rewrites every such block from the JSON files the studies wrote
(``benchmarks/*.json``); ``python -m utils report --check`` changes nothing and lists the blocks that differ
from what the files say (a table edited by hand, or a results file regenerated without the tables), which is
what ``tests/test_report.py`` runs. Notebooks show the same tables with :func:`table`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from utils import paths
from utils.errors import ConfigError
from utils.evaluation.crossval import format_interval

BENCHMARKS_DIR = paths.PROJECT_DIR / "benchmarks"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


# ----------------------------------------------------------------------------- reading the results files
def _load(name: str, folder: Path) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        raise ConfigError(f"{path} not found: it is written by benchmarks/{Path(name).stem}.py "
                          "(see benchmarks/README.md)")
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the tables
MODEL_ROWS = (  # (model name in the results, what the reader sees)
    ("linear", "linear baseline (`--model linear`)"),
    ("boosted", "boosted trees (`--model boosted`)"),
    ("lstm", "keypoint model (`--model lstm`)"),
    ("convlstm", "ConvLSTM on frames (`--model convlstm`)"),
    ("fused", "fused keypoints + frames (`--model fused`)"),
)


def same_people_table(folder: Path = BENCHMARKS_DIR) -> str:
    """Every model on the same synthetic signers (benchmarks/compare.json)."""
    result = _load("compare.json", folder)
    n = result["num_folds"]
    lines = [f"| model | accuracy on unseen signers, mean [95% interval], n = {n} folds | lowest fold |",
             "|---|---|---|",
             f"| chance (a uniform guess over {result['num_classes']} signs) | {result['chance']:.3f} | |"]
    for name, label in MODEL_ROWS:
        entry = result["models"].get(name)
        if entry is None:
            continue
        lowest = min(fold["accuracy"] for fold in entry["per_fold"])
        lines.append(f"| {label} | {format_interval(entry['accuracy'], digits=2)} | {lowest:.3f} |")
    return "\n".join(lines)


def same_people_signers(folder: Path = BENCHMARKS_DIR) -> str:
    """One line: the test signers of each fold of benchmarks/compare.json, and where it came from."""
    result = _load("compare.json", folder)
    first = next(iter(result["models"].values()))
    folds = "; ".join(", ".join(fold["test_groups"]) for fold in first["per_fold"])
    return (f"Test signers of the {result['num_folds']} folds, the same for every row: {folds}. "
            f"Written by `{result['command']}` (commit {result['commit']}).")


TABLES: dict[str, Callable[[Path], str]] = {
    "same-people": same_people_table,
    "same-people-signers": same_people_signers,
}


def table(name: str, folder: Path = BENCHMARKS_DIR) -> str:
    """The markdown of one generated table (e.g. for ``IPython.display.Markdown`` in a notebook)."""
    if name not in TABLES:
        raise ConfigError(f"no generated table called {name!r}; known: {', '.join(TABLES)}")
    return TABLES[name](folder)


# ----------------------------------------------------------------------------- the documents
def documents(project_dir: Path = paths.PROJECT_DIR) -> list[Path]:
    """The files whose tables are generated: README.md and docs/*.md."""
    return [path for path in [project_dir / "README.md", *sorted((project_dir / "docs").glob("**/*.md"))]
            if path.is_file()]


def render(text: str, folder: Path = BENCHMARKS_DIR) -> str:
    """The text with every table block rewritten from the results files."""
    def replace(match: re.Match) -> str:
        return match.group(1) + table(match.group("name"), folder) + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def differences(project_dir: Path = paths.PROJECT_DIR, folder: Path | None = None) -> list[str]:
    """'file: table NAME' for every block that differs from what the results files say."""
    folder = folder or project_dir / "benchmarks"
    found = []
    for path in documents(project_dir):
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group("body") != table(match.group("name"), folder) + "\n":
                found.append(f"{path.relative_to(project_dir)}: table {match.group('name')}")
    return found


def write(project_dir: Path = paths.PROJECT_DIR, folder: Path | None = None) -> list[Path]:
    """Rewrite every generated table; returns the files that changed."""
    folder = folder or project_dir / "benchmarks"
    changed = []
    for path in documents(project_dir):
        text = path.read_text(encoding="utf-8")
        new = render(text, folder)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
