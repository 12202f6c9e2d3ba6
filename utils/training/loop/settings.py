"""A run's settings: the model configuration with the command line's overrides, and the precision policy.

Seeds and the GPU check are course-wide: :func:`utils.config.set_seed`, :func:`utils.config.gpu_available`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import keras

from utils import config as course_config
from utils.errors import ConfigError


# ----------------------------------------------------------------------------- configuration
def resolve_config(model_name: str, config: Any = None) -> Any:
    """A ModelConfig from None (recommended), a configuration name, a dict or a ModelConfig."""
    from utils import models

    if config is None or isinstance(config, str):
        return models.get_config(model_name, config)
    if isinstance(config, Mapping):
        return models.ModelConfig.from_dict(dict(config))
    return config


def with_ensemble(config: Any, members: int) -> Any:
    """The configuration with ``ensemble=members`` (``--ensemble N``); ConfigError unless N is at least 1."""
    if int(members) < 1:
        raise ConfigError(f"--ensemble {members}: give the number of networks to average, 1 (one network) or "
                          "more")
    return config.replace(ensemble=int(members))


def with_overrides(config: Any, ensemble: int | None = None, validation: bool | None = None) -> Any:
    """The configuration with the command line's ``--ensemble N`` and ``--[no-]validation`` (None: as it
    is)."""
    if ensemble is not None:
        config = with_ensemble(config, ensemble)
    return config if validation is None else config.replace(validation=bool(validation))


@contextlib.contextmanager
def precision_policy(mixed: bool | None = None) -> Iterator[str]:
    """Build models inside this block under 'mixed_float16' (None: only when a GPU is present), else float32.

    The models' softmax stays float32 either way; the global policy is restored on exit."""
    previous = keras.mixed_precision.global_policy()
    if mixed is None:
        mixed = course_config.gpu_available()
    name = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)
