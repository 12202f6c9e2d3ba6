"""Keypoint normalisation, face selection, mirroring, velocities and training-time augmentation.

Pure NumPy on arrays of MediaPipe Holistic vectors (see :mod:`utils.data.keypoints` for the 1662 layout);
nothing here reads or writes files. Training, evaluation and inference all call
:func:`preprocess_keypoints` with the same ``options`` dict (a model configuration's
``preprocessing``), so a trained model always sees its inputs prepared one way:

=============  =====================================================================================
option         effect =============
=====================================================================================
``mirror``     canonical handedness: clips whose dominant hand is the left one are mirrored, so a
               left-handed signer looks like a right-handed one (:func:`canonicalize_handedness`)
``normalize``  per frame, centre on the shoulders' midpoint and divide by the shoulder width
               (:func:`normalize_keypoints`): signer position and distance to the camera drop out
``face``       ``"full"`` (468 points), ``"thin"`` (:data:`THIN_FACE_POINTS`, 69) or ``"drop"``
``velocity``   frame-to-frame differences appended to each frame's vector (doubles its size)
``frames``     frame models' input: ``"rgb"`` (raw frames), ``"diff"`` (x_t - x_{t-1}, first step 0:
               static appearance such as clothes and background drops out; :func:`preprocess_frames`) or
               ``"first"`` (x_t - x_0, the change since the clip's first frame: the background drops out too,
               but a hand that has arrived somewhere and stays there still shows)
``pose``       ``"full"`` (33 points) or ``"upper"`` (:data:`UPPER_POSE_POINTS`: nose, shoulders, arms, hands)
``z``          keep depth (z, and the pose's visibility); ``False`` keeps x and y only
``hand_shape`` append each hand in wrist-local coordinates divided by the palm size
               (:func:`hand_shape`): the hand's shape, whatever its position, size and the signer's distance
``presence``   append two flags per frame: left hand seen, right hand seen
``fill_gaps``  fill hand drop-outs of at most this many frames by linear interpolation
               (:func:`fill_hand_gaps`)
``hand_angles`` append each hand's finger joint bends and fingertip distances (:func:`hand_angles`):
               hand shape that does not change when the hand turns in the image plane
``draw_landmarks`` frame models: draw the clip's landmarks onto its frames first
               (:func:`draw_clip_landmarks`), as the original's ``keypoint_generation.py`` saved them
               (it can leak the skeleton into the pixels)
=============  =====================================================================================

``mirror`` takes ``False``, ``"motion"`` (the hand that travels further is the dominant one, see
:func:`dominant_hand_scores`) or ``"height"`` (the hand held higher on average, the older rule); ``True``
means ``"motion"``.

Every option has a TensorFlow twin in :mod:`utils.inputs.tf_preprocessing` (the exported model prepares raw
keypoints inside its graph): a new option needs one there too, or export stops with a message naming it.

Missing parts (MediaPipe found no hand in that frame) are all zeros in the raw vectors and stay zeros
through every step, so the model can still tell "not seen" from "seen at the origin".

One module per concern, in the order they build on each other:

* :mod:`.normalise` - the options, the 1662 layout in parts, normalisation, the face and pose points kept;
* :mod:`.hands` - hand handling: mirroring and the dominant hand, gap filling, hand shape and finger angles;
* :mod:`.pipeline` - :func:`preprocess_keypoints` and :func:`preprocess_frames`, velocities, resampling time;
* :mod:`.augment` - training-time augmentation (:func:`augment_clips`, :func:`augment_batch`).

Every name below is importable from this package: ``from utils.inputs import preprocessing`` then
``preprocessing.preprocess_keypoints(kp, options)``.
"""

from utils.inputs.preprocessing.augment import (
                                                  NO_AUGMENTATION,
                                                  augment_batch,
                                                  augment_clips,
                                                  drop_hand_spans,
                                                  jitter_colors,
                                                  jitter_fingers,
                                                  random_crops,
                                                  resolve_augmentation,
)
from utils.inputs.preprocessing.hands import (
                                                  FINGER_CHAINS,
                                                  FINGERTIPS,
                                                  HAND_ANGLE_DIM,
                                                  HAND_WRIST,
                                                  MIN_PALM_SIZE,
                                                  PALM_POINTS,
                                                  POSE_MIRROR_ORDER,
                                                  POSE_MIRROR_PAIRS,
                                                  canonicalize_handedness,
                                                  dominant_hand_scores,
                                                  fill_hand_gaps,
                                                  hand_angles,
                                                  hand_height,
                                                  hand_shape,
                                                  left_dominant,
                                                  mirror_frames,
                                                  mirror_hand_crops,
                                                  mirror_keypoints,
)
from utils.inputs.preprocessing.normalise import (
                                                  DEFAULT_OPTIONS,
                                                  FACE_MODES,
                                                  FALLBACK_CENTRE,
                                                  FALLBACK_SHOULDER_WIDTH,
                                                  FRAME_MODES,
                                                  MIN_SHOULDER_WIDTH,
                                                  MIRROR_MODES,
                                                  POSE_MODES,
                                                  PRESENCE_POINTS,
                                                  THIN_FACE_BROWS,
                                                  THIN_FACE_EYES,
                                                  THIN_FACE_LIPS,
                                                  THIN_FACE_NOSE,
                                                  THIN_FACE_POINTS,
                                                  UPPER_POSE_POINTS,
                                                  check_keypoints,
                                                  face_indices,
                                                  normalize_keypoints,
                                                  part_presence,
                                                  pose_indices,
                                                  resolve_options,
                                                  select_face,
                                                  select_points,
                                                  shoulder_reference,
)
from utils.inputs.preprocessing.pipeline import (
                                                  add_velocity,
                                                  draw_clip_landmarks,
                                                  output_dim,
                                                  preprocess_frames,
                                                  preprocess_keypoints,
                                                  resample_time,
                                                  resize_frames,
)

__all__ = ["DEFAULT_OPTIONS", "FACE_MODES", "FALLBACK_CENTRE", "FALLBACK_SHOULDER_WIDTH", "FINGERTIPS",
           "FINGER_CHAINS", "FRAME_MODES", "HAND_ANGLE_DIM", "HAND_WRIST", "MIN_PALM_SIZE",
           "MIN_SHOULDER_WIDTH", "MIRROR_MODES", "NO_AUGMENTATION", "PALM_POINTS", "POSE_MIRROR_ORDER",
           "POSE_MIRROR_PAIRS", "POSE_MODES", "PRESENCE_POINTS", "THIN_FACE_BROWS", "THIN_FACE_EYES",
           "THIN_FACE_LIPS", "THIN_FACE_NOSE", "THIN_FACE_POINTS", "UPPER_POSE_POINTS", "add_velocity",
           "augment_batch", "augment_clips", "canonicalize_handedness", "check_keypoints",
           "dominant_hand_scores", "draw_clip_landmarks", "drop_hand_spans", "face_indices",
           "fill_hand_gaps", "hand_angles", "hand_height", "hand_shape", "jitter_colors", "jitter_fingers",
           "left_dominant", "mirror_frames", "mirror_hand_crops", "mirror_keypoints", "normalize_keypoints",
           "output_dim", "part_presence", "pose_indices", "preprocess_frames", "preprocess_keypoints",
           "random_crops", "resample_time", "resize_frames", "resolve_augmentation", "resolve_options",
           "select_face", "select_points", "shoulder_reference"]
