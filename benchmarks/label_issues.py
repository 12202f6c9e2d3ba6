"""Label noise among the 55 real signers: clips whose folder label the models of other signers disagree with.

    python benchmarks/label_issues.py        # -> benchmarks/label_issues.md and benchmarks/label_issues.json

1. Suspected clips: every clip of the set ``all`` of benchmarks/real_signers.py (the four, the crowd and the
   eleven of more.npz) is scored by the linear model fitted on the other folds' signers (the study's 5 folds
   by signer, read from its cache when there); cleanlab's ``find_label_issues`` on these out-of-fold
   probabilities and the folder labels flags the clips whose label is likely wrong. They are listed per signer
   and sign.
2. The study repeated without them: on the same 5 folds, the linear model and the boosted trees fitted with
   the suspected clips left out of the training side, the test side unchanged (every test clip is still scored
   against its folder label). So that no test signer decides which training clips go, the clips left out of a
   fold's training side are found by the same method inside that training side only (4 folds of its signers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR))

import real_signers as study  # noqa: E402

DATASET = "all"


def out_of_fold(
    clips: study.ClipSet,
    groups: list[np.ndarray],
    row: study.Candidate,
    tag: str,
    cache: Path | None,
    within: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, classes of the whole set) of each clip in ``within`` (default: all) from the row
    fitted on the other groups of signers (rows of clips outside ``within`` stay zero), and which clips can be
    judged: those whose sign the signers of that fit showed (a sign no other signer shows is no evidence of a
    wrong label)."""
    names = sorted(set(clips.labels))
    within = np.ones(len(clips.labels), bool) if within is None else within
    found = np.zeros((len(clips.labels), len(names)))
    judged = np.zeros(len(clips.labels), bool)
    for index, test_signers in enumerate(groups):
        test = within & np.isin(clips.signers, test_signers)
        train = within & ~test
        classes = sorted(set(clips.labels[train]))
        fold_id = f"{tag}{index}:" + ",".join(sorted(test_signers))
        parts, _ = study.candidate_probabilities(
            row, DATASET, fold_id, clips, train, clips.keypoints[test], classes, None, cache
        )
        found[np.ix_(test, [names.index(c) for c in classes])] = np.mean(parts, axis=0)
        judged[test] = np.isin(clips.labels[test], classes)
    return found, judged


def label_issues(
    clips: study.ClipSet, scored: tuple[np.ndarray, np.ndarray], within: np.ndarray
) -> np.ndarray:
    """cleanlab's find_label_issues on the judged clips in ``within`` (their signs' columns only,
    renormalised): a mask over all clips (False outside)."""
    from cleanlab.filter import find_label_issues

    probabilities, judged = scored
    within = within & judged
    names = sorted(set(clips.labels))
    present = sorted(set(clips.labels[within]))
    columns = probabilities[np.ix_(within, [names.index(c) for c in present])]
    columns = columns / np.maximum(columns.sum(axis=1, keepdims=True), 1e-12)
    flagged = np.zeros(len(clips.labels), bool)
    flagged[within] = find_label_issues(study.class_index(present, clips.labels[within]), columns)
    return flagged


def sequence_names() -> np.ndarray:
    """The ``sequence`` (``<sign folder>/<n>``) of every clip of the set, in the order of the study's
    ClipSet."""
    return np.concatenate(
        [
            np.load(study.REAL / "mp_data_signers" / f"{name}.npz")["sequence"].astype(str)
            for name in study.MP_FILES[DATASET]
        ]
    )


def per_signer_table(clips: study.ClipSet, flagged: np.ndarray, sequences: np.ndarray) -> list[dict]:
    """One entry per signer and sign with a suspected clip: its clips, the suspected ones and their
    sequences."""
    entries = []
    for signer in sorted(set(clips.signers)):
        for sign in sorted(set(clips.labels[clips.signers == signer])):
            mine = (clips.signers == signer) & (clips.labels == sign)
            if flagged[mine].any():
                entries.append(
                    {
                        "signer": str(signer),
                        "sign": str(sign),
                        "clips": int(mine.sum()),
                        "suspected": int(flagged[mine].sum()),
                        "sequences": sorted(str(s) for s in sequences[mine & flagged]),
                    }
                )
    return entries


