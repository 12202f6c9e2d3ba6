"""A signer probe: how well a branch's features tell WHO is signing, next to how well they tell WHAT is
signed.

A branch that generalises to new people should describe the sign, not the signer. The probe fits a linear
classifier (scikit-learn's logistic regression) from a trained model's penultimate features to the signer
of each clip, split so that it must recognise a signer from signs it never saw for that signer: the folds
are groups of sign classes (``GroupKFold`` over the labels). High probe accuracy (far above chance,
1 / number of signers) means the features carry the signer's appearance or style, which is what a model
memorises when it fails on unseen people.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.errors import ConfigError

PROBE_FOLDS = 5


@dataclass(frozen=True)
class ProbeResult:
    """Signer-probe accuracy of one set of features, with its chance level and the numbers behind it."""

    accuracy: float
    chance: float  # 1 / number of signers
    num_signers: int
    num_clips: int
    num_folds: int


def penultimate_layer(model: Any, branch: str | None = None) -> str:
    """Name of the last hidden head layer of a model, or of one branch's own head in a late-fusion model."""
    names = [layer.name for layer in model.layers]
    for prefix in ([f"{branch}_head"] if branch else []) + ["head"]:
        # test-time flip averaging: the clip's and its mirror's features averaged
        if f"{prefix}_views_mean" in names:
            return f"{prefix}_views_mean"
        hidden = sorted(name for name in names if name.startswith(f"{prefix}_dense"))
        if hidden:
            return hidden[-1]
    raise ConfigError(
        f"model {model.name} has no hidden head layer{f' for branch {branch!r}' if branch else ''} "
        f"(head_units=()); pass layer=... naming one of its layers, e.g. {names[-4:]}"
    )


def layer_features(model: Any, inputs: Mapping[str, np.ndarray], layer: str,
                   batch_size: int = 64) -> np.ndarray:
    """The outputs (n, F) of one named layer of a functional model for the given model inputs (inference
    mode)."""
    import keras

    wanted = model.get_layer(layer).output
    needed = {tensor.name.split(":")[0] for tensor in model.inputs}
    extractor = keras.Model(model.inputs, wanted)
    values = extractor.predict({name: inputs[name] for name in needed}, batch_size=batch_size, verbose=0)
    return np.asarray(values, dtype=np.float32).reshape(len(values), -1)


def signer_probe(features: np.ndarray, signers: np.ndarray, signs: np.ndarray, folds: int = PROBE_FOLDS,
                 seed: int = 0) -> ProbeResult:
    """Accuracy of a linear probe predicting the signer from features (n, F), tested on signs it did not
    see."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, signers, signs = np.asarray(features, np.float64), np.asarray(signers), np.asarray(signs)
    if not (len(features) == len(signers) == len(signs)):
        raise ConfigError(f"signer_probe needs one signer and one sign per clip: got {len(features)} feature "
                          f"rows, {len(signers)} signers, {len(signs)} signs")
    num_signers, num_signs = len(np.unique(signers)), len(np.unique(signs))
    if num_signers < 2 or num_signs < 2:
        raise ConfigError(f"signer_probe needs at least 2 signers and 2 signs, got {num_signers} and "
                          f"{num_signs}")
    folds = min(int(folds), num_signs)
    correct = 0
    for train, test in GroupKFold(n_splits=folds).split(features, signers, groups=signs):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
        probe.fit(features[train], signers[train])
        correct += int((probe.predict(features[test]) == signers[test]).sum())
    return ProbeResult(accuracy=correct / len(features), chance=1 / num_signers, num_signers=num_signers,
                       num_clips=len(features), num_folds=folds)


def probe_model(model: Any, inputs: Mapping[str, np.ndarray], signers: np.ndarray, signs: np.ndarray,
                branch: str | None = None, layer: str | None = None) -> ProbeResult:
    """The signer probe on a trained model's penultimate features (of one branch of a late-fusion model)."""
    layer = layer or penultimate_layer(model, branch)
    return signer_probe(layer_features(model, inputs, layer), signers, signs)


__all__ = ["ProbeResult", "penultimate_layer", "layer_features", "signer_probe", "probe_model"]
