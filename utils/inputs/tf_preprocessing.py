"""The input preparation of :mod:`utils.inputs` as TensorFlow ops, for export.

An exported model (:mod:`utils.serving.export`) takes what MediaPipe and the video give: raw keypoints (B, t,
1662) float32 and raw uint8 frames (B, t, H, W, 3) (and hand crops (B, t, 2, C, C, 3) for a model that takes
them). :func:`clip_inputs` turns them into the model's inputs exactly as :func:`utils.inputs.clip_inputs` does
in NumPy: time resampled to T, frames resized to S like ``cv2.INTER_AREA``, then every keypoint option of
:data:`utils.inputs.preprocessing.DEFAULT_OPTIONS` and the frame mode. Each function here mirrors the NumPy
function of the same name; the data-dependent steps (which hand is dominant, which frames are gaps) are
decided per clip with ``tf.where``, so one graph serves every clip. Only TensorFlow Lite built-in ops are
used.

An option added to :data:`utils.inputs.preprocessing.DEFAULT_OPTIONS` without a port here makes
:func:`check_ported` (and so the export) fail, rather than export a model that silently skips a step.

Why the preparation is written twice: training, evaluation and the notebooks prepare clips in NumPy, which a
student reads line by line; an exported model must carry the same steps inside its graph, in TensorFlow Lite
built-in ops, so that a phone or a browser needs the file and nothing else. Rather than make every reader
follow graph code, the two are kept side by side: ``tests/test_tf_preprocessing.py`` checks, option by option,
that they give the same numbers, and every export checks it again on the run's own clips.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from utils.data.keypoints import (
    FACE,
    FACE_POINTS,
    HAND_POINTS,
    LEFT_HAND,
    POSE,
    POSE_LEFT_SHOULDER,
    POSE_POINTS,
    POSE_RIGHT_SHOULDER,
    RIGHT_HAND,
)
from utils.data.video import sample_frame_indices
from utils.errors import ConfigError
from utils.inputs import preprocessing as P

#: The options of utils.preprocessing.DEFAULT_OPTIONS that have a TensorFlow port here.
PORTED_OPTIONS = frozenset({"normalize", "face", "mirror", "velocity", "frames", "pose", "z", "hand_shape",
                            # draw_landmarks: only False
                            "presence", "fill_gaps", "hand_angles", "draw_landmarks"})


def check_ported(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options with defaults filled in; ConfigError when one of them has no TensorFlow port yet."""
    resolved = P.resolve_options(options)
    missing = sorted(set(resolved) - PORTED_OPTIONS)
    if missing:
        raise ConfigError(f"preprocessing option(s) {missing} have no TensorFlow port in "
                          "utils/inputs/tf_preprocessing.py: add one (and its parity test) before exporting "
                          "a model that uses them")
    if resolved["draw_landmarks"]:
        raise ConfigError("preprocessing draw_landmarks=True (landmarks drawn onto the frames with OpenCV) "
                          "has no TensorFlow port: such a model runs through utils.predict, it cannot be "
                          "exported")
    return resolved


