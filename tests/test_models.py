"""Tests for utils.models: shapes, parameter counts, the fast ConvLSTM, and the original's defects fixed."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from utils import models  # noqa: E402
from utils.models import fast  # noqa: E402

NUM_CLASSES = 5
KEYPOINT_DIM = 12


def tiny_config(**changes: object) -> models.ModelConfig:
    """The small configuration shrunk further, for fast tests."""
    base = models.get_config("fused", "small").replace(num_frames=4, image_size=8, lstm_units=(6, 5),
                                                        convlstm_filters=(3, 2), kernel_size=3)
    return base.replace(**changes)


def tiny_inputs(config: models.ModelConfig, batch: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Random keypoints (float32) and raw uint8 frames at the config's shapes."""
    rng = np.random.default_rng(seed)
    size, frames_count = config.image_size, config.num_frames
    return {"keypoints": rng.normal(size=(batch, frames_count, KEYPOINT_DIM)).astype("float32"),
            "frames": rng.integers(0, 256, size=(batch, frames_count, size, size, 3), dtype=np.uint8)}


def feed(model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only the inputs the model takes."""
    return {name: inputs[name] for name in models.model_inputs(model_name)}


# ----------------------------------------------------------------------------- configurations
def test_configs_cover_every_model_and_default_is_recommended() -> None:
    assert set(models.config_names()) == {"original", "small", "recommended"}
    for model_name in models.MODEL_NAMES:
        assert models.get_config(model_name) == models.get_config(model_name, "recommended")
    seed = models.get_config("fused", "original")
    assert (seed.num_frames, seed.image_size) == (30, 64)
    assert (seed.lstm_units, seed.convlstm_filters) == ((512, 512), (16, 16))
    assert (seed.kernel_size, seed.learning_rate, seed.batch_size, seed.epochs) == (5, 1e-4, 64, 200)
    assert seed.augmentation == {} and not any(v for k, v in seed.preprocessing.items() if k != "face")


def test_unknown_names_raise_value_error_listing_known_ones() -> None:
    with pytest.raises(ValueError, match="recommended"):
        models.get_config("fused", "nope")
    with pytest.raises(ValueError, match="convlstm"):
        models.get_config("transformer")
    with pytest.raises(ValueError, match="lstm"):
        models.build_model("gru", tiny_config(), NUM_CLASSES)
    with pytest.raises(ValueError, match="stock"):
        models.build_model("convlstm", tiny_config(), NUM_CLASSES, convlstm_impl="cuda")


def test_config_dict_round_trip() -> None:
    config = models.get_config("lstm")
    assert models.ModelConfig.from_dict(config.to_dict()) == config


def test_learning_rate_schedule_follows_milestones() -> None:
    seed = models.get_config("fused", "original")
    assert models.learning_rate_at(seed, 0) == pytest.approx(1e-4)
    assert models.learning_rate_at(seed, 60) == pytest.approx(1e-5)
    assert models.learning_rate_at(seed, 199) == pytest.approx(1e-6)


# ----------------------------------------------------------------------------- shapes and parameter counts
@pytest.mark.parametrize("model_name", models.MODEL_NAMES)
def test_shapes_names_and_num_classes_outputs(model_name: str) -> None:
    config = tiny_config()
    model = models.build_model(model_name, config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    assert [tensor.name for tensor in model.inputs] == list(models.model_inputs(model_name))
    assert model.output.shape == (None, NUM_CLASSES)  # defect 4: not num_classes + 1
    probabilities = np.asarray(model.predict_on_batch(feed(model_name, tiny_inputs(config))))
    assert probabilities.shape == (3, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    counts = models.count_params(model)
    assert counts == models.formula_param_count(model_name, config, NUM_CLASSES, KEYPOINT_DIM)
    assert counts["total"] == model.count_params()


def test_seed_fused_parameter_count_matches_formulas_and_the_original() -> None:
    seed = models.get_config("fused", "original")
    model = models.build_model("fused", seed, num_classes=10)
    counts = models.count_params(model)
    # LSTM: 4*512*(1662+512+1) + 4*512*(512+512+1); ConvLSTM: 64*(25*(3+16)+1) + 64*(25*32+1);
    # BN 2*64; reduce conv 3*(25*16+1); classifier 10*(512+64*64*3+1)
    expected = (4 * 512 * 2175 + 4 * 512 * 1025) + (64 * 476 + 64 * 801 + 128 + 3 * 401) + 10 * 12801
    assert counts["total"] == expected == 6_764_669
    # the PyTorch original printed 7,174,718 (11 outputs, peephole maps, two LSTM biases)
    assert models.original_param_count(11) == models.ORIGINAL_PARAM_COUNT


# ----------------------------------------------------------------------------- fast ConvLSTM == ConvLSTM2D
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fast_convlstm_equals_stock_convlstm2d(return_sequences: bool, activation: str) -> None:
    rng = np.random.default_rng(1)
    sequence = rng.normal(size=(2, 5, 7, 6, 3)).astype("float32")
    stock = keras.layers.ConvLSTM2D(4, 3, padding="same", activation=activation,
                                    return_sequences=return_sequences)
    fast = models.ConvLSTM(4, 3, activation=activation, return_sequences=return_sequences)
    stock(sequence)
    fast.build(sequence.shape)
    assert [w.shape for w in fast.get_weights()] == [w.shape for w in stock.get_weights()]
    assert fast.count_params() == stock.count_params()
    # random non-zero bias so every gate term is exercised
    weights = [w + rng.normal(scale=0.1, size=w.shape).astype("float32") for w in stock.get_weights()]
    stock.set_weights(weights)
    fast.set_weights(weights)
    expected = np.asarray(stock(sequence))
    np.testing.assert_allclose(np.asarray(fast(sequence)), expected, atol=1e-5, rtol=1e-5)


def test_fast_and_stock_models_agree_with_same_weights() -> None:
    config = tiny_config()
    fast = models.build_model("fused", config, NUM_CLASSES, KEYPOINT_DIM, convlstm_impl="fast")
    stock = models.build_model("fused", config, NUM_CLASSES, KEYPOINT_DIM, convlstm_impl="stock")
    stock.set_weights(fast.get_weights())
    inputs = tiny_inputs(config)
    np.testing.assert_allclose(np.asarray(fast(inputs, training=False)),
                               np.asarray(stock(inputs, training=False)), atol=1e-5)


def test_fast_convlstm_gradients_equal_stock() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(2)
    sequence = tf.constant(rng.normal(size=(2, 4, 5, 5, 2)).astype("float32"))
    stock = keras.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True)
    fast = models.ConvLSTM(3, 3, return_sequences=True)
    stock(sequence)
    fast.build(sequence.shape)
    fast.set_weights(stock.get_weights())
    gradients = []
    for layer in (stock, fast):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(sequence)))
        gradients.append([g.numpy() for g in tape.gradient(loss, layer.trainable_weights)])
    for stock_grad, fast_grad in zip(*gradients):
        np.testing.assert_allclose(fast_grad, stock_grad, atol=1e-4, rtol=1e-4)


def test_runs_saved_by_earlier_versions_load() -> None:
    """Earlier versions saved a ConvLSTM option (compiled gates) and configuration fields that lost in the
    studies: such runs still load when those were off, and fail with a clear message when one was on."""
    layer = models.ConvLSTM(4, 3, return_sequences=True)
    restored = models.ConvLSTM.from_config({**layer.get_config(), "fused_gates": True})
    assert restored.filters == 4
    old = {**tiny_config().to_dict(), "linear_blend": 0.0, "modality_dropout": 0.0, "transformer_blocks": 2}
    assert models.ModelConfig.from_dict(old) == tiny_config()
    with pytest.raises(models.ConfigError, match="linear_blend"):
        models.ModelConfig.from_dict({**old, "linear_blend": 0.5})
    with pytest.warns(FutureWarning, match="original"):
        assert models.get_config("fused", "seed") == models.get_config("fused", "original")


# ----------------------------------------------------------------------------- the original's defects
@pytest.mark.parametrize("model_name", models.MODEL_NAMES)
def test_permuting_a_batch_permutes_predictions(model_name: str) -> None:
    """Defect 1: view(T, batch, -1) mixed clips across time; here each clip's output depends on it alone."""
    config = tiny_config()
    model = models.build_model(model_name, config, NUM_CLASSES, KEYPOINT_DIM)
    inputs = feed(model_name, tiny_inputs(config, batch=4))
    order = np.array([2, 0, 3, 1])
    predictions = np.asarray(model(inputs, training=False))
    permuted = np.asarray(model({k: v[order] for k, v in inputs.items()}, training=False))
    np.testing.assert_allclose(permuted, predictions[order], atol=1e-6)
    single = np.asarray(model({k: v[:1] for k, v in inputs.items()}, training=False))
    np.testing.assert_allclose(single, predictions[:1], atol=1e-5)


def test_two_forward_passes_are_identical() -> None:
    """Defect 3: the original drew random initial LSTM states every call."""
    config = tiny_config(dropout=0.3)
    model = models.build_model("fused", config, NUM_CLASSES, KEYPOINT_DIM)
    inputs = tiny_inputs(config)
    first = np.asarray(model.predict_on_batch(inputs))
    second = np.asarray(model.predict_on_batch(inputs))
    np.testing.assert_array_equal(first, second)


def test_uint8_and_float_frames_give_the_same_prediction() -> None:
    config = tiny_config()
    model = models.build_model("convlstm", config, NUM_CLASSES)
    frames = tiny_inputs(config)["frames"]
    np.testing.assert_allclose(np.asarray(model.predict_on_batch({"frames": frames})),
                               np.asarray(model.predict_on_batch({"frames": frames.astype("float32")})),
                               atol=1e-6)


def test_l2_matches_pytorch_weight_decay_gradient() -> None:
    """l2 = wd gives penalty wd/2 * sum(w**2) per weight, whose gradient is PyTorch's wd * w."""
    config = tiny_config(l2=0.8, head_units=())
    model = models.build_model("lstm", config, NUM_CLASSES, KEYPOINT_DIM)
    expected = sum(0.4 * float(np.sum(np.square(w.numpy()))) for w in model.trainable_weights)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)


