"""The options, the 1662 layout in parts, normalisation, and which face and pose points are kept."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from utils.data.keypoints import (
    FACE,
    FACE_POINTS,
    HAND_POINTS,
    KEYPOINT_DIM,
    LEFT_HAND,
    POSE,
    POSE_LEFT_SHOULDER,
    POSE_POINTS,
    POSE_RIGHT_SHOULDER,
    RIGHT_HAND,
)

# ----------------------------------------------------------------------------- constants
#: The faithful setting: raw vectors, exactly what the original model was fed.
DEFAULT_OPTIONS: dict[str, Any] = {"normalize": False, "face": "full", "mirror": False, "velocity": False,
                                   "frames": "rgb", "pose": "full", "z": True, "hand_shape": False,
                                   "presence": False, "fill_gaps": 0, "hand_angles": False,
                                   "draw_landmarks": False}
FACE_MODES = ("full", "thin", "drop")
FRAME_MODES = ("rgb", "diff", "first")
POSE_MODES = ("full", "upper")
MIRROR_MODES = (False, "motion", "height")

#: The pose points a signer filmed from the waist up shows reliably: nose, shoulders, elbows, wrists and the
#: pose model's pinky, index and thumb points (mirror-symmetric, like the thin face).
UPPER_POSE_POINTS: tuple[int, ...] = (0,) + tuple(range(11, 23))
PRESENCE_POINTS = 10  # a part counts as found when one of its first 10 points is not all zeros

#: A thin face: the points that carry expression in signing, from MediaPipe's FACEMESH_* contours.
#: lips (all 40 points of FACEMESH_LIPS, outer and inner contour), both eyebrows (10 + 10 of
#: FACEMESH_LEFT/RIGHT_EYEBROW), each eye's corners and upper/lower lid (4 + 4) and the nose tip (1).
#: The set is left/right symmetric, so mirroring a thin face stays within it.
THIN_FACE_LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
                  267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
THIN_FACE_BROWS = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107,  # right eyebrow (the person's right)
                   276, 282, 283, 285, 293, 295, 296, 300, 334, 336)  # left eyebrow
THIN_FACE_EYES = (33, 133, 159, 145,  # right eye: outer corner, inner corner, upper lid, lower lid
                  263, 362, 386, 374)  # left eye: the same
THIN_FACE_NOSE = (1,)  # nose tip
THIN_FACE_POINTS: tuple[int, ...] = tuple(
    sorted(THIN_FACE_LIPS + THIN_FACE_BROWS + THIN_FACE_EYES + THIN_FACE_NOSE)
)


#: Used to normalise a clip in which no frame has a pose: the image centre and a typical shoulder width
#: (as a fraction of the image width) for a signer filmed from the waist up.
FALLBACK_CENTRE = (0.5, 0.5)
FALLBACK_SHOULDER_WIDTH = 0.25
MIN_SHOULDER_WIDTH = 1e-3


# ----------------------------------------------------------------------------- helpers
def check_keypoints(kp: np.ndarray, name: str = "keypoints") -> np.ndarray:
    """Return kp as float32 (N, T, 1662), accepting a single clip (T, 1662); ValueError otherwise."""
    kp = np.asarray(kp, dtype=np.float32)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != KEYPOINT_DIM:
        raise ValueError(f"{name} must have shape (clips, frames, {KEYPOINT_DIM}), got {kp.shape}")
    return kp


def resolve_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Preprocessing options with defaults filled in (``mirror=True`` becomes "motion"); ValueError if
    unknown."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update(dict(options or {}))
    unknown = set(merged) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown preprocessing options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    if merged["mirror"] is True:
        merged["mirror"] = "motion"
    for key, modes in (("face", FACE_MODES), ("frames", FRAME_MODES), ("pose", POSE_MODES),
                       ("mirror", MIRROR_MODES)):
        if merged[key] not in modes:
            raise ValueError(f"preprocessing {key} must be one of {modes}, got {merged[key]!r}")
    if not isinstance(merged["fill_gaps"], (int, np.integer)) or isinstance(merged["fill_gaps"], bool) \
            or merged["fill_gaps"] < 0:
        raise ValueError("preprocessing fill_gaps must be a whole number of frames >= 0, got "
                         f"{merged['fill_gaps']!r}")
    return merged


def part_views(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views of (N, T, 1662) as face (N,T,468,3), pose (N,T,33,4), left and right hands (N,T,21,3)."""
    lead = kp.shape[:-1]
    return (kp[..., FACE].reshape(*lead, FACE_POINTS, 3), kp[..., POSE].reshape(*lead, POSE_POINTS, 4),
            kp[..., LEFT_HAND].reshape(*lead, HAND_POINTS, 3),
            kp[..., RIGHT_HAND].reshape(*lead, HAND_POINTS, 3))


