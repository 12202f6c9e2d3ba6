"""Staged training of a late-fusion model: each branch alone first, then only the fusion weights."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from utils.training.loop.batches import ClipBatches
from utils.training.loop.callbacks import EpochBar, KeepBest

# stage 2 of staged training: full-batch steps on the fusion weights
FUSION_STEPS, FUSION_LEARNING_RATE = 100, 0.05


def fit_staged(model: Any, batches: Any, validation: ClipBatches | None, config: Any, epochs: int,
                verbose: int, class_weight: dict[int, float] | None = None) -> dict[str, list[float]]:
    """Staged training: each branch alone with its own head (best on validation), then only the fusion
    weights.

    The fusion is fit on the validation clips, whose signers no branch trained on: a branch that memorised
    the training signers earns little weight there. Returns the stages' histories one after the other.
    """
    from utils import models

    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for name, branch in models.branch_models(model).items():  # stage 1, sharing the fused model's layers
        models.compile_model(branch, config)
        branch_validation = None if validation is None else OneInput(validation, name)
        fit = branch.fit(OneInput(batches, name), epochs=epochs, verbose=2 if verbose >= 2 else 0,
                         validation_data=branch_validation,
                         callbacks=_branch_callbacks(config, verbose, epochs), class_weight=class_weight)
        for key in history:
            values = fit.history.get(key, fit.history.get(key.replace("val_", ""), []))
            history[key] += [float(v) for v in values]
    # the fusion is fit on the validation clips (read batch by batch); without validation signers, a training
    # batch
    inputs, labels = (validation, validation.labels) if validation is not None else batches[0]
    fusion = fit_fusion(model, inputs, labels)
    for key in history:  # stage 2 (one row): it trains on the validation clips, so its loss is also theirs
        history[key].append(fusion[key.replace("val_", "")][-1])
    return history


def _branch_callbacks(config: Any, verbose: int, epochs: int) -> list[Any]:
    """Stage 1 of staged training, one branch: best-on-validation weights with early stopping, the LR
    schedule."""
    from utils import models

    callbacks: list[Any] = [KeepBest(config.patience)]
    if config.lr_milestones:
        callbacks.append(
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: models.learning_rate_at(config, epoch)))
    if verbose == 1:
        callbacks.append(EpochBar(epochs))
    return callbacks


def fit_fusion(model: Any, inputs: Mapping[str, np.ndarray] | keras.utils.PyDataset,
               labels: np.ndarray) -> dict[str, list[float]]:
    """Stage 2 of staged training: fit only the fusion weights of a late-fusion model (full batch); its
    history.

    ``inputs``: the clips' model inputs, or a PyDataset of their batches (e.g. :class:`ClipBatches`) in order.
    The branches are frozen, so their outputs are computed once (inference mode) and only the fusion layer
    is trained on them: a few milliseconds per step instead of a pass through every branch.
    """
    import keras

    from utils import models

    history: dict[str, list[float]] = {}
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    for fusion in models.fusion_layers(model):
        sources = fusion.input if isinstance(fusion.input, (list, tuple)) else [fusion.input]
        branches = keras.Model(model.inputs, list(sources))
        fed = (branches.predict(inputs, verbose=0) if isinstance(inputs, keras.utils.PyDataset)
               else branches.predict({name: inputs[name] for name in names}, batch_size=64, verbose=0))
        fed = fed if isinstance(fed, (list, tuple)) else [fed]
        history = fit_fusion_layer(fusion, [np.asarray(value) for value in fed], labels)
    return history


def fit_fusion_layer(fusion: Any, fed: list[np.ndarray], labels: np.ndarray) -> dict[str, list[float]]:
    """Fit only a fusion layer's weights on its inputs computed beforehand (e.g. branch log-probabilities),
    full batch; its history. The layer is the model's own, so the model's fusion changes with it."""
    import keras

    heads = [keras.Input(value.shape[1:], dtype="float32") for value in fed]
    head = keras.Model(heads, fusion(heads))
    head.compile(optimizer=keras.optimizers.Adam(FUSION_LEARNING_RATE),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    fit = head.fit(fed, np.asarray(labels), batch_size=len(labels), epochs=FUSION_STEPS, verbose=0)
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


class OneInput(keras.utils.PyDataset):
    """Another PyDataset's batches with only the input ``name`` (one branch of staged training)."""

    def __init__(self, batches: Any, name: str) -> None:
        super().__init__()
        self.batches, self.name = batches, name

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, labels = self.batches[index]
        return inputs[self.name], labels

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()
