"""Runs trained by an earlier version of the course (before the package was arranged by stage) still load and
answer the same: a user's trained models survive an update of the course.

The earlier version is taken from the repository's own history (``git archive``); the test skips where that
history is absent (e.g. a shallow clone)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# : The last commit with the flat package (utils/models.py, utils/training.py, ...), whose runs must keep
# loading.
EARLIER = "c3df3a2"

TRAIN_WITH_THE_EARLIER_VERSION = '''
import sys
from utils import models, training
from utils.features import load_features
features, out = load_features(sys.argv[1]), sys.argv[2]
for name in ("lstm", "fused", "linear"):
    config = models.get_config(name, "recommended").replace(
        num_frames=8, image_size=16, lstm_units=(16,), convlstm_filters=(4,), kernel_size=3, head_units=(16,),
        l2=0.0, learning_rate=3e-3, batch_size=8, epochs=2, patience=None, lr_milestones=(), ensemble=1,
        validation=True, frame_stem=(), frame_pooling="flatten", frame_input="frames", frame_kernel_size=None,
        test_time_flip=False, staged=False, fusion="concat")
    training.train(features, name, config, out_dir=f"{out}/{name}", seed=0, verbose=0, measure_speed=False)
'''


@pytest.fixture(scope="module")
def earlier_runs(tmp_path_factory) -> Path:
    """Three run folders (lstm, fused with the ConvLSTM, linear) written by the earlier version."""
    archive = subprocess.run(["git", "archive", "--format=tar", EARLIER, "utils"], cwd=REPO,
                             capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the repository's history has no commit {EARLIER} (a shallow clone?): "
                    f"{archive.stderr.decode(errors='replace').strip()[:200]}")
    from test_training import tiny_features
    from utils.data.features import save_features

    folder = tmp_path_factory.mktemp("earlier")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder / "code", filter="data")
    features = save_features(folder / "tiny.npz", tiny_features())
    (folder / "train.py").write_text(TRAIN_WITH_THE_EARLIER_VERSION)
    env = {**os.environ, "PYTHONPATH": str(folder / "code"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(folder / "train.py"), str(features), str(folder / "runs")],
                          cwd=folder / "code", env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["lstm", "fused", "linear"])
def test_a_run_of_the_earlier_version_loads_and_answers_as_it_did(earlier_runs: Path,
                                                                   model_name: str) -> None:
    from utils.data.features import load_features
    from utils.training.metrics import predict_clips
    from utils.training.runs import load_run

    run = earlier_runs / "runs" / model_name
    model, run_info = load_run(run)
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    indices = np.array([int(row["index"]) for row in rows])
    features = load_features(earlier_runs / "tiny.npz")
    probabilities = predict_clips(model, features, run_info, indices, batch_size=16)
    answers = [run_info["classes"][int(p.argmax())] for p in probabilities]
    assert answers == [row["predicted"] for row in rows]
    confidences = np.array([float(row["confidence"]) for row in rows])
    np.testing.assert_allclose(probabilities.max(axis=1), confidences, atol=1e-4)
