"""The three Keras models (``lstm``, ``convlstm``, ``fused``) and every configuration of them, in one place.

The original (Kaushik 2022, PyTorch, ``Custom_Dataset_Training.ipynb`` of
github.com/EashanKaushik/action-rekognition-CNN-LSTM) is, exactly:

* keypoints (T=30, 1662) -> ``LSTMCell(1662, 512)`` -> ``LSTMCell(512, 512)``, last hidden state (512);
* frames (T=30, 64, 64, 3) -> ConvLSTM(16 filters, 5x5, "same", ReLU cell activation) -> BatchNorm3d
  -> ConvLSTM(16, 5x5) -> BatchNorm3d -> last time step -> Conv2d(16 -> 3, 5x5, "same") -> flatten (12288);
* the two concatenated (12800) -> ``Linear(12800, 11)``: no hidden layer, no dropout;
* Adam(lr 1e-4, weight_decay 0.8), MultiStepLR(milestones [60, 150], gamma 0.1), batch 64,
  cross-entropy; 7,174,718 parameters.

Its ConvLSTM cell also has "peephole" weights (``W_ci, W_cf, W_co``, one per channel *and pixel*,
3 x 16 x 64 x 64 = 196,608 per layer) created with ``torch.Tensor(...)`` and never initialised
(whatever memory held). We use the standard Keras ConvLSTM2D equations without peepholes: they tie the
model to one image size and their initial values were arbitrary. That and Keras's single LSTM bias
(PyTorch has two) are the differences in parameter count, see :func:`formula_param_count`.

Defects of the original fixed here (numbering shared with the rest of the course):

1. keypoints (batch, T, 1662) were reshaped with ``view(T, batch, -1)`` instead of transposed, which mixes
   the clips of a batch across time steps. Keras layers here are batch-first throughout: a clip's
   prediction depends on that clip only (tested by permuting a batch).
3. the LSTM states were re-initialised with random (Xavier) values on every forward pass, so the same clip
   got different predictions on each call. Here: zero initial states; predictions are deterministic.
4. 11 outputs for 10 classes. Here: exactly ``num_classes`` outputs.

Defects 2, 5, 6, 7 and 8 concern data and evaluation and are fixed outside the models: 2 (the checkpoint
was chosen by the accuracy of the very clips then reported: epoch 114 -> 0.901 on ASL, 73 -> 0.777 on
UCF11) by one split function (``utils.splits``), best-on-validation weights and a single test evaluation
(``utils.training``); 5 (accuracy averaged per batch) in ``utils.evaluation`` (per clip); 6 (MediaPipe run
on 64x64 thumbnails) in ``utils.features`` / ``utils.keypoints`` (full-resolution frames); 7 (landmarks
drawn onto the ConvLSTM's frames) by feeding clean frames; 8 (a random split, the same signers in training
and test) by group-disjoint splits and cross-validation by signer (``utils.splits``, ``utils.crossval``).

Weight decay: PyTorch's ``Adam(weight_decay=wd)`` adds ``wd * w`` to the gradient of *every* parameter,
i.e. it minimises ``loss + wd/2 * sum(w**2)``. ``ModelConfig.l2`` holds that ``wd``; the models attach
``keras.regularizers.L2(wd / 2)`` to every kernel, recurrent kernel, bias and batch-norm scale/offset,
which gives the same gradient.

Fusion (``ModelConfig.frame_input``, ``fusion``, ``modality_dropout``, ``staged``). The frame branch sees the
whole thumbnails (``"frames"``), the two hand crops stacked as 6 channels (``"hands"``, from
``hand_crops`` in the features file) or both, each a ConvLSTM branch of its own. ``fusion="concat"`` is the
original's late concatenation under one head, trained end to end: the branch that fits the training signers
fastest dominates. ``"logits"`` gives every branch its own head and combines their log-probabilities with one
learned weight per branch (:class:`LogitFusion`, a product of experts when all weights are 1); ``"gate"``
learns per-clip weights from the branches' features. A weight near 0 silences a branch.
``modality_dropout`` drops a whole branch of a clip in training (:class:`ModalityDropout`), never at
inference. ``staged=True`` trains each branch alone, then only the fusion weights on the validation signers
(``utils.training``), so a branch that memorised the training signers earns little weight.

Test-time flip averaging (``ModelConfig.test_time_flip``) lives inside the model, so evaluation, cross-validation,
``predict``, the webcam and the exported file all get it with nothing to add: at inference :class:`MirrorViews`
appends each batch's mirror image (frames flipped, hand crops flipped and swapped; keypoints as they are, since
their preprocessing puts the dominant hand on the right, so a mirrored clip's prepared keypoints are its own) and
:class:`AverageViews`, just before each head's last (linear) layer, averages the two views, i.e. their logits. In
training both are the identity (the ``mirror`` augmentation already shows flipped clips).

Speed on CPU (``python -m utils bench``). The ConvLSTM layer :class:`ConvLSTM` computes exactly
``keras.layers.ConvLSTM2D``'s equations with the same weights, but per time step it runs one convolution of
the frame and one of the hidden state, each producing all four gates (ConvLSTM2D runs eight smaller ones
inside a while loop), unrolled over T. Two settings matter even more on CPU and are the defaults here:
XLA off (:func:`compile_model`; Keras's "auto" turns it on, and XLA's CPU convolutions are slower) and
TensorFlow's oneDNN kernels on (``TF_ENABLE_ONEDNN_OPTS=1``, set in ``utils/__init__.py`` before TensorFlow is
imported). ``python -m utils bench`` times each setting, and the original in PyTorch, in the same run (figures
in ``benchmarks/README.md``). ``convlstm_impl="stock"`` builds the same models with ``keras.layers.ConvLSTM2D``
for comparison. For inference, :func:`inference_model` gives a copy computing the same function with less work
(each frame branch's ConvLSTM layers and batch norms as one :class:`ConvLSTMStack`); ``predict``, ``evaluate``,
``export``, the webcam and the benchmark's inference run it (``runs.load_run(..., inference=True)``).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import ops

from utils.config import IMAGE_SIZE, NUM_FRAMES
from utils.errors import ConfigError
from utils.models import boosted  # the gradient-boosted trees baseline (--model boosted)

MODEL_NAMES = ("lstm", "convlstm", "fused", "linear", "boosted")
DEFAULT_CONFIG = "recommended"
ORIGINAL_PARAM_COUNT = 7_174_718  # the PyTorch fused model, 11 outputs, as printed by its notebook
CONVLSTM_IMPLS = ("fast", "stock")
FRAME_INPUTS = ("frames", "hands", "both")  # whole thumbnails, the two hand crops, or both (two frame branches)
FUSIONS = ("concat", "logits", "gate")
BRANCHES = ("keypoints", "frames", "hands")  # input names; each branch's layers are named "<branch>_..."

NO_PREPROCESSING = {"normalize": False, "face": "full", "mirror": False, "velocity": False}


@dataclass(frozen=True)
class ModelConfig:
    """Shapes, layer sizes, training and keypoint-preprocessing settings of one model configuration."""

    name: str
    num_frames: int
    image_size: int
    lstm_units: tuple[int, ...]
    convlstm_filters: tuple[int, ...]
    kernel_size: int = 5
    reduce_channels: int = 3
    head_units: tuple[int, ...] = ()
    dropout: float = 0.0
    l2: float = 0.0  # PyTorch-style weight decay wd (gradient += wd * w), see the module docstring
    learning_rate: float = 1e-4
    batch_size: int = 64
    epochs: int = 200
    patience: int | None = None  # early stopping on validation; None = train all epochs
    lr_milestones: tuple[int, ...] = ()  # epochs at which the learning rate is multiplied by lr_decay
    lr_decay: float = 0.1
    convlstm_activation: str = "tanh"  # cell/hidden activation of the ConvLSTM (original: relu)
    convlstm_impl: str = "fast"  # "fast" (our ConvLSTM layer) or "stock" (keras.layers.ConvLSTM2D)
    preprocessing: dict[str, Any] = field(default_factory=lambda: dict(NO_PREPROCESSING))
    augmentation: dict[str, Any] = field(default_factory=dict)
    frame_input: str = "frames"  # the frame branch sees "frames" (whole thumbnails), "hands" (crops) or "both"
    hand_size: int = 32  # side of the hand crops the "hands" branch takes
    fusion: str = "concat"  # "concat" (the original), "logits" (weighted log-probabilities) or "gate" (per clip)
    modality_dropout: float = 0.0  # training only: drop a whole branch of a clip with this probability
    staged: bool = False  # fused: train each branch alone, then only the fusion on the validation signers
    frame_stem: tuple[int, ...] = ()  # filters of strided 3x3 convolutions per frame before the ConvLSTM (each halves S)
    frame_pooling: str = "flatten"  # ConvLSTM's last step: "flatten" (reduce conv, the original) or "average" (global)
    frame_kernel_size: int | None = None  # the ConvLSTM's kernel; None = kernel_size
    keypoint_encoder: str = "lstm"  # the keypoint branch: "lstm", "conv_gru" or "transformer" (see _keypoint_branch)
    transformer_blocks: int = 2  # keypoint_encoder="transformer": pre-norm self-attention blocks after the convolutions
    attention_heads: int = 4  # keypoint_encoder="transformer": heads per block (lstm_units[0] must divide by it)
    segments: int = 3  # linear model: time segments whose means (plus the std over time) it classifies
    linear_c: float = 0.1  # linear model: inverse L2 strength C of scikit-learn's LogisticRegression
    linear_blend: float = 0.0  # lstm: weight of a linear model's probabilities mixed into the output (see _blend_output)
    class_weight: str | None = None  # training: "balanced" weighs each class's clips by N / (classes x its clips)
    test_time_flip: bool = False  # inference: average each head's logits over the clip and its mirror image
    # validation signers carved from the training side guide early stopping and the best epoch; False: every
    # training signer trains, for the configuration's epochs, and the last weights are kept (nothing is selected)
    validation: bool = True
    ensemble: int = 1  # networks fitted one after another (seeds seed, seed+1, ...), probabilities averaged in one model
    label_smoothing: float = 0.0  # training: targets (1 - s) x one-hot + s / classes (0 = plain cross-entropy)
    description: str = ""

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict of all fields (tuples become lists)."""
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known: {sorted(known)}")
        tuple_fields = {"lstm_units", "convlstm_filters", "head_units", "lr_milestones", "frame_stem"}
        return cls(**{k: (tuple(v) if k in tuple_fields else v) for k, v in values.items()})


def frame_kernel_size(config: ModelConfig) -> int:
    """The ConvLSTM's (and reduce convolution's) kernel side: ``frame_kernel_size``, else ``kernel_size``."""
    return config.frame_kernel_size or config.kernel_size


