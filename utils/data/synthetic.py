"""The embedded "synthetic signs" dataset: a procedural signer performing 10 motions, rendered to video.

The ten classes are named after the ASL signs of the original project (``SIGNS``), and each motion is
*inspired* by its sign (see ``SIGN_DESCRIPTIONS``), but these are synthetic stand-ins, **not real ASL**:
a model trained here learns our cartoon motions, not sign language. The point is a dataset that is made
offline in a minute, has the exact structure of real data, and is hard enough to be worth modelling.

Each clip is

* a video (``T`` frames, RGB, default 30 x 128 x 128) of a simple figure drawn with OpenCV: torso, head,
  face features, arms, and hands with fingers, on a plain / gradient / textured background, and
* its keypoints in the 1662 MediaPipe Holistic layout of :mod:`utils.keypoints` (face mesh 468, pose 33
  with visibility, left hand 21, right hand 21; normalised image coordinates), together with which parts
  a detector "found" in each frame. "Left" is the person's left, which is on the image's right.

Motion (keypoints) and pixels are separate steps: :func:`simulate_keypoints` moves the skeleton,
:func:`render_keypoints` draws any 1662 sequence, :func:`simulate_detection` adds what a real detector
does (jitter, missed hands). :func:`generate_clip` chains the three; :func:`make_dataset` writes a folder.

Variation (all seeded): each :class:`Signer` has a persistent identity (proportions, framing, colours,
left- or right-handedness, personal speed, amplitude and where they touch); each clip adds position,
scale, rotation, time warp, start offset, amplitude, sensor noise, keypoint jitter and missed hands,
scaled by ``difficulty`` (0 = clean, 1 = default, 2 = hard). The face follows a real MediaPipe face mesh,
measured once on ``skimage.data.astronaut()`` and cached under ``paths.CACHE_DIR``.
"""
from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import paths
from utils.config import NUM_FRAMES, SYNTHETIC_RENDER_SIZE
from utils.errors import DatasetError
from utils.data.keypoints import FACE_POINTS, HAND_POINTS, POSE_POINTS, join_parts, split_parts

SIGNS: tuple[str, ...] = ("hello", "thanks", "iloveyou", "me", "father", "mother", "yes", "no", "help", "please")

SIGN_DESCRIPTIONS: dict[str, str] = {
    "hello": "flat hand starts at the temple (a salute) and moves outward",
    "thanks": "flat hand starts with the fingertips at the chin and moves forward and down",
    "iloveyou": "thumb, index and pinky out, held up beside the face with a small shake",
    "me": "index finger taps the chest twice",
    "father": "open 5-hand, the thumb taps the forehead twice",
    "mother": "open 5-hand, the thumb taps the chin twice (father's motion, lower)",
    "yes": "fist held at the shoulder nods up and down at the wrist three times",
    "no": "index and middle finger close onto the thumb twice",
    "help": "thumb-up fist resting on the other, flat palm-up hand; both rise",
    "please": "flat hand circles on the chest",
}

GENERATOR_VERSION = 1
DEFAULT_NUM_FRAMES = NUM_FRAMES  # the course's defaults live in utils.config
DEFAULT_IMAGE_SIZE = SYNTHETIC_RENDER_SIZE
MIN_IMAGE_SIZE = 128
MIN_NUM_FRAMES = 8

# ----------------------------------------------------------------------------------------------- face mesh
# Contours of the MediaPipe Face Mesh (indices into its 468 points), used to draw and to anchor motions.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (70, 63, 105, 66, 107)
LEFT_BROW = (300, 293, 334, 296, 336)
FACE_RIGHT_CHEEK, FACE_LEFT_CHEEK, FACE_CHIN, FACE_NOSE_TIP = 234, 454, 152, 1

_FACE_TEMPLATE_FILE = "face_template_astronaut_v1.npy"
_face_template_memory: np.ndarray | None = None


def _normalise_face(points: np.ndarray) -> np.ndarray:
    """Face mesh points (468, 3) in pixels -> canonical frame: oval centre at 0, cheek-to-cheek = 1, level."""
    points = np.asarray(points, dtype=np.float64)
    centre = points[list(FACE_OVAL), :2].mean(axis=0)
    across = points[FACE_LEFT_CHEEK, :2] - points[FACE_RIGHT_CHEEK, :2]
    width, angle = float(np.hypot(*across)), float(np.arctan2(across[1], across[0]))
    cos, sin = np.cos(-angle), np.sin(-angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    out = np.empty_like(points)
    out[:, :2] = (points[:, :2] - centre) @ rotation.T / width
    out[:, 2] = (points[:, 2] - points[:, 2].mean()) / width
    return out


def _measure_face_template() -> np.ndarray:
    """Run MediaPipe Face Mesh once on scikit-image's astronaut photo and return the normalised 468 points."""
    try:
        import mediapipe as mp
        from skimage.data import astronaut

        image = astronaut()
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as face_mesh:
            result = face_mesh.process(image)
        landmarks = result.multi_face_landmarks[0].landmark
    except Exception as error:  # any failure here means: no template, and the message says what to do
        raise DatasetError(
            "could not measure the face template for the synthetic signer (MediaPipe Face Mesh on "
            f"skimage.data.astronaut() failed: {error!r}). Check that mediapipe and scikit-image are "
            "installed from requirements.txt, or copy a face_template .npy into "
            f"{paths.CACHE_DIR / _FACE_TEMPLATE_FILE}.") from error
    height, width = image.shape[:2]
    pixels = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks])
    if pixels.shape != (FACE_POINTS, 3):
        raise DatasetError(f"MediaPipe returned {pixels.shape[0]} face points, expected {FACE_POINTS}")
    return _normalise_face(pixels).astype(np.float32)


