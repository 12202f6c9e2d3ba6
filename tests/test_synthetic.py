"""Tests of the synthetic signer (utils/data/synthetic/): determinism, variety, keypoint layout, pixels,
dataset folder."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from utils.data import synthetic
from utils.data.keypoints import KEYPOINT_DIM, RIGHT_HAND, split_parts
from utils.data.synthetic import dataset as synthetic_dataset, hands, render
from utils.data.synthetic.signers import FACE_CHIN, FACE_LEFT_CHEEK, FACE_NOSE_TIP, FACE_RIGHT_CHEEK
from utils.errors import DatasetError

NUM_FRAMES, IMAGE_SIZE = 16, 128  # small for testing speed (defaults: 30 frames, 128 px)


@pytest.fixture(scope="module")
def signers() -> list[synthetic.Signer]:
    """Ten signers from a fixed seed."""
    return synthetic.make_signers(10, np.random.default_rng(0))


def _right_handed(signers: list[synthetic.Signer]) -> synthetic.Signer:
    return next(s for s in signers if s.handedness == "right")


def _clip(sign: str, signer: synthetic.Signer, seed: int = 0,
          difficulty: float = 1.0) -> synthetic.SyntheticClip:
    return synthetic.generate_clip(sign, signer, np.random.default_rng(seed), difficulty=difficulty,
                                   num_frames=NUM_FRAMES, image_size=IMAGE_SIZE)


def test_signs_are_the_original_ten_in_order() -> None:
    assert synthetic.SIGNS == ("hello", "thanks", "iloveyou", "me", "father", "mother", "yes", "no", "help",
                               "please")
    assert set(synthetic.SIGN_DESCRIPTIONS) == set(synthetic.MOTIONS) == set(synthetic.SIGNS)


def test_face_template_is_a_level_unit_width_face_mesh() -> None:
    face = synthetic.face_template()
    assert face.shape == (468, 3)
    np.testing.assert_allclose(face[FACE_RIGHT_CHEEK, :2], [-0.5, face[FACE_LEFT_CHEEK, 1]], atol=1e-4)
    np.testing.assert_allclose(face[FACE_LEFT_CHEEK, 0], 0.5, atol=1e-4)
    assert face[10, 1] < face[FACE_NOSE_TIP, 1] < face[13, 1] < face[FACE_CHIN, 1]  # forehead..chin
    assert face[33, 0] < 0 < face[263, 0]  # the person's right eye is on the image's left


def test_same_seed_same_clip_and_different_seed_different_clip(signers: list[synthetic.Signer]) -> None:
    first, again = _clip("hello", signers[0], 5), _clip("hello", signers[0], 5)
    other = _clip("hello", signers[0], 6)
    np.testing.assert_array_equal(first.keypoints, again.keypoints)
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.detected, again.detected)
    assert not np.array_equal(first.keypoints, other.keypoints)
    assert not np.array_equal(first.frames, other.frames)


def test_clip_shapes_and_types(signers: list[synthetic.Signer]) -> None:
    clip = _clip("thanks", signers[1])
    assert clip.frames.shape == (NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3) and clip.frames.dtype == np.uint8
    assert clip.keypoints.shape == (NUM_FRAMES, KEYPOINT_DIM) and clip.keypoints.dtype == np.float32
    assert clip.detected.shape == (NUM_FRAMES, 4) and clip.detected.dtype == bool
    assert (clip.sign, clip.signer) == ("thanks", signers[1].id)


def test_signers_have_ids_both_handednesses_and_differ(signers: list[synthetic.Signer]) -> None:
    assert [s.id for s in signers] == [f"s{i:02d}" for i in range(1, 11)]
    assert {s.handedness for s in signers} == {"left", "right"}
    assert len({s.face_width for s in signers}) == 10 and len({s.upper_arm for s in signers}) == 10
    assert len({s.shirt for s in signers}) >= 8
    again = synthetic.make_signers(10, np.random.default_rng(0))
    assert again == signers


def test_different_signers_look_different(signers: list[synthetic.Signer]) -> None:
    first, second = (_clip("yes", s, seed=1, difficulty=0.0) for s in signers[:2])
    assert np.abs(first.frames.astype(int) - second.frames.astype(int)).mean() > 10
    shoulder = lambda clip: split_parts(clip.keypoints)["pose"][0, 11:13, :2]  # noqa: E731
    assert not np.allclose(shoulder(first), shoulder(second), atol=0.01)


def test_left_handed_signer_is_the_mirror_image(signers: list[synthetic.Signer]) -> None:
    righty = _right_handed(signers)
    lefty = dataclasses.replace(righty, handedness="left")
    for sign in ("yes", "help"):  # signs placed relative to the body only, so the mirror is exact
        right = split_parts(synthetic.simulate_keypoints(sign, righty, np.random.default_rng(3), 0.0,
                                                         NUM_FRAMES))
        left = split_parts(synthetic.simulate_keypoints(sign, lefty, np.random.default_rng(3), 0.0,
                                                        NUM_FRAMES))
        centre = righty.center_x
        for part, mirrored in (("right_hand", "left_hand"), ("left_hand", "right_hand")):
            np.testing.assert_allclose(left[mirrored][..., 0], 2 * centre - right[part][..., 0], atol=1e-5)
            np.testing.assert_allclose(left[mirrored][..., 1:], right[part][..., 1:], atol=1e-5)
        for index, mirrored in ((16, 15), (14, 13), (12, 11)):  # right wrist, elbow, shoulder <-> left ones
            np.testing.assert_allclose(left["pose"][:, mirrored, 0], 2 * centre - right["pose"][:, index, 0],
                                       atol=1e-5)


@pytest.mark.parametrize("handedness, moving_wrist, still_wrist", [("right", 16, 15), ("left", 15, 16)])
def test_the_dominant_hand_signs(signers: list[synthetic.Signer], handedness: str, moving_wrist: int,
                                 still_wrist: int) -> None:
    signer = dataclasses.replace(_right_handed(signers), handedness=handedness)
    pose = split_parts(synthetic.simulate_keypoints("father", signer, np.random.default_rng(0), 0.0,
                                                    NUM_FRAMES))["pose"]
    travel = lambda index: np.linalg.norm(pose[:, index, :2] - pose[0, index, :2], axis=1).max()  # noqa: E731
    assert travel(moving_wrist) > 0.1 and travel(still_wrist) < 0.01
    nose_x = pose[:, 0, 0]
    side = np.sign(pose[0, moving_wrist, 0] - nose_x[0])
    assert side == (-1 if handedness == "right" else 1)  # the person's right hand is on the image's left


@pytest.mark.parametrize("sign", synthetic.SIGNS)
def test_keypoint_layout_is_mediapipe_like(signers: list[synthetic.Signer], sign: str) -> None:
    clip = _clip(sign, signers[3], seed=2)
    parts = split_parts(clip.keypoints)
    pose, face = parts["pose"], parts["face"]
    assert np.all(pose[:, 11, 0] > pose[:, 12, 0])  # left shoulder on the image's right
    assert np.all(pose[:, 11:13, 1].max(axis=1) > pose[:, 0, 1])  # shoulders below the nose
    assert np.all(pose[:, 23:25, 1].min(axis=1) > pose[:, 11:13, 1].max(axis=1))  # hips below the shoulders
    assert np.all((pose[..., 3] >= 0) & (pose[..., 3] <= 1))
    assert np.all(pose[:, 27:29, 3] < 0.5)  # ankles are out of the picture, so barely visible
    assert np.all(pose[:, 11:13, 3] > 0.8)
    for column, part in enumerate(("face", "pose", "left_hand", "right_hand")):
        found = clip.detected[:, column]
        values = parts[part][found][..., :2]
        assert np.all(parts[part][~found] == 0), f"{part} must be zeros where not detected"
        assert np.all(np.any(parts[part][found] != 0, axis=(1, 2)))
        if part != "pose" and values.size:
            assert ((values >= 0) & (values <= 1)).mean() > 0.9
    assert clip.detected[:, 1].all()
    assert clip.detected[:, 2:].any(axis=1).mean() > 0.7, "the signing hand is found in most frames"
    if clip.detected[0, 0]:
        assert face[0, 10, 1] < face[0, 152, 1]


def test_hand_bones_keep_their_length(signers: list[synthetic.Signer]) -> None:
    exact = synthetic.simulate_keypoints("no", signers[0], np.random.default_rng(1), 0.0, NUM_FRAMES)
    for hand in (split_parts(exact)["left_hand"], split_parts(exact)["right_hand"]):
        bones = np.linalg.norm(hand[:, render._BONES[:, 0]] - hand[:, render._BONES[:, 1]], axis=-1)
        np.testing.assert_allclose(bones, np.broadcast_to(bones[:1], bones.shape), rtol=1e-4)


def test_handshapes_differ_where_the_signs_say() -> None:
    angles, tips = np.zeros(1), [4, 8, 12, 16, 20]
    tip_to_wrist = {name: np.linalg.norm(hands.hand_landmarks(shape[None], angles, angles, angles)[0, tips],
                                         axis=-1)
                    for name, shape in hands.HANDSHAPES.items()}
    assert np.all(tip_to_wrist["open"] > tip_to_wrist["fist"])
    ily = tip_to_wrist["ily"]
    assert ily[1] > ily[2] and ily[4] > ily[3]  # index and pinky out, middle and ring bent


def test_frames_show_the_moving_hand(signers: list[synthetic.Signer]) -> None:
    signer = signers[0]
    clip = _clip("please", signer, seed=4, difficulty=0.0)
    changes = np.abs(np.diff(clip.frames.astype(int), axis=0)).sum(axis=(1, 2, 3))
    assert (changes[: NUM_FRAMES // 2] > 0).all(), (
        "the figure moves while signing (it may hold still at the end)"
    )
    hand = split_parts(clip.keypoints)["right_hand" if signer.handedness == "right" else "left_hand"]
    palm = np.round(hand[:, [0, 5, 17], :2].mean(axis=1) * IMAGE_SIZE).astype(int)
    colours = clip.frames[np.arange(NUM_FRAMES), palm[:, 1], palm[:, 0]].astype(int)
    skin_like = np.abs(colours - np.array(signer.skin)).max(axis=1) < 40
    assert skin_like.mean() > 0.8, "the palm centre is drawn in skin colour"


def test_difficulty_scales_noise_and_missed_hands(signers: list[synthetic.Signer]) -> None:
    signer = _right_handed(signers)

    def jitter_and_misses(difficulty: float) -> tuple[float, float]:
        errors, misses = [], []
        for seed in range(4):
            exact = synthetic.simulate_keypoints("me", signer, np.random.default_rng(seed), difficulty,
                                                 NUM_FRAMES)
            noisy, detected = synthetic.simulate_detection(exact, np.random.default_rng(seed), difficulty)
            pose = split_parts(noisy)["pose"][..., :2] - split_parts(exact)["pose"][..., :2]
            errors.append(np.abs(pose).mean())
            misses.append(1 - detected[:, 3].mean())
        return float(np.mean(errors)), float(np.mean(misses))

    clean, hard = jitter_and_misses(0.0), jitter_and_misses(2.0)
    assert clean == (0.0, 0.0)
    assert hard[0] > 0.001 and hard[1] > 0


def test_bad_arguments_raise_clear_errors(signers: list[synthetic.Signer]) -> None:
    with pytest.raises(DatasetError, match="unknown sign 'goodbye'"):
        _clip("goodbye", signers[0])
    with pytest.raises(DatasetError, match="image_size=64"):
        synthetic.generate_clip("hello", signers[0], np.random.default_rng(0), image_size=64)
    with pytest.raises(DatasetError, match="num_signers"):
        synthetic.make_signers(0, np.random.default_rng(0))


def test_contact_sheet_tiles_frames(signers: list[synthetic.Signer]) -> None:
    clips = [_clip(sign, signers[0], difficulty=0.0) for sign in ("hello", "help")]
    sheet = synthetic.contact_sheet(clips, frames_per_clip=3)
    assert sheet.shape == (2 * (IMAGE_SIZE + 2), 3 * (IMAGE_SIZE + 2), 3)


# ----------------------------------------------------------------------------------------------- make_dataset
TINY = dict(clips_per_class=2, num_signers=2, difficulty=1.0, seed=3, num_frames=NUM_FRAMES,
            image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-clip dataset made in-process."""
    return synthetic.make_dataset(tmp_path_factory.mktemp("synthetic") / "data", workers=1, **TINY)


