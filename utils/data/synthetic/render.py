"""Rendering videos: any 1662-keypoint sequence drawn as a simple figure with OpenCV, and whole clips.

:func:`render_keypoints` draws torso, head, face features, arms and hands with fingers on a plain, gradient
or textured background; :func:`generate_clip` chains motion, drawing and detection into one
:class:`SyntheticClip`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.config import SYNTHETIC_RENDER_SIZE
from utils.data.keypoints import split_parts
from utils.data.synthetic.hands import HAND_SIZE_REFERENCE
from utils.data.synthetic.motion import DEFAULT_NUM_FRAMES, simulate_detection, simulate_keypoints
from utils.data.synthetic.signers import (
    FACE_CHIN,
    FACE_LEFT_CHEEK,
    FACE_OVAL,
    FACE_RIGHT_CHEEK,
    LEFT_BROW,
    LEFT_EYE,
    LIPS_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    Colour,
    Signer,
    jitter_colour,
)
from utils.errors import DatasetError

DEFAULT_IMAGE_SIZE = SYNTHETIC_RENDER_SIZE  # the course's defaults live in utils.config
MIN_IMAGE_SIZE = 128
MIN_NUM_FRAMES = 8


# ----------------------------------------------------------------------------------------------- rendering
_HAND_CHAINS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
_PALM = (0, 1, 5, 9, 13, 17)
_BONES = np.array([(a, b) for chain in _HAND_CHAINS for a, b in zip(chain[:-1], chain[1:])])
_SHIFT = 4  # OpenCV sub-pixel bits


def _fixed(points: np.ndarray, image_size: int) -> np.ndarray:
    """Normalised (..., 2) coordinates -> OpenCV fixed-point pixel coordinates (int32)."""
    return np.round(points[..., :2] * image_size * (1 << _SHIFT)).astype(np.int32)


def _darker(colour: Colour, factor: float = 0.6) -> Colour:
    """The same colour, darker."""
    return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]


def _background(signer: Signer, image_size: int, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """A static background (S, S, 3) float32: the signer's room, slightly different each clip."""
    import cv2

    first, second = (np.array(jitter_colour(c, rng, 10 + 10 * difficulty), dtype=np.float32)
                     for c in signer.background_colours)
    size = image_size
    if signer.background_kind == "plain":
        image = np.broadcast_to(first, (size, size, 3)).copy()
    elif signer.background_kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / size
        ramp = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)[..., None]
        image = (1 - ramp) * first + ramp * second
    else:
        coarse = rng.uniform(0, 1, (6, 6, 1)).astype(np.float32)
        mix = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
        image = (1 - mix) * first + mix * second + rng.normal(0, 6, (size, size, 1))
    return np.clip(image, 0, 255).astype(np.float32)


