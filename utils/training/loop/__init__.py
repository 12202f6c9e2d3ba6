"""Training with seeds, augmentation per batch, best-on-validation weights, one test evaluation.

One call, :func:`train`, does a whole run and writes a self-contained run folder (its files and format:
:mod:`utils.training.runs`). Clips become model inputs through :mod:`utils.inputs` only (the same path as
evaluation, cross-validation and prediction). Model selection uses the validation split only and the test
split is scored once (defect 6 of the original chose the model on test; defect 5 averaged accuracy per batch:
here it is per clip).

While training, ``<out_dir>.partial/`` holds ``history.csv`` (one row per finished epoch) and ``checkpoints/``
(``best.weights.h5``, ``last.weights.h5`` and a backup of everything a resumed run needs): ``train(...,
resume=True)`` (``python -m utils train ... --resume``) continues an interrupted run at the epoch after its
last finished one and ends with the same weights as a run that was never interrupted.

Seed ensembles (``ModelConfig.ensemble`` = N > 1, ``--ensemble N``): the N networks are fitted one after
another, member i with seed ``seed + i - 1`` (its own initial weights, batch order and augmentation; member 1
is the network a single run of that seed trains), each with its own early stopping on the same validation
signers and the same class weights, in ``<out_dir>.partial/member<i>/``. They are then saved as ONE Keras
model whose output is the mean of their probabilities (:func:`utils.models.ensemble_model`), so evaluation,
cross-validation, prediction, the webcam and export take it like any model. A resumed run reads finished
members back and continues the unfinished one. ``history.csv`` and the curves are member 1's; ``metrics.json``
keeps every member's under ``"members"``.

The steps, one module each, in the order they build on each other:

* :mod:`.settings` - the configuration with the command line's overrides, and the precision policy
  (seeds and the GPU check: :func:`utils.config.set_seed`, :func:`utils.config.gpu_available`);
* :mod:`.batches` - training batches (augmented anew each epoch) and clips in order for validation;
* :mod:`.callbacks` - best-on-validation weights, backups and resuming an interrupted run, the progress bar;
* :mod:`.staged` - staged training of a late-fusion model (each branch alone, then the fusion weights);
* :mod:`.fitting` - fitting one network or the linear model, and scoring it;
* :mod:`.ensembles` - seed ensembles: N networks averaged in one model;
* :mod:`.train_run` - :func:`train` and :func:`train_from_file`: one whole run.

``from utils.training import loop as training`` then ``training.train(features, "lstm")``.
"""

from utils.training.loop.batches import (
                                           SAMPLINGS,
                                           BalancedBatches,
                                           ClipBatches,
                                           TrainingBatches,
                                           training_batches,
)
from utils.training.loop.callbacks import (
                                           CHECKPOINTS,
                                           MEMBER_HISTORY,
                                           MEMBER_WEIGHTS,
                                           EpochBar,
                                           KeepBest,
                                           ResumableBackup,
)
from utils.training.loop.ensembles import member_summaries
from utils.training.loop.fitting import CLASS_WEIGHTS, class_weights, fit_linear_weights
from utils.training.loop.settings import precision_policy, resolve_config, with_ensemble, with_overrides
from utils.training.loop.staged import (
                                           FUSION_LEARNING_RATE,
                                           FUSION_STEPS,
                                           OneInput,
                                           fit_fusion,
                                           fit_fusion_layer,
)
from utils.training.loop.train_run import as_features, train, train_from_file

__all__ = ["CHECKPOINTS", "CLASS_WEIGHTS", "ClipBatches", "EpochBar", "FUSION_LEARNING_RATE", "FUSION_STEPS",
           "BalancedBatches", "KeepBest", "MEMBER_HISTORY", "MEMBER_WEIGHTS", "OneInput", "ResumableBackup",
           "SAMPLINGS", "TrainingBatches",
           "as_features", "class_weights", "fit_fusion", "fit_fusion_layer", "fit_linear_weights",
           "member_summaries", "precision_policy", "resolve_config", "train", "train_from_file",
           "training_batches", "with_ensemble", "with_overrides"]
