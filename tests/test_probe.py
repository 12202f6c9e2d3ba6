"""The signer probe: features that encode the signer are found out; features that encode only the sign are
not."""
from __future__ import annotations

import numpy as np
import pytest

from utils.errors import ConfigError
from utils.evaluation.probe import signer_probe

NUM_SIGNERS, NUM_SIGNS, REPEATS = 4, 5, 6


def clips() -> tuple[np.ndarray, np.ndarray]:
    """Signer and sign of each clip: every signer signs every sign REPEATS times."""
    signers = np.repeat(np.arange(NUM_SIGNERS), NUM_SIGNS * REPEATS)
    signs = np.tile(np.repeat(np.arange(NUM_SIGNS), REPEATS), NUM_SIGNERS)
    return signers, signs


def test_features_that_carry_the_signer_are_probed_well_above_chance() -> None:
    rng = np.random.default_rng(0)
    signers, signs = clips()
    identity = rng.normal(size=(NUM_SIGNERS, 8))[signers]  # a fixed "look" per signer
    features = np.concatenate([identity, rng.normal(size=(len(signs), 8))],
                              axis=1) + 0.3 * rng.normal(size=(len(signs), 16))
    result = signer_probe(features, signers, signs)
    assert result.chance == pytest.approx(1 / NUM_SIGNERS) and result.num_clips == len(signs)
    assert result.accuracy > 0.9


def test_features_of_the_sign_only_stay_near_chance_on_unseen_signs() -> None:
    rng = np.random.default_rng(1)
    signers, signs = clips()
    # the sign is perfectly encoded, the signer not at all: a probe must not find signers in it
    features = rng.normal(size=(NUM_SIGNS, 8))[signs] + 0.3 * rng.normal(size=(len(signs), 8))
    result = signer_probe(features, signers, signs)
    assert result.accuracy < result.chance + 0.15


def test_signs_split_so_the_probe_never_sees_the_tested_signs() -> None:
    # each signer has a signature per sign only: learnable within a sign, useless on signs not seen
    rng = np.random.default_rng(2)
    signers, signs = clips()
    codes = rng.normal(size=(NUM_SIGNERS, NUM_SIGNS, 8))
    features = codes[signers, signs] + 0.1 * rng.normal(size=(len(signs), 8))
    assert signer_probe(features, signers, signs).accuracy < 0.5


def test_probe_checks_its_inputs() -> None:
    with pytest.raises(ConfigError, match="one signer and one sign per clip"):
        signer_probe(np.zeros((4, 2)), np.array([0, 1, 0]), np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match="at least 2 signers"):
        signer_probe(np.zeros((4, 2)), np.zeros(4), np.array([0, 1, 0, 1]))


def test_probe_on_a_trained_models_penultimate_layer() -> None:
    pytest.importorskip("keras")
    from utils import models
    from utils.evaluation.probe import penultimate_layer, probe_model

    config = models.get_config("fused", "small").replace(num_frames=3, image_size=8, hand_size=6,
                                                         lstm_units=(4,),
                                                          convlstm_filters=(2,), kernel_size=3,
                                                         head_units=(5,),
                                                          fusion="logits", frame_input="hands")
    model = models.build_model("fused", config, num_classes=3, keypoint_dim=6)
    assert penultimate_layer(model, "hands") == "hands_head_dense1"
    assert penultimate_layer(models.build_model("lstm", config, 3, keypoint_dim=6)) == "head_dense1"
    rng = np.random.default_rng(0)
    signers, signs = clips()
    inputs = {"keypoints": rng.normal(size=(len(signs), 3, 6)).astype("float32"),
              "hands": rng.integers(0, 255, (len(signs), 3, 2, 6, 6, 3)).astype("float32")}
    result = probe_model(model, inputs, signers, signs, branch="keypoints")
    assert 0 <= result.accuracy <= 1 and result.num_folds == NUM_SIGNS
    with pytest.raises(ConfigError, match="no hidden head layer"):
        penultimate_layer(models.build_model("lstm", config.replace(head_units=()), 3, keypoint_dim=6))
