"""Skeleton motion: the ten signs as hand tracks, the arms and body that follow them, and the detector.

:func:`simulate_keypoints` moves a :class:`~utils.data.synthetic.signers.Signer` through one sign and returns
the exact 1662 MediaPipe Holistic keypoints per frame; :func:`simulate_detection` adds what a real detector
does (jitter, missed hands).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.config import NUM_FRAMES
from utils.data.keypoints import POSE_POINTS, join_parts, split_parts
from utils.data.synthetic.hands import HANDSHAPES, hand_landmarks, rotation_matrices
from utils.data.synthetic.signers import (
    FACE_CHIN,
    FACE_LEFT_CHEEK,
    FACE_RIGHT_CHEEK,
    LEFT_BROW,
    RIGHT_BROW,
    Signer,
    face_template,
)
from utils.errors import DatasetError

SIGNS: tuple[str, ...] = ("hello", "thanks", "iloveyou", "me", "father", "mother", "yes", "no", "help",
                          "please")

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

DEFAULT_NUM_FRAMES = NUM_FRAMES  # the course's defaults live in utils.config


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
    return HandTrack(np.asarray(target, dtype=np.float64), contact, full(roll), full(yaw), full(pitch), shape,
                     full(depth))


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
    return _track(len(u), target, 8, -40 + 45 * e, 45 - 25 * e, 5 * v[2], HANDSHAPES["flat"],
                  -0.2 - 0.15 * e), None


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
        rotation=float(np.clip(rng.normal(0, 4.0 * d), -12, 12)), lead_in=lead_in,
        core=min(core, 1.0 - 0.5 * lead_in), start_phase=start_phase,
        warp=float(np.clip(rng.normal(0, 0.3 * d), -0.8, 0.8)),
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
    rotation = rotation_matrices(roll, yaw, pitch)
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
        "temple": 0.5 * (face[:, temple_index, :2] + face[:, brow[:3], :2].mean(axis=1))
        - [0, 0.1 * signer.face_width],
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
    """Elbow positions (T, 3) joining shoulder and wrist (T, 3), bent down, outward and back (own-side
    frame)."""
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


def _blend(rest: HandTrack, sign: HandTrack, weight: np.ndarray,
           signer: Signer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wrist (T, 2), depth (T,) and landmarks (T, 21, 3) of a hand moving from rest (weight 0) to the sign
    (1)."""
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
    shoulder_3d, wrist_3d = with_depth(np.tile(shoulder, (count, 1)),
                                       np.zeros(count)), with_depth(wrist, depth)
    elbow = _elbow(shoulder_3d, wrist_3d, signer.upper_arm, signer.forearm)
    return {"shoulder": shoulder_3d * mirror, "elbow": elbow * mirror, "wrist": wrist_3d * mirror,
            "hand": (np.concatenate([wrist[:, None, :], depth.reshape(count, 1, 1)],
                                    axis=2) + local) * mirror}


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
    """What a Holistic detector would report: jittered keypoints, parts it missed zeroed, and ``detected`` (T,
    4).

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
        values[..., :3] += d * (rng.normal(0, shared,
                                           (count, 1, 3)) + rng.normal(0, own, values[..., :3].shape))
        if part == "pose":
            values[..., 3] = np.clip(values[..., 3] - np.abs(rng.normal(0, 0.02 * d, values[..., 3].shape)),
                                     0, 1)
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
