"""Build the models from a configuration: the keypoint branch, the frame branch, their fusion, the head.

Read it top to bottom: :func:`build_model` at the end calls the branch builders above it. The original
(Kaushik 2022, PyTorch) is, exactly:

* keypoints (T=30, 1662) -> ``LSTMCell(1662, 512)`` -> ``LSTMCell(512, 512)``, last hidden state (512);
* frames (T=30, 64, 64, 3) -> ConvLSTM(16 filters, 5x5, "same", ReLU cell activation) -> BatchNorm3d
  -> ConvLSTM(16, 5x5) -> BatchNorm3d -> last time step -> Conv2d(16 -> 3, 5x5, "same") -> flatten (12288);
* the two concatenated (12800) -> ``Linear(12800, 11)``: no hidden layer, no dropout;
* Adam(lr 1e-4, weight_decay 0.8), MultiStepLR(milestones [60, 150], gamma 0.1), batch 64,
  cross-entropy; 7,174,718 parameters.

Its ConvLSTM cell also has "peephole" weights (one per channel *and pixel*) created with ``torch.Tensor(...)``
and never initialised. We use the standard Keras ConvLSTM2D equations without peepholes; that and Keras's
single LSTM bias (PyTorch has two) are the differences in parameter count (:func:`formula_param_count`).
Three defects of its models are fixed here: keypoints reshaped with ``view`` instead of transposed (clips of a
batch mixed across time; here batch-first throughout), LSTM states re-initialised at random on every call
(here zero initial states, deterministic answers), and 11 outputs for 10 classes (here ``num_classes``).

Weight decay: PyTorch's ``Adam(weight_decay=wd)`` adds ``wd * w`` to every parameter's gradient, i.e. it
minimises ``loss + wd/2 * sum(w**2)``; ``ModelConfig.l2`` holds ``wd`` and every weight gets
``keras.regularizers.L2(wd / 2)``, the same gradient.

Fusion (``frame_input``, ``fusion``, ``staged``): the frame branch sees whole thumbnails (``"frames"``), the
two hand crops stacked as 6 channels (``"hands"``) or both. ``fusion="concat"`` is the original's
concatenation under one head; ``"logits"`` gives every branch its own head and combines their
log-probabilities with one learned weight per branch (:class:`~utils.models.layers.LogitFusion`).
``staged=True`` trains each branch alone, then only the fusion weights on the validation signers
(``utils.training``).
"""

from __future__ import annotations

from typing import Any

import keras

from utils.errors import ConfigError
from utils.models import boosted
from utils.models.config import (
    BRANCHES,
    CONVLSTM_IMPLS,
    FRAME_POOLINGS,
    FUSIONS,
    KEYPOINT_ENCODERS,
    ModelConfig,
    _check_model_name,
    frame_kernel_size,
    get_config,
    model_inputs,
)
from utils.models.layers import (
    AverageViews,
    ConvLSTM,
    LastTimeStep,
    LogitFusion,
    classification_loss,
    mirror_views,
)
from utils.models.linear import linear_model


def _regularizer(config: ModelConfig) -> keras.regularizers.Regularizer | None:
    """L2(wd/2): the Keras penalty whose gradient equals PyTorch's Adam weight_decay wd."""
    return keras.regularizers.L2(config.l2 / 2) if config.l2 > 0 else None


def _batch_norm(config: ModelConfig, name: str) -> keras.layers.Layer:
    """BatchNorm with PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5), per channel."""
    reg = _regularizer(config)
    return keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, beta_regularizer=reg, gamma_regularizer=reg, name=name
    )


