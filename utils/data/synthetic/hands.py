"""Hand shapes: 7 numbers per shape (finger curls, spread, thumb) turned into the 21 MediaPipe hand points."""
from __future__ import annotations

import numpy as np

from utils.data.keypoints import HAND_POINTS

# ----------------------------------------------------------------------------------------------- hands
# A handshape is 7 numbers: curl of thumb, index, middle, ring, pinky (0 straight .. 1 fully bent),
# finger spread (0..1) and thumb abduction (0 alongside the index .. 1 sticking out).
HANDSHAPES: dict[str, np.ndarray] = {name: np.array(values, dtype=np.float64) for name, values in {
    "flat": (0.1, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1),
    "open": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    "fist": (0.65, 1.0, 1.0, 1.0, 1.0, 0.0, 0.25),
    "thumb_up": (0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.35),
    "ily": (0.0, 0.0, 1.0, 1.0, 0.0, 0.6, 1.0),
    "index": (0.7, 0.0, 1.0, 1.0, 1.0, 0.0, 0.2),
    "no_open": (0.0, 0.0, 0.0, 1.0, 1.0, 0.15, 0.8),
    "no_closed": (0.35, 0.7, 0.7, 1.0, 1.0, 0.0, 0.55),
    "rest": (0.2, 0.3, 0.35, 0.4, 0.45, 0.2, 0.3),
}.items()}

# Hand model in hand lengths, for a hand on its own side of the body: x points outward (away from the
# body's midline), y down, z away from the camera; palm facing the camera, fingers up, thumb toward the
# midline.
_FINGER_BASES = np.array([[-0.11, -0.45], [-0.02, -0.47], [0.07, -0.44], [0.15, -0.39]])  # index..pinky MCP
_FINGER_LENGTHS = np.array([[0.21, 0.13, 0.10], [0.24, 0.15, 0.11], [0.22, 0.14, 0.10], [0.17, 0.10, 0.09]])
_FINGER_SPREAD = np.array([-0.22, -0.06, 0.10, 0.28])  # radians at full spread, + = outward
_FINGER_JOINT_BEND = np.array([1.35, 1.75, 1.2])  # radians per joint at curl 1
_THUMB_BASE = np.array([-0.09, -0.09])
_THUMB_LENGTHS = np.array([0.17, 0.14, 0.12])
_THUMB_JOINT_BEND = np.array([0.4, 0.9, 0.9])
_THUMB_BEND_TOWARD = np.array([0.75, 0.2, -0.63]) / np.linalg.norm([0.75, 0.2, -0.63])
HAND_SIZE_REFERENCE = 0.47  # wrist -> middle-finger MCP, in hand lengths


def _chain(start: np.ndarray, direction: np.ndarray, bend_toward: np.ndarray, lengths: np.ndarray,
           bends: np.ndarray) -> list[np.ndarray]:
    """Joint positions (T, 3) of a finger that starts at ``start`` and bends toward ``bend_toward``."""
    bend_toward = bend_toward - (direction @ bend_toward)[:, None] * direction  # keep the bones' lengths
    bend_toward = bend_toward / np.linalg.norm(bend_toward, axis=1, keepdims=True)
    points, angle, current = [], np.zeros(len(start)), start
    for length, bend in zip(lengths, bends.T):
        angle = angle + bend
        step = np.cos(angle)[:, None] * direction + np.sin(angle)[:, None] * bend_toward
        current = current + length * step
        points.append(current)
    return points


def rotation_matrices(roll: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in radians."""
    count = len(roll)
    cr, sr, cy, sy, cp, sp = (
        np.cos(roll),
        np.sin(roll),
        np.cos(yaw),
        np.sin(yaw),
        np.cos(pitch),
        np.sin(pitch),
    )
    one, zero = np.ones(count), np.zeros(count)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1),
                   np.stack([zero, zero, one], -1)], 1)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1),
                   np.stack([-sy, zero, cy], -1)], 1)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1),
                   np.stack([zero, sp, cp], -1)], 1)
    return rz @ ry @ rx


def hand_landmarks(shape: np.ndarray, roll: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """21 MediaPipe hand landmarks (T, 21, 3) relative to the wrist, in hand lengths, own-side frame.

    ``shape`` is (T, 7) (see ``HANDSHAPES``); angles (T,) in radians: roll tilts the fingers outward in the
    image plane, yaw turns the palm toward the midline, pitch tips the fingers toward the camera.
    """
    shape = np.atleast_2d(shape)
    count = len(shape)
    curls, spread, abduction = shape[:, :5], shape[:, 5], shape[:, 6]
    toward_palm = np.array([0.0, 0.0, -1.0])
    points = np.zeros((count, HAND_POINTS, 3))
    thumb_angle = -(0.45 + 0.6 * abduction)
    thumb_direction = np.stack([np.sin(thumb_angle), -np.cos(thumb_angle), np.zeros(count)], -1)
    thumb_start = np.tile(np.append(_THUMB_BASE, 0.0), (count, 1))
    points[:, 1] = thumb_start
    thumb = _chain(thumb_start, thumb_direction, _THUMB_BEND_TOWARD, _THUMB_LENGTHS,
                   curls[:, :1] * _THUMB_JOINT_BEND)
    points[:, 2:5] = np.stack(thumb, 1)
    for finger in range(4):
        angle = -0.03 + spread * _FINGER_SPREAD[finger]
        direction = np.stack([np.sin(angle), -np.cos(angle), np.zeros(count)], -1)
        base = np.tile(np.append(_FINGER_BASES[finger], 0.0), (count, 1))
        first = 5 + 4 * finger
        points[:, first] = base
        joints = _chain(base, direction, toward_palm, _FINGER_LENGTHS[finger],
                        curls[:, finger + 1:finger + 2] * _FINGER_JOINT_BEND)
        points[:, first + 1:first + 4] = np.stack(joints, 1)
    return np.einsum("tij,tpj->tpi", rotation_matrices(roll, yaw, pitch), points)