def test_compile_train_step_and_save_load_round_trip(tmp_path) -> None:
    config = tiny_config(dropout=0.2, head_units=(4,), l2=1e-3, learning_rate=1e-2)
    model = models.compile_model(models.build_model("fused", config, NUM_CLASSES, KEYPOINT_DIM), config)
    inputs = tiny_inputs(config, batch=4)
    labels = np.array([0, 1, 2, 3])
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(inputs, labels)
    assert np.isfinite(np.ravel(loss)[0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: our layers are registered
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(inputs)),
                               np.asarray(model.predict_on_batch(inputs)), atol=1e-6)


def test_compile_default_turns_xla_off_on_cpu() -> None:
    import tensorflow as tf

    expected = "auto" if tf.config.list_physical_devices("GPU") else False
    assert models.default_jit_compile() == expected


def smoothing_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer labels, softmax probabilities and per-clip weights of 4 clips over 3 classes."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3)).astype("float32")
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.array([0, 2, 1, 2]), probabilities, np.array([1.0, 0.5, 2.0, 1.5], "float32")


def test_label_smoothing_loss_equals_keras_categorical_with_smoothing_and_differs_from_plain() -> None:
    labels, probabilities, weights = smoothing_case()
    one_hot = np.eye(3, dtype="float32")[labels]
    smoothed = models.classification_loss(tiny_config(label_smoothing=0.1))
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    assert float(smoothed(labels,
                          probabilities)) == pytest.approx(float(expected(one_hot, probabilities)), rel=1e-5)
    assert float(smoothed(labels, probabilities, sample_weight=weights)) == pytest.approx(
        float(expected(one_hot, probabilities, sample_weight=weights)), rel=1e-5)  # class weights still apply
    plain = float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities))
    assert abs(float(smoothed(labels, probabilities)) - plain) > 1e-3
    assert float(smoothed(labels[:, None],
                          probabilities)) == pytest.approx(float(smoothed(labels, probabilities)))


