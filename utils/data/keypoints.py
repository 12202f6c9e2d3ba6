"""The 1662-number MediaPipe Holistic keypoint layout, order conversion, extraction and drawing.

Layout of one frame's vector, in the original project's order::

    face        468 x (x, y, z)               = 1404   [   0:1404]
    pose         33 x (x, y, z, visibility)   =  132   [1404:1536]
    left hand    21 x (x, y, z)               =   63   [1536:1599]
    right hand   21 x (x, y, z)               =   63   [1599:1662]

Coordinates are MediaPipe's: x and y normalised to the image (0..1, origin top-left),
z roughly in the same scale as x. A part MediaPipe did not find is all zeros.
The widespread "MP_Data" tutorials store the same numbers with the pose first
(pose, face, left, right); :func:`mp_data_to_original` and :func:`original_to_mp_data`
convert between the two.
"""
from __future__ import annotations

import numpy as np

FACE_POINTS, POSE_POINTS, HAND_POINTS = 468, 33, 21
FACE_DIM = FACE_POINTS * 3  # 1404
POSE_DIM = POSE_POINTS * 4  # 132 (x, y, z, visibility)
HAND_DIM = HAND_POINTS * 3  # 63
KEYPOINT_DIM = FACE_DIM + POSE_DIM + 2 * HAND_DIM  # 1662

PARTS = ("face", "pose", "left_hand", "right_hand")
FACE = slice(0, FACE_DIM)
POSE = slice(FACE.stop, FACE.stop + POSE_DIM)
LEFT_HAND = slice(POSE.stop, POSE.stop + HAND_DIM)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + HAND_DIM)
PART_SLICES = {"face": FACE, "pose": POSE, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND}
PART_SHAPES = {"face": (FACE_POINTS, 3), "pose": (POSE_POINTS, 4),
               "left_hand": (HAND_POINTS, 3), "right_hand": (HAND_POINTS, 3)}

# The MP_Data tutorial order: pose, face, left hand, right hand.
MP_DATA_POSE = slice(0, POSE_DIM)
MP_DATA_FACE = slice(POSE_DIM, POSE_DIM + FACE_DIM)
MP_DATA_LEFT_HAND = slice(MP_DATA_FACE.stop, MP_DATA_FACE.stop + HAND_DIM)
MP_DATA_RIGHT_HAND = slice(MP_DATA_LEFT_HAND.stop, MP_DATA_LEFT_HAND.stop + HAND_DIM)

# A few pose landmark indices (MediaPipe Pose topology) used across the course.
POSE_NOSE, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 0, 11, 12
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16


def _check_last_dim(array: np.ndarray, name: str = "keypoints") -> np.ndarray:
    array = np.asarray(array)
    if array.shape[-1:] != (KEYPOINT_DIM,):
        raise ValueError(f"{name} must end with {KEYPOINT_DIM} numbers per frame, got shape {array.shape}")
    return array


def mp_data_to_original(array: np.ndarray) -> np.ndarray:
    """Reorder (..., 1662) vectors from MP_Data order (pose, face, left, right) to ours (face, pose, left,
    right)."""
    array = _check_last_dim(array)
    return np.concatenate([array[..., MP_DATA_FACE], array[..., MP_DATA_POSE],
                           array[..., MP_DATA_LEFT_HAND], array[..., MP_DATA_RIGHT_HAND]], axis=-1)


def original_to_mp_data(array: np.ndarray) -> np.ndarray:
    """Reorder (..., 1662) vectors from our order (face, pose, left, right) to MP_Data order (pose, face,
    left, right)."""
    array = _check_last_dim(array)
    return np.concatenate([array[..., POSE], array[..., FACE],
                           array[..., LEFT_HAND], array[..., RIGHT_HAND]], axis=-1)


def split_parts(array: np.ndarray) -> dict[str, np.ndarray]:
    """Split (..., 1662) vectors into per-part landmark arrays, e.g. face (..., 468, 3), pose (..., 33, 4)."""
    array = _check_last_dim(array)
    lead = array.shape[:-1]
    return {part: array[..., PART_SLICES[part]].reshape(*lead, *PART_SHAPES[part]) for part in PARTS}


