"""Tests for utils.keypoints: the 1662 layout, order conversions, MediaPipe extraction and drawing."""
from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from utils.data import keypoints as kp, video

RNG = np.random.default_rng(0)


def random_vectors(*lead: int) -> np.ndarray:
    """Random (..., 1662) float32 vectors with every part non-zero."""
    return RNG.uniform(0.05, 0.95, (*lead, kp.KEYPOINT_DIM)).astype(np.float32)


# ----------------------------------------------------------------------------- layout (existing helpers)
def test_layout_constants_tile_the_vector():
    assert kp.KEYPOINT_DIM == 1662 and kp.PARTS == ("face", "pose", "left_hand", "right_hand")
    stops = [kp.PART_SLICES[p].stop - kp.PART_SLICES[p].start for p in kp.PARTS]
    assert stops == [1404, 132, 63, 63]
    assert kp.FACE.start == 0 and kp.RIGHT_HAND.stop == 1662
    assert all(kp.PART_SLICES[a].stop == kp.PART_SLICES[b].start for a, b in zip(kp.PARTS, kp.PARTS[1:]))


def test_mp_data_order_round_trip_and_positions():
    ours = random_vectors(2, 5)
    mp_data = kp.original_to_mp_data(ours)
    assert mp_data.shape == ours.shape
    np.testing.assert_array_equal(mp_data[..., :132], ours[..., kp.POSE])  # MP_Data puts the pose first
    np.testing.assert_array_equal(mp_data[..., 132:1536], ours[..., kp.FACE])
    np.testing.assert_array_equal(mp_data[..., 1536:], ours[..., 1536:])  # hands stay where they are
    np.testing.assert_array_equal(kp.mp_data_to_original(mp_data), ours)


def test_split_and_join_parts_round_trip():
    ours = random_vectors(3, 4)
    parts = kp.split_parts(ours)
    assert parts["face"].shape == (3, 4, 468, 3) and parts["pose"].shape == (3, 4, 33, 4)
    assert parts["left_hand"].shape == parts["right_hand"].shape == (3, 4, 21, 3)
    # landmark 5 of pose
    np.testing.assert_array_equal(parts["pose"][1, 2, 5], ours[1, 2, 1404 + 20:1404 + 24])
    joined = kp.join_parts(**parts)
    assert joined.dtype == np.float32
    np.testing.assert_array_equal(joined, ours)


def test_join_parts_rejects_wrong_shapes():
    parts = kp.split_parts(random_vectors(2))
    parts["pose"] = parts["pose"][:, :, :3]
    with pytest.raises(ValueError, match="pose"):
        kp.join_parts(**parts)


def test_parts_present_flags_zero_parts():
    vectors = random_vectors(4)
    vectors[1, kp.FACE] = 0
    vectors[2, kp.LEFT_HAND] = 0
    vectors[3] = 0
    present = kp.parts_present(vectors)
    assert present.tolist() == [[True] * 4, [False, True, True, True], [True, True, False, True], [False] * 4]


@pytest.mark.parametrize("function", [kp.mp_data_to_original, kp.original_to_mp_data, kp.split_parts,
                                      kp.parts_present])
def test_wrong_last_dimension_is_rejected(function):
    with pytest.raises(ValueError, match="1662"):
        function(np.zeros((3, 1661)))


# ----------------------------------------------------------------------------- topology
def test_connections_are_valid_index_pairs():
    for connections, num_points in [(kp.POSE_CONNECTIONS, 33), (kp.HAND_CONNECTIONS, 21),
                                    (kp.FACE_CONNECTIONS, 468)]:
        assert all(isinstance(a, int) and isinstance(b, int) and 0 <= a < num_points and 0 <= b < num_points
                   for a, b in connections)
        assert len(set(connections)) == len(connections)


