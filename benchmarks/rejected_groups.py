"""Which real clips does no model accept? The signers and signs that cap accuracy on the 55 real signers.

    python benchmarks/rejected_groups.py        # after real_signers.py has fitted the rows below on set `all`

Every clip of the set ``all`` of benchmarks/real_signers.py (the four, the crowd and the eleven of more.npz)
is answered by models fitted on the other folds' signers (the study's 5 folds by signer, read from its cache:
nothing is trained here that the study did not train). A *rejected group* is one signer's clips of one sign of
which each model (the linear baseline, the boosted trees and the recommended keypoint model) answers fewer
than half right. Such a group is either recorded under the wrong sign's folder, or signed in a way no training
signer signs it; a *swapped pair* (one signer's sign A mostly answered B, and their B mostly answered A) is
hard to explain by anything but swapped folders. Accuracy over the other clips, and the accuracy a model would
reach if it answered every other clip right and these groups as wrongly as the three models do, say how much
of the gap to a perfect score these groups hold. The groups are chosen by the models' answers, so the accuracy
without them flatters every model: it is shown to size the problem, not as a result.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR))

import real_signers as study  # noqa: E402
from crowd_errors import error_groups, finger_extension, ily_hand_shape  # noqa: E402
from label_issues import out_of_fold, study_folds  # noqa: E402

DATASET = "all"
ROWS = {
    "linear": "linear",
    "boosted": "boosted",
    "recommended": "conv_gru, hand angles, balanced classes, label smoothing x3",
}


def rejected_groups(clips: study.ClipSet, answers: dict[str, np.ndarray]) -> list[dict]:
    """Each signer and sign of whose clips every model answers fewer than half right, with what the
    recommended model takes them for and two facts read from the keypoints alone (benchmarks/crowd_errors.py):
    the share of frames where the dominant hand is found and the share of clips showing the ILY hand shape."""
    extension, seen = finger_extension(clips.keypoints)
    ily = ily_hand_shape(extension, seen)
    groups = []
    for signer in sorted(set(clips.signers)):
        for sign in sorted(set(clips.labels[clips.signers == signer])):
            mine = (clips.signers == signer) & (clips.labels == sign)
            right = {name: float((answer[mine] == sign).mean()) for name, answer in answers.items()}
            if max(right.values()) < 0.5:
                taken_for = collections.Counter(answers["recommended"][mine]).most_common(1)[0]
                groups.append(
                    {
                        "signer": str(signer),
                        "sign": str(sign),
                        "clips": int(mine.sum()),
                        "right": right,
                        "taken_for": str(taken_for[0]),
                        "taken_for_share": taken_for[1] / int(mine.sum()),
                        "hand_found": float(seen[mine].mean()),
                        "ily_shape": float(ily[mine].mean()),
                    }
                )
    return groups


def swapped_pairs(groups: list[dict]) -> list[tuple[str, str, str]]:
    """(signer, sign A, sign B) where the signer's A is mostly taken for B and their B for A."""
    taken = {(g["signer"], g["sign"]): g["taken_for"] for g in groups}
    return sorted(
        (signer, a, b) for (signer, a), b in taken.items() if a < b and taken.get((signer, b)) == a
    )


def sources(clips: study.ClipSet) -> dict[str, np.ndarray]:
    """Which file of ../shared/real/mp_data_signers each clip of the set came from (the four, the crowd, the
    eleven more), as masks in the study's order."""
    names = {"sequences": "the four", "crowd": "the crowd", "more": "the eleven more"}
    folder = study.REAL / "mp_data_signers"
    sizes = [len(np.load(folder / f"{n}.npz")["signers"]) for n in study.MP_FILES[DATASET]]
    assert sum(sizes) == len(clips.labels)
    ends = np.cumsum([0, *sizes])
    index = np.arange(len(clips.labels))
    return {names[n]: (index >= a) & (index < b) for n, a, b in zip(study.MP_FILES[DATASET], ends, ends[1:])}


def reachable(answer: np.ndarray, labels: np.ndarray, inside: np.ndarray) -> float:
    """Accuracy if every clip outside the rejected groups were right and those inside as they are."""
    return float((np.sum(answer[inside] == labels[inside]) + np.sum(~inside)) / len(labels))