# ----------------------------------------------------------------------------- configurations (the one place)
def _seed() -> ModelConfig:
    return ModelConfig(
        name="seed", num_frames=NUM_FRAMES, image_size=IMAGE_SIZE, lstm_units=(512, 512), convlstm_filters=(16, 16),
        kernel_size=5, reduce_channels=3, head_units=(), dropout=0.0, l2=0.8, learning_rate=1e-4,
        batch_size=64, epochs=200, patience=None, lr_milestones=(60, 150), lr_decay=0.1,
        convlstm_activation="relu", preprocessing=dict(NO_PREPROCESSING), augmentation={},
        description="the original's shapes and hyper-parameters (T=30, 64x64, LSTM 512x2, ConvLSTM 16x2); for GPUs")


def _small() -> ModelConfig:
    return _seed().replace(
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
        description="the original architecture and settings, shrunk to train in minutes on 2 CPU cores")


#: The linear baseline's preprocessing: body-centred, shoulder-width-scaled arm and hand points (x, y), the
#: dominant hand (by motion) on the right, hand shapes in wrist-local coordinates scaled by palm size.
LINEAR_PREPROCESSING = {"normalize": True, "face": "drop", "mirror": "motion", "velocity": False, "pose": "upper",
                        "z": False, "hand_shape": True, "presence": True, "fill_gaps": 3}


def _recommended(model_name: str) -> ModelConfig:
    # Tuned by H5 on the synthetic default (400 clips, signer-disjoint 6/2/2 split, LSTM, seeds 0 and 1):
    # raw keypoints 0.23 test accuracy; +normalize 0.89/0.46; +hand canonicalisation 0.85; +thin face 0.96/0.91;
    # +velocity 0.96/0.90; +augmentation 0.975/0.90 (face dropped instead of thin: 0.99/0.91, within noise).
    # "mirror" augmentation is 0: canonical handedness ("mirror" preprocessing) would mirror such clips back.
    preprocessing = {"normalize": True, "face": "thin", "mirror": "height", "velocity": True}
    augmentation = {"mirror": 0.0, "scale": 0.1, "rotate": 10.0, "shift": 0.05, "time_warp": 0.2,
                    "drop_frames": 0.05}
    base = ModelConfig(
        name="recommended", num_frames=30, image_size=32, lstm_units=(128,), convlstm_filters=(8, 8),
        kernel_size=3, reduce_channels=3, head_units=(64,), dropout=0.3, l2=1e-4, learning_rate=1e-3,
        batch_size=32, epochs=60, patience=15, convlstm_activation="tanh",
        preprocessing=preprocessing, augmentation=augmentation,
        description="")
    if model_name == "lstm":
        # Chosen by cross-validation by signer on real and synthetic signers (benchmarks/real_signers.py,
        # table in benchmarks/real_signers.md; the mean over the four webcam signers, the crowd of 40 and the
        # synthetic set decides, never a test split, and the held-out transfer column played no part): the old
        # LSTM above lost to a logistic regression on the real webcam signers. This one: body-centred arm and
        # hand points (x, y), the hand that moves most on the right, hand shapes in wrist-local coordinates,
        # finger joint bends and fingertip distances (hand_angles: the step that lifted the four signers from
        # 0.666 to 0.862; mean of the three sets 0.850 against 0.782), velocities; 1D convolutions + GRU.
        # Then (H-real3) class_weight="balanced": the crowd's errors (benchmarks/crowd_errors.md) include 50 on
        # no / yes / please, which at most 4 of its 40 signers recorded; weighting each class by N / (classes x
        # its clips) lifted the mean from 0.850 to 0.856 (four 0.863, crowd 0.745 with its lowest fold 0.60 ->
        # 0.65, synthetic unchanged at 0.960: balanced classes get weight 1). Lost on that mean: averaging with a
        # linear model on the same inputs (linear_blend=0.5: 0.836), stronger augmentation (rotate 15, hand_drop
        # 0.3, finger_jitter 0.1: 0.830), temporal crops (time_warp 0.5: 0.827). Three seeds averaged scored 0.859.
        # Then (H-ens4) that seed ensemble as an option of the course (ensemble=3: three networks, seeds S..S+2, each
        # with its own early stopping, averaged in one saved model), chosen by the same rule with the course's own
        # `crossval` (validation signers from each fold's training side; python benchmarks/ensemble.py,
        # benchmarks/ensemble.md): mean of four / crowd / synthetic 0.830 against 0.816 for one network (its member
        # 1, seed 0) and 0.740 for the linear model on the same folds; four 0.753 -> 0.784, crowd 0.744 -> 0.744
        # (lowest fold 0.57 -> 0.59), synthetic 0.953 -> 0.963 (linear 0.960: one network lost to it there, the
        # ensemble does not). Cost: three trainings per run (96-233 s per fold for all three on 2 shared cores).
        # In the study's own protocol (benchmarks/real_signers.md) it scores 0.868 / 0.749 / 0.965, mean 0.861 against
        # 0.856, but its lowest crowd fold is 0.59 (one network: 0.65); the ASL videos 0.667 either way.
        # Then (lead, session 4) validation=False: every training signer trains for the 30 epochs and the last
        # weights are kept (the study's protocol, now `crossval --no-validation`). Same folds, `python -m utils
        # crossval --model lstm [--no-validation] --folds loso|5`: four 0.784 -> 0.868 (lowest fold 0.667 either
        # way: with three training signers, setting one aside for validation costs more than early stopping
        # gains), crowd 0.744 -> 0.758 (lowest fold 0.587 -> 0.626, every fold above linear), synthetic 0.963 ->
        # 0.960 (linear 0.960: a tie); mean 0.830 -> 0.862. The fused model keeps validation signers: its
        # fusion weights are fit on them.
        # Then (H-real5) label_smoothing=0.1 (targets 0.9 x one-hot + 0.1 / classes). Study: one network 0.869 /
        # 0.743 / 0.965 (mean 0.859 vs 0.856), three seeds 0.880 / 0.744 / 0.967 (0.864 vs 0.861). Confirmed with
        # `crossval` (ensemble=3, no validation, the same folds as above): four 0.868 -> 0.880, crowd 0.758 -> 0.752
        # (lowest fold 0.626 -> 0.639), synthetic 0.960 -> 0.965 (linear 0.960: now beaten, not tied); mean 0.862 ->
        # 0.866. Lost in the study: a Transformer in place of the GRU (keypoint_encoder="transformer": 0.728 /
        # 0.744 / 0.945, below linear on the synthetic set); the four signers added to each crowd fold's training
        # side lifted the crowd only from 0.745 to 0.754 (benchmarks/real_signers.md).
        return base.replace(keypoint_encoder="conv_gru", lstm_units=(96, 96), kernel_size=5, epochs=30,
                            class_weight="balanced", ensemble=3, validation=False, label_smoothing=0.1,
                            preprocessing={**LINEAR_PREPROCESSING, "velocity": True, "hand_angles": True},
                            description="body-centred arm and hand keypoints, dominant hand on the right, "
                                        "hand shapes, finger angles and velocities, augmented; Dense + 1D "
                                        "convolutions + GRU(96) + Dense(64), classes weighted to count alike, "
                                        "labels smoothed by 0.1: chosen by cross-validation on real signers")
    if model_name == "convlstm":
        return _recommended_convlstm(base)
    return _recommended_fused(_recommended("lstm"), _recommended("convlstm"))


#: The fields that make the frame branch (its input size, stem, ConvLSTM, pooling); the rest is the keypoint branch's.
FRAME_BRANCH_FIELDS = ("image_size", "convlstm_filters", "frame_stem", "frame_pooling", "frame_kernel_size",
                       "reduce_channels", "convlstm_activation", "hand_size", "frame_input", "test_time_flip")
#: Augmentation options that act on frames only (the keypoints' own come from the keypoint model).
FRAME_AUGMENTATION_KEYS = ("mirror", "color", "crop")


def _recommended_convlstm(base: ModelConfig) -> ModelConfig:
    """The frame-only ConvLSTM: a strided stem, one ConvLSTM on small maps, global pooling (see its notes below)."""
    # Earlier, without a stem (16 frames of 32x32, 8x2 filters, reduce conv + flatten), signer-disjoint synthetic
    # split, seed 0: raw RGB frames memorise signer appearance (train 0.85, val/test ~0.10-0.14); frame differences
    # + flips + colour jitter: val 0.44 / test 0.44; 5 folds at 8 epochs: 0.080, signer probe 0.42.
    # This one (H-fuse2): test signers s01+s02, 40 epochs: test 0.79 (best epoch 28, 411 s on 2 shared cores);
    # 5 folds at 24 epochs: 0.560 +- 0.087, signer probe 0.25 (chance 0.10). At its own epochs, as the fused model's
    # frame branch (benchmarks/fusion_ablation.md): 0.662 +- 0.156, probe 0.20; whole frames + hand crops in one
    # model (frame_input="both", a second branch of the same kind on the two 32x32 hand crops): 0.743 +- 0.118, and
    # with test-time flip averaging (the logits of the clip and its mirror image averaged) 0.770 +- 0.104 (H-fuse4):
    # the cross-validation winner, so the recommended one. It needs hand crops in the features file (extract's
    # default, --hand-size 32) and twice the frame branch's inference time for the mirror image.
    return base.replace(
        num_frames=16, image_size=64, frame_stem=(16, 32), convlstm_filters=(32,), frame_kernel_size=3,
        frame_pooling="average", epochs=40, patience=10, frame_input="both", hand_size=32, test_time_flip=True,
        preprocessing={**NO_PREPROCESSING, "frames": "diff"},
        augmentation={"mirror": 0.5, "color": 0.3, "crop": 0.2},
        description="frame-only ConvLSTM on whole frames and hand crops: 16 frames of 64x64 and the two 32x32 hand "
                    "crops, each through two strided 3x3 convolutions per frame (16, 32 filters), ConvLSTM(32, 3x3) "
                    "and global average pooling; frame differences, flipped, colour-jittered and randomly zoomed "
                    "and shifted in training; the logits of each clip and its mirror image averaged at test time")


