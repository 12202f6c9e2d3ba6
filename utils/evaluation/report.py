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


def web_speed_table(folder: Path = BENCHMARKS_DIR) -> str:
    """Speed of the browser page, measured by the page in headless Chromium (benchmarks/web_parity.json)."""
    result = _load("web_parity.json", folder)
    live, clips = result["live"], result["clips"]
    model_ms = sum(clip["page_model_ms"] for clip in clips) / len(clips)
    lines = [f"| on {result['machine']}, {result['chromium']} | page | Python |", "|---|---|---|",
             f"| live page, fake camera 256x256: frames per second | {live['frames_per_second']:.2f} | |",
             f"| MediaPipe, live page (ms per frame) | {live['mediapipe_ms']:.0f} | |"]
    for clip in clips:
        lines.append(f"| MediaPipe, {clip['clip']} {clip['size'][0]}x{clip['size'][1]} (ms per frame) | "
                     f"{clip['page_mediapipe_ms']:.0f} | {clip['python_mediapipe_ms']:.0f} |")
    lines.append(f"| model, LiteRT.js WebAssembly (ms per window) | {model_ms:.1f} | |")
    return "\n".join(lines)


def web_parity_table(folder: Path = BENCHMARKS_DIR) -> str:
    """The page's answers beside predict's on the same clips (benchmarks/web_parity.json)."""
    clips = _load("web_parity.json", folder)["clips"]
    lines = ["| clip | predict | page | largest probability difference | hands found (Python / page) |",
             "|---|---|---|---|---|"]
    for clip in clips:
        hands = " ".join(f"{clip['parts'][part]['found_python']:.2f}/{clip['parts'][part]['found_page']:.2f}"
                         for part in ("left_hand", "right_hand"))
        lines.append(f"| {clip['clip']} | {clip['predict']['label']} {clip['predict']['probability']:.2f} | "
                     f"{clip['page']['label']} {clip['page']['probability']:.2f} | "
                     f"{clip['max_probability_difference']:.3f} | left, right: {hands} |")
    return "\n".join(lines)


#: The steps from the plain LSTM to the recommended keypoint model, as rows of benchmarks/real_signers.json:
#: (the study's row name, what the reader sees). Each adds one thing to the row above it.
REAL_SIGNER_STEPS = (
    ("boosted", "boosted trees on the same statistics (`--model boosted`)"),
    ("linear", "linear baseline: logistic regression on segment statistics (`--model linear`)"),
    ("lstm, old recommended", "a plain LSTM(128) on normalised, augmented keypoints"),
    ("conv_gru", "1D convolutions + GRU on the linear model's arm and hand keypoints"),
    ("conv_gru, hand angles", "+ finger joint angles and fingertip distances"),
    ("conv_gru, hand angles, balanced classes", "+ classes weighted to count alike"),
    ("conv_gru, hand angles, balanced classes, label smoothing", "+ labels smoothed by 0.1"),
    ("conv_gru, hand angles, balanced classes, label smoothing x3",
     "+ three networks averaged: the recommended `lstm`"),
)
REAL_SIGNER_SETS = (("four", "4 signers, 9 signs"), ("crowd", "crowd of 40"), ("all", "all 55 signers"),
                    ("synthetic", "synthetic"), ("transfer", "24 ASL videos (trained on 44 real signers)"))


def _real_signer_cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    low, high = entry.get("interval") or (None, None)
    if low is None or abs(high - low) < 1e-9:  # one test (the ASL videos), or the same value in every fold
        return f"{entry['mean']:.3f}"
    return f"{entry['mean']:.3f} [{max(low, 0.0):.2f}, {min(high, 1.0):.2f}]"


def real_signers_table(folder: Path = BENCHMARKS_DIR) -> str:
    """The keypoint models on people they never saw, one step per row (benchmarks/real_signers.json)."""
    results = _load("real_signers.json", folder)["results"]
    sets = [(key, label) for key, label in REAL_SIGNER_SETS
            if any(key in results.get(row, {}) for row, _ in REAL_SIGNER_STEPS)]
    def folds(key: str) -> str:
        counts = {len(results[row][key].get("folds") or []) for row, _ in REAL_SIGNER_STEPS
                  if key in results.get(row, {})}
        return f" (n = {max(counts)})" if counts and max(counts) > 1 else ""

    lines = ["| model | " + " | ".join(label + folds(key) for key, label in sets) + " |",
             "|---" * (len(sets) + 1) + "|"]
    chance = results.get("chance")
    if chance:
        cells = " | ".join(_real_signer_cell(chance.get(key)) for key, _ in sets)
        lines.append(f"| chance (a uniform guess) | {cells} |")
    for row, label in REAL_SIGNER_STEPS:
        if row in results:
            cells = " | ".join(_real_signer_cell(results[row].get(key)) for key, _ in sets)
            lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def real_signers_source(folder: Path = BENCHMARKS_DIR) -> str:
    """Where the real-signer figures come from."""
    result = _load("real_signers.json", folder)
    return ("Mean accuracy over folds by signer [95% t-interval]; the 24 ASL videos are one test, no "
            "interval. "
            "Written by `python benchmarks/real_signers.py` (every row, fold and command in "
            "[benchmarks/real_signers.md](../benchmarks/real_signers.md)); "
            f"{len(result['results'])} rows in the results file, {len(REAL_SIGNER_STEPS)} shown here.")


