"""Training-time augmentation of keypoints and frames: mirror, scale, rotate, shift, time warp, drop-outs."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from utils.data.keypoints import HAND_POINTS, LEFT_HAND, RIGHT_HAND
from utils.inputs.preprocessing.hands import (
    HAND_WRIST,
    PALM_POINTS,
    mirror_frames,
    mirror_hand_crops,
    mirror_keypoints,
)
from utils.inputs.preprocessing.normalise import check_keypoints, join_part_views, part_presence, part_views

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
    """Per clip: one random square window (side 1 - up to ``strength`` of the image, anywhere inside it) cut
    out of every frame and resized back to the frame size, i.e. a random zoom and shift; same dtype out."""
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


def _affine(kp: np.ndarray, rng: np.random.Generator, scale: float, rotate: float,
            shift: float) -> np.ndarray:
    """Random per-clip scale (x and y separately), rotation (degrees) and shift about the image centre."""
    n = len(kp)
    sx, sy = (1 + rng.uniform(-scale, scale, size=(2, n))).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-rotate, rotate, size=n)).astype(np.float32)
    dx, dy = rng.uniform(-shift, shift, size=(2, n)).astype(np.float32)
    present = part_presence(kp)
    parts = [p.copy() for p in part_views(kp)]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    for index, part in enumerate(parts):
        x, y = part[..., 0] - 0.5, part[..., 1] - 0.5
        x, y = x * sx[:, None, None], y * sy[:, None, None]
        new_x = cos * x - sin * y + 0.5 + dx[:, None, None]
        new_y = sin * x + cos * y + 0.5 + dy[:, None, None]
        mask = present[..., index][..., None]
        part[..., 0], part[..., 1] = np.where(mask, new_x, 0), np.where(mask, new_y, 0)
    return join_part_views(*parts)


def _time_warp_indices(num_frames: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A monotone random resampling of range(num_frames): a power-law warp of time (nearest frame)."""
    gamma = np.exp(rng.uniform(-strength, strength))
    start, stop = rng.uniform(0, strength / 2), 1 - rng.uniform(0, strength / 2)
    positions = start + (stop - start) * np.linspace(0, 1, num_frames) ** gamma
    return np.clip(np.round(positions * (num_frames - 1)), 0, num_frames - 1).astype(np.int64)


def _drop_indices(num_frames: int, probability: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame order with dropped frames repeating their predecessor, and a mask of frames to zero out."""
    dropped = rng.random(num_frames) < probability
    dropped[0] = False
    repeat = dropped & (rng.random(num_frames) < 0.5)
    order = np.arange(num_frames)
    for t in np.flatnonzero(repeat):
        order[t] = order[t - 1]
    return order, dropped & ~repeat


def drop_hand_spans(kp: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """With this probability per clip, one hand (left or right at random) goes missing (zeros) for a random
    span of 1 to T/2 frames: what MediaPipe does when it loses a hand. Everything else is unchanged."""
    kp = check_keypoints(kp).copy()
    num_frames = kp.shape[1]
    for clip in np.flatnonzero(rng.random(len(kp)) < probability):
        hand = (LEFT_HAND, RIGHT_HAND)[rng.integers(2)]
        length = int(rng.integers(1, max(num_frames // 2, 1) + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        kp[clip, start:start + length, hand] = 0
    return kp


def jitter_fingers(kp: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Move each hand's points 1-20 (not the wrist) by a random offset per clip and point, x and y, of
    standard deviation ``strength`` palm sizes (:func:`hand_shape`'s palm): another hand's proportions, the
    same sign. Only frames where the hand is present change."""
    kp = check_keypoints(kp).copy()
    present = part_presence(kp)
    for hand, index in ((LEFT_HAND, 2), (RIGHT_HAND, 3)):
        points = kp[..., hand].reshape(*kp.shape[:2], HAND_POINTS, 3)
        palm = np.linalg.norm(points[..., PALM_POINTS, :2] - points[..., HAND_WRIST:HAND_WRIST + 1, :2],
                              axis=-1).mean(-1)
        offset = rng.normal(0, strength, size=(len(kp), 1, HAND_POINTS - 1, 2)).astype(np.float32)
        moved = points.copy()
        moved[..., 1:, :2] += offset * palm[..., None, None]
        kp[..., hand] = np.where(present[..., index][..., None], moved.reshape(*kp.shape[:2], -1),
                                 kp[..., hand])
    return kp


def augment_clips(kp: np.ndarray, frames: np.ndarray | None, rng: np.random.Generator,
                  options: Mapping[str, Any] | None, hand_crops: np.ndarray | None = None) -> tuple:
    """Augment raw keypoints (N, T, 1662) and, consistently, their frames (N, T, S, S, 3) or None.

    Given ``hand_crops`` (N, T, 2, C, C, 3), returns (keypoints, frames, hand_crops), else (keypoints,
    frames): a flip mirrors each crop and swaps left and right, as it swaps the hands' keypoints; crops follow
    the time warp and colour jitter of their frames.

    Per clip: mirror with hand swap (probability ``mirror``; frames flipped too), scale by up to
    ``scale`` (fraction), rotate by up to ``rotate`` degrees, shift by up to ``shift`` (image fraction),
    warp time by ``time_warp`` and drop frames with probability ``drop_frames`` (half of them zeroed as
    a missed detection, half repeating the previous frame); frames only: colour jitter of strength
    ``color`` (:func:`jitter_colors`) and a random zoom and shift, the window's side shrunk by up to ``crop``
    (:func:`random_crops`; hand crops too). Keypoints only: ``finger_jitter`` (:func:`jitter_fingers`, palm
    sizes) and ``hand_drop`` (probability of losing one hand for a span, :func:`drop_hand_spans`). Keypoints
    only change where parts are present.
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
        crops = jitter_colors(crops.reshape(num_clips, -1, *crops.shape[3:]), rng,
                              options["color"]).reshape(crops.shape)
    if options["crop"] > 0 and frames is not None:
        frames = random_crops(frames, rng, options["crop"])
    if options["crop"] > 0 and crops is not None:
        crops = random_crops(crops.reshape(num_clips, -1, *crops.shape[3:]), rng,
                             options["crop"]).reshape(crops.shape)
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
