"""The pipeline: :func:`preprocess_keypoints` (every option in order), velocities, time and frames."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from utils.data.keypoints import HAND_POINTS
from utils.inputs.preprocessing.hands import (
    HAND_ANGLE_DIM,
    canonicalize_handedness,
    fill_hand_gaps,
    hand_angles,
    hand_shape,
)
from utils.inputs.preprocessing.normalise import (
    check_keypoints,
    face_indices,
    part_presence,
    pose_indices,
    resolve_options,
    select_points,
)


# ----------------------------------------------------------------------------- velocities, the pipeline
def add_velocity(features: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Append frame differences (first frame 0) to each frame's vector; zero where a value is missing in
    either frame."""
    features = np.asarray(features, dtype=np.float32)
    velocity = np.zeros_like(features)
    velocity[:, 1:] = np.diff(features, axis=1)
    if present is not None:
        both = present[:, 1:] & present[:, :-1]
        velocity[:, 1:] *= both
    return np.concatenate([features, velocity], axis=-1)


def _presence_per_value(kp: np.ndarray, options: Mapping[str, Any]) -> np.ndarray:
    """Bool (N, T, D) saying which values of :func:`select_points`'s vector belong to parts that are
    present."""
    present = part_presence(kp)
    xyz = 3 if options["z"] else 2
    sizes = (len(face_indices(options["face"])) * xyz,
             len(pose_indices(options["pose"])) * (xyz + options["z"]), HAND_POINTS * xyz, HAND_POINTS * xyz)
    return np.repeat(present, sizes, axis=-1)


def preprocess_keypoints(kp: np.ndarray, options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Raw (N, T, 1662) keypoints -> model input (N, T, output_dim(options)).

    In order: fill short hand gaps, canonical handedness (mirror), normalise, keep the chosen points and
    coordinates, append hand shapes, finger angles and hand-presence flags, append velocities. Vectorised over
    clips.
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
    dim = (
        len(face_indices(options["face"])) * xyz
        + len(pose_indices(options["pose"])) * (xyz + options["z"])
        + 2 * HAND_POINTS * xyz
    )
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
    """Resize (N, T, S, S, 3) uint8 frames to image_size (cv2.INTER_AREA); unchanged when already that
    size."""
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
    """Frames (N, T, H, W, 3) uint8 with each frame's raw (1662,) landmarks drawn on them, 1 px lines (a
    copy)."""
    from utils.data.keypoints import draw_landmarks

    frames, kp = np.asarray(frames, dtype=np.uint8), check_keypoints(kp)
    if frames.shape[:2] != kp.shape[:2]:
        raise ValueError(f"frames {frames.shape[:2]} and keypoints {kp.shape[:2]} must have the same clips "
                         "and frames")
    out = np.ascontiguousarray(frames).copy()
    for clip in range(len(out)):
        for t in range(out.shape[1]):
            draw_landmarks(out[clip, t], kp[clip, t], thickness=1, copy=False)
    return out