def _recommended_fused(keypoints: ModelConfig, frames: ModelConfig) -> ModelConfig:
    """The fused model: the recommended keypoint model's encoder, preprocessing and augmentation and the recommended
    ConvLSTM's frame branch, taken from those configurations (so it follows them), fused late and staged."""
    # benchmarks/fusion_ablation.md, 5 folds of 2 unseen synthetic signers, 24 epochs per branch, seed 0: fused
    # 0.972 +- 0.042; its keypoint branch alone (16 frames) 0.965 +- 0.030, the keypoint model alone (30 frames)
    # 0.957 +- 0.034, the frame branch alone 0.560 +- 0.087; at most 0.0125 below the keypoint branch in any fold.
    # A learned gate instead of one weight per branch: 0.945. Concatenation trained end to end lost to the
    # keypoint branch by 0.44-0.48 in the previous ablation (8 epochs).
    # At its own epochs (benchmarks/fusion_ablation.md, H-fuse3, hand_angles keypoints): fused 0.968 +- 0.036, keypoint
    # branch 0.963 +- 0.031 (+0.005, target +0.02 not met), 369-470 s of training per fold at load 5-7.
    # At its own epochs (40 per branch, early stopping), one fold (test s01+s02, seed 0, 2 CPU cores at load < 2):
    # 296 s of training; keypoint branch 0.975, frame branch 0.7875, fused 1.000 (weights 1.14, 2.40).
    # H-fuse4, the same fold protocol with the recommended ConvLSTM's two frame branches (whole frames and hand crops):
    # fused keypoints + frames + hands 0.967 +- 0.039 against its keypoint branch 0.957 +- 0.043 (+0.010; the two-branch
    # keypoints + frames model above 0.968), 481-725 s of training per fold at load 4.6-8.1. Test-time flip averaging
    # changed no fold of the fused model (0.967 either way), so it is off here: it would double the frame branches'
    # inference for nothing.
    frame_branch = {name: getattr(frames, name) for name in FRAME_BRANCH_FIELDS}
    # The lead's call (session 4): the two-branch model (keypoints + whole frames) ties the three-branch one (0.968 vs
    # 0.967) at about two thirds of its training time (369-470 s per fold against 481-725 s, where 3 of 5 folds
    # broke the 10-minute target), so the fused model keeps whole frames only; hand crops stay the ConvLSTM's.
    frame_branch["frame_input"], frame_branch["test_time_flip"] = "frames", False
    return keypoints.replace(
        **{**frame_branch, "frame_kernel_size": frame_kernel_size(frames)}, num_frames=frames.num_frames,
        epochs=max(keypoints.epochs, frames.epochs), patience=max(keypoints.patience or 0, frames.patience or 0) or None,
        fusion="logits", staged=True,
        ensemble=1,  # one keypoint branch: the keypoint model's seed ensemble is not carried into the fused model
        label_smoothing=0.0,  # measured on the keypoint model only (H-real5), not on the fused model's branches
        validation=True,  # the fusion weights are fit on validation signers, whom no branch trained on
        preprocessing={**keypoints.preprocessing, "frames": frames.preprocessing.get("frames", "rgb")},
        augmentation={**keypoints.augmentation,
                      **{key: value for key, value in frames.augmentation.items() if key in FRAME_AUGMENTATION_KEYS}},
        description="the recommended keypoint model's branch and the recommended ConvLSTM's frame branch, each "
                    "trained alone, then fused by one weight per branch learned on the validation signers")


def _linear(config_name: str) -> ModelConfig:
    return ModelConfig(
        name=config_name, num_frames=30, image_size=32, lstm_units=(), convlstm_filters=(), epochs=1,
        preprocessing=dict(LINEAR_PREPROCESSING), segments=3, linear_c=0.1,
        description="logistic regression (scikit-learn, C=0.1) on standardised means of 3 time segments "
                    "and standard deviations of normalised, hand-canonical keypoints: the simple baseline")


def _configs(config_name: str, make: Any) -> dict[str, ModelConfig]:
    """One configuration of every model; the linear model has one setting whatever the name."""
    return {model: (_linear(config_name) if model == "linear" else make(model)) for model in MODEL_NAMES
            if model != "boosted"} | {"boosted": _linear(config_name).replace(description=boosted.DESCRIPTION)}


CONFIGS: dict[str, dict[str, ModelConfig]] = {
    "seed": _configs("seed", lambda model: _seed()),
    "small": _configs("small", lambda model: _small()),
    "recommended": _configs("recommended", _recommended),
}


def config_names() -> list[str]:
    """Names of all configurations, e.g. ['seed', 'small', 'recommended']."""
    return list(CONFIGS)


def _check_model_name(model_name: str) -> None:
    if model_name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {model_name!r}; known models: {', '.join(MODEL_NAMES)}")


def get_config(model_name: str, config_name: str | None = None) -> ModelConfig:
    """The configuration ``config_name`` (default: 'recommended') of model 'lstm', 'convlstm' or 'fused'."""
    _check_model_name(model_name)
    config_name = config_name or DEFAULT_CONFIG
    if config_name not in CONFIGS:
        raise ConfigError(f"unknown configuration {config_name!r}; known configurations: "
                         f"{', '.join(config_names())}")
    return CONFIGS[config_name][model_name]


def learning_rate_at(config: ModelConfig, epoch: int) -> float:
    """Learning rate for a 0-based ``epoch`` under the config's step schedule (MultiStepLR in the original)."""
    drops = sum(1 for milestone in config.lr_milestones if epoch >= milestone)
    return config.learning_rate * config.lr_decay ** drops


# ----------------------------------------------------------------------------- the fast ConvLSTM layer
def _gate_arithmetic(activation: Any, recurrent_activation: Any, from_frame: Any, from_hidden: Any, bias: Any,
                     cell: Any) -> tuple[Any, Any]:
    """ConvLSTM2D's step: gates = frame term + hidden term + bias, split i, f, c, o -> (hidden, cell).

    ``from_hidden`` and ``cell`` are None at the first step (the zero state contributes nothing)."""
    gates = from_frame + bias  # in this order, as before the gates could be compiled: the same rounding
    if from_hidden is not None:
        gates = gates + from_hidden
    gate_i, gate_f, gate_c, gate_o = ops.split(gates, 4, axis=-1)
    new_part = recurrent_activation(gate_i) * activation(gate_c)
    cell = new_part if cell is None else recurrent_activation(gate_f) * cell + new_part
    return recurrent_activation(gate_o) * activation(cell), cell


_COMPILED_GATES: dict[tuple[Any, ...], Any] = {}


def _compiled_gates(activation: Any, recurrent_activation: Any, arithmetic: Any = _gate_arithmetic) -> Any:
    """``arithmetic`` (:func:`_gate_arithmetic`, or :func:`_first_gate_arithmetic` for :class:`ConvLSTMStack`'s first
    step) for these activations as one XLA-compiled TensorFlow function (made once per key)."""
    key = (activation, recurrent_activation) + (() if arithmetic is _gate_arithmetic else (arithmetic.__name__,))
    if key not in _COMPILED_GATES:
        import tensorflow as tf

        _COMPILED_GATES[key] = tf.function(functools.partial(arithmetic, activation, recurrent_activation),
                                           jit_compile=True, autograph=False)
    return _COMPILED_GATES[key]


