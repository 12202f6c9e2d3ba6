"""Which keypoint model holds on people it never saw? Cross-validation strictly by signer, real and synthetic.

    python benchmarks/real_signers.py --only chance linear boosted          # the baselines on every set
    python benchmarks/real_signers.py --only lstm --datasets all --quick    # the recommended lstm, 5 epochs
    python benchmarks/real_signers.py --combine a.json b.json               # merge runs made in parallel

Sets (real recordings read in place from ../shared/real/mp_data_signers, never copied):

* ``four``: sequences.npz, four signers, leave-one-signer-out (4 folds).
* ``crowd``: crowd.npz, forty signers, 5 folds of 8 (signers shuffled with seed 0, then cut in 5).
* ``all``: sequences.npz + crowd.npz + more.npz, the 55 signers, 5 folds of 11 (the same way).
* ``synthetic``: the course's synthetic set (data/features/synthetic_T30_S64.npz), 5 folds of 2 signers.
* ``transfer``: trained on the 44 signers of sequences + crowd, tested on the 24 real ASL videos
  (data/features/asl_clips_T30_S64.npz, keypoints by the course's own ``extract``:
  ``python -m utils extract ../shared/real/asl_clips --out data/features/asl_clips_T30_S64.npz``).
* ``transfer_all``: the same videos, trained on all 55 signers (sequences + crowd + more).

A fold's model is fitted on its training signers only, with the course's own functions (the linear model:
``training.fit_linear_weights``; the boosted trees: ``models.boosted.fit_boosted``; networks: the course's
augmented batches and ``models.build_model``), for the configuration's fixed number of epochs with the last
weights kept: no validation split, nothing is chosen on test signers. Not every signer shows every sign, so a
test signer may show a sign that no training signer showed: such clips count as errors in ``accuracy`` and are
left out of ``accuracy (seen signs)``. Every sign is reported per fold: its recall and how many training
signers showed it. ``chance`` is the expected accuracy of a uniform guess among the fold's training signs.

Each fit's test probabilities are kept in ``results/real_signers_cache`` (``--cache ''``: train afresh), so a
rerun or a blend ("a + b": probabilities averaged) reads them; "x3" averages seeds 0, 1 and 2. The mean over
``four``, ``crowd``, ``all`` and ``synthetic`` decides between candidates; the ASL videos decide nothing. A
run adds its rows to the JSON already at ``--out`` (``--fresh``: start empty); both files are generated:
benchmarks/real_signers.json (one entry per row and set: model, configuration, set, mean, 95% t-interval, n,
per-fold values, per-sign recall and training signers) and benchmarks/real_signers.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import real_signers_table as table  # noqa: E402
from utils import models  # noqa: E402
from utils.data.keypoints import mp_data_to_original  # noqa: E402
from utils.inputs import preprocessing  # noqa: E402

REAL = Path(os.environ.get("COURSE_REAL_DIR", ROOT.parent / "shared" / "real"))
DATA = Path(os.environ.get("COURSE_DATA_DIR", ROOT / "data"))
DATASETS = ("four", "crowd", "all", "synthetic", "transfer", "transfer_all")
SELECTION = ("four", "crowd", "all", "synthetic")  # the mean over these decides; transfer is a held-out check
MP_FILES = {"four": ("sequences",), "crowd": ("crowd",), "all": ("sequences", "crowd", "more")}
TABLE_FIRST = (
    "chance",
    "linear",
    "boosted",
    "lstm",
    "conv_gru, hand angles, balanced classes, label smoothing x3",
    "conv_gru, hand angles, balanced classes, label smoothing",
    "conv_gru, hand angles, balanced classes, ensemble=3",
    "conv_gru, hand angles, balanced classes",
    "conv_gru, hand angles",
    "conv_gru",
    "lstm, old recommended",
)  # then the order of candidates()


@dataclass
class ClipSet:
    """Raw keypoints (N, T, 1662, our order), class names per clip and signer per clip."""

    keypoints: np.ndarray
    labels: np.ndarray
    signers: np.ndarray


# ----------------------------------------------------------------------------- data
def load_mp_signers(name: str) -> ClipSet:
    """sequences.npz, crowd.npz or more.npz of ../shared/real/mp_data_signers, in the course's keypoint
    order."""
    path = REAL / "mp_data_signers" / f"{name}.npz"
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: this study needs the real recordings in ../shared/real "
            "(set COURSE_REAL_DIR to where they are)"
        )
    data = np.load(path, allow_pickle=False)
    keypoints = mp_data_to_original(data["keypoints"].astype(np.float32))
    return ClipSet(keypoints, data["labels"].astype(str), data["signers"].astype(str))


def load_features_file(name: str) -> ClipSet:
    """A course features file (data/features/<name>.npz): keypoints, class names and groups."""
    path = DATA / "features" / f"{name}.npz"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python -m utils extract` for it (or set COURSE_DATA_DIR)")
    data = np.load(path, allow_pickle=False)
    classes = data["classes"].astype(str)
    return ClipSet(data["keypoints"].astype(np.float32), classes[data["labels"]], data["groups"].astype(str))


def group_folds(signers: np.ndarray, num_folds: int | None, seed: int = 0) -> list[np.ndarray]:
    """Test signers of each fold: one per fold (None = leave-one-signer-out) or num_folds shuffled equal
    parts."""
    names = np.array(sorted(set(signers)))
    if num_folds is None:
        return [names[i : i + 1] for i in range(len(names))]
    names = names[np.random.default_rng(seed).permutation(len(names))]
    return [np.sort(part) for part in np.array_split(names, num_folds)]


def load_mp_set(dataset: str) -> ClipSet:
    """The clips of a set of real signers: "four", "crowd" or "all"."""
    return load_mp_files(MP_FILES[dataset])


def load_mp_files(names: tuple[str, ...]) -> ClipSet:
    """The clips of these npz files of ../shared/real/mp_data_signers, one file after another."""
    parts = [load_mp_signers(name) for name in names]
    return ClipSet(
        np.concatenate([p.keypoints for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.signers for p in parts]),
    )


@functools.lru_cache(maxsize=1)  # the candidates of a run read the same set one after another
def fold_tasks(dataset: str) -> list[tuple[str, ClipSet, np.ndarray, np.ndarray, ClipSet | None]]:
    """(fold name, clips, train mask, test mask, other test clips or None) for every fold of a dataset."""
    if dataset in ("transfer", "transfer_all"):
        both = load_mp_files(MP_FILES["all"] if dataset == "transfer_all" else ("sequences", "crowd"))
        every = np.ones(len(both.labels), bool)
        return [("asl_clips", both, every, ~every, load_features_file("asl_clips_T30_S64"))]
    clips = load_features_file("synthetic_T30_S64") if dataset == "synthetic" else load_mp_set(dataset)
    num_folds = None if dataset == "four" else 5
    tasks = []
    for test_signers in group_folds(clips.signers, num_folds):
        test = np.isin(clips.signers, test_signers)
        tasks.append(
            (
                "+".join(test_signers) if len(test_signers) <= 2 else f"{len(test_signers)} signers",
                clips,
                ~test,
                test,
                None,
            )
        )
    return tasks


# ----------------------------------------------------------------------------- models
def prepared(config: models.ModelConfig, model_name: str, kp: np.ndarray) -> dict[str, np.ndarray]:
    """Raw keypoints (N, T', 1662) -> the model's inputs: T frames, the configuration's preprocessing."""
    from utils.inputs.spec import finish_inputs

    return finish_inputs(
        {"keypoints": preprocessing.resample_time(kp, config.num_frames)}, (model_name, config)
    )


def fit_linear(
    config: models.ModelConfig, train_kp: np.ndarray, train_y: np.ndarray, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The linear model as ``train --model linear`` fits it (``training.fit_linear_weights``); returns a
    predictor."""
    from utils.training import loop as training

    inputs = prepared(config, "linear", train_kp)["keypoints"]
    model = models.build_model(
        "linear", config, num_classes=int(train_y.max()) + 1, keypoint_dim=inputs.shape[-1]
    )
    training.fit_linear_weights(
        model, models.segment_statistics(inputs, config.segments), train_y, config, seed
    )
    return lambda kp: model.predict(prepared(config, "linear", kp)["keypoints"], batch_size=256, verbose=0)


def fit_boosted(
    config: models.ModelConfig, train_kp: np.ndarray, train_y: np.ndarray, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The boosted trees as ``train --model boosted`` fits them (``models.boosted.fit_boosted``) on one OpenMP
    thread (on two shared cores more threads mostly wait for each other); returns a predictor."""
    from threadpoolctl import threadpool_limits

    inputs = prepared(config, "boosted", train_kp)["keypoints"]
    with threadpool_limits(limits=1, user_api="openmp"):
        model = models.boosted.fit_boosted(
            config,
            models.segment_statistics(inputs, config.segments),
            train_y,
            int(train_y.max()) + 1,
            inputs.shape[-1],
            seed,
        )
    return lambda kp: model.predict(prepared(config, "boosted", kp)["keypoints"], batch_size=256, verbose=0)


def fit_neural(
    config: models.ModelConfig,
    train_kp: np.ndarray,
    train_y: np.ndarray,
    seed: int,
    sampling: str | None = None,
    first: np.ndarray | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The lstm model of this configuration, trained config.epochs epochs with the course's augmented batches;
    with ``config.ensemble`` N > 1, N networks (seeds seed .. seed + N - 1) in the course's averaging
    model."""
    members = [
        fit_network(config.replace(ensemble=1), train_kp, train_y, seed + index, sampling, first)
        for index in range(models.check_ensemble("lstm", config))
    ]
    model = models.ensemble_model(members, name="ensemble")

    def predict(kp: np.ndarray) -> np.ndarray:
        return model.predict(prepared(config, "lstm", kp), batch_size=256, verbose=0)

    # the nearest-class head of the same networks, kept beside the softmax's answer (row "nearest class")
    predict.nearest_class = lambda kp: np.mean(
        [nearest_class(member, config, train_kp, train_y, kp) for member in members], axis=0
    )
    return predict


#: softmax temperature of the nearest-class head's cosine similarities (fixed, not tuned)
NEAREST_CLASS_TEMPERATURE = 0.1


def nearest_class(
    network: Any, config: models.ModelConfig, train_kp: np.ndarray, train_y: np.ndarray, test_kp: np.ndarray
) -> np.ndarray:
    """A prototype head on a trained network: each clip's embedding (the input of the last Dense layer,
    L2-normalised) compared with each sign's mean training embedding (no augmentation); probabilities =
    softmax(cosine similarity / NEAREST_CLASS_TEMPERATURE). A sign shown by few signers gets a prototype as
    good as its clips, with no weights of its own to learn."""
    import keras

    embed = keras.Model(network.inputs, network.layers[-1].input)

    def unit(kp: np.ndarray) -> np.ndarray:
        vectors = embed.predict(prepared(config, "lstm", kp), batch_size=256, verbose=0)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    train = unit(train_kp)
    prototypes = np.stack([train[train_y == label].mean(axis=0) for label in range(int(train_y.max()) + 1)])
    prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
    logits = unit(test_kp) @ prototypes.T / NEAREST_CLASS_TEMPERATURE
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def fit_network(
    config: models.ModelConfig,
    train_kp: np.ndarray,
    train_y: np.ndarray,
    seed: int,
    sampling: str | None = None,
    first: np.ndarray | None = None,
) -> Any:
    """One lstm network of this configuration, trained config.epochs epochs with the course's augmented
    batches; ``sampling="balanced"``: each epoch's clips drawn class by class (the course's
    ``ModelConfig.sampling``) instead of the configuration's class weights. ``first`` (a mask over the
    training clips): pretrained on those clips for the configuration's epochs, then fine-tuned on the others
    for as many (the same network, the same classes)."""
    import keras

    from utils.config import set_seed
    from utils.training import loop as training

    set_seed(seed)
    spec = ("lstm", config)
    raw = {"keypoints": preprocessing.resample_time(train_kp, config.num_frames)}
    if sampling is not None:  # the course's option (ModelConfig.sampling) in place of class weights
        config = config.replace(sampling=sampling, class_weight=None)
    stages = [None] if first is None else [np.flatnonzero(first), np.flatnonzero(~first)]  # rows, in order
    model = models.build_model(
        "lstm",
        config,
        num_classes=int(train_y.max()) + 1,
        keypoint_dim=preprocessing.output_dim(config.preprocessing),
    )
    models.compile_model(model, config)
    callbacks = []
    if config.lr_milestones:
        callbacks.append(
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch))
        )
    for rows in stages:
        labels = train_y if rows is None else train_y[rows]
        augmentation = config.augmentation or {}
        batches = training.training_batches(
            raw, labels, spec, augmentation, config.batch_size, seed, rows, sampling=config.sampling
        )
        model.fit(
            batches,
            epochs=config.epochs,
            verbose=0,
            callbacks=callbacks,
            class_weight=training.class_weights(labels, config.class_weight),
        )
    return model


@dataclass
class Candidate:
    """One row of the table: a name, a configuration, how to fit it, how many seeds to average, and the other
    rows whose (cached) test probabilities it averages with its own (``blend``; ``config`` None: only
    those)."""

    name: str
    config: models.ModelConfig | None
    linear: bool = False
    boosted: bool = False  # the boosted trees (--model boosted) on the linear model's statistics
    chance: bool = False  # no model: the expected accuracy of a uniform guess among the training signs
    seeds: int = 1
    note: str = ""
    blend: tuple[str, ...] = ()
    # "four" ("four+more"): crowd folds also train on the four (and the eleven more) signers' clips (test side
    # unchanged)
    extra_training: str | None = None
    head: str = "probabilities"  # "nearest_class": the networks' prototype head (:func:`nearest_class`)
    sampling: str | None = None  # "balanced": class-balanced batches instead of class weights
    pretrain: bool = False  # with extra_training: first trained on the extra signers, then on the fold's own
    # per-class calibration without tuning: probabilities divided by each sign's share of the training clips
    # (and renormalised), the "logit adjustment" of Menon et al. (2021) with tau = 1
    prior_correction: bool = False


#: ModelConfig fields added after the cache was: left at their default they are not part of a key, so the
#: probabilities cached before they existed still count (a key with them is also looked up).
LATER_FIELDS = {"class_weight": None, "ensemble": 1, "label_smoothing": 0.0, "sampling": None}


def cache_keys(
    config: models.ModelConfig,
    linear: bool,
    dataset: str,
    fold: str,
    seed: int,
    boosted: bool = False,
    sampling: str | None = None,
    pretrain: bool = False,
) -> list[str]:
    """File names for the test probabilities of one fit (everything that decides them, hashed): the key, then
    an older spelling of it to look up as well."""
    import hashlib

    fields = {k: v for k, v in config.to_dict().items() if k not in ("name", "description")}
    short = {k: v for k, v in fields.items() if LATER_FIELDS.get(k, object()) != v}
    # the rows written before the boosted trees and the sampling option keep their keys
    kind = {
        **({"boosted": True} if boosted else {}),
        **({"sampling": sampling} if sampling else {}),
        **({"pretrain": True} if pretrain else {}),
    }
    return [
        hashlib.sha1(
            json.dumps(
                {"config": values, "linear": linear, "dataset": dataset, "fold": fold, "seed": seed, **kind},
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
        for values in ([short, fields] if short != fields else [short])
    ]


def fit_and_predict(
    config: models.ModelConfig,
    linear: bool,
    seed: int,
    train_kp: np.ndarray,
    train_y: np.ndarray,
    test_kp: np.ndarray,
    cache: Path | None,
    keys: list[str],
    boosted: bool = False,
    head: str = "probabilities",
    sampling: str | None = None,
    first: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Test probabilities of one model fitted with one seed, and its training seconds (read from cache when
    there). ``head="nearest_class"``: those of the networks' nearest-class head (:func:`nearest_class`),
    stored beside the softmax's in the same file; a file written without them is fitted again."""
    path = None if cache is None else cache / f"{keys[0]}.npz"
    for found in [] if cache is None else [cache / f"{key}.npz" for key in keys]:
        if found.is_file():
            stored = np.load(found)
            if head in stored:
                return stored[head], float(stored["seconds"])
    start = time.perf_counter()
    if boosted or linear:
        predictor = (fit_boosted if boosted else fit_linear)(config, train_kp, train_y, seed)
    else:
        predictor = fit_neural(config, train_kp, train_y, seed, sampling, first)
    seconds = time.perf_counter() - start
    heads = {"probabilities": predictor(test_kp)}
    if hasattr(predictor, "nearest_class"):
        heads["nearest_class"] = predictor.nearest_class(test_kp)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, seconds=seconds, **heads)
    return heads[head], seconds