def face_template() -> np.ndarray:
    """The canonical MediaPipe face mesh (468, 3) in face-width units, measured once and cached on disk."""
    global _face_template_memory
    if _face_template_memory is None:
        cache_file = paths.CACHE_DIR / _FACE_TEMPLATE_FILE
        if cache_file.exists():
            template = np.load(cache_file)
        else:
            template = _measure_face_template()
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, template)
            os.replace(tmp, cache_file)
        if template.shape != (FACE_POINTS, 3):
            raise DatasetError(f"{cache_file} holds shape {template.shape}, expected ({FACE_POINTS}, 3): delete it")
        _face_template_memory = template
    return _face_template_memory


def _set_face_template(template: np.ndarray) -> None:
    """Hand a worker process the template measured by its parent (no MediaPipe import in workers)."""
    global _face_template_memory
    _face_template_memory = template


# ----------------------------------------------------------------------------------------------- signers
Colour = tuple[int, int, int]
_SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (161, 102, 70), (112, 72, 48))
_HAIR_COLOURS = ((30, 24, 20), (70, 45, 30), (120, 80, 40), (200, 170, 110), (150, 60, 30), (170, 170, 170))
BACKGROUND_KINDS = ("plain", "gradient", "texture")


@dataclass(frozen=True)
class Signer:
    """A persistent synthetic person: body proportions, framing, colours, handedness and personal style.

    Lengths are in shoulder widths. ``center_x``, ``center_y`` (the neck base) and ``scale`` (image
    fraction per shoulder width) say where the person sits in the picture.
    """

    id: str
    handedness: str  # "right" or "left": the hand that signs
    face_width: float = 0.38
    neck_length: float = 0.17
    upper_arm: float = 0.74
    forearm: float = 0.65
    hand_length: float = 0.52
    torso_length: float = 1.2
    hip_width: float = 0.8
    build: float = 1.0  # limb thickness factor
    center_x: float = 0.5
    center_y: float = 0.45
    scale: float = 0.38
    head_roll: float = 0.0  # degrees, personal head tilt
    skin: Colour = (224, 172, 130)
    shirt: Colour = (40, 80, 160)
    hair: Colour = (30, 24, 20)
    lips: Colour = (180, 90, 90)
    long_sleeves: bool = True
    background_kind: str = "plain"
    background_colours: tuple[Colour, Colour] = ((200, 200, 200), (160, 160, 160))
    speed: float = 0.7  # fraction of the clip the sign itself takes
    amplitude: float = 1.0
    location_bias: tuple[float, float] = (0.0, 0.0)  # where they touch, in face widths
    laxness: float = 0.1  # how relaxed "extended" fingers are (0..0.3)
    rest_style: str = "side"  # where the idle hand rests: "side" or "front"

    @property
    def dominant_side(self) -> int:
        """-1 if the signing hand is the person's right (image left), +1 if the left (image right)."""
        return -1 if self.handedness == "right" else 1


def _random_colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> Colour:
    """A random RGB colour from hue, saturation and value ranges."""
    import colorsys

    red, green, blue = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value))
    return int(red * 255), int(green * 255), int(blue * 255)


def _jitter_colour(colour: Colour, rng: np.random.Generator, amount: float) -> Colour:
    """A colour moved by up to ``amount`` per channel."""
    return tuple(int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in colour)  # type: ignore[return-value]


def _make_signer(signer_id: str, handedness: str, rng: np.random.Generator) -> Signer:
    """One random signer identity."""
    skin = _jitter_colour(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 12)
    return Signer(
        id=signer_id, handedness=handedness,
        face_width=rng.uniform(0.34, 0.42), neck_length=rng.uniform(0.12, 0.22),
        upper_arm=rng.uniform(0.68, 0.80), forearm=rng.uniform(0.60, 0.70), hand_length=rng.uniform(0.48, 0.56),
        torso_length=rng.uniform(1.1, 1.3), hip_width=rng.uniform(0.7, 0.9), build=rng.uniform(0.85, 1.2),
        center_x=rng.uniform(0.42, 0.58), center_y=rng.uniform(0.42, 0.5), scale=rng.uniform(0.33, 0.42),
        head_roll=rng.normal(0, 4),
        skin=skin, shirt=_random_colour(rng, (0.3, 0.9), (0.25, 0.9)),
        hair=_jitter_colour(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng, 15),
        lips=_jitter_colour((int(skin[0] * 0.8), int(skin[1] * 0.5), int(skin[2] * 0.5)), rng, 10),
        long_sleeves=bool(rng.uniform() < 0.6),
        background_kind=BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))],
        background_colours=(_random_colour(rng, (0.0, 0.5), (0.3, 0.95)), _random_colour(rng, (0.0, 0.5), (0.3, 0.95))),
        speed=rng.uniform(0.55, 0.85), amplitude=rng.uniform(0.8, 1.2),
        location_bias=(float(rng.normal(0, 0.06)), float(rng.normal(0, 0.12))),
        laxness=rng.uniform(0.0, 0.3), rest_style=("side", "front")[rng.integers(2)],
    )