#: The rows of the 55-signer table (set "all" of benchmarks/real_signers.json): (the study's row, what the
#: reader sees). The baselines, the recommended model, then what was tried on top of it.
ALL_SIGNER_ROWS = (
    ("linear", "linear baseline (`--model linear`)"),
    ("boosted", "boosted trees (`--model boosted`)"),
    ("conv_gru, hand angles, balanced classes, label smoothing", "one network of the recommended `lstm`"),
    ("conv_gru, hand angles, balanced classes, label smoothing x3",
     "**the recommended `lstm`** (3 networks)"),
    ("recommended, mirrored", "one network, mirrored clips instead of canonical handedness"),
    ("recommended, balanced sampling", "one network, class-balanced batches instead of class weights"),
    ("recommended, balanced sampling x3", "three networks, class-balanced batches"),
    ("recommended, nearest class", "the recommended networks with a nearest-class head"),
    ("recommended + nearest class", "the recommended `lstm` + its nearest-class head"),
    ("recommended + boosted", "one network + boosted trees, averaged"),
    ("recommended x3 + boosted", "the recommended `lstm` + boosted trees, averaged"),
    ("recommended, prior-corrected", "the recommended `lstm`, divided by each sign's share of training"),
    ("boosted, prior-corrected", "boosted trees, divided by each sign's share of training"),
)
#: a sign's recall is judged in the folds where at least this many training signers showed it
MIN_TRAINING_SIGNERS = 3


def all_signers_table(folder: Path = BENCHMARKS_DIR) -> str:
    """The 55 real signers: baselines, the recommended keypoint model and what was tried on top of it, on the
    same 5 folds by signer (benchmarks/real_signers.json, set "all")."""
    results = _load("real_signers.json", folder)["results"]
    lines = ["| model | accuracy, mean [95% interval] | signs a training signer showed | lowest fold | "
             "24 ASL videos (trained on all 55) |", "|---|---|---|---|---|"]
    for row, label in (("chance", "chance (a uniform guess among the training signs)"), *ALL_SIGNER_ROWS):
        entry = results.get(row, {}).get("all")
        if entry:
            seen = {"mean": entry["mean_seen"], "interval": entry["interval_seen"]}
            videos = _real_signer_cell(results[row].get("transfer_all"))
            lines.append(f"| {label} | {_real_signer_cell(entry)} | {_real_signer_cell(seen)} | "
                         f"{entry['min']:.3f} | {videos} |")
    folds = results.get("linear", {}).get("all", {}).get("folds", [])
    sizes = sorted({len(fold.get("test_signers", [])) for fold in folds} - {0})
    each = f" of {' or '.join(map(str, sizes))} test signers" if sizes else ""
    lines.append("")
    lines.append(f"n = {len(folds)} folds{each}, the same for every row; \"signs a training signer showed\" "
                 "leaves out the test clips of a sign that no training signer of their fold showed.")
    return "\n".join(lines)


def all_signers_signs_table(folder: Path = BENCHMARKS_DIR) -> str:
    """Per sign, the recommended keypoint model on the 55 signers: its recall in each fold and how many
    training signers showed the sign there (benchmarks/real_signers.json, set "all")."""
    row = "conv_gru, hand angles, balanced classes, label smoothing x3"
    folds = _load("real_signers.json", folder)["results"][row]["all"]["folds"]
    signs = sorted({sign for fold in folds for sign in fold["per_sign"]})
    lines = ["| sign | signers who show it | recall per fold (training signers) | mean recall where ≥ "
             f"{MIN_TRAINING_SIGNERS} training signers |", "|---|---|---|---|"]
    for sign in signs:
        cells, judged = [], []
        first = folds[0]["per_sign"].get(sign, {})  # any fold: its training signers + its test signers
        showing = first.get("train_signers", 0) + (first.get("test_signers") or 0)
        for fold in folds:
            entry = fold["per_sign"].get(sign, {"n": 0, "correct": 0, "train_signers": 0})
            if not entry["n"]:
                cells.append(f"– ({entry['train_signers']})")
                continue
            recall = entry["correct"] / entry["n"]
            cells.append(f"{recall:.2f} ({entry['train_signers']})")
            if entry["train_signers"] >= MIN_TRAINING_SIGNERS:
                judged.append(recall)
        mean = f"{sum(judged) / len(judged):.2f}" if judged else "–"
        lines.append(f"| {sign} | {showing} | {' · '.join(cells)} | {mean} |")
    return "\n".join(lines)


