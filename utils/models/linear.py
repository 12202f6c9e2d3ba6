"""The linear baseline as a Keras model: segment statistics of the keypoints, standardised, then one softmax
layer whose weights scikit-learn's LogisticRegression fits (:func:`set_linear_weights`). Being a Keras model,
it is saved, evaluated, exported and served like the networks."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from utils.models.config import ModelConfig


@keras.saving.register_keras_serializable(package="course")
class SegmentStatistics(keras.layers.Layer):
    """(B, T, D) -> (B, (segments + 1) * D): the mean of each of ``segments`` equal time segments, then the
    std over T.

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
        self.mean = self.add_weight(
            shape=(input_shape[-1],), initializer="zeros", trainable=False, name="mean"
        )
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", trainable=False, name="scale"
        )

    def call(self, inputs: Any) -> Any:
        """Standardise."""
        return (inputs - self.mean) / self.scale


def linear_model(config: ModelConfig, num_classes: int, keypoint_dim: int) -> keras.Model:
    """keypoints (T, D) -> segment statistics -> standardisation -> Dense(num_classes, softmax).

    Gradient descent never trains it: scikit-learn fits the last two layers (:func:`set_linear_weights`)."""
    keypoints = keras.Input((config.num_frames, keypoint_dim), dtype="float32", name="keypoints")
    x = SegmentStatistics(config.segments, name="keypoints_statistics")(keypoints)
    x = Standardize(name="keypoints_standardize")(x)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model([keypoints], probabilities, name=f"linear_{config.name}")


def linear_output_layer(model: keras.Model) -> keras.layers.Layer | None:
    """The Dense layer a scikit-learn fit goes into ("probabilities" of a linear model); None for other
    models."""
    if not any(layer.name == "keypoints_standardize" for layer in model.layers):
        return None
    return model.get_layer("probabilities")


def segment_statistics(keypoints: Any, segments: int = 3) -> Any:
    """NumPy (N, T, D) -> (N, (segments + 1) * D): what the linear model's first layer computes."""
    import numpy as np

    return np.asarray(
        ops.convert_to_numpy(SegmentStatistics(segments)(ops.convert_to_tensor(keypoints, "float32")))
    )


def set_linear_weights(
    model: keras.Model, mean: Any, scale: Any, coef: Any, intercept: Any, classes: Any = None
) -> keras.Model:
    """Copy a fitted StandardScaler (mean, scale) and LogisticRegression (coef_, intercept_) into a linear
    model.

    ``classes``: the model outputs that scikit-learn's rows belong to (its ``classes_``; default all). Outputs
    of classes absent from the training clips get zero weights and a bias of -30 (probability ~1e-13).
    scikit-learn's two-class LogisticRegression keeps one row w for the second class; softmax over
    (-w/2, +w/2) gives the same probabilities as its sigmoid(w), so each class gets half of it.
    """
    import numpy as np

    coef, intercept = np.asarray(coef, np.float32), np.asarray(intercept, np.float32)
    if coef.shape[0] == 1:
        coef, intercept = (
            np.concatenate([-coef / 2, coef / 2]),
            np.concatenate([-intercept / 2, intercept / 2]),
        )
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
    model.get_layer("keypoints_standardize").set_weights(
        [np.asarray(mean, np.float32), np.asarray(scale, np.float32)]
    )
    dense.set_weights([kernel, bias])
    return model
