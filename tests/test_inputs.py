"""Tests of utils.inputs: the InputSpec read from run.json, how training clips were sampled, and the one input
path (fast: NumPy only, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from utils.data.features import FeatureSet, load_features, save_features
from utils.inputs.spec import InputSpec, as_spec, clip_inputs, prepare_inputs, training_sampling


def _features(with_source: bool = True) -> FeatureSet:
    """Six clips of T=6 frames, 8x8 thumbnails; source clips of 30, 60 or 90 frames at 30 or 25 fps."""
    rng = np.random.default_rng(0)
    count = 6
    return FeatureSet(keypoints=rng.random((count, 6, 1662)).astype(np.float32),
                      frames=rng.integers(0, 255, (count, 6, 8, 8, 3), dtype=np.uint8),
                      labels=np.arange(count) % 2, classes=["a", "b"], groups=np.full(count, ""),
                      split=np.full(count, ""), paths=np.full(count, ""),
                      source_frames=np.array([30, 60, 90, 30, 60, 90]) if with_source else None,
                      source_fps=np.array([30, 30, 30, 25, 25, np.nan],
                                          dtype=np.float32) if with_source else None)


def test_training_sampling_is_the_median_over_the_training_clips():
    sampling = training_sampling(_features(), [0, 1, 2, 3, 4])
    assert sampling["clip_frames"] == 6 and sampling["thumbnail_size"] == 8
    assert sampling["source_frames"] == 60
    assert sampling["source_fps"] == 30
    assert sampling["source_seconds"] == pytest.approx(2.0)  # median of 1, 2, 3, 1.2, 2.4 s
    assert training_sampling(_features(), [5])["source_seconds"] is None  # MP_Data: no frame rate


def test_window_frames_follow_the_duration_then_fall_back():
    spec = InputSpec(num_frames=16, image_size=32, sampling={"clip_frames": 30, "source_frames": 45,
                                                             "source_seconds": 1.5})
    assert (
        spec.window_frames(30.0) == 45 and spec.window_frames(60.0) == 90 and spec.window_frames(25.0) == 38
    )
    assert InputSpec(16, 32, sampling={"clip_frames": 30, "source_frames": 45}).window_frames(60.0) == 45
    assert InputSpec(16, 32, sampling={"clip_frames": 30}).window_frames(60.0) == 30
    assert InputSpec(16, 32).window_frames(60.0) == 16  # a run.json written before `sampling` existed
    assert (spec.clip_frames, spec.thumbnail_size) == (30, 32)


def test_features_file_keeps_source_arrays_and_old_files_still_load(tmp_path):
    new = load_features(save_features(tmp_path / "new.npz", _features()))
    assert new.source_frames.tolist() == [30, 60, 90, 30, 60, 90]
    assert np.isnan(new.source_fps[5]) and new.source_fps[3] == 25
    assert new.subset([1, 2]).source_frames.tolist() == [60, 90]
    old = load_features(save_features(tmp_path / "old.npz", _features(with_source=False)))
    assert old.source_frames is None and old.source_fps is None
    assert training_sampling(old, [0, 1])["source_frames"] is None


@pytest.mark.parametrize("meta, expected", [
    ({"keypoints_from": "mediapipe", "mediapipe_size": 480}, 480),
    ({"keypoints_from": "mediapipe", "mediapipe_size": 0}, 0),
    ({"keypoints_from": "mediapipe"}, 0),  # extracted before the setting existed: full resolution
    ({"keypoints_from": "stored", "mediapipe_size": None}, None)])  # synthetic keypoints: no MediaPipe
def test_mediapipe_size_goes_from_the_features_file_through_run_json_to_the_spec(tmp_path, meta, expected):
    import json

    features = _features()
    features.meta = meta
    loaded = load_features(save_features(tmp_path / "features.npz", features))
    run_info = json.loads(json.dumps({"num_frames": 6, "image_size": 8,
                                      # as run.json stores it
                                      "sampling": training_sampling(loaded, [0, 1, 2])}))
    assert InputSpec.from_run(run_info).mediapipe_size == expected
    assert InputSpec(6, 8).mediapipe_size is None  # a run.json written before `sampling` existed


def test_spec_from_run_json_and_from_config_agree():
    from utils import models

    config = models.get_config("fused", "recommended")
    from_config = InputSpec.from_config("fused", config)
    run_info = {"model": "fused", "config": config.to_dict(),
                "inputs": list(models.model_inputs("fused", config)), "num_frames": config.num_frames,
                "image_size": config.image_size, "sampling": {"clip_frames": 30, "thumbnail_size": 64}}
    from_run = as_spec(run_info)
    assert (from_run.num_frames, from_run.image_size, from_run.inputs) == (
        from_config.num_frames,
        from_config.image_size,
        from_config.inputs,
    )
    assert from_run.hand_size == from_config.hand_size
    assert from_run.options == from_config.options and from_run.thumbnail_size == 64
    assert as_spec(("fused", config)) == from_config and as_spec(from_run) is from_run


def test_clip_inputs_is_what_prepare_inputs_gives_for_stored_clips():
    """A features clip's stored arrays through clip_inputs equal prepare_inputs: one path, not two."""
    from utils import models

    features = _features()
    spec = InputSpec.from_config(
        "fused",
        models.get_config("fused", "recommended").replace(num_frames=4, image_size=5, frame_input="frames"),
    )
    prepared = prepare_inputs(features, spec, [2])
    direct = clip_inputs({"keypoints": features.keypoints[2:3], "frames": features.frames[2:3]}, spec)
    assert prepared["frames"].shape == (1, 4, 5, 5, 3)
    for name in ("keypoints", "frames"):
        np.testing.assert_array_equal(prepared[name], direct[name])


