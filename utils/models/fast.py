"""The fast inference copy of a trained model: the same function, less work on a CPU. Opt-in.

What ``predict``, ``evaluate``, ``export`` and the webcam run when asked for speed (``--fast``; the run's
answer then says "fast inference copy"). The model a student reads and trains is :mod:`utils.models.build`;
this module only rewrites a trained one:

* :func:`inference_model`: each frame branch's ConvLSTM layers and batch norms as one :class:`ConvLSTMStack`
  (the layers advance together, each batch norm is folded into the next convolution, the first step skips the
  forget gate), with the gate arithmetic XLA-compiled for large gate maps;
* :func:`with_compute_dtype`: a copy computing in bfloat16 (faster on CPUs with AVX512-BF16 / AMX only).

``tests/test_models.py`` checks that both compute the same outputs as the plain model (within rounding).
"""

from __future__ import annotations

import functools
from typing import Any

import keras
from keras import ops

from utils.errors import ConfigError
from utils.models.layers import ConvLSTM, LastTimeStep, _gate_arithmetic

#: Gate maps (H x W x 4F values per image) from which compiling the gate arithmetic pays: the original's
# : 64 x 64 x 64 = 262,144 does (benchmarks/README.md), the recommended models' small maps after the stem do
# not.
FUSED_GATES_MIN_ELEMENTS = 65536

_COMPILED_GATES: dict[tuple[Any, ...], Any] = {}


def _compiled_gates(activation: Any, recurrent_activation: Any, arithmetic: Any = _gate_arithmetic) -> Any:
    """``arithmetic`` (:func:`_gate_arithmetic`, or :func:`_first_gate_arithmetic` for
    :class:`ConvLSTMStack`'s first step) for these activations as one XLA-compiled TensorFlow function (made
    once per key)."""
    key = (activation, recurrent_activation) + (
        () if arithmetic is _gate_arithmetic else (arithmetic.__name__,)
    )
    if key not in _COMPILED_GATES:
        import tensorflow as tf

        _COMPILED_GATES[key] = tf.function(
            functools.partial(arithmetic, activation, recurrent_activation), jit_compile=True, autograph=False
        )
    return _COMPILED_GATES[key]


def _first_gate_arithmetic(
    activation: Any, recurrent_activation: Any, from_frame: Any, bias: Any
) -> tuple[Any, Any]:
    """The first step's gates from the i, c, o channels only (the forget gate multiplies the zero cell
    state)."""
    gate_i, gate_c, gate_o = ops.split(from_frame + bias, 3, axis=-1)
    cell = recurrent_activation(gate_i) * activation(gate_c)
    return recurrent_activation(gate_o) * activation(cell), cell


