"""Fusion ablation on the synthetic signers: which frame input and which fusion make the fused model earn its place.

5 folds of 2 test signers (s01+s02, s03+s04, ...), validation signers drawn from the training side by
``utils.splits`` (selection never sees the test signers), seed 0 for every model. Each *run* trains once per
fold; several table *rows* come from one run:

* ``staged``: the fused model with three branches (keypoint LSTM, ConvLSTM on whole-frame differences,
  ConvLSTM on hand-crop differences), staged: each branch trained alone with its own head, then the late
  fusion weights fit on the validation signers. Its branches, scored alone, are the single-branch rows
  (LSTM alone, ConvLSTM alone); subsets of the branches are fused again (only the fusion is fit, on the
  validation signers) for the "keypoints + frames" and "keypoints + hands" rows, with learned weights and
  with a learned gate. The signer probe (utils.probe) runs on each branch's penultimate features.
* ``concat_rgb``: the previous ``recommended`` fused model (concatenation, raw RGB, trained end to end).
* ``concat_diff_mdrop``: concatenation trained end to end on frame differences, with modality dropout.
* ``convlstm_rgb``: the ConvLSTM alone on raw RGB whole frames.

Regenerate (finished folds are kept as ``<results>/fusion_ablation/<run>/<fold>.json`` and skipped, so
several processes can share the folds, e.g. ``--folds 1,2,3`` and ``--folds 4,5``)::

    COURSE_RESULTS_DIR=/tmp/results nice -n 10 python benchmarks/fusion_ablation.py \\
        --features data/features/synthetic_T30_S64_H32.npz --epochs 8 --hand-size 16

``--features`` needs ``hand_crops`` (``python -m utils extract synthetic --out ... --hand-size 32``).
The table is written to ``benchmarks/fusion_ablation.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from utils import models, paths, training  # noqa: E402
from utils.features import load_features  # noqa: E402
from utils.inputs import prepare_inputs  # noqa: E402
from utils.runs import load_run  # noqa: E402

SEED = 0
NUM_FOLDS = 5
TABLE = Path(__file__).with_name("fusion_ablation.md")
FRAME_AUGMENTATION = {"mirror": 0.5, "color": 0.3}  # notebook 04's fixes for the frame branch


def base_fused() -> models.ModelConfig:
    """The fused model before this ablation (concatenation of the keypoint LSTM and the whole-frame ConvLSTM),
    with frame differences and frame augmentation; every fusion setting is explicit, so the ablation does not
    change when ``recommended`` does."""
    base = models.get_config("fused", "recommended")
    keypoint_augmentation = {k: v for k, v in base.augmentation.items() if k not in FRAME_AUGMENTATION}
    return base.replace(frame_input="frames", fusion="concat", staged=False, modality_dropout=0.0,
                        preprocessing={**base.preprocessing, "frames": "diff"},
                        augmentation={**keypoint_augmentation, **FRAME_AUGMENTATION})


def runs(hand_size: int = 32) -> dict[str, tuple[str, models.ModelConfig]]:
    """The trainings of the ablation, most informative first: name -> (model name, configuration)."""
    fused = base_fused().replace(hand_size=hand_size)
    staged = fused.replace(name="staged", frame_input="both", fusion="logits", staged=True)
    concat_rgb = fused.replace(name="concat_rgb", preprocessing={**fused.preprocessing, "frames": "rgb"},
                               augmentation={**fused.augmentation, "mirror": 0.0, "color": 0.0})
    concat_mdrop = fused.replace(name="concat_diff_mdrop", modality_dropout=0.3)
    convlstm_rgb = models.get_config("convlstm", "recommended")
    convlstm_rgb = convlstm_rgb.replace(name="convlstm_rgb", frame_input="frames",
                                        preprocessing={**convlstm_rgb.preprocessing, "frames": "rgb"})
    return {"staged": ("fused", staged), "concat_diff_mdrop": ("fused", concat_mdrop),
            "concat_rgb": ("fused", concat_rgb), "convlstm_rgb": ("convlstm", convlstm_rgb)}


def folds(groups: np.ndarray) -> list[list[str]]:
    """Pairs of signers in sorted order: the test signers of each fold."""
    signers = sorted(set(groups.tolist()))
    size = len(signers) // NUM_FOLDS
    return [signers[i * size:(i + 1) * size] for i in range(NUM_FOLDS)]


def accuracy(model, inputs: dict, labels: np.ndarray) -> float:
    """Accuracy of a model on prepared inputs (only the ones it takes)."""
    names = [t.name.split(":")[0] for t in model.inputs]
    feed = inputs[names[0]] if len(names) == 1 else {name: inputs[name] for name in names}
    return float((np.asarray(model.predict(feed, batch_size=64, verbose=0)).argmax(axis=1) == labels).mean())


def refuse(config: models.ModelConfig, trained, frame_input: str, fusion: str, inputs: dict, labels: np.ndarray,
           num_classes: int, input_dim: int):
    """A late-fusion model over a subset of the trained branches: branch weights copied, only the fusion fit."""
    model = models.build_model("fused", config.replace(frame_input=frame_input, fusion=fusion), num_classes,
                               keypoint_dim=input_dim)
    for layer in model.layers:
        try:
            source = trained.get_layer(layer.name)
        except ValueError:
            continue
        if layer.weights and type(source) is type(layer) and not isinstance(layer, models.LogitFusion):
            layer.set_weights(source.get_weights())
    names = [t.name.split(":")[0] for t in model.inputs]
    training.fit_fusion(model, {name: inputs[name] for name in names}, labels)
    return model


def staged_rows(features, run_dir: Path, test: list[str], config: models.ModelConfig) -> dict[str, float]:
    """Every row that the staged run of one fold gives: branches alone, fusions of subsets, signer probes."""
    from utils import splits
    from utils.probe import probe_model

    model, run_info = load_run(run_dir)
    split = splits.make_splits(features.labels, groups=features.groups, test_group=test, seed=SEED)
    everything = prepare_inputs(features, run_info)
    labels = features.labels
    pick = lambda rows: {name: value[rows] for name, value in everything.items()}  # noqa: E731
    val, tst = pick(split.val), pick(split.test)
    out = {}
    for name, branch in models.branch_models(model).items():
        out[f"alone:{name}"] = accuracy(branch, tst, labels[split.test])
        out[f"probe:{name}"] = probe_model(model, everything, features.groups, labels, branch=name).accuracy
    out["fused:logits:both"] = accuracy(model, tst, labels[split.test])
    for frame_input in ("frames", "hands", "both"):
        for fusion in ("logits", "gate"):
            if (frame_input, fusion) == ("both", "logits"):
                continue
            refused = refuse(config, model, frame_input, fusion, val, labels[split.val], len(run_info["classes"]),
                             run_info["input_dim"])
            out[f"fused:{fusion}:{frame_input}"] = accuracy(refused, tst, labels[split.test])
    raw = np.asarray(model.get_layer("probabilities").branch_weights)
    out["weights"] = [round(float(w), 3) for w in np.log1p(np.exp(raw))]  # softplus: the learned branch weights
    return out


def run_fold(features, name: str, model_name: str, config, test: list[str], epochs: int | None, out: Path) -> dict:
    """Train one run on one fold and score it; the row values of this fold."""
    run_dir = out / name / "-".join(test)
    started = time.perf_counter()
    metrics = training.train(features, model_name, config, out_dir=run_dir, epochs=epochs, seed=SEED, test_group=test,
                             verbose=0, measure_speed=False)
    result = {"test_accuracy": metrics["test_accuracy"], "val_accuracy": metrics["val_accuracy"],
              "train_seconds": metrics["train_seconds"], "epochs_run": metrics["epochs_run"],
              "wall_seconds": round(time.perf_counter() - started, 1)}
    if name == "staged":
        result.update(staged_rows(features, run_dir, test, config))
    return result


def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


ROWS = [  # (label, run, key in the fold's result)
    ("LSTM alone (keypoint branch)", "staged", "alone:keypoints"),
    ("ConvLSTM alone: whole frames, raw RGB", "convlstm_rgb", "test_accuracy"),
    ("ConvLSTM alone: whole-frame differences", "staged", "alone:frames"),
    ("ConvLSTM alone: hand-crop differences", "staged", "alone:hands"),
    ("fused, concat, raw RGB, end to end (previous `recommended`)", "concat_rgb", "test_accuracy"),
    ("fused, concat, frame differences + modality dropout 0.3, end to end", "concat_diff_mdrop", "test_accuracy"),
    ("fused, staged, learned weights: keypoints + frames", "staged", "fused:logits:frames"),
    ("fused, staged, learned weights: keypoints + hands", "staged", "fused:logits:hands"),
    ("fused, staged, learned weights: keypoints + frames + hands", "staged", "fused:logits:both"),
    ("fused, staged, learned gate: keypoints + frames", "staged", "fused:gate:frames"),
    ("fused, staged, learned gate: keypoints + hands", "staged", "fused:gate:hands"),
    ("fused, staged, learned gate: keypoints + frames + hands", "staged", "fused:gate:both"),
]
PROBES = {"LSTM alone (keypoint branch)": "probe:keypoints", "ConvLSTM alone: whole-frame differences": "probe:frames",
          "ConvLSTM alone: hand-crop differences": "probe:hands"}


def load_results(out: Path) -> dict[str, dict[str, dict]]:
    """{run: {fold: values}} from the per-fold JSON files of earlier runs."""
    results: dict[str, dict[str, dict]] = {}
    for path in sorted(out.glob("*/*.json")):
        results.setdefault(path.parent.name, {})[path.stem] = json.loads(path.read_text())
    return results


def table(results: dict, fold_list: list[list[str]], epochs: int | None, command: str) -> str:
    """The markdown report: one row per variant, mean ± 95% t-interval, n, per-fold values, signer probe."""
    names = ["-".join(f) for f in fold_list]
    lines = ["# Fusion ablation (synthetic signers, 5 folds of 2 unseen signers)", "",
             f"Written by `{command}`. Seed {SEED} for every model; validation signers come from the training side; "
             f"epochs: {epochs or 'each configuration’s own'} (early stopping on validation). Chance = 0.10; "
             "signer-probe chance = 0.10 (10 signers).", "",
             "| variant | mean accuracy ± 95% t-interval | n | per fold (" + ", ".join(names) + ") | signer probe |",
             "|---|---|---|---|---|"]
    for label, run, key in ROWS:
        values = [results.get(run, {}).get(n, {}).get(key) for n in names]
        done = [v for v in values if v is not None]
        if not done:
            lines.append(f"| {label} | not run | 0 | | |")
            continue
        mean, half = t_interval(done)
        probe = [results[run][n].get(PROBES[label]) for n in names if n in results.get(run, {})] if label in PROBES else []
        probe_text = f"{np.mean(probe):.2f}" if probe else ""
        per_fold = ", ".join("–" if v is None else f"{v:.3f}" for v in values)
        lines.append(f"| {label} | {mean:.3f} ± {half:.3f} | {len(done)} | {per_fold} | {probe_text} |")
    lines += ["", "Per run and fold (seconds of training, epochs run, validation accuracy):", ""]
    for run, per_fold in results.items():
        for fold, values in per_fold.items():
            extra = f", fusion weights (keypoints, frames, hands) {values['weights']}" if "weights" in values else ""
            lines.append(f"- {run} {fold}: {values['train_seconds']:.0f} s, {values['epochs_run']} epochs, "
                         f"val {values['val_accuracy']:.3f}{extra}")
    return "\n".join(lines) + "\n"


def claim(path: Path) -> bool:
    """Create `path` if nobody has: True for the one process that gets to run this fold."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.open("x").close()
    except FileExistsError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Train what is missing (resumable), then write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default=str(paths.FEATURES_DIR / "synthetic_T30_S64_H32.npz"))
    parser.add_argument("--epochs", type=int, default=None, help="override every configuration's epochs")
    parser.add_argument("--runs", default=",".join(runs()), help="comma-separated runs, in order")
    parser.add_argument("--folds", default=None, help="comma-separated fold numbers (1-5), default all")
    parser.add_argument("--hand-size", type=int, default=32, help="side of the hand crops the models see")
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table from the stored folds")
    args = parser.parse_args(argv)
    out = paths.RESULTS_DIR / "fusion_ablation"
    features = load_features(args.features)
    fold_list = folds(features.groups)
    chosen = [fold_list[int(i) - 1] for i in args.folds.split(",")] if args.folds else fold_list
    command = ("nice -n 10 python benchmarks/fusion_ablation.py" + (f" --epochs {args.epochs}" if args.epochs else "")
               + f" --hand-size {args.hand_size}")
    if not args.table_only:
        for name in args.runs.split(","):
            model_name, config = runs(args.hand_size)[name]
            for test in chosen:
                store = out / name / f"{'-'.join(test)}.json"
                if store.is_file() or not claim(store.with_suffix(".claim")):
                    continue  # done, or another process of the ablation is on it
                print(f"{name} {store.stem} ...", flush=True)
                try:
                    values = run_fold(features, name, model_name, config, test, args.epochs, out / "runs")
                finally:
                    store.with_suffix(".claim").unlink(missing_ok=True)
                print(f"  {values}", flush=True)
                store.parent.mkdir(parents=True, exist_ok=True)
                store.write_text(json.dumps(values, indent=1))
    TABLE.write_text(table(load_results(out), fold_list, args.epochs, command))
    print(TABLE.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