def test_drawn_landmarks_reach_a_frame_model_through_the_one_input_path():
    from utils import models

    features = _features()
    features.keypoints[:] = 0
    features.keypoints[:, :, 1662 - 63:1662 - 61] = 0.5  # the right hand's wrist in the middle of every frame
    config = models.get_config("convlstm", "small").replace(num_frames=6, image_size=8)
    plain = prepare_inputs(features, ("convlstm", config))
    drawn_config = config.replace(preprocessing={**config.preprocessing, "draw_landmarks": True})
    drawn = prepare_inputs(features, ("convlstm", drawn_config))
    assert set(drawn) == {"frames"}  # the keypoints were drawn, not fed
    assert not np.array_equal(drawn["frames"], plain["frames"])
    assert InputSpec.from_config("convlstm", drawn_config).draws_landmarks
    with pytest.raises(ValueError, match="keypoints"):
        clip_inputs({"frames": features.frames}, ("convlstm", drawn_config))


def test_mirrored_inputs_flip_frames_swap_hand_crops_and_mirror_keypoints():
    """The second view of test-time flip averaging: the same clip mirrored, through the one input path."""
    from utils import models
    from utils.inputs.preprocessing import mirror_keypoints, preprocess_keypoints

    features = _features()
    features.hand_crops = np.random.default_rng(1).integers(0, 255, (6, 6, 2, 4, 4, 3), dtype=np.uint8)
    config = models.get_config("fused", "recommended").replace(num_frames=6, image_size=8, hand_size=4,
                                                                 frame_input="both")
    spec = InputSpec.from_config("fused", config)
    assert config.preprocessing["frames"] == "diff"  # flips commute with frame differences
    plain, mirrored = prepare_inputs(features, spec,
                                     [1, 2]), prepare_inputs(features, spec, [1, 2], mirrored=True)
    np.testing.assert_array_equal(mirrored["frames"], plain["frames"][:, :, :, ::-1])
    np.testing.assert_array_equal(mirrored["hands"][:, :, 0], plain["hands"][:, :, 1, :, ::-1])
    np.testing.assert_array_equal(mirrored["hands"][:, :, 1], plain["hands"][:, :, 0, :, ::-1])
    expected = preprocess_keypoints(mirror_keypoints(features.keypoints[[1, 2]]), config.preprocessing)
    np.testing.assert_allclose(mirrored["keypoints"], expected, atol=1e-6)
    assert not np.allclose(mirrored["frames"], plain["frames"])