def candidates(quick: bool) -> list[Candidate]:
    """The configurations compared; ``quick`` shortens training (a smoke run of the same protocol)."""
    linear = models.get_config("linear")
    rows = [
        Candidate(
            "chance",
            None,
            chance=True,
            note="a uniform guess among the signs of the fold's training signers (expected accuracy; 0 for a"
            " sign no training signer showed)",
        ),
        Candidate("linear", linear, linear=True, note="the linear baseline (`--model linear`)"),
        Candidate(
            "boosted",
            models.get_config("boosted"),
            boosted=True,
            note="gradient-boosted trees on the linear model's statistics (`--model boosted`: scikit-learn's"
            " HistGradientBoostingClassifier, default settings, random_state 0)",
        ),
        Candidate(
            "lstm",
            models.get_config("lstm"),
            note="the recommended `lstm` as the course gives it (`--model lstm`: 3 networks averaged in one "
            "model, labels smoothed by 0.1, classes weighted alike; its configuration's epochs)",
        ),
        Candidate(
            "linear, old preprocessing",
            linear.replace(
                preprocessing={"normalize": True, "face": "thin", "mirror": "height", "velocity": False}
            ),
            linear=True,
            note="the old recommended LSTM's preprocessing (mirror by hand height, thin face)",
        ),
        Candidate(
            "linear, mirror by height",
            linear.replace(preprocessing={**linear.preprocessing, "mirror": "height"}),
            linear=True,
            note="handedness by hand height",
        ),
        Candidate(
            "linear, no mirror",
            linear.replace(preprocessing={**linear.preprocessing, "mirror": False}),
            linear=True,
            note="no handedness canonicalisation",
        ),
        Candidate(
            "linear, no hand shape",
            linear.replace(preprocessing={**linear.preprocessing, "hand_shape": False}),
            linear=True,
            note="without wrist-local hand shapes",
        ),
    ]
    # the recommended lstm as one network, before ensembles and before label smoothing: pinned so its rows
    # stay what they were (the label smoothing rows add it back)
    single = models.get_config("lstm").replace(ensemble=1, label_smoothing=0.0)
    old = single.replace(
        class_weight=None,
        preprocessing={"normalize": True, "face": "thin", "mirror": "height", "velocity": True},
        keypoint_encoder="lstm",
        lstm_units=(128,),
        kernel_size=3,
        epochs=60,
        patience=15,
    )
    # the recommended lstm before hand angles (the previous default), pinned so that its row stays what it was
    default = single.replace(
        preprocessing={**models.LINEAR_PREPROCESSING, "velocity": True}, class_weight=None
    )
    # the recommended lstm before class weights (the previous default), pinned so that its rows stay what
    # they were
    hand_angles = single.replace(class_weight=None)
    smoothed = single.replace(label_smoothing=0.1)  # one network of the recommended lstm
    rows += [
        Candidate(
            "linear, hand angles",
            linear.replace(preprocessing={**linear.preprocessing, "hand_angles": True}),
            linear=True,
            note="linear + finger joint bends and fingertip distances",
        ),
        Candidate("lstm, old recommended", old, note="the course's recommended LSTM before this study"),
        Candidate(
            "conv_gru",
            default,
            note="the recommended `lstm` before hand angles: Dense + 2 residual Conv1D + GRU(96), linear's "
            "preprocessing + velocity, 30 epochs",
        ),
        Candidate(
            "conv_gru, more augmentation",
            default.replace(
                augmentation={**default.augmentation, "rotate": 15.0, "hand_drop": 0.3, "finger_jitter": 0.1}
            ),
            note="conv_gru + rotation up to 15 degrees, one hand lost for a span (30% of clips), finger "
            "jitter 0.1",
        ),
        Candidate(
            "conv_gru, hand angles",
            hand_angles,
            note="the recommended `lstm` before class weights: conv_gru + finger joint bends and fingertip "
            "distances (`hand_angles`)",
        ),
        Candidate(
            "conv_gru, hand angles x3",
            hand_angles,
            seeds=3,
            note="conv_gru, hand angles, probabilities averaged over seeds 0, 1, 2 (a seed ensemble, before "
            "class weights and before the course had the ensemble option)",
        ),
        Candidate(
            "conv_gru, hand angles, more augmentation",
            hand_angles.replace(
                augmentation={
                    **hand_angles.augmentation,
                    "rotate": 15.0,
                    "hand_drop": 0.3,
                    "finger_jitter": 0.1,
                }
            ),
            note="conv_gru, hand angles + rotation up to 15 degrees, one hand lost for a span (30% of "
            "clips), finger jitter 0.1",
        ),
        Candidate(
            "conv_gru, hand angles, temporal crops",
            hand_angles.replace(augmentation={**hand_angles.augmentation, "time_warp": 0.5}),
            note="conv_gru, hand angles with time_warp 0.5: random crops of up to 25% at each end and a "
            "stronger warp (0.2: 10%)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes",
            single,
            note="one network of the recommended `lstm`: conv_gru, hand angles, each class's clips weighted "
            "by N / (classes x its clips): the crowd's no / yes / please (4 signers each) count as much"
            " as hello",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes, ensemble=3",
            single.replace(ensemble=3),
            note="the recommended `lstm` before label smoothing: the same with `ModelConfig.ensemble=3`, "
            "three networks (seeds 0, 1, 2) fitted one after another and averaged inside one Keras "
            "model (chosen by `crossval` with this option: benchmarks/ensemble.md)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes, label smoothing",
            single.replace(label_smoothing=0.1),
            note="one network of the recommended `lstm` trained against targets 0.9 x one-hot + 0.1 / "
            "classes (`ModelConfig.label_smoothing=0.1`)",
        ),
        Candidate(
            "crowd + four in training",
            single,
            extra_training="four",
            note="one network of the recommended `lstm`; each crowd fold also trains on all clips of the "
            "four signers (the test side stays the fold's 8 crowd signers; classes = the union)",
        ),
        Candidate(
            "crowd + four + more in training",
            smoothed,
            extra_training="four+more",
            note="one network of the recommended `lstm`; each crowd fold also trains on all clips of the "
            "four signers and the eleven of more.npz (the test side stays the fold's 8 crowd signers; "
            "classes = the union)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes x5",
            single,
            seeds=5,
            note="one network of the recommended `lstm` fitted with seeds 0-4, probabilities averaged (what "
            "`ensemble=5` would give)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes x3",
            single,
            seeds=3,
            note="one network of the recommended `lstm` before label smoothing fitted with seeds 0-2, "
            "probabilities averaged (what `ensemble=3` gives: the same folds as that row, fold for "
            "fold; the baseline of the label smoothing x3 row)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes, label smoothing x3",
            single.replace(label_smoothing=0.1),
            seeds=3,
            note="**the recommended `lstm` now** (`--model lstm`, `ensemble=3`, `label_smoothing=0.1`): the "
            "label smoothing row fitted with seeds 0-2, probabilities averaged (confirmed by `crossval`"
            " on the same folds as the ensemble: README)",
        ),
        Candidate(
            "conv_gru, hand angles, balanced classes, label smoothing x5",
            single.replace(label_smoothing=0.1),
            seeds=5,
            note="the label smoothing row fitted with seeds 0-4, probabilities averaged (what the "
            "recommended `lstm` with `ensemble=5` would give)",
        ),
        Candidate(
            "recommended, mirrored",
            smoothed.replace(
                preprocessing={**smoothed.preprocessing, "mirror": False},
                augmentation={**smoothed.augmentation, "mirror": 0.5},
            ),
            note="one network of the recommended `lstm` without canonical handedness: instead, half of the "
            "training clips mirrored (hands swapped), so that left-handed signers look right-handed and"
            " the reverse",
        ),
        Candidate(
            "recommended, nearest class",
            smoothed,
            seeds=3,
            head="nearest_class",
            note="the 3 networks of the recommended `lstm` (seeds 0-2), each answering with a nearest-class "
            "head: cosine similarity of a clip's embedding (the last Dense layer's input) to each "
            "sign's mean training embedding, softmax at temperature 0.1; averaged",
        ),
        Candidate(
            "recommended + nearest class",
            None,
            blend=(
                "conv_gru, hand angles, balanced classes, label smoothing x3",
                "recommended, nearest class",
            ),
            note="the recommended `lstm`'s softmax and its nearest-class head, probabilities averaged",
        ),
        Candidate(
            "crowd: four + more first, then the crowd",
            smoothed,
            extra_training="four+more",
            pretrain=True,
            note="one network of the recommended `lstm` pretrained on all clips of the four signers and the "
            "eleven of more.npz (every sign), then fine-tuned on the crowd fold's training signers, 30 "
            "epochs each (classes = the union; the test side stays the fold's 8 crowd signers)",
        ),
        Candidate(
            "recommended, prior-corrected",
            None,
            blend=("conv_gru, hand angles, balanced classes, label smoothing x3",),
            prior_correction=True,
            note="the recommended `lstm`'s probabilities divided by each sign's share of the training clips "
            "(per-class calibration without tuning: logit adjustment, tau = 1)",
        ),
        Candidate(
            "boosted, prior-corrected",
            None,
            blend=("boosted",),
            prior_correction=True,
            note="the boosted trees' probabilities divided by each sign's share of the training clips",
        ),
        Candidate(
            "recommended, balanced sampling",
            smoothed,
            sampling="balanced",
            note="one network of the recommended `lstm` trained on class-balanced batches (each epoch draws "
            "every sign equally often) instead of class weights",
        ),
        Candidate(
            "recommended, balanced sampling x3",
            smoothed,
            sampling="balanced",
            seeds=3,
            note="the balanced sampling row fitted with seeds 0-2, probabilities averaged (what the "
            "recommended `lstm`'s three networks would give with balanced sampling)",
        ),
        Candidate(
            "recommended + boosted",
            None,
            blend=("conv_gru, hand angles, balanced classes, label smoothing", "boosted"),
            note="one network of the recommended `lstm` and the boosted trees, probabilities averaged",
        ),
        Candidate(
            "recommended x3 + boosted",
            None,
            blend=("conv_gru, hand angles, balanced classes, label smoothing x3", "boosted"),
            note="the recommended `lstm` (3 networks) and the boosted trees, probabilities averaged half and"
            " half",
        ),
        Candidate(
            "conv_gru x3",
            default,
            seeds=3,
            note="conv_gru, probabilities averaged over seeds 0, 1, 2 (a seed ensemble)",
        ),
        Candidate(
            "conv_gru + linear",
            None,
            blend=("conv_gru", "linear"),
            note="probabilities of conv_gru and linear averaged",
        ),
        Candidate(
            "linear, conv_gru inputs",
            linear.replace(preprocessing=default.preprocessing),
            linear=True,
            note="linear on conv_gru's inputs (velocities too)",
        ),
        Candidate(
            "linear, conv_gru inputs + hand angles",
            linear.replace(preprocessing={**default.preprocessing, "hand_angles": True}),
            linear=True,
            note="linear on the inputs of conv_gru, hand angles",
        ),
        Candidate(
            "conv_gru, hand angles + linear (its inputs)",
            None,
            blend=("conv_gru, hand angles", "linear, conv_gru inputs + hand angles"),
            note="probabilities of conv_gru, hand angles and the linear model on its inputs averaged",
        ),
    ]
    return rows


