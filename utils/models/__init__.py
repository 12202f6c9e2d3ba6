"""The models: the keypoint LSTM, the ConvLSTM on frames, the fused model and the linear baseline.

Where to look:

* :mod:`utils.models.config` — every setting of a model (:class:`ModelConfig`) and the configurations
  ``original``, ``small`` and ``recommended``;
* :mod:`utils.models.build` — :func:`build_model`: the branches, their fusion and the head, read top to
bottom;
* :mod:`utils.models.layers` — the course's own plain Keras layers (the ConvLSTM, the fusion of branches);
* :mod:`utils.models.linear` — the linear baseline as a Keras model that scikit-learn fills;
* :mod:`utils.models.boosted` — the boosted-trees baseline, its trees copied into a Keras layer;
* :mod:`utils.models.fast` — an opt-in faster copy of a trained model for inference, checked against the
plain one.

``from utils import models`` gives all the public names below.
"""

from utils.errors import ConfigError
from utils.models import boosted  # the gradient-boosted trees baseline (--model boosted)
from utils.models.build import (
    MEMBER_PREFIX,
    branch_models,
    build_model,
    check_ensemble,
    compile_model,
    count_params,
    default_jit_compile,
    ensemble_members,
    ensemble_model,
    formula_param_count,
    fusion_layers,
    original_param_count,
    with_test_time_flip,
)
from utils.models.config import (
    BRANCHES,
    CONFIG_ALIASES,
    CONFIGS,
    CONVLSTM_IMPLS,
    DEFAULT_CONFIG,
    FRAME_AUGMENTATION_KEYS,
    FRAME_BRANCH_FIELDS,
    FRAME_INPUTS,
    FRAME_POOLINGS,
    FUSIONS,
    KEYPOINT_ENCODERS,
    LINEAR_PREPROCESSING,
    MODEL_NAMES,
    NO_PREPROCESSING,
    ORIGINAL_PARAM_COUNT,
    RETIRED_FIELDS,
    ModelConfig,
    config_names,
    describe,
    frame_kernel_size,
    get_config,
    learning_rate_at,
    model_inputs,
)
from utils.models.fast import COMPUTE_DTYPES, ConvLSTMStack, inference_model, with_compute_dtype
from utils.models.layers import (
    FLIP_VIEWS,
    AverageViews,
    ConvLSTM,
    LastTimeStep,
    LogitFusion,
    MirrorViews,
    SparseSmoothedCrossentropy,
    classification_loss,
    mirror_views,
)
from utils.models.linear import (
    SegmentStatistics,
    Standardize,
    linear_model,
    linear_output_layer,
    segment_statistics,
    set_linear_weights,
)

__all__ = [
    "boosted",
    "ConfigError",
    "BRANCHES",
    "COMPUTE_DTYPES",
    "CONFIGS",
    "CONFIG_ALIASES",
    "CONVLSTM_IMPLS",
    "DEFAULT_CONFIG",
    "FLIP_VIEWS",
    "FRAME_AUGMENTATION_KEYS",
    "FRAME_BRANCH_FIELDS",
    "FRAME_INPUTS",
    "FRAME_POOLINGS",
    "FUSIONS",
    "KEYPOINT_ENCODERS",
    "LINEAR_PREPROCESSING",
    "MEMBER_PREFIX",
    "MODEL_NAMES",
    "NO_PREPROCESSING",
    "ORIGINAL_PARAM_COUNT",
    "RETIRED_FIELDS",
    "AverageViews",
    "ConvLSTM",
    "ConvLSTMStack",
    "LastTimeStep",
    "LogitFusion",
    "MirrorViews",
    "ModelConfig",
    "SegmentStatistics",
    "SparseSmoothedCrossentropy",
    "Standardize",
    "branch_models",
    "build_model",
    "check_ensemble",
    "classification_loss",
    "compile_model",
    "config_names",
    "count_params",
    "default_jit_compile",
    "describe",
    "ensemble_members",
    "ensemble_model",
    "formula_param_count",
    "frame_kernel_size",
    "fusion_layers",
    "get_config",
    "inference_model",
    "learning_rate_at",
    "linear_model",
    "linear_output_layer",
    "mirror_views",
    "model_inputs",
    "original_param_count",
    "segment_statistics",
    "set_linear_weights",
    "with_compute_dtype",
    "with_test_time_flip",
]