@keras.saving.register_keras_serializable(package="course")
class ConvLSTM(keras.layers.Layer):
    """ConvLSTM2D over (batch, T, H, W, C) with keras.layers.ConvLSTM2D's exact equations, faster on CPU.

    Per step: one convolution of the frame and one of the hidden state, each producing all four gates
    (ConvLSTM2D runs eight smaller ones), unrolled over T in one graph. Gates ``i, f, c, o`` and weights ``kernel (k, k, C, 4F)``, ``recurrent_kernel (k, k, F, 4F)``,
    ``bias (4F)`` are laid out as in ConvLSTM2D, so ``set_weights(stock.get_weights())`` works.
    Padding is "same", strides 1, zero initial state; T must be known when the layer is built.
    ``fused_gates`` (default): outside training, the gate arithmetic of a step (two sums, three sigmoids,
    two activations, four products) runs as one XLA-compiled function instead of about twelve TensorFlow
    ops that each read and write the 4F-channel maps: on the seed fused model (batch 16, one thread) this cut
    inference from 106-108 to 95-102 CPU ms per clip (benchmarks/README.md); training keeps the plain ops
    (XLA slowed its gradient). SavedModel and TensorFlow Lite export keep working (tests/test_export.py).
    Small gate maps (the recommended models' 16x16 after the stem) gain nothing, and one call of the compiled
    function per step cost the recommended ConvLSTM about 2 ms more per window at batch 1 on two threads, so
    the plain ops run below ``FUSED_GATES_MIN_ELEMENTS`` values per image.
    """

    FUSED_GATES_MIN_ELEMENTS = 65536  # H x W x 4F per image: the seed model's 64 x 64 x 64 = 262,144 passes

    def __init__(self, filters: int, kernel_size: int | tuple[int, int], activation: str = "tanh",
                 recurrent_activation: str = "sigmoid", return_sequences: bool = False,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None, fused_gates: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fused_gates = bool(fused_gates)
        self.filters = int(filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.return_sequences = return_sequences
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape: tuple) -> None:
        """Create kernel, recurrent_kernel and bias in ConvLSTM2D's order and shapes."""
        if input_shape[1] is None or None in input_shape[2:]:
            raise ValueError(f"ConvLSTM needs a known number of frames and image size, got {input_shape}")
        filters, channels = self.filters, input_shape[-1]
        self.kernel = self.add_weight(shape=self.kernel_size + (channels, 4 * filters), name="kernel",
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (filters, 4 * filters), name="recurrent_kernel",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer)

        def bias_initializer(shape: tuple, dtype: Any = None) -> Any:
            forget = ops.ones((filters,), dtype) if self.unit_forget_bias else ops.zeros((filters,), dtype)
            zeros = ops.zeros((filters,), dtype)
            return ops.concatenate([zeros, forget, zeros, zeros])

        self.bias = self.add_weight(shape=(4 * filters,), name="bias", initializer=bias_initializer,
                                    regularizer=self.bias_regularizer)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Run the recurrence over all T frames; returns (B, T, H, W, F) or the last step (B, H, W, F).

        Outside training (TensorFlow backend, ``fused_gates``), each step's gate arithmetic runs as one
        XLA-compiled function, the convolutions as they are (see :func:`_compiled_gates`)."""
        fuse = self._fuse(inputs, training)
        step = _compiled_gates(self.activation, self.recurrent_activation) if fuse else self._gates
        bias = ops.cast(self.bias.value, self.compute_dtype) if fuse else self.bias
        hidden = cell = None
        outputs = []
        for frame in ops.unstack(inputs, inputs.shape[1], axis=1):
            # all four gates in one convolution each (ConvLSTM2D does 4 + 4 per step); the first step's
            # recurrent term is a convolution of the zero state, i.e. zero, and is skipped
            from_frame = ops.conv(frame, self.kernel, padding="same")
            from_hidden = None if hidden is None else ops.conv(hidden, self.recurrent_kernel, padding="same")
            hidden, cell = step(from_frame, from_hidden, bias, cell)
            outputs.append(hidden)
        return ops.stack(outputs, axis=1) if self.return_sequences else hidden

    def _fuse(self, inputs: Any, training: bool | None) -> bool:
        """Whether this call runs the gates as one compiled function: inference, TensorFlow backend, fused_gates,
        and gate maps of at least ``FUSED_GATES_MIN_ELEMENTS`` values per image (H x W x 4F)."""
        gate_elements = int(inputs.shape[2]) * int(inputs.shape[3]) * 4 * self.filters
        return (self.fused_gates and not training and gate_elements >= self.FUSED_GATES_MIN_ELEMENTS
                and keras.backend.backend() == "tensorflow")

    def _gates(self, from_frame: Any, from_hidden: Any, bias: Any, cell: Any) -> tuple[Any, Any]:
        """(hidden, cell) of one step from the two convolutions' gate terms (from_hidden/cell None at step 1)."""
        return _gate_arithmetic(self.activation, self.recurrent_activation, from_frame, from_hidden, bias, cell)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(B, T, H, W, F) with return_sequences, else (B, H, W, F)."""
        batch, frames, height, width, _ = input_shape
        if self.return_sequences:
            return (batch, frames, height, width, self.filters)
        return (batch, height, width, self.filters)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "return_sequences": self.return_sequences,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "fused_gates": self.fused_gates,
        })
        return config


@keras.saving.register_keras_serializable(package="course")
class LastTimeStep(keras.layers.Layer):
    """(B, T, ...) -> (B, ...): the last time step of a sequence."""

    def call(self, inputs: Any) -> Any:
        """Slice out step T-1."""
        return inputs[:, -1]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Drop the time axis."""
        return (input_shape[0],) + tuple(input_shape[2:])


# ----------------------------------------------------------------------------- inference: the ConvLSTM stack in one layer
def _first_gate_arithmetic(activation: Any, recurrent_activation: Any, from_frame: Any, bias: Any) -> tuple[Any, Any]:
    """The first step's gates from the i, c, o channels only (the forget gate multiplies the zero cell state)."""
    gate_i, gate_c, gate_o = ops.split(from_frame + bias, 3, axis=-1)
    cell = recurrent_activation(gate_i) * activation(gate_c)
    return recurrent_activation(gate_o) * activation(cell), cell


def _without_forget_gate(values: Any, filters: int) -> Any:
    """The i, c, o quarters of a gate-ordered last axis (i, f, c, o), the forget gate's quarter left out."""
    import numpy as np

    return np.concatenate([values[..., :filters], values[..., 2 * filters:]], axis=-1)


def _batch_norm_affine(layer: keras.layers.BatchNormalization) -> tuple[Any, Any]:
    """(scale, shift) per channel with ``layer(x) == x * scale + shift`` at inference (moving statistics)."""
    import numpy as np

    inverse = 1.0 / np.sqrt(np.asarray(layer.moving_variance.numpy(), "float64") + layer.epsilon)
    gamma = np.asarray(layer.gamma.numpy(), "float64") if layer.scale else 1.0
    beta = np.asarray(layer.beta.numpy(), "float64") if layer.center else 0.0
    scale = inverse * gamma
    return scale, beta - np.asarray(layer.moving_mean.numpy(), "float64") * scale


@keras.saving.register_keras_serializable(package="course")
class ConvLSTMStack(keras.layers.Layer):
    """Inference only: :class:`ConvLSTM` layers, each followed by its batch norm, then the last time step, as one layer.

    Computes what ``ConvLSTM -> BatchNormalization -> ... -> ConvLSTM -> BatchNormalization -> LastTimeStep`` does
    at inference (outputs equal within float32 rounding), with less work: the layers advance together step by step,
    so no sequence of hidden states is stacked, normalised and unstacked again; each batch norm but the last is
    folded into the next layer's input convolution (kernel times the scale; the shift, convolved with "same"
    zero padding, becomes a bias per pixel, ``(H, W, 4F)``); the last batch norm is applied to the last step only;
    the first step convolves the input to the i, c, o gates only (the forget gate multiplies the zero cell state).
    Made by :func:`inference_model` from a trained model's layers (:meth:`from_layers`); it has no gradient path
    worth training: train the original model.
    """

    def __init__(self, filters: tuple[int, ...], kernel_size: int | tuple[int, int], activation: str = "tanh",
                 recurrent_activation: str = "sigmoid", fused_gates: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.fused_gates = bool(fused_gates)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape: tuple) -> None:
        """Per layer: input kernel, the first step's input kernel (i, c, o), recurrent kernel, bias (a vector for the
        first layer, one per pixel after a folded batch norm), the first step's bias; the last batch norm's affine."""
        if input_shape[1] is None or None in input_shape[2:]:
            raise ValueError(f"ConvLSTMStack needs a known number of frames and image size, got {input_shape}")
        height, width, channels = input_shape[2:]
        self.kernels, self.first_kernels, self.recurrent_kernels, self.biases, self.first_biases = [], [], [], [], []
        for index, filters in enumerate(self.filters):
            inputs = channels if index == 0 else self.filters[index - 1]
            bias_shape = (4 * filters,) if index == 0 else (height, width, 4 * filters)
            shapes = {"kernel": self.kernel_size + (inputs, 4 * filters),
                      "first_kernel": self.kernel_size + (inputs, 3 * filters),
                      "recurrent_kernel": self.kernel_size + (filters, 4 * filters),
                      "bias": bias_shape, "first_bias": bias_shape[:-1] + (3 * filters,)}
            made = {name: self.add_weight(shape=shape, name=f"{name}{index + 1}", initializer="zeros", trainable=False)
                    for name, shape in shapes.items()}
            self.kernels.append(made["kernel"])
            self.first_kernels.append(made["first_kernel"])
            self.recurrent_kernels.append(made["recurrent_kernel"])
            self.biases.append(made["bias"])
            self.first_biases.append(made["first_bias"])
        self.scale = self.add_weight(shape=(self.filters[-1],), name="scale", initializer="ones", trainable=False)
        self.shift = self.add_weight(shape=(self.filters[-1],), name="shift", initializer="zeros", trainable=False)

    def call(self, inputs: Any) -> Any:
        """The last step's normalised hidden state (B, H, W, F_last) of the stacked layers."""
        fuse = self.fused_gates and keras.backend.backend() == "tensorflow"
        pixels = int(inputs.shape[2]) * int(inputs.shape[3])
        activations = (self.activation, self.recurrent_activation)
        gates = [{arithmetic: (_compiled_gates(*activations, arithmetic)
                               if fuse and pixels * 4 * filters >= ConvLSTM.FUSED_GATES_MIN_ELEMENTS
                               else functools.partial(arithmetic, *activations))
                  for arithmetic in (_first_gate_arithmetic, _gate_arithmetic)} for filters in self.filters]
        states: list[tuple[Any, Any]] = [(None, None)] * len(self.filters)
        x = None
        for frame in ops.unstack(inputs, inputs.shape[1], axis=1):
            x = frame
            for index in range(len(self.filters)):
                hidden, cell = states[index]
                if hidden is None:
                    hidden, cell = gates[index][_first_gate_arithmetic](
                        ops.conv(x, self.first_kernels[index], padding="same"),
                        ops.cast(self.first_biases[index].value, self.compute_dtype))
                else:
                    step = gates[index][_gate_arithmetic]
                    hidden, cell = step(ops.conv(x, self.kernels[index], padding="same"),
                                        ops.conv(hidden, self.recurrent_kernels[index], padding="same"),
                                        ops.cast(self.biases[index].value, self.compute_dtype), cell)
                states[index] = (hidden, cell)
                x = hidden
        return x * self.scale + self.shift

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(B, H, W, F_last)."""
        return (input_shape[0], input_shape[2], input_shape[3], self.filters[-1])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update({"filters": list(self.filters), "kernel_size": self.kernel_size,
                       "activation": keras.activations.serialize(self.activation),
                       "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                       "fused_gates": self.fused_gates})
        return config

    @classmethod
    def from_layers(cls, convlstms: list[ConvLSTM], batch_norms: list[keras.layers.BatchNormalization],
                    input_shape: tuple, name: str) -> ConvLSTMStack:
        """The stack of these trained layers (their weights as they are now, batch norms folded), built."""
        import numpy as np

        first = convlstms[0]
        stack = cls(filters=tuple(layer.filters for layer in convlstms), kernel_size=first.kernel_size,
                    activation=keras.activations.serialize(first.activation),
                    recurrent_activation=keras.activations.serialize(first.recurrent_activation),
                    fused_gates=all(layer.fused_gates for layer in convlstms), name=name, dtype=first.dtype_policy)
        stack.build(tuple(input_shape))
        height, width = int(input_shape[2]), int(input_shape[3])
        for index, layer in enumerate(convlstms):
            kernel = np.asarray(layer.kernel.numpy(), "float64")
            bias = np.asarray(layer.bias.numpy(), "float64")
            if index > 0:  # the previous batch norm, x * scale + shift, folded into this layer's input convolution
                scale, shift = _batch_norm_affine(batch_norms[index - 1])
                shifted = np.broadcast_to(shift, (1, height, width, shift.shape[0])).astype("float32")
                bias = bias + np.asarray(ops.convert_to_numpy(ops.conv(shifted, kernel.astype("float32"),
                                                                       padding="same"))[0], "float64")
                kernel = kernel * scale[None, None, :, None]
            filters = layer.filters
            stack.kernels[index].assign(kernel.astype("float32"))
            stack.first_kernels[index].assign(_without_forget_gate(kernel, filters).astype("float32"))
            stack.recurrent_kernels[index].assign(layer.recurrent_kernel.numpy())
            stack.biases[index].assign(bias.astype("float32"))
            stack.first_biases[index].assign(_without_forget_gate(bias, filters).astype("float32"))
        scale, shift = _batch_norm_affine(batch_norms[-1])
        stack.scale.assign(scale.astype("float32"))
        stack.shift.assign(shift.astype("float32"))
        return stack


def _convlstm_chain(model: keras.Model, last_step: LastTimeStep) -> tuple[list, list] | None:
    """The ``<prefix>_convlstm<i>`` and ``<prefix>_batchnorm<i>`` layers that feed ``last_step`` one after the other
    (:func:`_frame_branch`), or None when the layers there are not exactly that chain of :class:`ConvLSTM` layers."""
    prefix = last_step.name[:-len("_last_step")]
    names = {layer.name: layer for layer in model.layers}
    convlstms, batch_norms = [], []
    while f"{prefix}_convlstm{len(convlstms) + 1}" in names:
        index = len(convlstms) + 1
        convlstms.append(names[f"{prefix}_convlstm{index}"])
        batch_norms.append(names.get(f"{prefix}_batchnorm{index}"))
    if not convlstms or not all(isinstance(layer, ConvLSTM) and layer.return_sequences for layer in convlstms):
        return None
    if not all(isinstance(norm, keras.layers.BatchNormalization) and norm.axis in (-1, 4, [-1], [4])
               for norm in batch_norms):
        return None
    feeds = [(norm, layer) for norm, layer in zip(batch_norms, convlstms[1:])] + [(batch_norms[-1], last_step)]
    try:  # .input/.output raise for a layer called more than once: not a chain built by _frame_branch
        chained = all(layer.input is source.output for source, layer in feeds) and all(
            norm.input is layer.output for layer, norm in zip(convlstms, batch_norms))
    except (AttributeError, ValueError):
        return None
    return (convlstms, batch_norms) if chained else None


def inference_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` computing the same function at inference with less work on CPU: each frame branch's
    ConvLSTM layers, batch norms and last step run as one :class:`ConvLSTMStack` (see there; outputs equal within
    float32 rounding, ``tests/test_models.py``). Every other layer is a copy with the same weights and name.

    For prediction, evaluation and export (``runs.load_run`` returns it); train the model itself. A model without
    such a chain (the LSTM, the stock ``ConvLSTM2D``) comes back as it is."""
    chains: dict[int, Any] = {}  # id of an original layer -> None (folded into a stack) or its chain (a last step)
    for functional in [model, *(layer for layer in model.layers if isinstance(layer, keras.Model))]:
        for layer in functional.layers:
            if isinstance(layer, LastTimeStep) and layer.name.endswith("_last_step"):
                chain = _convlstm_chain(functional, layer)
                if chain is not None:
                    chains.update({id(part): None for part in chain[0] + chain[1]})
                    chains[id(layer)] = chain
    if not chains:
        return model
    originals: dict[int, keras.layers.Layer] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        """A new layer from the layer's config (weights copied below), remembering which layer it copies."""
        copy = layer.__class__.from_config(layer.get_config())
        originals[id(copy)] = layer
        return copy

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        """The chain's layers pass their input on; its last step runs the whole stack."""
        original = originals.get(id(layer))
        if id(original) not in chains:
            return layer(*args, **kwargs)
        chain = chains[id(original)]
        if chain is None:
            return args[0]
        prefix = layer.name[:-len("_last_step")]
        return ConvLSTMStack.from_layers(*chain, input_shape=args[0].shape, name=f"{prefix}_convlstm_stack")(args[0])

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call, recursive=True)
    _copy_weights(model, copy)
    return copy


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Set each layer of ``target`` that has weights to those of the layer of the same name in ``source`` (nested
    models by name too); layers ``source`` lacks (a :class:`ConvLSTMStack`) keep theirs."""
    names = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if layer.name not in names:
            continue
        if isinstance(layer, keras.Model):
            _copy_weights(names[layer.name], layer)
        elif layer.weights:
            layer.set_weights(names[layer.name].get_weights())

# ----------------------------------------------------------------------------- the linear model's layers
@keras.saving.register_keras_serializable(package="course")
class SegmentStatistics(keras.layers.Layer):
    """(B, T, D) -> (B, (segments + 1) * D): the mean of each of ``segments`` equal time segments, then the std over T.

    Segment s covers frames ``[round(s * T / segments), round((s + 1) * T / segments))``; T must be known.
    """

    def __init__(self, segments: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.segments = int(segments)

    def call(self, inputs: Any) -> Any:
        """Segment means and the standard deviation over time, concatenated."""
        frames = inputs.shape[1]
        bounds = [int(round(s * frames / self.segments)) for s in range(self.segments + 1)]
        means = [ops.mean(inputs[:, start:stop], axis=1) for start, stop in zip(bounds[:-1], bounds[1:])]
        return ops.concatenate(means + [ops.std(inputs, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(batch, (segments + 1) * D)."""
        return (input_shape[0], (self.segments + 1) * input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "segments": self.segments}