def test_no_label_smoothing_is_the_plain_sparse_loss() -> None:
    labels, probabilities, _ = smoothing_case()
    assert models.ModelConfig.label_smoothing == 0.0
    assert models.classification_loss(tiny_config()) == "sparse_categorical_crossentropy"
    plain = float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities))
    assert float(models.SparseSmoothedCrossentropy(0.0)(labels,
                                                        probabilities)) == pytest.approx(plain, rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing 1.0"):
        models.classification_loss(tiny_config(label_smoothing=1.0))


def test_label_smoothing_reaches_the_compiled_model_and_survives_saving(tmp_path) -> None:
    config = tiny_config(label_smoothing=0.2)
    model = models.compile_model(models.build_model("lstm", config, NUM_CLASSES, KEYPOINT_DIM), config)
    assert isinstance(model.loss, models.SparseSmoothedCrossentropy) and model.loss.label_smoothing == 0.2
    assert np.isfinite(np.ravel(model.train_on_batch(feed("lstm", tiny_inputs(config, batch=3)),
                                                     np.array([0, 1, 4])))[0])
    model.save(tmp_path / "model.keras")
    assert keras.models.load_model(tmp_path / "model.keras").loss.label_smoothing == 0.2


@pytest.mark.parametrize("model_name", ["lstm", "fused"])
def test_conv_gru_keypoint_encoder_shapes_and_parameter_count(model_name: str) -> None:
    config = tiny_config(keypoint_encoder="conv_gru", lstm_units=(8, 6))
    model = models.build_model(model_name, config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    assert model.get_layer("keypoints_gru").units == 6
    probabilities = np.asarray(model.predict_on_batch(feed(model_name, tiny_inputs(config))))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert models.count_params(model) == models.formula_param_count(
        model_name, config, NUM_CLASSES, KEYPOINT_DIM
    )
    with pytest.raises(ValueError, match="conv_gru"):
        models.build_model(model_name, config.replace(keypoint_encoder="mamba"), NUM_CLASSES, KEYPOINT_DIM)


@pytest.mark.parametrize("pooling", ["flatten", "average"])
def test_strided_stem_shrinks_frames_before_the_convlstm(pooling: str) -> None:
    config = tiny_config(image_size=16, frame_stem=(4, 6), convlstm_filters=(5,), frame_kernel_size=3,
                         kernel_size=5, frame_pooling=pooling, reduce_channels=2)
    model = models.build_model("convlstm", config, NUM_CLASSES)
    assert tuple(model.get_layer("frames_stem1").output.shape) == (None, 4, 8, 8, 4)  # 16 -> 8
    assert tuple(model.get_layer("frames_stem2").output.shape) == (None, 4, 4, 4, 6)  # 8 -> 4
    assert tuple(model.get_layer("frames_convlstm1").output.shape) == (None, 4, 4, 4, 5)
    assert model.get_layer("frames_convlstm1").kernel_size == (3, 3)  # frame_kernel_size, not kernel_size
    features = {"flatten": 4 * 4 * 2, "average": 5}[pooling]
    assert (
        model.get_layer(
            "frames_dropout" if config.dropout else f"frames_{'flatten' if pooling == 'flatten' else 'pool'}"
        ).output.shape[-1]
        == features
    )
    probabilities = np.asarray(model.predict_on_batch(tiny_inputs(config)["frames"]))
    assert probabilities.shape == (3, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    restored = models.ModelConfig.from_dict(config.to_dict())
    assert restored == config and isinstance(restored.frame_stem, tuple)
    with pytest.raises(ValueError, match="frame_pooling"):
        models.build_model("convlstm", config.replace(frame_pooling="max"), NUM_CLASSES)
    with pytest.raises(ValueError, match="frame_stem"):
        models.formula_param_count("convlstm", config, NUM_CLASSES)


def test_bfloat16_copy_keeps_the_weights_computes_in_bfloat16_and_answers_in_float32() -> None:
    model = models.build_model("fused", tiny_config(), NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    inputs = tiny_inputs(tiny_config(), batch=4)
    reference = model.predict_on_batch(inputs)
    copy = models.with_compute_dtype(model, "bfloat16")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
    convlstm = next(layer for layer in copy.layers if isinstance(layer, models.ConvLSTM))
    assert convlstm.compute_dtype == "bfloat16" and convlstm.variable_dtype == "float32"
    assert copy.get_layer("probabilities").compute_dtype == "float32"
    assert all(layer.compute_dtype == "float32" for layer in model.layers), (
        "the model itself is left as it was"
    )
    answer = copy.predict_on_batch(inputs)
    assert answer.dtype == np.float32 and np.allclose(answer.sum(axis=1), 1, atol=1e-5)
    difference = np.abs(answer - reference).max()
    assert 0 < difference < 0.02, f"bfloat16 rounds (8-bit mantissa) but stays close: {difference}"
    with pytest.raises(models.ConfigError, match="float16"):
        models.with_compute_dtype(model, "float16")


# ----------------------------------------------------------------------------- the inference copy
# (ConvLSTMStack)
def _perturbed(model: keras.Model, seed: int = 5) -> keras.Model:
    """The model with every weight moved and batch norms given non-trivial statistics (a shift that, folded
    wrongly at the zero-padded border or not at all, shows in the outputs)."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.5, channels),
                               rng.normal(0, 0.3, channels), rng.uniform(0.2, 2.0, channels)])
        elif layer.weights and not isinstance(layer, keras.Model):
            layer.set_weights([w + rng.normal(scale=0.2,
                                              size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("changes, compiled", [
    (dict(convlstm_activation="relu"), False),  # the seed's activation, plain gate ops
    (dict(convlstm_activation="relu", convlstm_filters=(4, 3, 2)), True),  # three layers, compiled gates
    (dict(convlstm_activation="tanh", frame_stem=(4,), image_size=16, test_time_flip=True,
          preprocessing={**models.NO_PREPROCESSING, "mirror": "height"}), True),
    (dict(convlstm_activation="tanh", ensemble=2), False),  # members: nested models
])
def test_inference_model_computes_the_same_function(changes: dict, compiled: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConvLSTM stack (layers step by step together, batch norms folded, no forget gate at step 1) gives
    the model's outputs within 1e-5, and no ConvLSTM or batch norm of the frame branch is left in the copy."""
    if compiled:
        monkeypatch.setattr(fast, "FUSED_GATES_MIN_ELEMENTS", 0)
    config = tiny_config(**changes)
    model = _perturbed(models.build_model("fused", config, NUM_CLASSES, keypoint_dim=KEYPOINT_DIM))
    inputs = tiny_inputs(config, batch=4)
    copy = models.inference_model(model)
    layers = list(copy._flatten_layers(include_self=False))
    assert sum(isinstance(layer, models.ConvLSTMStack) for layer in layers) == config.ensemble
    assert not any(isinstance(layer, models.ConvLSTM) for layer in layers)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in layers) == \
        len(config.frame_stem) * config.ensemble  # only the stem's batch norms remain
    np.testing.assert_allclose(copy.predict_on_batch(inputs), model.predict_on_batch(inputs), atol=1e-5,
                               rtol=1e-5)
    # the frame features themselves, before the head's softmax compresses differences
    if config.ensemble == 1:
        features = [keras.Model(m.inputs, m.get_layer("frames_flatten").output).predict_on_batch(inputs)
                    for m in (model, copy)]
        assert np.abs(features[0]).max() > 0.1
        np.testing.assert_allclose(features[1], features[0], atol=1e-5, rtol=1e-5)


def test_inference_model_leaves_models_without_a_convlstm_chain_and_copies_weights() -> None:
    """The LSTM and the stock ConvLSTM2D come back as they are; the copy's other layers hold the same
    weights."""
    lstm = models.build_model("lstm", tiny_config(), NUM_CLASSES, keypoint_dim=KEYPOINT_DIM)
    assert models.inference_model(lstm) is lstm
    stock = models.build_model("fused", tiny_config(), NUM_CLASSES, keypoint_dim=KEYPOINT_DIM,
                               convlstm_impl="stock")
    assert models.inference_model(stock) is stock
    model = _perturbed(models.build_model("fused", tiny_config(), NUM_CLASSES, keypoint_dim=KEYPOINT_DIM))
    copy = models.inference_model(model)
    for name in ("keypoints_lstm1", "frames_reduce", "probabilities"):
        assert copy.get_layer(name) is not model.get_layer(name)
        assert all(np.array_equal(a, b) for a, b in zip(copy.get_layer(name).get_weights(),
                                                         model.get_layer(name).get_weights()))
    stack = copy.get_layer("frames_convlstm_stack")
    again = models.ConvLSTMStack.from_config(stack.get_config())
    assert again.filters == stack.filters and again.kernel_size == stack.kernel_size