def _manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_make_dataset_layout_and_manifest(tiny_dataset: Path) -> None:
    rows = _manifest(tiny_dataset)
    assert len(rows) == 20 and set(rows[0]) == {"path", "label", "signer"}
    for row in rows:
        video = tiny_dataset / row["path"]
        assert video.suffix == ".mp4" and video.parent.name == row["label"] and video.stat().st_size > 1000
        assert video.name.startswith(row["signer"] + "_")
        with np.load(video.with_name(video.stem + ".keypoints.npz")) as arrays:
            assert arrays["keypoints"].shape == (NUM_FRAMES,
                                                 KEYPOINT_DIM) and arrays["keypoints"].dtype == np.float32
            assert arrays["detected"].shape == (NUM_FRAMES, 4) and arrays["detected"].dtype == bool
    assert {(row["label"], row["signer"]) for row in rows} == {
        (sign, s) for sign in synthetic.SIGNS for s in ("s01", "s02")
    }
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    assert info["kind"] == "synthetic" and info["signs"] == list(synthetic.SIGNS)
    assert {k: info[k] for k in TINY} == TINY and info["generator_version"] == synthetic.GENERATOR_VERSION
    assert not list(tiny_dataset.rglob("*.tmp*")), "no temporary files are left behind"


def test_make_dataset_matches_generate_clip(tiny_dataset: Path) -> None:
    signer = synthetic_dataset._signers_for(TINY["seed"], TINY["num_signers"])[1]
    clip = synthetic.generate_clip("no", signer,
                                   synthetic_dataset._clip_rng(TINY["seed"], synthetic.SIGNS.index("no"), 1),
                                   TINY["difficulty"], NUM_FRAMES, IMAGE_SIZE)
    with np.load(tiny_dataset / "no" / "s02_001.keypoints.npz") as arrays:
        np.testing.assert_array_equal(arrays["keypoints"], clip.keypoints)
        np.testing.assert_array_equal(arrays["detected"], clip.detected)