def test_connections_equal_mediapipe():
    mp = pytest.importorskip("mediapipe")
    assert set(kp.POSE_CONNECTIONS) == set(mp.solutions.holistic.POSE_CONNECTIONS)
    assert set(kp.HAND_CONNECTIONS) == set(mp.solutions.hands.HAND_CONNECTIONS)
    assert set(kp.FACE_CONNECTIONS) == set(mp.solutions.face_mesh.FACEMESH_CONTOURS)


# ----------------------------------------------------------------------------- results_to_vector
def fake_landmarks(num_points: int, offset: float) -> SimpleNamespace:
    """A stand-in for a MediaPipe NormalizedLandmarkList whose values encode part and index."""
    return SimpleNamespace(landmark=[SimpleNamespace(x=offset + i / 1000, y=offset + 0.1 + i / 1000,
                                                     z=-offset, visibility=0.5 + i / 100)
                                     for i in range(num_points)])


def fake_results(face=True, pose=True, left=True, right=True, face_points=468) -> SimpleNamespace:
    """A stand-in for a Holistic result with chosen parts found."""
    return SimpleNamespace(face_landmarks=fake_landmarks(face_points, 0.1) if face else None,
                           pose_landmarks=fake_landmarks(33, 0.2) if pose else None,
                           left_hand_landmarks=fake_landmarks(21, 0.3) if left else None,
                           right_hand_landmarks=fake_landmarks(21, 0.4) if right else None)


def test_results_to_vector_places_every_part():
    vector, detected = kp.results_to_vector(fake_results())
    assert vector.shape == (1662,) and vector.dtype == np.float32 and detected.tolist() == [True] * 4
    parts = kp.split_parts(vector)
    np.testing.assert_allclose(parts["face"][7], [0.107, 0.207, -0.1], atol=1e-6)
    np.testing.assert_allclose(parts["pose"][3], [0.203, 0.303, -0.2, 0.53], atol=1e-6)  # visibility kept
    np.testing.assert_allclose(parts["left_hand"][0], [0.3, 0.4, -0.3], atol=1e-6)
    np.testing.assert_allclose(parts["right_hand"][20], [0.42, 0.52, -0.4], atol=1e-6)


@pytest.mark.parametrize("missing", kp.PARTS)
def test_results_to_vector_zeros_for_missing_part(missing):
    found = {"face": True, "pose": True, "left": True, "right": True}
    found[{"left_hand": "left", "right_hand": "right"}.get(missing, missing)] = False
    vector, detected = kp.results_to_vector(fake_results(**found))
    expected = [part != missing for part in kp.PARTS]
    assert detected.tolist() == expected
    assert kp.parts_present(vector).tolist() == expected
    assert not np.any(vector[kp.PART_SLICES[missing]])


def test_results_to_vector_nothing_found():
    vector, detected = kp.results_to_vector(fake_results(False, False, False, False))
    assert not vector.any() and not detected.any()


def test_results_to_vector_refined_face_keeps_first_468():
    vector, _ = kp.results_to_vector(fake_results(face_points=478))
    np.testing.assert_allclose(kp.split_parts(vector)["face"][467], [0.567, 0.667, -0.1], atol=1e-6)


def test_results_to_vector_rejects_short_landmark_lists():
    with pytest.raises(ValueError, match="face"):
        kp.results_to_vector(fake_results(face_points=100))


# ----------------------------------------------------------------------------- drawing
def hand_only_vector(center: tuple[float, float], spread: float = 0.05) -> np.ndarray:
    """A (1662,) vector with only a right hand, its 21 points within ``spread`` of ``center`` (normalised)."""
    vector = np.zeros(kp.KEYPOINT_DIM, dtype=np.float32)
    hand = np.zeros((21, 3), dtype=np.float32)
    hand[:, 0] = center[0] + RNG.uniform(-spread, spread, 21)
    hand[:, 1] = center[1] + RNG.uniform(-spread, spread, 21)
    vector[kp.RIGHT_HAND] = hand.ravel()
    return vector


