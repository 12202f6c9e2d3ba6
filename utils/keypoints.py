"""The 1662-number MediaPipe Holistic keypoint layout, order conversion, extraction and drawing.

Layout of one frame's vector, in the original project's order::

    face        468 x (x, y, z)               = 1404   [   0:1404]
    pose         33 x (x, y, z, visibility)   =  132   [1404:1536]
    left hand    21 x (x, y, z)               =   63   [1536:1599]
    right hand   21 x (x, y, z)               =   63   [1599:1662]

Coordinates are MediaPipe's: x and y normalised to the image (0..1, origin top-left),
z roughly in the same scale as x. A part MediaPipe did not find is all zeros.
The widespread "MP_Data" tutorials store the same numbers with the pose first
(pose, face, left, right); :func:`mp_data_to_original` and :func:`original_to_mp_data`
convert between the two.
"""
from __future__ import annotations

import numpy as np

FACE_POINTS, POSE_POINTS, HAND_POINTS = 468, 33, 21
FACE_DIM = FACE_POINTS * 3  # 1404
POSE_DIM = POSE_POINTS * 4  # 132 (x, y, z, visibility)
HAND_DIM = HAND_POINTS * 3  # 63
KEYPOINT_DIM = FACE_DIM + POSE_DIM + 2 * HAND_DIM  # 1662

PARTS = ("face", "pose", "left_hand", "right_hand")
FACE = slice(0, FACE_DIM)
POSE = slice(FACE.stop, FACE.stop + POSE_DIM)
LEFT_HAND = slice(POSE.stop, POSE.stop + HAND_DIM)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + HAND_DIM)
PART_SLICES = {"face": FACE, "pose": POSE, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND}
PART_SHAPES = {"face": (FACE_POINTS, 3), "pose": (POSE_POINTS, 4),
               "left_hand": (HAND_POINTS, 3), "right_hand": (HAND_POINTS, 3)}

# The MP_Data tutorial order: pose, face, left hand, right hand.
MP_DATA_POSE = slice(0, POSE_DIM)
MP_DATA_FACE = slice(POSE_DIM, POSE_DIM + FACE_DIM)
MP_DATA_LEFT_HAND = slice(MP_DATA_FACE.stop, MP_DATA_FACE.stop + HAND_DIM)
MP_DATA_RIGHT_HAND = slice(MP_DATA_LEFT_HAND.stop, MP_DATA_LEFT_HAND.stop + HAND_DIM)

# A few pose landmark indices (MediaPipe Pose topology) used across the course.
POSE_NOSE, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 0, 11, 12
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16


def _check_last_dim(array: np.ndarray, name: str = "keypoints") -> np.ndarray:
    array = np.asarray(array)
    if array.shape[-1:] != (KEYPOINT_DIM,):
        raise ValueError(f"{name} must end with {KEYPOINT_DIM} numbers per frame, got shape {array.shape}")
    return array


def mp_data_to_original(array: np.ndarray) -> np.ndarray:
    """Reorder (..., 1662) vectors from MP_Data order (pose, face, left, right) to ours (face, pose, left, right)."""
    array = _check_last_dim(array)
    return np.concatenate([array[..., MP_DATA_FACE], array[..., MP_DATA_POSE],
                           array[..., MP_DATA_LEFT_HAND], array[..., MP_DATA_RIGHT_HAND]], axis=-1)


def original_to_mp_data(array: np.ndarray) -> np.ndarray:
    """Reorder (..., 1662) vectors from our order (face, pose, left, right) to MP_Data order (pose, face, left, right)."""
    array = _check_last_dim(array)
    return np.concatenate([array[..., POSE], array[..., FACE],
                           array[..., LEFT_HAND], array[..., RIGHT_HAND]], axis=-1)


def split_parts(array: np.ndarray) -> dict[str, np.ndarray]:
    """Split (..., 1662) vectors into per-part landmark arrays, e.g. face (..., 468, 3), pose (..., 33, 4)."""
    array = _check_last_dim(array)
    lead = array.shape[:-1]
    return {part: array[..., PART_SLICES[part]].reshape(*lead, *PART_SHAPES[part]) for part in PARTS}


def join_parts(face: np.ndarray, pose: np.ndarray, left_hand: np.ndarray, right_hand: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_parts`: per-part landmark arrays back to (..., 1662) float32 vectors."""
    parts = [np.asarray(p, dtype=np.float32) for p in (face, pose, left_hand, right_hand)]
    lead = parts[0].shape[:-2]
    for part, name in zip(parts, PARTS):
        if part.shape != (*lead, *PART_SHAPES[name]):
            raise ValueError(f"{name} must have shape {(*lead, *PART_SHAPES[name])}, got {part.shape}")
    return np.concatenate([p.reshape(*lead, -1) for p in parts], axis=-1)


def parts_present(array: np.ndarray) -> np.ndarray:
    """Which parts are non-zero in each (..., 1662) vector, as bool (..., 4) in PARTS order."""
    array = _check_last_dim(array)
    return np.stack([np.any(array[..., PART_SLICES[p]] != 0, axis=-1) for p in PARTS], axis=-1)