# ----------------------------------------------------------------------------- running
def class_index(names: list[str], labels: np.ndarray) -> np.ndarray:
    """Class names -> indices into names."""
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64)


def candidate_probabilities(
    candidate: Candidate,
    dataset: str,
    fold: str,
    clips: ClipSet,
    train: np.ndarray,
    test_kp: np.ndarray,
    classes: list[str],
    epochs: int | None,
    cache: Path | None,
    first: np.ndarray | None = None,
) -> tuple[list[np.ndarray], float]:
    """Test probabilities of each model a candidate averages (its seeds, then its blend rows) and the seconds
    of all; ``first``: the clips a ``pretrain`` candidate trains on first (a mask over all clips)."""
    found, seconds = [], 0.0
    if candidate.chance:  # every training sign equally likely
        return [np.full((len(test_kp), len(classes)), 1.0 / len(classes))], 0.0
    if candidate.config is not None:
        fixed = candidate.linear or candidate.boosted  # scikit-learn fits: no epochs
        config = candidate.config if epochs is None or fixed else candidate.config.replace(epochs=epochs)
        train_y = class_index(classes, clips.labels[train])
        for seed in range(candidate.seeds):
            keys = cache_keys(
                config,
                candidate.linear,
                dataset,
                fold,
                seed,
                candidate.boosted,
                candidate.sampling,
                candidate.pretrain,
            )
            probabilities, spent = fit_and_predict(
                config,
                candidate.linear,
                seed,
                clips.keypoints[train],
                train_y,
                test_kp,
                cache,
                keys,
                boosted=candidate.boosted,
                head=candidate.head,
                sampling=candidate.sampling,
                first=first[train] if candidate.pretrain and first is not None else None,
            )
            found.append(probabilities)
            seconds += spent
    rows = {c.name: c for c in candidates(epochs is not None)}
    for name in candidate.blend:  # each row's own average counts once
        parts, spent = candidate_probabilities(
            rows[name], dataset, fold, clips, train, test_kp, classes, epochs, cache
        )
        found.append(np.mean(parts, axis=0))
        seconds += spent
    return found, seconds


