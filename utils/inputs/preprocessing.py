"""Keypoint normalisation, face selection, mirroring, velocities and training-time augmentation.

Pure NumPy on arrays of MediaPipe Holistic vectors (see :mod:`utils.keypoints` for the 1662 layout);
nothing here reads or writes files. Training, evaluation and inference all call
:func:`preprocess_keypoints` with the same ``options`` dict (a model configuration's
``preprocessing``), so a trained model always sees its inputs prepared one way:

=============  =====================================================================================
option         effect
=============  =====================================================================================
``mirror``     canonical handedness: clips whose dominant hand is the left one are mirrored, so a
               left-handed signer looks like a right-handed one (:func:`canonicalize_handedness`)
``normalize``  per frame, centre on the shoulders' midpoint and divide by the shoulder width
               (:func:`normalize_keypoints`): signer position and distance to the camera drop out
``face``       ``"full"`` (468 points), ``"thin"`` (:data:`THIN_FACE_POINTS`, 69) or ``"drop"``
``velocity``   frame-to-frame differences appended to each frame's vector (doubles its size)
``frames``     frame models' input: ``"rgb"`` (raw frames), ``"diff"`` (x_t - x_{t-1}, first step 0:
               static appearance such as clothes and background drops out; :func:`preprocess_frames`) or
               ``"first"`` (x_t - x_0, the change since the clip's first frame: the background drops out too,
               but a hand that has arrived somewhere and stays there still shows)
``pose``       ``"full"`` (33 points) or ``"upper"`` (:data:`UPPER_POSE_POINTS`: nose, shoulders, arms, hands)
``z``          keep depth (z, and the pose's visibility); ``False`` keeps x and y only
``hand_shape`` append each hand in wrist-local coordinates divided by the palm size
               (:func:`hand_shape`): the hand's shape, whatever its position, size and the signer's distance
``presence``   append two flags per frame: left hand seen, right hand seen
``fill_gaps``  fill hand drop-outs of at most this many frames by linear interpolation (:func:`fill_hand_gaps`)
``hand_angles`` append each hand's finger joint bends and fingertip distances (:func:`hand_angles`):
               hand shape that does not change when the hand turns in the image plane
``draw_landmarks``  frame models: draw the clip's landmarks onto its frames first (:func:`draw_clip_landmarks`),
               as the original's ``keypoint_generation.py`` saved them (it can leak the skeleton into the pixels)
=============  =====================================================================================

``mirror`` takes ``False``, ``"motion"`` (the hand that travels further is the dominant one, see
:func:`dominant_hand_scores`) or ``"height"`` (the hand held higher on average, the older rule); ``True``
means ``"motion"``.

Every option has a TensorFlow twin in :mod:`utils.tf_preprocessing` (the exported model prepares raw
keypoints inside its graph): a new option needs one there too, or export stops with a message naming it.

Missing parts (MediaPipe found no hand in that frame) are all zeros in the raw vectors and stay zeros
through every step, so the model can still tell "not seen" from "seen at the origin".
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from utils.data.keypoints import FACE, FACE_POINTS, HAND_DIM, HAND_POINTS, KEYPOINT_DIM, LEFT_HAND, POSE, POSE_DIM, POSE_LEFT_SHOULDER, POSE_POINTS, POSE_RIGHT_SHOULDER, RIGHT_HAND

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
#: Hand landmarks: the wrist and the four finger bases (index, middle, ring, pinky MCP) that span the palm.
HAND_WRIST, PALM_POINTS = 0, (5, 9, 13, 17)
MIN_PALM_SIZE = 1e-4
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
THIN_FACE_POINTS: tuple[int, ...] = tuple(sorted(THIN_FACE_LIPS + THIN_FACE_BROWS + THIN_FACE_EYES + THIN_FACE_NOSE))

#: MediaPipe Pose landmarks that swap under a left/right mirror (eyes, ears, mouth corners, then
#: shoulders, elbows, wrists, pinkies, index fingers, thumbs, hips, knees, ankles, heels, feet).
POSE_MIRROR_PAIRS = ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10)) + tuple((i, i + 1) for i in range(11, 33, 2))

#: Used to normalise a clip in which no frame has a pose: the image centre and a typical shoulder width
#: (as a fraction of the image width) for a signer filmed from the waist up.
FALLBACK_CENTRE = (0.5, 0.5)
FALLBACK_SHOULDER_WIDTH = 0.25
MIN_SHOULDER_WIDTH = 1e-3


def _pose_mirror_permutation() -> np.ndarray:
    """Index array that swaps the left/right pose landmarks."""
    order = np.arange(POSE_POINTS)
    for left, right in POSE_MIRROR_PAIRS:
        order[left], order[right] = right, left
    return order


POSE_MIRROR_ORDER = _pose_mirror_permutation()


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
    """Preprocessing options with defaults filled in (``mirror=True`` becomes "motion"); ValueError if unknown."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update(dict(options or {}))
    unknown = set(merged) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown preprocessing options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    if merged["mirror"] is True:
        merged["mirror"] = "motion"
    for key, modes in (("face", FACE_MODES), ("frames", FRAME_MODES), ("pose", POSE_MODES), ("mirror", MIRROR_MODES)):
        if merged[key] not in modes:
            raise ValueError(f"preprocessing {key} must be one of {modes}, got {merged[key]!r}")
    if not isinstance(merged["fill_gaps"], (int, np.integer)) or isinstance(merged["fill_gaps"], bool) \
            or merged["fill_gaps"] < 0:
        raise ValueError(f"preprocessing fill_gaps must be a whole number of frames >= 0, got {merged['fill_gaps']!r}")
    return merged


