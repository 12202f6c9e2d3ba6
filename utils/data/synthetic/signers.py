"""Who signs: the face mesh every synthetic signer shares, and :class:`Signer`, one person's identity.

The face follows a real MediaPipe face mesh, measured once on ``skimage.data.astronaut()`` and cached under
``paths.CACHE_DIR``. A :class:`Signer` holds everything that stays the same across one person's clips:
proportions, framing, colours, handedness and personal style.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from utils import paths
from utils.data.keypoints import FACE_POINTS
from utils.errors import DatasetError

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
            raise DatasetError(f"{cache_file} holds shape {template.shape}, expected ({FACE_POINTS}, 3): "
                               "delete it")
        _face_template_memory = template
    return _face_template_memory


def set_face_template(template: np.ndarray) -> None:
    """Hand a worker process the template measured by its parent (no MediaPipe import in workers)."""
    global _face_template_memory
    _face_template_memory = template


# ----------------------------------------------------------------------------------------------- signers
Colour = tuple[int, int, int]
_SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (161, 102, 70),
               (112, 72, 48))
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


def _random_colour(rng: np.random.Generator, saturation: tuple[float, float],
                   value: tuple[float, float]) -> Colour:
    """A random RGB colour from hue, saturation and value ranges."""
    import colorsys

    red, green, blue = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value))
    return int(red * 255), int(green * 255), int(blue * 255)


def jitter_colour(colour: Colour, rng: np.random.Generator, amount: float) -> Colour:
    """A colour moved by up to ``amount`` per channel."""
    # type: ignore[return-value]
    return tuple(int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in colour)


def _make_signer(signer_id: str, handedness: str, rng: np.random.Generator) -> Signer:
    """One random signer identity."""
    skin = jitter_colour(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 12)
    return Signer(
        id=signer_id, handedness=handedness,
        face_width=rng.uniform(0.34, 0.42), neck_length=rng.uniform(0.12, 0.22),
        upper_arm=rng.uniform(0.68, 0.80), forearm=rng.uniform(0.60, 0.70),
        hand_length=rng.uniform(0.48, 0.56), torso_length=rng.uniform(1.1, 1.3),
        hip_width=rng.uniform(0.7, 0.9), build=rng.uniform(0.85, 1.2), center_x=rng.uniform(0.42, 0.58),
        center_y=rng.uniform(0.42, 0.5), scale=rng.uniform(0.33, 0.42), head_roll=rng.normal(0, 4),
        skin=skin, shirt=_random_colour(rng, (0.3, 0.9), (0.25, 0.9)),
        hair=jitter_colour(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng, 15),
        lips=jitter_colour((int(skin[0] * 0.8), int(skin[1] * 0.5), int(skin[2] * 0.5)), rng, 10),
        long_sleeves=bool(rng.uniform() < 0.6),
        background_kind=BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))],
        background_colours=(_random_colour(rng, (0.0, 0.5), (0.3, 0.95)),
                            _random_colour(rng, (0.0, 0.5), (0.3, 0.95))),
        speed=rng.uniform(0.55, 0.85), amplitude=rng.uniform(0.8, 1.2),
        location_bias=(float(rng.normal(0, 0.06)), float(rng.normal(0, 0.12))),
        laxness=rng.uniform(0.0, 0.3), rest_style=("side", "front")[rng.integers(2)],
    )


def make_signers(num_signers: int, rng: np.random.Generator) -> list[Signer]:
    """``num_signers`` distinct signers ``s01``, ``s02``, ...; about a quarter (at least one of two+)
    left-handed."""
    if num_signers < 1:
        raise DatasetError(f"num_signers must be at least 1, got {num_signers}")
    width = max(2, len(str(num_signers)))
    num_left = 0 if num_signers < 2 else max(1, round(0.25 * num_signers))
    left = set(rng.choice(num_signers, size=num_left, replace=False).tolist()) if num_left else set()
    return [_make_signer(f"s{i + 1:0{width}d}", "left" if i in left else "right",
                         rng) for i in range(num_signers)]
