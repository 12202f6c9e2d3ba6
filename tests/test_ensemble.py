"""Seed ensembles (``ModelConfig.ensemble``): one Keras model whose output is the mean of its members'
probabilities, members fitted one after another with their own seeds, saved, resumed, exported and
cross-validated like any model.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_training import features_file, tiny_config, tiny_features  # noqa: F401  (features_file: a fixture)
from utils import models
from utils.errors import ConfigError

INPUT_DIM, CLASSES = 24, 4


def _clips(count: int = 6) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(count, 30, INPUT_DIM)).astype(np.float32)


def test_the_ensemble_answers_the_mean_of_its_members():
    config = models.get_config("lstm").replace(ensemble=1)
    members = [models.build_model("lstm", config, num_classes=CLASSES,
                                  keypoint_dim=INPUT_DIM) for _ in range(2)]
    ensemble = models.ensemble_model(members, name="pair")
    clips = _clips()
    own = [member.predict(clips, verbose=0) for member in members]
    assert np.abs(own[0] - own[1]).max() > 1e-3  # two initialisations: else the mean would not show anything
    np.testing.assert_allclose(ensemble.predict(clips, verbose=0), np.mean(own, axis=0), rtol=0, atol=1e-6)
    assert [t.name for t in ensemble.inputs] == ["keypoints"] and ensemble.layers[-1].name == "probabilities"
    assert [m.name for m in models.ensemble_members(ensemble)] == ["member1", "member2"]
    assert (
        models.ensemble_members(members[0]) == [members[0]]
        and models.ensemble_model(members[:1]) is members[0]
    )


def test_build_model_makes_the_configured_number_of_members_and_counts_their_parameters():
    config = models.get_config("lstm").replace(ensemble=3)
    model = models.build_model("lstm", config, num_classes=CLASSES, keypoint_dim=INPUT_DIM)
    assert len(models.ensemble_members(model)) == 3
    single = models.formula_param_count("lstm", config.replace(ensemble=1), CLASSES, INPUT_DIM)
    assert models.count_params(model) == models.formula_param_count("lstm", config, CLASSES, INPUT_DIM)
    assert models.count_params(model)["total"] == 3 * single["total"] == model.count_params()


@pytest.mark.parametrize("model_name, size, message", [("lstm", 0, "whole number"),
                                                       ("lstm", 1.5, "whole number"), ("linear", 2, "same")])
def test_nonsense_ensembles_are_refused(model_name, size, message):
    with pytest.raises(ConfigError, match=message):
        models.build_model(model_name, models.get_config(model_name).replace(ensemble=size), num_classes=3)


def _member_weights(run_dir) -> list[list[np.ndarray]]:
    from utils.training.runs import load_run

    return [member.get_weights() for member in models.ensemble_members(load_run(run_dir)[0])]


@pytest.mark.slow
def test_members_train_with_their_own_seeds_and_member_one_is_the_single_network(features_file, tmp_path):
    """Member i is the network `train` fits with seed + i - 1: the first is the same as a single network's
    run."""
    from utils.inputs.spec import prepare_inputs
    from utils.training import loop as training
    from utils.training.runs import load_run

    options = dict(seed=0, verbose=0, measure_speed=False)
    metrics = training.train(str(features_file), "lstm", tiny_config(epochs=3).replace(ensemble=2),
                             out_dir=tmp_path / "pair", **options)
    single = training.train(str(features_file), "lstm", tiny_config(epochs=3), out_dir=tmp_path / "one",
                            **options)
    assert metrics["ensemble"] == 2 and [m["seed"] for m in metrics["members"]] == [0, 1]
    assert metrics["history"] == metrics["members"][0]["history"] and metrics["epochs_run"] == 3
    first, second = _member_weights(tmp_path / "pair")
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(first, second))  # really two networks
    for ours, theirs in zip(first, load_run(tmp_path / "one")[0].get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert single["ensemble"] == 1 and "members" not in single

    model, run_info = load_run(tmp_path / "pair")  # the saved model is the average of its saved members
    inputs = prepare_inputs(tiny_features(), run_info, np.arange(8))
    expected = np.mean([member.predict(inputs, verbose=0) for member in models.ensemble_members(model)],
                       axis=0)
    np.testing.assert_allclose(model.predict(inputs, verbose=0), expected, rtol=0, atol=1e-6)


class _KillInMember:
    """Wraps fitting.training_callbacks (where a network's fit gets its callbacks): records (member, epoch) of
    every epoch trained; raises KeyboardInterrupt at the end of epoch ``epoch`` (0-based) of member ``member``
    (1-based; each member's fit calls it once)."""

    def __init__(self, member: int | None = None, epoch: int = 0) -> None:
        self.member, self.epoch, self.calls, self.trained = member, epoch, 0, []

    def __call__(self, original):
        import keras

        recorder = self

        class Kill(keras.callbacks.Callback):
            def __init__(self, member: int) -> None:
                super().__init__()
                self.member = member

            def on_epoch_begin(self, epoch, logs=None):
                recorder.trained.append((self.member, epoch))

            def on_epoch_end(self, epoch, logs=None):
                if (self.member, epoch) == (recorder.member, recorder.epoch):
                    raise KeyboardInterrupt

        def wrapped(*args, **kwargs):
            recorder.calls += 1
            callbacks, backup = original(*args, **kwargs)
            return callbacks + [Kill(recorder.calls)], backup

        return wrapped


@pytest.mark.slow
def test_a_run_killed_in_member_two_resumes_without_retraining_member_one(features_file, tmp_path,
                                                                          monkeypatch):
    from utils.training import loop as training
    from utils.training.loop import fitting

    config, options = tiny_config(epochs=3).replace(ensemble=2), dict(seed=0, verbose=0, measure_speed=False)
    whole = training.train(str(features_file), "lstm", config, out_dir=tmp_path / "whole", **options)
    original = fitting.training_callbacks
    killed = _KillInMember(member=2, epoch=0)
    monkeypatch.setattr(fitting, "training_callbacks", killed(original))
    with pytest.raises(KeyboardInterrupt):
        training.train(str(features_file), "lstm", config, out_dir=tmp_path / "cut", **options)
    assert killed.trained == [(1, 0), (1, 1), (1, 2), (2, 0)]
    assert (tmp_path / "cut.partial" / "member1" / training.MEMBER_WEIGHTS).is_file()

    resumed = _KillInMember()
    monkeypatch.setattr(fitting, "training_callbacks", resumed(original))
    metrics = training.train(str(features_file), "lstm", config, out_dir=tmp_path / "cut", resume=True,
                             **options)
    assert resumed.trained == [(1, 1), (1, 2)]  # member 1 read back; member 2 goes on at its second epoch
    assert [m["epochs_run"] for m in metrics["members"]] == [3, 3]
    for ours, theirs in zip(_member_weights(tmp_path / "cut"), _member_weights(tmp_path / "whole")):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert metrics["test_accuracy"] == whole["test_accuracy"]


def test_an_ensemble_exports_with_the_same_probabilities(tmp_path):
    """Keras vs SavedModel vs TFLite within 1e-4 on raw clips, preprocessing inside, for a 2-member
    ensemble."""
    from test_export import _check_export, signer_features
    from tiny_runs import untrained_run

    signers = signer_features()
    run = untrained_run(tmp_path / "run", signers, "lstm", models.get_config("lstm").replace(ensemble=2))
    info = _check_export(tmp_path, signers, run)
    assert [i["name"] for i in info["inputs"]] == ["keypoints"] and info["preprocessing_inside"] is True


@pytest.mark.slow
def test_crossval_of_an_ensemble_writes_ensembles_per_fold(tmp_path):
    from utils.evaluation import crossval
    from utils.training.runs import load_run

    features = tiny_features(with_frames=False)
    summary = crossval.run(features, "lstm", tiny_config(epochs=2).replace(ensemble=2),
                           out_dir=tmp_path / "cv", folds=2, progress=False)
    assert summary["num_folds"] == 2 and summary["config_full"]["ensemble"] == 2
    for fold in summary["per_fold"]:
        metrics = json.loads((tmp_path / "cv" / fold["run_dir"] / "metrics.json").read_text())
        assert metrics["ensemble"] == 2 and [m["seed"] for m in metrics["members"]] == [0, 1]
        assert len(models.ensemble_members(load_run(tmp_path / "cv" / fold["run_dir"])[0])) == 2


def test_ensemble_option_of_the_train_and_crossval_commands(monkeypatch, tmp_path):
    from utils import cli
    from utils.evaluation import crossval
    from utils.training import loop as training

    seen = {}
    monkeypatch.setattr(training, "train_from_file", lambda **kwargs: seen.update(kwargs) or
                        {"model": "lstm", "config": "x", "test_accuracy": 1.0, "macro_f1": 1.0})
    assert cli.main(["train", "--features", "f.npz", "--model", "lstm", "--out", str(tmp_path / "r"),
                     "--ensemble", "3"]) == 0
    assert seen["ensemble"] == 3
    monkeypatch.setattr(crossval, "run", lambda features, model, config,
                        **kw: seen.update(config=config) or {})
    monkeypatch.setattr(crossval, "describe", lambda summary: "")
    assert cli.main(["crossval", "--features", "f.npz", "--model", "lstm", "--out", str(tmp_path / "c"),
                     "--ensemble", "2"]) == 0
    assert (
        seen["config"].ensemble == 2
        and seen["config"].keypoint_encoder == models.get_config("lstm").keypoint_encoder
    )
    with pytest.raises(ConfigError, match="--ensemble 0"):
        training.with_ensemble(models.get_config("lstm"), 0)