# ----------------------------------------------------------------------------- helpers
def _parts(kp: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(B, T, 1662) as face (B,T,468,3), pose (B,T,33,4), left and right hands (B,T,21,3)."""
    lead = tf.shape(kp)[:-1]
    return tuple(tf.reshape(kp[..., part], tf.concat([lead, [points, dims]], 0))
                 for part, points, dims in ((FACE, FACE_POINTS, 3), (POSE, POSE_POINTS, 4),
                                            (LEFT_HAND, HAND_POINTS, 3), (RIGHT_HAND, HAND_POINTS, 3)))


def _join(*parts: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`_parts` (any number of points per part)."""
    lead = tf.shape(parts[1])[:-2]
    return tf.concat([tf.reshape(p, tf.concat([lead, [p.shape[-2] * p.shape[-1]]], 0)) for p in parts],
                     axis=-1)


def part_presence(kp: tf.Tensor) -> tf.Tensor:
    """Which parts (face, pose, left hand, right hand) are non-zero in each frame: bool (B, T, 4)."""
    return tf.stack([tf.reduce_any(p[..., :P.PRESENCE_POINTS, :3] != 0, axis=[-1, -2]) for p in _parts(kp)],
                    axis=-1)


def _norm(x: tf.Tensor) -> tf.Tensor:
    """Euclidean length over the last axis (np.linalg.norm)."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1))


# ----------------------------------------------------------------------------- normalisation
def shoulder_reference(kp: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-frame shoulder midpoint (B, T, 2) and width (B, T); frames without shoulders borrow the clip
    mean."""
    pose = _parts(kp)[1]
    left, right = pose[..., POSE_LEFT_SHOULDER, :2], pose[..., POSE_RIGHT_SHOULDER, :2]
    width = _norm(left - right)
    valid = (tf.reduce_any(left != 0, axis=-1) & tf.reduce_any(right != 0, axis=-1)
             & (width > P.MIN_SHOULDER_WIDTH))
    centre = (left + right) / 2
    weight = tf.cast(valid, tf.float32)
    count = tf.reduce_sum(weight, axis=1)  # (B,)
    clip_centre = tf.where(count[:, None] > 0,
                           tf.reduce_sum(centre * weight[..., None], 1) / tf.maximum(count, 1)[:, None],
                           tf.constant(P.FALLBACK_CENTRE, tf.float32))
    clip_width = tf.where(count > 0, tf.reduce_sum(width * weight, 1) / tf.maximum(count, 1),
                          P.FALLBACK_SHOULDER_WIDTH)
    return (tf.where(valid[..., None], centre, clip_centre[:, None, :]),
            tf.where(valid, width, clip_width[:, None]))


def _normalize_parts(parts: tuple[tf.Tensor, ...], present: tf.Tensor, centre: tf.Tensor,
                     width: tf.Tensor) -> list[tf.Tensor]:
    """Centre x, y on the shoulders' midpoint and divide x, y, z by the shoulder width (present parts
    only)."""
    out = []
    for index, part in enumerate(parts):
        mask = present[..., index][:, :, None]  # (B, T, 1)
        xy = tf.where(mask[..., None], (part[..., :2] - centre[:, :, None, :]) / width[:, :, None, None], 0.0)
        z = tf.where(mask, part[..., 2] / width[:, :, None], 0.0)
        out.append(tf.concat([xy, z[..., None], part[..., 3:]], axis=-1))
    return out


def normalize_keypoints(kp: tf.Tensor) -> tf.Tensor:
    """:func:`utils.preprocessing.normalize_keypoints` in TensorFlow: (B, T, 1662) -> (B, T, 1662)."""
    return _join(*_normalize_parts(_parts(kp), part_presence(kp), *shoulder_reference(kp)))


# ----------------------------------------------------------------------------- mirroring
def mirror_keypoints(kp: tf.Tensor) -> tf.Tensor:
    """Mirror raw keypoints left/right: x -> 1 - x where a part is present, swap the hands and the pose's
    sides."""
    present = part_presence(kp)
    flipped = []
    for index, part in enumerate(_parts(kp)):
        x = tf.where(present[..., index][..., None], 1.0 - part[..., 0], 0.0)
        flipped.append(tf.concat([x[..., None], part[..., 1:]], axis=-1))
    face, pose, left, right = flipped
    return _join(face, tf.gather(pose, P.POSE_MIRROR_ORDER, axis=-2), right, left)


def hand_height(kp: tf.Tensor) -> tf.Tensor:
    """Mean height (1 - y, 0 when not seen) of each hand over the clip, (B, 2) left, right."""
    present = part_presence(kp)
    _, _, left, right = _parts(kp)
    heights = [tf.reduce_mean(tf.where(present[..., index], 1.0 - tf.reduce_mean(hand[..., 1], axis=-1), 0.0),
                              axis=1)
               for hand, index in ((left, 2), (right, 3))]
    return tf.stack(heights, axis=-1)


def dominant_hand_scores(kp: tf.Tensor) -> tf.Tensor:
    """Path length of each hand's mean landmark over frames where it is seen twice in a row, + 1e-3 per
    detection."""
    _, _, left, right = _parts(kp)
    seen = tf.cast(part_presence(kp)[..., 2:], tf.float32)  # (B, T, 2)
    position = tf.stack([tf.reduce_mean(left[..., :2], axis=-2), tf.reduce_mean(right[..., :2], axis=-2)],
                        axis=-2)
    steps = _norm(position[:, 1:] - position[:, :-1]) * (seen[:, 1:] * seen[:, :-1])
    return tf.reduce_sum(steps, axis=1) + 1e-3 * tf.reduce_sum(seen, axis=1)


def left_dominant(kp: tf.Tensor, method: str = "motion") -> tf.Tensor:
    """Bool (B,): the clip's dominant hand is the left one, by "motion" or by "height"."""
    if method == "motion":
        scores = dominant_hand_scores(kp)
    elif method == "height":
        scores = hand_height(kp)
    else:
        raise ValueError(f"handedness method must be 'motion' or 'height', got {method!r}")
    return scores[:, 0] > scores[:, 1]


def canonicalize_handedness(kp: tf.Tensor, method: str = "motion") -> tf.Tensor:
    """Mirror, clip by clip, the clips whose dominant hand is the left one."""
    return tf.where(left_dominant(kp, method)[:, None, None], mirror_keypoints(kp), kp)


# ----------------------------------------------------------------------------- hands
def _nearest_seen(seen: tf.Tensor, after: bool) -> tf.Tensor:
    """Per frame t, the last frame <= t (or first frame >= t when ``after``) where ``seen``; -1 (or T) if
    none."""
    num_frames = seen.shape[1]
    frame = np.arange(num_frames)
    order = (frame[None, :] >= frame[:, None]) if after else (frame[None, :] <= frame[:, None])  # (t, s)
    allowed = seen[:, None, :] & tf.constant(order)[None]  # (B, t, s)
    if after:
        return tf.reduce_min(tf.where(allowed, frame.astype(np.int32), num_frames), axis=-1)
    return tf.reduce_max(tf.where(allowed, frame.astype(np.int32), -1), axis=-1)


def fill_hand_gaps(kp: tf.Tensor, max_gap: int) -> tf.Tensor:
    """Fill each hand's drop-outs of at most max_gap frames by linear interpolation (not at a clip's ends)."""
    if max_gap <= 0:
        return kp
    num_frames = kp.shape[1]
    frame = tf.range(num_frames, dtype=tf.int32)[None]
    present = part_presence(kp)
    pieces = [kp[..., :LEFT_HAND.start]]
    for hand, index in ((LEFT_HAND, 2), (RIGHT_HAND, 3)):
        seen = present[..., index]
        before, after = _nearest_seen(seen, after=False), _nearest_seen(seen, after=True)
        fill = ~seen & (before >= 0) & (after < num_frames) & (after - before - 1 <= max_gap)
        values = kp[..., hand]
        low = tf.gather(values, tf.clip_by_value(before, 0, num_frames - 1), axis=1, batch_dims=1)
        high = tf.gather(values, tf.clip_by_value(after, 0, num_frames - 1), axis=1, batch_dims=1)
        gap = tf.cast(tf.maximum(after - before, 1), tf.float32)
        weight = (tf.cast(frame - before, tf.float32) / gap)[..., None]
        pieces.append(tf.where(fill[..., None], low + weight * (high - low), values))
    return tf.concat(pieces, axis=-1)


def hand_shape(kp: tf.Tensor, use_z: bool = True) -> tf.Tensor:
    """Both hands' points 1-20 relative to the wrist, divided by the palm size: (B, T, 2 * 20 * (3 or 2))."""
    _, _, left, right = _parts(kp)
    present = part_presence(kp)
    dims = 3 if use_z else 2
    shapes = []
    for hand, index in ((left, 2), (right, 3)):
        wrist = hand[..., P.HAND_WRIST:P.HAND_WRIST + 1, :]
        local = hand[..., 1:, :dims] - wrist[..., :dims]
        palm = tf.reduce_mean(_norm(tf.gather(hand, P.PALM_POINTS, axis=-2)[..., :2] - wrist[..., :2]),
                              axis=-1)
        scaled = local / tf.maximum(palm, P.MIN_PALM_SIZE)[..., None, None]
        scaled = tf.where(present[..., index][..., None, None], scaled, 0.0)
        shapes.append(tf.reshape(scaled, tf.concat([tf.shape(kp)[:2], [(HAND_POINTS - 1) * dims]], 0)))
    return tf.concat(shapes, axis=-1)


def hand_angles(kp: tf.Tensor) -> tf.Tensor:
    """Per hand, the cosine of each finger's three joint bends (x, y, z) and the 10 fingertip distances (x, y)
    divided by the palm size: (B, T, 2 * 25), zeros where the hand is missing."""
    _, _, left, right = _parts(kp)
    present = part_presence(kp)
    pairs = [(a, b) for i, a in enumerate(P.FINGERTIPS) for b in P.FINGERTIPS[i + 1:]]
    out = []
    for hand, index in ((left, 2), (right, 3)):
        bends = []
        for chain in P.FINGER_CHAINS:
            points = tf.gather(hand, list(chain), axis=-2)
            bones = points[..., 1:, :] - points[..., :-1, :]  # (B, T, 4, 3)
            unit = bones / tf.maximum(_norm(bones), 1e-6)[..., None]
            bends.append(tf.reduce_sum(unit[..., 1:, :] * unit[..., :-1, :], axis=-1))  # (B, T, 3)
        wrist = hand[..., P.HAND_WRIST:P.HAND_WRIST + 1, :2]
        palm = tf.reduce_mean(_norm(tf.gather(hand, P.PALM_POINTS, axis=-2)[..., :2] - wrist), axis=-1)
        tips = tf.stack([_norm(hand[..., a, :2] - hand[..., b, :2]) for a, b in pairs], axis=-1)
        values = tf.concat(bends + [tips / tf.maximum(palm, P.MIN_PALM_SIZE)[..., None]], axis=-1)
        out.append(tf.where(present[..., index][..., None], values, 0.0))
    return tf.concat(out, axis=-1)


# ----------------------------------------------------------------------------- velocities, the pipeline
def add_velocity(features: tf.Tensor, present: tf.Tensor | None = None) -> tf.Tensor:
    """Append frame differences (first frame 0), zero where a value is missing in either frame."""
    velocity = features[:, 1:] - features[:, :-1]
    if present is not None:
        velocity = velocity * tf.cast(present[:, 1:] & present[:, :-1], tf.float32)
    velocity = tf.concat([tf.zeros_like(features[:, :1]), velocity], axis=1)
    return tf.concat([features, velocity], axis=-1)


def select_points(kp: tf.Tensor, face: str = "full", pose: str = "full", use_z: bool = True,
                  normalize: bool = False) -> tf.Tensor:
    """The chosen face and pose points and both hands, flattened per frame, normalised if asked."""
    face_points, pose_points, left, right = _parts(kp)
    parts = (tf.gather(face_points, P.face_indices(face), axis=-2),
             tf.gather(pose_points, P.pose_indices(pose), axis=-2), left, right)
    if normalize:
        parts = _normalize_parts(parts, part_presence(kp), *shoulder_reference(kp))
    if not use_z:
        parts = tuple(p[..., :2] for p in parts)
    return _join(*parts)


def _presence_per_value(kp: tf.Tensor, options: Mapping[str, Any]) -> tf.Tensor:
    """Bool (B, T, D): which values of :func:`select_points`'s vector belong to parts that are present."""
    xyz = 3 if options["z"] else 2
    sizes = (len(P.face_indices(options["face"])) * xyz,
             len(P.pose_indices(options["pose"])) * (xyz + options["z"]), HAND_POINTS * xyz,
             HAND_POINTS * xyz)
    return tf.gather(part_presence(kp), np.repeat(np.arange(4), sizes), axis=-1)


def preprocess_keypoints(kp: tf.Tensor, options: Mapping[str, Any] | None = None) -> tf.Tensor:
    """Raw (B, T, 1662) float32 keypoints -> model input (B, T, output_dim(options)), as the NumPy
    pipeline."""
    options = check_ported(options)
    kp = tf.cast(kp, tf.float32)
    if options["fill_gaps"]:
        kp = fill_hand_gaps(kp, int(options["fill_gaps"]))
    if options["mirror"]:
        kp = canonicalize_handedness(kp, method=options["mirror"])
    presence = part_presence(kp)[..., 2:]
    blocks_present = [_presence_per_value(kp, options)]
    blocks = [select_points(kp, options["face"], options["pose"], options["z"], options["normalize"])]
    if options["hand_shape"]:
        blocks.append(hand_shape(kp, options["z"]))
        blocks_present.append(tf.gather(presence,
                                        np.repeat([0, 1], (HAND_POINTS - 1) * (3 if options["z"] else 2)),
                                        axis=-1))
    if options["hand_angles"]:
        blocks.append(hand_angles(kp))
        blocks_present.append(tf.gather(presence, np.repeat([0, 1], P.HAND_ANGLE_DIM), axis=-1))
    if options["presence"]:
        blocks.append(tf.cast(presence, tf.float32))
        blocks_present.append(tf.ones_like(presence))
    out = tf.concat(blocks, axis=-1)
    if options["velocity"]:
        out = add_velocity(out, tf.concat(blocks_present, axis=-1))
    return out


# ----------------------------------------------------------------------------- time and frames
def resample_time(array: tf.Tensor, num_frames: int) -> tf.Tensor:
    """Evenly resample axis 1 (time, static length) to num_frames, as
    :func:`utils.preprocessing.resample_time`."""
    if array.shape[1] == num_frames:
        return array
    return tf.gather(array, sample_frame_indices(array.shape[1], num_frames)[0], axis=1)


def area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) float32 matrix of cv2.INTER_AREA downscaling along one axis: overlap / scale."""
    if target > source:
        raise ConfigError(f"frames of {source} pixels cannot be enlarged to {target} by area resizing: "
                          f"export with thumbnails at least as large as the model's image size")
    scale = source / target
    weights = np.zeros((target, source), dtype=np.float64)
    for out in range(target):
        start, stop = out * scale, (out + 1) * scale
        for pixel in range(int(np.floor(start)), min(int(np.ceil(stop)), source)):
            weights[out, pixel] = (min(stop, pixel + 1) - max(start, pixel)) / scale
    return weights.astype(np.float32)


def resize_frames(frames: tf.Tensor, image_size: int) -> tf.Tensor:
    """(..., H, W, 3) uint8 or float frames -> (..., S, S, 3) float32 with the values of uint8 cv2.INTER_AREA.

    Separable area weights (one matrix per axis), rounded as OpenCV rounds its uint8 output: half up when
    halving (its fast 2x2 path adds 2 and shifts), half to even otherwise. Unchanged (as float32) when the
    frames already have that size.
    """
    frames = tf.cast(frames, tf.float32)
    height, width = frames.shape[-3], frames.shape[-2]
    if height == image_size and width == image_size:
        return frames
    rows, cols = tf.constant(area_weights(height, image_size)), tf.constant(area_weights(width, image_size))
    resized = tf.einsum("sh,...hwc->...swc", rows, frames)
    resized = tf.einsum("tw,...swc->...stc", cols, resized)
    halving = height == 2 * image_size and width == 2 * image_size
    return tf.clip_by_value(tf.floor(resized + 0.5) if halving else tf.round(resized), 0.0, 255.0)


def preprocess_frames(frames: tf.Tensor, options: Mapping[str, Any] | None = None) -> tf.Tensor:
    """Frames (B, T, ...) float32: unchanged ("rgb"), x_t - x_{t-1} with the first step 0 ("diff") or x_t -
    x_0 ("first")."""
    frames = tf.cast(frames, tf.float32)
    mode = check_ported(options)["frames"]
    if mode == "rgb":
        return frames
    if mode == "first":
        return frames - frames[:, :1]
    return tf.concat([tf.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], axis=1)


# ----------------------------------------------------------------------------- the one input path, in
# TensorFlow
def sample_clips(raw: Mapping[str, tf.Tensor], spec: Any) -> dict[str, tf.Tensor]:
    """:func:`utils.inputs.sample_clips` in TensorFlow: time to T, frames to S, hand crops to C."""
    from utils.inputs.spec import as_spec

    spec = as_spec(spec)
    out: dict[str, tf.Tensor] = {}
    if "keypoints" in raw:
        out["keypoints"] = resample_time(tf.cast(raw["keypoints"], tf.float32), spec.num_frames)
    if "frames" in raw:
        out["frames"] = resize_frames(resample_time(raw["frames"], spec.num_frames), spec.image_size)
    if "hands" in raw:
        out["hands"] = resize_frames(resample_time(raw["hands"], spec.num_frames), spec.hand_size)
    return out


def finish_inputs(sampled: Mapping[str, tf.Tensor], spec: Any) -> dict[str, tf.Tensor]:
    """:func:`utils.inputs.finish_inputs` in TensorFlow: the keypoint options and the frame mode."""
    from utils.inputs.spec import as_spec

    options = as_spec(spec).preprocessing
    out = dict(sampled)
    if "keypoints" in out:
        out["keypoints"] = preprocess_keypoints(out["keypoints"], options)
    for name in ("frames", "hands"):
        if name in out:
            out[name] = preprocess_frames(out[name], options)
    return out


def clip_inputs(raw: Mapping[str, tf.Tensor], spec: Any) -> dict[str, tf.Tensor]:
    """Model inputs (float32) of raw clips, as :func:`utils.inputs.clip_inputs`: T, S, preprocessing."""
    return finish_inputs(sample_clips(raw, spec), spec)