def _convlstm_layer(config: ModelConfig, filters: int, impl: str, name: str) -> keras.layers.Layer:
    """One ConvLSTM layer (return_sequences=True), ours or keras.layers.ConvLSTM2D."""
    reg = _regularizer(config)
    common = dict(
        filters=filters,
        kernel_size=frame_kernel_size(config),
        activation=config.convlstm_activation,
        return_sequences=True,
        kernel_regularizer=reg,
        recurrent_regularizer=reg,
        bias_regularizer=reg,
        name=name,
    )
    if impl == "fast":
        return ConvLSTM(**common)
    if impl == "stock":
        return keras.layers.ConvLSTM2D(padding="same", **common)
    raise ValueError(f"unknown convlstm_impl {impl!r}; use one of {', '.join(CONVLSTM_IMPLS)}")


def _keypoint_branch(keypoints: Any, config: ModelConfig) -> Any:
    """The keypoint encoder of ``config.keypoint_encoder``: "lstm" (:func:`_lstm_encoder`, the original's) or
    "conv_gru" (:func:`_conv_gru_encoder`, the recommended one)."""
    if config.keypoint_encoder == "lstm":
        return _lstm_encoder(keypoints, config)
    if config.keypoint_encoder == "conv_gru":
        return _conv_gru_encoder(keypoints, config)
    raise ConfigError(
        f"unknown keypoint_encoder {config.keypoint_encoder!r}; use one of {', '.join(KEYPOINT_ENCODERS)}"
    )


def _lstm_encoder(keypoints: Any, config: ModelConfig) -> Any:
    """Stacked LSTMs from zero initial state, batch-first; returns the last layer's last output."""
    reg = _regularizer(config)
    x = keypoints
    for index, units in enumerate(config.lstm_units):
        last = index == len(config.lstm_units) - 1
        x = keras.layers.LSTM(
            units,
            return_sequences=not last,
            kernel_regularizer=reg,
            recurrent_regularizer=reg,
            bias_regularizer=reg,
            name=f"keypoints_lstm{index + 1}",
        )(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"keypoints_dropout{index + 1}")(x)
    return x


def _conv_gru_encoder(keypoints: Any, config: ModelConfig) -> Any:
    """Per-frame Dense projection, residual 1D convolutions over time (kernel_size), then a GRU and the time
    mean.

    Widths are ``config.lstm_units``: the first is the projection and convolution width, the last the GRU's.
    The GRU's last state (order) and the mean over time of the convolution features (what happened) are
    concatenated, as in the 1D-CNN + RNN models of the Kaggle isolated-sign competitions.
    """
    x = _conv_stem(keypoints, config)
    recurrent = keras.layers.GRU(
        config.lstm_units[-1],
        kernel_regularizer=_regularizer(config),
        recurrent_regularizer=_regularizer(config),
        name="keypoints_gru",
    )(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="keypoints_mean")(x)
    x = keras.layers.Concatenate(name="keypoints_features")([recurrent, pooled])
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name="keypoints_dropout")(x)
    return x


def _conv_stem(keypoints: Any, config: ModelConfig) -> Any:
    """Per-frame Dense(lstm_units[0]) + LayerNorm + swish, then two residual Conv1D (kernel_size) blocks over
    time."""
    reg = _regularizer(config)
    width = config.lstm_units[0]
    x = keras.layers.Dense(width, kernel_regularizer=reg, name="keypoints_project")(keypoints)
    x = keras.layers.LayerNormalization(name="keypoints_project_norm")(x)
    x = keras.layers.Activation("swish", name="keypoints_project_act")(x)
    for index in range(2):
        y = keras.layers.Conv1D(
            width,
            config.kernel_size,
            padding="same",
            kernel_regularizer=reg,
            name=f"keypoints_conv{index + 1}",
        )(x)
        y = keras.layers.LayerNormalization(name=f"keypoints_conv{index + 1}_norm")(y)
        y = keras.layers.Activation("swish", name=f"keypoints_conv{index + 1}_act")(y)
        if config.dropout > 0:
            y = keras.layers.Dropout(config.dropout / 2, name=f"keypoints_conv{index + 1}_dropout")(y)
        x = keras.layers.Add(name=f"keypoints_residual{index + 1}")([x, y])
    return x