def main(argv: list[str] | None = None) -> None:
    """Read the out-of-fold answers, find the rejected groups, write the .md and .json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(BENCHMARKS_DIR / "rejected_groups.md"))
    parser.add_argument("--cache", default=str(study.ROOT / "results" / "real_signers_cache"))
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    rows = {c.name: c for c in study.candidates(False)}
    clips, folds = study_folds()
    names = np.array(sorted(set(clips.labels)))
    answers = {}
    for short, row in ROWS.items():
        probabilities, _ = out_of_fold(clips, folds, rows[row], "", cache)
        answers[short] = names[probabilities.argmax(axis=1)]
        print(f"{short}: {np.mean(answers[short] == clips.labels):.3f} of all clips right", flush=True)
    groups = rejected_groups(clips, answers)
    inside = np.zeros(len(clips.labels), bool)
    for g in groups:
        inside |= (clips.signers == g["signer"]) & (clips.labels == g["sign"])
    evidence = error_groups(clips)
    summary = {
        "clips": len(clips.labels),
        "rejected_by_evidence": {name: int((mask & inside).sum()) for name, mask in evidence.items()},
        "signers": len(set(clips.signers)),
        "rejected_clips": int(inside.sum()),
        "rejected_signers": len({g["signer"] for g in groups}),
        "swapped_pairs": [list(p) for p in swapped_pairs(groups)],
        "models": {
            name: {
                "accuracy": float(np.mean(answer == clips.labels)),
                "accuracy_outside": float(np.mean(answer[~inside] == clips.labels[~inside])),
                "reachable": reachable(answer, clips.labels, inside),
            }
            for name, answer in answers.items()
        },
        "by_source": {
            name: {
                "clips": int(mask.sum()),
                "rejected_clips": int((mask & inside).sum()),
                "recommended": float(np.mean(answers["recommended"][mask] == clips.labels[mask])),
                "reachable": reachable(answers["recommended"][mask], clips.labels[mask], inside[mask]),
            }
            for name, mask in sources(clips).items()
        },
    }
    write(Path(args.out), groups, summary)


def write(out: Path, groups: list[dict], summary: dict) -> None:
    """benchmarks/rejected_groups.md and .json."""
    share = summary["rejected_clips"] / summary["clips"]
    lines = [
        "# Clips no model accepts among the 55 real signers",
        "",
        "Written by `python benchmarks/rejected_groups.py` (numbers produced by the script; do not edit by "
        "hand).",
        "",
        (__doc__ or "").split("\n\n", 2)[2].strip(),
        "",
        f"## {summary['rejected_clips']} of {summary['clips']} clips ({share:.1%}) in "
        f"{len(groups)} rejected groups of {summary['rejected_signers']} signers",
        "",
        "Swapped pairs: "
        + (", ".join(f"{s} ({a} / {b})" for s, a, b in summary["swapped_pairs"]) or "none")
        + ".",
        "",
        "Of them, by what the keypoints alone show (benchmarks/crowd_errors.py's groups, in its order): "
        + ", ".join(f"{name} {count}" for name, count in summary["rejected_by_evidence"].items())
        + ".",
        "",
        "| model | accuracy, all clips | without the rejected groups | if only the rejected groups stay "
        "as they are |",
        "|---|---|---|---|",
    ]
    for name, values in summary["models"].items():
        lines.append(
            f"| {name} | {values['accuracy']:.3f} | {values['accuracy_outside']:.3f} | "
            f"{values['reachable']:.3f} |"
        )
    lines += [
        "",
        "By where the signers come from (the recommended model; the last column: if every clip outside the "
        "rejected groups were right):",
        "",
        "| signers | clips | in rejected groups | recommended | reachable |",
        "|---|---|---|---|---|",
    ]
    for name, values in summary["by_source"].items():
        lines.append(
            f"| {name} | {values['clips']} | {values['rejected_clips']} | {values['recommended']:.3f} | "
            f"{values['reachable']:.3f} |"
        )
    lines += [
        "",
        "Out-of-fold answers, one clip counted once (its fold's models); the recommended model's "
        "per-fold mean is in benchmarks/real_signers.md.",
        "",
        "| signer | sign | clips | right: linear / boosted / recommended | the recommended model answers | "
        "dominant hand found | ILY hand shape |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        right = " / ".join(f"{g['right'][name]:.1f}" for name in ROWS)
        lines.append(
            f"| {g['signer']} | {g['sign']} | {g['clips']} | {right} | "
            f"{g['taken_for']} ({g['taken_for_share']:.0%}) | {g['hand_found']:.2f} | {g['ily_shape']:.1f} |"
        )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"command": "python benchmarks/rejected_groups.py", **summary, "groups": groups}, indent=1
        ),
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
