"""Why the crowd stays near 0.73: where the conv + GRU model's cross-validation errors come from, with
evidence.

    python benchmarks/crowd_errors.py                # reads the study's cached fits (trains missing ones)
    python benchmarks/crowd_errors.py --oracle       # + an upper bound: folds by clip, not by signer
    python benchmarks/crowd_errors.py --cache /tmp/cache --out /tmp/crowd_errors.md --figure /tmp/fingers.png

Reads ../shared/real/mp_data_signers/crowd.npz in place (never copied) and the test probabilities that
``benchmarks/real_signers.py`` caches for its ``crowd`` folds (5 folds of 8 signers; a fold that is not cached
is trained, as the study would). Every clip is put in one of four groups, from its keypoints alone:

* **hand mostly missing**: the dominant hand (the one the canonicalisation puts on the right) is found in
  fewer than ``MIN_HAND_FRAMES`` of the clip's 30 frames;
* **label contradicts the hand shape**: ``iloveyou`` is signed with the ILY hand (index and little finger out,
  middle and ring finger folded, :func:`ily_hand_shape`); a clip in an ``iloveyou`` folder without that shape,
  or in a ``hello`` / ``thanks`` folder with it, is either a different way of signing it or a swapped folder;
* **rare sign**: ``no``, ``yes``, ``please`` (each recorded by at most four of the forty signers);
* **the rest**: hand seen, shape and label agree, one of the three main signs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import real_signers as study  # noqa: E402

from utils.data.keypoints import RIGHT_HAND  # noqa: E402
from utils.inputs import preprocessing  # noqa: E402

MIN_HAND_FRAMES = 10  # of 30
RARE_SIGNS = ("no", "yes", "please")
#: the recommended lstm before class weights (whose errors are analysed), the recommended lstm now, the linear
#: baseline
ROWS = ("conv_gru, hand angles", "conv_gru, hand angles, balanced classes", "linear")
ORACLE_ROWS = ("conv_gru, hand angles", "linear")
FOLDED, EXTENDED = 1.2, 1.5  # fingertip-to-wrist distance in palm sizes: below = folded, above = out


def finger_extension(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fingertip-to-wrist distance (x, y) in palm sizes of the dominant hand, (N, T, 5) thumb to little
    finger, and where that hand is found (N, T); clips are first made right-handed as the models see them."""
    kp = preprocessing.canonicalize_handedness(kp, method="motion")
    hand = kp[..., RIGHT_HAND].reshape(*kp.shape[:2], 21, 3)[..., :2]
    palm = np.linalg.norm(hand[..., (5, 9, 13, 17), :] - hand[..., :1, :], axis=-1).mean(-1)
    tips = np.linalg.norm(hand[..., (4, 8, 12, 16, 20), :] - hand[..., :1, :], axis=-1)
    return tips / np.maximum(palm,
                             preprocessing.MIN_PALM_SIZE)[..., None], preprocessing.part_presence(kp)[..., 3]


