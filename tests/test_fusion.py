"""Frames, hand crops and keypoints flipped together; the fused model's branches, fusions and modality
dropout."""
from __future__ import annotations

import numpy as np
import pytest

from utils.data import keypoints as K
from utils.inputs.preprocessing import augment_clips


def two_hands_clip(num_frames: int = 3, height: int = 72, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Noisy frames with an asymmetric pattern at each hand, and keypoints placing both hands there."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    vectors = np.zeros((num_frames, K.KEYPOINT_DIM), np.float32)
    angles = np.linspace(0, 2 * np.pi, 21, endpoint=False)
    for t in range(num_frames):
        for hand, (x, y, r) in ((K.LEFT_HAND, (0.31 + 0.05 * t, 0.43, 0.071)),
                                (K.RIGHT_HAND, (0.67, 0.58 - 0.04 * t, 0.093))):
            points = np.stack([x + r * np.cos(angles), y + r * np.sin(angles), np.zeros(21)], axis=1)
            vectors[t, hand] = points.reshape(-1)
    return frames, vectors


def test_flip_mirrors_frames_swaps_and_mirrors_hand_crops_and_mirrors_keypoints() -> None:
    frames, vectors = two_hands_clip()
    crops = K.hand_crops(frames, vectors, size=16)
    flipped_kp, flipped_frames, flipped_crops = augment_clips(vectors[None], frames[None],
                                                              np.random.default_rng(0), {"mirror": 1.0},
                                                              hand_crops=crops[None])
    assert np.array_equal(flipped_frames[0], frames[:, :, ::-1])
    assert np.array_equal(flipped_crops[0, :, 1], crops[:, 0, :, ::-1]), "right crop = mirrored left crop"
    assert np.array_equal(flipped_crops[0, :, 0], crops[:, 1, :, ::-1])
    # the crops cut afresh from the flipped frames at the flipped keypoints are the same crops
    recut = K.hand_crops(flipped_frames[0], flipped_kp[0], size=16)
    assert np.abs(recut.astype(int) - flipped_crops[0].astype(int)).mean() < 2.0
    unflipped = augment_clips(vectors[None], frames[None], np.random.default_rng(0), {"mirror": 0.0},
                              hand_crops=crops[None])
    assert np.array_equal(unflipped[2][0], crops)
    assert len(augment_clips(vectors[None], frames[None], np.random.default_rng(0), {"mirror": 1.0})) == 2


# ----------------------------------------------------------------------------- models
keras = pytest.importorskip("keras")

from utils import models  # noqa: E402

NUM_CLASSES, KEYPOINT_DIM = 4, 10


def fused_config(**changes: object) -> models.ModelConfig:
    """A tiny fused configuration (T=4, 8x8 frames, 6x6 hand crops)."""
    base = models.get_config("fused", "small").replace(num_frames=4, image_size=8, hand_size=6,
                                                       lstm_units=(6,),
                                                        convlstm_filters=(3,), kernel_size=3, head_units=(5,))
    return base.replace(**changes)


def fused_inputs(config: models.ModelConfig, batch: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every input name the configuration's fused model takes."""
    rng = np.random.default_rng(seed)
    t, s, c = config.num_frames, config.image_size, config.hand_size
    every = {"keypoints": rng.normal(size=(batch, t, KEYPOINT_DIM)).astype("float32"),
             "frames": rng.integers(0, 256, (batch, t, s, s, 3)).astype("float32"),
             "hands": rng.integers(0, 256, (batch, t, 2, c, c, 3)).astype("float32")}
    return {name: every[name] for name in models.model_inputs("fused", config)}


@pytest.mark.parametrize("fusion", models.FUSIONS)
@pytest.mark.parametrize("frame_input", models.FRAME_INPUTS)
def test_every_frame_input_and_fusion_builds_and_gives_probabilities(fusion: str, frame_input: str) -> None:
    config = fused_config(fusion=fusion, frame_input=frame_input)
    model = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    assert [t.name for t in model.inputs] == list(models.model_inputs("fused", config))
    probabilities = np.asarray(model.predict_on_batch(fused_inputs(config)))
    assert probabilities.shape == (5, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("fusion", models.FUSIONS)
def test_blank_frames_still_give_an_answer_per_clip(fusion: str) -> None:
    config = fused_config(fusion=fusion, frame_input="hands")
    model = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    inputs = fused_inputs(config)
    inputs["hands"] = np.zeros_like(inputs["hands"])
    probabilities = np.asarray(model.predict(inputs, verbose=0))
    keypoints_only = models.build_model("lstm", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    assert probabilities.shape == (5, keypoints_only.output.shape[-1])
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_logit_fusion_weight_zero_gives_the_keypoint_branch_answer() -> None:
    config = fused_config(fusion="logits", frame_input="frames")
    model = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    fusion = model.get_layer("probabilities")
    # softplus: ~30 for keypoints, ~0 for frames
    fusion.branch_weights.assign(np.array([30.0, -30.0], "float32"))
    inputs = fused_inputs(config)
    keypoint_branch = models.branch_models(model)["keypoints"]
    expected = np.asarray(keypoint_branch.predict(inputs["keypoints"], verbose=0)).argmax(axis=1)
    fused = np.asarray(model.predict(inputs, verbose=0)).argmax(axis=1)
    inputs["frames"] = np.zeros_like(inputs["frames"])
    np.testing.assert_array_equal(fused, expected)
    np.testing.assert_array_equal(np.asarray(model.predict(inputs, verbose=0)).argmax(axis=1), expected)
    assert set(models.branch_models(model)) == {"keypoints", "frames"}


def test_late_fusion_model_saves_and_loads(tmp_path) -> None:
    config = fused_config(fusion="logits", frame_input="both")
    model = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    inputs = fused_inputs(config)
    np.testing.assert_allclose(np.asarray(loaded.predict(inputs, verbose=0)),
                               np.asarray(model.predict(inputs, verbose=0)), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- staged training, folds by
# signer
@pytest.mark.slow
def test_staged_late_fusion_trains_on_held_out_signer_folds(tmp_path) -> None:
    from test_training import tiny_config, tiny_features
    from utils.inputs.spec import prepare_inputs
    from utils.training import loop as training
    from utils.training.metrics import classification_metrics
    from utils.training.runs import load_run

    features = tiny_features()
    features.hand_crops = np.repeat(features.frames[:, :, None, 4:12, 4:12], 2, axis=2)  # where the colour is
    config = tiny_config("fused", epochs=6).replace(fusion="logits", frame_input="hands", hand_size=8,
                                                    staged=True)
    for fold, signer in enumerate(("s0", "s1")):
        metrics = training.train(features, "fused", config, out_dir=tmp_path / f"fold{fold}",
                                 test_group=signer, verbose=0, measure_speed=False)
        assert metrics["n_test"] == 9 and metrics["test_accuracy"] > 1 / 3
        assert (
            len(metrics["history"]["loss"])
            == metrics["epochs_run"]
            == len(metrics["history"]["val_accuracy"])
        )
        model, run_info = load_run(tmp_path / f"fold{fold}")
        assert run_info["inputs"] == ["keypoints", "hands"]
        test = np.flatnonzero(features.groups == signer)
        predicted = model.predict(prepare_inputs(features, run_info, test), verbose=0).argmax(axis=1)
        again = classification_metrics(features.labels[test], predicted, run_info["classes"])
        assert again["accuracy"] == pytest.approx(metrics["test_accuracy"])


# ----------------------------------------------------------------------------- predict: hand crops from the
# video
def test_predict_cuts_hand_crops_from_full_resolution_frames(monkeypatch, tmp_path) -> None:
    import utils.data.keypoints
    from utils.data.video import write_video
    from utils.inputs.spec import InputSpec
    from utils.serving import predict

    frames, vectors = two_hands_clip(num_frames=5, height=96, width=128)
    video = write_video(tmp_path / "clip.mp4", frames)

    class FixedExtractor:
        """Stands in for MediaPipe: the clip's known keypoints, one frame after the other."""

        def __init__(self, **kwargs: object) -> None:
            self.count = 0

        def open(self) -> FixedExtractor:
            return self

        def extract_frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            self.count += 1
            return vectors[self.count - 1], np.array([False, False, True, True])

        def close(self) -> None:
            pass

    monkeypatch.setattr(utils.data.keypoints, "HolisticExtractor", FixedExtractor)
    clip = predict.read_video_keypoints(video, need_keypoints=True, image_size=None, progress=False,
                                        hand_size=12)
    assert clip.hand_crops.shape == (5, 2, 12, 12, 3) and clip.thumbnails is None
    spec = InputSpec(num_frames=4, image_size=8, inputs=("keypoints", "hands"), hand_size=6,
                     preprocessing={"frames": "diff"})
    inputs = predict.window_inputs(spec, clip.keypoints[:4], None, clip.hand_crops[:4])
    assert inputs["hands"].shape == (1, 4, 2, 6, 6, 3) and inputs["hands"].dtype == np.float32
    assert not inputs["hands"][0, 0].any(), "frame differences: the first step is zero"


# ----------------------------------------------------------------------------- fusion refits, test-time flips
def test_fit_fusion_layer_weights_the_informative_branch_above_the_noise() -> None:
    from utils.training import loop as training

    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, 64)
    informative = np.log(np.where(np.eye(NUM_CLASSES)[labels] > 0, 0.7, 0.1)).astype("float32")
    noise = np.log(rng.dirichlet(np.ones(NUM_CLASSES), 64)).astype("float32")
    fusion = models.LogitFusion(dtype="float32")
    history = training.fit_fusion_layer(fusion, [informative, noise], labels)
    weights = np.log1p(np.exp(np.asarray(fusion.branch_weights)))
    assert weights[0] > 1.0 > weights[1], weights
    assert history["accuracy"][-1] == 1.0


def _ablation():
    """benchmarks/fusion_ablation.py as a module."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fusion_ablation.py"
    spec = importlib.util.spec_from_file_location("fusion_ablation", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fusion_ablation", module)
    spec.loader.exec_module(module)
    return module


def test_flip_averaging_scores_each_branch_on_the_clip_and_its_mirror_image() -> None:
    from utils.data.features import FeatureSet
    from utils.data.splits import make_splits
    from utils.inputs.spec import InputSpec, prepare_inputs

    ablation, rng, count = _ablation(), np.random.default_rng(0), 24
    config = fused_config(frame_input="both", fusion="logits", staged=True)
    features = FeatureSet(keypoints=rng.random((count, 4, K.KEYPOINT_DIM)).astype(np.float32),
                          frames=rng.integers(0, 255, (count, 4, 8, 8, 3), dtype=np.uint8),
                          hand_crops=rng.integers(0, 255, (count, 4, 2, 6, 6, 3), dtype=np.uint8),
                          labels=np.arange(count) % NUM_CLASSES, classes=list("abcd"),
                          groups=np.array([f"s{i % 4}" for i in range(count)]), split=np.full(count, ""),
                          paths=np.full(count, ""))
    spec = InputSpec.from_config("fused", config)
    model = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=K.KEYPOINT_DIM)
    rows = np.arange(5)
    views = ablation.branch_log_probs(model, features, spec, rows)
    assert set(views) == {"keypoints", "frames", "hands"} and views["frames"].shape == (2, 5, NUM_CLASSES)
    branches = models.branch_models(model)
    plain, mirrored = prepare_inputs(features, spec,
                                     rows), prepare_inputs(features, spec, rows, mirrored=True)
    for name in ("frames", "hands"):
        for view, inputs in enumerate((plain, mirrored)):
            expected = np.log(np.asarray(branches[name].predict(inputs[name], verbose=0)))
            np.testing.assert_allclose(views[name][view], expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(views["frames"][0], views["frames"][1])
    split = make_splits(features.labels, groups=features.groups, test_group=["s0"], seed=0)
    scores = ablation.flip_rows(model, features, spec, split)
    assert scores["test_clips"] == len(split.test) and 0 <= scores["keypoints_wrong"] <= len(split.test)
    assert {"fused_flip:logits:frames", "fused_flip:logits:hands", "fused_flip:logits:both",
            "alone_flip:hands", "rescuable:frames", "pixels:logits:pixels", "pixels_flip:logits:pixels",
            "fused_equal:both"} <= set(scores)


# ----------------------------------------------------------------------------- test-time flip averaging in
# the model
def flip_pair(fusion: str, frame_input: str = "both") -> tuple[models.ModelConfig, object, object]:
    """A tiny fused config with test_time_flip, its model, and the same model without the flip (same
    weights)."""
    config = fused_config(fusion=fusion, frame_input=frame_input, dropout=0.0, test_time_flip=True,
                          preprocessing={"mirror": "motion"})
    flipped = models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    plain = models.build_model("fused", config.replace(test_time_flip=False), NUM_CLASSES,
                               keypoint_dim=KEYPOINT_DIM)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(flipped.get_layer(layer.name).get_weights())
    return config, flipped, plain


def mirrored_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Prepared model inputs mirrored as the model's MirrorViews does (keypoints: already hand-canonical)."""
    from utils.inputs.preprocessing import mirror_frames, mirror_hand_crops

    mirror = {"frames": mirror_frames, "hands": mirror_hand_crops, "keypoints": lambda x: x}
    return {name: np.ascontiguousarray(mirror[name](value)) for name, value in inputs.items()}


def log_mean_softmax(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """softmax of the mean log-probabilities of two forward passes (= of their mean logits)."""
    mean = (np.log(first) + np.log(second)) / 2
    mean = np.exp(mean - mean.max(axis=1, keepdims=True))
    return mean / mean.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("fusion", ["concat", "logits"])
def test_test_time_flip_equals_the_mean_of_the_two_forward_passes(fusion: str) -> None:
    config, flipped, plain = flip_pair(fusion)
    inputs = fused_inputs(config, batch=6)
    clip, mirror = (np.asarray(plain.predict(view, verbose=0)) for view in (inputs, mirrored_inputs(inputs)))
    assert not np.allclose(clip, mirror, atol=1e-4), "the mirror image must change the plain model's answer"
    got = np.asarray(flipped.predict(inputs, verbose=0))
    assert got.shape == (6, NUM_CLASSES)
    np.testing.assert_allclose(got, log_mean_softmax(clip, mirror), rtol=1e-4, atol=1e-5)
    # the same for every branch alone (staged training and the ablation score them)
    for name, branch in models.branch_models(flipped).items():
        plain_branch = models.branch_models(plain)[name]
        views = [np.asarray(plain_branch.predict(view[name],
                                                 verbose=0)) for view in (inputs, mirrored_inputs(inputs))]
        np.testing.assert_allclose(np.asarray(branch.predict(inputs[name], verbose=0)),
                                   log_mean_softmax(*views), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fusion", models.FUSIONS)
def test_test_time_flip_gives_a_clip_and_its_mirror_image_the_same_answer(fusion: str) -> None:
    config, flipped, plain = flip_pair(fusion)
    inputs = fused_inputs(config, batch=4, seed=1)
    mirror = mirrored_inputs(inputs)
    np.testing.assert_allclose(np.asarray(flipped.predict(mirror, verbose=0)),
                               np.asarray(flipped.predict(inputs, verbose=0)), rtol=1e-4, atol=1e-6)
    # in training the model sees the clip only: the batch is not doubled, the plain model's output
    np.testing.assert_allclose(np.asarray(flipped(inputs, training=True)),
                               np.asarray(plain(inputs, training=True)), rtol=1e-4, atol=1e-6)


def test_test_time_flip_saves_loads_and_probes_one_row_per_clip(tmp_path) -> None:
    from utils.evaluation.probe import layer_features, penultimate_layer

    config, flipped, _ = flip_pair("logits", frame_input="hands")
    flipped.save(tmp_path / "flip.keras")
    loaded = keras.models.load_model(tmp_path / "flip.keras", compile=False)
    inputs = fused_inputs(config)
    np.testing.assert_allclose(np.asarray(loaded.predict(inputs, verbose=0)),
                               np.asarray(flipped.predict(inputs, verbose=0)), rtol=1e-5, atol=1e-6)
    assert penultimate_layer(loaded, "hands") == "hands_head_views_mean"
    assert layer_features(loaded, inputs, penultimate_layer(loaded, "hands")).shape == (5, 5)


def test_test_time_flip_refuses_keypoints_that_are_not_hand_canonical() -> None:
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="mirror='motion'"):
        models.build_model("fused", fused_config(test_time_flip=True), NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    frames_only = models.build_model("convlstm", fused_config(test_time_flip=True), NUM_CLASSES)
    assert frames_only.get_layer("frames_mirror_views").kind == "frames"


def test_ablation_drawn_landmarks_fold_finishes_with_its_probe_and_no_flip_row(tmp_path) -> None:
    """The drawn-landmarks run trains, probes and stores a fold (test-time flip refuses draw_landmarks:
    skipped)."""
    from utils.data.features import FeatureSet

    ablation, rng, count = _ablation(), np.random.default_rng(0), 24
    features = FeatureSet(keypoints=rng.random((count, 4, K.KEYPOINT_DIM)).astype(np.float32),
                          frames=rng.integers(0, 255, (count, 4, 16, 16, 3), dtype=np.uint8),
                          labels=np.arange(count) % NUM_CLASSES, classes=list("abcd"),
                          groups=np.array([f"s{i // 6}" for i in range(count)]), split=np.full(count, ""),
                          paths=np.full(count, ""))
    model_name, config = ablation.runs()["convlstm_drawn"]
    config = config.replace(num_frames=4, image_size=16, batch_size=8)
    values = ablation.run_fold(features, "convlstm_drawn", model_name, config, ["s0"], 1, tmp_path)
    assert config.preprocessing["draw_landmarks"] and values["epochs_run"] == 1
    assert 0.0 <= values["probe"] <= 1.0 and "test_flip_accuracy" not in values
