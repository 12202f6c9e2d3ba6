"""Does a seed ensemble of the recommended keypoint model beat one network? Measured with the course's own
option.

    python benchmarks/ensemble.py                   # ensemble=3 on four, crowd, synthetic -> ensemble.md
    python benchmarks/ensemble.py --members 5 --datasets four --out /tmp/ensemble5.md
    python benchmarks/ensemble.py --work /tmp/ens4  # where the expanded recordings, features and folds go

Every number comes from ``python -m utils crossval --model lstm --ensemble N`` (``utils.crossval.run`` with
``ModelConfig.ensemble=N``): each fold trains N networks one after another (seeds 0 .. N-1), each with its own
early stopping on validation signers taken from the fold's training side, and saves them as one averaging
Keras model. Member 1 is the network a single run with seed 0 trains (tests/test_ensemble.py checks this), so
the same folds also give the one-network baseline: every member of every fold is scored alone on the fold's
test signers. The linear baseline (``--model linear``) is cross-validated on the same folds.

Data (the real recordings are read in place, expanded and extracted into ``--work``, never into the project):

* ``four``: ../shared/real/mp_data_signers/sequences.npz, expanded to MP_Data folders and extracted by the
course's
  ``extract``; leave-one-signer-out (4 folds, three training signers, one of them for validation).
* ``crowd``: crowd.npz, the same way; ``crossval``'s 5 group-disjoint folds, balanced by class.
* ``synthetic``: data/features/synthetic_T30_S64.npz, 5 folds.

The protocol differs from ``benchmarks/real_signers.py`` (fixed epochs, no validation signers, all training
signers fitted; other crowd folds), so compare the rows of this table with each other, not with that table's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REAL = Path(os.environ.get("COURSE_REAL_DIR", ROOT.parent / "shared" / "real"))
DATA = Path(os.environ.get("COURSE_DATA_DIR", ROOT / "data"))
DATASETS = {"four": "loso", "crowd": 5, "synthetic": 5}  # folds of each


def features_path(dataset: str, work: Path) -> Path:
    """The features file of a dataset: the synthetic one of the course, or the real set expanded and
    extracted."""
    if dataset == "synthetic":
        return DATA / "features" / "synthetic_T30_S64.npz"
    out = work / "data" / f"{dataset}.npz"
    if not out.is_file():
        from utils.data.features import extract_features

        expand = REAL / "mp_data_signers" / "expand.py"
        if not expand.is_file():
            raise SystemExit(f"{expand} not found: this study needs ../shared/real (set COURSE_REAL_DIR)")
        folder = work / "data" / dataset
        subprocess.run([sys.executable, str(expand), str(folder),
                        *(["--set", "crowd"] if dataset == "crowd" else [])],
                       check=True, capture_output=True)
        extract_features(folder, out, num_frames=30, progress=False)
    return out


def member_accuracies(cv_dir: Path, features: Any) -> list[dict[str, Any]]:
    """Per fold: each member's accuracy alone and the ensemble's on the fold's test signers, and the
    seconds."""
    from utils import models
    from utils.evaluation import crossval
    from utils.training.metrics import predict_clips
    from utils.training.runs import load_run

    labels, groups = np.asarray(features.labels), np.asarray(features.groups).astype(str)
    rows = []
    for fold in crossval.load_summary(cv_dir)["per_fold"]:
        model, run_info = load_run(cv_dir / fold["run_dir"])
        test = np.flatnonzero(np.isin(groups, fold["test_groups"]))
        alone = [float(np.mean(predict_clips(member, features, run_info, test,
                                             256).argmax(axis=1) == labels[test]))
                 for member in models.ensemble_members(model)]
        rows.append({"test_groups": fold["test_groups"], "n": int(len(test)), "members": alone,
                     "ensemble": fold["accuracy"], "train_seconds": fold["train_seconds"],
                     "load_average": fold.get("load_average")})
    return rows


def run_dataset(dataset: str, members: int, work: Path) -> dict[str, Any]:
    """Cross-validate the recommended lstm with ``ensemble=members`` on one dataset; per-fold member
    scores."""
    from utils import models
    from utils.data.features import load_features
    from utils.evaluation import crossval

    path = features_path(dataset, work)
    config = models.get_config("lstm").replace(ensemble=members)
    load_before, started = os.getloadavg(), time.time()
    cv_dir = work / "cv" / f"{dataset}_x{members}"
    crossval.run(path, "lstm", config, out_dir=cv_dir, folds=DATASETS[dataset], seed=0, progress=True)
    features = load_features(path)
    folds = member_accuracies(cv_dir, features)
    linear = crossval.run(path, "linear", None, out_dir=work / "cv" / f"{dataset}_linear",
                          # the same folds (same groups, labels and seed)
                          folds=DATASETS[dataset], seed=0, progress=True)
    for fold, line in zip(folds, linear["per_fold"]):
        assert fold["test_groups"] == line["test_groups"], (fold["test_groups"], line["test_groups"])
        fold["linear"] = line["accuracy"]
    return {"folds": folds, "features": str(path), "num_classes": len(features.classes),
            "crossval_dir": str(cv_dir), "seconds": round(time.time() - started),
            "load_before": [round(v, 1) for v in load_before],
            "load_after": [round(v, 1) for v in os.getloadavg()]}


def t_interval(values: list[float]) -> tuple[float, float]:
    """The 95% t-interval of the mean (the one crossval.json reports)."""
    from utils.evaluation import crossval

    low, high = crossval.t_interval(values)["ci95"]
    return float(low), float(high)


def cell(values: list[float]) -> str:
    """mean [95% interval] (lowest fold)."""
    low, high = t_interval(values)
    return f"{np.mean(values):.3f} [{low:.2f}, {high:.2f}] ({np.min(values):.2f})"


def fold_signers(groups: list[str]) -> str:
    """A fold's test signers: their names when one or two, else how many."""
    return "+".join(groups) if len(groups) <= 2 else f"{len(groups)} signers"