def ily_hand_shape(extension: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """True for clips whose dominant hand shows the ILY shape (index and little finger out, middle and ring
    folded) in more than half of the frames where it is seen."""
    ily = ((extension[..., 1] > EXTENDED) & (extension[..., 4] > EXTENDED - 0.1)
           & (extension[..., 2] < FOLDED) & (extension[..., 3] < FOLDED) & seen)
    return ily.sum(axis=1) > 0.5 * np.maximum(seen.sum(axis=1), 1)


def error_groups(clips: study.ClipSet) -> dict[str, np.ndarray]:
    """Masks of the four groups of the module docstring (they do not overlap, in this order of precedence)."""
    extension, seen = finger_extension(clips.keypoints)
    missing = seen.sum(axis=1) < MIN_HAND_FRAMES
    ily = ily_hand_shape(extension, seen)
    contradicts = ~missing & (
        ((clips.labels == "iloveyou") & ~ily) | (np.isin(clips.labels, ["hello", "thanks"]) & ily)
    )
    rare = ~missing & ~contradicts & np.isin(clips.labels, RARE_SIGNS)
    return {"hand mostly missing": missing, "label contradicts the hand shape": contradicts,
            "rare sign": rare, "the rest": ~(missing | contradicts | rare)}


def faster_at_start(kp: np.ndarray, head: int = 5,
                    middle: tuple[int, int] = (10, 25)) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: is the dominant wrist's speed measured (found in two frames in a row) both in the first
    ``head`` frames and in frames ``middle``, and is its median speed (shoulder widths per frame) higher at
    the start? A fast start is the tail of the previous sign, or the hand coming up, at the start of a
    recording."""
    canonical = preprocessing.canonicalize_handedness(kp, method="motion")
    seen = preprocessing.part_presence(canonical)[..., 3]
    wrist = preprocessing.normalize_keypoints(canonical)[..., RIGHT_HAND].reshape(*kp.shape[:2], 21, 3)[
        ..., 0, :2
    ]
    steps = np.where(seen[:, 1:] & seen[:, :-1], np.linalg.norm(np.diff(wrist, axis=1), axis=-1), np.nan)
    # all-NaN slices (hand never found there) give NaN, counted as not measured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        start, mid = np.nanmedian(steps[:, :head],
                                  axis=1), np.nanmedian(steps[:, middle[0]:middle[1]], axis=1)
    measured = ~np.isnan(start) & ~np.isnan(mid)
    return measured, measured & (start > mid)


def crowd_predictions(row: str, cache: Path | None) -> np.ndarray:
    """The class each crowd clip gets from a study row when its signer is in the test fold (5 folds of 8
    signers)."""
    candidate = {c.name: c for c in study.candidates(False)}[row]
    tasks = study.fold_tasks("crowd")
    clips = tasks[0][1]
    predicted = np.empty(len(clips.labels), dtype=object)
    for index, (_, fold_clips, train, test, _) in enumerate(tasks):
        fold_id = f"{index}:" + ",".join(sorted(set(fold_clips.signers[test])))  # as run_candidate names it
        classes = sorted(set(fold_clips.labels[train]))
        found, _ = study.candidate_probabilities(candidate, "crowd", fold_id, fold_clips, train,
                                                 fold_clips.keypoints[test], classes, None, cache)
        predicted[test] = np.asarray(classes)[np.mean(found, axis=0).argmax(axis=1)]
    return predicted.astype(str)


def oracle_predictions(clips: study.ClipSet, row: str, cache: Path | None, folds: int = 5,
                       seed: int = 0) -> np.ndarray:
    """Predictions when every signer's OTHER clips are in training: folds by clip, stratified by signer and
    sign (fits cached as the study's, under the dataset name "crowd by clip")."""
    from sklearn.model_selection import StratifiedKFold

    candidate = {c.name: c for c in study.candidates(False)}[row]
    classes = sorted(set(clips.labels))
    labels = study.class_index(classes, clips.labels)
    strata = np.char.add(np.char.add(clips.signers.astype(str), "|"), clips.labels.astype(str))
    predicted = np.empty(len(labels), dtype=object)
    with warnings.catch_warnings():  # one signer has a single iloveyou clip: a stratum smaller than the folds
        warnings.simplefilter("ignore", UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, strata))
    for index, (train, test) in enumerate(splits):
        keys = study.cache_keys(candidate.config, candidate.linear, "crowd by clip", str(index), seed)
        probabilities, _ = study.fit_and_predict(candidate.config, candidate.linear, seed,
                                                 clips.keypoints[train], labels[train], clips.keypoints[test],
                                                 cache, keys)
        predicted[test] = np.asarray(classes)[probabilities.argmax(axis=1)]
    return predicted.astype(str)


def per_signer(clips: study.ClipSet, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy of each signer's clips."""
    return {s: float(np.mean(predicted[clips.signers == s] == clips.labels[clips.signers == s]))
            for s in sorted(set(clips.signers))}


def plot_fingers(clips: study.ClipSet, signers: list[str], path: Path) -> None:
    """Middle- and ring-finger extension over time in the iloveyou and thanks folders of a few signers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extension, seen = finger_extension(clips.keypoints)
    extension = np.where(seen[..., None], extension, np.nan)
    fig, axes = plt.subplots(2, len(signers), figsize=(4 * len(signers), 6), sharey=True, squeeze=False)
    for col, signer in enumerate(signers):
        for row, sign in enumerate(("iloveyou", "thanks")):
            ax = axes[row, col]
            for clip in np.flatnonzero((clips.signers == signer) & (clips.labels == sign)):
                ax.plot(extension[clip, :, 2], color="C0", alpha=0.6)
                ax.plot(extension[clip, :, 3], color="C1", alpha=0.6)
            ax.set_title(f"{signer}: '{sign}' folder")
            ax.set_xlabel("frame")
    axes[0, 0].set_ylabel("fingertip-wrist / palm\n(blue middle, orange ring)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def report(clips: study.ClipSet, predictions: dict[str, np.ndarray], oracle: dict[str, np.ndarray],
           command: str) -> str:
    """The markdown of benchmarks/crowd_errors.md."""
    groups = error_groups(clips)
    labels, signers = clips.labels, clips.signers
    rows = list(predictions)
    lines = ["# Where the crowd's errors come from", "",
             f"Written by `{command}` (numbers produced by the script; do not edit by hand).", "",
             (__doc__ or "").split("\n\n", 2)[2].strip(), "",
             "## Accuracy by group (cross-validation by signer, pooled over the 5 folds)", "",
             "| group | clips | " + " | ".join(rows) + " |", "|---|---|" + "---|" * len(rows)]
    for name, mask in groups.items():
        lines.append(
            f"| {name} | {mask.sum()} | "
            + " | ".join(
                f"{np.mean(predictions[r][mask] == labels[mask]):.3f} "
                f"({np.sum(predictions[r][mask] != labels[mask])} wrong)"
                for r in rows
            )
            + " |"
        )
    lines.append(
        f"| all | {len(labels)} | "
        + " | ".join(
            f"{np.mean(predictions[r] == labels):.3f} ({np.sum(predictions[r] != labels)} wrong)"
            for r in rows
        )
        + " |"
    )
    first = rows[0]
    classes = sorted(set(labels))
    lines += ["", f"Pooled confusion of {first} (rows: folder label, columns: prediction):", "",
              "| | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    lines += [
        f"| {c} | "
        + " | ".join(str(int(np.sum((labels == c) & (predictions[first] == d)))) for d in classes)
        + " |"
        for c in classes
    ]
    measured, early = faster_at_start(clips.keypoints)
    lines += ["",
              f"Clips whose dominant wrist moves faster in frames 0-4 than in frames 10-24 (the end of the "
              f"previous sign or the hand coming up at the start of a recording): {early.sum()} of "
              f"{measured.sum()} measured ({early.sum() / max(measured.sum(), 1):.0%})."]
    extension, seen = finger_extension(clips.keypoints)
    ily = ily_hand_shape(extension, seen)
    accuracy = {r: per_signer(clips, predictions[r]) for r in rows}
    oracle_accuracy = {r: per_signer(clips, p) for r, p in oracle.items()}
    lines += [
        "",
        "## Per signer (lowest first)",
        "",
        "ILY = share of the signer's iloveyou / thanks clips whose dominant hand shows the ILY shape; "
        "hand = share of frames where the dominant hand is found"
        + (
            "; oracle = the same model with the signer's other clips in training (5 folds by clip)."
            if oracle
            else "."
        ),
        "",
        "| signer | clips | "
        + " | ".join(rows)
        + "".join(f" | oracle {r}" for r in oracle)
        + " | ILY in iloveyou | ILY in thanks | hand | errors of "
        + first
        + " (folder -> predicted) |",
        "|---|---|" + "---|" * (len(rows) + len(oracle) + 4),
    ]
    for signer in sorted(set(signers), key=lambda s: (accuracy[first][s], s)):
        mine = signers == signer
        share = {
            sign: (f"{ily[mine & (labels == sign)].mean():.1f}" if np.any(mine & (labels == sign)) else "-")
            for sign in ("iloveyou", "thanks")
        }
        wrong = Counter(f"{t} -> {p}" for t, p in zip(labels[mine], predictions[first][mine]) if t != p)
        lines.append(
            f"| {signer} | {mine.sum()} | "
            + " | ".join(f"{accuracy[r][signer]:.2f}" for r in rows)
            + "".join(f" | {oracle_accuracy[r][signer]:.2f}" for r in oracle)
            + f" | {share['iloveyou']} | {share['thanks']} | {seen[mine].mean():.2f} | "
            + ", ".join(f"{k} {v}" for k, v in wrong.most_common())
            + " |"
        )
    if oracle:
        lines += ["",
                  "Oracle, pooled: " + ", ".join(f"{r} {np.mean(p == labels):.3f}" for r,
                                                 p in oracle.items()) +
                  " (signer-independent: " + ", ".join(f"{r} {np.mean(predictions[r] == labels):.3f}"
                                                       for r in rows if r in oracle) + ")."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Group the crowd's clips, score the study's rows on each group, optionally the oracle; write the
    markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(ROOT / "results" / "real_signers_cache"),
                        help="the study's cache of fitted probabilities ('' = train every fold afresh)")
    parser.add_argument("--oracle", action="store_true", help="also fit folds by clip (10 more fits)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "crowd_errors.md"))
    parser.add_argument("--figure", default=str(ROOT / "results" / "crowd_errors_fingers.png"))
    args = parser.parse_args(argv)
    clips = study.load_mp_signers("crowd")
    cache = Path(args.cache) if args.cache else None
    predictions = {row: crowd_predictions(row, cache) for row in ROWS}
    oracle = {row: oracle_predictions(clips, row, cache) for row in ORACLE_ROWS} if args.oracle else {}
    plot_fingers(clips, ["navya8281", "dim3ns10n", "arisudana", "achintyaxd"], Path(args.figure))
    command = "python benchmarks/crowd_errors.py" + (" --oracle" if args.oracle else "")
    Path(args.out).write_text(report(clips, predictions, oracle, command), encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"command": command, "predictions": {r: p.tolist() for r, p in predictions.items()},
         "oracle": {r: p.tolist() for r, p in oracle.items()}}), encoding="utf-8")
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