def make_signers(num_signers: int, rng: np.random.Generator) -> list[Signer]:
    """``num_signers`` distinct signers ``s01``, ``s02``, ...; about a quarter (at least one of two+) left-handed."""
    if num_signers < 1:
        raise DatasetError(f"num_signers must be at least 1, got {num_signers}")
    width = max(2, len(str(num_signers)))
    num_left = 0 if num_signers < 2 else max(1, round(0.25 * num_signers))
    left = set(rng.choice(num_signers, size=num_left, replace=False).tolist()) if num_left else set()
    return [_make_signer(f"s{i + 1:0{width}d}", "left" if i in left else "right", rng) for i in range(num_signers)]


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
# body's midline), y down, z away from the camera; palm facing the camera, fingers up, thumb toward the midline.
_FINGER_BASES = np.array([[-0.11, -0.45], [-0.02, -0.47], [0.07, -0.44], [0.15, -0.39]])  # index..pinky MCP
_FINGER_LENGTHS = np.array([[0.21, 0.13, 0.10], [0.24, 0.15, 0.11], [0.22, 0.14, 0.10], [0.17, 0.10, 0.09]])
_FINGER_SPREAD = np.array([-0.22, -0.06, 0.10, 0.28])  # radians at full spread, + = outward
_FINGER_JOINT_BEND = np.array([1.35, 1.75, 1.2])  # radians per joint at curl 1
_THUMB_BASE = np.array([-0.09, -0.09])
_THUMB_LENGTHS = np.array([0.17, 0.14, 0.12])
_THUMB_JOINT_BEND = np.array([0.4, 0.9, 0.9])
_THUMB_BEND_TOWARD = np.array([0.75, 0.2, -0.63]) / np.linalg.norm([0.75, 0.2, -0.63])
_HAND_SIZE_REFERENCE = 0.47  # wrist -> middle-finger MCP, in hand lengths


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


