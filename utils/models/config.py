"""Model configurations: which layers, which sizes, which training and preprocessing settings.

Three configurations of every model (``lstm``, ``convlstm``, ``fused``, ``linear``):

* ``original``: the 2022 project's shapes and hyper-parameters (T=30, 64x64, LSTM 512x2, ConvLSTM 16x2,
  200 epochs), a GPU job. ``seed``, its earlier name, still loads.
* ``small``: the same architecture shrunk to train in minutes on two CPU cores.
* ``recommended`` (the default): what cross-validation by signer chose. Each choice names the study that
  measured it; the figures are in those files, never copied here.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from utils.config import IMAGE_SIZE, NUM_FRAMES
from utils.errors import ConfigError

MODEL_NAMES = ("lstm", "convlstm", "fused", "linear", "boosted")
DEFAULT_CONFIG = "recommended"
ORIGINAL_PARAM_COUNT = 7_174_718  # the PyTorch fused model, 11 outputs, as printed by its notebook
CONVLSTM_IMPLS = ("fast", "stock")
FRAME_INPUTS = (
    "frames",
    "hands",
    "both",
)  # whole thumbnails, the two hand crops, or both (two frame branches)
FUSIONS = ("concat", "logits")
KEYPOINT_ENCODERS = ("lstm", "conv_gru")
FRAME_POOLINGS = ("flatten", "average")
BRANCHES = ("keypoints", "frames", "hands")  # input names; each branch's layers are named "<branch>_..."

NO_PREPROCESSING = {"normalize": False, "face": "full", "mirror": False, "velocity": False}

#: Options that earlier versions of the course had and that lost in its studies: runs saved with them at these
#: values (off) still load; a run that used one of them needs the version of the course it was trained with.
RETIRED_FIELDS = {"transformer_blocks": 2, "attention_heads": 4, "modality_dropout": 0.0, "linear_blend": 0.0}


def _without_retired_fields(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the retired fields (ConfigError when one of them is switched on)."""
    used = {
        key: values[key] for key in RETIRED_FIELDS if key in values and values[key] != RETIRED_FIELDS[key]
    }
    if used:
        raise ConfigError(
            f"this run uses options the course no longer has: {used}; load it with the version of "
            "the course that trained it"
        )
    return {key: value for key, value in values.items() if key not in RETIRED_FIELDS}