def _draw_head(canvas: np.ndarray, face: np.ndarray, signer: Signer, size: int) -> None:
    """Hair, head ellipse, eyes, brows, nose and lips from the face mesh (normalised coordinates)."""
    import cv2

    px = face[:, :2] * size
    across = px[FACE_LEFT_CHEEK] - px[FACE_RIGHT_CHEEK]
    width = float(np.hypot(*across))
    angle = float(np.degrees(np.arctan2(across[1], across[0])))
    up = np.array([np.sin(np.radians(angle)), -np.cos(np.radians(angle))])
    centre = px[list(FACE_OVAL)].mean(axis=0)
    scale = 1 << _SHIFT

    def ellipse(c: np.ndarray, axes: tuple[float, float], colour: Colour, start: float = 0,
                end: float = 360) -> None:
        """A filled ellipse tilted like the face."""
        cv2.ellipse(canvas, tuple(int(v) for v in np.round(c * scale)),
                    tuple(int(round(a * scale)) for a in axes), angle, start, end, colour, -1, cv2.LINE_AA,
                    _SHIFT)

    ellipse(centre + 0.2 * width * up, (0.62 * width, 0.74 * width), signer.hair)
    ellipse(centre + 0.1 * width * up, (0.56 * width, 0.76 * width), signer.skin)
    arc = cv2.ellipse2Poly(tuple(int(v) for v in np.round((centre + 0.1 * width * up) * scale)),
                           (int(0.58 * width * scale), int(0.78 * width * scale)), int(angle), 205, 335, 10)
    cv2.fillPoly(canvas, [arc], signer.hair, cv2.LINE_AA, _SHIFT)
    pts = _fixed(face, size)
    eye_colour = (25, 25, 30)
    for eye in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(canvas, [pts[list(eye)]], eye_colour, cv2.LINE_AA, _SHIFT)
    thickness = max(1, int(round(width * 0.04)))
    for brow in (RIGHT_BROW, LEFT_BROW):
        cv2.polylines(canvas, [pts[list(brow)]], False, _darker(signer.hair, 0.8), thickness, cv2.LINE_AA,
                      _SHIFT)
    cv2.line(canvas, tuple(pts[6]), tuple(pts[4]), _darker(signer.skin, 0.75), thickness, cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(canvas, [pts[list(LIPS_OUTER)]], signer.lips, cv2.LINE_AA, _SHIFT)


def _draw_body(canvas: np.ndarray, pose: np.ndarray, face: np.ndarray | None, signer: Signer,
               size: int) -> float:
    """Torso and neck (up to the face mesh's chin, or the nose without a face); returns the shoulder width in
    pixels."""
    import cv2

    pts = _fixed(pose, size)
    shoulder_px = float(np.linalg.norm((pose[11, :2] - pose[12, :2]) * size))
    outward = ((pts[11] - pts[12]) * 0.08).astype(np.int32)
    torso = np.array([pts[11] + outward, pts[12] - outward, pts[24] - outward // 2, pts[23] + outward // 2])
    cv2.fillConvexPoly(canvas, torso, signer.shirt, cv2.LINE_AA, _SHIFT)
    neck_base = (pts[11] + pts[12]) // 2
    if face is not None:
        neck_top = (_fixed(face[FACE_CHIN], size) + _fixed(face[list(FACE_OVAL)].mean(axis=0), size)) // 2
    else:
        neck_top = pts[0]
    neck_thickness = max(2, int(0.16 * shoulder_px * signer.build))
    cv2.line(canvas, tuple(neck_base), tuple(neck_top), _darker(signer.skin, 0.9), neck_thickness,
             cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(canvas, [np.array([pts[11] + outward, pts[12] - outward,
                                    neck_base + (neck_top - neck_base) // 5])], signer.shirt, cv2.LINE_AA,
                 _SHIFT)
    return shoulder_px


def _draw_arm(canvas: np.ndarray, pose: np.ndarray, side_index: int, signer: Signer, size: int,
              shoulder_px: float) -> None:
    """Upper arm and forearm of one side (0 = the person's left, 1 = right)."""
    import cv2

    pts = _fixed(pose, size)
    shoulder, elbow, wrist = pts[11 + side_index], pts[13 + side_index], pts[15 + side_index]
    upper = max(2, int(0.19 * shoulder_px * signer.build))
    lower = max(2, int(0.15 * shoulder_px * signer.build))
    sleeve = signer.shirt if signer.long_sleeves else signer.skin
    cv2.line(canvas, tuple(shoulder), tuple(elbow), _darker(signer.shirt), upper + 2, cv2.LINE_AA, _SHIFT)
    cv2.line(canvas, tuple(elbow), tuple(wrist), _darker(sleeve), lower + 2, cv2.LINE_AA, _SHIFT)
    cv2.line(canvas, tuple(shoulder), tuple(elbow), signer.shirt, upper, cv2.LINE_AA, _SHIFT)
    cv2.circle(canvas, tuple(elbow), (upper << _SHIFT) // 2, signer.shirt, -1, cv2.LINE_AA, _SHIFT)
    cv2.line(canvas, tuple(elbow), tuple(wrist), sleeve, lower, cv2.LINE_AA, _SHIFT)


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, signer: Signer, size: int) -> None:
    """A hand from its 21 landmarks (normalised x, y; z relative to the wrist): palm polygon and fingers."""
    import cv2

    pts = _fixed(hand, size)
    corners = pts.tolist()
    length_px = float(np.linalg.norm(hand[9] - hand[0]) * size) / HAND_SIZE_REFERENCE
    finger = max(1, int(round(0.1 * length_px)))
    outline = _darker(signer.skin, 0.55)
    depths = np.append(hand[_BONES, 2].mean(axis=1), hand[list(_PALM), 2].mean())
    for piece in np.argsort(-depths, kind="stable"):  # far pieces first
        if piece == len(_BONES):
            hull = cv2.convexHull(pts[list(_PALM)])
            cv2.fillConvexPoly(canvas, hull, signer.skin, cv2.LINE_AA, _SHIFT)
            cv2.polylines(canvas, [hull], True, outline, 1, cv2.LINE_AA, _SHIFT)
        else:
            start, end = corners[_BONES[piece, 0]], corners[_BONES[piece, 1]]
            cv2.line(canvas, start, end, outline, finger + 2, cv2.LINE_AA, _SHIFT)
            cv2.line(canvas, start, end, signer.skin, finger, cv2.LINE_AA, _SHIFT)


def render_keypoints(keypoints: np.ndarray, signer: Signer, image_size: int = DEFAULT_IMAGE_SIZE,
                     rng: np.random.Generator | None = None, difficulty: float = 1.0) -> np.ndarray:
    """Draw a figure for each 1662 keypoint frame: RGB uint8 (T, S, S, 3), with the signer's colours.

    Parts that are all zeros (not detected) are left out, so real MediaPipe keypoints can be drawn too;
    the dataset draws the noise-free keypoints of :func:`simulate_keypoints`. ``difficulty`` scales
    lighting changes, blur and sensor noise.
    """

    rng = rng if rng is not None else np.random.default_rng(0)
    parts = split_parts(np.asarray(keypoints, dtype=np.float64))
    background = _background(signer, image_size, rng, difficulty).astype(np.uint8)
    frames = np.empty((len(keypoints), image_size, image_size, 3), dtype=np.uint8)
    for index in range(len(keypoints)):
        canvas = background.copy()
        pose, face = parts["pose"][index], parts["face"][index]
        hands = {0: parts["left_hand"][index].copy(), 1: parts["right_hand"][index].copy()}
        if pose.any():
            shoulder_px = _draw_body(canvas, pose, face if face.any() else None, signer, image_size)
        if face.any():
            _draw_head(canvas, face, signer, image_size)
        for side_index in sorted(hands, key=lambda s: -pose[15 + s, 2]):  # farther arm first
            hand = hands[side_index] if hands[side_index].any() else None
            if hand is not None:
                hand[:, 2] += pose[15 + side_index, 2]
            if pose.any():
                _draw_arm(canvas, pose, side_index, signer, image_size, shoulder_px)
            if hand is not None:
                _draw_hand(canvas, hand, signer, image_size)
        frames[index] = canvas
    return _camera_effects(frames, rng, difficulty) if difficulty > 0 else frames


def _camera_effects(frames: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Lighting gain, a little blur and sensor noise, scaled by ``difficulty``."""
    import cv2

    gain = float(np.exp(rng.normal(0, 0.08 * difficulty)))
    if difficulty > 0.5:
        frames = np.stack([cv2.GaussianBlur(frame, (0, 0), 0.35 * difficulty) for frame in frames])
    noise_bank = (2.5 * difficulty) * rng.standard_normal((4, *frames.shape[1:]), dtype=np.float32)
    shifts = rng.integers(0, frames.shape[1], size=(len(frames), 2))
    out = np.empty_like(frames)
    for index, (frame, (dy, dx)) in enumerate(zip(frames, shifts)):
        noise = np.roll(noise_bank[index % len(noise_bank)], (dy, dx), axis=(0, 1))
        out[index] = np.clip(frame.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------- clips
@dataclass
class SyntheticClip:
    """One generated clip: frames (T, S, S, 3) uint8 RGB, keypoints (T, 1662) float32, detected (T, 4)
    bool."""

    frames: np.ndarray
    keypoints: np.ndarray
    detected: np.ndarray
    sign: str
    signer: str


def generate_clip(sign: str, signer: Signer, rng: np.random.Generator, difficulty: float = 1.0,
                  num_frames: int = DEFAULT_NUM_FRAMES,
                  image_size: int = DEFAULT_IMAGE_SIZE) -> SyntheticClip:
    """``signer`` performing ``sign``: rendered frames plus the keypoints a detector would report."""
    check_sizes(num_frames, image_size, difficulty)
    exact = simulate_keypoints(sign, signer, rng, difficulty, num_frames)
    frames = render_keypoints(exact, signer, image_size, rng, difficulty)
    keypoints, detected = simulate_detection(exact, rng, difficulty)
    return SyntheticClip(frames=frames, keypoints=keypoints.astype(np.float32), detected=detected,
                         sign=sign, signer=signer.id)


def check_sizes(num_frames: int, image_size: int, difficulty: float) -> None:
    """Raise DatasetError for sizes the generator does not support."""
    if num_frames < MIN_NUM_FRAMES:
        raise DatasetError(f"num_frames={num_frames} is too short: use at least {MIN_NUM_FRAMES}")
    if image_size < MIN_IMAGE_SIZE:
        raise DatasetError(f"image_size={image_size} is too small to draw fingers: use at least "
                           f"{MIN_IMAGE_SIZE} (features are resized later, e.g. to 64)")
    if not 0.0 <= difficulty <= 3.0:
        raise DatasetError(f"difficulty={difficulty} is out of range: use 0 (clean) .. 1 (default) .. 2 "
                           "(hard)")


def contact_sheet(clips: list[SyntheticClip], frames_per_clip: int = 6) -> np.ndarray:
    """One RGB image: a row per clip with ``frames_per_clip`` evenly spaced frames, for a quick look."""
    rows = []
    for clip in clips:
        picks = np.linspace(0, len(clip.frames) - 1, frames_per_clip).round().astype(int)
        rows.append(np.concatenate([np.pad(clip.frames[i], ((1, 1), (1, 1), (0, 0))) for i in picks], axis=1))
    return np.concatenate(rows, axis=0)