@keras.saving.register_keras_serializable(package="course")
class Standardize(keras.layers.Layer):
    """(x - mean) / scale with fixed (non-trainable) mean and scale, as scikit-learn's StandardScaler."""

    def build(self, input_shape: tuple) -> None:
        """Create mean (zeros) and scale (ones); :func:`set_linear_weights` fills them."""
        self.mean = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=False, name="scale")

    def call(self, inputs: Any) -> Any:
        """Standardise."""
        return (inputs - self.mean) / self.scale


def _linear_branch(keypoints: Any, config: ModelConfig, num_classes: int, output_name: str = "probabilities",
                   trainable: bool = True) -> Any:
    """keypoints (T, D) -> segment statistics -> standardisation -> Dense(num_classes, softmax); scikit-learn fits it
    (:func:`set_linear_weights`). In a blend it is frozen (``trainable=False``), so gradient descent leaves it alone."""
    x = SegmentStatistics(config.segments, name="keypoints_statistics")(keypoints)
    x = Standardize(name="keypoints_standardize")(x)
    return keras.layers.Dense(num_classes, activation="softmax", trainable=trainable, name=output_name)(x)


def _linear_model(config: ModelConfig, num_classes: int, keypoint_dim: int) -> keras.Model:
    """keypoints (T, D) -> the linear branch (:func:`_linear_branch`)."""
    keypoints = keras.Input((config.num_frames, keypoint_dim), dtype="float32", name="keypoints")
    return keras.Model(keypoints, _linear_branch(keypoints, config, num_classes), name=f"linear_{config.name}")


@keras.saving.register_keras_serializable(package="course")
class BlendProbabilities(keras.layers.Layer):
    """(1 - weight) * p + weight * q: two models' class probabilities averaged with a fixed weight."""

    def __init__(self, weight: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: list[Any]) -> Any:
        """inputs: [p, q], both (B, C)."""
        return (1.0 - self.weight) * inputs[0] + self.weight * inputs[1]

    def compute_output_shape(self, input_shape: list) -> tuple:
        """(B, C)."""
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "weight": self.weight}


NEURAL_OUTPUT, LINEAR_OUTPUT = "neural_probabilities", "linear_probabilities"


def _blend_output(keypoints: Any, features: Any, config: ModelConfig, num_classes: int) -> Any:
    """The lstm model with ``config.linear_blend`` > 0: its own head ("neural_probabilities") and a linear branch on
    the same inputs ("linear_probabilities"), mixed as (1 - w) p_neural + w p_linear. Models that err differently
    average out each other's mistakes; training fits the linear branch first (scikit-learn), then the neural part
    alone (:func:`neural_part`), so each is what it would be on its own."""
    neural = _head(features, config, num_classes, output_name=NEURAL_OUTPUT)
    linear = _linear_branch(keypoints, config, num_classes, output_name=LINEAR_OUTPUT, trainable=False)
    return BlendProbabilities(config.linear_blend, dtype="float32", name="probabilities")([neural, linear])


def neural_part(model: keras.Model) -> keras.Model:
    """What gradient descent trains: a blended model's neural part (its inputs -> "neural_probabilities", sharing
    the layers), or the model itself."""
    try:
        output = model.get_layer(NEURAL_OUTPUT).output
    except ValueError:
        return model
    return keras.Model(model.inputs, output, name=f"{model.name}_neural")


def linear_output_layer(model: keras.Model) -> keras.layers.Layer | None:
    """The Dense layer a scikit-learn fit goes into: "linear_probabilities" of a blend, "probabilities" of a linear
    model, None for models without a linear branch."""
    for name in (LINEAR_OUTPUT, "probabilities"):
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue
        if any(other.name == "keypoints_standardize" for other in model.layers):
            return layer
    return None


def segment_statistics(keypoints: Any, segments: int = 3) -> Any:
    """NumPy (N, T, D) -> (N, (segments + 1) * D): what the linear model's first layer computes."""
    import numpy as np

    return np.asarray(ops.convert_to_numpy(SegmentStatistics(segments)(ops.convert_to_tensor(keypoints, "float32"))))


def set_linear_weights(model: keras.Model, mean: Any, scale: Any, coef: Any, intercept: Any,
                       classes: Any = None) -> keras.Model:
    """Copy a fitted StandardScaler (mean, scale) and LogisticRegression (coef_, intercept_) into a linear model.

    ``classes``: the model outputs that scikit-learn's rows belong to (its ``classes_``; default all). Outputs
    of classes absent from the training clips get zero weights and a bias of -30 (probability ~1e-13).
    scikit-learn's two-class LogisticRegression keeps one row w for the second class; softmax over
    (-w/2, +w/2) gives the same probabilities as its sigmoid(w), so each class gets half of it.
    """
    import numpy as np

    coef, intercept = np.asarray(coef, np.float32), np.asarray(intercept, np.float32)
    if coef.shape[0] == 1:
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    dense = linear_output_layer(model)
    if dense is None:
        raise ValueError(f"model {model.name} has no linear branch to set")
    num_classes = int(dense.units)
    classes = np.arange(num_classes) if classes is None else np.asarray(classes, dtype=np.int64)
    if len(classes) != len(coef):
        raise ValueError(f"{len(coef)} rows of coefficients for {len(classes)} classes")
    kernel = np.zeros((coef.shape[1], num_classes), np.float32)
    bias = np.full(num_classes, -30.0, np.float32)
    kernel[:, classes], bias[classes] = coef.T, intercept
    model.get_layer("keypoints_standardize").set_weights([np.asarray(mean, np.float32), np.asarray(scale, np.float32)])
    dense.set_weights([kernel, bias])
    return model


# ----------------------------------------------------------------------------- the models
def _regularizer(config: ModelConfig) -> keras.regularizers.Regularizer | None:
    """L2(wd/2): the Keras penalty whose gradient equals PyTorch's Adam weight_decay wd."""
    return keras.regularizers.L2(config.l2 / 2) if config.l2 > 0 else None


def _batch_norm(config: ModelConfig, name: str) -> keras.layers.Layer:
    """BatchNorm with PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5), per channel."""
    reg = _regularizer(config)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, beta_regularizer=reg,
                                           gamma_regularizer=reg, name=name)


def _convlstm_layer(config: ModelConfig, filters: int, impl: str, name: str) -> keras.layers.Layer:
    """One ConvLSTM layer (return_sequences=True), ours or keras.layers.ConvLSTM2D."""
    reg = _regularizer(config)
    common = dict(filters=filters, kernel_size=frame_kernel_size(config), activation=config.convlstm_activation,
                  return_sequences=True, kernel_regularizer=reg, recurrent_regularizer=reg,
                  bias_regularizer=reg, name=name)
    if impl == "fast":
        return ConvLSTM(**common)
    if impl == "stock":
        return keras.layers.ConvLSTM2D(padding="same", **common)
    raise ValueError(f"unknown convlstm_impl {impl!r}; use one of {', '.join(CONVLSTM_IMPLS)}")


@keras.saving.register_keras_serializable(package="course")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per time step (T, D) to a (batch, T, D) sequence: the order a Transformer cannot see."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """One trainable (T, D) table, small random start."""
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), name="positions",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x: Any) -> Any:
        """x + the table (broadcast over the batch)."""
        return x + ops.cast(self.positions, x.dtype)


KEYPOINT_ENCODERS = ("lstm", "conv_gru", "transformer")


def _keypoint_branch(keypoints: Any, config: ModelConfig) -> Any:
    """The keypoint encoder of ``config.keypoint_encoder``: "lstm" (:func:`_lstm_encoder`), "conv_gru" or
    "transformer" (:func:`_conv_gru_encoder`, :func:`_transformer_encoder`)."""
    if config.keypoint_encoder == "lstm":
        return _lstm_encoder(keypoints, config)
    if config.keypoint_encoder == "conv_gru":
        return _conv_gru_encoder(keypoints, config)
    if config.keypoint_encoder == "transformer":
        return _transformer_encoder(keypoints, config)
    raise ConfigError(f"unknown keypoint_encoder {config.keypoint_encoder!r}; use one of {', '.join(KEYPOINT_ENCODERS)}")


def _lstm_encoder(keypoints: Any, config: ModelConfig) -> Any:
    """Stacked LSTMs from zero initial state, batch-first; returns the last layer's last output."""
    reg = _regularizer(config)
    x = keypoints
    for index, units in enumerate(config.lstm_units):
        last = index == len(config.lstm_units) - 1
        x = keras.layers.LSTM(units, return_sequences=not last, kernel_regularizer=reg,
                              recurrent_regularizer=reg, bias_regularizer=reg, name=f"keypoints_lstm{index + 1}")(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"keypoints_dropout{index + 1}")(x)
    return x