def rejected_groups_table(folder: Path = BENCHMARKS_DIR) -> str:
    """How much of the 55 signers' error sits in groups of clips no model accepts
    (benchmarks/rejected_groups.json)."""
    result = _load("rejected_groups.json", folder)
    lines = [f"{result['rejected_clips']} of {result['clips']} clips "
             f"({result['rejected_clips'] / result['clips']:.1%}) belong to one signer's sign that the "
             "linear model, the boosted trees and the recommended `lstm` each answer less than half right, "
             f"out of fold ({len(result['groups'])} such groups, {result['rejected_signers']} signers; "
             f"{len(result['swapped_pairs'])} signers with two signs taken for each other).", "",
             "| model | all clips | the other clips | if every other clip were right |", "|---|---|---|---|"]
    for name, values in result["models"].items():
        lines.append(f"| {name} | {values['accuracy']:.3f} | {values['accuracy_outside']:.3f} | "
                     f"{values['reachable']:.3f} |")
    lines += ["", "| signers | clips | in rejected groups | the recommended `lstm` | if every other clip "
              "were right |", "|---|---|---|---|---|"]
    for name, values in result.get("by_source", {}).items():
        lines.append(f"| {name} | {values['clips']} | {values['rejected_clips']} | "
                     f"{values['recommended']:.3f} | {values['reachable']:.3f} |")
    return "\n".join(lines)


CHAPTERS = {  # what each chapter teaches, in one line (its title comes from the notebook itself)
    "01": "datasets, the synthetic signers, one features file, splits by signer",
    "02": "MediaPipe Holistic, the 1662 numbers of a frame, what it finds and misses",
    "03": "the LSTM on keypoints, then the steps that make it work on new people",
    "04": "the ConvLSTM on video frames, and why frames recognise the signer",
    "05": "fusing the two branches; the original's defects, one cell each",
    "06": "every model on the same people, per-sign errors, the original's numbers",
    "07": "recording your own signs and training on them",
}


def chapters_table(folder: Path = BENCHMARKS_DIR) -> str:
    """The README's chapter table: title, what it teaches, time on the reference machine, executed copy."""
    import nbformat

    project = folder.parent
    record_path = project / "docs" / "notebooks" / "course_run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"notebooks": {}}
    lines = ["| chapter | what you learn | time on 2 CPU cores | with outputs |", "|---|---|---|---|"]
    for path in sorted((project / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
        run = record["notebooks"].get(path.name)
        minutes = ("–" if not run else "< 1 min" if run["seconds"] < 60 else f"{run['seconds'] / 60:.0f} min")
        executed = f"[executed](docs/notebooks/{path.name})" if run else "–"
        lines.append(f"| [{title}](notebooks/{path.name}) | {CHAPTERS.get(path.name[:2], '')} | {minutes} | "
                     f"{executed} |")
    if record.get("commit"):
        lines.append("")
        commits = sorted({run.get("commit", record["commit"]) for run in record["notebooks"].values()})
        loads = [run["load_average"][0] for run in record["notebooks"].values() if run.get("load_average")]
        shared = (f", shared with other jobs (load average {min(loads):.1f} to {max(loads):.1f} when the "
                  "chapters started)" if loads and max(loads) > 2.5 else "")
        at = f"commit{'s' if len(commits) > 1 else ''} {', '.join(f'`{c}`' for c in commits)}"
        lines.append(f"Times: `make run` on {record['machine']}{shared}, at {at}; executed copies, each "
                     "naming its commit, in [docs/notebooks](docs/notebooks).")
    return "\n".join(lines)


TABLES: dict[str, Callable[[Path], str]] = {
    "chapters": chapters_table,
    "same-people": same_people_table,
    "same-people-signers": same_people_signers,
    "web-speed": web_speed_table,
    "web-parity": web_parity_table,
    "real-signers": real_signers_table,
    "real-signers-source": real_signers_source,
    "all-signers": all_signers_table,
    "all-signers-signs": all_signers_signs_table,
    "rejected-groups": rejected_groups_table,
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
