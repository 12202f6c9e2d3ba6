"""Batches for Keras: training batches augmented anew each epoch, and clips read in order for validation."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import ConfigError
from utils.inputs import preprocessing
from utils.inputs.spec import as_spec, finish_inputs, prepare_inputs, sample_clips


# ----------------------------------------------------------------------------- batches
class TrainingBatches(keras.utils.PyDataset):
    """Shuffled, augmented (raw keypoints and frames), then preprocessed training batches.

    ``raw``: the stored arrays ({"keypoints", "frames", "hands"}), whole (``rows``: the training clips' rows
    in them) or already the training clips (``rows`` None). Each batch indexes only its clips, so from a
    features store (memory maps) the training split is never in memory, and samples (T, S), augments and
    preprocesses just them (:mod:`utils.inputs`). Batch ``index`` is drawn from (seed, :attr:`epoch`, index)
    only, so a run gives the same batches every time. :attr:`epoch` counts Keras's calls of
    :meth:`on_epoch_end` (one more than the epochs trained, as Keras also calls it after peeking at the first
    batches); a resumed run restores it (:class:`ResumableBackup`).
    """

    def __init__(self, raw: Mapping[str, Any], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                 batch_size: int, seed: int, rows: np.ndarray | None = None) -> None:
        super().__init__()
        self.raw, self.labels, self.spec = raw, labels, as_spec(spec)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.augmentation, self.batch_size, self.seed = dict(augmentation), batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))
        # every batch full (the last one wraps around): one input shape, so TensorFlow traces the step once
        chosen = order[np.arange(index * self.batch_size, (index + 1) * self.batch_size) % len(self.labels)]
        picked = chosen if self.rows is None else self.rows[chosen]
        batch = sample_clips({name: value[picked] for name, value in self.raw.items()}, self.spec)
        if any(float(v) > 0 for v in self.augmentation.values()):
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            some_frames = batch.get("frames", batch.get("hands"))
            augmented = preprocessing.augment_clips(
                batch["keypoints"] if "keypoints" in batch else _frames_only_keypoints(some_frames),
                batch.get("frames"),
                rng,
                self.augmentation,
                **({"hand_crops": batch["hands"]} if "hands" in batch else {}),
            )
            # flipped and warped together
            for name, value in zip(("keypoints", "frames", "hands"), augmented):
                if name in batch:
                    batch[name] = value
        return finish_inputs(batch, self.spec), self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.epoch += 1


class BalancedBatches(TrainingBatches):
    """Training batches whose clips are drawn anew each epoch so that every class comes up equally often
    (``ModelConfig.sampling="balanced"``, in place of class weights): as many clips per epoch as the training
    split has; a sign that few clips show repeats (each time augmented differently), a common one is
    subsampled. The draw depends on (seed, :attr:`epoch`) only, so a resumed run draws the same clips."""

    def __init__(self, raw: Mapping[str, Any], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                 batch_size: int, seed: int, rows: np.ndarray | None = None) -> None:
        self.all_labels = np.asarray(labels)
        self.all_rows = np.arange(len(labels)) if rows is None else np.asarray(rows, dtype=np.int64)
        super().__init__(raw, labels, spec, augmentation, batch_size, seed, self.all_rows)
        self.draw()

    def draw(self) -> None:
        """This epoch's clips: a class drawn uniformly for each place, then one of that class's clips."""
        rng = np.random.default_rng([self.seed, self.epoch, 2])
        classes = np.unique(self.all_labels)
        members = {label: np.flatnonzero(self.all_labels == label) for label in classes}
        places = rng.choice(classes, size=len(self.all_labels))
        picked = np.array([rng.choice(members[label]) for label in places])
        self.rows, self.labels = self.all_rows[picked], self.all_labels[picked]
        self._drawn_for = self.epoch

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if self._drawn_for != self.epoch:  # a resumed run sets the epoch after construction
            self.draw()
        return super().__getitem__(index)

    def on_epoch_end(self) -> None:
        super().on_epoch_end()
        self.draw()


SAMPLINGS = (None, "balanced")


def training_batches(raw: Mapping[str, Any], labels: np.ndarray, spec: Any, augmentation: Mapping[str, Any],
                     batch_size: int, seed: int, rows: np.ndarray | None = None,
                     sampling: str | None = None) -> TrainingBatches:
    """A keras.utils.PyDataset of shuffled, augmented (raw keypoints and frames), then preprocessed batches;
    ``sampling="balanced"``: every class drawn equally often each epoch (:class:`BalancedBatches`)."""
    if sampling not in SAMPLINGS:
        raise ConfigError(f"unknown sampling {sampling!r}; use one of {', '.join(map(str, SAMPLINGS))}")
    kind = BalancedBatches if sampling == "balanced" else TrainingBatches
    return kind(raw, labels, spec, augmentation, batch_size, seed, rows)


class ClipBatches(keras.utils.PyDataset):
    """The clips at ``rows`` in order, in batches, prepared for the model (no augmentation): validation and
    scoring read one batch at a time, never the whole split. Batch i is (inputs, labels), or inputs without
    labels."""

    def __init__(self, features: Any, spec: Any, rows: np.ndarray, labels: np.ndarray | None,
                 batch_size: int) -> None:
        super().__init__()
        self.features, self.spec, self.batch_size = features, as_spec(spec), int(batch_size)
        self.rows, self.labels = np.asarray(rows, dtype=np.int64), labels

    def __len__(self) -> int:
        return int(np.ceil(len(self.rows) / self.batch_size))

    def __getitem__(self, index: int) -> Any:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        inputs = prepare_inputs(self.features, self.spec, self.rows[part])
        return inputs if self.labels is None else (inputs, np.asarray(self.labels)[part])


def _frames_only_keypoints(frames: np.ndarray) -> np.ndarray:
    """Empty keypoints matching frames, so frame-only models reuse the same (time and flip) augmentation."""
    return np.zeros((*frames.shape[:2], KEYPOINT_DIM), dtype=np.float32)