def test_make_dataset_is_idempotent_and_refuses_other_parameters(tiny_dataset: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in tiny_dataset.rglob("*") if p.is_file()}
    assert synthetic.make_dataset(tiny_dataset, workers=1, **TINY) == tiny_dataset
    assert {p: p.stat().st_mtime_ns for p in tiny_dataset.rglob("*") if p.is_file()} == stamps
    with pytest.raises(DatasetError, match=r"other parameters.*seed.*another --out"):
        synthetic.make_dataset(tiny_dataset, workers=1, **{**TINY, "seed": 4})


def test_make_dataset_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a synthetic dataset folder"):
        synthetic.make_dataset(tmp_path, workers=1, **TINY)


def test_make_dataset_resumes_an_interrupted_run(tmp_path: Path) -> None:
    params = {**TINY, "clips_per_class": 1, "num_signers": 1}
    folder = synthetic.make_dataset(tmp_path / "data", workers=1, **params)
    lost = folder / "help" / "s01_000.mp4"
    original = (folder / "help" / "s01_000.keypoints.npz").read_bytes()
    kept = folder / "yes" / "s01_000.mp4"
    kept_stamp = kept.stat().st_mtime_ns
    lost.unlink()
    (folder / "dataset.json").unlink()  # as if killed before the end
    (folder / "manifest.csv").unlink()
    synthetic.make_dataset(folder, workers=1, **params)
    assert lost.exists() and (folder / "dataset.json").exists() and len(_manifest(folder)) == 10
    assert kept.stat().st_mtime_ns == kept_stamp, "finished clips are not generated again"
    assert (folder / "help" / "s01_000.keypoints.npz").read_bytes() == original


