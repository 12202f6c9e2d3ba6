"""Frames, hand crops and keypoints flipped together; the fused model's branches, fusions and modality dropout."""
from __future__ import annotations

import numpy as np
import pytest

from utils import keypoints as K
from utils.preprocessing import augment_clips


def two_hands_clip(num_frames: int = 3, height: int = 72, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Noisy frames with an asymmetric pattern at each hand, and keypoints placing both hands there."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    vectors = np.zeros((num_frames, K.KEYPOINT_DIM), np.float32)
    angles = np.linspace(0, 2 * np.pi, 21, endpoint=False)
    for t in range(num_frames):
        for hand, (x, y, r) in ((K.LEFT_HAND, (0.31 + 0.05 * t, 0.43, 0.071)), (K.RIGHT_HAND, (0.67, 0.58 - 0.04 * t, 0.093))):
            points = np.stack([x + r * np.cos(angles), y + r * np.sin(angles), np.zeros(21)], axis=1)
            vectors[t, hand] = points.reshape(-1)
    return frames, vectors


def test_flip_mirrors_frames_swaps_and_mirrors_hand_crops_and_mirrors_keypoints() -> None:
    frames, vectors = two_hands_clip()
    crops = K.hand_crops(frames, vectors, size=16)
    flipped_kp, flipped_frames, flipped_crops = augment_clips(vectors[None], frames[None], np.random.default_rng(0),
                                                              {"mirror": 1.0}, hand_crops=crops[None])
    assert np.array_equal(flipped_frames[0], frames[:, :, ::-1])
    assert np.array_equal(flipped_crops[0, :, 1], crops[:, 0, :, ::-1]), "right crop = mirrored left crop"
    assert np.array_equal(flipped_crops[0, :, 0], crops[:, 1, :, ::-1])
    # the crops cut afresh from the flipped frames at the flipped keypoints are the same crops
    recut = K.hand_crops(flipped_frames[0], flipped_kp[0], size=16)
    assert np.abs(recut.astype(int) - flipped_crops[0].astype(int)).mean() < 2.0
    unflipped = augment_clips(vectors[None], frames[None], np.random.default_rng(0), {"mirror": 0.0},
                              hand_crops=crops[None])
    assert np.array_equal(unflipped[2][0], crops)
    assert len(augment_clips(vectors[None], frames[None], np.random.default_rng(0), {"mirror": 1.0})) == 2
