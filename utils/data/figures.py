"""Figures of the data itself: the skeleton's topologies and the hand crops cut from a frame.

The general figure helpers (saving, grids, curves, tables) live in :mod:`utils.plots`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from utils import plots
from utils.data import keypoints, synthetic


def plot_hand_crops(frames: Sequence[np.ndarray], vectors: Sequence[np.ndarray], hand_size: int = 32,
                    title: str = "", save_as: str | Path | None = None) -> Any:
    """One row per frame: the frame with its landmarks and hand-crop squares, then the left and right hand
    crops (``keypoints.hand_crops`` of the full-resolution frame, as ``extract --hand-size`` and ``predict``
    cut them)."""
    images, titles = [], []
    for frame, vector in zip(frames, vectors):
        crops = keypoints.hand_crops(np.asarray(frame)[None], np.asarray(vector)[None], hand_size)[0]
        images += [keypoints.draw_hand_boxes(keypoints.draw_landmarks(frame, vector), vector), crops[0],
                   crops[1]]
        titles += [f"{frame.shape[1]}x{frame.shape[0]}", f"left hand {hand_size}x{hand_size}",
                   f"right hand {hand_size}x{hand_size}"]
    return plots.plot_frame_grid(images, titles, columns=3, title=title, save_as=save_as)


def plot_topologies(save_as: str | Path | None = None) -> Any:
    """The MediaPipe pose (33 points) and hand (21 points) topologies with their landmark numbers."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)  # a clean synthetic signer with an open hand, as the example
    clip = synthetic.generate_clip("father", synthetic.make_signers(1, rng)[0], rng, difficulty=0.0,
                                   num_frames=8)
    parts = keypoints.split_parts(clip.keypoints[4])
    pose = parts["pose"]
    hand = parts["right_hand"] if np.any(parts["right_hand"]) else parts["left_hand"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 5))
    for ax, points, connections, title in ((axes[0], pose, keypoints.POSE_CONNECTIONS, "pose: 33 landmarks"),
                                           (axes[1], hand, keypoints.HAND_CONNECTIONS, "hand: 21 landmarks")):
        for a, b in connections:
            ax.plot(points[[a, b], 0], points[[a, b], 1], color="0.6", lw=1.5, zorder=1)
        ax.scatter(points[:, 0], points[:, 1], s=18, color="tab:red", zorder=2)
        for index, (x, y) in enumerate(points[:, :2]):
            ax.annotate(str(index), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
        ax.set_title(title)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    return plots.finish(fig, save_as)