def test_draw_landmarks_changes_pixels_only_near_landmarks():
    frame = np.full((200, 300, 3), 90, dtype=np.uint8)
    vector = hand_only_vector((0.25, 0.7))
    drawn = kp.draw_landmarks(frame, vector, thickness=2)
    changed = np.any(drawn != frame, axis=-1)
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 100
    hand = kp.split_parts(vector)["right_hand"]
    margin = 6  # thickness + dot radius + anti-aliasing
    assert cols.min() >= hand[:, 0].min() * 300 - margin and cols.max() <= hand[:, 0].max() * 300 + margin
    assert rows.min() >= hand[:, 1].min() * 200 - margin and rows.max() <= hand[:, 1].max() * 200 + margin
    assert np.all(frame == 90), "copy=True must leave the input untouched"
    colours = drawn[changed].astype(int)
    assert np.any(np.all(colours == kp.PART_COLORS["right_hand"], axis=-1))


def test_draw_landmarks_skips_missing_and_unselected_parts():
    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(kp.draw_landmarks(frame, np.zeros(kp.KEYPOINT_DIM)), frame)
    vector = hand_only_vector((0.5, 0.5))
    np.testing.assert_array_equal(kp.draw_landmarks(frame, vector, parts=("face", "pose", "left_hand")),
                                  frame)


def test_draw_landmarks_hides_invisible_pose_points():
    vector = np.zeros(kp.KEYPOINT_DIM, dtype=np.float32)
    pose = np.zeros((33, 4), dtype=np.float32)
    pose[:, :2] = RNG.uniform(0.2, 0.8, (33, 2))
    pose[:, 3] = 0.1  # MediaPipe thinks none is visible
    vector[kp.POSE] = pose.ravel()
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    np.testing.assert_array_equal(kp.draw_landmarks(frame, vector), frame)
    assert kp.draw_landmarks(frame, vector, min_visibility=0.0).any()


def test_draw_landmarks_in_place_and_any_size():
    vector = random_vectors()
    for height, width in [(48, 64), (720, 1280)]:
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        result = kp.draw_landmarks(frame, vector, copy=False)
        assert result is frame and frame.any()
    with pytest.raises(ValueError, match="copy=False"):
        kp.draw_landmarks(np.zeros((64, 64, 3), dtype=np.uint8)[:, ::2], vector, copy=False)


@pytest.mark.parametrize("frame, vector", [(np.zeros((8, 8, 3), np.float32), np.zeros(1662)),
                                           (np.zeros((8, 8), np.uint8), np.zeros(1662)),
                                           (np.zeros((8, 8, 3), np.uint8), np.zeros(1404)),
                                           (np.zeros((8, 8, 3), np.uint8), np.zeros((2, 1662)))])
def test_draw_landmarks_rejects_bad_input(frame, vector):
    with pytest.raises(ValueError):
        kp.draw_landmarks(frame, vector)


def test_draw_skeleton_image_on_blank_canvas():
    vector = hand_only_vector((0.5, 0.5), spread=0.2)
    image = kp.draw_skeleton_image(vector, image_size=128, background=(10, 20, 30))
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert np.all(image[0, 0] == (10, 20, 30)) and np.any(image != (10, 20, 30))
    with pytest.raises(ValueError):
        kp.draw_skeleton_image(vector, image_size=0)