def markdown(results: dict[str, dict[str, Any]], members: int, command: str) -> str:
    """The table: one network (member 1), the members' mean alone, the ensemble; per dataset and their
    mean."""
    datasets = list(results)
    rows = {"linear baseline (`--model linear`, the same folds)": lambda f: f["linear"],
            "one network (member 1 = seed 0, what `--ensemble 1` trains)": lambda f: f["members"][0],
            f"one network, mean of the {members} members alone": lambda f: float(np.mean(f["members"])),
            f"ensemble={members} (the {members} averaged in one model)": lambda f: f["ensemble"]}
    lines = ["# A seed ensemble of the recommended keypoint model, cross-validated by signer", "",
             f"Written by `{command}` (numbers produced by the script; do not edit by hand).", "",
             (__doc__ or "").split("Every number")[1].join(["Every number", ""]).strip(), "",
             "Mean accuracy over folds [95% t-interval] (lowest fold); n = folds.", "",
             "| model | " + " | ".join(f"{d} (n={len(results[d]['folds'])})" for d in datasets) +
             (" | mean of the three (decides) |" if len(datasets) == 3 else " |"),
             "|---|" + "---|" * (len(datasets) + (len(datasets) == 3))]
    lines.append(
        "| chance (a uniform guess) | "
        + " | ".join(f"{1 / results[d]['num_classes']:.3f}" for d in datasets)
        + (
            f" | {np.mean([1 / results[d]['num_classes'] for d in datasets]):.3f} |"
            if len(datasets) == 3
            else " |"
        )
    )
    for name, pick in rows.items():
        means = [float(np.mean([pick(f) for f in results[d]["folds"]])) for d in datasets]
        cells = [cell([pick(f) for f in results[d]["folds"]]) for d in datasets]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + (f" | {np.mean(means):.3f} |" if len(datasets) == 3 else " |")
        )
    lines += ["", "## Per fold", "",
              "Accuracy of each member alone -> the ensemble, the linear baseline; n; training "
              "seconds of the fold "
              f"(all {members} members, one after another) and the 1-minute load average of the 2-core "
              f"machine when its training ended (a fold trained before `train` recorded it: '?').", ""]
    for dataset in datasets:
        lines.append(
            f"- {dataset}: "
            + "; ".join(
                f"{fold_signers(f['test_groups'])} "
                f"{' / '.join(f'{a:.3f}' for a in f['members'])} -> {f['ensemble']:.3f}, linear "
                f"{f['linear']:.3f} (n={f['n']}, {f['train_seconds']:.0f} s, "
                f"load {f['load_average'][0] if f.get('load_average') else '?'})"
                for f in results[dataset]["folds"]
            )
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the datasets (finished folds are read back), write the table and a JSON beside it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=3, help="networks per ensemble (ModelConfig.ensemble)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--work", default="/tmp/ensemble_study",
                        help="expanded recordings, features, fold folders")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "ensemble.md"))
    args = parser.parse_args(argv)
    work = Path(args.work)
    results = {dataset: run_dataset(dataset, args.members, work) for dataset in args.datasets}
    command = (
        "python benchmarks/ensemble.py"
        + (f" --members {args.members}" if args.members != 3 else "")
        + (" --datasets " + " ".join(args.datasets) if args.datasets != list(DATASETS) else "")
    )
    out = Path(args.out)
    out.write_text(markdown(results, args.members, command), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1),
                                        encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