def _frame_stem(x: Any, config: ModelConfig, prefix: str) -> Any:
    """Per frame: strided 3x3 convolutions (ReLU, BatchNorm), each halving the image side, before the
    ConvLSTM."""
    reg = _regularizer(config)
    for index, filters in enumerate(config.frame_stem):
        conv = keras.layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            kernel_regularizer=reg,
            bias_regularizer=reg,
        )
        x = keras.layers.TimeDistributed(conv, name=f"{prefix}_stem{index + 1}")(x)
        x = _batch_norm(config, name=f"{prefix}_stem{index + 1}_batchnorm")(x)
    return x


def _frame_branch(frames: Any, config: ModelConfig, impl: str, prefix: str = "frames") -> Any:
    """Rescale uint8 frames, the optional strided stem, ConvLSTM + BatchNorm per layer, last step, then a
    reduce-conv and flatten (``frame_pooling="flatten"``, the original) or a global average over the image
    ("average")."""
    if config.frame_pooling not in FRAME_POOLINGS:
        raise ConfigError(
            f"unknown frame_pooling {config.frame_pooling!r}; use one of {', '.join(FRAME_POOLINGS)}"
        )
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
        x = keras.layers.Conv2D(
            config.reduce_channels,
            frame_kernel_size(config),
            padding="same",
            kernel_regularizer=reg,
            bias_regularizer=reg,
            name=f"{prefix}_reduce",
        )(x)
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


def _head(
    features: Any,
    config: ModelConfig,
    num_classes: int,
    prefix: str = "head",
    output_name: str = "probabilities",
    activation: str | None = "softmax",
) -> Any:
    """Optional hidden Dense layers, then num_classes outputs (softmax 'probabilities' by default)."""
    reg = _regularizer(config)
    x = features
    for index, units in enumerate(config.head_units):
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=reg,
            bias_regularizer=reg,
            name=f"{prefix}_dense{index + 1}",
        )(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"{prefix}_dropout{index + 1}")(x)
    # the last layer is linear: the mean of its inputs gives the mean of the two logits
    if config.test_time_flip:
        x = AverageViews(name=f"{prefix}_views_mean")(x)
    # float32 even under a mixed_float16 policy (GPUs): a float16 softmax loses small probabilities
    return keras.layers.Dense(
        num_classes,
        activation=activation,
        kernel_regularizer=reg,
        bias_regularizer=reg,
        dtype="float32",
        name=output_name,
    )(x)


def _branch_features(inputs: dict[str, Any], config: ModelConfig, impl: str) -> dict[str, Any]:
    """Each input's branch: the keypoint LSTM, the whole-frame ConvLSTM or the hand-crop ConvLSTM."""
    builders = {
        "keypoints": lambda x: _keypoint_branch(x, config),
        "frames": lambda x: _frame_branch(x, config, impl),
        "hands": lambda x: _hands_branch(x, config, impl),
    }
    return {name: builders[name](tensor) for name, tensor in inputs.items()}


def _fused_output(features: dict[str, Any], config: ModelConfig, num_classes: int) -> Any:
    """The fused probabilities: one head on the concatenated features ("concat", the original), or each branch
    a classifier of its own whose log-probabilities are weighted and summed ("logits",
    :class:`LogitFusion`)."""
    if config.fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {config.fusion!r}; use one of {', '.join(FUSIONS)}")
    if config.fusion == "concat":
        return _head(keras.layers.Concatenate(name="fuse")(list(features.values())), config, num_classes)
    log_probs = []
    for name, branch in features.items():  # "<branch>_logits": trainable alone (staged training)
        logits = _head(
            branch, config, num_classes, prefix=f"{name}_head", output_name=f"{name}_logits", activation=None
        )
        log_probs.append(
            keras.layers.Activation("log_softmax", dtype="float32", name=f"{name}_log_probabilities")(logits)
        )
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
        raise ConfigError(
            f"ensemble={size} for the {model_name} model: its fit does not depend on the seed, so every "
            "member would be the same; use ensemble=1"
        )
    return size


