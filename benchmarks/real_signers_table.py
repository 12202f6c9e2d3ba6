"""The tables of benchmarks/real_signers.py: the generated real_signers.md and the rows of real_signers.json.

Each row of the study (a model and its configuration) has, per set, its folds: accuracy, accuracy on the signs
the training signers showed, and per sign the test clips, the right answers and the training signers who
showed it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def set_title(dataset: str, folds: int) -> str:
    """A column heading: the set and its number of folds."""
    return f"{dataset} (n={folds})"


def cell(mean: float, interval: tuple[float, float], folds: int, lowest: float | None = None) -> str:
    """mean [95% interval] (lowest fold), or the mean alone for a single fold."""
    if folds < 2:
        return f"{mean:.3f}"
    text = f"{mean:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"
    return text if lowest is None else f"{text} ({lowest:.2f})"


def sign_summary(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per sign of a set: its recall in each fold (None where a fold's test signers do not show it), the
    training signers who showed it in each fold, its test clips over all folds and its recall over all of
    them."""
    signs = sorted({sign for fold in result["folds"] for sign in fold.get("per_sign", {})})
    summary = {}
    for sign in signs:
        entries = [
            fold.get("per_sign", {}).get(sign, {"n": 0, "correct": 0.0, "train_signers": 0})
            for fold in result["folds"]
        ]
        clips = sum(e["n"] for e in entries)
        summary[sign] = {
            "recall": [e["correct"] / e["n"] if e["n"] else None for e in entries],
            "train_signers": [e["train_signers"] for e in entries],
            "n": clips,
            "recall_all": sum(e["correct"] for e in entries) / clips if clips else None,
        }
    return summary


def json_rows(results: dict[str, dict[str, Any]], rows: list[Any]) -> list[dict[str, Any]]:
    """One entry per row and set, as a table generator reads them."""
    entries = []
    for row in rows:
        for dataset, r in results[row.name].items():
            entries.append(
                {
                    "model": row.name,
                    "configuration": row.note,
                    "set": dataset,
                    "mean": r["mean"],
                    "low": r["interval"][0],
                    "high": r["interval"][1],
                    "n": len(r["folds"]),
                    "per_fold": [f["accuracy"] for f in r["folds"]],
                    "mean_seen": r["mean_seen"],
                    "low_seen": r.get("interval_seen", [None, None])[0],
                    "high_seen": r.get("interval_seen", [None, None])[1],
                    "per_fold_seen": [f["accuracy_seen"] for f in r["folds"]],
                    "clips_per_fold": [f["n"] for f in r["folds"]],
                    "test_signers": [f.get("test_signers") for f in r["folds"]],
                    "per_sign": sign_summary(r) if all("per_sign" in f for f in r["folds"]) else None,
                }
            )
    return entries


def markdown(
    results: dict[str, dict[str, Any]],
    rows: list[Any],
    datasets: list[str],
    command: str,
    machine: str,
    protocol: str,
    selection: tuple[str, ...],
) -> str:
    """benchmarks/real_signers.md: the accuracy tables, every sign of every set, every fold."""
    runs = command.split(" && ")
    lines = [
        "# Keypoint models on unseen signers (cross-validation by signer)",
        "",
        "Written by "
        + (
            f"`{runs[0]}`"
            if len(runs) == 1
            else "these runs, merged:\n\n" + "\n".join(f"- `{run}`" for run in runs) + "\n\n"
        )
        + f"(on {machine}; numbers produced by the script, do not edit by hand).",
        "",
        "## Protocol",
        "",
        protocol,
        "",
        "## Accuracy",
        "",
        "Mean accuracy over folds [95% t-interval] (lowest fold); n = folds. A clip of a sign that no "
        'training signer showed counts as an error. Rows marked "quick" trained 5 epochs only (`--quick`). '
        "Training seconds per fold (below) were measured on 2 CPU cores shared with other jobs: compare them "
        "within a run only.",
        "",
    ]
    folds = {d: next(len(r[d]["folds"]) for r in results.values() if d in r) for d in datasets}
    chosen_by = [d for d in selection if d in datasets]
    header = ["row"] + [set_title(d, folds[d]) for d in datasets]
    header += ["mean of " + ", ".join(chosen_by) + " (decides)"] if chosen_by else []
    lines += ["| " + " | ".join(header) + " | note |", "|" + "---|" * (len(header) + 1)]
    for row in rows:
        cells = [row.name]
        for dataset in datasets:
            r = results[row.name].get(dataset)
            cells.append(
                "not run" if r is None else cell(r["mean"], r["interval"], len(r["folds"]), r["min"])
            )
        if chosen_by:
            means = [results[row.name][d]["mean"] for d in chosen_by if d in results[row.name]]
            cells.append(f"{np.mean(means):.3f}" if len(means) == len(selection) else "-")
        lines.append("| " + " | ".join(cells) + f" | {row.note} |")
    lines += [
        "",
        "## Accuracy on the signs the training signers showed",
        "",
        "The same folds with every clip of a sign that no training signer of its fold showed left out "
        "(mean over folds [95% t-interval]).",
        "",
        "| row | " + " | ".join(set_title(d, folds[d]) for d in datasets) + " |",
        "|" + "---|" * (len(datasets) + 1),
    ]
    for row in rows:
        cells = [row.name]
        for dataset in datasets:
            r = results[row.name].get(dataset)
            cells.append(
                "not run"
                if r is None
                else cell(
                    r["mean_seen"],
                    r.get("interval_seen", (0, 0)),
                    len(r["folds"]) if "interval_seen" in r else 1,
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += sign_tables(results, rows, datasets)
    lines += ["", "## Per fold", ""]
    for row in rows:
        for dataset in (d for d in datasets if d in results[row.name]):
            lines.append(
                f"- {row.name}, {dataset}: "
                + ", ".join(
                    f"{f['fold']} {f['accuracy']:.3f} (n={f['n']}, {f['train_seconds']} s)"
                    for f in results[row.name][dataset]["folds"]
                )
            )
    return "\n".join(lines) + "\n"


def sign_tables(results: dict[str, dict[str, Any]], rows: list[Any], datasets: list[str]) -> list[str]:
    """Per set, every sign: its test clips, the training signers who showed it in each fold, and each row's
    recall over all folds (then per fold; "-" where a fold's test signers do not show the sign)."""
    lines = [
        "",
        "## Every sign",
        "",
        "Recall of each sign over all its test clips (then per fold), and how many signers showed it on the "
        "training side of each fold. Rows run before signs were recorded are not listed.",
        "",
    ]
    for dataset in datasets:
        named = [
            row
            for row in rows
            if dataset in results[row.name]
            and all("per_sign" in f for f in results[row.name][dataset]["folds"])
        ]
        if not named:
            continue
        summaries = {row.name: sign_summary(results[row.name][dataset]) for row in named}
        first = summaries[named[0].name]
        lines += [
            f"### {dataset}",
            "",
            "| sign | test clips | training signers per fold | "
            + " | ".join(row.name for row in named)
            + " |",
            "|" + "---|" * (len(named) + 3),
        ]
        for sign, entry in first.items():
            cells = [sign, str(entry["n"]), " / ".join(str(c) for c in entry["train_signers"])]
            for row in named:
                mine = summaries[row.name][sign]
                per_fold = " / ".join("-" if r is None else f"{r:.2f}" for r in mine["recall"])
                cells.append("-" if mine["recall_all"] is None else f"{mine['recall_all']:.2f} ({per_fold})")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines
