"""Training on several GPUs or machines: which ``tf.distribute`` strategy, the global batch, who writes the
run.

- ``TF_CONFIG`` names a cluster with more than one worker: ``MultiWorkerMirroredStrategy`` (every machine
  runs the same ``python -m utils train`` command with its own ``TF_CONFIG``; gradients are summed over all
  replicas of all machines each step, so every worker ends with the same weights).
- else several local GPUs: ``MirroredStrategy`` (one replica per GPU);
- else the default strategy (one replica: CPU or one GPU).

The configuration's ``batch_size`` is per replica: each step reads ``batch_size x replicas`` clips (the
global batch), split between the replicas. Under several workers the training batches are the same global
batches on every worker (drawn from the same seed); TensorFlow's auto-sharding by DATA hands each worker its
slice of each global batch. Only the chief (worker 0) writes the run folder: the others write into a
folder of their own beside it, deleted when the run is finished.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from utils.errors import ConfigError

TF_CONFIG = "TF_CONFIG"
# one per kind and process (MultiWorkerMirroredStrategy may be created once only)
_STRATEGIES: dict[str, Any] = {}


# ----------------------------------------------------------------------------- reading TF_CONFIG
def cluster_config(tf_config: str | None = None) -> dict[str, Any]:
    """TF_CONFIG (the environment variable unless given) as a dict; {} when unset; ConfigError when not
    JSON."""
    text = os.environ.get(TF_CONFIG, "") if tf_config is None else tf_config
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{TF_CONFIG} is not valid JSON ({error}): set it to e.g. "
                          '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                          '"task": {"type": "worker", "index": 0}}') from None
    if not isinstance(parsed, Mapping):
        raise ConfigError(f"{TF_CONFIG} must be a JSON object with 'cluster' and 'task', not {text!r}")
    return dict(parsed)


def num_workers(tf_config: str | None = None) -> int:
    """How many training machines (chief + workers) TF_CONFIG names; 1 without TF_CONFIG."""
    cluster = cluster_config(tf_config).get("cluster", {})
    unsupported = sorted(set(cluster) - {"chief", "worker", "evaluator"})
    if unsupported:
        raise ConfigError(f"{TF_CONFIG} names task types {unsupported}: only 'chief' and 'worker' "
                          "(MultiWorkerMirroredStrategy) are supported; remove them")
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief(tf_config: str | None = None) -> bool:
    """True on the worker that writes the run folder: 'chief', else worker 0, else a single machine."""
    config = cluster_config(tf_config)
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if num_workers(tf_config) <= 1:
        return True
    if "type" not in task or "index" not in task:
        raise ConfigError(f"{TF_CONFIG} names a cluster but no task: add "
                          '"task": {"type": "worker", "index": N} (N differs on each machine)')
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


# ----------------------------------------------------------------------------- the strategy
def strategy_kind(num_gpus: int, tf_config: str | None = None) -> str:
    """'multi-worker' (TF_CONFIG with >1 worker), 'mirrored' (>1 local GPU) or 'default'."""
    if num_workers(tf_config) > 1:
        return "multi-worker"
    return "mirrored" if num_gpus > 1 else "default"


def choose_strategy() -> Any:
    """The tf.distribute strategy for this process (see the module docstring), created once per process."""
    import tensorflow as tf

    from utils.config import gpu_count

    kind = strategy_kind(gpu_count())
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind not in _STRATEGIES:
        _STRATEGIES[kind] = (tf.distribute.MultiWorkerMirroredStrategy() if kind == "multi-worker"
                             else tf.distribute.MirroredStrategy())
    return _STRATEGIES[kind]


def global_batch_size(batch_size: int, replicas: int) -> int:
    """Clips per training step over all replicas: the configuration's batch size is per replica."""
    if batch_size < 1 or replicas < 1:
        raise ConfigError(f"batch size {batch_size} and replicas {replicas} must both be >= 1")
    return int(batch_size) * int(replicas)


def describe(strategy: Any, batch_size: int) -> dict[str, Any]:
    """What metrics.json records about the distribution: strategy, workers, replicas, per-replica and global
    batch."""
    import tensorflow as tf

    replicas = int(strategy.num_replicas_in_sync)
    name = ("MultiWorkerMirroredStrategy" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else "MirroredStrategy" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default")
    return {"strategy": name, "workers": num_workers(), "replicas": replicas,
            "batch_size_per_replica": int(batch_size),
            "global_batch_size": global_batch_size(batch_size, replicas)}


def prepare_model(model: Any) -> None:
    """Let Keras 3 fit ``model`` (built under a strategy's scope) on several replicas (a no-op on one).

    Keras 3.x first averages one input batch over all replicas with ``strategy.reduce`` to learn the input
    shapes: MirroredStrategy fails when a batch does not split evenly (9 validation clips on 2 GPUs), and
    MultiWorkerMirroredStrategy refuses any (inputs, labels) structure (keras-team/keras#20329, #20585). Under
    several workers it also averages each step's scalar logs with ``axis=0``, which fails. Here the shapes
    come from this worker's first replica slice (leaving Python's random state as it was, so N replicas of
    batch B train like one replica of batch N x B), and logs are averaged over the workers (so every worker
    sees the same loss and accuracy, and keeps the same best epoch).
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    if strategy.num_replicas_in_sync <= 1:
        return
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _average_logs_over_workers()
    keras_build = model._maybe_symbolic_build

    def local_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None and data_batch is None:
            python_random = random.getstate()  # Keras shuffles the batch order with it when the batches start
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0],
                                                   next(batches))
                break
            random.setstate(python_random)  # so the epochs see the batches in the order of a one-replica run
        keras_build(data_batch=data_batch)

    model._maybe_symbolic_build = local_build


def _average_logs_over_workers() -> None:
    """Make Keras's TensorFlow trainer average per-step logs over replicas with axis=None under several
    workers."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica
    if getattr(keras_reduce, "averages_over_workers", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.averages_over_workers = True  # type: ignore[attr-defined]
    trainer.reduce_per_replica = reduce_per_replica


# ----------------------------------------------------------------------------- who writes
def worker_run_dir(out_dir: str | Path) -> Path:
    """Where this worker writes its run: out_dir on the chief, else ``<out_dir>.<task><index>`` beside it.

    A worker's own folder (its ``.partial`` checkpoints included) survives a kill, so ``--resume`` on every
    machine resumes every worker; :func:`discard_worker_run` deletes it once the run is finished.
    """
    out_dir = Path(out_dir)
    if is_chief():
        return out_dir
    task = cluster_config()["task"]
    return out_dir.with_name(f"{out_dir.name}.{task['type']}{int(task['index'])}")


def discard_worker_run(run_dir: str | Path) -> None:
    """Delete a finished run that :func:`worker_run_dir` gave a worker other than the chief (nothing on the
    chief)."""
    if is_chief():
        return
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir.with_name(run_dir.name + ".partial")):
        shutil.rmtree(folder, ignore_errors=True)
