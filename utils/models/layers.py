"""The course's own Keras layers, plain: the ConvLSTM, the late fusion of branches, test-time flip averaging
and the smoothed loss. A faster copy of the ConvLSTM for inference lives in :mod:`utils.models.fast`."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from utils.errors import ConfigError


def _gate_arithmetic(
    activation: Any, recurrent_activation: Any, from_frame: Any, from_hidden: Any, bias: Any, cell: Any
) -> tuple[Any, Any]:
    """ConvLSTM2D's step: gates = frame term + hidden term + bias, split i, f, c, o -> (hidden, cell).

    ``from_hidden`` and ``cell`` are None at the first step (the zero state contributes nothing)."""
    gates = from_frame + bias
    if from_hidden is not None:
        gates = gates + from_hidden
    gate_i, gate_f, gate_c, gate_o = ops.split(gates, 4, axis=-1)
    new_part = recurrent_activation(gate_i) * activation(gate_c)
    cell = new_part if cell is None else recurrent_activation(gate_f) * cell + new_part
    return recurrent_activation(gate_o) * activation(cell), cell


@keras.saving.register_keras_serializable(package="course")
class ConvLSTM(keras.layers.Layer):
    """ConvLSTM2D over (batch, T, H, W, C) with keras.layers.ConvLSTM2D's exact equations, written out.

    Per step t, from the frame x_t and the previous hidden state h and cell c (both zero at the start):

        gates = conv(x_t, kernel) + conv(h, recurrent_kernel) + bias      # all four gates at once, 4F
        channels i, f, g, o = split(gates)                                          # input, forget,
        candidate, output c = sigmoid(f) * c + sigmoid(i) * tanh(g);   h = sigmoid(o) * tanh(c)

    One convolution of the frame and one of the hidden state per step, each producing all four gates
    (ConvLSTM2D runs eight smaller ones), unrolled over T: faster on a CPU, the same numbers. Weights are laid
    out as in ConvLSTM2D (``kernel (k, k, C, 4F)``, ``recurrent_kernel (k, k, F, 4F)``, ``bias (4F)``, gates
    i, f, c, o), so ``set_weights(stock.get_weights())`` works. Padding "same", strides 1; T must be known
    when built.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        return_sequences: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop(
            "fused_gates", None
        )  # saved by earlier versions (compiled gates now live in utils.models.fast)
        super().__init__(**kwargs)
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
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels, 4 * filters),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (filters, 4 * filters),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
        )

        def bias_initializer(shape: tuple, dtype: Any = None) -> Any:
            forget = ops.ones((filters,), dtype) if self.unit_forget_bias else ops.zeros((filters,), dtype)
            zeros = ops.zeros((filters,), dtype)
            return ops.concatenate([zeros, forget, zeros, zeros])

        self.bias = self.add_weight(
            shape=(4 * filters,), name="bias", initializer=bias_initializer, regularizer=self.bias_regularizer
        )

    def call(self, inputs: Any) -> Any:
        """Run the recurrence over all T frames; returns (B, T, H, W, F) or the last step (B, H, W, F)."""
        hidden = cell = None
        outputs = []
        for frame in ops.unstack(inputs, inputs.shape[1], axis=1):
            from_frame = ops.conv(frame, self.kernel, padding="same")
            # the first step's recurrent term is a convolution of the zero state, i.e. zero: skipped
            from_hidden = None if hidden is None else ops.conv(hidden, self.recurrent_kernel, padding="same")
            hidden, cell = _gate_arithmetic(
                self.activation, self.recurrent_activation, from_frame, from_hidden, self.bias, cell
            )
            outputs.append(hidden)
        return ops.stack(outputs, axis=1) if self.return_sequences else hidden

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(B, T, H, W, F) with return_sequences, else (B, H, W, F)."""
        batch, frames, height, width, _ = input_shape
        if self.return_sequences:
            return (batch, frames, height, width, self.filters)
        return (batch, height, width, self.filters)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "return_sequences": self.return_sequences,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "unit_forget_bias": self.unit_forget_bias,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
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


@keras.saving.register_keras_serializable(package="course")
class LogitFusion(keras.layers.Layer):
    """softmax(sum_k w_k log p_k): the branches' log-probabilities, weighted and renormalised.

    One learned weight per branch, w_k = softplus(a_k), starting at 1 (a product of experts). A weight near 0
    silences its branch, so a branch that does not help can be switched off.
    """

    def __init__(self, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if gated:  # per-clip weights: an option of earlier versions that lost in the fusion study
            raise ConfigError("gated fusion is no longer part of the course; use fusion='logits'")

    def build(self, input_shape: list) -> None:
        """One raw weight per branch, starting at softplus^-1(1) = 0.5413."""
        self.branch_weights = self.add_weight(
            shape=(len(input_shape),), name="branch_weights", initializer=keras.initializers.Constant(0.5413)
        )

    def weights_for(self, inputs: list[Any] | None = None) -> Any:
        """The branch weights (K,)."""
        return ops.softplus(self.branch_weights)

    def call(self, inputs: list[Any]) -> Any:
        """Inputs: K log-probability tensors (B, C); output probabilities (B, C)."""
        weights = self.weights_for()
        mixed = sum(weights[index] * log_probs for index, log_probs in enumerate(inputs))
        return ops.softmax(mixed, axis=-1)

    def compute_output_shape(self, input_shape: list) -> tuple:
        """(B, C)."""
        return tuple(input_shape[0])


FLIP_VIEWS = {"keypoints": "same", "frames": "frames", "hands": "hands"}  # how MirrorViews mirrors each input


@keras.saving.register_keras_serializable(package="course")
class MirrorViews(keras.layers.Layer):
    """Test-time flip averaging, first half: at inference the batch followed by its mirror image (2B clips);
    in training the batch unchanged.

    ``kind``: "frames" (B, T, S, S, C) flipped left/right; "hands" (B, T, 2, C, C, 3) flipped and swapped
    (the left hand's crop becomes the right one's), as :func:`utils.inputs.mirror_clips` does to raw clips;
    "same": keypoints prepared with the dominant hand on the right, so a mirrored clip's prepared keypoints
    are the clip's own.
    """

    def __init__(self, kind: str = "frames", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in set(FLIP_VIEWS.values()):
            raise ConfigError(
                f"unknown MirrorViews kind {kind!r}; use one of {sorted(set(FLIP_VIEWS.values()))}"
            )
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


def mirror_views(inputs: dict[str, Any], config: Any) -> dict[str, Any]:
    """The model inputs, each through :class:`MirrorViews` when ``config.test_time_flip`` (else unchanged).

    Keypoints need no mirroring only when their preprocessing puts the dominant hand on one side (``mirror``):
    otherwise a mirrored clip's prepared keypoints differ from the clip's own, which the model cannot
    recompute."""
    if not config.test_time_flip:
        return inputs
    if "keypoints" in inputs and not config.preprocessing.get("mirror"):
        raise ConfigError(
            f"test_time_flip with keypoints needs preprocessing mirror='motion' or 'height' (the "
            f"dominant hand on one side), got mirror={config.preprocessing.get('mirror')!r}: set "
            "test_time_flip=False, or put the dominant hand on one side"
        )
    if config.preprocessing.get("draw_landmarks"):
        raise ConfigError(
            "test_time_flip is not available with draw_landmarks=True (the drawn left and right "
            "hands would not swap): set one of them off"
        )
    return {
        name: MirrorViews(FLIP_VIEWS[name], name=f"{name}_mirror_views")(tensor)
        for name, tensor in inputs.items()
    }


@keras.saving.register_keras_serializable(package="course")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of probabilities against integer labels smoothed to (1 - s) one-hot + s /
    classes (Keras's sparse loss has no label smoothing)."""

    def __init__(
        self, label_smoothing: float = 0.0, name: str = "sparse_smoothed_crossentropy", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-clip loss: the labels one-hot encoded, then Keras's categorical cross-entropy with
        smoothing."""
        one_hot = ops.one_hot(
            ops.reshape(ops.cast(y_true, "int32"), (-1,)), ops.shape(y_pred)[-1], dtype=y_pred.dtype
        )
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        """Serialisable settings (saved with a compiled model)."""
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def classification_loss(config: Any) -> Any:
    """The training loss: sparse categorical cross-entropy, with ``config.label_smoothing`` when above 0."""
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError(
            f"label_smoothing {config.label_smoothing} is out of range; use a value in [0, 1) (0 = none)"
        )
    if config.label_smoothing == 0.0:
        return "sparse_categorical_crossentropy"
    return SparseSmoothedCrossentropy(config.label_smoothing)
