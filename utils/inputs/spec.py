"""What a model takes and the one way raw clip data becomes model inputs.

An :class:`InputSpec` says which inputs a model takes (``keypoints``, ``frames``, ``hands``), its clip length
T (``num_frames``), its frame size S (``image_size``), the keypoint preprocessing and frame mode it was
trained with, and how its training clips were sampled. It is built from a run's ``run.json``
(:meth:`InputSpec.from_run`) or from a model name and its configuration (:meth:`InputSpec.from_config`).

Every path that feeds a model goes through :func:`clip_inputs` (raw clips -> T frames, S pixels ->
preprocessing): training (:func:`raw_inputs` then augmentation then :func:`finish_inputs`), evaluation,
cross-validation, ``predict``, the webcam and export. Nothing else resamples, resizes or normalises.
Every step here is plain NumPy/OpenCV on whole arrays; :mod:`utils.tf_preprocessing` is its TensorFlow twin
(same values within 1e-5, tested), which :mod:`utils.export` puts inside the exported model.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from utils.errors import FeatureFileError
from utils.inputs import preprocessing


@dataclass(frozen=True)
class InputSpec:
    """What a model takes and how its clips were prepared: inputs, T, S, keypoint options, training clip
    sampling."""

    num_frames: int  # T: frames per clip the model sees
    image_size: int  # S: frame side in pixels the model sees
    # None: every input the features have (keypoints, and frames if stored)
    inputs: tuple[str, ...] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)  # keypoint options and the frame mode
    model: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)  # how the training clips were sampled (run.json)
    hand_size: int = 32  # C: side in pixels of the hand crops the model sees (input "hands")

    @property
    def options(self) -> dict[str, Any]:
        """The preprocessing options with every default filled in."""
        return preprocessing.resolve_options(self.preprocessing)

    @property
    def frame_mode(self) -> str:
        """'rgb' (frames as they are) or 'diff' (differences of consecutive frames)."""
        return self.options["frames"]

    @property
    def clip_frames(self) -> int:
        """Frames per clip of the features file the model was trained on (extract's T), else the model's T."""
        return int(self.sampling.get("clip_frames") or self.num_frames)

    @property
    def thumbnail_size(self) -> int:
        """Side of the stored thumbnails the model's frames were resized from, else the model's S."""
        return int(self.sampling.get("thumbnail_size") or self.image_size)

    @property
    def crop_size(self) -> int:
        """Side of the stored hand crops the model's crops were resized from, else the model's hand_size."""
        return int(self.sampling.get("hand_crop_size") or self.hand_size)

    @property
    def draws_landmarks(self) -> bool:
        """Whether the frames get the clip's landmarks drawn on them (then the keypoints are needed too)."""
        return bool(self.options["draw_landmarks"])

    @property
    def mediapipe_size(self) -> int | None:
        """Longer side of the frames MediaPipe saw when the training features were extracted (0 = full
        resolution), None when they did not come from MediaPipe (synthetic stored keypoints) or are
        unknown."""
        size = self.sampling.get("mediapipe_size")
        return None if size is None else int(size)

    def window_frames(self, fps: float) -> int:
        """Source frames of a video at `fps` that span what one training clip spanned (its median duration).

        Falls back to the training clips' median length in frames (no frame rate known, e.g. MP_Data),
        then to the features file's T, then to the model's T (a run.json without ``sampling``).
        """
        seconds, frames = self.sampling.get("source_seconds"), self.sampling.get("source_frames")
        if seconds and fps and np.isfinite(fps) and fps > 0:
            return max(1, int(round(float(seconds) * float(fps))))
        return max(1, int(round(float(frames)))) if frames else self.clip_frames

    def wants(self, name: str, available: Sequence[str] = ("keypoints", "frames")) -> bool:
        """Whether the model takes input `name` (when inputs is None: whether it is available)."""
        return name in (self.inputs if self.inputs is not None else available)

    @classmethod
    def from_run(cls, run_info: Mapping[str, Any]) -> InputSpec:
        """The spec of a trained run from its run.json dict."""
        from utils import models

        config = run_info.get("config", run_info)
        inputs = run_info.get("inputs") or (
            models.model_inputs(run_info["model"]) if "model" in run_info else None
        )
        return cls(num_frames=int(config["num_frames"]), image_size=int(config["image_size"]),
                   inputs=tuple(inputs) if inputs else None,
                   preprocessing=dict(config.get("preprocessing") or {}), model=run_info.get("model"),
                   sampling=dict(run_info.get("sampling") or {}), hand_size=int(config.get("hand_size", 32)))

    @classmethod
    def from_config(cls, model_name: str | None, config: Any) -> InputSpec:
        """The spec of a model and its ModelConfig (model_name None: every input the features have)."""
        from utils import models

        return cls(num_frames=int(config.num_frames), image_size=int(config.image_size),
                   inputs=models.model_inputs(model_name, config) if model_name else None,
                   preprocessing=dict(config.preprocessing or {}), model=model_name,
                   hand_size=int(getattr(config, "hand_size", 32)))


def as_spec(spec: Any) -> InputSpec:
    """An InputSpec from an InputSpec, a run.json dict, a (model_name, ModelConfig) pair or a bare
    ModelConfig."""
    if isinstance(spec, InputSpec):
        return spec
    if isinstance(spec, tuple):
        return InputSpec.from_config(spec[0], spec[1])
    if isinstance(spec, Mapping):
        return InputSpec.from_run(spec)
    return InputSpec.from_config(None, spec)


# ----------------------------------------------------------------------------- the one input path
def sample_clips(raw: Mapping[str, np.ndarray], spec: Any) -> dict[str, np.ndarray]:
    """Raw clips resampled in time to the spec's T, frames resized to its S and hand crops to its C
    (cv2.INTER_AREA)."""
    spec = as_spec(spec)
    out: dict[str, np.ndarray] = {}
    if "keypoints" in raw:
        out["keypoints"] = preprocessing.resample_time(np.asarray(raw["keypoints"], np.float32),
                                                       spec.num_frames)
    if "frames" in raw:
        frames = preprocessing.resample_time(np.asarray(raw["frames"]), spec.num_frames)
        if spec.draws_landmarks:  # on the frames as stored (the original drew on its 64x64 thumbnails)
            if "keypoints" not in out:
                raise ValueError("draw_landmarks needs the clips' keypoints beside their frames")
            frames = preprocessing.draw_clip_landmarks(frames, out["keypoints"])
            if not spec.wants("keypoints", tuple(raw)):  # a frame-only model: the keypoints were only drawn
                del out["keypoints"]
        out["frames"] = preprocessing.resize_frames(frames, spec.image_size)
    if "hands" in raw:
        out["hands"] = resize_hand_crops(
            preprocessing.resample_time(np.asarray(raw["hands"]), spec.num_frames), spec.hand_size
        )
    return out


def resize_hand_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Hand crops (n, T, 2, C, C, 3) resized to (n, T, 2, size, size, 3); unchanged when already that size."""
    if crops.shape[3] == size:
        return crops
    flat = preprocessing.resize_frames(crops.reshape(len(crops), -1, *crops.shape[3:]), size)
    return flat.reshape(*crops.shape[:3], size, size, crops.shape[-1])


def finish_inputs(raw: Mapping[str, np.ndarray], spec: Any) -> dict[str, np.ndarray]:
    """Apply the spec's preprocessing to sampled inputs: keypoint options, and frame differences
    (``frames="diff"`` or ``"first"``)."""
    options = as_spec(spec).preprocessing
    out = dict(raw)
    if "keypoints" in out:
        out["keypoints"] = preprocessing.preprocess_keypoints(out["keypoints"], options)
    for name in ("frames", "hands"):  # frame differences apply to whole frames and hand crops alike
        if name in out:
            out[name] = preprocessing.preprocess_frames(out[name], options)
    return out


def clip_inputs(raw: Mapping[str, np.ndarray], spec: Any) -> dict[str, np.ndarray]:
    """Model inputs of raw clips {'keypoints': (n, t, 1662), 'frames': (n, t, H, W, 3) uint8}: T, S,
    preprocessing."""
    return finish_inputs(sample_clips(raw, spec), spec)


# ----------------------------------------------------------------------------- clips of a features file
def training_sampling(features: Any, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """How the training clips were sampled, for run.json: T and S of the features file, and the median length
    of the source clips in frames and seconds (None where the features file does not say)."""
    indices = np.asarray(indices, dtype=np.int64)
    sampling: dict[str, Any] = {
        "clip_frames": int(features.keypoints.shape[1]),
        "thumbnail_size": None if features.frames is None else int(features.frames.shape[2]),
        "hand_crop_size": None
        if getattr(features, "hand_crops", None) is None
        else int(features.hand_crops.shape[3]),
        "source_frames": None,
        "source_fps": None,
        "source_seconds": None,
        "mediapipe_size": features_mediapipe_size(getattr(features, "meta", None) or {}),
    }
    source_frames = getattr(features, "source_frames", None)
    if source_frames is None or len(indices) == 0:
        return sampling
    frames = np.asarray(source_frames, dtype=np.float64)[indices]
    sampling["source_frames"] = float(np.median(frames))
    fps = getattr(features, "source_fps", None)
    fps = np.full(len(indices), np.nan) if fps is None else np.asarray(fps, dtype=np.float64)[indices]
    known = np.isfinite(fps) & (fps > 0)
    if known.any():
        sampling["source_fps"] = float(np.median(fps[known]))
        sampling["source_seconds"] = float(np.median(frames[known] / fps[known]))
    return sampling


def features_mediapipe_size(meta: Mapping[str, Any]) -> int | None:
    """The longer side MediaPipe saw when a features file was extracted, from its meta: ``mediapipe_size``;
    0 (full resolution) for a file extracted with MediaPipe before that was recorded; None without
    MediaPipe."""
    if meta.get("mediapipe_size") is not None:
        return int(meta["mediapipe_size"])
    return 0 if meta.get("keypoints_from") in ("mediapipe", "mixed") else None


def features_name(features: Any) -> str:
    """The file a FeatureSet came from, for messages."""
    meta = getattr(features, "meta", None) or {}
    return str(meta.get("path") or meta.get("file") or getattr(features, "path", None) or "the features file")


def stored_arrays(features: Any, spec: Any) -> dict[str, Any]:
    """The whole stored arrays (keypoints, frames, hands) the spec's model takes, not indexed, so not read:
    from a features store they are memory maps that read only the clips later indexed (one batch at a
    time)."""
    spec = as_spec(spec)
    available = ("keypoints", "frames") if features.frames is not None else ("keypoints",)
    out: dict[str, Any] = {}
    if spec.wants("keypoints", available) or (spec.draws_landmarks and spec.wants("frames", available)):
        out["keypoints"] = features.keypoints
    if spec.wants("frames", available):
        if features.frames is None:
            raise FeatureFileError(f"{features_name(features)} has no frames: it was imported from keypoints "
                                   f"only (MP_Data) — train --model lstm, or extract from videos")
        out["frames"] = features.frames
    if spec.wants("hands", available):
        if getattr(features, "hand_crops", None) is None:
            raise FeatureFileError(
                f"{features_name(features)} has no hand crops, which this model takes: "
                f"extract it again with `python -m utils extract <dataset> --hand-size 32`"
            )
        out["hands"] = features.hand_crops
    return out


def stored_clips(features: Any, spec: Any,
                 indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The stored keypoints and/or frames the spec's model takes, of the clips at indices (default all),
    unchanged."""
    indices = np.arange(len(features.labels)) if indices is None else np.asarray(indices, dtype=np.int64)
    return {name: np.asarray(values[indices], np.float32 if name == "keypoints" else None)
            for name, values in stored_arrays(features, spec).items()}


def raw_inputs(features: Any, spec: Any,
               indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Keypoints (n, T, 1662) and/or frames (n, T, S, S, 3) of the chosen clips, resampled to the spec's T and
    S."""
    return sample_clips(stored_clips(features, spec, indices), spec)


def mirror_clips(raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw clips mirrored left/right, as the ``mirror`` augmentation does: keypoints (hands swapped), frames
    flipped, hand crops flipped and swapped (the left hand's crop becomes the right one's)."""
    out = dict(raw)
    if "keypoints" in out:
        out["keypoints"] = preprocessing.mirror_keypoints(np.asarray(out["keypoints"], np.float32))
    if "frames" in out:
        out["frames"] = preprocessing.mirror_frames(np.asarray(out["frames"]))
    if "hands" in out:
        out["hands"] = preprocessing.mirror_hand_crops(np.asarray(out["hands"]))
    return out


def prepare_inputs(features: Any, spec: Any, indices: Sequence[int] | np.ndarray | None = None,
                   mirrored: bool = False) -> dict[str, np.ndarray]:
    """Model inputs {'keypoints': (n, T, D'), 'frames': (n, T, S, S, 3)} for the clips at indices (default
    all).

    ``spec``: an :class:`InputSpec`, a run's ``run.json`` dict or a ``(model_name, ModelConfig)`` pair
    (then only the inputs that model takes are built), or a bare ModelConfig (then keypoints, and frames
    when the features have them). ``mirrored``: the clips mirrored left/right first (:func:`mirror_clips`),
    the second view of test-time flip averaging.
    """
    clips = stored_clips(features, spec, indices)
    return clip_inputs(mirror_clips(clips) if mirrored else clips, spec)