def test_make_dataset_is_the_same_with_a_process_pool(tmp_path: Path) -> None:
    params = {**TINY, "clips_per_class": 1, "num_signers": 1, "num_frames": 8}
    serial = synthetic.make_dataset(tmp_path / "serial", workers=1, **params)
    pooled = synthetic.make_dataset(tmp_path / "pooled", workers=2, **params)
    for npz in serial.rglob("*.npz"):
        with np.load(npz) as first, np.load(pooled / npz.relative_to(serial)) as second:
            np.testing.assert_array_equal(first["keypoints"], second["keypoints"])


def test_render_leaves_out_parts_that_were_not_detected(signers: list[synthetic.Signer]) -> None:
    signer = _right_handed(signers)
    exact = synthetic.simulate_keypoints("please", signer, np.random.default_rng(0), 0.0, 4)
    without_hand = exact.copy()
    without_hand[:, RIGHT_HAND] = 0
    full = synthetic.render_keypoints(exact, signer, IMAGE_SIZE, np.random.default_rng(1), 0.0)
    partial = synthetic.render_keypoints(without_hand, signer, IMAGE_SIZE, np.random.default_rng(1), 0.0)
    hand = split_parts(exact)["right_hand"]
    palm = np.round(hand[:, [0, 5, 17], :2].mean(axis=1) * IMAGE_SIZE).astype(int)
    changed = [np.any(full[i, y, x] != partial[i, y, x]) for i, (x, y) in enumerate(palm)]
    assert all(changed), "the undetected hand is not drawn"
    empty = synthetic.render_keypoints(np.zeros_like(exact), signer, IMAGE_SIZE, np.random.default_rng(1),
                                       0.0)
    assert (empty == empty[0]).all() and np.abs(empty[0].astype(int) - full[0]).sum(axis=-1).astype(
        bool
    ).mean() > 0.1