def _parts(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views of (N, T, 1662) as face (N,T,468,3), pose (N,T,33,4), left and right hands (N,T,21,3)."""
    lead = kp.shape[:-1]
    return (kp[..., FACE].reshape(*lead, FACE_POINTS, 3), kp[..., POSE].reshape(*lead, POSE_POINTS, 4),
            kp[..., LEFT_HAND].reshape(*lead, HAND_POINTS, 3), kp[..., RIGHT_HAND].reshape(*lead, HAND_POINTS, 3))


def _join(face: np.ndarray, pose: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_parts` (any number of face points)."""
    lead = pose.shape[:-2]
    return np.concatenate([p.reshape(*lead, -1) for p in (face, pose, left, right)], axis=-1).astype(np.float32)


def part_presence(kp: np.ndarray) -> np.ndarray:
    """Which parts (face, pose, left hand, right hand) are non-zero in each frame: bool (N, T, 4)."""
    face, pose, left, right = _parts(check_keypoints(kp))
    # a found part has (practically) no point at exactly (0, 0, 0): its first PRESENCE_POINTS points decide
    return np.stack([np.any(p[..., :PRESENCE_POINTS, :3] != 0, axis=(-1, -2)) for p in (face, pose, left, right)],
                    axis=-1)


# ----------------------------------------------------------------------------- normalisation
def shoulder_reference(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame shoulder midpoint (N, T, 2) and width (N, T); frames without shoulders borrow the clip mean."""
    _, pose, _, _ = _parts(check_keypoints(kp))
    left, right = pose[..., POSE_LEFT_SHOULDER, :2], pose[..., POSE_RIGHT_SHOULDER, :2]
    width = np.linalg.norm(left - right, axis=-1)
    valid = np.any(left != 0, axis=-1) & np.any(right != 0, axis=-1) & (width > MIN_SHOULDER_WIDTH)
    centre = (left + right) / 2
    count = valid.sum(axis=1)  # (N,)
    clip_centre = np.where(count[:, None] > 0, (centre * valid[..., None]).sum(1) / np.maximum(count, 1)[:, None],
                           np.asarray(FALLBACK_CENTRE, dtype=np.float32))
    clip_width = np.where(count > 0, (width * valid).sum(1) / np.maximum(count, 1), FALLBACK_SHOULDER_WIDTH)
    centre = np.where(valid[..., None], centre, clip_centre[:, None, :])
    width = np.where(valid, width, clip_width[:, None])
    return centre.astype(np.float32), width.astype(np.float32)


def normalize_keypoints(kp: np.ndarray) -> np.ndarray:
    """Centre x, y on the shoulders' midpoint and divide x, y, z by the shoulder width, per frame.

    The signer's left shoulder lands at (+0.5, 0) and the right one at (-0.5, 0) when the shoulders are
    level. Pose visibility is kept as is. Missing parts stay zeros. A frame without a pose uses the clip's
    average shoulders; a clip without any pose uses :data:`FALLBACK_CENTRE` and :data:`FALLBACK_SHOULDER_WIDTH`.
    """
    kp = check_keypoints(kp)
    return _join(*_normalize_parts(_parts(kp), part_presence(kp), *shoulder_reference(kp)))


def _normalize_parts(parts: tuple[np.ndarray, ...], present: np.ndarray, centre: np.ndarray,
                     width: np.ndarray) -> list[np.ndarray]:
    """:func:`normalize_keypoints` on (face, pose, left, right) point arrays (any subset of points), copies."""
    out = []
    for index, part in enumerate(parts):
        part = part.copy()
        mask = present[..., index][:, :, None]  # (N, T, 1): only parts that are there
        part[..., :2] = np.where(mask[..., None], (part[..., :2] - centre[:, :, None, :]) / width[:, :, None, None], 0)
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
    face, pose, left, right = _parts(kp)
    return _join(face[..., face_indices(mode), :], pose, left, right)


# ----------------------------------------------------------------------------- mirroring
def mirror_frames(frames: np.ndarray) -> np.ndarray:
    """Frames (N, T, H, W, C) flipped left/right."""
    return frames[:, :, :, ::-1]


def mirror_hand_crops(crops: np.ndarray) -> np.ndarray:
    """Hand crops (N, T, 2, S, S, C) flipped left/right and swapped: the left hand's crop becomes the right one's."""
    return crops[:, :, ::-1, :, ::-1]


def mirror_keypoints(kp: np.ndarray, normalized: bool = False) -> np.ndarray:
    """Mirror left/right: flip x (1 - x raw, -x normalised) and swap the hands and the left/right pose points.

    The 468 face points are flipped in place but not re-indexed (MediaPipe publishes no mirror map of the
    face mesh); the face is nearly symmetric, so this changes little. Applying it twice gives back ``kp``.
    """
    kp = check_keypoints(kp)
    present = part_presence(kp)
    face, pose, left, right = (p.copy() for p in _parts(kp))
    for index, part in enumerate((face, pose, left, right)):
        flipped = -part[..., 0] if normalized else 1.0 - part[..., 0]
        part[..., 0] = np.where(present[..., index][..., None], flipped, 0)
    return _join(face, pose[..., POSE_MIRROR_ORDER, :], right, left)


def hand_height(kp: np.ndarray) -> np.ndarray:
    """Mean height of each hand over the clip on raw image coordinates, (N, 2) left, right: larger is higher.

    Height is ``1 - y`` of the hand's mean point; a frame where the hand is not seen counts as 0 (the bottom
    edge of the image), so a hand that is often out of view counts as low.
    """
    kp = check_keypoints(kp)
    present = part_presence(kp)
    heights = []
    for hand, index in ((LEFT_HAND, 2), (RIGHT_HAND, 3)):
        y = kp[..., hand].reshape(*kp.shape[:2], HAND_POINTS, 3)[..., 1].mean(axis=-1)
        heights.append(np.where(present[..., index], 1.0 - y, 0.0).mean(axis=1))
    return np.stack(heights, axis=-1)


def dominant_hand_scores(kp: np.ndarray) -> np.ndarray:
    """How much each hand moves in each clip, (N, 2) left, right: the path length of its mean landmark (x, y).

    Only steps between two frames where MediaPipe found that hand count: the pose model's wrist of a hand
    out of view jitters (on the real webcam signers it travelled further than the signing hand), so it
    does not count. Signing moves the dominant hand, while the other rests, holds still as a base, or
    mirrors it. A hand that is only ever seen in one place still scores its detections (1e-3 per frame),
    so a held sign (``iloveyou``) is given to the hand that is there.
    """
    kp = check_keypoints(kp)
    _, _, left, right = _parts(kp)
    seen = part_presence(kp)[..., 2:]  # (N, T, 2)
    position = np.stack([left[..., :2].mean(axis=-2), right[..., :2].mean(axis=-2)], axis=-2)  # (N, T, 2, 2)
    both = seen[:, 1:] & seen[:, :-1]
    steps = np.linalg.norm(np.diff(position, axis=1), axis=-1) * both
    return steps.sum(axis=1) + 1e-3 * seen.sum(axis=1)


def left_dominant(kp: np.ndarray, method: str = "motion") -> np.ndarray:
    """True for clips (raw coordinates) whose dominant hand is the left one, by "motion" or by "height".

    "motion" (:func:`dominant_hand_scores`): the hand that moves more. "height" (:func:`hand_height`): the
    hand held higher on average, the course's first rule; on real webcam signers it picks a resting hand
    that happens to be raised, or the base hand of a two-handed sign. Ties (no hand at all) stay as they are.
    """
    if method == "motion":
        scores = dominant_hand_scores(kp)
    elif method == "height":
        scores = hand_height(kp)
    else:
        raise ValueError(f"handedness method must be 'motion' or 'height', got {method!r}")
    return scores[:, 0] > scores[:, 1]


def canonicalize_handedness(kp: np.ndarray, normalized: bool = False, method: str = "motion") -> np.ndarray:
    """Mirror the clips whose dominant hand is the left one (:func:`left_dominant`), so every clip looks right-handed.

    Mirroring a whole clip never turns one sign into another: a left-handed signer signs the mirror image.
    """
    kp = check_keypoints(kp)
    flip = left_dominant(kp, method)
    if not flip.any():
        return kp.copy()
    out = kp.copy()
    out[flip] = mirror_keypoints(kp[flip], normalized=normalized)
    return out


# ----------------------------------------------------------------------------- hands
def fill_hand_gaps(kp: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill each hand's drop-outs of at most max_gap frames by linear interpolation between the frames around them.

    Gaps at the start or end of a clip (no frame on one side) and longer gaps stay missing (zeros).
    """
    kp = check_keypoints(kp)
    if max_gap <= 0:
        return kp.copy()
    out = kp.copy()
    num_frames = kp.shape[1]
    frame = np.arange(num_frames)
    present = part_presence(kp)
    for hand, index in ((LEFT_HAND, 2), (RIGHT_HAND, 3)):
        seen = present[..., index]  # (N, T)
        before = np.maximum.accumulate(np.where(seen, frame, -1), axis=1)
        after = np.minimum.accumulate(np.where(seen, frame, num_frames)[:, ::-1], axis=1)[:, ::-1]
        fill = ~seen & (before >= 0) & (after < num_frames) & (after - before - 1 <= max_gap)
        if not fill.any():
            continue
        values = kp[..., hand]
        clips = np.arange(len(kp))[:, None]
        low = values[clips, np.clip(before, 0, num_frames - 1)]
        high = values[clips, np.clip(after, 0, num_frames - 1)]
        weight = ((frame - before) / np.maximum(after - before, 1))[..., None].astype(np.float32)
        out[..., hand] = np.where(fill[..., None], low + weight * (high - low), values)
    return out


def hand_shape(kp: np.ndarray, use_z: bool = True) -> np.ndarray:
    """Both hands' points 1-20 relative to the wrist, divided by the palm size: (N, T, 2 * 20 * (3 or 2)).

    The palm size is the mean distance (x, y) from the wrist to the four finger bases; a hand that is not
    there gives zeros. Works on raw or normalised coordinates alike (position and scale drop out).
    """
    kp = check_keypoints(kp)
    _, _, left, right = _parts(kp)
    present = part_presence(kp)
    dims = 3 if use_z else 2
    shapes = []
    for hand, index in ((left, 2), (right, 3)):
        local = hand[..., 1:, :dims] - hand[..., HAND_WRIST:HAND_WRIST + 1, :dims]
        palm = np.linalg.norm(hand[..., PALM_POINTS, :2] - hand[..., HAND_WRIST:HAND_WRIST + 1, :2], axis=-1).mean(-1)
        scaled = local / np.maximum(palm, MIN_PALM_SIZE)[..., None, None]
        shapes.append(np.where(present[..., index][..., None, None], scaled, 0).reshape(*kp.shape[:2], -1))
    return np.concatenate(shapes, axis=-1).astype(np.float32)


#: Each finger's chain of landmarks from the wrist: thumb, index, middle, ring, pinky.
FINGER_CHAINS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16), (0, 17, 18, 19, 20))
FINGERTIPS = (4, 8, 12, 16, 20)
HAND_ANGLE_DIM = 15 + 10  # per hand: 3 joint bends per finger, 10 fingertip distances


