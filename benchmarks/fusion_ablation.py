"""Fusion ablation on the synthetic signers: which frame input and which fusion make the fused model earn its
place.

5 folds of 2 test signers (s01+s02, s03+s04, ...), validation signers drawn from the training side by
``utils.splits`` (selection never sees the test signers), seed 0 for every model. Each *run* trains once per
fold; several table *rows* come from one run:

* ``staged``: the fused model with the recommended keypoint model's encoder and preprocessing and the
  recommended ConvLSTM's two frame branches, whole frames and hand crops, staged: each branch trained alone
  with its own head, then the late fusion weights fit on the validation signers. Its branches, scored alone,
  are the single-branch rows; subsets of the branches are fused again (only the fusion is fit, on the
  validation signers) for the "keypoints + frames" and "keypoints + hands" rows, with learned weights and with
  a learned gate. The signer probe (utils.probe) runs on each branch's penultimate features.
* ``staged_frames``: the same with whole frames only (keypoints + frames), trained as a two-branch model: the
  recommended fused model (it ties the three-branch one at about two thirds of its training time).
* ``convlstm_both``: the recommended ConvLSTM (whole frames and hand crops in one model), scored with and
without
  its test-time flip averaging.

Every model is trained with ``test_time_flip`` off; the flip rows score the trained models on each clip and
its mirror image (``flip_rows``; for ``convlstm_both`` the model rebuilt with ``test_time_flip`` on, as
trained recommended models use it).
* ``convlstm_drawn``: the recommended ConvLSTM on frames with the landmarks drawn onto them (the original's
  ``keypoint_generation.py``), with its signer probe: does the drawn skeleton leak into the frame branch?
* ``lstm``: the recommended keypoint model alone at its own settings (30 frames), the best single-branch model
  the fused one has to beat.

Regenerate (finished folds are kept as ``<results>/fusion_ablation/<run>/<fold>.json`` and skipped, so
several processes can share the folds, e.g. ``--folds 1,2,3`` and ``--folds 4,5``)::

    COURSE_RESULTS_DIR=/tmp/results nice -n 10 python benchmarks/fusion_ablation.py \\
        --features data/features/synthetic_T30_S64_H32.npz

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

from utils import models, paths  # noqa: E402
from utils.data.features import load_features  # noqa: E402
from utils.inputs.spec import prepare_inputs  # noqa: E402
from utils.training import loop as training
from utils.training.runs import load_run  # noqa: E402

SEED = 0
NUM_FOLDS = 5
TABLE = Path(__file__).with_name("fusion_ablation.md")


def runs(hand_size: int = 32, staged_input: str = "both") -> dict[str, tuple[str, models.ModelConfig]]:
    """The trainings of the ablation, most informative first: name -> (model name, configuration).

    ``staged_input``: the staged run's frame branches, "both" (whole frames and hand crops) or "frames"
    only."""
    # trained without the flip inside: the flip rows score each trained model on the clip and its mirror image
    fused = models.get_config("fused", "recommended").replace(test_time_flip=False, hand_size=hand_size)
    staged = fused.replace(name="staged", frame_input=staged_input)
    staged_frames = fused.replace(name="staged_frames", frame_input="frames")
    convlstm = models.get_config("convlstm", "recommended").replace(test_time_flip=False, hand_size=hand_size)
    drawn = convlstm.replace(name="convlstm_drawn", frame_input="frames",
                             preprocessing={**convlstm.preprocessing, "draw_landmarks": True})
    both = convlstm.replace(name="convlstm_both", frame_input="both")
    return {"staged": ("fused", staged), "convlstm_drawn": ("convlstm", drawn),
            # one network, as in fused
            "lstm": ("lstm", models.get_config("lstm", "recommended").replace(ensemble=1)),
            "convlstm_both": ("convlstm", both), "staged_frames": ("fused", staged_frames)}


def folds(groups: np.ndarray) -> list[list[str]]:
    """Pairs of signers in sorted order: the test signers of each fold."""
    signers = sorted(set(groups.tolist()))
    size = len(signers) // NUM_FOLDS
    return [signers[i * size:(i + 1) * size] for i in range(NUM_FOLDS)]


def accuracy(model, inputs: dict, labels: np.ndarray) -> float:
    """Accuracy of a model on prepared inputs (only the ones it takes)."""
    feed = model_feed(model, inputs)
    return float((np.asarray(model.predict(feed, batch_size=64, verbose=0)).argmax(axis=1) == labels).mean())


def model_feed(model, inputs: dict):
    """The prepared inputs a model takes: one array, or a dict by input name."""
    names = [t.name.split(":")[0] for t in model.inputs]
    return inputs[names[0]] if len(names) == 1 else {name: inputs[name] for name in names}


def refuse(config: models.ModelConfig, trained, frame_input: str, fusion: str, inputs: dict,
           labels: np.ndarray, num_classes: int, input_dim: int):
    """A late-fusion model over a subset of the trained branches: branch weights copied, only the fusion
    fit."""
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
    from utils.data import splits
    from utils.evaluation.probe import probe_model

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
    trained = config.frame_input  # the model's own fusion is scored as it is; the others are fit again
    out[f"fused:logits:{trained}"] = accuracy(model, tst, labels[split.test])
    for frame_input in ("frames", "hands", "both") if trained == "both" else (trained,):
        for fusion in ("logits", "gate"):
            if (frame_input, fusion) == (trained, "logits"):
                continue
            refused = refuse(config, model, frame_input, fusion, val, labels[split.val],
                             len(run_info["classes"]), run_info["input_dim"])
            out[f"fused:{fusion}:{frame_input}"] = accuracy(refused, tst, labels[split.test])
    out.update(flip_rows(model, features, run_info, split))
    raw = np.asarray(model.get_layer("probabilities").branch_weights)
    # softplus: the learned branch weights
    out["weights"] = [round(float(w), 3) for w in np.log1p(np.exp(raw))]
    return out


def branch_log_probs(model, features, run_info: dict, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each branch's log-probabilities on the clips at rows, of the clip and of its mirror image: {branch: (2,
    n, C)}."""
    import keras

    names = [name for name in models.BRANCHES if name in {t.name.split(":")[0] for t in model.inputs}]
    heads = keras.Model(model.inputs, [model.get_layer(f"{name}_log_probabilities").output for name in names])
    views = []
    for mirrored in (False, True):
        inputs = prepare_inputs(features, run_info, rows, mirrored=mirrored)
        outputs = heads.predict({t.name.split(":")[0]: inputs[t.name.split(":")[0]] for t in model.inputs},
                                batch_size=64, verbose=0)
        views.append(
            [np.asarray(value) for value in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        )
    return {name: np.stack([views[0][i], views[1][i]]) for i, name in enumerate(names)}


SUBSETS = {"frames": ("keypoints", "frames"), "hands": ("keypoints", "hands"),
           # pixels: a frame-only model, the two ConvLSTMs fused
           "both": ("keypoints", "frames", "hands"), "pixels": ("frames", "hands")}


def fit_and_fuse(val: list[np.ndarray], val_labels: np.ndarray, test: list[np.ndarray],
                 name: str) -> np.ndarray:
    """One weight per branch fit on the validation clips' branch log-probabilities; the test clips' fused
    ones."""
    import keras

    from utils.training import loop as training

    fusion = models.LogitFusion(dtype="float32", name=name)
    training.fit_fusion_layer(fusion, val, val_labels)
    return keras.ops.convert_to_numpy(fusion(test))


def flip_rows(model, features, run_info: dict, split) -> dict:
    """Test-time flip averaging (each branch's log-probabilities averaged over the clip and its mirror image):
    the branches alone, and one weight per branch fit again on the validation signers' flip-averaged outputs;
    plus the ceiling of fusion: test clips the keypoint branch gets wrong, and how many of those each frame
    branch gets right."""
    labels = np.asarray(features.labels)
    val, test = (branch_log_probs(model, features, run_info, rows) for rows in (split.val, split.test))
    right = lambda lp, rows: lp.argmax(axis=-1) == labels[rows]  # noqa: E731
    out = {f"alone_flip:{name}": float(right(lp.mean(axis=0), split.test).mean()) for name,
           lp in test.items()}
    for frame_input, subset in SUBSETS.items():
        if not set(subset) <= set(test):
            continue
        for flip in (False, True) if frame_input == "pixels" else (True,):
            view = (lambda lp: lp.mean(axis=0)) if flip else (lambda lp: lp[0])  # noqa: E731
            fused = fit_and_fuse([view(val[name]) for name in subset], labels[split.val],
                                 [view(test[name]) for name in subset], f"fusion_{frame_input}_{flip}")
            kind = ("pixels" if frame_input == "pixels" else "fused") + ("_flip" if flip else "")
            out[f"{kind}:logits:{frame_input}"] = float(right(fused, split.test).mean())
        # a product of experts: every branch's log-probabilities summed, nothing fit
        out[f"fused_equal:{frame_input}"] = float(right(sum(test[name][0] for name in subset),
                                                        split.test).mean())
    keypoints_wrong = ~right(test["keypoints"][0], split.test)
    out["keypoints_wrong"], out["test_clips"] = int(keypoints_wrong.sum()), len(split.test)
    for name in test.keys() - {"keypoints"}:
        out[f"rescuable:{name}"] = int((keypoints_wrong & right(test[name][0], split.test)).sum())
    return out


def run_fold(features, name: str, model_name: str, config, test: list[str], epochs: int | None,
             out: Path) -> dict:
    """Train one run on one fold and score it; the row values of this fold."""
    run_dir = out / name / "-".join(test)
    started = time.perf_counter()
    if (run_dir / "metrics.json").is_file():  # trained before the process stopped (e.g. killed while scoring)
        metrics = json.loads((run_dir / "metrics.json").read_text())
    else:
        metrics = training.train(features, model_name, config, out_dir=run_dir, epochs=epochs, seed=SEED,
                                 test_group=test, verbose=0, measure_speed=False)
    result = {"test_accuracy": metrics["test_accuracy"], "val_accuracy": metrics["val_accuracy"],
              "train_seconds": metrics["train_seconds"], "epochs_run": metrics["epochs_run"],
              "wall_seconds": round(time.perf_counter() - started, 1),
              "load_average": round(os.getloadavg()[1], 1)}
    if name.startswith("staged"):
        result.update(staged_rows(features, run_dir, test, config))
    if name == "convlstm_drawn":
        result["probe"] = single_probe(features, run_dir)
    # drawn hands do not swap
    if name.startswith("convlstm") and not config.preprocessing.get("draw_landmarks"):
        result["test_flip_accuracy"] = flip_accuracy(features, run_dir, test)
    return result


def flip_accuracy(features, run_dir: Path, test: list[str]) -> float:
    """Test accuracy of a single-model run with test-time flip averaging inside the model (``test_time_flip``:
    the logits averaged over each clip and its mirror image), whether or not it was trained with that
    option."""
    model, run_info = load_run(run_dir)
    config = models.ModelConfig.from_dict(run_info["config"])
    flipped = models.with_test_time_flip(model, run_info["model"], config)
    rows = np.flatnonzero(np.isin(features.groups, test))
    return accuracy(flipped, prepare_inputs(features, run_info, rows), np.asarray(features.labels)[rows])


def single_probe(features, run_dir: Path) -> float:
    """The signer probe on a single-branch run's penultimate features (all clips)."""
    from utils.evaluation.probe import probe_model

    model, run_info = load_run(run_dir)
    return probe_model(model, prepare_inputs(features, run_info), features.groups, features.labels).accuracy


def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (:func:`utils.evaluation.crossval.t_interval`; 0 for one
    value)."""
    from utils.evaluation import crossval

    stats = crossval.t_interval(values)
    low, high = stats["ci95"] or (stats["mean"], stats["mean"])
    return float(stats["mean"]), float(high - low) / 2


ROWS = [  # (label, run, key in the fold's result)
    ("keypoint model alone (`recommended` lstm, 30 frames)", "lstm", "test_accuracy"),
    ("keypoint branch alone (the same encoder in the fused model, 16 frames)", "staged", "alone:keypoints"),
    ("keypoint branch alone, test-time flip averaging", "staged", "alone_flip:keypoints"),
    ("ConvLSTM alone: whole-frame differences", "staged", "alone:frames"),
    ("ConvLSTM alone: whole-frame differences, test-time flip averaging", "staged", "alone_flip:frames"),
    ("ConvLSTM alone: hand-crop differences", "staged", "alone:hands"),
    ("ConvLSTM alone: hand-crop differences, test-time flip averaging", "staged", "alone_flip:hands"),
    ("ConvLSTM alone: whole-frame differences, landmarks drawn on the frames (the original's)",
     "convlstm_drawn", "test_accuracy"),
    ("ConvLSTM alone: whole-frame + hand-crop differences in one model", "convlstm_both", "test_accuracy"),
    ("ConvLSTM alone: whole-frame + hand-crop differences in one model, test-time flip averaging",
     "convlstm_both", "test_flip_accuracy"),
    ("ConvLSTMs alone: whole-frame and hand-crop branches, learned weights", "staged",
     "pixels:logits:pixels"),
    ("ConvLSTMs alone: whole-frame and hand-crop branches, learned weights, test-time flip averaging",
     "staged", "pixels_flip:logits:pixels"),
    ("fused, staged, learned weights: keypoints + frames", "staged", "fused:logits:frames"),
    ("fused, staged, learned weights, test-time flip averaging: keypoints + frames", "staged",
     "fused_flip:logits:frames"),
    ("keypoint branch alone, two-branch run (the same encoder, 16 frames)", "staged_frames",
     "alone:keypoints"),
    ("fused, staged, learned weights: keypoints + frames, trained as a two-branch model", "staged_frames",
     "fused:logits:frames"),
    ("fused, staged, learned weights, test-time flip averaging: keypoints + frames, trained as a two-branch "
     "model",
     "staged_frames", "fused_flip:logits:frames"),
    ("fused, staged, learned weights: keypoints + hands", "staged", "fused:logits:hands"),
    ("fused, staged, learned weights, test-time flip averaging: keypoints + hands", "staged",
     "fused_flip:logits:hands"),
    ("fused, staged, learned weights: keypoints + frames + hands", "staged", "fused:logits:both"),
    ("fused, staged, learned weights, test-time flip averaging: keypoints + frames + hands", "staged",
     "fused_flip:logits:both"),
    ("fused, staged, equal weights (a product of experts, nothing fit): keypoints + frames", "staged",
     "fused_equal:frames"),
    ("fused, staged, equal weights (a product of experts, nothing fit): keypoints + frames + hands", "staged",
     "fused_equal:both"),
    ("fused, staged, learned gate: keypoints + frames", "staged", "fused:gate:frames"),
    ("fused, staged, learned gate: keypoints + hands", "staged", "fused:gate:hands"),
    ("fused, staged, learned gate: keypoints + frames + hands", "staged", "fused:gate:both"),
]
SUBSET_NAMES = {"frames": "keypoints + frames", "hands": "keypoints + hands",
                "both": "keypoints + frames + hands"}


def recommended_rows() -> dict[str, str]:
    """The rows that are ``recommended`` in utils.models now: {label: "`recommended` fused" or "...
    convlstm"}."""
    fused, convlstm = models.get_config("fused"), models.get_config("convlstm")
    flip = lambda config: ", test-time flip averaging" if config.test_time_flip else ""  # noqa: E731
    pixels = {"frames": "whole-frame differences", "hands": "hand-crop differences",
              "both": "whole-frame + hand-crop differences in one model"}[convlstm.frame_input]
    two_branch = ", trained as a two-branch model" if fused.frame_input == "frames" else ""
    return {f"fused, staged, learned weights{flip(fused)}: {SUBSET_NAMES[fused.frame_input]}{two_branch}":
            "`recommended` fused",
            f"ConvLSTM alone: {pixels}{flip(convlstm)}": "`recommended` convlstm"}


RECOMMENDED = next(label for label, kind in recommended_rows().items() if kind.endswith("fused"))
#: the run that trained the recommended fused model, and its own keypoint branch scored alone
RECOMMENDED_RUN = next(run for label, run, _ in ROWS if label == RECOMMENDED)
KEYPOINT_BRANCH = ("keypoint branch alone, two-branch run (the same encoder, 16 frames)" if RECOMMENDED_RUN ==
                   "staged_frames" else "keypoint branch alone (the same encoder in the fused model, 16 "
                                        "frames)")
SINGLE = tuple(label for label, _, _ in ROWS if not label.startswith("fused"))
PROBE_OF = {("staged", "alone:keypoints"): ("staged", "probe:keypoints"),
            ("staged", "alone:frames"): ("staged", "probe:frames"),
            ("staged", "alone:hands"): ("staged", "probe:hands"),
            # (run, row key) -> its signer probe
            ("convlstm_drawn", "test_accuracy"): ("convlstm_drawn", "probe")}
PROBES = {label: PROBE_OF[(run, key)] for label, run, key in ROWS if (run, key) in PROBE_OF}
PREVIOUS = """From the previous ablation (commit ed2ee5c, 8 epochs per model, the old keypoint LSTM(128) and
the ConvLSTM without a stem on 16 frames of 32x32; not rerun with the new branches): ConvLSTM alone on raw RGB
frames 0.092 ± 0.014, on whole-frame differences 0.080 ± 0.034, on hand-crop differences 0.200 ± 0.036; fused
by concatenation trained end to end 0.302 ± 0.039 (raw RGB, the recommended fused model before that ablation)
and 0.267 ± 0.088 (frame differences, modality dropout 0.3); staged learned weights keypoints + frames
0.745 ± 0.077 against 0.743 ± 0.071 for its keypoint branch.

From the ablation at 24 epochs per model or branch (commit 04f42d8, before the keypoint model gained finger
angles; load average 20-30): keypoint model alone 0.957 ± 0.034, keypoint branch 0.965 ± 0.030, ConvLSTM on
whole-frame differences 0.560 ± 0.087 (signer probe 0.25), with the landmarks drawn on the frames
0.470 ± 0.047 (probe 0.31), fused staged with learned weights 0.972 ± 0.042, with a learned gate
0.945 ± 0.037."""


def paragraphs(text: str) -> list[str]:
    """Markdown lines of a wrapped text: one line per paragraph, a blank line between them."""
    lines = []
    for paragraph in text.split("\n\n"):
        lines += [paragraph.replace("\n", " "), ""]
    return lines[:-1]


def load_results(out: Path) -> dict[str, dict[str, dict]]:
    """{run: {fold: values}} from the per-fold JSON files of earlier runs."""
    results: dict[str, dict[str, dict]] = {}
    for path in sorted(out.glob("*/*.json")):
        results.setdefault(path.parent.name, {})[path.stem] = json.loads(path.read_text())
    return results


def _values(results: dict, names: list[str], label: str) -> list[float | None]:
    """Per-fold values of a table row (None where not run)."""
    run, key = next((run, key) for row, run, key in ROWS if row == label)
    return [results.get(run, {}).get(n, {}).get(key) for n in names]


def targets(results: dict, names: list[str]) -> list[str]:
    """The goals this study set itself, checked on what was run."""
    means = {label: float(np.mean([v for v in _values(results, names, label) if v is not None]))
             for label, _, _ in ROWS if any(v is not None for v in _values(results, names, label))}
    if RECOMMENDED not in means:
        return ["Targets: the recommended variant was not run."]
    single = {label: mean for label, mean in means.items() if label in SINGLE}
    best_single = max(single, key=single.get)
    frame_only = max((m for label, m in single.items() if label.startswith("ConvLSTM")), default=float("nan"))
    fused, keypoints = _values(results, names, RECOMMENDED), _values(results, names, KEYPOINT_BRANCH)
    drops = [k - f for f, k in zip(fused, keypoints) if f is not None and k is not None]
    seconds = [
        results[RECOMMENDED_RUN][n]["train_seconds"] for n in names if n in results.get(RECOMMENDED_RUN, {})
    ]
    gain = means[RECOMMENDED] - single[best_single]
    return [
        f"Targets, for `recommended` fused ({RECOMMENDED}):",
        "",
        f"- fused >= best single branch + 0.02: {means[RECOMMENDED]:.3f} vs {best_single} "
        f"{single[best_single]:.3f} ({gain:+.3f}): {'met' if gain >= 0.02 else 'not met'}",
        f"- ConvLSTM alone >= 0.60: best frame-only row {frame_only:.3f}: "
        f"{'met' if frame_only >= 0.60 else 'not met'}",
        f"- no fold more than 0.02 below its own keypoint branch: at most {max(0.0, max(drops)):.3f} "
        f"below ({'met' if max(drops) <= 0.02 else 'not met'})",
        f"- one fold <= 10 min on 2 CPU cores: the {RECOMMENDED_RUN} run ({staged_branches(results, names)}, "
        f"each branch to its epoch limit or early stop) took {min(seconds):.0f}-{max(seconds):.0f} s of "
        f"training per fold, on 2 CPU cores shared with other jobs ({load_text(results, names)})",
        *ceiling(results, names),
    ]


def load_text(results: dict, names: list[str]) -> str:
    """The load averages measured at the end of the staged folds, or what the earlier ablation reported."""
    loads = [results[RECOMMENDED_RUN][n]["load_average"] for n in names
             if "load_average" in results.get(RECOMMENDED_RUN, {}).get(n, {})]
    if not loads:
        return "load average 20-30 during this ablation"
    return f"5-minute load average {min(loads):.1f}-{max(loads):.1f} at the end of each fold"


def ceiling(results: dict, names: list[str]) -> list[str]:
    """How far fusion could go, for the recommended run and then the other staged runs: test clips the
    keypoint branch gets wrong, and how many of them a frame branch gets right."""
    lines = []
    for run in dict.fromkeys((RECOMMENDED_RUN, "staged", "staged_frames")):
        done = [results[run][n] for n in names if "keypoints_wrong" in results.get(run, {}).get(n, {})]
        if not done:
            continue
        wrong = sum(fold["keypoints_wrong"] for fold in done)
        branches = sorted(
            {key.split(":")[1] for fold in done for key in fold if key.startswith("rescuable:")}
        )
        rescuable = ", ".join(
            f"the {name} branch gets {sum(fold.get(f'rescuable:{name}', 0) for fold in done)} of them right"
            for name in branches
        )
        clips = sum(fold["test_clips"] for fold in done)
        lines.append(f"- the ceiling ({run} run{', the recommended one' if run == RECOMMENDED_RUN else ''}): "
                     f"over {len(done)} folds its keypoint branch gets {wrong} of {clips} test clips wrong; "
                     f"{rescuable}. A fusion gain of +0.02 over it needs about {0.02 * clips:.0f} of them "
                     f"put right without losing any other.")
    return ["", *lines] if lines else []


def staged_branches(results: dict, names: list[str]) -> str:
    """The recommended run's branches, from the number of fusion weights it stored."""
    weights = [
        len(results[RECOMMENDED_RUN][n]["weights"]) for n in names if n in results.get(RECOMMENDED_RUN, {})
    ]
    return "keypoints + frames + hands" if weights and max(weights) == 3 else "keypoints + frames"


def table(results: dict, fold_list: list[list[str]], epochs: int | None, command: str) -> str:
    """The markdown report: one row per variant, mean ± 95% t-interval, n, per-fold values, signer probe."""
    names = ["-".join(f) for f in fold_list]
    lines = ["# Fusion ablation (synthetic signers, 5 folds of 2 unseen signers)", "",
             f"Written by `{command}`. Seed {SEED} for every model; validation signers come from the "
             "training side (they choose the best epoch, and fit the fusion weights of the staged models); "
             f"epochs: {epochs or 'each configuration’s own'} per model (per branch for the staged ones). "
             f"Sign chance = 0.10; signer-probe chance = 0.10 (10 signers; a linear probe of each branch's "
             "penultimate features, all 400 clips, tested on signs it did not see: high = the branch knows "
             "who is signing).", "",
             "| variant | mean accuracy ± 95% t-interval | n | per fold (" + ", ".join(names)
             + ") | signer probe |",
             "|---|---|---|---|---|"]
    for label, run, key in ROWS:
        values = [results.get(run, {}).get(n, {}).get(key) for n in names]
        done = [v for v in values if v is not None]
        if not done:
            marked = f"{label} ({recommended_rows()[label]})" if label in recommended_rows() else label
            lines.append(f"| {marked} | not run | 0 | | |")
            continue
        mean, half = t_interval(done)
        probe_run, probe_key = PROBES.get(label, (run, None))
        probe = (
            [results[probe_run][n].get(probe_key) for n in names if n in results.get(probe_run, {})]
            if probe_key
            else []
        )
        probe_text = f"{np.mean(probe):.2f}" if probe else ""
        per_fold = ", ".join("–" if v is None else f"{v:.3f}" for v in values)
        marked = f"{label} ({recommended_rows()[label]})" if label in recommended_rows() else label
        lines.append(f"| {marked} | {mean:.3f} ± {half:.3f} | {len(done)} | {per_fold} | {probe_text} |")
    weights = np.array([results["staged"][n]["weights"] for n in names if n in results.get("staged", {})])
    if len(weights):
        branch_names = ("keypoints", "whole-frame differences", "hand-crop differences")[:weights.shape[1]]
        lines += ["",
                  "Learned fusion weights of the staged run (softplus, 1 = as much as in a product of "
                  "experts), mean over folds: " + ", ".join(f"{name} {weights[:, i].mean():.2f}"
                                                   for i, name in enumerate(branch_names)) + "."]
    lines += ["",
              "How the rows were made: one staged run per fold trains its branches, each alone with its own "
              "head (its best-on-validation epoch), and fits one weight per branch on the validation "
              "signers; the single-branch rows are those branches scored alone, and the other staged rows "
              "fuse subsets of the same trained branches, only the fusion (weights or gate) fit again on the "
              "validation signers. Test-time flip averaging: each branch's log-probabilities averaged over "
              "the clip and its mirror image (frames flipped, hand crops flipped and swapped, keypoints "
              "mirrored with the hands swapped), the fusion weights fit again on the validation signers' "
              "averaged outputs; for the ConvLSTM on whole frames and hand crops in one model, the same "
              "model rebuilt with `test_time_flip` (the logits of the clip and its mirror image averaged "
              "inside the model). The keypoint model alone, the ConvLSTM on frames with landmarks drawn and "
              "the ConvLSTM on whole frames and hand crops in one model are trainings of their own.", "",
              *paragraphs(PREVIOUS)]
    if "staged" in results and staged_branches(results, names).startswith("keypoints + frames,"):
        lines += ["",
                  "The hand-crop rows were not run this time: a third branch per fold did not fit the CPU "
                  "time (`--staged-input both` runs them)."]
    if epochs:
        lines += ["", f"Caveat: {epochs} epochs per model instead of the configurations' own."]
    lines += ["", *targets(results, names), "",
              "Per run and fold (seconds of training, epochs run, validation accuracy):", ""]
    for run, per_fold in results.items():
        for fold, values in per_fold.items():
            extra = (
                f", fusion weights (keypoints, frame branches) {values['weights']}"
                if "weights" in values
                else ""
            )
            lines.append(f"- {run} {fold}: {values['train_seconds']:.0f} s, {values['epochs_run']} epochs, "
                         f"val {values['val_accuracy']:.3f}{extra}")
    return "\n".join(lines) + "\n"


def rescore(features, out: Path, fold_list: list[list[str]]) -> None:
    """Score the stored runs of finished folds with test-time flip averaging again, with the current mirror
    code (no training): the flip rows of both staged runs and the in-model flip of the ConvLSTM on frames +
    hands."""
    from utils.data import splits

    for run in ("staged", "staged_frames", "convlstm_both"):
        for test in fold_list:
            store, run_dir = out / run / f"{'-'.join(test)}.json", out / "runs" / run / "-".join(test)
            if not store.is_file() or not run_dir.is_dir():
                continue
            values = json.loads(store.read_text())
            if run == "convlstm_both":
                values["test_flip_accuracy"] = flip_accuracy(features, run_dir, test)
            else:
                model, run_info = load_run(run_dir)
                split = splits.make_splits(features.labels, groups=features.groups, test_group=test,
                                           seed=SEED)
                values.update(flip_rows(model, features, run_info, split))
            store.write_text(json.dumps(values, indent=1))
            print(f"rescored {run} {store.stem}", flush=True)


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
    parser.add_argument("--staged-input", default="both", choices=("both", "frames"),
                        help="frame branches of the staged run: whole frames and hand crops, or whole frames "
                             "only")
    parser.add_argument("--table-only", action="store_true",
                        help="only rewrite the table from the stored folds")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="add the flip-averaging rows to stored staged folds that lack them (no training)",
    )
    args = parser.parse_args(argv)
    out = paths.RESULTS_DIR / "fusion_ablation"
    features = load_features(args.features)
    fold_list = folds(features.groups)
    chosen = [fold_list[int(i) - 1] for i in args.folds.split(",")] if args.folds else fold_list
    command = (f"python -m utils extract synthetic --out data/features/{Path(args.features).name} "
               f"--hand-size 32` then `nice -n 10 python benchmarks/fusion_ablation.py"
               f" --features data/features/{Path(args.features).name}"
               + (f" --epochs {args.epochs}" if args.epochs else "") + f" --hand-size {args.hand_size}"
               + (f" --staged-input {args.staged_input}" if args.staged_input != "both" else "")
               + (f" --runs {args.runs}" if args.runs != ",".join(runs()) else ""))
    if args.rescore:
        rescore(features, out, chosen)
    if not args.table_only:
        for name in args.runs.split(","):
            model_name, config = runs(args.hand_size, args.staged_input)[name]
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