def ensemble_model(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model from networks with the same inputs and outputs: each a sub-model ("member1", "member2", ...)
    of shared inputs, the output "probabilities" the mean of their probabilities (one member: that member
    itself).

    Saved, loaded, evaluated and exported like any model; :func:`ensemble_members` gives the members back."""
    if len(members) == 1:
        return members[0]
    inputs = [
        keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=tensor.name.split(":")[0])
        for tensor in members[0].inputs
    ]
    outputs = []
    for index, member in enumerate(members):
        renamed = keras.Model(member.inputs, member.output, name=f"{MEMBER_PREFIX}{index + 1}")
        outputs.append(renamed(inputs))
    mean = keras.layers.Average(dtype="float32", name="probabilities")(outputs)
    return keras.Model(inputs, mean, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of a model built by :func:`ensemble_model`, in order; ``[model]`` for a single network."""
    members = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model)
        and layer.name.startswith(MEMBER_PREFIX)
        and layer.name[len(MEMBER_PREFIX) :].isdigit()
    ]
    return sorted(members, key=lambda m: int(m.name[len(MEMBER_PREFIX) :])) or [model]


def branch_models(model: keras.Model) -> dict[str, keras.Model]:
    """Each branch of a late-fusion model as a model of its own: its input -> its own softmax (shared
    layers)."""
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
    """The layers of a late-fusion model that combine the branches (what the second stage of staged training
    fits)."""
    return [layer for layer in model.layers if isinstance(layer, LogitFusion)]