# ----------------------------------------------------------------------------- MediaPipe
@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """skimage's astronaut photo: one person, face and shoulders clearly visible (512x512 RGB)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def extractor():
    """One shared video-mode extractor (starting MediaPipe costs seconds)."""
    pytest.importorskip("mediapipe")
    with kp.HolisticExtractor() as holistic:
        yield holistic


def test_holistic_finds_face_and_pose_on_astronaut(extractor, astronaut):
    vector, detected = extractor.extract_frame(astronaut)
    assert vector.shape == (1662,) and vector.dtype == np.float32 and detected.dtype == bool
    assert detected[0] and detected[1], f"face/pose not found: {detected}"
    np.testing.assert_array_equal(kp.parts_present(vector), detected)
    parts = kp.split_parts(vector)
    face_x, face_y = parts["face"][:, 0], parts["face"][:, 1]
    assert 0.3 < face_x.min() and face_x.max() < 0.6 and 0.1 < face_y.min() and face_y.max() < 0.4
    nose = parts["pose"][kp.POSE_NOSE]
    assert face_x.min() < nose[0] < face_x.max() and face_y.min() < nose[1] < face_y.max() and nose[3] > 0.9
    left_shoulder, right_shoulder = (
        parts["pose"][kp.POSE_LEFT_SHOULDER],
        parts["pose"][kp.POSE_RIGHT_SHOULDER],
    )
    assert right_shoulder[0] < nose[0] < left_shoulder[0], (
        "the person's left shoulder is on the image's right"
    )
    for hand in ("left_hand", "right_hand"):  # her hands are barely visible: if found, below the face
        if detected[kp.PARTS.index(hand)]:
            assert parts[hand][:, 1].mean() > face_y.max()


def test_extract_clip_and_convenience_function(extractor, astronaut):
    frames = np.stack([astronaut, astronaut[:, ::-1].copy(), np.zeros_like(astronaut)])
    vectors, detected = extractor.extract(frames)
    assert vectors.shape == (3, 1662) and detected.shape == (3, 4)
    assert detected[0, :2].all() and detected[1, :2].all()
    assert not detected[2].any() and not vectors[2].any(), "an empty frame gives zeros, not an error"
    mirrored_nose = kp.split_parts(vectors[1])["pose"][kp.POSE_NOSE, 0]
    assert mirrored_nose == pytest.approx(1 - kp.split_parts(vectors[0])["pose"][kp.POSE_NOSE, 0], abs=0.03)
    again, again_detected = kp.extract_keypoints(frames[:1], static_image_mode=True)
    assert again_detected[0, :2].all()
    np.testing.assert_allclose(again[0, kp.POSE], vectors[0, kp.POSE], atol=0.02)
    empty_vectors, empty_detected = extractor.extract(frames[:0])
    assert empty_vectors.shape == (0, 1662) and empty_detected.shape == (0, 4)


def test_mediapipe_is_imported_without_tensorflow_and_tensorflow_still_imports_later():
    """extract's threads start MediaPipe in the main process: without TensorFlow (3 CPU-s), which stays
    importable."""
    import subprocess
    import sys

    code = ("import sys; from utils.data import keypoints; mp = keypoints.import_mediapipe(); "
            "print('tensorflow' in sys.modules); mp.solutions.holistic.Holistic().close(); "
            "import tensorflow as tf; print(float(tf.constant(2.0) + 1))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "3.0"]


def test_small_frames_warn(extractor, astronaut):
    small = video.resize_frames(astronaut[None], 64)[0]
    extractor._warned_small = False
    with pytest.warns(UserWarning, match="full-resolution"):
        extractor.extract_frame(small)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extractor.extract_frame(small)  # warns once per extractor, not per frame


def test_extractor_rejects_bad_frames(extractor):
    with pytest.raises(ValueError, match="uint8"):
        extractor.extract_frame(np.zeros((200, 200, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="RGB"):
        extractor.extract_frame(np.zeros((200, 200), dtype=np.uint8))


class RecordingHolistic:
    """Stands in for mediapipe's Holistic: records the shape of each frame it is given, finds nobody."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def process(self, frame: np.ndarray) -> SimpleNamespace:
        assert frame.flags.c_contiguous, "MediaPipe needs C-contiguous frames"
        self.shapes.append(frame.shape)
        return fake_results(False, False, False, False)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("max_side, expected",
                         [(0, (480, 640, 3)), (128, (96, 128, 3)), (1000, (480, 640, 3))])