def _conv_gru_encoder(keypoints: Any, config: ModelConfig) -> Any:
    """Per-frame Dense projection, residual 1D convolutions over time (kernel_size), then a GRU and the time mean.

    Widths are ``config.lstm_units``: the first is the projection and convolution width, the last the GRU's.
    The GRU's last state (order) and the mean over time of the convolution features (what happened) are
    concatenated, as in the 1D-CNN + RNN models of the Kaggle isolated-sign competitions.
    """
    x = _conv_stem(keypoints, config)
    recurrent = keras.layers.GRU(config.lstm_units[-1], kernel_regularizer=_regularizer(config),
                                 recurrent_regularizer=_regularizer(config), name="keypoints_gru")(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="keypoints_mean")(x)
    x = keras.layers.Concatenate(name="keypoints_features")([recurrent, pooled])
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name="keypoints_dropout")(x)
    return x


def _conv_stem(keypoints: Any, config: ModelConfig) -> Any:
    """Per-frame Dense(lstm_units[0]) + LayerNorm + swish, then two residual Conv1D (kernel_size) blocks over time."""
    reg = _regularizer(config)
    width = config.lstm_units[0]
    x = keras.layers.Dense(width, kernel_regularizer=reg, name="keypoints_project")(keypoints)
    x = keras.layers.LayerNormalization(name="keypoints_project_norm")(x)
    x = keras.layers.Activation("swish", name="keypoints_project_act")(x)
    for index in range(2):
        y = keras.layers.Conv1D(width, config.kernel_size, padding="same", kernel_regularizer=reg,
                                name=f"keypoints_conv{index + 1}")(x)
        y = keras.layers.LayerNormalization(name=f"keypoints_conv{index + 1}_norm")(y)
        y = keras.layers.Activation("swish", name=f"keypoints_conv{index + 1}_act")(y)
        if config.dropout > 0:
            y = keras.layers.Dropout(config.dropout / 2, name=f"keypoints_conv{index + 1}_dropout")(y)
        x = keras.layers.Add(name=f"keypoints_residual{index + 1}")([x, y])
    return x


def _transformer_encoder(keypoints: Any, config: ModelConfig) -> Any:
    """The conv_gru stem (:func:`_conv_stem`), a learned position embedding, ``transformer_blocks`` pre-norm
    Transformer blocks (self-attention with ``attention_heads`` heads, then a 2x-wide swish MLP, each residual),
    a final LayerNorm, and the mean and the max over time concatenated."""
    width = config.lstm_units[0]
    if config.attention_heads < 1 or width % config.attention_heads:
        raise ConfigError(f"attention_heads {config.attention_heads} must divide the width lstm_units[0]={width}; "
                          "pick a divisor of it (e.g. 4 for 96 or 128)")
    reg = _regularizer(config)
    x = PositionEmbedding(name="keypoints_positions")(_conv_stem(keypoints, config))
    for index in range(config.transformer_blocks):
        name = f"keypoints_block{index + 1}"
        y = keras.layers.LayerNormalization(name=f"{name}_attention_norm")(x)
        y = keras.layers.MultiHeadAttention(config.attention_heads, width // config.attention_heads,
                                            dropout=config.dropout / 2, kernel_regularizer=reg,
                                            name=f"{name}_attention")(y, y)
        x = keras.layers.Add(name=f"{name}_attention_residual")([x, y])
        y = keras.layers.LayerNormalization(name=f"{name}_mlp_norm")(x)
        y = keras.layers.Dense(2 * width, activation="swish", kernel_regularizer=reg, name=f"{name}_mlp1")(y)
        y = keras.layers.Dense(width, kernel_regularizer=reg, name=f"{name}_mlp2")(y)
        if config.dropout > 0:
            y = keras.layers.Dropout(config.dropout / 2, name=f"{name}_mlp_dropout")(y)
        x = keras.layers.Add(name=f"{name}_mlp_residual")([x, y])
    x = keras.layers.LayerNormalization(name="keypoints_final_norm")(x)
    x = keras.layers.Concatenate(name="keypoints_features")([keras.layers.GlobalAveragePooling1D(name="keypoints_mean")(x),
                                                            keras.layers.GlobalMaxPooling1D(name="keypoints_max")(x)])
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name="keypoints_dropout")(x)
    return x


FRAME_POOLINGS = ("flatten", "average")


def _frame_stem(x: Any, config: ModelConfig, prefix: str) -> Any:
    """Per frame: strided 3x3 convolutions (ReLU, BatchNorm), each halving the image side, before the ConvLSTM."""
    reg = _regularizer(config)
    for index, filters in enumerate(config.frame_stem):
        conv = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_regularizer=reg,
                                   bias_regularizer=reg)
        x = keras.layers.TimeDistributed(conv, name=f"{prefix}_stem{index + 1}")(x)
        x = _batch_norm(config, name=f"{prefix}_stem{index + 1}_batchnorm")(x)
    return x


def _frame_branch(frames: Any, config: ModelConfig, impl: str, prefix: str = "frames") -> Any:
    """Rescale uint8 frames, the optional strided stem, ConvLSTM + BatchNorm per layer, last step, then a reduce-conv
    and flatten (``frame_pooling="flatten"``, the original) or a global average over the image ("average")."""
    if config.frame_pooling not in FRAME_POOLINGS:
        raise ConfigError(f"unknown frame_pooling {config.frame_pooling!r}; use one of {', '.join(FRAME_POOLINGS)}")
    reg = _regularizer(config)
    x = keras.layers.Rescaling(1.0 / 255, name=f"{prefix}_rescale")(frames)
    x = _frame_stem(x, config, prefix)
    for index, filters in enumerate(config.convlstm_filters):
        x = _convlstm_layer(config, filters, impl, name=f"{prefix}_convlstm{index + 1}")(x)
        x = _batch_norm(config, name=f"{prefix}_batchnorm{index + 1}")(x)
    x = LastTimeStep(name=f"{prefix}_last_step")(x)
    if config.frame_pooling == "average":
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_pool")(x)
    else:
        x = keras.layers.Conv2D(config.reduce_channels, frame_kernel_size(config), padding="same",
                                kernel_regularizer=reg, bias_regularizer=reg, name=f"{prefix}_reduce")(x)
        x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name=f"{prefix}_dropout")(x)
    return x


def _hands_branch(hands: Any, config: ModelConfig, impl: str) -> Any:
    """The two hand crops (T, 2, C, C, 3) side by side as 6 channels (T, C, C, 6), then the frame branch."""
    size = config.hand_size
    x = keras.layers.Permute((1, 3, 4, 2, 5), name="hands_to_channels")(hands)  # (T, C, C, 2, 3)
    x = keras.layers.Reshape((config.num_frames, size, size, 6), name="hands_stack")(x)
    return _frame_branch(x, config, impl, prefix="hands")


def _head(features: Any, config: ModelConfig, num_classes: int, prefix: str = "head",
          output_name: str = "probabilities", activation: str | None = "softmax") -> Any:
    """Optional hidden Dense layers, then num_classes outputs (softmax 'probabilities' by default)."""
    reg = _regularizer(config)
    x = features
    for index, units in enumerate(config.head_units):
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, bias_regularizer=reg,
                               name=f"{prefix}_dense{index + 1}")(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"{prefix}_dropout{index + 1}")(x)
    if config.test_time_flip:  # the last layer is linear: the mean of its inputs gives the mean of the two logits
        x = AverageViews(name=f"{prefix}_views_mean")(x)
    # float32 even under a mixed_float16 policy (GPUs): a float16 softmax loses small probabilities
    return keras.layers.Dense(num_classes, activation=activation, kernel_regularizer=reg, bias_regularizer=reg,
                              dtype="float32", name=output_name)(x)


def model_inputs(model_name: str, config: ModelConfig | None = None) -> tuple[str, ...]:
    """Names of the inputs a model takes, e.g. ('keypoints',), ('frames',), ('keypoints', 'hands').

    The frame part follows ``config.frame_input`` ("frames", "hands" or both); without a config it is "frames".
    """
    _check_model_name(model_name)
    frame_input = "frames" if config is None else config.frame_input
    if frame_input not in FRAME_INPUTS:
        raise ConfigError(f"unknown frame_input {frame_input!r}; use one of {', '.join(FRAME_INPUTS)}")
    frame_names = ("frames", "hands") if frame_input == "both" else (frame_input,)
    return {"lstm": ("keypoints",), "convlstm": frame_names, "fused": ("keypoints", *frame_names),
            "linear": ("keypoints",), "boosted": ("keypoints",)}[model_name]


# ----------------------------------------------------------------------------- fusion
@keras.saving.register_keras_serializable(package="course")
class ModalityDropout(keras.layers.Layer):
    """Training only: zero each branch's tensor of a clip with probability ``rate`` (never all branches of a clip).

    At inference it is the identity. A model that sometimes loses a branch in training cannot lean on one
    branch alone, and a zero branch is what it sees when a modality is missing.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate, self.seed = float(rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, branches: list[Any], training: bool | None = None) -> list[Any]:
        """The branches, some zeroed per clip in training; unchanged otherwise."""
        if not training or self.rate <= 0:
            return list(branches)
        batch = ops.shape(branches[0])[0]
        keep = ops.cast(keras.random.uniform((batch, len(branches)), seed=self.seed_generator) >= self.rate, "float32")
        # a clip that would lose every branch keeps them all
        keep = ops.where(ops.sum(keep, axis=1, keepdims=True) > 0, keep, ops.ones_like(keep))
        return [branch * ops.cast(keep[:, index:index + 1], branch.dtype) for index, branch in enumerate(branches)]

    def compute_output_shape(self, input_shape: list) -> list:
        """Same shapes as the inputs."""
        return list(input_shape)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="course")
class LogitFusion(keras.layers.Layer):
    """softmax(sum_k w_k log p_k): the branches' log-probabilities, weighted and renormalised.

    ``gated=False``: one learned weight per branch, w_k = softplus(a_k), starting at 1 (a product of experts).
    ``gated=True``: per clip weights w = softplus(Dense(K)(gate features)) from the branches' features.
    A weight near 0 silences its branch, so a branch that does not help can be switched off.
    """

    def __init__(self, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gated = gated

    def build(self, input_shape: list) -> None:
        """One raw weight per branch (starting at softplus^-1(1)), plus the gate's kernel when gated."""
        num_branches = len(input_shape) - (1 if self.gated else 0)
        self.branch_weights = self.add_weight(shape=(num_branches,), name="branch_weights",
                                              initializer=keras.initializers.Constant(0.5413))
        if self.gated:
            self.gate_kernel = self.add_weight(shape=(input_shape[-1][-1], num_branches), name="gate_kernel",
                                               initializer="zeros")

    def weights_for(self, inputs: list[Any]) -> Any:
        """The branch weights, (K,) or per clip (B, K) when gated."""
        raw = self.branch_weights
        if self.gated:
            raw = raw + ops.matmul(inputs[-1], self.gate_kernel)
        return ops.softplus(raw)

    def call(self, inputs: list[Any]) -> Any:
        """Inputs: K log-probability tensors (B, C) [+ gate features (B, F) when gated]; output probabilities."""
        log_probs = inputs[:-1] if self.gated else inputs
        weights = self.weights_for(inputs)
        if not self.gated:
            weights = ops.broadcast_to(weights[None], (ops.shape(log_probs[0])[0], len(log_probs)))
        mixed = sum(weights[:, index:index + 1] * lp for index, lp in enumerate(log_probs))
        return ops.softmax(mixed, axis=-1)

    def compute_output_shape(self, input_shape: list) -> tuple:
        """(B, C)."""
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "gated": self.gated}