def hand_angles(kp: np.ndarray) -> np.ndarray:
    """Per hand, the cosine of the bend at each finger's three joints (x, y, z) and the 10 distances between
    fingertips (x, y) divided by the palm size: (N, T, 2 * 25), zeros where the hand is missing.

    Unchanged by moving, scaling or rotating the hand in the image plane (the bends also under any 3D
    rotation): the hand's shape alone.
    """
    kp = check_keypoints(kp)
    _, _, left, right = _parts(kp)
    present = part_presence(kp)
    pairs = [(a, b) for i, a in enumerate(FINGERTIPS) for b in FINGERTIPS[i + 1:]]
    out = []
    for hand, index in ((left, 2), (right, 3)):
        bends = []
        for chain in FINGER_CHAINS:
            bones = np.diff(hand[..., list(chain), :], axis=-2)  # (N, T, 4, 3)
            length = np.maximum(np.linalg.norm(bones, axis=-1), 1e-6)
            unit = bones / length[..., None]
            bends.append(np.sum(unit[..., 1:, :] * unit[..., :-1, :], axis=-1))  # (N, T, 3)
        palm = np.linalg.norm(hand[..., PALM_POINTS, :2] - hand[..., HAND_WRIST:HAND_WRIST + 1, :2], axis=-1).mean(-1)
        tips = np.stack([np.linalg.norm(hand[..., a, :2] - hand[..., b, :2], axis=-1) for a, b in pairs], axis=-1)
        values = np.concatenate(bends + [tips / np.maximum(palm, MIN_PALM_SIZE)[..., None]], axis=-1)
        out.append(np.where(present[..., index][..., None], values, 0))
    return np.concatenate(out, axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------- velocities, the pipeline
def add_velocity(features: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Append frame differences (first frame 0) to each frame's vector; zero where a value is missing in either frame."""
    features = np.asarray(features, dtype=np.float32)
    velocity = np.zeros_like(features)
    velocity[:, 1:] = np.diff(features, axis=1)
    if present is not None:
        both = present[:, 1:] & present[:, :-1]
        velocity[:, 1:] *= both
    return np.concatenate([features, velocity], axis=-1)


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
    face_points, pose_points, left, right = _parts(kp)
    parts = (face_points[..., face_indices(face), :], pose_points[..., pose_indices(pose), :], left, right)
    if normalize:
        parts = _normalize_parts(parts, part_presence(kp), *shoulder_reference(kp))
    if not use_z:
        parts = tuple(p[..., :2] for p in parts)
    return _join(*parts)


def _presence_per_value(kp: np.ndarray, options: Mapping[str, Any]) -> np.ndarray:
    """Bool (N, T, D) saying which values of :func:`select_points`'s vector belong to parts that are present."""
    present = part_presence(kp)
    xyz = 3 if options["z"] else 2
    sizes = (len(face_indices(options["face"])) * xyz, len(pose_indices(options["pose"])) * (xyz + options["z"]),
             HAND_POINTS * xyz, HAND_POINTS * xyz)
    return np.repeat(present, sizes, axis=-1)


def preprocess_keypoints(kp: np.ndarray, options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Raw (N, T, 1662) keypoints -> model input (N, T, output_dim(options)).

    In order: fill short hand gaps, canonical handedness (mirror), normalise, keep the chosen points and
    coordinates, append hand shapes, finger angles and hand-presence flags, append velocities. Vectorised over clips.
    """
    options = resolve_options(options)
    kp = check_keypoints(kp)
    if options["fill_gaps"]:
        kp = fill_hand_gaps(kp, options["fill_gaps"])
    if options["mirror"]:
        kp = canonicalize_handedness(kp, method=options["mirror"])
    blocks_present = [_presence_per_value(kp, options)]
    presence = part_presence(kp)[..., 2:]
    blocks = [select_points(kp, options["face"], options["pose"], options["z"], options["normalize"])]
    if options["hand_shape"]:  # position and scale drop out: raw or normalised coordinates give the same
        blocks.append(hand_shape(kp, options["z"]))
        blocks_present.append(np.repeat(presence, (HAND_POINTS - 1) * (3 if options["z"] else 2), axis=-1))
    if options["hand_angles"]:
        blocks.append(hand_angles(kp))
        blocks_present.append(np.repeat(presence, HAND_ANGLE_DIM, axis=-1))
    if options["presence"]:
        blocks.append(presence.astype(np.float32))
        blocks_present.append(np.ones_like(presence))
    out = np.concatenate(blocks, axis=-1)
    if options["velocity"]:
        out = add_velocity(out, np.concatenate(blocks_present, axis=-1))
    return out.astype(np.float32)


def output_dim(options: Mapping[str, Any] | None = None) -> int:
    """Length of each frame's vector after :func:`preprocess_keypoints` with these options."""
    options = resolve_options(options)
    xyz = 3 if options["z"] else 2
    dim = (len(face_indices(options["face"])) * xyz + len(pose_indices(options["pose"])) * (xyz + options["z"])
           + 2 * HAND_POINTS * xyz)
    dim += 2 * (HAND_POINTS - 1) * xyz if options["hand_shape"] else 0
    dim += 2 * HAND_ANGLE_DIM if options["hand_angles"] else 0
    dim += 2 if options["presence"] else 0
    return dim * 2 if options["velocity"] else dim


# ----------------------------------------------------------------------------- time and frames
def resample_time(array: np.ndarray, num_frames: int) -> np.ndarray:
    """Evenly resample axis 1 (time) of (N, T, ...) to num_frames; unchanged when T already equals it."""
    from utils.data.video import sample_frame_indices

    if array.shape[1] == num_frames:
        return array
    return array[:, sample_frame_indices(array.shape[1], num_frames)[0]]


def resize_frames(frames: np.ndarray, image_size: int) -> np.ndarray:
    """Resize (N, T, S, S, 3) uint8 frames to image_size (cv2.INTER_AREA); unchanged when already that size."""
    if frames.shape[2] == image_size and frames.shape[3] == image_size:
        return frames
    from utils.data import video

    flat = video.resize_frames(frames.reshape(-1, *frames.shape[2:]), image_size)
    return flat.reshape(*frames.shape[:2], image_size, image_size, frames.shape[-1])


def preprocess_frames(frames: np.ndarray, options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Frames (N, T, S, S, 3) as the model sees them: unchanged ("rgb"), float32 x_t - x_{t-1} ("diff") or
    x_t - x_0 ("first")."""
    mode = resolve_options(options)["frames"]
    if mode == "rgb":
        return frames
    frames = np.asarray(frames, dtype=np.float32)
    if mode == "first":
        return frames - frames[:, :1]
    diff = np.zeros_like(frames)
    diff[:, 1:] = frames[:, 1:] - frames[:, :-1]
    return diff


def draw_clip_landmarks(frames: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Frames (N, T, H, W, 3) uint8 with each frame's raw (1662,) landmarks drawn on them, 1 px lines (a copy)."""
    from utils.data.keypoints import draw_landmarks

    frames, kp = np.asarray(frames, dtype=np.uint8), check_keypoints(kp)
    if frames.shape[:2] != kp.shape[:2]:
        raise ValueError(f"frames {frames.shape[:2]} and keypoints {kp.shape[:2]} must have the same clips and frames")
    out = np.ascontiguousarray(frames).copy()
    for clip in range(len(out)):
        for t in range(out.shape[1]):
            draw_landmarks(out[clip, t], kp[clip, t], thickness=1, copy=False)
    return out


# ----------------------------------------------------------------------------- augmentation
#: No augmentation (every value 0).
NO_AUGMENTATION: dict[str, float] = {"mirror": 0.0, "scale": 0.0, "rotate": 0.0, "shift": 0.0,
                                     "time_warp": 0.0, "drop_frames": 0.0, "color": 0.0, "hand_drop": 0.0,
                                     "finger_jitter": 0.0, "crop": 0.0}


def jitter_colors(frames: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Per clip: random RGB channel order, contrast and brightness (both up to ``strength``); uint8 out."""
    out = np.empty_like(frames)
    for clip in range(len(frames)):
        gain = 1 + rng.uniform(-strength, strength)
        offset = 255 * rng.uniform(-strength, strength) / 2
        x = frames[clip][..., rng.permutation(3)].astype(np.float32)
        out[clip] = np.clip((x - 127.5) * gain + 127.5 + offset, 0, 255).astype(frames.dtype)
    return out


def random_crops(frames: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Per clip: one random square window (side 1 - up to ``strength`` of the image, anywhere inside it) cut out of
    every frame and resized back to the frame size, i.e. a random zoom and shift; same dtype out."""
    import cv2

    out = np.empty_like(frames)
    size = frames.shape[2]
    for clip in range(len(frames)):
        side = max(1, int(round(size * (1 - rng.uniform(0, strength)))))
        top, left = rng.integers(0, size - side + 1, size=2)
        window = frames[clip][:, top:top + side, left:left + side]
        out[clip] = window if side == size else np.stack(
            [cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR) for frame in window])
    return out


def resolve_augmentation(options: Mapping[str, Any] | None) -> dict[str, float]:
    """Augmentation options with zeros filled in; ValueError for unknown keys."""
    merged = dict(NO_AUGMENTATION)
    merged.update({k: float(v) for k, v in dict(options or {}).items()})
    unknown = set(merged) - set(NO_AUGMENTATION)
    if unknown:
        raise ValueError(f"unknown augmentation options {sorted(unknown)}; known: {sorted(NO_AUGMENTATION)}")
    return merged


def _affine(kp: np.ndarray, rng: np.random.Generator, scale: float, rotate: float, shift: float) -> np.ndarray:
    """Random per-clip scale (x and y separately), rotation (degrees) and shift about the image centre."""
    n = len(kp)
    sx, sy = (1 + rng.uniform(-scale, scale, size=(2, n))).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-rotate, rotate, size=n)).astype(np.float32)
    dx, dy = rng.uniform(-shift, shift, size=(2, n)).astype(np.float32)
    present = part_presence(kp)
    parts = [p.copy() for p in _parts(kp)]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    for index, part in enumerate(parts):
        x, y = part[..., 0] - 0.5, part[..., 1] - 0.5
        x, y = x * sx[:, None, None], y * sy[:, None, None]
        new_x = cos * x - sin * y + 0.5 + dx[:, None, None]
        new_y = sin * x + cos * y + 0.5 + dy[:, None, None]
        mask = present[..., index][..., None]
        part[..., 0], part[..., 1] = np.where(mask, new_x, 0), np.where(mask, new_y, 0)
    return _join(*parts)


def _time_warp_indices(num_frames: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A monotone random resampling of range(num_frames): a power-law warp of time (nearest frame)."""
    gamma = np.exp(rng.uniform(-strength, strength))
    start, stop = rng.uniform(0, strength / 2), 1 - rng.uniform(0, strength / 2)
    positions = start + (stop - start) * np.linspace(0, 1, num_frames) ** gamma
    return np.clip(np.round(positions * (num_frames - 1)), 0, num_frames - 1).astype(np.int64)


def _drop_indices(num_frames: int, probability: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame order with dropped frames repeating their predecessor, and a mask of frames to zero out."""
    dropped = rng.random(num_frames) < probability
    dropped[0] = False
    repeat = dropped & (rng.random(num_frames) < 0.5)
    order = np.arange(num_frames)
    for t in np.flatnonzero(repeat):
        order[t] = order[t - 1]
    return order, dropped & ~repeat


def drop_hand_spans(kp: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """With this probability per clip, one hand (left or right at random) goes missing (zeros) for a random span
    of 1 to T/2 frames: what MediaPipe does when it loses a hand. Everything else is unchanged."""
    kp = check_keypoints(kp).copy()
    num_frames = kp.shape[1]
    for clip in np.flatnonzero(rng.random(len(kp)) < probability):
        hand = (LEFT_HAND, RIGHT_HAND)[rng.integers(2)]
        length = int(rng.integers(1, max(num_frames // 2, 1) + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        kp[clip, start:start + length, hand] = 0
    return kp


def jitter_fingers(kp: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Move each hand's points 1-20 (not the wrist) by a random offset per clip and point, x and y, of standard
    deviation ``strength`` palm sizes (:func:`hand_shape`'s palm): another hand's proportions, the same sign.
    Only frames where the hand is present change."""
    kp = check_keypoints(kp).copy()
    present = part_presence(kp)
    for hand, index in ((LEFT_HAND, 2), (RIGHT_HAND, 3)):
        points = kp[..., hand].reshape(*kp.shape[:2], HAND_POINTS, 3)
        palm = np.linalg.norm(points[..., PALM_POINTS, :2] - points[..., HAND_WRIST:HAND_WRIST + 1, :2], axis=-1).mean(-1)
        offset = rng.normal(0, strength, size=(len(kp), 1, HAND_POINTS - 1, 2)).astype(np.float32)
        moved = points.copy()
        moved[..., 1:, :2] += offset * palm[..., None, None]
        kp[..., hand] = np.where(present[..., index][..., None], moved.reshape(*kp.shape[:2], -1), kp[..., hand])
    return kp


def augment_clips(kp: np.ndarray, frames: np.ndarray | None, rng: np.random.Generator,
                  options: Mapping[str, Any] | None, hand_crops: np.ndarray | None = None) -> tuple:
    """Augment raw keypoints (N, T, 1662) and, consistently, their frames (N, T, S, S, 3) or None.

    Given ``hand_crops`` (N, T, 2, C, C, 3), returns (keypoints, frames, hand_crops), else (keypoints, frames):
    a flip mirrors each crop and swaps left and right, as it swaps the hands' keypoints; crops follow the
    time warp and colour jitter of their frames.

    Per clip: mirror with hand swap (probability ``mirror``; frames flipped too), scale by up to
    ``scale`` (fraction), rotate by up to ``rotate`` degrees, shift by up to ``shift`` (image fraction),
    warp time by ``time_warp`` and drop frames with probability ``drop_frames`` (half of them zeroed as
    a missed detection, half repeating the previous frame); frames only: colour jitter of strength
    ``color`` (:func:`jitter_colors`) and a random zoom and shift, the window's side shrunk by up to ``crop``
    (:func:`random_crops`; hand crops too). Keypoints only: ``finger_jitter`` (:func:`jitter_fingers`, palm sizes)
    and ``hand_drop`` (probability of losing one hand for a span, :func:`drop_hand_spans`). Keypoints only change
    where parts are present.
    """
    options = resolve_augmentation(options)
    kp = check_keypoints(kp).copy()
    frames = None if frames is None else frames.copy()
    crops = None if hand_crops is None else hand_crops.copy()
    num_clips, num_frames = kp.shape[:2]
    if options["mirror"] > 0:
        flip = rng.random(num_clips) < options["mirror"]
        if flip.any():
            kp[flip] = mirror_keypoints(kp[flip])
            if frames is not None:
                frames[flip] = mirror_frames(frames[flip])
            if crops is not None:
                crops[flip] = mirror_hand_crops(crops[flip])
    if options["color"] > 0 and frames is not None:
        frames = jitter_colors(frames, rng, options["color"])
    if options["color"] > 0 and crops is not None:
        crops = jitter_colors(crops.reshape(num_clips, -1, *crops.shape[3:]), rng, options["color"]).reshape(crops.shape)
    if options["crop"] > 0 and frames is not None:
        frames = random_crops(frames, rng, options["crop"])
    if options["crop"] > 0 and crops is not None:
        crops = random_crops(crops.reshape(num_clips, -1, *crops.shape[3:]), rng, options["crop"]).reshape(crops.shape)
    if options["scale"] > 0 or options["rotate"] > 0 or options["shift"] > 0:
        kp = _affine(kp, rng, options["scale"], options["rotate"], options["shift"])
    for clip in range(num_clips):
        order, zero = np.arange(num_frames), np.zeros(num_frames, dtype=bool)
        if options["time_warp"] > 0:
            order = _time_warp_indices(num_frames, options["time_warp"], rng)
        if options["drop_frames"] > 0:
            drop_order, zero = _drop_indices(num_frames, options["drop_frames"], rng)
            order = order[drop_order]
        kp[clip] = kp[clip][order]
        kp[clip, zero] = 0
        if frames is not None:
            frames[clip] = frames[clip][order]
        if crops is not None:
            crops[clip] = crops[clip][order]
    # drawn after every other option, so a configuration without these two gets the same batches as before
    if options["finger_jitter"] > 0:
        kp = jitter_fingers(kp, rng, options["finger_jitter"])
    if options["hand_drop"] > 0:
        kp = drop_hand_spans(kp, rng, options["hand_drop"])
    return (kp, frames) if hand_crops is None else (kp, frames, crops)


def augment_batch(kp: np.ndarray, rng: np.random.Generator, options: Mapping[str, Any] | None) -> np.ndarray:
    """Augment a batch of raw keypoints (N, T, 1662); see :func:`augment_clips` for what each option does."""
    return augment_clips(kp, None, rng, options)[0]
