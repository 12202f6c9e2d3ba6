"""Tests of utils.tf_preprocessing: the TensorFlow input preparation gives the NumPy one's values (within
1e-5).

Every option of utils.preprocessing.DEFAULT_OPTIONS is enumerated here (an option added later without a
TensorFlow port fails :func:`test_every_preprocessing_option_is_enumerated`), each value on its own and every
combination a registered configuration uses, on synthetic signers (both handednesses, detector drop-outs,
hand gaps, a clip without a pose, one without hands) and, when present, real MP_Data webcam sequences.
"""
from __future__ import annotations

import numpy as np
import pytest

from utils.data.keypoints import LEFT_HAND, POSE, RIGHT_HAND
from utils.inputs import preprocessing

ATOL = 1e-5
NUM_FRAMES = 30

#: Every preprocessing option and the values the parity tests try (the default first).
OPTION_VALUES: dict[str, tuple] = {
    "normalize": (False, True),
    "face": preprocessing.FACE_MODES,
    "mirror": preprocessing.MIRROR_MODES,
    "velocity": (False, True),
    "frames": preprocessing.FRAME_MODES,
    "pose": preprocessing.POSE_MODES,
    "z": (True, False),
    "hand_shape": (False, True),
    "presence": (False, True),
    "fill_gaps": (0, 1, 3),
    "hand_angles": (False, True),
    "draw_landmarks": (False,),  # True has no port: test_drawn_landmarks_stop_the_export
}
KEYPOINT_CASES = [(option, value) for option, values in OPTION_VALUES.items() if option != "frames"
                  for value in values[1:]]


def synthetic_keypoints() -> np.ndarray:
    """(13, 30, 1662) float32: synthetic signers of both hands through the detector, plus edited clips."""
    from utils.data import synthetic

    rng = np.random.default_rng(3)
    signers = synthetic.make_signers(4, rng)
    assert {s.handedness for s in signers} == {"left", "right"}
    clips = [synthetic.simulate_detection(synthetic.simulate_keypoints(sign, signer, rng, 1.0, NUM_FRAMES),
                                          rng)[0]
             for signer, sign in zip(signers * 2, synthetic.SIGNS[:8])]
    kp = np.stack(clips).astype(np.float32)
    edited = kp[:4].copy()
    # right-hand gaps of 1..5 frames, and a left hand gone at the end
    for gap, clip in zip((1, 2, 3, 5), edited):
        clip[10:10 + gap, RIGHT_HAND] = 0
        clip[3:4, RIGHT_HAND] = 0
        clip[-4:, LEFT_HAND] = 0
    edited[1, :, POSE] = 0  # no pose at all: the fallback shoulders
    edited[2, :, LEFT_HAND.start:RIGHT_HAND.stop] = 0  # no hands at all
    edited[3, ::4, POSE] = 0  # some frames without shoulders borrow the clip's mean
    held = kp[4:5].copy()  # a held sign: one hand seen in one place only, the other never seen
    seen = np.flatnonzero(preprocessing.part_presence(held)[0, :, 2:].any(axis=-1))[0]
    hand = held[0, seen, LEFT_HAND] if held[0, seen, LEFT_HAND].any() \
        else held[0, seen, RIGHT_HAND]
    held[0, :, LEFT_HAND], held[0, :, RIGHT_HAND] = hand, 0
    return np.concatenate([kp, edited, held])


def real_keypoints(real_dir) -> np.ndarray:
    """24 real webcam sequences (MP_Data, 4 signers, missing hands) in the course's order, float32."""
    from utils.data.keypoints import mp_data_to_original

    data = np.load(real_dir / "mp_data_signers" / "sequences.npz")
    signers = data["signers"]
    picks = np.concatenate([np.flatnonzero(signers == name)[:6] for name in sorted(set(signers))])[:24]
    return mp_data_to_original(data["keypoints"][picks].astype(np.float32))


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    return synthetic_keypoints()


def assert_tf_matches_numpy(kp: np.ndarray, options: dict) -> np.ndarray:
    """Compare preprocess_keypoints in NumPy and TensorFlow; return the NumPy result."""
    from utils.inputs import tf_preprocessing

    expected = preprocessing.preprocess_keypoints(kp, options)
    got = tf_preprocessing.preprocess_keypoints(kp, options).numpy()
    assert got.shape == expected.shape == (*kp.shape[:2], preprocessing.output_dim(options))
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, err_msg=f"options {options}")
    return expected


def test_every_preprocessing_option_is_enumerated():
    """An option added to DEFAULT_OPTIONS must get values here and a TensorFlow port (PORTED_OPTIONS)."""
    from utils.inputs import tf_preprocessing

    assert set(OPTION_VALUES) == set(preprocessing.DEFAULT_OPTIONS), \
        "add the new option's values to OPTION_VALUES and port it to utils/tf_preprocessing.py"
    assert set(tf_preprocessing.PORTED_OPTIONS) == set(preprocessing.DEFAULT_OPTIONS)
    for option, values in OPTION_VALUES.items():
        assert values[0] == preprocessing.DEFAULT_OPTIONS[option]


def test_drawn_landmarks_stop_the_export():
    from utils.errors import ConfigError
    from utils.inputs import tf_preprocessing

    with pytest.raises(ConfigError, match="draw_landmarks"):
        tf_preprocessing.check_ported({"draw_landmarks": True})
    assert tf_preprocessing.check_ported({"draw_landmarks": False})["draw_landmarks"] is False