FLIP_VIEWS = {"keypoints": "same", "frames": "frames", "hands": "hands"}  # how MirrorViews mirrors each input


@keras.saving.register_keras_serializable(package="course")
class MirrorViews(keras.layers.Layer):
    """Test-time flip averaging, first half: at inference the batch followed by its mirror image (2B clips); in
    training the batch unchanged.

    ``kind``: "frames" (B, T, S, S, C) flipped left/right; "hands" (B, T, 2, C, C, 3) flipped and swapped (the left
    hand's crop becomes the right one's), as :func:`utils.inputs.mirror_clips` does to raw clips; "same": keypoints
    prepared with the dominant hand on the right, so a mirrored clip's prepared keypoints are the clip's own.
    """

    def __init__(self, kind: str = "frames", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in set(FLIP_VIEWS.values()):
            raise ConfigError(f"unknown MirrorViews kind {kind!r}; use one of {sorted(set(FLIP_VIEWS.values()))}")
        self.kind = kind

    def mirror(self, inputs: Any) -> Any:
        """The inputs' mirror image (see the class docstring)."""
        if self.kind == "frames":
            return ops.flip(inputs, axis=3)
        if self.kind == "hands":
            return ops.flip(ops.flip(inputs, axis=2), axis=4)
        return inputs

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """(2B, ...) at inference: the clips, then their mirror images; (B, ...) unchanged in training."""
        return inputs if training else ops.concatenate([inputs, self.mirror(inputs)], axis=0)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(None, ...): the batch doubles at inference."""
        return (None, *tuple(input_shape)[1:])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "kind": self.kind}


@keras.saving.register_keras_serializable(package="course")
class AverageViews(keras.layers.Layer):
    """Test-time flip averaging, second half: at inference the mean of the two halves of a (2B, F) batch (the
    clip's and its mirror image's features, see :class:`MirrorViews`); in training the batch unchanged."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """(B, F): the mean of the clip's and its mirror's rows at inference; unchanged in training."""
        if training:
            return inputs
        half = ops.shape(inputs)[0] // 2
        return (inputs[:half] + inputs[half:]) / 2

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(None, F)."""
        return (None, *tuple(input_shape)[1:])


def mirror_views(inputs: dict[str, Any], config: ModelConfig) -> dict[str, Any]:
    """The model inputs, each through :class:`MirrorViews` when ``config.test_time_flip`` (else unchanged).

    Keypoints need no mirroring only when their preprocessing puts the dominant hand on one side (``mirror``):
    otherwise a mirrored clip's prepared keypoints differ from the clip's own, which the model cannot recompute."""
    if not config.test_time_flip:
        return inputs
    if config.linear_blend > 0:
        raise ConfigError("test_time_flip is not available with linear_blend > 0 (the linear branch has no mirror "
                          "view): set one of them off")
    if "keypoints" in inputs and not config.preprocessing.get("mirror"):
        raise ConfigError(f"test_time_flip with keypoints needs preprocessing mirror='motion' or 'height' (the "
                          f"dominant hand on one side), got mirror={config.preprocessing.get('mirror')!r}: set "
                          "test_time_flip=False, or put the dominant hand on one side")
    if config.preprocessing.get("draw_landmarks"):
        raise ConfigError("test_time_flip is not available with draw_landmarks=True (the drawn left and right "
                          "hands would not swap): set one of them off")
    return {name: MirrorViews(FLIP_VIEWS[name], name=f"{name}_mirror_views")(tensor) for name, tensor in inputs.items()}


def _branch_features(inputs: dict[str, Any], config: ModelConfig, impl: str) -> dict[str, Any]:
    """Each input's branch: the keypoint LSTM, the whole-frame ConvLSTM or the hand-crop ConvLSTM."""
    builders = {"keypoints": lambda x: _keypoint_branch(x, config), "frames": lambda x: _frame_branch(x, config, impl),
                "hands": lambda x: _hands_branch(x, config, impl)}
    return {name: builders[name](tensor) for name, tensor in inputs.items()}


def _fused_output(features: dict[str, Any], config: ModelConfig, num_classes: int) -> Any:
    """The fused probabilities: one head on the concatenated features, or late fusion of per-branch heads."""
    if config.fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {config.fusion!r}; use one of {', '.join(FUSIONS)}")
    names = list(features)
    if config.fusion == "concat":
        branches = list(features.values())
        if config.modality_dropout > 0:
            branches = ModalityDropout(config.modality_dropout, name="modality_dropout")(branches)
        return _head(keras.layers.Concatenate(name="fuse")(branches), config, num_classes)
    log_probs = []
    for name in names:  # each branch a classifier of its own ("<branch>_logits"), trainable alone (staged)
        logits = _head(features[name], config, num_classes, prefix=f"{name}_head", output_name=f"{name}_logits",
                       activation=None)
        log_probs.append(keras.layers.Activation("log_softmax", dtype="float32", name=f"{name}_log_probabilities")(logits))
    if config.modality_dropout > 0:
        log_probs = ModalityDropout(config.modality_dropout, name="modality_dropout")(log_probs)
    if config.fusion == "gate":
        gate_features = keras.layers.Concatenate(dtype="float32", name="gate_features")(list(features.values()))
        if config.test_time_flip:  # the gate sees the mean of the clip's and its mirror's features
            gate_features = AverageViews(name="gate_views_mean")(gate_features)
        return LogitFusion(gated=True, dtype="float32", name="probabilities")([*log_probs, gate_features])
    return LogitFusion(dtype="float32", name="probabilities")(log_probs)


# ----------------------------------------------------------------------------- seed ensembles
MEMBER_PREFIX = "member"  # an ensemble's sub-models are "member1", "member2", ...


def check_ensemble(model_name: str, config: ModelConfig) -> int:
    """The number of members ``config.ensemble`` asks for (ConfigError when it is not a positive integer, or
    when it asks a linear model for several: scikit-learn would fit the same model every time)."""
    size = config.ensemble
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"ensemble={size!r}: use a whole number of networks, 1 (one model) or more")
    if model_name in ("linear", "boosted") and size > 1:
        raise ConfigError(f"ensemble={size} for the {model_name} model: its fit does not depend on the seed, "
                          "so every member would be the same; use ensemble=1")
    return size