def join_part_views(face: np.ndarray, pose: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Inverse of :func:`part_views` (any number of face points)."""
    lead = pose.shape[:-2]
    return np.concatenate([p.reshape(*lead, -1) for p in (face, pose, left, right)],
                          axis=-1).astype(np.float32)


def part_presence(kp: np.ndarray) -> np.ndarray:
    """Which parts (face, pose, left hand, right hand) are non-zero in each frame: bool (N, T, 4)."""
    face, pose, left, right = part_views(check_keypoints(kp))
    # a found part has (practically) no point at exactly (0, 0, 0): its first PRESENCE_POINTS points decide
    return np.stack([np.any(p[..., :PRESENCE_POINTS, :3] != 0,
                            axis=(-1, -2)) for p in (face, pose, left, right)],
                    axis=-1)


# ----------------------------------------------------------------------------- normalisation
def shoulder_reference(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame shoulder midpoint (N, T, 2) and width (N, T); frames without shoulders borrow the clip
    mean."""
    _, pose, _, _ = part_views(check_keypoints(kp))
    left, right = pose[..., POSE_LEFT_SHOULDER, :2], pose[..., POSE_RIGHT_SHOULDER, :2]
    width = np.linalg.norm(left - right, axis=-1)
    valid = np.any(left != 0, axis=-1) & np.any(right != 0, axis=-1) & (width > MIN_SHOULDER_WIDTH)
    centre = (left + right) / 2
    count = valid.sum(axis=1)  # (N,)
    clip_centre = np.where(count[:, None] > 0,
                           (centre * valid[..., None]).sum(1) / np.maximum(count, 1)[:, None],
                           np.asarray(FALLBACK_CENTRE, dtype=np.float32))
    clip_width = np.where(count > 0, (width * valid).sum(1) / np.maximum(count, 1), FALLBACK_SHOULDER_WIDTH)
    centre = np.where(valid[..., None], centre, clip_centre[:, None, :])
    width = np.where(valid, width, clip_width[:, None])
    return centre.astype(np.float32), width.astype(np.float32)


def normalize_keypoints(kp: np.ndarray) -> np.ndarray:
    """Centre x, y on the shoulders' midpoint and divide x, y, z by the shoulder width, per frame.

    The signer's left shoulder lands at (+0.5, 0) and the right one at (-0.5, 0) when the shoulders are
    level. Pose visibility is kept as is. Missing parts stay zeros. A frame without a pose uses the clip's
    average shoulders; a clip without any pose uses :data:`FALLBACK_CENTRE` and
    :data:`FALLBACK_SHOULDER_WIDTH`.
    """
    kp = check_keypoints(kp)
    return join_part_views(*_normalize_parts(part_views(kp), part_presence(kp), *shoulder_reference(kp)))


def _normalize_parts(parts: tuple[np.ndarray, ...], present: np.ndarray, centre: np.ndarray,
                     width: np.ndarray) -> list[np.ndarray]:
    """:func:`normalize_keypoints` on (face, pose, left, right) point arrays (any subset of points),
    copies."""
    out = []
    for index, part in enumerate(parts):
        part = part.copy()
        mask = present[..., index][:, :, None]  # (N, T, 1): only parts that are there
        part[..., :2] = np.where(mask[..., None],
                                 (part[..., :2] - centre[:, :, None, :]) / width[:, :, None, None], 0)
        part[..., 2] = np.where(mask, part[..., 2] / width[:, :, None], 0)
        out.append(part)
    return out


# ----------------------------------------------------------------------------- face
def face_indices(mode: str) -> np.ndarray:
    """Indices of the face points kept by a face mode ("full", "thin", "drop")."""
    if mode == "full":
        return np.arange(FACE_POINTS)
    if mode == "thin":
        return np.asarray(THIN_FACE_POINTS)
    if mode == "drop":
        return np.arange(0)
    raise ValueError(f"face mode must be one of {FACE_MODES}, got {mode!r}")


def select_face(kp: np.ndarray, mode: str) -> np.ndarray:
    """Keep all 468 face points ("full"), the :data:`THIN_FACE_POINTS` ("thin") or none ("drop")."""
    kp = check_keypoints(kp)
    face, pose, left, right = part_views(kp)
    return join_part_views(face[..., face_indices(mode), :], pose, left, right)


def pose_indices(mode: str) -> np.ndarray:
    """Indices of the pose points kept by a pose mode ("full": all 33, "upper": :data:`UPPER_POSE_POINTS`)."""
    if mode == "full":
        return np.arange(POSE_POINTS)
    if mode == "upper":
        return np.asarray(UPPER_POSE_POINTS)
    raise ValueError(f"pose mode must be one of {POSE_MODES}, got {mode!r}")


def select_points(kp: np.ndarray, face: str = "full", pose: str = "full", use_z: bool = True,
                  normalize: bool = False) -> np.ndarray:
    """The chosen face and pose points and both hands, flattened per frame, normalised if asked
    (:func:`normalize_keypoints`, computed on the kept points only); x, y only when ``use_z`` is False."""
    kp = check_keypoints(kp)
    face_points, pose_points, left, right = part_views(kp)
    parts = (face_points[..., face_indices(face), :], pose_points[..., pose_indices(pose), :], left, right)
    if normalize:
        parts = _normalize_parts(parts, part_presence(kp), *shoulder_reference(kp))
    if not use_z:
        parts = tuple(p[..., :2] for p in parts)
    return join_part_views(*parts)