def test_extractor_shrinks_frames_before_mediapipe(max_side, expected):
    holistic = kp.HolisticExtractor(max_side=max_side, warn_small_frames=False)
    holistic._holistic = RecordingHolistic()
    holistic.extract_frame(np.zeros((480, 640, 3), dtype=np.uint8))
    assert holistic._holistic.shapes == [expected]
    with pytest.raises(ValueError, match="max_side"):
        kp.HolisticExtractor(max_side=-5)


def test_shrunk_frames_give_landmarks_in_the_same_normalised_coordinates(extractor, astronaut):
    with kp.HolisticExtractor(static_image_mode=True, max_side=256) as shrinking:
        small, small_found = shrinking.extract_frame(astronaut)  # 512x512 seen as 256x256
    full, full_found = kp.HolisticExtractor(static_image_mode=True).extract_frame(astronaut)
    assert small_found[:2].all() and full_found[:2].all()
    small, full = kp.split_parts(small), kp.split_parts(full)
    # pose points out of the picture are guesses
    seen = {"face": slice(None), "pose": full["pose"][:, 3] >= 0.5}
    for part in ("face", "pose"):
        distance = np.linalg.norm(small[part][seen[part], :2] - full[part][seen[part], :2], axis=1)
        assert np.median(distance) < 0.01, (
            f"{part}: landmarks moved by {np.median(distance):.3f} of the frame"
        )


# ----------------------------------------------------------------------------- real recordings
@pytest.mark.slow
@pytest.mark.real
def test_real_asl_clips_full_resolution_beats_thumbnails(real_dir, extractor):
    clips = sorted((real_dir / "asl_clips").rglob("*.mp4"))
    assert clips, f"no .mp4 under {real_dir / 'asl_clips'}"
    full, small = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the 64x64 warning is the point of this test
        for path in clips:
            clip = video.load_clip(path, num_frames=8, image_size=64)
            full.append(extractor.extract(clip.frames)[1])
            small.append(extractor.extract(clip.thumbnails)[1])
    full_rates, small_rates = np.concatenate(full).mean(axis=0), np.concatenate(small).mean(axis=0)
    clips_with_hand = np.mean([flags[:, 2:].any() for flags in full])
    print(
        f"\n{len(clips)} real clips x 8 frames, found in % of frames (face, pose, left hand, right hand):"
        f"\n  full resolution {np.round(100 * full_rates, 1)}"
        f"\n  64x64 thumbnails {np.round(100 * small_rates, 1)}"
        f"\n  clips with a hand found (full resolution): {100 * clips_with_hand:.0f}%"
    )
    assert full_rates[1] >= 0.9, "pose should be found in nearly every frame"
    assert clips_with_hand >= 0.5
    assert full_rates[0] >= 2 * small_rates[0], "full resolution should find faces far more often than 64x64"


def test_draw_hand_boxes_draws_the_square_hand_crops_cuts():
    vector = np.zeros(kp.KEYPOINT_DIM, np.float32)
    hand = np.zeros((21, 3), np.float32)
    hand[:, 0] = np.linspace(0.4, 0.6, 21)  # the right hand spans x 0.4..0.6 at y = 0.5
    hand[:, 1] = 0.5
    vector[kp.RIGHT_HAND] = hand.ravel()
    frame = np.zeros((100, 100, 3), np.uint8)
    drawn = kp.draw_hand_boxes(frame, vector, thickness=1)
    centre_x, centre_y, side = kp.hand_boxes(vector, 100, 100)[1]
    left_edge, top_edge = int(round(centre_x - side / 2)), int(round(centre_y - side / 2))
    assert tuple(drawn[int(centre_y), left_edge]) == kp.HAND_BOX_COLORS[1]  # the right hand's square, in red
    assert tuple(drawn[top_edge, int(centre_x)]) == kp.HAND_BOX_COLORS[1]
    assert not drawn[int(centre_y), int(centre_x)].any()  # inside the square: untouched
    assert not drawn[:, :left_edge - 1].any()  # no left hand, no pose: nothing else drawn
    np.testing.assert_array_equal(frame, 0)