def _without_forget_gate(values: Any, filters: int) -> Any:
    """The i, c, o quarters of a gate-ordered last axis (i, f, c, o), the forget gate's quarter left out."""
    import numpy as np

    return np.concatenate([values[..., :filters], values[..., 2 * filters :]], axis=-1)


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
    """Inference only: :class:`ConvLSTM` layers, each followed by its batch norm, then the last time step, as
    one layer.

    Computes what ``ConvLSTM -> BatchNormalization -> ... -> ConvLSTM -> BatchNormalization -> LastTimeStep``
    does at inference (outputs equal within float32 rounding), with less work: the layers advance together
    step by step, so no sequence of hidden states is stacked, normalised and unstacked again; each batch norm
    but the last is folded into the next layer's input convolution (kernel times the scale; the shift,
    convolved with "same" zero padding, becomes a bias per pixel, ``(H, W, 4F)``); the last batch norm is
    applied to the last step only; the first step convolves the input to the i, c, o gates only (the forget
    gate multiplies the zero cell state). Made by :func:`inference_model` from a trained model's layers
    (:meth:`from_layers`); it has no gradient path worth training: train the original model.
    """

    def __init__(
        self,
        filters: tuple[int, ...],
        kernel_size: int | tuple[int, int],
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        fused_gates: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.fused_gates = bool(fused_gates)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape: tuple) -> None:
        """Per layer: input kernel, the first step's input kernel (i, c, o), recurrent kernel, bias (a vector
        for the first layer, one per pixel after a folded batch norm), the first step's bias; the last batch
        norm's affine."""
        if input_shape[1] is None or None in input_shape[2:]:
            raise ValueError(
                f"ConvLSTMStack needs a known number of frames and image size, got {input_shape}"
            )
        height, width, channels = input_shape[2:]
        self.kernels, self.first_kernels, self.recurrent_kernels, self.biases, self.first_biases = (
            [],
            [],
            [],
            [],
            [],
        )
        for index, filters in enumerate(self.filters):
            inputs = channels if index == 0 else self.filters[index - 1]
            bias_shape = (4 * filters,) if index == 0 else (height, width, 4 * filters)
            shapes = {
                "kernel": self.kernel_size + (inputs, 4 * filters),
                "first_kernel": self.kernel_size + (inputs, 3 * filters),
                "recurrent_kernel": self.kernel_size + (filters, 4 * filters),
                "bias": bias_shape,
                "first_bias": bias_shape[:-1] + (3 * filters,),
            }
            made = {
                name: self.add_weight(
                    shape=shape, name=f"{name}{index + 1}", initializer="zeros", trainable=False
                )
                for name, shape in shapes.items()
            }
            self.kernels.append(made["kernel"])
            self.first_kernels.append(made["first_kernel"])
            self.recurrent_kernels.append(made["recurrent_kernel"])
            self.biases.append(made["bias"])
            self.first_biases.append(made["first_bias"])
        self.scale = self.add_weight(
            shape=(self.filters[-1],), name="scale", initializer="ones", trainable=False
        )
        self.shift = self.add_weight(
            shape=(self.filters[-1],), name="shift", initializer="zeros", trainable=False
        )

    def call(self, inputs: Any) -> Any:
        """The last step's normalised hidden state (B, H, W, F_last) of the stacked layers."""
        fuse = self.fused_gates and keras.backend.backend() == "tensorflow"
        pixels = int(inputs.shape[2]) * int(inputs.shape[3])
        activations = (self.activation, self.recurrent_activation)
        gates = [
            {
                arithmetic: (
                    _compiled_gates(*activations, arithmetic)
                    if fuse and pixels * 4 * filters >= FUSED_GATES_MIN_ELEMENTS
                    else functools.partial(arithmetic, *activations)
                )
                for arithmetic in (_first_gate_arithmetic, _gate_arithmetic)
            }
            for filters in self.filters
        ]
        states: list[tuple[Any, Any]] = [(None, None)] * len(self.filters)
        x = None
        for frame in ops.unstack(inputs, inputs.shape[1], axis=1):
            x = frame
            for index in range(len(self.filters)):
                hidden, cell = states[index]
                if hidden is None:
                    hidden, cell = gates[index][_first_gate_arithmetic](
                        ops.conv(x, self.first_kernels[index], padding="same"),
                        ops.cast(self.first_biases[index].value, self.compute_dtype),
                    )
                else:
                    step = gates[index][_gate_arithmetic]
                    hidden, cell = step(
                        ops.conv(x, self.kernels[index], padding="same"),
                        ops.conv(hidden, self.recurrent_kernels[index], padding="same"),
                        ops.cast(self.biases[index].value, self.compute_dtype),
                        cell,
                    )
                states[index] = (hidden, cell)
                x = hidden
        return x * self.scale + self.shift

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(B, H, W, F_last)."""
        return (input_shape[0], input_shape[2], input_shape[3], self.filters[-1])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "fused_gates": self.fused_gates,
            }
        )
        return config

    @classmethod
    def from_layers(
        cls,
        convlstms: list[ConvLSTM],
        batch_norms: list[keras.layers.BatchNormalization],
        input_shape: tuple,
        name: str,
    ) -> ConvLSTMStack:
        """The stack of these trained layers (their weights as they are now, batch norms folded), built."""
        import numpy as np

        first = convlstms[0]
        stack = cls(
            filters=tuple(layer.filters for layer in convlstms),
            kernel_size=first.kernel_size,
            activation=keras.activations.serialize(first.activation),
            recurrent_activation=keras.activations.serialize(first.recurrent_activation),
            name=name,
            dtype=first.dtype_policy,
        )
        stack.build(tuple(input_shape))
        height, width = int(input_shape[2]), int(input_shape[3])
        for index, layer in enumerate(convlstms):
            kernel = np.asarray(layer.kernel.numpy(), "float64")
            bias = np.asarray(layer.bias.numpy(), "float64")
            if (
                index > 0
            ):  # the previous batch norm, x * scale + shift, folded into this layer's input convolution
                scale, shift = _batch_norm_affine(batch_norms[index - 1])
                shifted = np.broadcast_to(shift, (1, height, width, shift.shape[0])).astype("float32")
                bias = bias + np.asarray(
                    ops.convert_to_numpy(ops.conv(shifted, kernel.astype("float32"), padding="same"))[0],
                    "float64",
                )
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
    """The ``<prefix>_convlstm<i>`` and ``<prefix>_batchnorm<i>`` layers that feed ``last_step`` one after the
    other (:func:`_frame_branch`), or None when the layers there are not exactly that chain of
    :class:`ConvLSTM` layers."""
    prefix = last_step.name[: -len("_last_step")]
    names = {layer.name: layer for layer in model.layers}
    convlstms, batch_norms = [], []
    while f"{prefix}_convlstm{len(convlstms) + 1}" in names:
        index = len(convlstms) + 1
        convlstms.append(names[f"{prefix}_convlstm{index}"])
        batch_norms.append(names.get(f"{prefix}_batchnorm{index}"))
    if not convlstms or not all(
        isinstance(layer, ConvLSTM) and layer.return_sequences for layer in convlstms
    ):
        return None
    if not all(
        isinstance(norm, keras.layers.BatchNormalization) and norm.axis in (-1, 4, [-1], [4])
        for norm in batch_norms
    ):
        return None
    feeds = [(norm, layer) for norm, layer in zip(batch_norms, convlstms[1:])] + [
        (batch_norms[-1], last_step)
    ]
    try:  # .input/.output raise for a layer called more than once: not a chain built by _frame_branch
        chained = all(layer.input is source.output for source, layer in feeds) and all(
            norm.input is layer.output for layer, norm in zip(convlstms, batch_norms)
        )
    except (AttributeError, ValueError):
        return None
    return (convlstms, batch_norms) if chained else None


def inference_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` computing the same function at inference with less work on CPU: each frame branch's
    ConvLSTM layers, batch norms and last step run as one :class:`ConvLSTMStack` (see there; outputs equal
    within float32 rounding, ``tests/test_models.py``). Every other layer is a copy with the same weights and
    name.

    For prediction, evaluation and export (``runs.load_run`` returns it); train the model itself. A model
    without such a chain (the LSTM, the stock ``ConvLSTM2D``) comes back as it is."""
    chains: dict[
        int, Any
    ] = {}  # id of an original layer -> None (folded into a stack) or its chain (a last step)
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
        prefix = layer.name[: -len("_last_step")]
        return ConvLSTMStack.from_layers(*chain, input_shape=args[0].shape, name=f"{prefix}_convlstm_stack")(
            args[0]
        )

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call, recursive=True)
    _copy_weights(model, copy)
    return copy


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Set each layer of ``target`` that has weights to those of the layer of the same name in ``source``
    (nested models by name too); layers ``source`` lacks (a :class:`ConvLSTMStack`) keep theirs."""
    names = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if layer.name not in names:
            continue
        if isinstance(layer, keras.Model):
            _copy_weights(names[layer.name], layer)
        elif layer.weights:
            layer.set_weights(names[layer.name].get_weights())


COMPUTE_DTYPES = ("float32", "bfloat16")


def with_compute_dtype(model: keras.Model, compute_dtype: str = "bfloat16") -> keras.Model:
    """A copy of a built model that computes in ``compute_dtype`` with the same (float32) weights; outputs
    float32.

    ``"bfloat16"`` (Keras's ``mixed_bfloat16`` policy on every layer but the output layers): on a CPU with
    AVX512-BF16 or AMX, oneDNN runs the convolutions about twice as fast (the seed ConvLSTM's 5x5 convolutions
    of 16 channels: 0.90 -> 0.46 CPU ms per image and step), at bfloat16's 8-bit mantissa
    (benchmarks/README.md has the agreement with float32). On a CPU without those instructions it is slower:
    measure before using it. For inference; the model itself is left as it was."""
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