def run_fold(
    candidate: Candidate,
    dataset: str,
    fold: str,
    clips: ClipSet,
    train: np.ndarray,
    test: np.ndarray,
    other: ClipSet | None,
    epochs: int | None,
    cache: Path | None,
    first: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit on the training clips (a ``pretrain`` candidate: on the clips of ``first`` first), score the test
    clips: accuracy, accuracy without the signs no training signer showed, n, and per sign of the whole set:
    test clips, right answers and the training signers who showed it."""
    classes = sorted(set(clips.labels[train]))
    test_kp, test_labels = (
        (other.keypoints, other.labels) if other is not None else (clips.keypoints[test], clips.labels[test])
    )
    found, seconds = candidate_probabilities(
        candidate, dataset, fold, clips, train, test_kp, classes, epochs, cache, first
    )
    probabilities = np.mean(found, axis=0)
    if candidate.prior_correction:
        share = np.bincount(class_index(classes, clips.labels[train]), minlength=len(classes)) / train.sum()
        probabilities = probabilities / share
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    seen = np.isin(test_labels, classes)
    if candidate.chance:  # the expected score of the guess: the probability it gives the true sign
        correct = np.where(seen, 1.0 / len(classes), 0.0)
    else:
        correct = (np.asarray(classes)[probabilities.argmax(axis=1)] == test_labels).astype(float)
    per_sign = {}
    for sign in sorted(set(clips.labels) | set(test_labels)):
        mine = test_labels == sign
        per_sign[sign] = {
            "n": int(mine.sum()),
            "correct": float(correct[mine].sum()),
            "train_signers": len(set(clips.signers[train & (clips.labels == sign)])),
            "test_signers": len(set(clips.signers[test & (clips.labels == sign)])) if other is None else None,
        }
    return {
        "accuracy": float(correct.mean()),
        "accuracy_seen": float(correct[seen].mean()) if seen.any() else None,
        "n": int(len(test_labels)),
        "n_seen": int(seen.sum()),
        "train_seconds": round(seconds, 1),
        "test_signers": sorted(set(clips.signers[test])),
        "per_sign": per_sign,
    }


def t_interval(values: list[float]) -> tuple[float, float]:
    """The 95% t-interval of the mean of values (:func:`utils.evaluation.crossval.t_interval`)."""
    from utils.evaluation import crossval

    stats = crossval.t_interval(values)
    return tuple(stats["ci95"]) if stats["ci95"] else (stats["mean"], stats["mean"])


def with_extra_signers(
    clips: ClipSet, train: np.ndarray, test: np.ndarray, extra: ClipSet
) -> tuple[ClipSet, np.ndarray, np.ndarray]:
    """The clips of a fold with other signers' clips appended to its training side (its test side
    unchanged)."""
    both = ClipSet(
        np.concatenate([clips.keypoints, extra.keypoints]),
        np.concatenate([clips.labels, extra.labels]),
        np.concatenate([clips.signers, extra.signers]),
    )
    added = np.ones(len(extra.labels), bool)
    return both, np.concatenate([train, added]), np.concatenate([test, ~added])


def run_candidate(
    candidate: Candidate, datasets: list[str], epochs: int | None, cache: Path | None
) -> dict[str, Any]:
    """Every fold of every dataset for one candidate (one with ``extra_training`` runs on the crowd only)."""
    result: dict[str, Any] = {}
    if candidate.extra_training is not None:
        datasets = [d for d in datasets if d == "crowd"]
        extra = load_mp_files(
            {"four": ("sequences",), "four+more": ("sequences", "more")}[candidate.extra_training]
        )
    for dataset in datasets:
        folds = []
        for index, (name, clips, train, test, other) in enumerate(fold_tasks(dataset)):
            fold_id = f"{index}:" + ",".join(
                sorted(set(clips.signers[test]))
            )  # names like "8 signers" repeat
            first = None
            if candidate.extra_training is not None:
                # the extra clips, appended after the fold's
                first = np.arange(len(clips.labels) + len(extra.labels)) >= len(clips.labels)
                clips, train, test = with_extra_signers(clips, train, test, extra)
                fold_id += f"+{candidate.extra_training}"  # its own cache entries
            fold = {
                "fold": name,
                **run_fold(candidate, dataset, fold_id, clips, train, test, other, epochs, cache, first),
            }
            folds.append(fold)
            print(
                f"  {candidate.name:32s} {dataset:9s} {name:28s} {fold['accuracy']:.3f} "
                f"(n={fold['n']}, {fold['train_seconds']} s)",
                flush=True,
            )
        accuracies = [f["accuracy"] for f in folds]
        seen = [f["accuracy_seen"] for f in folds if f["accuracy_seen"] is not None]
        result[dataset] = {
            "folds": folds,
            "mean": float(np.mean(accuracies)),
            "interval": t_interval(accuracies),
            "mean_seen": float(np.mean(seen)),
            "interval_seen": t_interval(seen),
            "min": float(np.min(accuracies)),
        }
    return result


QUICK_EPOCHS = 5


def combine(paths: list[str]) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    """Merge the JSON files of several runs (e.g. one per dataset, run in parallel): results, datasets,
    commands."""
    results: dict[str, dict[str, Any]] = {}
    commands = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        commands += [
            run for run in data["command"].split(" && ") if run not in commands
        ]  # a run combined twice: once
        for name, per_dataset in data["results"].items():
            results.setdefault(name, {}).update(per_dataset)
    datasets = [d for d in DATASETS if any(d in r for r in results.values())]
    return results, datasets, commands


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the candidates (or combine earlier runs), write the markdown table and a JSON."""
    import platform

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_EPOCHS} epochs for neural candidates (their rows are marked 'quick')",
    )
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--combine", nargs="*", help="JSON files of earlier runs to merge into one table (runs nothing)"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "real_signers.md"))
    parser.add_argument("--fresh", action="store_true", help="do not add to the rows already in --out's JSON")
    parser.add_argument(
        "--cache",
        default=str(ROOT / "results" / "real_signers_cache"),
        help="folder for each fit's test probabilities: a rerun or a blend of fitted rows "
        "reads them instead of training again ('' = no cache)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    notes = {c.name: c for c in candidates(args.quick)}
    unknown = [name for name in args.only or [] if name not in notes]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(notes)}")
    if args.combine:
        results, datasets, commands = combine(args.combine)
    else:
        command = (
            "python benchmarks/real_signers.py"
            + (" --quick" if args.quick else "")
            + (" --only " + " ".join(f"'{o}'" for o in args.only) if args.only else "")
            + (" --datasets " + " ".join(args.datasets) if args.datasets != list(DATASETS) else "")
        )
        earlier = out.with_suffix(".json")
        results, _, commands = (
            combine([str(earlier)]) if earlier.is_file() and not args.fresh else ({}, [], [])
        )
        for candidate in (c for c in candidates(args.quick) if not args.only or c.name in args.only):
            neural = not (candidate.linear or candidate.boosted or candidate.chance)
            label = candidate.name + (f", quick ({QUICK_EPOCHS} epochs)" if args.quick and neural else "")
            print(label, flush=True)
            found = run_candidate(
                candidate,
                args.datasets,
                QUICK_EPOCHS if args.quick else None,
                Path(args.cache) if args.cache else None,
            )
            results.setdefault(label, {}).update(found)
        commands = [run for run in commands if run != command] + [command]
        datasets = [d for d in DATASETS if any(d in r for r in results.values())]
    command = " && ".join(commands)
    order = {
        name: index for index, name in reversed(list(enumerate([*TABLE_FIRST, *notes])))
    }  # first place wins
    rows = [quick_row(name, notes) for name in results]
    rows.sort(key=lambda r: order.get(r.name.split(", quick (")[0], 1e9))
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    protocol = (__doc__ or "").split("Sets (")[1].join(["Sets (", ""]).strip()
    out.write_text(
        table.markdown(results, rows, datasets, command, machine, protocol, SELECTION), encoding="utf-8"
    )
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": command,
                "machine": machine,
                "rows": table.json_rows(results, rows),
                "results": results,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out}")


def quick_row(name: str, notes: dict[str, Candidate]) -> Candidate:
    """The table row of a result: its candidate, a quick run's with the note saying so."""
    base = name.split(", quick (")[0]
    found = notes.get(base) or Candidate(name, None)
    if base == name:
        return found
    return Candidate(name, found.config, note=f"{found.note}; trained {QUICK_EPOCHS} epochs only (`--quick`)")


if __name__ == "__main__":
    main()
