"""Several GPUs or machines: the strategy chosen from TF_CONFIG and the GPU count, the global batch, the
chief-only run folder, a real two-worker training run as two local processes (127.0.0.1 only), and
MirroredStrategy over two logical CPU devices (the code path of two GPUs)."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils.errors import ConfigError
from utils.training import distribute

REPO = Path(__file__).resolve().parents[1]
TWO_WORKERS_TIMEOUT_S = 240  # per process; the two-worker test took 88-97 s on 2 busy CPU cores


def tf_config(index: int, workers: int = 2, task_type: str = "worker", chief: bool = False) -> str:
    """A TF_CONFIG for a loopback cluster of `workers` workers (plus a chief if asked)."""
    cluster: dict = {"worker": [f"127.0.0.1:{20000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:19999"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


# ----------------------------------------------------------------------------- strategy choice
@pytest.mark.parametrize("gpus, config, expected", [
    (0, "", "default"), (1, "", "default"), (2, "", "mirrored"), (8, "", "mirrored"),
    (0, tf_config(0), "multi-worker"), (4, tf_config(1), "multi-worker"),
    (2, tf_config(0, workers=1), "mirrored"),  # a one-worker cluster is one machine
    (0, tf_config(0, workers=1, task_type="chief", chief=True), "multi-worker"),  # chief + 1 worker
])
def test_strategy_kind(gpus, config, expected):
    assert distribute.strategy_kind(gpus, config) == expected


def test_choose_strategy_mirrored_on_several_gpus(monkeypatch):
    import tensorflow as tf

    made = []
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0", "GPU:1"] if kind == "GPU" else [])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy",
                        lambda: made.append("mirrored") or "mirrored strategy")
    monkeypatch.setattr(distribute, "_STRATEGIES", {})
    assert distribute.choose_strategy() == "mirrored strategy"
    assert distribute.choose_strategy() == "mirrored strategy" and made == ["mirrored"]  # created once


def test_choose_strategy_multi_worker_from_tf_config(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("TF_CONFIG", tf_config(1))
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", lambda: "multi-worker strategy")
    monkeypatch.setattr(distribute, "_STRATEGIES", {})
    assert distribute.choose_strategy() == "multi-worker strategy"


def test_choose_strategy_default_on_one_cpu_machine(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    strategy = distribute.choose_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert distribute.describe(strategy, 8) == {"strategy": "default", "workers": 1, "replicas": 1,
                                                "batch_size_per_replica": 8, "global_batch_size": 8}


def test_global_batch_is_per_replica_batch_times_replicas():
    assert distribute.global_batch_size(32, 1) == 32
    assert distribute.global_batch_size(32, 4) == 128
    with pytest.raises(ConfigError):
        distribute.global_batch_size(0, 2)


# ----------------------------------------------------------------------------- TF_CONFIG and the chief
def test_chief_is_worker_zero_or_the_named_chief():
    assert distribute.is_chief("") and distribute.num_workers("") == 1
    assert distribute.is_chief(tf_config(0)) and not distribute.is_chief(tf_config(1))
    assert distribute.is_chief(tf_config(0, task_type="chief", chief=True))
    assert not distribute.is_chief(tf_config(0, chief=True))  # worker 0 is not the chief when a chief exists
    assert distribute.num_workers(tf_config(0, workers=3, chief=True)) == 4


@pytest.mark.parametrize("config, words", [
    ("{not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    (json.dumps({"cluster": {"worker": ["a:1", "b:2"], "ps": ["c:3"]},
                 "task": {"type": "worker", "index": 0}}),
     "'ps'"),
    (json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}), "no task"),
])
def test_bad_tf_config_is_refused_with_what_to_do(config, words):
    with pytest.raises(ConfigError, match=words):
        distribute.is_chief(config)


def test_only_the_chief_writes_the_run_folder(monkeypatch, tmp_path):
    out_dir = tmp_path / "run"
    monkeypatch.setenv("TF_CONFIG", tf_config(1))
    folder = distribute.worker_run_dir(out_dir)
    assert folder == tmp_path / "run.worker1"  # beside out_dir, the same name on every --resume
    for made in (folder, folder.with_name(folder.name + ".partial")):
        made.mkdir()
        (made / "model.keras").write_text("not the chief's")
    distribute.discard_worker_run(folder)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TF_CONFIG", tf_config(0))
    assert distribute.worker_run_dir(out_dir) == out_dir
    out_dir.mkdir()
    distribute.discard_worker_run(out_dir)  # the chief keeps its run
    assert out_dir.is_dir()
    monkeypatch.delenv("TF_CONFIG")
    assert distribute.worker_run_dir(out_dir) == out_dir


def test_prepare_model_leaves_single_machine_models_alone():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    distribute.prepare_model(model)
    assert "_maybe_symbolic_build" not in vars(model)


# ----------------------------------------------------------------------------- batch scaling in train
class _FakeStrategy:
    """A strategy-shaped stand-in with 3 replicas (training still runs on the default strategy)."""

    num_replicas_in_sync = 3

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


@pytest.mark.slow
def test_train_reads_global_batches_and_records_them(monkeypatch, tmp_path):
    from test_training import tiny_config, tiny_features
    from utils.training import loop as training

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(distribute, "choose_strategy", lambda: _FakeStrategy())
    seen = []
    from utils.training.loop import fitting

    real_batches = fitting.training_batches
    monkeypatch.setattr(fitting, "training_batches",  # where fit_model looks it up
                        lambda *args: seen.append(args[4]) or real_batches(*args))
    metrics = training.train(tiny_features(), "lstm", tiny_config(epochs=1), out_dir=tmp_path / "run",
                             verbose=0, measure_speed=False)
    assert seen == [3 * 8]
    assert (metrics["replicas"], metrics["batch_size"], metrics["global_batch_size"]) == (3, 8, 24)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (saved["replicas"], saved["global_batch_size"]) == (3, 24)


# ----------------------------------------------------------------------------- two workers, two processes
WORKER = '''"""`python -m utils train ARGS` that also saves the final weights (and where it wrote) to
argv[1]."""
import json, runpy, sys
import numpy as np
from utils.training.loop import train_run
result, sys.argv = sys.argv[1], ["utils", *sys.argv[2:]]
course_write_run = train_run.write_run
def write_run(folder, model, *args, **kwargs):
    np.savez(result + ".npz", *model.get_weights())
    open(result + ".json", "w").write(json.dumps({"folder": str(folder)}))
    return course_write_run(folder, model, *args, **kwargs)
train_run.write_run = write_run  # what train() calls to write the run folder
runpy.run_module("utils", run_name="__main__")
'''


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@pytest.mark.slow
def test_two_workers_on_loopback_end_with_the_same_weights(tmp_path):
    from test_training import tiny_features
    from utils.data.features import save_features
    from utils.training.runs import load_run

    # each worker reads its own file: same clips, signers and split, different noise. Without gradients summed
    # over the workers the two would end with different weights (one seed alone would make them equal).
    features = [save_features(tmp_path / f"tiny{index}.npz", tiny_features(seed=index)) for index in range(2)]
    (tmp_path / "worker.py").write_text(WORKER)
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    out_dir = tmp_path / "run"  # the same --out on both, as on two machines: only the chief may write it
    workers = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, str(tmp_path / "worker.py"), str(tmp_path / f"worker{index}"), "train",
                   "--features", str(features[index]), "--model", "lstm", "--epochs", "2", "--batch-size",
                   "4", "--out", str(out_dir)]
        workers.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [worker.communicate(timeout=TWO_WORKERS_TIMEOUT_S)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for index, (worker, output) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {index} failed:\n{output[-3000:]}"

    weights = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert [w.files for w in weights][0] == weights[1].files
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    model, _ = load_run(out_dir)
    for saved, trained in zip(model.get_weights(), (weights[0][name] for name in weights[0].files)):
        np.testing.assert_array_equal(saved, trained)

    wrote = [Path(json.loads((tmp_path / f"worker{index}.json").read_text())["folder"]) for index in range(2)]
    assert wrote == [out_dir, tmp_path / "run.worker1"]
    # worker 1's: deleted
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run")) == ["run"]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["workers"],
            metrics["replicas"]) == ("MultiWorkerMirroredStrategy", 2, 2)
    assert (metrics["batch_size"], metrics["global_batch_size"], metrics["epochs_run"]) == (4, 8, 2)
    # the test clips were predicted by both workers, each its slice of its own file, then gathered: in the
    # clips' own order? Every gathered answer must be what one process answers for that clip from one of the
    # two files.
    import csv

    rows = list(csv.DictReader((out_dir / "predictions.csv").open()))
    indices = [int(row["index"]) for row in rows]
    alone = [predicted_per_clip(out_dir, path, indices) for path in features]
    assert len(rows) == metrics["n_test"] == len(alone[0])
    for row in rows:
        assert row["predicted"] in {alone[0][int(row["index"])], alone[1][int(row["index"])]}, row
    correct = sum(row["predicted"] == row["true"] for row in rows)
    assert correct == round(metrics["test_accuracy"] * metrics["n_test"])


def predicted_per_clip(run_dir: Path, features_path: Path, indices: list[int]) -> dict[int, str]:
    """{clip index: predicted sign} for the run's test clips, predicted in one process from one features
    file."""
    from utils.data.features import load_features
    from utils.training.metrics import predict_clips
    from utils.training.runs import load_run

    model, run_info = load_run(run_dir)
    features = load_features(features_path)
    probabilities = predict_clips(model, features, run_info, np.asarray(indices), batch_size=64)
    return {index: run_info["classes"][int(p.argmax())] for index, p in zip(indices, probabilities)}


# ----------------------------------------------------------------------------- MirroredStrategy, two devices
MIRRORED = '''"""train() with MirroredStrategy over two logical CPU devices (the code path of two GPUs), batch
4 per replica, then with the default strategy and batch 8; print both runs' metrics and the largest weight
difference."""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from test_training import tiny_config, tiny_features
from utils.training import distribute
from utils.training import loop as training
from utils.training.loop import train_run
weights, course_write_run = [], train_run.write_run
train_run.write_run = lambda folder, model, *args: (weights.append(model.get_weights())
                                                    or course_write_run(folder, model, *args))
config = tiny_config(epochs=2).replace(dropout=0.0, augmentation={})  # no per-replica randomness
runs = []
for strategy, batch_size in [(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 4),
(tf.distribute.get_strategy(), 8)]:
    distribute.choose_strategy = lambda: strategy
    metrics = training.train(tiny_features(), "lstm", config, out_dir=f"{sys.argv[1]}{batch_size}",
                             batch_size=batch_size, verbose=0, measure_speed=False)
    runs.append({key: metrics[key] for key in ("strategy", "replicas", "global_batch_size", "n_val")})
difference = max(float(np.abs(a - b).max()) for a, b in zip(*weights))
print(json.dumps({"runs": runs, "max_weight_difference": difference}))
'''


@pytest.mark.slow
def test_mirrored_on_two_devices_trains_like_one_device_with_the_global_batch(tmp_path):
    """2 replicas x batch 4 = 1 replica x batch 8 (to float rounding), with 9 validation clips split 5/4 over
    the replicas: Keras 3 alone fails on that uneven split (see distribute.prepare_model)."""
    (tmp_path / "mirrored.py").write_text(MIRRORED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, str(tmp_path / "mirrored.py"), str(tmp_path / "run")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=TWO_WORKERS_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mirrored, single = result["runs"]
    assert (mirrored["strategy"], mirrored["replicas"],
            mirrored["global_batch_size"]) == ("MirroredStrategy", 2, 8)
    assert (single["strategy"], single["replicas"], single["global_batch_size"]) == ("default", 1, 8)
    assert mirrored["n_val"] % 2 == 1
    assert result["max_weight_difference"] < 1e-5
    assert (tmp_path / "run4" / "model.keras").is_file()