def join_parts(face: np.ndarray, pose: np.ndarray, left_hand: np.ndarray,
               right_hand: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_parts`: per-part landmark arrays back to (..., 1662) float32 vectors."""
    parts = [np.asarray(p, dtype=np.float32) for p in (face, pose, left_hand, right_hand)]
    lead = parts[0].shape[:-2]
    for part, name in zip(parts, PARTS):
        if part.shape != (*lead, *PART_SHAPES[name]):
            raise ValueError(f"{name} must have shape {(*lead, *PART_SHAPES[name])}, got {part.shape}")
    return np.concatenate([p.reshape(*lead, -1) for p in parts], axis=-1)


def parts_present(array: np.ndarray) -> np.ndarray:
    """Which parts are non-zero in each (..., 1662) vector, as bool (..., 4) in PARTS order."""
    array = _check_last_dim(array)
    return np.stack([np.any(array[..., PART_SLICES[p]] != 0, axis=-1) for p in PARTS], axis=-1)


# ----------------------------------------------------------------------------- hand boxes and crops
#: Pose landmarks of each arm's hand (wrist, pinky, index, thumb): the fallback box when MediaPipe lost the
#: hand.
POSE_HAND_POINTS = {"left_hand": (15, 17, 19, 21), "right_hand": (16, 18, 20, 22)}
HAND_CROP_MARGIN = 0.25  # added on each side of the hand's bounding box, as a fraction of its larger side
MIN_POSE_VISIBILITY = 0.5  # pose points less visible than this do not place a fallback box
MIN_HAND_SIDE = 0.05  # smallest box side, as a fraction of the frame's shorter side
HANDS = ("left_hand", "right_hand")


def _landmark_box(points: np.ndarray, width: int, height: int, margin: float) -> np.ndarray:
    """(centre x, centre y, side) in pixels of the square around normalised (n, 2) points, widened by
    margin."""
    pixels = points[:, :2] * np.array([width, height], dtype=np.float64)
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    side = max(float((high - low).max()) * (1 + 2 * margin), MIN_HAND_SIDE * min(width, height))
    return np.array([*(low + high) / 2, side])


def _pose_hand_box(pose: np.ndarray, hand: str, width: int, height: int, margin: float) -> np.ndarray:
    """Fallback box of one hand from the pose's wrist/pinky/index/thumb of that arm; side 0 when they are not
    seen."""
    points = pose[list(POSE_HAND_POINTS[hand])]
    seen = np.any(points[:, :2] != 0, axis=1) & (points[:, 3] >= MIN_POSE_VISIBILITY)
    if not seen[0]:  # no wrist, no hand
        return np.zeros(3)
    pixels = points[seen, :2] * np.array([width, height], dtype=np.float64)
    centre = pixels.mean(axis=0)
    reach = float(np.linalg.norm(pixels - pixels[0], axis=1).max())  # wrist to the farthest finger point
    side = max(2 * reach * (1 + 2 * margin), MIN_HAND_SIDE * min(width, height))
    return np.array([*centre, side])


def hand_boxes(vector: np.ndarray, width: int, height: int, margin: float = HAND_CROP_MARGIN) -> np.ndarray:
    """Square pixel boxes (2, 3) = (centre x, centre y, side) of the left and right hand in one frame's
    (1662,) vector.

    A hand MediaPipe found: its 21 landmarks' bounding box, squared and widened by ``margin`` on each side.
    A hand it lost: a box around the pose's wrist, pinky, index and thumb of that arm. Neither: side 0.
    """
    vector = _check_last_dim(vector, "vector")
    parts = split_parts(np.asarray(vector, dtype=np.float64))
    boxes = np.zeros((2, 3))
    for row, hand in enumerate(HANDS):
        if np.any(parts[hand] != 0):
            boxes[row] = _landmark_box(parts[hand], width, height, margin)
        elif np.any(parts["pose"] != 0):
            boxes[row] = _pose_hand_box(parts["pose"], hand, width, height, margin)
    return boxes


def hand_crops(frames: np.ndarray, keypoints: np.ndarray, size: int = 32,
               margin: float = HAND_CROP_MARGIN) -> np.ndarray:
    """Crops (T, 2, size, size, 3) uint8 of the left and right hand in each frame (T, H, W, 3); no hand =
    zeros.

    Give the full-resolution frames: the boxes come from the normalised keypoints (T, 1662), so any
    frame size works, and a 32-pixel crop of a 720p frame holds far more of the hand than a thumbnail.
    """
    from utils.data.video import crop_square

    frames, keypoints = np.asarray(frames), _check_last_dim(keypoints)
    if frames.ndim != 4 or len(frames) != len(keypoints):
        raise ValueError(f"hand_crops needs frames (T, H, W, 3) and keypoints (T, 1662) with the same T, "
                         f"got {frames.shape} and {keypoints.shape}")
    height, width = frames.shape[1:3]
    crops = np.zeros((len(frames), 2, int(size), int(size), 3), dtype=np.uint8)
    for t, (frame, vector) in enumerate(zip(frames, keypoints)):
        for row, (centre_x, centre_y, side) in enumerate(hand_boxes(vector, width, height, margin)):
            crops[t, row] = crop_square(frame, centre_x, centre_y, side, size)
    return crops


# ----------------------------------------------------------------------------- topology
# Copied from mediapipe 0.10.21 (sorted), so that drawing needs no mediapipe import;
# tests/test_keypoints.py checks that they still equal mediapipe's.
# mediapipe.solutions.holistic.POSE_CONNECTIONS: 35 bones between the 33 pose landmarks.
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (11, 23),
    (12, 14), (12, 24), (13, 15), (14, 16), (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22),
    (17, 19), (18, 20), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (27, 31), (28, 30),
    (28, 32), (29, 31), (30, 32),
)
# mediapipe.solutions.hands.HAND_CONNECTIONS: 21 bones between the 21 landmarks of one hand.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10), (9, 13),
    (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20),
)
# mediapipe.solutions.face_mesh.FACEMESH_CONTOURS: the face outline, eyes, eyebrows and lips (124 of the mesh
# edges).
FACE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 267), (7, 163), (10, 338), (13, 312), (14, 317), (17, 314), (21, 54), (33, 7), (33, 246), (37, 0),
    (39, 37), (40, 39), (46, 53), (52, 65), (53, 52), (54, 103), (58, 132), (61, 146), (61, 185), (63, 105),
    (65, 55), (66, 107), (67, 109), (70, 63), (78, 95), (78, 191), (80, 81), (81, 82), (82, 13), (84, 17),
    (87, 14), (88, 178), (91, 181), (93, 234), (95, 88), (103, 67), (105, 66), (109, 10), (127, 162),
    (132, 93), (136, 172), (144, 145), (145, 153), (146, 91), (148, 176), (149, 150), (150, 136), (152, 148),
    (153, 154), (154, 155), (155, 133), (157, 173), (158, 157), (159, 158), (160, 159), (161, 160), (162, 21),
    (163, 144), (172, 58), (173, 133), (176, 149), (178, 87), (181, 84), (185, 40), (191, 80), (234, 127),
    (246, 161), (249, 390), (251, 389), (263, 249), (263, 466), (267, 269), (269, 270), (270, 409),
    (276, 283), (282, 295), (283, 282), (284, 251), (288, 397), (293, 334), (295, 285), (296, 336),
    (297, 332), (300, 293), (310, 415), (311, 310), (312, 311), (314, 405), (317, 402), (318, 324),
    (321, 375), (323, 361), (324, 308), (332, 284), (334, 296), (338, 297), (356, 454), (361, 288),
    (365, 379), (373, 374), (374, 380), (375, 291), (377, 152), (378, 400), (379, 378), (380, 381),
    (381, 382), (382, 362), (384, 398), (385, 384), (386, 385), (387, 386), (388, 387), (389, 356),
    (390, 373), (397, 365), (398, 362), (400, 377), (402, 318), (405, 321), (409, 291), (415, 308),
    (454, 323), (466, 388),
)

# Colours (RGB) used when drawing each part.
PART_COLORS: dict[str, tuple[int, int, int]] = {
    "face": (0, 170, 170), "pose": (40, 90, 230), "left_hand": (230, 60, 40), "right_hand": (40, 170, 60),
}
PART_CONNECTIONS = {"face": FACE_CONNECTIONS, "pose": POSE_CONNECTIONS,
                    "left_hand": HAND_CONNECTIONS, "right_hand": HAND_CONNECTIONS}

# ----------------------------------------------------------------------------- MediaPipe Holistic
# MediaPipe needs frames of a reasonable size: on the real ASL clips (../shared/real, 16 frames per
# clip) it finds the face in 96% of frames and the right hand in 65% at the clips' own resolution,
# but only 19% and 36% once the same frames are shrunk to 64x64, as the original project did.
MIN_FRAME_SIDE = 128


def _landmarks_to_array(landmark_list, num_points: int, with_visibility: bool, part: str) -> np.ndarray:
    """One MediaPipe NormalizedLandmarkList to (num_points, 3 or 4) float32; None gives zeros."""
    width = 4 if with_visibility else 3
    if landmark_list is None:
        return np.zeros((num_points, width), dtype=np.float32)
    landmarks = list(landmark_list.landmark)
    if len(landmarks) < num_points:
        raise ValueError(f"{part}: expected {num_points} landmarks from MediaPipe, got {len(landmarks)}")
    landmarks = landmarks[:num_points]  # refine_face_landmarks adds 10 iris points after the 468
    if with_visibility:
        return np.array([[p.x, p.y, p.z, p.visibility] for p in landmarks], dtype=np.float32)
    return np.array([[p.x, p.y, p.z] for p in landmarks], dtype=np.float32)


def results_to_vector(results) -> tuple[np.ndarray, np.ndarray]:
    """A MediaPipe Holistic result to ((1662,) float32 vector, (4,) bool detected), both in PARTS order.

    A part MediaPipe did not find is zeros, as in the original project; pose keeps visibility as 4th value.
    """
    arrays = {
        "face": _landmarks_to_array(results.face_landmarks, FACE_POINTS, False, "face"),
        "pose": _landmarks_to_array(results.pose_landmarks, POSE_POINTS, True, "pose"),
        "left_hand": _landmarks_to_array(results.left_hand_landmarks, HAND_POINTS, False, "left_hand"),
        "right_hand": _landmarks_to_array(results.right_hand_landmarks, HAND_POINTS, False, "right_hand"),
    }
    found = (results.face_landmarks, results.pose_landmarks, results.left_hand_landmarks,
             results.right_hand_landmarks)
    detected = np.array([landmarks is not None for landmarks in found], dtype=bool)
    return join_parts(**arrays), detected


def _check_frame(frame: np.ndarray) -> np.ndarray:
    """Check one RGB uint8 (H, W, 3) frame and return it C-contiguous (as MediaPipe needs)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"a frame must be RGB (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 (0..255), got {frame.dtype}; convert with "
                         "(frame * 255).astype(np.uint8) if it holds 0..1 floats")
    return np.ascontiguousarray(frame)


class HolisticExtractor:
    """MediaPipe Holistic as a context manager: RGB uint8 frames in, (T, 1662) keypoints and (T, 4) detected
    flags out.

    Run it on the full-resolution frames (``Clip.frames``), not on the 64x64 thumbnails: on the real
    ASL clips MediaPipe finds faces in 96% of frames at full resolution but 19% at 64x64 (right hand
    65% -> 36%), so frames smaller than ``MIN_FRAME_SIDE`` pixels on a side give a warning.

    ``static_image_mode=False`` (video mode, as the original project) tracks landmarks from one frame
    to the next; :meth:`extract` resets the tracking at the start of each clip. ``True`` detects afresh
    in every frame (slower, for unrelated images). Only ``model_complexity=1`` works offline: its pose
    model ships inside the mediapipe wheel, while 0 and 2 are downloaded at first use.

    ``max_side`` > 0 shrinks each frame (aspect ratio kept, never enlarged) so that its longer side is at
    most that many pixels before MediaPipe sees it: the landmarks are normalised to the frame, so they
    mean the same on the full-resolution frame (hand crops are still cut from it). 0 = full resolution.
    """

    def __init__(self, static_image_mode: bool = False, model_complexity: int = 1,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 warn_small_frames: bool = True, max_side: int = 0) -> None:
        if int(max_side) < 0:
            raise ValueError("max_side must be 0 (full resolution) or a positive number of pixels, got "
                             f"{max_side}")
        self.max_side = int(max_side)
        self.static_image_mode = static_image_mode
        self.model_complexity = model_complexity
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.warn_small_frames = warn_small_frames
        self._holistic = None
        self._warned_small = False

    def open(self) -> HolisticExtractor:
        """Start the MediaPipe graph (done automatically on first use)."""
        if self._holistic is None:
            from utils.config import native_logs_hidden

            with native_logs_hidden():  # MediaPipe's start-up notices on standard error
                self._holistic = _make_holistic(self.static_image_mode, self.model_complexity,
                                                self.min_detection_confidence, self.min_tracking_confidence)
        return self

    def close(self) -> None:
        """Stop the MediaPipe graph and free its memory."""
        from utils.config import native_logs_hidden

        if self._holistic is not None:
            with native_logs_hidden():
                self._holistic.close()
            self._holistic = None

    def reset(self) -> None:
        """Forget the landmarks tracked so far (start of a new clip in video mode)."""
        from utils.config import native_logs_hidden

        if self._holistic is not None and not self.static_image_mode:
            with native_logs_hidden():  # a new graph run loads its models again, with notices
                self._holistic.reset()

    def __enter__(self) -> HolisticExtractor:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _warn_if_small(self, frame: np.ndarray) -> None:
        """Warn once when frames are too small for MediaPipe to find faces and hands reliably."""
        if self.warn_small_frames and not self._warned_small and min(frame.shape[:2]) < MIN_FRAME_SIDE:
            import warnings

            self._warned_small = True
            warnings.warn(f"MediaPipe is given {frame.shape[1]}x{frame.shape[0]} frames: below "
                          f"{MIN_FRAME_SIDE} px it misses most faces and hands (real ASL clips: faces 96% -> "
                          "19%, right hand 65% -> 36% at 64x64). Pass the full-resolution frames "
                          f"(Clip.frames), not the thumbnails.", UserWarning, stacklevel=3)

    def extract_frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of one RGB uint8 frame: ((1662,) float32, (4,) bool detected); nobody found gives
        zeros."""
        from utils.data.video import shrink_frame

        frame = np.ascontiguousarray(shrink_frame(_check_frame(frame), self.max_side))
        self._warn_if_small(frame)
        from utils.config import native_logs_hidden

        self.open()
        with native_logs_hidden():  # the graph prints notices when it loads a model (a hand, a face)
            return results_to_vector(self._holistic.process(frame))

    def extract(self, frames: np.ndarray, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of a clip (T, H, W, 3) RGB uint8: ((T, 1662) float32, (T, 4) bool detected)."""
        if len(frames) == 0:
            return np.zeros((0, KEYPOINT_DIM), dtype=np.float32), np.zeros((0, len(PARTS)), dtype=bool)
        self.open()
        self.reset()
        if progress:
            from tqdm.auto import tqdm

            frames = tqdm(frames, desc="MediaPipe", unit="frame", leave=False)
        vectors, detected = zip(*(self.extract_frame(frame) for frame in frames))
        return np.stack(vectors), np.stack(detected)


def import_mediapipe():
    """``import mediapipe``, without letting it import TensorFlow when TensorFlow is not loaded yet.

    mediapipe imports TensorFlow when it is installed, only for its documentation tools and file helpers, and
    falls back without it: that import alone costs about 3 CPU-seconds (2-core machine). TensorFlow is kept
    out just for the duration of this import; a later ``import tensorflow`` works as usual."""
    import sys

    if "mediapipe" in sys.modules or "tensorflow" in sys.modules:
        import mediapipe

        return mediapipe
    sys.modules["tensorflow"] = None  # `import tensorflow` raises ModuleNotFoundError meanwhile
    try:
        import mediapipe
    finally:
        if "tensorflow" in sys.modules and sys.modules["tensorflow"] is None:
            del sys.modules["tensorflow"]
    return mediapipe


def _make_holistic(static_image_mode: bool, model_complexity: int, min_detection_confidence: float,
                   min_tracking_confidence: float):
    """Create mediapipe's Holistic solution, explaining the usual failures."""
    from utils.errors import CourseError

    try:
        mp = import_mediapipe()
    except ImportError as error:
        raise CourseError(
            "mediapipe is not installed: run `make setup` (or pip install -r requirements.txt)"
        ) from error
    try:
        return mp.solutions.holistic.Holistic(static_image_mode=static_image_mode,
                                              model_complexity=model_complexity,
                                              min_detection_confidence=min_detection_confidence,
                                              min_tracking_confidence=min_tracking_confidence)
    except Exception as error:
        raise CourseError(f"MediaPipe Holistic(model_complexity={model_complexity}) could not start: "
                          f"{error}. Only model_complexity=1 works offline (0 and 2 download a model at "
                          "first use).") from error


def extract_keypoints(frames: np.ndarray, static_image_mode: bool = False, model_complexity: int = 1,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run MediaPipe Holistic once over a clip (T, H, W, 3) RGB uint8: ((T, 1662) float32, (T, 4) bool
    detected)."""
    with HolisticExtractor(static_image_mode=static_image_mode,
                           model_complexity=model_complexity) as extractor:
        return extractor.extract(frames, progress=progress)


# ----------------------------------------------------------------------------- drawing
HAND_BOX_COLORS = ((0, 200, 0), (230, 0, 0))  # the left hand's crop square green, the right one's red (RGB)


def _auto_thickness(height: int, width: int) -> int:
    """A line thickness that reads well at this frame size (1 px up to ~300 px, then thicker)."""
    return max(1, round(min(height, width) / 300))


def _to_pixels(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised (x, y) landmark coordinates to integer pixel positions (clipped far outside the frame)."""
    pixels = points[:, :2] * np.array([width, height], dtype=np.float64)
    limit = 4 * max(height, width)
    return np.clip(np.round(pixels), -limit, limit).astype(np.int32)


def draw_landmarks(frame: np.ndarray, vector: np.ndarray, parts: tuple[str, ...] = PARTS,
                   thickness: int | None = None, copy: bool = True,
                   min_visibility: float = 0.5) -> np.ndarray:
    """Overlay one frame's (1662,) landmarks (our order) on an RGB uint8 frame of any size: bones and joints,
    a colour per part.

    Coordinates are normalised, so the frame's size does not matter. Parts that are all zeros (not
    found) are skipped, and so are pose landmarks whose visibility is below ``min_visibility``
    (MediaPipe's own drawing uses 0.5). The face is drawn as its outline (``FACE_CONNECTIONS``).
    ``copy=False`` draws into ``frame`` itself. Thickness defaults to one that suits the frame size.
    """
    import cv2

    if not copy and not (isinstance(frame,
                                    np.ndarray) and frame.flags.c_contiguous and frame.flags.writeable):
        raise ValueError("copy=False draws into the frame itself, which must be a writable C-contiguous "
                         "array; pass np.ascontiguousarray(frame) or use copy=True")
    frame = _check_frame(frame)
    vector = _check_last_dim(vector, "vector")
    if vector.ndim != 1:
        raise ValueError(f"draw_landmarks takes one frame's vector (1662,), got shape {vector.shape}; index "
                         "a frame")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    canvas = frame.copy() if copy else frame
    height, width = canvas.shape[:2]
    thickness = int(thickness) if thickness else _auto_thickness(height, width)
    landmarks = split_parts(vector.astype(np.float64))
    for part in parts:
        points = landmarks[part]
        if not np.any(points):
            continue
        visible = points[:, 3] >= min_visibility if part == "pose" else np.ones(len(points), dtype=bool)
        pixels = _to_pixels(points, height, width)
        color = PART_COLORS[part]
        for start, end in PART_CONNECTIONS[part]:
            if visible[start] and visible[end]:
                cv2.line(canvas, tuple(map(int, pixels[start])), tuple(map(int, pixels[end])), color,
                         thickness, cv2.LINE_AA)
        if part != "face":  # 468 face points would hide the face; its outline is enough
            for (x, y), keep in zip(pixels, visible):
                if keep:
                    cv2.circle(canvas, (int(x), int(y)), thickness + 1, color, -1, cv2.LINE_AA)
    return canvas


def draw_hand_boxes(frame: np.ndarray, vector: np.ndarray, thickness: int | None = None,
                    margin: float = HAND_CROP_MARGIN) -> np.ndarray:
    """A copy of an RGB frame with the squares that :func:`hand_crops` cuts drawn on it (left hand green,
    right red)."""
    import cv2

    canvas = _check_frame(frame).copy()
    height, width = canvas.shape[:2]
    thickness = int(thickness) if thickness else _auto_thickness(height, width) + 1
    for (centre_x, centre_y, side), color in zip(hand_boxes(vector, width, height, margin), HAND_BOX_COLORS):
        if side > 0:
            half = side / 2
            cv2.rectangle(canvas, (int(round(centre_x - half)), int(round(centre_y - half))),
                          (int(round(centre_x + half)), int(round(centre_y + half))), color, thickness)
    return canvas


def draw_skeleton_image(vector: np.ndarray, image_size: int = 256,
                        background: tuple[int, int, int] = (255, 255, 255), parts: tuple[str, ...] = PARTS,
                        thickness: int | None = None) -> np.ndarray:
    """Draw one frame's (1662,) landmarks on a blank (image_size, image_size, 3) RGB uint8 canvas (for
    keypoint-only data)."""
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    canvas = np.empty((int(image_size), int(image_size), 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    return draw_landmarks(canvas, vector, parts=parts, thickness=thickness, copy=False)


def draw_prediction(frame: np.ndarray, top: list[tuple[str, float]],
                    vector: np.ndarray | None = None) -> np.ndarray:
    """An RGB frame with the landmarks (if a vector is given), the best sign and a bar per (label,
    probability) drawn on it."""
    import cv2

    canvas = draw_landmarks(frame,
                            vector) if vector is not None else np.array(frame, dtype=np.uint8, copy=True)
    if not top:
        return canvas
    height, width = canvas.shape[:2]
    scale = max(0.4, min(width, height) / 480)
    line = int(28 * scale)
    panel_width = int(min(width, 260 * scale))
    panel_height = line * (len(top) + 1) + line // 2
    overlay = canvas.copy()
    cv2.rectangle(overlay, (0, 0), (panel_width, panel_height), (0, 0, 0), -1)
    canvas = cv2.addWeighted(overlay, 0.55, canvas, 0.45, 0)
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(scale * 1.5)))
    cv2.putText(canvas, f"{top[0][0]} {top[0][1]:.2f}", (6, line), font, 0.8 * scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    bar_left, bar_width = int(panel_width * 0.45), int(panel_width * 0.5)
    for rank, (label, probability) in enumerate(top, start=1):
        y = line * (rank + 1)
        cv2.putText(canvas, label[:12], (6, y), font, 0.55 * scale, (230, 230, 230), max(1, thick - 1),
                    cv2.LINE_AA)
        top_left, bottom_right = (bar_left, y - int(line * 0.6)), (bar_left + int(bar_width * probability), y)
        cv2.rectangle(canvas, top_left, bottom_right, (60, 200, 90) if rank == 1 else (150, 150, 150), -1)
        cv2.putText(canvas, f"{probability:.2f}", (bar_left + 3, y - 3), font, 0.45 * scale, (255, 255, 255),
                    1, cv2.LINE_AA)
    return canvas
