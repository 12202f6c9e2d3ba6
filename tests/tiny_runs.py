"""Tiny trained run folders shared by the tests of predict, webcam and export (imported by those test files).

One tiny LSTM run (T=8, 2 epochs) is trained once per test module; a frame-only (convlstm) run folder is
made from it with an untrained model, which is enough to check inputs, export and equality of outputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

NUM_FRAMES, IMAGE_SIZE, NUM_CLASSES = 8, 16, 3


def tiny_features():
    """A hand-made FeatureSet: 24 clips of 8 frames, 3 classes, 4 groups, keypoints that differ by class."""
    from utils.data.features import FeatureSet

    rng = np.random.default_rng(0)
    count = 24
    labels = np.arange(count) % NUM_CLASSES
    keypoints = (rng.random((count, NUM_FRAMES, 1662)) * 0.1 + labels[:, None, None] * 0.3).astype(np.float32)
    frames = (rng.random((count, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3)) * 255).astype(np.uint8)
    return FeatureSet(keypoints=keypoints, frames=frames, labels=labels, classes=["alpha", "beta", "gamma"],
                      groups=np.array([f"signer{i % 4}" for i in range(count)]), split=np.full(count, ""),
                      paths=np.array([f"clip{i}.mp4" for i in range(count)]))


@pytest.fixture(scope="module")
def features():
    return tiny_features()


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, features) -> Path:
    """A finished run folder of a tiny LSTM trained for 2 epochs."""
    from utils import models
    from utils.training import loop as training

    config = models.get_config("lstm", "small").replace(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE,
                                                         lstm_units=(16,), epochs=2, batch_size=8)
    out_dir = tmp_path_factory.mktemp("runs") / "lstm_tiny"
    training.train(features, "lstm", config, out_dir=out_dir, verbose=0)
    return out_dir


@pytest.fixture(scope="module")
def convlstm_run(tmp_path_factory, lstm_run) -> Path:
    """A run folder for an untrained frame-only convlstm (run.json derived from the LSTM run's)."""
    from utils import models

    config = models.get_config("convlstm", "small").replace(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE,
                                                             convlstm_filters=(4,))
    model = models.build_model("convlstm", config, num_classes=NUM_CLASSES)
    folder = tmp_path_factory.mktemp("runs") / "convlstm_tiny"
    folder.mkdir()
    model.save(folder / "model.keras")
    info = json.loads((lstm_run / "run.json").read_text())
    info.update(model="convlstm", config_name=config.name, config=config.to_dict(), inputs=["frames"])
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def write_noise_video(path: Path, num_frames: int, height: int = 48, width: int = 64) -> Path:
    """A small video of random noise (no person in it)."""
    from utils.data.video import write_video

    rng = np.random.default_rng(1)
    return write_video(path, (rng.random((num_frames, height, width, 3)) * 255).astype(np.uint8))


def untrained_run(folder: Path, features, model_name: str, config) -> Path:
    """A run folder (model.keras + run.json as ``train`` writes it) of an untrained model built from a config.

    Parity checks of input preparation and export need no training: random weights see every input value.
    """
    from utils import models
    from utils.data.splits import Splits
    from utils.inputs import preprocessing
    from utils.training.runs import describe_run, write_json

    input_dim = preprocessing.output_dim(config.preprocessing)
    model = models.build_model(model_name, config, num_classes=len(features.classes), keypoint_dim=input_dim)
    empty = np.arange(0)
    split = Splits(train=np.arange(len(features.labels)), val=empty, test=empty, strategy="none")
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    write_json(folder / "run.json", describe_run(features, "memory", model_name, config, split, 0, None))
    return folder
