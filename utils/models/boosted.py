"""A gradient-boosting baseline: scikit-learn's HistGradientBoostingClassifier on the linear model's segment
statistics.

``python -m utils train --model boosted`` fits it. The inputs are exactly the linear baseline's: the
normalised, hand-canonical keypoints of a clip (``LINEAR_PREPROCESSING``), summarised by
:class:`SegmentStatistics` (the mean of 3 time segments and the standard deviation over time of every number).
Only the classifier differs: instead of one weight per statistic and class, about a hundred rounds of small
decision trees (scikit-learn's defaults), each round correcting what the rounds before it got wrong. Trees can
use thresholds and interactions ("the index finger is bent AND the hand is high") that a linear model cannot,
and need no standardisation.

How the fitted trees become a Keras model
-----------------------------------------
Every other part of the course (evaluate, crossval, predict, the webcam, export) takes a Keras model saved as
``model.keras``. So the fitted trees are copied into one Keras layer, :class:`TreeEnsemble`, which walks every
tree at once with plain array operations: start every tree at its root; at each step read the feature of the
current node, go left when the value is at most the node's threshold (or when it is missing and the tree sends
missing values left), else right; a leaf points to itself, so after as many steps as the deepest tree every
walk has reached its leaf. The leaves' values, summed per class and added to scikit-learn's baseline, are the
raw scores; a softmax turns them into the same probabilities as ``predict_proba`` (tests/test_boosted.py
checks it). The walk uses only gathers, comparisons and selects, so the model also exports to TensorFlow Lite
like the others.

A tree compares float32 statistics with thresholds that scikit-learn keeps in float64: each threshold is
stored as the largest float32 not above it, so ``x <= threshold`` decides the same way for every float32
``x``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from utils.errors import ConfigError
from utils.models.linear import SegmentStatistics


@keras.saving.register_keras_serializable(package="course")
class TreeEnsemble(keras.layers.Layer):
    """(B, F) statistics -> (B, classes) probabilities of fitted gradient-boosted trees (weights:
    :func:`tree_weights`).

    ``trees``: number of trees; ``nodes``: nodes per tree (shorter trees are padded with leaves); ``depth``:
    steps of the walk (the deepest tree's depth); ``classes``: outputs. The weights are fixed (never trained).
    """

    def __init__(
        self, trees: int = 1, nodes: int = 1, depth: int = 0, classes: int = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.trees, self.nodes, self.depth, self.classes = int(trees), int(nodes), int(depth), int(classes)

    def build(self, input_shape: tuple) -> None:
        """One entry per node of every tree (trees one after another), each tree's leaf values per class."""
        size = self.trees * self.nodes

        def weight(name: str, shape: tuple, dtype: str) -> Any:
            return self.add_weight(shape=shape, initializer="zeros", dtype=dtype, trainable=False, name=name)

        self.feature = weight("feature", (size,), "int32")  # which statistic a node compares
        self.threshold = weight("threshold", (size,), "float32")  # go left when the statistic is at most this
        self.missing_left = weight("missing_left", (size,), "int32")  # 1: a missing (NaN) statistic goes left
        self.left = weight(
            "left", (size,), "int32"
        )  # index (in the flat arrays) of the left child; a leaf: itself
        self.right = weight("right", (size,), "int32")
        self.value = weight("value", (size, self.classes), "float32")  # a leaf's raw score for each class
        self.baseline = weight("baseline", (self.classes,), "float32")  # scikit-learn's starting raw score

    def call(self, inputs: Any) -> Any:
        """Walk every tree to its leaf, sum the leaves' scores per class, add the baseline, softmax."""
        inputs = ops.cast(inputs, "float32")
        roots = (
            ops.arange(self.trees, dtype="int32") * self.nodes
        )  # where each tree starts in the flat arrays
        node = ops.broadcast_to(ops.expand_dims(roots, 0), (ops.shape(inputs)[0], self.trees))  # (B, trees)
        for _ in range(self.depth):
            values = ops.take_along_axis(inputs, ops.take(self.feature, node), axis=1)  # (B, trees)
            missing = ops.logical_and(ops.not_equal(values, values), ops.take(self.missing_left, node) > 0)
            go_left = ops.logical_or(ops.less_equal(values, ops.take(self.threshold, node)), missing)
            node = ops.where(go_left, ops.take(self.left, node), ops.take(self.right, node))
        scores = ops.sum(ops.take(self.value, node, axis=0), axis=1) + self.baseline  # (B, classes)
        return ops.softmax(scores, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """(batch, classes)."""
        return (input_shape[0], self.classes)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "trees": self.trees,
            "nodes": self.nodes,
            "depth": self.depth,
            "classes": self.classes,
        }


def build_boosted_model(
    config: Any, num_classes: int, keypoint_dim: int, trees: int = 1, nodes: int = 1, depth: int = 0
) -> keras.Model:
    """keypoints (T, D) -> segment statistics -> :class:`TreeEnsemble` (sizes of the fitted trees; the
    defaults: one leaf of score 0, i.e. every class equally likely until :func:`fit_boosted` fills it)."""
    if config.test_time_flip:
        raise ConfigError(
            "test_time_flip is not available for the boosted model (scikit-learn trees, no mirror "
            "view): set test_time_flip=False"
        )
    keypoints = keras.Input((config.num_frames, keypoint_dim), dtype="float32", name="keypoints")
    statistics = SegmentStatistics(config.segments, name="keypoints_statistics")(
        keypoints
    )  # the linear model's
    probabilities = TreeEnsemble(trees, nodes, depth, num_classes, dtype="float32", name="probabilities")(
        statistics
    )
    return keras.Model([keypoints], probabilities, name=f"boosted_{config.name}")


def formula_param_count(num_classes: int, trees: int = 1, nodes: int = 1) -> dict[str, int]:
    """Numbers stored by a boosted model (same keys as ``models.count_params``): per node its feature,
    threshold, missing-value side, two children and one score per class, plus a baseline per class; the
    statistics have none."""
    head = trees * nodes * (5 + num_classes) + num_classes
    return {"keypoints": 0, "frames": 0, "head": head, "total": head}


def make_classifier(seed: int = 0) -> Any:
    """scikit-learn's HistGradientBoostingClassifier with its default settings and a fixed random_state."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def tree_weights(classifier: Any, num_classes: int) -> tuple[dict[str, int], list[np.ndarray]]:
    """The sizes (trees, nodes, depth) and the weights of :class:`TreeEnsemble` for a fitted classifier.
    scikit-learn fits one tree per class and round (two classes: one tree, for its second class, whose
    probability is the sigmoid of the score: a softmax over (0, score) gives the same). Classes absent from
    the training clips get a score of -30 (probability ~1e-13), as in the linear model. This reads
    scikit-learn's fitted trees (``_predictors``, ``_baseline_prediction``), which are not public: the test
    that compares the probabilities with ``predict_proba`` tells when a scikit-learn version changes them.
    """
    classes = np.asarray(
        classifier.classes_, dtype=np.int64
    )  # the model outputs scikit-learn's columns belong to
    rounds = classifier._predictors  # [round][tree of that round]
    per_round = len(rounds[0])
    owners = classes[1:] if per_round == 1 else classes  # the output each tree of a round scores
    trees = [(tree.nodes, owners[k]) for trees_of_round in rounds for k, tree in enumerate(trees_of_round)]
    nodes = max(len(found) for found, _ in trees)
    depth = max(int(found["depth"].max()) for found, _ in trees)
    size = len(trees) * nodes
    feature, missing_left = np.zeros(size, np.int32), np.zeros(size, np.int32)
    threshold = np.zeros(size, np.float32)
    left = right = np.arange(size, dtype=np.int32)  # padding nodes are leaves pointing to themselves
    left, right = left.copy(), right.copy()
    value = np.zeros((size, num_classes), np.float32)
    for index, (found, owner) in enumerate(trees):
        start, count = index * nodes, len(found)
        here = slice(start, start + count)
        leaf = found["is_leaf"].astype(bool)
        if found["is_categorical"].any():
            raise ConfigError("the boosted model takes numeric statistics only, not categorical features")
        feature[here] = np.where(leaf, 0, found["feature_idx"])
        threshold[here] = _float32_at_most(found["num_threshold"])
        missing_left[here] = found["missing_go_to_left"]
        own = np.arange(start, start + count, dtype=np.int32)
        left[here] = np.where(leaf, own, start + found["left"].astype(np.int64))
        right[here] = np.where(leaf, own, start + found["right"].astype(np.int64))
        value[here, owner] = np.where(leaf, found["value"], 0.0)
    baseline = np.full(num_classes, -30.0, np.float32)
    baseline[owners] = np.asarray(classifier._baseline_prediction, np.float64).ravel()
    if per_round == 1:  # two classes: the first one's score stays 0
        baseline[classes[0]] = 0.0
    sizes = {"trees": len(trees), "nodes": nodes, "depth": depth}
    return sizes, [feature, threshold, missing_left, left, right, value, baseline]


def _float32_at_most(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 threshold (so float32 comparisons decide as float64
    ones)."""
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def fit_boosted(
    config: Any,
    statistics: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    keypoint_dim: int,
    seed: int = 0,
) -> keras.Model:
    """Fit the classifier on segment statistics (N, F) of the training clips (``models.segment_statistics`` of
    the prepared keypoints) and labels (N,) in 0..num_classes-1; return the boosted Keras model holding its
    trees."""
    if len(np.unique(labels)) < 2:
        raise ConfigError("the boosted model needs training clips of at least two signs")
    classifier = make_classifier(seed).fit(np.asarray(statistics, np.float32), np.asarray(labels, np.int64))
    sizes, weights = tree_weights(classifier, num_classes)
    model = build_boosted_model(config, num_classes, keypoint_dim, **sizes)
    model.get_layer("probabilities").set_weights(weights)
    return model


__all__ = [
    "TreeEnsemble",
    "build_boosted_model",
    "fit_boosted",
    "formula_param_count",
    "make_classifier",
    "tree_weights",
]