@dataclass(frozen=True)
class ModelConfig:
    """Shapes, layer sizes, training and keypoint-preprocessing settings of one model configuration."""

    name: str
    # --- shapes
    num_frames: int  # frames per clip (T)
    image_size: int  # side of the frames the frame branch sees (S)
    # --- the keypoint branch
    lstm_units: tuple[
        int, ...
    ]  # "lstm": units per LSTM layer; "conv_gru": (projection width, ..., GRU units)
    keypoint_encoder: str = "lstm"  # "lstm" (the original's) or "conv_gru" (1D convolutions + GRU)
    kernel_size: int = (
        5  # the 1D convolutions' kernel (conv_gru), and the ConvLSTM's unless frame_kernel_size
    )
    # --- the frame branch
    convlstm_filters: tuple[int, ...] = ()  # filters per ConvLSTM layer
    frame_kernel_size: int | None = None  # the ConvLSTM's kernel; None = kernel_size
    convlstm_activation: str = "tanh"  # cell/hidden activation of the ConvLSTM (original: relu)
    convlstm_impl: str = "fast"  # "fast" (the course's ConvLSTM layer) or "stock" (keras.layers.ConvLSTM2D)
    frame_stem: tuple[int, ...] = ()  # filters of strided 3x3 convolutions per frame before the ConvLSTM
    frame_pooling: str = (
        "flatten"  # the last step: "flatten" (reduce conv, the original) or "average" (global)
    )
    reduce_channels: int = 3  # frame_pooling="flatten": channels of the reduce convolution
    frame_input: str = (
        "frames"  # the frame branch sees "frames" (whole thumbnails), "hands" (crops) or "both"
    )
    hand_size: int = 32  # side of the hand crops the "hands" branch takes
    # --- head and fusion
    head_units: tuple[int, ...] = ()  # hidden Dense layers before the output
    dropout: float = 0.0
    fusion: str = "concat"  # "concat" (the original: one head) or "logits" (one head per branch, weighted)
    staged: bool = False  # fused: train each branch alone, then only the fusion on the validation signers
    test_time_flip: bool = False  # inference: average each head's logits over the clip and its mirror image
    # --- the linear baseline
    segments: int = 3  # time segments whose means (plus the std over time) it classifies
    linear_c: float = 0.1  # inverse L2 strength C of scikit-learn's LogisticRegression
    # --- training
    l2: float = 0.0  # PyTorch-style weight decay wd (gradient += wd * w), see utils/models/build.py
    learning_rate: float = 1e-4
    batch_size: int = 64
    epochs: int = 200
    patience: int | None = None  # early stopping on validation; None = train all epochs
    lr_milestones: tuple[int, ...] = ()  # epochs at which the learning rate is multiplied by lr_decay
    lr_decay: float = 0.1
    class_weight: str | None = None  # "balanced" weighs each class's clips by N / (classes x its clips)
    sampling: str | None = None  # "balanced": each epoch draws every class equally often (instead of weights)
    label_smoothing: float = 0.0  # targets (1 - s) x one-hot + s / classes (0 = plain cross-entropy)
    # validation signers carved from the training side guide early stopping and the best epoch; False: every
    # training signer trains, for the configuration's epochs, and the last weights are kept (nothing is
    # selected)
    validation: bool = True
    ensemble: int = 1  # networks fitted one after another (seeds seed, seed+1, ...), probabilities averaged
    # --- inputs
    preprocessing: dict[str, Any] = field(default_factory=lambda: dict(NO_PREPROCESSING))
    augmentation: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict of all fields (tuples become lists)."""
        return {
            key: (list(value) if isinstance(value, tuple) else value)
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = _without_retired_fields(values)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known: {sorted(known)}")
        tuple_fields = {"lstm_units", "convlstm_filters", "head_units", "lr_milestones", "frame_stem"}
        return cls(**{k: (tuple(v) if k in tuple_fields else v) for k, v in values.items()})


def frame_kernel_size(config: ModelConfig) -> int:
    """The ConvLSTM's (and reduce convolution's) kernel side: ``frame_kernel_size``, else ``kernel_size``."""
    return config.frame_kernel_size or config.kernel_size


def _original() -> ModelConfig:
    return ModelConfig(
        name="original",
        num_frames=NUM_FRAMES,
        image_size=IMAGE_SIZE,
        lstm_units=(512, 512),
        convlstm_filters=(16, 16),
        kernel_size=5,
        reduce_channels=3,
        head_units=(),
        dropout=0.0,
        l2=0.8,
        learning_rate=1e-4,
        batch_size=64,
        epochs=200,
        patience=None,
        lr_milestones=(60, 150),
        lr_decay=0.1,
        convlstm_activation="relu",
        preprocessing=dict(NO_PREPROCESSING),
        augmentation={},
        description="the original's shapes and hyper-parameters (T=30, 64x64, LSTM 512x2, ConvLSTM 16x2); "
                    "for GPUs",
    )


def _small() -> ModelConfig:
    return _original().replace(
        name="small",
        num_frames=16,  # original: 30
        image_size=32,  # original: 64
        lstm_units=(64, 64),  # original: (512, 512)
        convlstm_filters=(8, 8),  # original: (16, 16)
        learning_rate=1e-3,  # original: 1e-4 (fewer epochs need a larger step)
        batch_size=32,  # original: 64 (~1000 clips -> more steps per epoch)
        epochs=40,  # original: 200
        patience=10,  # original: none; stop when validation accuracy has not improved for 10 epochs
        lr_milestones=(12, 30),  # original: (60, 150), same fractions of the run
        description="the original architecture and settings, shrunk to train in minutes on 2 CPU cores",
    )


#: The linear baseline's preprocessing: body-centred, shoulder-width-scaled arm and hand points (x, y), the
#: dominant hand (by motion) on the right, hand shapes in wrist-local coordinates scaled by palm size.
LINEAR_PREPROCESSING = {
    "normalize": True,
    "face": "drop",
    "mirror": "motion",
    "velocity": False,
    "pose": "upper",
    "z": False,
    "hand_shape": True,
    "presence": True,
    "fill_gaps": 3,
}


def _recommended(model_name: str) -> ModelConfig:
    # The shared base: normalised keypoints (body-centred, dominant hand on one side, thin face, velocities),
    # augmented in time and space; notebook 03 adds these steps one at a time on the synthetic signers.
    # "mirror" augmentation is 0: canonical handedness ("mirror" preprocessing) would mirror such clips back.
    preprocessing = {"normalize": True, "face": "thin", "mirror": "height", "velocity": True}
    augmentation = {
        "mirror": 0.0,
        "scale": 0.1,
        "rotate": 10.0,
        "shift": 0.05,
        "time_warp": 0.2,
        "drop_frames": 0.05,
    }
    base = ModelConfig(
        name="recommended",
        num_frames=30,
        image_size=32,
        lstm_units=(128,),
        convlstm_filters=(8, 8),
        kernel_size=3,
        reduce_channels=3,
        head_units=(64,),
        dropout=0.3,
        l2=1e-4,
        learning_rate=1e-3,
        batch_size=32,
        epochs=60,
        patience=15,
        convlstm_activation="tanh",
        preprocessing=preprocessing,
        augmentation=augmentation,
        description="",
    )
    if model_name == "lstm":
        # Chosen by cross-validation by signer on real webcam signers and the synthetic set (the mean over the
        # four signers, the crowd and the synthetic signers decides; benchmarks/real_signers.md has every
        # candidate, benchmarks/ensemble.md the ensemble): the linear model's arm-and-hand keypoints plus
        # finger angles and velocities, 1D convolutions + GRU, classes weighted alike (rare signs), three
        # networks averaged, labels smoothed, and no validation signers (all training signers train for 30
        # epochs).
        return base.replace(
            keypoint_encoder="conv_gru",
            lstm_units=(96, 96),
            kernel_size=5,
            epochs=30,
            class_weight="balanced",
            ensemble=3,
            validation=False,
            label_smoothing=0.1,
            preprocessing={**LINEAR_PREPROCESSING, "velocity": True, "hand_angles": True},
            description="body-centred arm and hand keypoints, dominant hand on the right, "
            "hand shapes, finger angles and velocities, augmented; Dense + 1D "
            "convolutions + GRU(96) + Dense(64), classes weighted to count alike, "
            "labels smoothed by 0.1: chosen by cross-validation on real signers",
        )
    if model_name == "convlstm":
        return _recommended_convlstm(base)
    return _recommended_fused(_recommended("lstm"), _recommended("convlstm"))


# : The fields that make the frame branch (its input size, stem, ConvLSTM, pooling); the rest is the keypoint
# branch's.
FRAME_BRANCH_FIELDS = (
    "image_size",
    "convlstm_filters",
    "frame_stem",
    "frame_pooling",
    "frame_kernel_size",
    "reduce_channels",
    "convlstm_activation",
    "hand_size",
    "frame_input",
    "test_time_flip",
)
#: Augmentation options that act on frames only (the keypoints' own come from the keypoint model).
FRAME_AUGMENTATION_KEYS = ("mirror", "color", "crop")


def _recommended_convlstm(base: ModelConfig) -> ModelConfig:
    """The frame-only ConvLSTM: a strided stem, one ConvLSTM on small maps, global pooling."""
    # Raw RGB frames let a ConvLSTM recognise the signer instead of the sign (notebook 04); frame differences,
    # flips, colour jitter and crops, a strided stem and global pooling, with the hand crops as a second
    # branch and test-time flip averaging, won the cross-validation by signer (benchmarks/fusion_ablation.md).
    return base.replace(
        num_frames=16,
        image_size=64,
        frame_stem=(16, 32),
        convlstm_filters=(32,),
        frame_kernel_size=3,
        frame_pooling="average",
        epochs=40,
        patience=10,
        frame_input="both",
        hand_size=32,
        test_time_flip=True,
        preprocessing={**NO_PREPROCESSING, "frames": "diff"},
        augmentation={"mirror": 0.5, "color": 0.3, "crop": 0.2},
        description="frame-only ConvLSTM on whole frames and hand crops: 16 frames of 64x64 and the two "
                    "32x32 hand "
        "crops, each through two strided 3x3 convolutions per frame (16, 32 filters), ConvLSTM(32, 3x3) "
        "and global average pooling; frame differences, flipped, colour-jittered and randomly zoomed "
        "and shifted in training; the logits of each clip and its mirror image averaged at test time",
    )


def _recommended_fused(keypoints: ModelConfig, frames: ModelConfig) -> ModelConfig:
    """The fused model: the recommended keypoint model's encoder, preprocessing and augmentation and the
    recommended ConvLSTM's frame branch, taken from those configurations (so it follows them), fused late and
    staged."""
    # benchmarks/fusion_ablation.md: late fusion of per-branch heads, each branch trained alone first, beat
    # concatenation trained end to end (where the branch that fits the training signers fastest dominates).
    # The fused model keeps whole frames only: with the hand crops as a third branch it scored the same at
    # about one and a half times the training time.
    frame_branch = {name: getattr(frames, name) for name in FRAME_BRANCH_FIELDS}
    frame_branch["frame_input"], frame_branch["test_time_flip"] = "frames", False
    return keypoints.replace(
        **{**frame_branch, "frame_kernel_size": frame_kernel_size(frames)},
        num_frames=frames.num_frames,
        epochs=max(keypoints.epochs, frames.epochs),
        patience=max(keypoints.patience or 0, frames.patience or 0) or None,
        fusion="logits",
        staged=True,
        # one keypoint branch: the keypoint model's seed ensemble is not carried into the fused model
        ensemble=1,
        label_smoothing=0.0,  # measured on the keypoint model only, not on the fused model's branches
        validation=True,  # the fusion weights are fit on validation signers, whom no branch trained on
        preprocessing={**keypoints.preprocessing, "frames": frames.preprocessing.get("frames", "rgb")},
        augmentation={
            **keypoints.augmentation,
            **{key: value for key, value in frames.augmentation.items() if key in FRAME_AUGMENTATION_KEYS},
        },
        description="the recommended keypoint model's branch and the recommended ConvLSTM's frame branch, "
                    "each "
        "trained alone, then fused by one weight per branch learned on the validation signers",
    )


def _linear(config_name: str) -> ModelConfig:
    return ModelConfig(
        name=config_name,
        num_frames=30,
        image_size=32,
        lstm_units=(),
        convlstm_filters=(),
        epochs=1,
        preprocessing=dict(LINEAR_PREPROCESSING),
        segments=3,
        linear_c=0.1,
        description="logistic regression (scikit-learn, C=0.1) on standardised means of 3 time segments "
        "and standard deviations of normalised, hand-canonical keypoints: the simple baseline",
    )


BOOSTED_DESCRIPTION = (
    "scikit-learn's HistGradientBoostingClassifier (default settings) on the linear model's segment "
    "statistics (means of 3 time segments and standard deviations of normalised, hand-canonical "
    "keypoints): a tree baseline"
)


def _configs(config_name: str, make: Any) -> dict[str, ModelConfig]:
    """One configuration of every model; the two baselines have one setting whatever the name."""
    baselines = {"linear": _linear(config_name),
                 "boosted": _linear(config_name).replace(description=BOOSTED_DESCRIPTION)}
    return {model: baselines.get(model) or make(model) for model in MODEL_NAMES}


CONFIGS: dict[str, dict[str, ModelConfig]] = {
    "original": _configs("original", lambda model: _original()),
    "small": _configs("small", lambda model: _small()),
    "recommended": _configs("recommended", _recommended),
}
#: Earlier names of configurations, still accepted: "seed" was the original's configuration.
CONFIG_ALIASES = {"seed": "original"}


def config_names() -> list[str]:
    """Names of all configurations: ['original', 'small', 'recommended']."""
    return list(CONFIGS)


def _check_model_name(model_name: str) -> None:
    if model_name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {model_name!r}; known models: {', '.join(MODEL_NAMES)}")


def get_config(model_name: str, config_name: str | None = None) -> ModelConfig:
    """The configuration ``config_name`` (default: 'recommended') of model 'lstm', 'convlstm' or 'fused'."""
    _check_model_name(model_name)
    config_name = config_name or DEFAULT_CONFIG
    if config_name in CONFIG_ALIASES:
        warnings.warn(
            f"the configuration {config_name!r} is now called {CONFIG_ALIASES[config_name]!r}",
            FutureWarning,
            stacklevel=2,
        )
        config_name = CONFIG_ALIASES[config_name]
    if config_name not in CONFIGS:
        raise ConfigError(
            f"unknown configuration {config_name!r}; known configurations: {', '.join(config_names())}"
        )
    return CONFIGS[config_name][model_name]


def learning_rate_at(config: ModelConfig, epoch: int) -> float:
    """Learning rate for a 0-based ``epoch`` under the config's step schedule (MultiStepLR in the
    original)."""
    drops = sum(1 for milestone in config.lr_milestones if epoch >= milestone)
    return config.learning_rate * config.lr_decay**drops


def model_inputs(model_name: str, config: ModelConfig | None = None) -> tuple[str, ...]:
    """Names of the inputs a model takes, e.g. ('keypoints',), ('frames',), ('keypoints', 'hands').

    The frame part follows ``config.frame_input`` ("frames", "hands" or both); without a config it is
    "frames".
    """
    _check_model_name(model_name)
    frame_input = "frames" if config is None else config.frame_input
    if frame_input not in FRAME_INPUTS:
        raise ConfigError(f"unknown frame_input {frame_input!r}; use one of {', '.join(FRAME_INPUTS)}")
    frame_names = ("frames", "hands") if frame_input == "both" else (frame_input,)
    return {
        "lstm": ("keypoints",),
        "convlstm": frame_names,
        "fused": ("keypoints", *frame_names),
        "linear": ("keypoints",),
        "boosted": ("keypoints",),
    }[model_name]


def describe(config: ModelConfig) -> str:
    """One line: name, shapes and key sizes of a configuration."""
    encoder = "LSTM" if config.keypoint_encoder == "lstm" else config.keypoint_encoder
    return (
        f"{config.name}: T={config.num_frames}, S={config.image_size}, {encoder} {config.lstm_units}, "
        f"ConvLSTM {config.convlstm_filters} {frame_kernel_size(config)}x{frame_kernel_size(config)}"
        f"{f' after a strided stem {config.frame_stem}' if config.frame_stem else ''}, head "
        f"{config.head_units}, "
        f"dropout {config.dropout}, lr {config.learning_rate:g}, batch {config.batch_size}, "
        f"frame input {config.frame_input}{', test-time flip averaging' if config.test_time_flip else ''}, "
        f"fusion {config.fusion}{' (staged)' if config.staged else ''}, "
        f"{config.epochs} epochs{f', {config.ensemble} seeds averaged' if config.ensemble > 1 else ''} — "
        f"{config.description}"
    )
