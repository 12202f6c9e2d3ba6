"""benchmarks/crowd_errors.py: the hand-shape rule that finds crowd clips whose folder label contradicts the
sign."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from utils.data.keypoints import RIGHT_HAND

ROOT = Path(__file__).resolve().parents[1]


def _module():
    """benchmarks/crowd_errors.py as a module."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("crowd_errors", ROOT / "benchmarks" / "crowd_errors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crowd_errors", module)
    spec.loader.exec_module(module)
    return module


def _right_hand_clip(tips: dict[int, float], frames: int = 12, seen: int = 12) -> np.ndarray:
    """One clip (frames, 1662) whose right hand has its palm 0.1 tall and fingertips at these distances (palm
    sizes) straight above the wrist; the hand is found in the first ``seen`` frames only."""
    hand = np.zeros((21, 3), np.float32)
    hand[:, :2] = 0.5
    for point in range(1, 21):
        hand[point, 1] = 0.5 - 0.1 * (1.0 if point in (5, 9, 13, 17) else 0.8)
    for tip, palms in tips.items():
        hand[tip, 1] = 0.5 - 0.1 * palms
    hand[:, 0] += np.linspace(0, 0.01, 21)  # points apart from each other
    clip = np.zeros((frames, 1662), np.float32)
    clip[:seen, RIGHT_HAND] = hand.reshape(-1)
    return clip


def test_ily_shape_and_groups_follow_the_fingers_not_the_label():
    module = _module()
    ily = {4: 1.5, 8: 2.0, 12: 0.6, 16: 0.6, 20: 1.8}  # index and little finger out, middle and ring folded
    flat = {4: 1.5, 8: 2.0, 12: 2.1, 16: 2.0, 20: 1.8}
    kp = np.stack([_right_hand_clip(ily), _right_hand_clip(flat), _right_hand_clip(flat),
                   _right_hand_clip(ily), _right_hand_clip(ily, seen=3), _right_hand_clip(flat)])
    extension, seen = module.finger_extension(kp)
    np.testing.assert_allclose(extension[0, 0], [1.5, 2.0, 0.6, 0.6, 1.8], atol=0.02)
    assert module.ily_hand_shape(extension, seen).tolist() == [True, False, False, True, True, False]
    clips = module.study.ClipSet(kp, np.array(["iloveyou", "iloveyou", "thanks", "thanks", "hello", "no"]),
                                 np.array(["a"] * 6))
    groups = module.error_groups(clips)
    assert np.flatnonzero(groups["label contradicts the hand shape"]).tolist() == [1, 3]
    assert np.flatnonzero(groups["hand mostly missing"]).tolist() == [4]
    assert np.flatnonzero(groups["rare sign"]).tolist() == [5]
    assert np.flatnonzero(groups["the rest"]).tolist() == [0, 2]