def study_folds() -> tuple[study.ClipSet, list[np.ndarray]]:
    """The clips of the study's set ``all`` and the test signers of each of its folds."""
    tasks = study.fold_tasks(DATASET)
    return tasks[0][1], [np.array(sorted(set(tasks[0][1].signers[test]))) for _, _, _, test, _ in tasks]


def main(argv: list[str] | None = None) -> None:
    """Flag the suspected clips, repeat the study without them in training, write the .md and .json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(BENCHMARKS_DIR / "label_issues.md"))
    parser.add_argument("--cache", default=str(study.ROOT / "results" / "real_signers_cache"))
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    rows = {c.name: c for c in study.candidates(False)}
    tasks = study.fold_tasks(DATASET)
    clips, groups = study_folds()

    # 1. suspected clips, from the study's own out-of-fold probabilities (its cache keys: tag "")
    everything = np.ones(len(clips.labels), bool)
    flagged = label_issues(clips, out_of_fold(clips, groups, rows["linear"], "", cache), everything)
    listing = per_signer_table(clips, flagged, sequence_names())
    print(f"{flagged.sum()} of {len(flagged)} clips suspected", flush=True)

    # 2. each fold: suspected clips of its training side found inside it, then both rows with and without them
    results: dict[str, dict[str, list]] = {
        name: {"all clips": [], "without suspected": []} for name in ("linear", "boosted")
    }
    removed = []
    for index, (_name, _, train, test, _) in enumerate(tasks):
        inner = study.group_folds(clips.signers[train], 4)
        inside = label_issues(
            clips, out_of_fold(clips, inner, rows["linear"], f"inner{index}.", cache, train), train
        )
        removed.append(int(inside.sum()))
        fold_id = f"{index}:" + ",".join(sorted(set(clips.signers[test])))
        for row in results:
            for kind, keep in (("all clips", train), ("without suspected", train & ~inside)):
                tag = fold_id if kind == "all clips" else f"{fold_id}:without suspected"
                fold = study.run_fold(rows[row], DATASET, tag, clips, keep, test, None, None, cache)
                results[row][kind].append(fold["accuracy"])
                print(
                    f"  {row:8s} {kind:18s} fold {index}: {fold['accuracy']:.3f} ({int(keep.sum())} training "
                    "clips)",
                    flush=True,
                )
    write(Path(args.out), clips, flagged, listing, results, removed)


def write(
    out: Path,
    clips: study.ClipSet,
    flagged: np.ndarray,
    listing: list[dict],
    results: dict[str, dict[str, list]],
    removed: list[int],
) -> None:
    """benchmarks/label_issues.md and .json."""
    lines = [
        "# Label noise among the 55 real signers",
        "",
        "Written by `python benchmarks/label_issues.py` (numbers produced by the script; do not edit by "
        "hand).",
        "",
        (__doc__ or "").split("\n\n", 2)[2].strip(),
        "",
        f"## Suspected clips: {int(flagged.sum())} of {len(flagged)}",
        "",
        "| signer | sign | clips | suspected | sequences |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {e['signer']} | {e['sign']} | {e['clips']} | {e['suspected']} | {', '.join(e['sequences'])} |"
        for e in listing
    ]
    lines += [
        "",
        "## The study without them in training (5 folds by signer, set `all`)",
        "",
        "Training clips left out per fold (found inside each training side): "
        + ", ".join(map(str, removed))
        + ".",
        "Mean accuracy over folds [95% t-interval]; every test clip scored against its folder label.",
        "",
        "| row | all training clips | suspected clips left out | per fold (all / without) |",
        "|---|---|---|---|",
    ]
    entries = []
    for row, kinds in results.items():
        cells = []
        for kind, values in kinds.items():
            low, high = study.t_interval(values)
            cells.append(f"{np.mean(values):.3f} [{low:.2f}, {high:.2f}]")
            entries.append(
                {
                    "model": row,
                    "configuration": kind,
                    "set": DATASET,
                    "mean": float(np.mean(values)),
                    "low": low,
                    "high": high,
                    "n": len(values),
                    "per_fold": values,
                }
            )
        per_fold = ", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(*kinds.values()))
        lines.append(f"| {row} | {cells[0]} | {cells[1]} | {per_fold} |")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/label_issues.py",
                "suspected": int(flagged.sum()),
                "clips": len(flagged),
                "per_signer": listing,
                "removed_per_fold": removed,
                "rows": entries,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
