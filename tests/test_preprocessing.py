"""Keypoint preprocessing: normalisation, face selection, mirroring, handedness, velocities, augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from utils.data import keypoints as K
from utils.inputs import preprocessing as P


def make_clip(num_frames: int = 6, left_hand: bool = False, right_hand: bool = True, seed: int = 0,
              centre: tuple[float, float] = (0.5, 0.5), width: float = 0.2) -> np.ndarray:
    """One raw clip (T, 1662): level shoulders at centre ± width/2, a face, and moving hands."""
    rng = np.random.default_rng(seed)
    face = np.zeros((num_frames, 468, 3), np.float32)
    pose = np.zeros((num_frames, 33, 4), np.float32)
    hands = [np.zeros((num_frames, 21, 3), np.float32) for _ in range(2)]
    cx, cy = centre
    face[..., 0] = cx + rng.normal(0, 0.03, 468)
    face[..., 1] = cy - 0.2 + rng.normal(0, 0.03, 468)
    face[..., 2] = rng.normal(0, 0.01, 468)
    pose[..., :2] = rng.uniform(0.3, 0.7, (33, 2))
    pose[..., 3] = 0.9
    pose[:, K.POSE_LEFT_SHOULDER, :2] = (cx + width / 2, cy)
    pose[:, K.POSE_RIGHT_SHOULDER, :2] = (cx - width / 2, cy)
    t = np.linspace(0, 1, num_frames)[:, None]
    for hand, present, direction in ((0, left_hand, 1), (1, right_hand, -1)):
        if present:
            hands[hand][..., 0] = cx + direction * (0.1 + 0.2 * t) + rng.normal(0, 0.01, 21)
            hands[hand][..., 1] = cy + 0.1 + rng.normal(0, 0.01, 21)
            hands[hand][..., 2] = rng.normal(0, 0.01, 21)
    return K.join_parts(face, pose, hands[0], hands[1])


def test_normalize_puts_shoulders_at_half_unit_width():
    kp = make_clip(centre=(0.3, 0.6), width=0.25)[None]
    pose = P.normalize_keypoints(kp)[..., K.POSE].reshape(1, -1, 33, 4)
    np.testing.assert_allclose(pose[..., K.POSE_LEFT_SHOULDER, :2], [[[0.5, 0.0]] * kp.shape[1]], atol=1e-6)
    np.testing.assert_allclose(pose[..., K.POSE_RIGHT_SHOULDER, :2], [[[-0.5, 0.0]] * kp.shape[1]], atol=1e-6)
    np.testing.assert_allclose(pose[..., 3], 0.9)  # visibility untouched


def test_normalize_removes_position_and_scale():
    near = make_clip(centre=(0.5, 0.5), width=0.2)
    far = near.copy()
    for part in (K.FACE, K.POSE, K.LEFT_HAND, K.RIGHT_HAND):  # the same signer, half as big and elsewhere
        step = 4 if part == K.POSE else 3
        block = far[:, part].reshape(far.shape[0], -1, step)
        present = np.any(block != 0, axis=(1, 2))[:, None]
        block[..., 0] = np.where(present, 0.2 + 0.5 * block[..., 0], 0)
        block[..., 1] = np.where(present, 0.1 + 0.5 * block[..., 1], 0)
        block[..., 2] = np.where(present, 0.5 * block[..., 2], 0)
        far[:, part] = block.reshape(far.shape[0], -1)
    np.testing.assert_allclose(P.normalize_keypoints(near[None]), P.normalize_keypoints(far[None]), atol=1e-5)


def test_normalize_keeps_missing_parts_zero_and_survives_frames_without_pose():
    kp = make_clip(left_hand=False)[None]
    kp[0, 2, K.POSE] = 0  # MediaPipe lost the pose in frame 2
    out = P.normalize_keypoints(kp)
    assert np.all(out[..., K.LEFT_HAND] == 0)
    assert np.all(out[0, 2, K.POSE] == 0)
    assert np.all(np.isfinite(out))
    assert np.abs(out[0, 2, K.RIGHT_HAND]).max() < 5  # normalised with the clip's average shoulders
    no_pose = kp.copy()
    no_pose[..., K.POSE] = 0
    assert np.all(np.isfinite(P.normalize_keypoints(no_pose)))


def test_mirror_twice_is_identity_raw_and_normalized():
    kp = make_clip(left_hand=True)[None]
    np.testing.assert_allclose(P.mirror_keypoints(P.mirror_keypoints(kp)), kp, atol=1e-6)
    norm = P.normalize_keypoints(kp)
    np.testing.assert_allclose(P.mirror_keypoints(P.mirror_keypoints(norm, True), True), norm, atol=1e-6)


def test_mirror_swaps_hands_and_pose_sides_and_flips_x():
    kp = make_clip(left_hand=False, right_hand=True)[None]
    mirrored = P.mirror_keypoints(kp)
    assert np.all(mirrored[..., K.RIGHT_HAND] == 0)  # the only hand is now the left one
    right = kp[..., K.RIGHT_HAND].reshape(1, -1, 21, 3)
    left = mirrored[..., K.LEFT_HAND].reshape(1, -1, 21, 3)
    np.testing.assert_allclose(left[..., 0], 1 - right[..., 0], atol=1e-6)
    np.testing.assert_allclose(left[..., 1:], right[..., 1:])
    pose, mirrored_pose = (a[..., K.POSE].reshape(1, -1, 33, 4) for a in (kp, mirrored))
    np.testing.assert_allclose(mirrored_pose[..., 11, 0], 1 - pose[..., 12, 0], atol=1e-6)  # shoulders swap
    np.testing.assert_allclose(mirrored_pose[..., 15, :], pose[..., 16, :] * [-1, 1, 1, 1] + [1, 0, 0, 0],
                               atol=1e-6)
    # the nose has no twin
    np.testing.assert_allclose(mirrored_pose[..., 0, 0], 1 - pose[..., 0, 0], atol=1e-6)


def test_canonicalize_handedness_mirrors_only_left_handed_clips():
    right_handed = make_clip(right_hand=True, left_hand=False, seed=1)
    left_handed = P.mirror_keypoints(make_clip(right_hand=True, left_hand=False, seed=2))[0]
    batch = np.stack([right_handed, left_handed])
    assert P.left_dominant(batch).tolist() == [False, True]
    out = P.canonicalize_handedness(batch)
    np.testing.assert_array_equal(out[0], right_handed)
    assert np.all(out[1][..., K.LEFT_HAND] == 0) and np.any(out[1][..., K.RIGHT_HAND] != 0)


def test_both_hands_seen_dominant_is_the_one_held_higher():
    kp = make_clip(left_hand=True, right_hand=True)[None]
    left = kp[..., K.LEFT_HAND].reshape(1, -1, 21, 3).copy()
    left[..., 1] += 0.2  # the left hand rests lower (larger y); the right one signs
    kp[..., K.LEFT_HAND] = left.reshape(1, kp.shape[1], -1)
    assert P.left_dominant(kp, "height").tolist() == [False]
    assert P.left_dominant(P.mirror_keypoints(kp), "height").tolist() == [True]


def test_dominant_hand_by_motion_is_the_moving_one_even_when_the_other_is_higher():
    kp = make_clip(left_hand=True, right_hand=True)[None]  # both hands move the same way in make_clip
    left = kp[..., K.LEFT_HAND].reshape(1, -1, 21, 3).copy()
    left[..., 0] = left[:, :1, :, 0]  # the left hand holds still ...
    left[..., 1] = 0.3  # ... and higher than the right one: the height rule calls it dominant
    kp[..., K.LEFT_HAND] = left.reshape(1, kp.shape[1], -1)
    assert P.left_dominant(kp, "height").tolist() == [True]
    assert P.left_dominant(kp, "motion").tolist() == [False]
    assert P.left_dominant(P.mirror_keypoints(kp), "motion").tolist() == [True]


def test_canonical_handedness_makes_a_clip_and_its_mirror_image_identical():
    kp = np.stack([make_clip(left_hand=False, seed=s) for s in range(3)])  # one right hand signs
    options = {"normalize": True, "mirror": "motion", "face": "thin", "pose": "upper", "hand_shape": True}
    np.testing.assert_allclose(P.preprocess_keypoints(P.mirror_keypoints(kp), options),
                               P.preprocess_keypoints(kp, options), atol=1e-5)


def test_fill_hand_gaps_interpolates_short_gaps_only():
    kp = make_clip(num_frames=12)[None]
    hand = kp[..., K.RIGHT_HAND].copy()
    gappy = kp.copy()
    gappy[0, [3, 4], K.RIGHT_HAND] = 0  # a 2-frame drop-out
    gappy[0, 7:10, K.RIGHT_HAND] = 0  # a 3-frame drop-out
    gappy[0, 0, K.RIGHT_HAND] = 0  # at the start: nothing before it
    filled = P.fill_hand_gaps(gappy, max_gap=2)
    expected = hand[0, 2] + (hand[0, 5] - hand[0, 2]) * np.array([[1 / 3], [2 / 3]])
    np.testing.assert_allclose(filled[0, [3, 4], K.RIGHT_HAND], expected, atol=1e-6)
    assert np.all(filled[0, 7:10, K.RIGHT_HAND] == 0) and np.all(filled[0, 0, K.RIGHT_HAND] == 0)
    np.testing.assert_array_equal(filled[..., K.LEFT_HAND], 0)  # a hand never seen stays missing
    np.testing.assert_array_equal(P.fill_hand_gaps(gappy, 0), gappy)


def test_hand_shape_ignores_position_and_size_and_is_zero_when_missing():
    kp = make_clip(left_hand=False)[None]
    moved = kp.copy()
    hand = moved[..., K.RIGHT_HAND].reshape(1, -1, 21, 3)
    hand[..., :2] = 0.1 + 0.5 * hand[..., :2]
    hand[..., 2] *= 0.5
    moved[..., K.RIGHT_HAND] = hand.reshape(1, kp.shape[1], -1)
    shape, shape_moved = P.hand_shape(kp), P.hand_shape(moved)
    assert shape.shape == (1, kp.shape[1], 2 * 20 * 3)
    np.testing.assert_allclose(shape_moved, shape, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(shape[..., :60], 0)  # no left hand
    assert P.hand_shape(kp, use_z=False).shape[-1] == 2 * 20 * 2


@pytest.mark.parametrize("mode,points", [("full", 468), ("thin", len(P.THIN_FACE_POINTS)), ("drop", 0)])
def test_select_face_dims(mode, points):
    kp = make_clip()[None]
    out = P.select_face(kp, mode)
    assert out.shape == (1, kp.shape[1], points * 3 + K.POSE_DIM + 2 * K.HAND_DIM)
    np.testing.assert_array_equal(out[..., points * 3:], kp[..., K.FACE.stop:])  # the rest is unchanged
    assert 40 <= len(P.THIN_FACE_POINTS) <= 80 and len(set(P.THIN_FACE_POINTS)) == len(P.THIN_FACE_POINTS)


@pytest.mark.parametrize("options", [
    None, {"normalize": True}, {"face": "thin", "velocity": True},
    {"normalize": True, "face": "drop", "mirror": True, "velocity": True},
    {"normalize": True, "face": "drop", "pose": "upper", "z": False, "hand_shape": True, "presence": True,
     "fill_gaps": 3, "mirror": "motion", "velocity": True},
    {"face": "thin", "pose": "upper", "hand_shape": True, "mirror": "height"},
])
def test_output_dim_matches_preprocess(options):
    kp = np.stack([make_clip(seed=s) for s in range(3)])
    out = P.preprocess_keypoints(kp, options)
    assert out.shape == (3, kp.shape[1], P.output_dim(options)) and out.dtype == np.float32


def test_faithful_options_are_the_identity():
    kp = np.stack([make_clip(seed=s) for s in range(2)])
    np.testing.assert_array_equal(P.preprocess_keypoints(kp, None), kp)


def test_velocity_is_frame_difference_and_zero_where_a_hand_appears():
    kp = make_clip(right_hand=True)[None]
    kp[0, :2, K.RIGHT_HAND] = 0  # the hand appears in frame 2
    out = P.preprocess_keypoints(kp, {"velocity": True})
    velocity = out[..., K.KEYPOINT_DIM:]
    assert np.all(velocity[:, 0] == 0)
    assert np.all(velocity[0, 2, K.RIGHT_HAND] == 0)  # not a jump from zero
    np.testing.assert_allclose(velocity[0, 4, K.RIGHT_HAND], kp[0, 4, K.RIGHT_HAND] - kp[0, 3, K.RIGHT_HAND],
                               atol=1e-6)


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="face"):
        P.output_dim({"face": "half"})
    with pytest.raises(ValueError, match="unknown preprocessing"):
        P.output_dim({"normalise": True})
    with pytest.raises(ValueError, match="pose"):
        P.output_dim({"pose": "lower"})
    with pytest.raises(ValueError, match="fill_gaps"):
        P.output_dim({"fill_gaps": -1})
    with pytest.raises(ValueError, match="mirror"):
        P.output_dim({"mirror": "yes"})
    assert P.resolve_options({"mirror": True})["mirror"] == "motion"
    with pytest.raises(ValueError, match="unknown augmentation"):
        P.augment_batch(make_clip()[None], np.random.default_rng(0), {"flip": 0.5})


def test_augment_is_seeded_keeps_missing_parts_and_changes_values():
    kp = np.stack([make_clip(seed=s, left_hand=False) for s in range(4)])
    options = {"scale": 0.1, "rotate": 10, "shift": 0.05, "time_warp": 0.2, "drop_frames": 0.2}
    first = P.augment_batch(kp, np.random.default_rng(3), options)
    again = P.augment_batch(kp, np.random.default_rng(3), options)
    np.testing.assert_array_equal(first, again)
    assert first.shape == kp.shape and not np.allclose(first, kp)
    assert np.all(first[..., K.LEFT_HAND] == 0)  # a missing hand is never invented
    np.testing.assert_array_equal(P.augment_batch(kp, np.random.default_rng(3), {}), kp)


def test_augment_mirror_flips_frames_with_keypoints():
    kp = np.stack([make_clip(seed=s) for s in range(6)])
    frames = np.zeros((6, kp.shape[1], 4, 4, 3), np.uint8)
    frames[..., 0, :] = 255  # a bright left column
    aug_kp, aug_frames = P.augment_clips(kp, frames, np.random.default_rng(0), {"mirror": 0.5})
    flipped = aug_frames[:, 0, 0, -1, 0] == 255
    assert 0 < flipped.sum() < 6
    mirrored = np.all(aug_kp[..., K.RIGHT_HAND] == 0, axis=(1, 2))
    np.testing.assert_array_equal(flipped, mirrored)


def test_resample_time_and_resize_frames():
    frames = np.random.default_rng(0).integers(0, 255, (2, 10, 16, 16, 3), dtype=np.uint8)
    sampled = P.resample_time(frames, 5)
    assert sampled.shape == (2, 5, 16, 16, 3)
    np.testing.assert_array_equal(sampled[:, 0], frames[:, 0])
    np.testing.assert_array_equal(sampled[:, -1], frames[:, -1])
    assert P.resize_frames(frames, 8).shape == (2, 10, 8, 8, 3)
    assert P.resize_frames(frames, 16) is frames


def test_frame_diff_option_removes_static_appearance():
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 3, 3, 3), dtype=np.uint8)
    assert P.preprocess_frames(frames, {}) is frames  # "rgb": unchanged
    diff = P.preprocess_frames(frames, {"frames": "diff"})
    assert diff.dtype == np.float32 and diff.shape == frames.shape
    np.testing.assert_array_equal(diff[:, 0], 0)
    np.testing.assert_array_equal(diff[:, 2], frames[:, 2].astype(np.float32) - frames[:, 1])
    static = np.repeat(frames[:, :1], 4, axis=1)  # a still clip: nothing left
    np.testing.assert_array_equal(P.preprocess_frames(static, {"frames": "diff"}), 0)
    with pytest.raises(ValueError, match="frames"):
        P.resolve_options({"frames": "gray"})


def test_color_augmentation_changes_frames_only():
    kp = np.stack([make_clip(seed=s) for s in range(3)])
    frames = np.random.default_rng(1).integers(0, 255, (3, kp.shape[1], 4, 4, 3), dtype=np.uint8)
    aug_kp, aug_frames = P.augment_clips(kp, frames, np.random.default_rng(0), {"color": 0.3})
    np.testing.assert_array_equal(aug_kp, kp)
    assert aug_frames.dtype == np.uint8 and aug_frames.shape == frames.shape
    assert not np.array_equal(aug_frames, frames)
    again = P.augment_clips(kp, frames, np.random.default_rng(0), {"color": 0.3})[1]
    np.testing.assert_array_equal(aug_frames, again)


def _rotate_xy(kp: np.ndarray, degrees: float, scale: float = 1.0,
               shift: tuple[float, float] = (0, 0)) -> np.ndarray:
    """Both hands of raw clips turned about (0.5, 0.5) in the image plane, scaled (z too: nearer the camera),
    shifted."""
    out = kp.copy().reshape(*kp.shape[:2], -1)
    angle = np.deg2rad(degrees)
    for part, size in ((K.LEFT_HAND, 3), (K.RIGHT_HAND, 3)):
        points = out[..., part].reshape(*kp.shape[:2], -1, size)
        seen = np.any(points != 0, axis=(-1, -2))[..., None]
        x, y = points[..., 0] - 0.5, points[..., 1] - 0.5
        new_x = scale * (np.cos(angle) * x - np.sin(angle) * y) + 0.5 + shift[0]
        new_y = scale * (np.sin(angle) * x + np.cos(angle) * y) + 0.5 + shift[1]
        points[..., 0], points[..., 1] = np.where(seen, new_x, 0), np.where(seen, new_y, 0)
        points[..., 2] *= scale
        out[..., part] = points.reshape(*kp.shape[:2], -1)
    return out


def test_hand_angles_ignore_in_plane_rotation_scale_and_shift_and_are_zero_when_missing():
    kp = np.stack([make_clip(seed=s) for s in range(2)])
    angles = P.hand_angles(kp)
    assert angles.shape == (2, kp.shape[1], 2 * P.HAND_ANGLE_DIM) and angles.dtype == np.float32
    np.testing.assert_allclose(P.hand_angles(_rotate_xy(kp, 40, 1.7, (0.1, -0.05))), angles, atol=1e-4)
    np.testing.assert_array_equal(angles[..., :P.HAND_ANGLE_DIM], 0)  # the left hand is not there
    assert np.all(np.abs(angles[..., P.HAND_ANGLE_DIM:P.HAND_ANGLE_DIM + 15]) <= 1 + 1e-6)  # cosines
    # curl the index finger's tip back: its last bend and the tip distances change, nothing else
    bent = kp.copy()
    hand = bent[..., K.RIGHT_HAND].reshape(2, -1, 21, 3)
    hand[..., 8, :2] = hand[..., 6, :2]
    bent[..., K.RIGHT_HAND] = hand.reshape(2, kp.shape[1], -1)
    changed = np.any(~np.isclose(P.hand_angles(bent), angles, atol=1e-5), axis=(0, 1))
    # index bend 3, tip pairs
    expected = {P.HAND_ANGLE_DIM + 5} | {P.HAND_ANGLE_DIM + 15 + i for i in (0, 4, 5, 6)}
    assert set(np.flatnonzero(changed)) == expected


def test_hand_angles_option_appends_them_and_output_dim_agrees():
    kp = np.stack([make_clip(seed=s, left_hand=True) for s in range(2)])
    options = {"normalize": True, "face": "drop", "pose": "upper", "z": False, "velocity": True}
    base = P.preprocess_keypoints(kp, options)
    out = P.preprocess_keypoints(kp, {**options, "hand_angles": True})
    assert out.shape[-1] == P.output_dim({**options,
                                          "hand_angles": True}) == base.shape[-1] + 4 * P.HAND_ANGLE_DIM
    half = base.shape[-1] // 2
    np.testing.assert_allclose(out[..., :half], base[..., :half])
    np.testing.assert_allclose(out[..., half:half + 2 * P.HAND_ANGLE_DIM], P.hand_angles(kp))


def test_hand_drop_removes_one_hand_for_a_span_and_nothing_else():
    kp = np.stack([make_clip(seed=s, left_hand=True, num_frames=10) for s in range(40)])
    out = P.augment_batch(kp, np.random.default_rng(0), {"hand_drop": 0.5})
    np.testing.assert_array_equal(out, P.augment_batch(kp, np.random.default_rng(0), {"hand_drop": 0.5}))
    other = np.ones(kp.shape[-1], bool)
    other[K.LEFT_HAND] = other[K.RIGHT_HAND] = False
    np.testing.assert_array_equal(out[..., other], kp[..., other])  # face and pose untouched
    lost = P.part_presence(kp)[..., 2:] & ~P.part_presence(out)[..., 2:]  # (N, T, 2)
    dropped = lost.any(axis=(1, 2))
    assert 5 < dropped.sum() < 35  # about half the clips
    assert not np.any(lost.any(axis=1).all(axis=1))  # one hand per clip
    assert np.all(lost.sum(axis=(1, 2)) <= 5)  # at most half of the 10 frames
    for hand, index in ((K.LEFT_HAND, 0), (K.RIGHT_HAND, 1)):  # values of hands still there are unchanged
        still = ~lost[..., index]
        np.testing.assert_array_equal(out[..., hand][still], kp[..., hand][still])


def test_finger_jitter_changes_finger_points_only_and_keeps_missing_hands():
    kp = np.stack([make_clip(seed=s) for s in range(3)])
    out = P.augment_batch(kp, np.random.default_rng(1), {"finger_jitter": 0.1})
    np.testing.assert_array_equal(out, P.augment_batch(kp, np.random.default_rng(1), {"finger_jitter": 0.1}))
    other = np.ones(kp.shape[-1], bool)
    other[K.RIGHT_HAND] = False
    np.testing.assert_array_equal(out[..., other], kp[..., other])  # left hand (missing), face, pose
    hand, moved = kp[..., K.RIGHT_HAND].reshape(3, -1, 21, 3), out[..., K.RIGHT_HAND].reshape(3, -1, 21, 3)
    np.testing.assert_array_equal(moved[..., 0, :], hand[..., 0, :])  # the wrist stays
    np.testing.assert_array_equal(moved[..., 2], hand[..., 2])  # z stays
    shift = moved[..., 1:, :2] - hand[..., 1:, :2]
    assert np.all(np.abs(shift) > 0)
    palm = np.linalg.norm(hand[..., P.PALM_POINTS, :2] - hand[..., :1, :2], axis=-1).mean(-1)
    assert 0.05 < np.std(shift / palm[..., None, None]) < 0.2  # about 0.1 palm sizes


def test_new_augmentations_leave_the_older_options_batches_unchanged():
    kp = np.stack([make_clip(seed=s) for s in range(4)])
    options = {"scale": 0.1, "rotate": 10, "time_warp": 0.2}
    before = P.augment_batch(kp, np.random.default_rng(5), options)
    np.testing.assert_array_equal(P.augment_batch(kp, np.random.default_rng(5),
                                                  {**options, "hand_drop": 0.0}), before)


# ----------------------------------------------------------------------------- frame options of the fused
# model
def test_first_frame_mode_is_the_change_since_the_first_frame():
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 5, 5, 3), dtype=np.uint8)
    out = P.preprocess_frames(frames, {"frames": "first"})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], 0)
    np.testing.assert_array_equal(out[:, 3], frames[:, 3].astype(np.float32) - frames[:, 0])
    with pytest.raises(ValueError, match="frames"):
        P.preprocess_frames(frames, {"frames": "last"})


def test_random_crops_zoom_and_shift_each_clip_as_a_whole():
    frames = np.zeros((3, 4, 16, 16, 3), np.uint8)
    frames[..., 7:9, 7:9, :] = 255  # a white square in the middle of every frame
    out = P.random_crops(frames, np.random.default_rng(1), 0.5)
    assert out.shape == frames.shape and out.dtype == np.uint8
    for clip in out:  # one window per clip: every frame of a clip is cut the same way
        for frame in clip[1:]:
            np.testing.assert_array_equal(frame, clip[0])
    assert (out[:, 0].reshape(3, -1) > 0).sum(axis=1).min() > 4 * 3  # the square got larger (zoomed in)
    np.testing.assert_array_equal(P.random_crops(frames, np.random.default_rng(1), 0.0), frames)


def test_crop_augmentation_cuts_frames_and_hand_crops_and_leaves_keypoints():
    kp = make_clip(4)[None].repeat(2, axis=0)
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 16, 16, 3), dtype=np.uint8)
    crops = np.random.default_rng(1).integers(0, 255, (2, 4, 2, 8, 8, 3), dtype=np.uint8)
    out_kp, out_frames, out_crops = P.augment_clips(kp, frames, np.random.default_rng(0), {"crop": 0.4},
                                                     hand_crops=crops)
    np.testing.assert_array_equal(out_kp, kp)
    assert out_frames.shape == frames.shape and not np.array_equal(out_frames, frames)
    assert out_crops.shape == crops.shape and not np.array_equal(out_crops, crops)


def test_drawn_landmarks_put_a_landmark_pixel_where_the_keypoint_is():
    kp = np.zeros((1, 2, K.KEYPOINT_DIM), np.float32)
    hand = np.zeros((21, 3), np.float32)
    hand[:, :2] = (0.25, 0.75)  # every point of the right hand at x = 0.25, y = 0.75
    kp[0, 1, K.RIGHT_HAND] = hand.ravel()  # frame 1 only; frame 0 has nothing to draw
    frames = np.zeros((1, 2, 32, 32, 3), np.uint8)
    drawn = P.draw_clip_landmarks(frames, kp)
    assert drawn[0, 1, 24, 8].any()  # row = y * 32, column = x * 32
    assert not drawn[0, 1, 4, 28].any()  # far from the hand: untouched
    np.testing.assert_array_equal(drawn[0, 0], 0)
    np.testing.assert_array_equal(frames, 0)  # a copy, not drawn in place
    with pytest.raises(ValueError, match="same clips and frames"):
        P.draw_clip_landmarks(frames[:, :1], kp)
