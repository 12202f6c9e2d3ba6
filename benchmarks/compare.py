"""Every model of the course on the same people: cross-validation by signer, the same folds for each model.

    python -m utils data synthetic
    python -m utils extract synthetic --out data/features/synthetic_T30_S64_H32.npz --hand-size 32
    python benchmarks/compare.py --features data/features/synthetic_T30_S64_H32.npz

For each model (the linear baseline, the boosted trees on the same statistics, the recommended keypoint model,
the ConvLSTM and the fused model, each with its ``recommended`` configuration; ``--models boosted`` adds one
row to the table already written) this runs the course's own ``crossval``
(:func:`utils.evaluation.crossval.run`, what ``python -m utils crossval`` does) with the same folds: the folds
depend only on the clips' labels, their signers and the seed, never on the model. Finished folds are kept
under ``--work`` and skipped when the command is repeated. It writes ``benchmarks/compare.json`` (per model:
the mean accuracy over folds, its 95% t-interval, every fold's accuracy and test signers, training seconds)
and ``benchmarks/compare.md``; ``python -m utils report`` turns the JSON into the tables of the README and
the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR.parent))

from utils import paths  # noqa: E402
from utils.evaluation import crossval  # noqa: E402

MODELS = ("linear", "boosted", "lstm", "convlstm", "fused")
JSON_PATH = BENCHMARKS_DIR / "compare.json"
MD_PATH = BENCHMARKS_DIR / "compare.md"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCHMARKS_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _entry(summary: dict) -> dict:
    """What the tables need of one crossval.json."""
    return {
        "model": summary["model"],
        "config": summary["config"],
        "folds": summary["folds"],
        "accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"],
        "per_fold": [
            {"test_groups": fold["test_groups"], "accuracy": fold["accuracy"], "n": fold["n"]}
            for fold in summary["per_fold"]
        ],
        "train_seconds": [fold.get("train_seconds") for fold in summary["per_fold"]],
    }


def markdown(result: dict) -> str:
    lines = [
        "# Every model on the same people",
        "",
        f"Written by `{result['command']}` (commit {result['commit']}, {result['machine']}). Do not "
        f"edit: rerun the command.",
        "",
        f"Cross-validation by signer on `{result['features']}`: {result['num_folds']} folds, seed "
        f"{result['seed']}, the same folds for every model; mean accuracy over folds [95% t-interval], "
        f"n = folds; chance = {result['chance']:.3f} (a uniform guess over {result['num_classes']} "
        "signs).",
        "",
        "| model | configuration | accuracy [95% interval] | n | per fold | training seconds per fold |",
        "|---|---|---|---|---|---|",
    ]
    for entry in result["models"].values():
        folds = ", ".join(f"{fold['accuracy']:.3f}" for fold in entry["per_fold"])
        seconds = [s for s in entry["train_seconds"] if s is not None]
        spent = f"{min(seconds):.0f}-{max(seconds):.0f}" if seconds else "n/a"
        lines.append(
            f"| {entry['model']} | {entry['config']} | "
            f"{crossval.format_interval(entry['accuracy'])} | {len(entry['per_fold'])} | {folds} | "
            f"{spent} |"
        )
    lines += [
        "",
        "Test signers of each fold: "
        + "; ".join(
            ", ".join(fold["test_groups"]) for fold in next(iter(result["models"].values()))["per_fold"]
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", default=str(paths.FEATURES_DIR / "synthetic_T30_S64_H32.npz"))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--folds", default="5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=str(paths.RESULTS_DIR / "compare"))
    args = parser.parse_args(argv)
    from utils import models
    from utils.data.features import load_features

    features = load_features(args.features)
    previous = json.loads(JSON_PATH.read_text()) if JSON_PATH.is_file() else {}
    command = "python benchmarks/compare.py " + " ".join(sys.argv[1:] if argv is None else argv)
    done, commit = {}, _commit()
    started = time.perf_counter()
    for name in args.models:
        if name not in models.MODEL_NAMES:
            print(f"{name}: not a model of this version of the course, skipped")
            continue
        summary = crossval.run(
            features, name, folds=args.folds, seed=args.seed, out_dir=Path(args.work) / name
        )
        done[name] = {
            **_entry(summary),
            "command": command,
            "commit": commit,
            "features": Path(args.features).name,
        }
        print(crossval.describe(summary), flush=True)

    # rows measured earlier stay when they were tested on the very same people (fold by fold), whatever the
    # run
    def people(entry: dict) -> list:
        return [sorted(fold["test_groups"]) for fold in entry["per_fold"]]

    same = done and all(
        people(entry) == people(next(iter(done.values()))) for entry in previous.get("models", {}).values()
    )
    if same and previous.get("seed") == args.seed:
        for name, entry in previous.get("models", {}).items():
            done.setdefault(
                name,
                {
                    **entry,
                    "command": entry.get("command", previous.get("command")),
                    "commit": entry.get("commit", previous.get("commit")),
                    "features": entry.get("features", previous.get("features")),
                },
            )
    elif previous.get("models"):
        print("the rows of the earlier table were tested on other signers: it is replaced, not extended")
    commands = list(dict.fromkeys(entry["command"] for entry in done.values()))
    result = {
        "command": " && ".join(commands),
        "commit": ", ".join(dict.fromkeys(entry["commit"] for entry in done.values())),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "features": ", ".join(dict.fromkeys(entry["features"] for entry in done.values())),
        "num_folds": len(next(iter(done.values()))["per_fold"]),
        "seed": args.seed,
        "num_classes": len(features.classes),
        "chance": 1 / len(features.classes),
        "models": {name: done[name] for name in MODELS if name in done},
        "seconds": round(time.perf_counter() - started, 1),
    }
    JSON_PATH.write_text(json.dumps(result, indent=1) + "\n")
    MD_PATH.write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