def test_an_option_without_a_port_stops_the_export(monkeypatch):
    from utils.errors import ConfigError
    from utils.inputs import tf_preprocessing

    monkeypatch.setitem(preprocessing.DEFAULT_OPTIONS, "new_option", False)
    with pytest.raises(ConfigError, match="new_option"):
        tf_preprocessing.preprocess_keypoints(np.zeros((1, 4, 1662), np.float32), {})


def test_defaults_are_the_raw_keypoints(clips):
    np.testing.assert_array_equal(assert_tf_matches_numpy(clips, {}), clips)


@pytest.mark.parametrize("option, value", KEYPOINT_CASES, ids=[f"{o}={v}" for o, v in KEYPOINT_CASES])
def test_each_option_matches_numpy(clips, option, value):
    """One option changed from the defaults: same values, and the option really changes the clips here."""
    expected = assert_tf_matches_numpy(clips, {option: value})
    baseline = preprocessing.preprocess_keypoints(clips, {})
    assert expected.shape != baseline.shape or not np.allclose(expected, baseline), \
        f"{option}={value!r} changes nothing on the test clips: the parity test would not see it skipped"


def _config_options() -> list[tuple[str, dict]]:
    """Every distinct preprocessing of a registered configuration, with the configurations that use it."""
    from utils import models

    seen: dict[str, tuple[list[str], dict]] = {}
    for config_name, configs in models.CONFIGS.items():
        for model_name, config in configs.items():
            options = preprocessing.resolve_options(config.preprocessing)
            names, _ = seen.setdefault(repr(sorted(options.items(), key=str)), ([], options))
            names.append(f"{model_name}-{config_name}")
    return [("+".join(names), options) for names, options in seen.values()]


CONFIG_OPTIONS = _config_options()


@pytest.mark.parametrize("options", [o for _, o in CONFIG_OPTIONS], ids=[n for n, _ in CONFIG_OPTIONS])
def test_every_registered_configuration_matches_numpy(clips, options):
    assert_tf_matches_numpy(clips, options)


def test_everything_at_once_matches_numpy(clips):
    options = {option: values[-1] for option, values in OPTION_VALUES.items()}
    assert_tf_matches_numpy(clips, options)
    assert_tf_matches_numpy(clips, {**options, "mirror": "height", "z": True, "face": "thin"})


@pytest.mark.real
def test_real_webcam_sequences_match_numpy(real_dir):
    """Real MediaPipe keypoints (hands missing in many frames): every option and every configuration."""
    kp = real_keypoints(real_dir)
    assert (preprocessing.part_presence(kp)[..., 2:] == 0).any(), (
        "the real sequences should miss hands somewhere"
    )
    for option, value in KEYPOINT_CASES:
        assert_tf_matches_numpy(kp, {option: value, "normalize": True})
    for _, options in CONFIG_OPTIONS:
        assert_tf_matches_numpy(kp, options)


def test_handedness_is_decided_per_clip(clips):
    """A batch mixing left- and right-dominant clips: each clip mirrored (or not) on its own."""
    from utils.inputs import tf_preprocessing

    for method in ("motion", "height"):
        flips = preprocessing.left_dominant(clips, method)
        assert flips.any() and not flips.all(), f"the test clips should mix both hands by {method}"
        np.testing.assert_array_equal(tf_preprocessing.left_dominant(clips, method).numpy(), flips)


# ----------------------------------------------------------------------------- time and frames
@pytest.mark.parametrize("source, target", [(64, 32), (64, 64), (64, 16), (64, 48), (720, 32), (37, 20)])
def test_frames_resize_like_opencv_inter_area(source, target):
    """Exactly cv2.INTER_AREA's uint8 values (its rounding differs between halving and other factors)."""
    from utils.inputs import tf_preprocessing

    frames = (np.random.default_rng(0).random((2, 3, source, source, 3)) * 255).astype(np.uint8)
    expected = preprocessing.resize_frames(frames, target)
    np.testing.assert_array_equal(tf_preprocessing.resize_frames(frames, target).numpy(), expected)


@pytest.mark.parametrize("mode", preprocessing.FRAME_MODES)
def test_clip_inputs_match_numpy(mode):
    """The whole input path (time 30 -> 16, frames 64 -> 32, hand crops 40 -> 32, keypoints, frame mode)."""
    from utils.inputs import tf_preprocessing
    from utils.inputs.spec import InputSpec, clip_inputs

    rng = np.random.default_rng(1)
    raw = {"keypoints": synthetic_keypoints()[:3],
           "frames": (rng.random((3, NUM_FRAMES, 64, 64, 3)) * 255).astype(np.uint8),
           "hands": (rng.random((3, NUM_FRAMES, 2, 40, 40, 3)) * 255).astype(np.uint8)}
    spec = InputSpec(num_frames=16, image_size=32, hand_size=32,
                     preprocessing={"normalize": True, "velocity": True, "mirror": "motion", "frames": mode})
    expected = clip_inputs(raw, spec)
    got = tf_preprocessing.clip_inputs(raw, spec)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape
        np.testing.assert_allclose(got[name].numpy(), np.asarray(value, np.float32), atol=ATOL, rtol=0,
                                   err_msg=name)