def _rotation_matrices(roll: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in radians."""
    count = len(roll)
    cr, sr, cy, sy, cp, sp = np.cos(roll), np.sin(roll), np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    one, zero = np.ones(count), np.zeros(count)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], 1)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], 1)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], 1)
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
    thumb = _chain(thumb_start, thumb_direction, _THUMB_BEND_TOWARD, _THUMB_LENGTHS, curls[:, :1] * _THUMB_JOINT_BEND)
    points[:, 2:5] = np.stack(thumb, 1)
    for finger in range(4):
        angle = -0.03 + spread * _FINGER_SPREAD[finger]
        direction = np.stack([np.sin(angle), -np.cos(angle), np.zeros(count)], -1)
        base = np.tile(np.append(_FINGER_BASES[finger], 0.0), (count, 1))
        first = 5 + 4 * finger
        points[:, first] = base
        joints = _chain(base, direction, toward_palm, _FINGER_LENGTHS[finger], curls[:, finger + 1:finger + 2] * _FINGER_JOINT_BEND)
        points[:, first + 1:first + 4] = np.stack(joints, 1)
    return np.einsum("tij,tpj->tpi", _rotation_matrices(roll, yaw, pitch), points)


# ----------------------------------------------------------------------------------------------- motions
@dataclass
class HandTrack:
    """Where one hand is over time, in its own-side body frame (x outward, y down, shoulder widths).

    ``target`` (T, 2) is where hand landmark ``contact`` should be; angles in degrees; ``shape`` (T, 7);
    ``depth`` (T,) the wrist's distance in front of the body (negative = toward the camera).
    """

    target: np.ndarray
    contact: int
    roll: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    shape: np.ndarray
    depth: np.ndarray


def _track(count: int, target: np.ndarray, contact: int, roll, yaw, pitch, shape, depth) -> HandTrack:
    """A HandTrack with scalars broadcast to ``count`` frames."""
    full = lambda value: np.broadcast_to(np.asarray(value, dtype=np.float64), (count,)).copy()  # noqa: E731
    shape = np.broadcast_to(np.asarray(shape, dtype=np.float64), (count, 7)).copy()
    return HandTrack(np.asarray(target, dtype=np.float64), contact, full(roll), full(yaw), full(pitch), shape, full(depth))


def _ease(u: np.ndarray) -> np.ndarray:
    """Smoothstep 0..1."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _taps(u: np.ndarray, count: int) -> np.ndarray:
    """0 at each of ``count`` touches, 1 between them (0..1 for u in 0..1)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * count * u + np.pi)


Tracks = tuple[HandTrack, "HandTrack | None"]  # the signing hand, and the other hand for two-handed signs


def _hello(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Flat hand from the temple outward (a salute)."""
    e = _ease(u)
    target = at["temple"] + [0.02, 0.0] + np.outer(e, a * np.array([0.42 + 0.05 * v[0], 0.06 + 0.05 * v[1]]))
    return _track(len(u), target, 8, -40 + 45 * e, 45 - 25 * e, 5 * v[2], HANDSHAPES["flat"], -0.2 - 0.15 * e), None


def _thanks(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Flat hand, fingertips at the chin, moving forward and down."""
    e = _ease(u)
    target = at["mouth"] + [0.01, 0.03] + np.outer(e, a * np.array([0.10 + 0.05 * v[0], 0.42 + 0.05 * v[1]]))
    return _track(len(u), target, 12, -15 + 15 * e, 150 - 30 * e, 55 * e + 5 * v[2], HANDSHAPES["flat"],
                  -0.12 - 0.35 * e), None


def _iloveyou(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """ILY handshape held up beside the face with a small shake."""
    shake = np.sin(2 * np.pi * 2.5 * u + v[3])
    target = at["shoulder"] + [-0.12 + 0.04 * v[0], -0.35 + 0.05 * v[1]] + np.outer(shake, [0.035 * a, 0.0])
    return _track(len(u), target, 0, 5 + 8 * a * shake + 4 * v[2], 10, 0, HANDSHAPES["ily"], -0.35), None


def _me(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Index finger taps the chest twice."""
    pull = a * 0.09 * _taps(u, 2)
    target = at["chest"] + [0.06 + 0.03 * v[0], -0.04 + 0.03 * v[1]] + np.outer(pull, [0.7, -0.3])
    return _track(len(u), target, 8, 215 + 8 * v[2], 0, -45, HANDSHAPES["index"], -0.2 - pull), None


def _thumb_taps(place: np.ndarray, u: np.ndarray, a: float, v: np.ndarray) -> Tracks:
    """Open 5-hand whose thumb tip taps ``place`` twice (father at the forehead, mother at the chin)."""
    tap = a * 0.07 * _taps(u, 2)
    target = place + np.outer(tap, [0.8, -0.4])
    return _track(len(u), target, 4, 12 + 6 * v[2], 45 + 10 * v[3], 0, HANDSHAPES["open"], -0.25 - tap), None


def _father(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Thumb of the open hand taps the forehead."""
    return _thumb_taps(at["forehead"], u, a, v)


def _mother(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Thumb of the open hand taps the chin."""
    return _thumb_taps(at["chin"], u, a, v)


def _yes(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Fist at the shoulder nodding at the wrist three times."""
    nod = _taps(u, 3)
    target = at["shoulder"] + [-0.2 + 0.04 * v[0], -0.1 + 0.04 * v[1]] + np.outer(nod, [0.0, 0.04 * a])
    return _track(len(u), target, 0, 5 * v[2], 20, 10 + 50 * a * nod, HANDSHAPES["fist"], -0.35), None


def _no(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Index and middle finger close onto the thumb twice."""
    close = _taps(u, 2)[:, None]
    shape = (1 - close) * HANDSHAPES["no_open"] + close * HANDSHAPES["no_closed"]
    target = at["shoulder"] + [-0.2 + 0.04 * v[0], -0.14 + 0.04 * v[1]] + np.outer(close[:, 0], [0.0, 0.02])
    return _track(len(u), target, 0, 10 + 5 * v[2], 40, 0, shape, -0.35), None


def _help(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Thumb-up fist resting on the other, palm-up flat hand; both rise."""
    rise = _ease(u)[:, None] * a * (0.3 + 0.05 * v[0])
    base = at["belly"] + [0.0, 0.02 * v[1]] - rise * np.array([0.0, 1.0])
    dominant = _track(len(u), base + [0.02, -0.13], 0, 0, 90, 0, HANDSHAPES["thumb_up"], -0.35)
    # the other hand's frame is mirrored: its x points to its own side, i.e. the negated midline offset
    other = _track(len(u), (base + [0.0, 0.01]) * [-1, 1], 9, 0, -90, -75, HANDSHAPES["flat"], -0.3)
    return dominant, other


def _please(u: np.ndarray, at: dict[str, np.ndarray], a: float, v: np.ndarray) -> Tracks:
    """Flat hand circling on the chest."""
    angle = 2 * np.pi * (1.5 + 0.2 * v[0]) * u + v[3]
    target = at["chest"] + [0.14, 0.0] + a * 0.1 * np.stack([np.cos(angle), -np.sin(angle)], -1)
    return _track(len(u), target, 9, -55 + 8 * v[2], 165, 0, HANDSHAPES["flat"], -0.12), None


# Each motion gets: core phases u (T,), body anchors in the signing hand's own-side frame, the clip's
# amplitude, and 4 small per-clip numbers that bend angles and offsets.
MOTIONS = {"hello": _hello, "thanks": _thanks, "iloveyou": _iloveyou, "me": _me, "father": _father,
           "mother": _mother, "yes": _yes, "no": _no, "help": _help, "please": _please}


def _rest_track(count: int, signer: Signer, shoulder: np.ndarray) -> HandTrack:
    """An idle hand hanging at the side or resting in front of the belly (own-side frame)."""
    if signer.rest_style == "side":
        wrist = shoulder + [0.05, 1.15]
        return _track(count, np.tile(wrist, (count, 1)), 0, 175, 80, 0, HANDSHAPES["rest"], -0.05)
    wrist = shoulder + [-0.3, 1.0]
    return _track(count, np.tile(wrist, (count, 1)), 0, 120, 40, 20, HANDSHAPES["rest"], -0.3)


# ----------------------------------------------------------------------------------------------- skeleton
@dataclass
class _ClipSetup:
    """Per-clip random choices, drawn in a fixed order so that handedness never changes the draws."""

    offset: np.ndarray
    scale: float
    rotation: float
    lead_in: float
    core: float
    start_phase: float
    warp: float
    amplitude: float
    variation: np.ndarray
    location: np.ndarray
    laxness: np.ndarray
    head_sway: np.ndarray
    body_sway: np.ndarray


def _draw_setup(signer: Signer, rng: np.random.Generator, difficulty: float) -> _ClipSetup:
    """The per-clip nuisance variation, scaled by ``difficulty``."""
    d = float(difficulty)
    lead_in = float(np.clip(0.12 + rng.uniform(-0.1, 0.1) * d, 0.0, 0.3))
    core = float(np.clip(signer.speed * np.exp(rng.normal(0, 0.1 * d)), 0.45, 0.95))
    start_phase = float(rng.uniform(0, 0.2) * d) if rng.uniform() < 0.25 * d else 0.0
    return _ClipSetup(
        offset=rng.normal(0, 0.025 * d, 2), scale=float(np.exp(rng.normal(0, 0.06 * d))),
        rotation=float(np.clip(rng.normal(0, 4.0 * d), -12, 12)), lead_in=lead_in, core=min(core, 1.0 - 0.5 * lead_in),
        start_phase=start_phase, warp=float(np.clip(rng.normal(0, 0.3 * d), -0.8, 0.8)),
        amplitude=float(signer.amplitude * np.exp(rng.normal(0, 0.1 * d))),
        variation=rng.normal(0, 1.0, 4) * min(d, 1.5), location=rng.normal(0, [0.1 * d, 0.22 * d]),
        laxness=np.clip(signer.laxness + rng.normal(0, 0.05 * d, 5), 0, 0.4),
        head_sway=rng.normal(0, 1.0, 4) * d, body_sway=rng.normal(0, 1.0, 3) * d,
    )


def _phases(num_frames: int, setup: _ClipSetup) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the sign's core phase u (0..1) and how far the hand has come from rest (0..1)."""
    t = np.linspace(0.0, 1.0, num_frames)
    core_start = setup.lead_in
    s = np.clip((t - core_start) / setup.core, 0.0, 1.0)
    s = setup.start_phase + (1.0 - setup.start_phase) * s
    u = s + setup.warp * np.sin(2 * np.pi * s) / (2 * np.pi)
    if setup.start_phase > 0:  # the recording starts late: the hand is already up
        arrive = np.ones(num_frames)
    else:
        arrive = _ease(t / max(core_start, 1e-6)) if core_start > 0 else np.ones(num_frames)
    return np.clip(u, 0.0, 1.0), arrive


def _head_points(signer: Signer, setup: _ClipSetup, num_frames: int) -> np.ndarray:
    """Face mesh (T, 468, 3) in the body frame: the template turned, scaled and placed on the neck."""
    t = np.linspace(0.0, 1.0, num_frames)
    sway = setup.head_sway
    roll = np.radians(signer.head_roll + 2.0 * sway[0] * np.sin(2 * np.pi * t + sway[1]))
    yaw = np.radians(4.0 * sway[2] * np.sin(np.pi * t + sway[3]))
    pitch = np.radians(3.0 * sway[1] * np.sin(np.pi * t))
    rotation = _rotation_matrices(roll, yaw, pitch)
    template = face_template().astype(np.float64)
    chin_drop = float(template[FACE_CHIN, 1])
    centre = np.array([0.0, -signer.neck_length - chin_drop * signer.face_width, -0.15])
    return centre + signer.face_width * np.einsum("tij,pj->tpi", rotation, template)


def _anchors(face: np.ndarray, side: int, signer: Signer, setup: _ClipSetup) -> dict[str, np.ndarray]:
    """Body landmarks a motion refers to, per frame (T, 2), in the own-side frame of the hand on ``side``."""
    mirror = np.array([side, 1.0])
    bias = (np.array(signer.location_bias) + setup.location) * signer.face_width
    temple_index = FACE_RIGHT_CHEEK if side < 0 else FACE_LEFT_CHEEK
    brow = (np.array(RIGHT_BROW if side < 0 else LEFT_BROW))
    points = {
        "forehead": 0.5 * (face[:, 151, :2] + face[:, 9, :2]),
        "temple": 0.5 * (face[:, temple_index, :2] + face[:, brow[:3], :2].mean(axis=1)) - [0, 0.1 * signer.face_width],
        "mouth": face[:, 13, :2],
        "chin": 0.5 * (face[:, 17, :2] + face[:, FACE_CHIN, :2]),
    }
    anchors = {name: value * mirror + bias for name, value in points.items()}
    count = len(face)
    anchors["shoulder"] = np.tile([0.5, 0.0], (count, 1))
    anchors["chest"] = np.tile([0.0, 0.38], (count, 1)) + bias
    anchors["belly"] = np.tile([0.0, 0.75], (count, 1))
    return anchors


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """Elbow positions (T, 3) joining shoulder and wrist (T, 3), bent down, outward and back (own-side frame)."""
    delta = wrist - shoulder
    length = np.linalg.norm(delta, axis=1)
    distance = np.clip(length, abs(upper - lower) + 1e-3, upper + lower - 1e-3)
    unit = delta / np.maximum(length, 1e-9)[:, None]
    along = (upper**2 - lower**2 + distance**2) / (2 * distance)
    across = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    raised = np.clip((0.6 - delta[:, 1]) / 0.8, 0.0, 1.0)[:, None]  # 0: hand low, 1: hand at the face
    # a low arm bends backward (hangs straight in the picture); a raised one points its elbow out and forward
    preferred = (1 - raised) * np.array([0.35, 1.0, 0.7]) + raised * np.array([1.0, 1.0, -0.3])
    normal = preferred - np.sum(unit * preferred, axis=1, keepdims=True) * unit
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return shoulder + along[:, None] * unit + across[:, None] * normal


def _blend(rest: HandTrack, sign: HandTrack, weight: np.ndarray, signer: Signer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wrist (T, 2), depth (T,) and landmarks (T, 21, 3) of a hand moving from rest (weight 0) to the sign (1)."""
    lengths = signer.hand_length

    def placed(track: HandTrack) -> tuple[np.ndarray, np.ndarray]:
        """Wrist positions that put the track's contact landmark on its target, and the hand landmarks."""
        local = hand_landmarks(track.shape, *np.radians([track.roll, track.yaw, track.pitch])) * lengths
        return track.target - local[:, track.contact, :2], local

    rest_wrist, _ = placed(rest)
    sign_wrist, _ = placed(sign)
    w = weight[:, None]
    mix = lambda a, b: (1 - weight) * a + weight * b  # noqa: E731
    shape = (1 - w) * rest.shape + w * sign.shape
    local = hand_landmarks(shape, *np.radians([mix(rest.roll, sign.roll), mix(rest.yaw, sign.yaw),
                                               mix(rest.pitch, sign.pitch)])) * lengths
    return (1 - w) * rest_wrist + w * sign_wrist, mix(rest.depth, sign.depth), local


def _relax(shape: np.ndarray, laxness: np.ndarray) -> np.ndarray:
    """Bend straight fingers a little (a signer's laxness) without opening bent ones."""
    shape = shape.copy()
    shape[:, :5] = np.clip(shape[:, :5] + laxness * (1 - shape[:, :5]), 0, 1)
    return shape


def _arm_and_hand(track: HandTrack | None, side: int, signer: Signer, weight: np.ndarray,
                  setup: _ClipSetup) -> dict[str, np.ndarray]:
    """Shoulder, elbow, wrist (T, 3) and hand (T, 21, 3) in the body frame for the hand on ``side``."""
    count = len(weight)
    shoulder = np.array([0.5, 0.0])
    rest = _rest_track(count, signer, shoulder)
    sign = track if track is not None else rest
    sign.shape = _relax(sign.shape, setup.laxness)
    wrist, depth, local = _blend(rest, sign, weight if track is not None else np.zeros(count), signer)
    mirror = np.array([side, 1.0, 1.0])
    with_depth = lambda xy, z: np.concatenate([xy, np.asarray(z).reshape(count, 1)], axis=1)  # noqa: E731
    shoulder_3d, wrist_3d = with_depth(np.tile(shoulder, (count, 1)), np.zeros(count)), with_depth(wrist, depth)
    elbow = _elbow(shoulder_3d, wrist_3d, signer.upper_arm, signer.forearm)
    return {"shoulder": shoulder_3d * mirror, "elbow": elbow * mirror, "wrist": wrist_3d * mirror,
            "hand": (np.concatenate([wrist[:, None, :], depth.reshape(count, 1, 1)], axis=2) + local) * mirror}


_POSE_PAIRS_FROM_FACE = {0: (1,), 1: (362,), 2: (362, 263), 3: (263,), 4: (133,), 5: (133, 33), 6: (33,),
                         7: (454,), 8: (234,), 9: (291,), 10: (61,)}


def _pose_landmarks(face: np.ndarray, left: dict[str, np.ndarray], right: dict[str, np.ndarray],
                    signer: Signer) -> np.ndarray:
    """33 MediaPipe pose landmarks (T, 33, 3) in the body frame, visibility added later."""
    count = len(face)
    pose = np.zeros((count, POSE_POINTS, 3))
    for index, sources in _POSE_PAIRS_FROM_FACE.items():
        pose[:, index] = face[:, list(sources)].mean(axis=1)
    pose[:, 7, 0] += 0.05 * signer.face_width
    pose[:, 8, 0] -= 0.05 * signer.face_width
    for side_index, arm in ((0, left), (1, right)):  # MediaPipe: odd = left, even = right
        pose[:, 11 + side_index] = arm["shoulder"]
        pose[:, 13 + side_index] = arm["elbow"]
        pose[:, 15 + side_index] = arm["wrist"]
        pose[:, 17 + side_index] = arm["hand"][:, 17]
        pose[:, 19 + side_index] = arm["hand"][:, 6]
        pose[:, 21 + side_index] = arm["hand"][:, 3]
    hip_y, thigh, shin = signer.torso_length, 0.95, 0.9
    for side_index, x in ((0, signer.hip_width / 2), (1, -signer.hip_width / 2)):
        pose[:, 23 + side_index] = [x, hip_y, 0.0]
        pose[:, 25 + side_index] = [x * 0.95, hip_y + thigh, -0.05]
        pose[:, 27 + side_index] = [x * 0.9, hip_y + thigh + shin, 0.05]
        pose[:, 29 + side_index] = [x * 0.9, hip_y + thigh + shin + 0.06, 0.1]
        pose[:, 31 + side_index] = [x * 0.95, hip_y + thigh + shin + 0.08, -0.12]
    return pose


def _to_image(points: np.ndarray, signer: Signer, setup: _ClipSetup, sway: np.ndarray) -> np.ndarray:
    """Body-frame points (T, N, 3) -> normalised image coordinates (x, y in 0..1, z in the same scale)."""
    angle = np.radians(setup.rotation)
    cos, sin = np.cos(angle), np.sin(angle)
    scale = signer.scale * setup.scale
    centre = np.array([signer.center_x, signer.center_y]) + setup.offset
    xy = points[..., :2] @ np.array([[cos, sin], [-sin, cos]]) * scale + centre + sway[:, None, :]
    return np.concatenate([xy, points[..., 2:3] * scale], axis=-1)


def _visibility(pose_xy: np.ndarray) -> np.ndarray:
    """MediaPipe-like visibility: near 1 inside the picture, falling off outside it."""
    outside = np.maximum(np.maximum(-pose_xy, pose_xy - 1.0), 0.0).max(axis=-1)
    return 0.995 * np.exp(-outside / 0.04)


def simulate_keypoints(sign: str, signer: Signer, rng: np.random.Generator, difficulty: float = 1.0,
                       num_frames: int = DEFAULT_NUM_FRAMES) -> np.ndarray:
    """Exact (noise-free) 1662 keypoints (T, 1662) float32 of ``signer`` performing ``sign``."""
    if sign not in SIGNS:
        raise DatasetError(f"unknown sign {sign!r}: choose one of {', '.join(SIGNS)}")
    setup = _draw_setup(signer, rng, difficulty)
    u, arrive = _phases(num_frames, setup)
    face = _head_points(signer, setup, num_frames)
    dominant = signer.dominant_side
    anchors = _anchors(face, dominant, signer, setup)
    dominant_track, other_track = MOTIONS[sign](u, anchors, setup.amplitude, setup.variation)
    arms = {dominant: _arm_and_hand(dominant_track, dominant, signer, arrive, setup),
            -dominant: _arm_and_hand(other_track, -dominant, signer, arrive, setup)}
    left, right = arms[1], arms[-1]  # the person's left is on the image's right (+x)
    pose = _pose_landmarks(face, left, right, signer)
    t = np.linspace(0, 1, num_frames)
    sway_amount = 0.004 * setup.body_sway
    sway = np.stack([sway_amount[0] * np.sin(2 * np.pi * t + sway_amount[2] * 100),
                     sway_amount[1] * np.sin(np.pi * t)], -1)
    face_img = _to_image(face, signer, setup, sway)
    face_img[..., 2] -= face_img[..., 2].mean(axis=1, keepdims=True)
    pose_img = _to_image(pose, signer, setup, sway)
    hands = [_to_image(arm["hand"], signer, setup, sway) for arm in (left, right)]
    for hand in hands:
        hand[..., 2] -= hand[:, :1, 2]  # MediaPipe hand z is relative to the wrist
    pose_full = np.concatenate([pose_img, _visibility(pose_img[..., :2])[..., None]], axis=-1)
    return join_parts(face_img, pose_full, hands[0], hands[1])


# ----------------------------------------------------------------------------------------------- detector
def simulate_detection(keypoints: np.ndarray, rng: np.random.Generator,
                       difficulty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """What a Holistic detector would report: jittered keypoints, parts it missed zeroed, and ``detected`` (T, 4).

    A hand is missed when a third of it is outside the picture, and now and then at random (runs of 1-4
    frames, more often at higher ``difficulty``); the face rarely; the pose never.
    """
    d = float(difficulty)
    parts = split_parts(np.array(keypoints, dtype=np.float64))  # a copy: the caller's array stays as it was
    count = len(keypoints)
    jitter = {"face": (0.0015, 0.0004), "pose": (0.002, 0.0015), "left_hand": (0.003, 0.0015),
              "right_hand": (0.003, 0.0015)}
    detected = np.ones((count, 4), dtype=bool)
    for column, (part, (shared, own)) in enumerate(jitter.items()):
        values = parts[part]
        values[..., :3] += d * (rng.normal(0, shared, (count, 1, 3)) + rng.normal(0, own, values[..., :3].shape))
        if part == "pose":
            values[..., 3] = np.clip(values[..., 3] - np.abs(rng.normal(0, 0.02 * d, values[..., 3].shape)), 0, 1)
            continue
        outside = ((values[..., :2] < 0) | (values[..., :2] > 1)).any(axis=-1).mean(axis=-1)
        rate = (0.002 if part == "face" else 0.03) * d
        detected[:, column] = (outside < 0.34) & ~_dropouts(count, rate, rng)
        values[~detected[:, column]] = 0.0
    return join_parts(parts["face"], parts["pose"], parts["left_hand"], parts["right_hand"]), detected


def _dropouts(count: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Frames (bool, T) lost in runs of 1-4 that start with probability ``rate`` per frame."""
    lost = np.zeros(count, dtype=bool)
    starts = np.flatnonzero(rng.uniform(size=count) < rate)
    lengths = rng.integers(1, 5, size=len(starts))
    for start, length in zip(starts, lengths):
        lost[start:start + length] = True
    return lost


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

    first, second = (np.array(_jitter_colour(c, rng, 10 + 10 * difficulty), dtype=np.float32)
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

    def ellipse(c: np.ndarray, axes: tuple[float, float], colour: Colour, start: float = 0, end: float = 360) -> None:
        """A filled ellipse tilted like the face."""
        cv2.ellipse(canvas, tuple(int(v) for v in np.round(c * scale)), tuple(int(round(a * scale)) for a in axes),
                    angle, start, end, colour, -1, cv2.LINE_AA, _SHIFT)

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
        cv2.polylines(canvas, [pts[list(brow)]], False, _darker(signer.hair, 0.8), thickness, cv2.LINE_AA, _SHIFT)
    cv2.line(canvas, tuple(pts[6]), tuple(pts[4]), _darker(signer.skin, 0.75), thickness, cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(canvas, [pts[list(LIPS_OUTER)]], signer.lips, cv2.LINE_AA, _SHIFT)


def _draw_body(canvas: np.ndarray, pose: np.ndarray, face: np.ndarray | None, signer: Signer, size: int) -> float:
    """Torso and neck (up to the face mesh's chin, or the nose without a face); returns the shoulder width in pixels."""
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
    cv2.line(canvas, tuple(neck_base), tuple(neck_top), _darker(signer.skin, 0.9), neck_thickness, cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(canvas, [np.array([pts[11] + outward, pts[12] - outward,
                                    neck_base + (neck_top - neck_base) // 5])], signer.shirt, cv2.LINE_AA, _SHIFT)
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
    length_px = float(np.linalg.norm(hand[9] - hand[0]) * size) / _HAND_SIZE_REFERENCE
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
    """One generated clip: frames (T, S, S, 3) uint8 RGB, keypoints (T, 1662) float32, detected (T, 4) bool."""

    frames: np.ndarray
    keypoints: np.ndarray
    detected: np.ndarray
    sign: str
    signer: str


def generate_clip(sign: str, signer: Signer, rng: np.random.Generator, difficulty: float = 1.0,
                  num_frames: int = DEFAULT_NUM_FRAMES, image_size: int = DEFAULT_IMAGE_SIZE) -> SyntheticClip:
    """``signer`` performing ``sign``: rendered frames plus the keypoints a detector would report."""
    _check_sizes(num_frames, image_size, difficulty)
    exact = simulate_keypoints(sign, signer, rng, difficulty, num_frames)
    frames = render_keypoints(exact, signer, image_size, rng, difficulty)
    keypoints, detected = simulate_detection(exact, rng, difficulty)
    return SyntheticClip(frames=frames, keypoints=keypoints.astype(np.float32), detected=detected,
                         sign=sign, signer=signer.id)


def _check_sizes(num_frames: int, image_size: int, difficulty: float) -> None:
    """Raise DatasetError for sizes the generator does not support."""
    if num_frames < MIN_NUM_FRAMES:
        raise DatasetError(f"num_frames={num_frames} is too short: use at least {MIN_NUM_FRAMES}")
    if image_size < MIN_IMAGE_SIZE:
        raise DatasetError(f"image_size={image_size} is too small to draw fingers: use at least {MIN_IMAGE_SIZE} "
                           "(features are resized later, e.g. to 64)")
    if not 0.0 <= difficulty <= 3.0:
        raise DatasetError(f"difficulty={difficulty} is out of range: use 0 (clean) .. 1 (default) .. 2 (hard)")


def contact_sheet(clips: list[SyntheticClip], frames_per_clip: int = 6) -> np.ndarray:
    """One RGB image: a row per clip with ``frames_per_clip`` evenly spaced frames, for a quick look."""
    rows = []
    for clip in clips:
        picks = np.linspace(0, len(clip.frames) - 1, frames_per_clip).round().astype(int)
        rows.append(np.concatenate([np.pad(clip.frames[i], ((1, 1), (1, 1), (0, 0))) for i in picks], axis=1))
    return np.concatenate(rows, axis=0)


# ----------------------------------------------------------------------------------------------- dataset
_PARAMS_FILE = ".synthetic_params.json"


def _dataset_params(clips_per_class: int, num_signers: int, difficulty: float, seed: int, num_frames: int,
                    image_size: int) -> dict:
    """The parameters that define a synthetic dataset folder."""
    return {"kind": "synthetic", "signs": list(SIGNS), "seed": int(seed), "difficulty": float(difficulty),
            "clips_per_class": int(clips_per_class), "num_signers": int(num_signers), "num_frames": int(num_frames),
            "image_size": int(image_size), "generator_version": GENERATOR_VERSION}


def _check_folder(out_dir: Path, params: dict) -> bool:
    """True if ``out_dir`` already holds exactly this dataset; raise DatasetError if it holds another one."""
    for name in ("dataset.json", _PARAMS_FILE):
        path = out_dir / name
        if path.exists():
            try:
                found = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise DatasetError(f"{path} is unreadable ({error}): delete {out_dir} or pick another --out") from error
            if found != params:
                changed = sorted(k for k in set(found) | set(params) if found.get(k) != params.get(k))
                raise DatasetError(
                    f"{out_dir} already holds a synthetic dataset made with other parameters "
                    f"({', '.join(f'{k}: {found.get(k)!r} there, {params.get(k)!r} now' for k in changed)}). "
                    "Pick another --out folder or delete that one.")
            return name == "dataset.json"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} is not empty and is not a synthetic dataset folder: pick another --out")
    return False


def _write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _clip_paths(out_dir: Path, sign: str, signer_id: str, clip_index: int) -> tuple[Path, Path]:
    """Video and keypoint file of one clip."""
    stem = f"{signer_id}_{clip_index:03d}"
    return out_dir / sign / f"{stem}.mp4", out_dir / sign / f"{stem}.keypoints.npz"


def _clip_rng(seed: int, sign_index: int, clip_index: int) -> np.random.Generator:
    """The random generator of one clip, independent of workers and order."""
    return np.random.default_rng([seed, sign_index, clip_index])


def _signers_for(seed: int, num_signers: int) -> list[Signer]:
    """The dataset's signers, derived from the seed alone."""
    return make_signers(num_signers, np.random.default_rng([seed, 7_777_777]))


def _write_clip(out_dir: Path, sign_index: int, clip_index: int, signer: Signer, params: dict) -> None:
    """Generate one clip and write its .mp4 and .keypoints.npz (each atomically)."""
    from utils.data.video import write_video

    sign = SIGNS[sign_index]
    video_path, keypoint_path = _clip_paths(out_dir, sign, signer.id, clip_index)
    clip = generate_clip(sign, signer, _clip_rng(params["seed"], sign_index, clip_index), params["difficulty"],
                         params["num_frames"], params["image_size"])
    keypoint_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = keypoint_path.with_name(f".{keypoint_path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, keypoints=clip.keypoints, detected=clip.detected)
    os.replace(tmp, keypoint_path)
    write_video(video_path, clip.frames, fps=30.0)


def _write_clip_in_worker(args: tuple) -> None:
    """Process-pool entry point for :func:`_write_clip`."""
    _write_clip(*args)


def _write_manifest(out_dir: Path, rows: list[tuple[str, str, str]]) -> None:
    """manifest.csv with columns path (relative, posix), label, signer."""
    tmp = out_dir / ".manifest.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "signer"])
        writer.writerows(rows)
    os.replace(tmp, out_dir / "manifest.csv")


def make_dataset(out_dir: str | Path | None = None, clips_per_class: int = 40, num_signers: int = 10,
                 difficulty: float = 1.0, seed: int = 0, num_frames: int = DEFAULT_NUM_FRAMES,
                 image_size: int = DEFAULT_IMAGE_SIZE, workers: int | None = None) -> Path:
    """Write the synthetic dataset (videos, keypoints, manifest.csv, dataset.json) and return its folder.

    Clips go round-robin over the signers, so every signer performs every sign. Deterministic for a seed
    whatever ``workers`` is; a complete folder returns at once, an interrupted one resumes.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir) if out_dir is not None else paths.SYNTHETIC_DIR
    if clips_per_class < 1:
        raise DatasetError(f"clips_per_class must be at least 1, got {clips_per_class}")
    _check_sizes(num_frames, image_size, difficulty)
    params = _dataset_params(clips_per_class, num_signers, difficulty, seed, num_frames, image_size)
    if _check_folder(out_dir, params):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / _PARAMS_FILE, params)
    signers = _signers_for(seed, num_signers)
    jobs, rows = [], []
    for sign_index, sign in enumerate(SIGNS):
        for clip_index in range(clips_per_class):
            signer = signers[clip_index % num_signers]
            video_path, keypoint_path = _clip_paths(out_dir, sign, signer.id, clip_index)
            rows.append((video_path.relative_to(out_dir).as_posix(), sign, signer.id))
            if not (video_path.exists() and keypoint_path.exists()):
                jobs.append((out_dir, sign_index, clip_index, signer, params))
    template = face_template()
    workers = min(workers or os.cpu_count() or 1, max(1, len(jobs)))
    progress = tqdm(total=len(jobs), desc="synthetic clips", unit="clip", disable=not jobs)
    if workers <= 1:
        for job in jobs:
            _write_clip(*job)
            progress.update()
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_set_face_template,
                                 initargs=(template,)) as pool:
            for future in as_completed([pool.submit(_write_clip_in_worker, job) for job in jobs]):
                future.result()
                progress.update()
    progress.close()
    _write_manifest(out_dir, rows)
    _write_json(out_dir / "dataset.json", params)  # last: its presence means "complete"
    return out_dir