def ensemble_model(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model from networks with the same inputs and outputs: each a sub-model ("member1", "member2", ...) of
    shared inputs, the output "probabilities" the mean of their probabilities (one member: that member itself).

    Saved, loaded, evaluated and exported like any model; :func:`ensemble_members` gives the members back."""
    if len(members) == 1:
        return members[0]
    inputs = [keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=tensor.name.split(":")[0])
              for tensor in members[0].inputs]
    outputs = []
    for index, member in enumerate(members):
        renamed = keras.Model(member.inputs, member.output, name=f"{MEMBER_PREFIX}{index + 1}")
        outputs.append(renamed(inputs))
    mean = keras.layers.Average(dtype="float32", name="probabilities")(outputs)
    return keras.Model(inputs, mean, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of a model built by :func:`ensemble_model`, in order; ``[model]`` for a single network."""
    members = [layer for layer in model.layers
               if isinstance(layer, keras.Model) and layer.name.startswith(MEMBER_PREFIX)
               and layer.name[len(MEMBER_PREFIX):].isdigit()]
    return sorted(members, key=lambda m: int(m.name[len(MEMBER_PREFIX):])) or [model]


def branch_models(model: keras.Model) -> dict[str, keras.Model]:
    """Each branch of a late-fusion model as a model of its own: its input -> its own softmax (shared layers)."""
    found = {}
    for name in BRANCHES:
        try:
            source, logits = model.get_layer(name), model.get_layer(f"{name}_logits")
        except ValueError:
            continue
        probabilities = keras.layers.Softmax(name=f"{name}_probabilities")(logits.output)
        found[name] = keras.Model(source.output, probabilities, name=f"{model.name}_{name}")
    return found


def fusion_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of a late-fusion model that combine the branches (what the second stage of staged training fits)."""
    return [layer for layer in model.layers if isinstance(layer, LogitFusion)]


def build_model(model_name: str, config: ModelConfig | None = None, num_classes: int = 10,
                keypoint_dim: int = 1662, convlstm_impl: str | None = None) -> keras.Model:
    """Uncompiled functional model 'lstm', 'convlstm' or 'fused'; inputs 'keypoints' (T, keypoint_dim) and/or
    'frames' (T, S, S, 3, raw 0..255) and/or 'hands' (T, 2, C, C, 3), output 'probabilities' (num_classes softmax).

    ``config.frame_input`` picks the frame inputs, ``config.fusion`` how a fused model combines its branches."""
    _check_model_name(model_name)
    config = config or get_config(model_name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if check_ensemble(model_name, config) > 1:  # members with their own initial weights, averaged
        single = config.replace(ensemble=1)
        members = [build_model(model_name, single, num_classes, keypoint_dim, convlstm_impl)
                   for _ in range(config.ensemble)]
        return ensemble_model(members, name=f"{model_name}_{config.name}")
    if model_name == "boosted":
        return boosted.build_boosted_model(config, num_classes, keypoint_dim)
    if model_name == "linear":
        if config.test_time_flip:
            raise ConfigError("test_time_flip is not available for the linear model (scikit-learn weights, no mirror "
                              "view): set test_time_flip=False")
        return _linear_model(config, num_classes, keypoint_dim)
    impl = convlstm_impl or config.convlstm_impl
    if impl not in CONVLSTM_IMPLS:
        raise ValueError(f"unknown convlstm_impl {impl!r}; use one of {', '.join(CONVLSTM_IMPLS)}")
    size, frames_count = config.image_size, config.num_frames
    shapes = {"keypoints": (frames_count, keypoint_dim), "frames": (frames_count, size, size, 3),
              "hands": (frames_count, 2, config.hand_size, config.hand_size, 3)}
    inputs = {name: keras.Input(shapes[name], dtype="float32", name=name) for name in model_inputs(model_name, config)}
    features = _branch_features(mirror_views(inputs, config), config, impl)
    if len(features) == 1 and config.linear_blend > 0:
        outputs = _blend_output(inputs["keypoints"], features["keypoints"], config, num_classes)
    elif len(features) == 1:
        outputs = _head(next(iter(features.values())), config, num_classes)
    else:
        outputs = _fused_output(features, config, num_classes)
    return keras.Model(list(inputs.values()), outputs, name=f"{model_name}_{config.name}")


def with_test_time_flip(model: keras.Model, model_name: str, config: ModelConfig, flip: bool = True) -> keras.Model:
    """The same trained model rebuilt with ``test_time_flip=flip`` (weights copied layer by layer, by name)."""
    keypoints = {t.name.split(":")[0]: t.shape[-1] for t in model.inputs}.get("keypoints", 1662)
    rebuilt = build_model(model_name, config.replace(test_time_flip=flip), num_classes=int(model.output.shape[-1]),
                          keypoint_dim=int(keypoints))
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def default_jit_compile() -> bool | str:
    """XLA only with a GPU: on CPU, XLA's convolutions are slower than TensorFlow's oneDNN ones."""
    import tensorflow as tf

    return "auto" if tf.config.list_physical_devices("GPU") else False


def compile_model(model: keras.Model, config: ModelConfig, jit_compile: bool | str | None = None) -> keras.Model:
    """Compile with Adam(config.learning_rate), sparse categorical cross-entropy and accuracy; returns the model.

    ``jit_compile=None`` picks :func:`default_jit_compile` (Keras's own default, "auto", turns XLA on for CPUs too).
    """
    jit_compile = default_jit_compile() if jit_compile is None else jit_compile
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss=classification_loss(config), metrics=["accuracy"], jit_compile=jit_compile)
    return model


@keras.saving.register_keras_serializable(package="course")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of probabilities against integer labels smoothed to (1 - s) one-hot + s / classes
    (Keras's sparse loss has no label smoothing)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_smoothed_crossentropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-clip loss: the labels one-hot encoded, then Keras's categorical cross-entropy with smoothing."""
        one_hot = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        """Serialisable settings (saved with a compiled model)."""
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def classification_loss(config: ModelConfig) -> Any:
    """The training loss: sparse categorical cross-entropy, with ``config.label_smoothing`` when above 0."""
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing {config.label_smoothing} is out of range; use a value in [0, 1) (0 = none)")
    if config.label_smoothing == 0.0:
        return "sparse_categorical_crossentropy"
    return SparseSmoothedCrossentropy(config.label_smoothing)


COMPUTE_DTYPES = ("float32", "bfloat16")


def with_compute_dtype(model: keras.Model, compute_dtype: str = "bfloat16") -> keras.Model:
    """A copy of a built model that computes in ``compute_dtype`` with the same (float32) weights; outputs float32.

    ``"bfloat16"`` (Keras's ``mixed_bfloat16`` policy on every layer but the output layers): on a CPU with
    AVX512-BF16 or AMX, oneDNN runs the convolutions about twice as fast (the seed ConvLSTM's 5x5 convolutions of
    16 channels: 0.90 -> 0.46 CPU ms per image and step), at bfloat16's 8-bit mantissa (benchmarks/README.md has
    the agreement with float32). On a CPU without those instructions it is slower: measure before using it.
    For inference; the model itself is left as it was."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ConfigError(f"unknown compute_dtype {compute_dtype!r}; use one of {', '.join(COMPUTE_DTYPES)}")
    policy = "float32" if compute_dtype == "float32" else "mixed_bfloat16"
    outputs = set(model.output_names)

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        """The layer again, under the new policy unless it makes an output (a float32 softmax)."""
        config = layer.get_config()
        if layer.name not in outputs:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


# ----------------------------------------------------------------------------- parameter counts
def count_params(model: keras.Model) -> dict[str, int]:
    """Parameters per branch: {'keypoints', 'frames', 'head', 'total'} (+ 'hands'; batch-norm moving stats included);
    an ensemble's are the sums over its members."""
    members = ensemble_members(model)
    if members != [model]:
        per_member = [count_params(member) for member in members]
        return {key: sum(counts[key] for counts in per_member) for key in per_member[0]}
    counts = {"keypoints": 0, "frames": 0, "head": 0}
    if any(layer.name.startswith("hands_") for layer in model.layers):
        counts["hands"] = 0
    for layer in model.layers:
        branch = layer.name.split("_")[0]
        key = branch if branch in ("keypoints", "frames", "hands") else "head"
        counts[key] += layer.count_params()
    counts["total"] = sum(counts.values())
    return counts


def formula_param_count(model_name: str, config: ModelConfig, num_classes: int,
                        keypoint_dim: int = 1662) -> dict[str, int]:
    """Parameter counts from the layer formulas (Keras layers), same keys as :func:`count_params` (concat fusion
    of keypoints and whole frames only)."""
    _check_model_name(model_name)
    if config.frame_input != "frames" or config.fusion != "concat" or config.frame_stem or config.frame_pooling != "flatten":
        raise ConfigError("formula_param_count covers the original's layout only (frame_input='frames', "
                          f"fusion='concat', no frame_stem, frame_pooling='flatten'), got {config.frame_input!r} / "
                          f"{config.fusion!r} / {config.frame_stem!r} / {config.frame_pooling!r}")
    if config.ensemble > 1:  # that many members, each a single network
        single = formula_param_count(model_name, config.replace(ensemble=1), num_classes, keypoint_dim)
        return {key: value * config.ensemble for key, value in single.items()}
    counts = {"keypoints": 0, "frames": 0, "head": 0}
    feature_size = 0
    if model_name == "boosted":
        return boosted.formula_param_count(num_classes)
    if model_name == "linear":  # standardisation (mean, scale) of the statistics, then the classifier
        statistics = (config.segments + 1) * keypoint_dim
        counts["keypoints"] = 2 * statistics
        counts["head"] = num_classes * (statistics + 1)
        counts["total"] = sum(counts.values())
        return counts
    if "keypoints" in model_inputs(model_name) and config.keypoint_encoder == "conv_gru":
        width, units = config.lstm_units[0], config.lstm_units[-1]
        counts["keypoints"] += width * (keypoint_dim + 1) + 2 * width  # projection + layer norm
        counts["keypoints"] += 2 * (width * (config.kernel_size * width + 1) + 2 * width)  # 2 x (conv + norm)
        counts["keypoints"] += 3 * units * (width + units + 2)  # GRU: 3 gates, two biases (reset_after)
        feature_size += units + width
    elif "keypoints" in model_inputs(model_name) and config.keypoint_encoder == "transformer":
        width = config.lstm_units[0]
        counts["keypoints"] += width * (keypoint_dim + 1) + 2 * width  # projection + layer norm
        counts["keypoints"] += 2 * (width * (config.kernel_size * width + 1) + 2 * width)  # 2 x (conv + norm)
        counts["keypoints"] += config.num_frames * width  # position embedding
        block = 4 * (width * width + width) + 2 * 2 * width  # query, key, value, output + two layer norms
        block += width * 2 * width + 2 * width + 2 * width * width + width  # MLP width -> 2 width -> width
        counts["keypoints"] += config.transformer_blocks * block + 2 * width  # + the final layer norm
        feature_size += 2 * width  # mean and max over time
    elif "keypoints" in model_inputs(model_name):
        size_in = keypoint_dim
        for units in config.lstm_units:  # 4 gates x (input + recurrent weights + one bias)
            counts["keypoints"] += 4 * units * (size_in + units + 1)
            size_in = units
        feature_size += size_in
    if "frames" in model_inputs(model_name):
        area, channels = frame_kernel_size(config) ** 2, 3
        for filters in config.convlstm_filters:
            counts["frames"] += 4 * filters * (area * (channels + filters) + 1)  # ConvLSTM
            counts["frames"] += 4 * filters  # BatchNorm: gamma, beta, moving mean, moving variance
            channels = filters
        counts["frames"] += config.reduce_channels * (area * channels + 1)
        feature_size += config.image_size ** 2 * config.reduce_channels
    for units in config.head_units:
        counts["head"] += units * (feature_size + 1)
        feature_size = units
    counts["head"] += num_classes * (feature_size + 1)
    if model_name == "lstm" and config.linear_blend > 0:  # the linear branch on the same inputs
        statistics = (config.segments + 1) * keypoint_dim
        counts["keypoints"] += 2 * statistics
        counts["head"] += num_classes * (statistics + 1)
    counts["total"] = sum(counts.values())
    return counts


def original_param_count(num_classes: int = 11) -> int:
    """The PyTorch original's fused count: ours at seed shapes + 3 peephole maps per ConvLSTM + a 2nd LSTM bias."""
    seed = get_config("fused", "seed")
    ours = formula_param_count("fused", seed, num_classes)
    peepholes = sum(3 * f * seed.image_size ** 2 for f in seed.convlstm_filters)
    second_bias = sum(4 * units for units in seed.lstm_units)
    moving_stats = sum(2 * f for f in seed.convlstm_filters)  # buffers in PyTorch, not parameters
    return ours["total"] + peepholes + second_bias - moving_stats


def describe(config: ModelConfig) -> str:
    """One line: name, shapes and key sizes of a configuration."""
    encoder = "LSTM" if config.keypoint_encoder == "lstm" else config.keypoint_encoder
    return (f"{config.name}: T={config.num_frames}, S={config.image_size}, {encoder} {config.lstm_units}, "
            f"ConvLSTM {config.convlstm_filters} {frame_kernel_size(config)}x{frame_kernel_size(config)}"
            f"{f' after a strided stem {config.frame_stem}' if config.frame_stem else ''}, head {config.head_units}, "
            f"dropout {config.dropout}, lr {config.learning_rate:g}, batch {config.batch_size}, "
            f"frame input {config.frame_input}{', test-time flip averaging' if config.test_time_flip else ''}, "
            f"fusion {config.fusion}{' (staged)' if config.staged else ''}, "
            f"{config.epochs} epochs{f', {config.ensemble} seeds averaged' if config.ensemble > 1 else ''} — "
            f"{config.description}")


__all__ = ["MODEL_NAMES", "CONFIGS", "ModelConfig", "ConvLSTM", "LastTimeStep", "ModalityDropout", "LogitFusion",
           "BlendProbabilities", "MirrorViews", "AverageViews", "mirror_views", "neural_part", "linear_output_layer",
           "branch_models", "fusion_layers", "with_test_time_flip", "ensemble_model", "ensemble_members",
           "check_ensemble", "with_compute_dtype", "FRAME_INPUTS", "FUSIONS", "get_config", "config_names",
           "build_model", "compile_model", "classification_loss", "PositionEmbedding", "SparseSmoothedCrossentropy",
           "count_params", "formula_param_count", "original_param_count",
           "learning_rate_at", "model_inputs", "describe", "ORIGINAL_PARAM_COUNT"]