def build_model(
    model_name: str,
    config: ModelConfig | None = None,
    num_classes: int = 10,
    keypoint_dim: int = 1662,
    convlstm_impl: str | None = None,
) -> keras.Model:
    """Uncompiled functional model 'lstm', 'convlstm' or 'fused'; inputs 'keypoints' (T, keypoint_dim) and/or
    'frames' (T, S, S, 3, raw 0..255) and/or 'hands' (T, 2, C, C, 3), output 'probabilities' (num_classes
    softmax).

    ``config.frame_input`` picks the frame inputs, ``config.fusion`` how a fused model combines its
    branches."""
    _check_model_name(model_name)
    config = config or get_config(model_name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if check_ensemble(model_name, config) > 1:  # members with their own initial weights, averaged
        single = config.replace(ensemble=1)
        members = [
            build_model(model_name, single, num_classes, keypoint_dim, convlstm_impl)
            for _ in range(config.ensemble)
        ]
        return ensemble_model(members, name=f"{model_name}_{config.name}")
    if model_name == "linear":
        if config.test_time_flip:
            raise ConfigError(
                "test_time_flip is not available for the linear model (scikit-learn weights, no mirror "
                "view): set test_time_flip=False"
            )
        return linear_model(config, num_classes, keypoint_dim)
    if model_name == "boosted":  # the trees scikit-learn fits, as a Keras layer (utils/models/boosted.py)
        return boosted.build_boosted_model(config, num_classes, keypoint_dim)
    impl = convlstm_impl or config.convlstm_impl
    if impl not in CONVLSTM_IMPLS:
        raise ValueError(f"unknown convlstm_impl {impl!r}; use one of {', '.join(CONVLSTM_IMPLS)}")
    size, frames_count = config.image_size, config.num_frames
    shapes = {
        "keypoints": (frames_count, keypoint_dim),
        "frames": (frames_count, size, size, 3),
        "hands": (frames_count, 2, config.hand_size, config.hand_size, 3),
    }
    inputs = {
        name: keras.Input(shapes[name], dtype="float32", name=name)
        for name in model_inputs(model_name, config)
    }
    features = _branch_features(mirror_views(inputs, config), config, impl)
    if len(features) == 1:
        outputs = _head(next(iter(features.values())), config, num_classes)
    else:
        outputs = _fused_output(features, config, num_classes)
    return keras.Model(list(inputs.values()), outputs, name=f"{model_name}_{config.name}")


def with_test_time_flip(
    model: keras.Model, model_name: str, config: ModelConfig, flip: bool = True
) -> keras.Model:
    """The same trained model rebuilt with ``test_time_flip=flip`` (weights copied layer by layer, by
    name)."""
    keypoints = {t.name.split(":")[0]: t.shape[-1] for t in model.inputs}.get("keypoints", 1662)
    rebuilt = build_model(
        model_name,
        config.replace(test_time_flip=flip),
        num_classes=int(model.output.shape[-1]),
        keypoint_dim=int(keypoints),
    )
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def default_jit_compile() -> bool | str:
    """XLA only with a GPU: on CPU, XLA's convolutions are slower than TensorFlow's oneDNN ones."""
    from utils.config import gpu_available

    return "auto" if gpu_available() else False


def compile_model(
    model: keras.Model, config: ModelConfig, jit_compile: bool | str | None = None
) -> keras.Model:
    """Compile with Adam(config.learning_rate), sparse categorical cross-entropy and accuracy; returns the
    model.

    ``jit_compile=None`` picks :func:`default_jit_compile` (Keras's own default, "auto", turns XLA on for
    CPUs too).
    """
    jit_compile = default_jit_compile() if jit_compile is None else jit_compile
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=classification_loss(config),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def count_params(model: keras.Model) -> dict[str, int]:
    """Parameters per branch: {'keypoints', 'frames', 'head', 'total'} (+ 'hands'; batch-norm moving stats
    included); an ensemble's are the sums over its members."""
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


def formula_param_count(
    model_name: str, config: ModelConfig, num_classes: int, keypoint_dim: int = 1662
) -> dict[str, int]:
    """Parameter counts from the layer formulas (Keras layers), same keys as :func:`count_params` (concat
    fusion of keypoints and whole frames only)."""
    _check_model_name(model_name)
    if (
        config.frame_input != "frames"
        or config.fusion != "concat"
        or config.frame_stem
        or config.frame_pooling != "flatten"
    ):
        raise ConfigError(
            "formula_param_count covers the original's layout only (frame_input='frames', "
            f"fusion='concat', no frame_stem, frame_pooling='flatten'), got {config.frame_input!r} / "
            f"{config.fusion!r} / {config.frame_stem!r} / {config.frame_pooling!r}"
        )
    if config.ensemble > 1:  # that many members, each a single network
        single = formula_param_count(model_name, config.replace(ensemble=1), num_classes, keypoint_dim)
        return {key: value * config.ensemble for key, value in single.items()}
    if model_name == "boosted":
        return boosted.formula_param_count(num_classes)
    counts = {"keypoints": 0, "frames": 0, "head": 0}
    feature_size = 0
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
        feature_size += config.image_size**2 * config.reduce_channels
    for units in config.head_units:
        counts["head"] += units * (feature_size + 1)
        feature_size = units
    counts["head"] += num_classes * (feature_size + 1)
    counts["total"] = sum(counts.values())
    return counts


def original_param_count(num_classes: int = 11) -> int:
    """The PyTorch original's fused count: ours at its shapes + 3 peephole maps per ConvLSTM + a 2nd LSTM
    bias."""
    original = get_config("fused", "original")
    ours = formula_param_count("fused", original, num_classes)
    peepholes = sum(3 * f * original.image_size**2 for f in original.convlstm_filters)
    second_bias = sum(4 * units for units in original.lstm_units)
    moving_stats = sum(2 * f for f in original.convlstm_filters)  # buffers in PyTorch, not parameters
    return ours["total"] + peepholes + second_bias - moving_stats
