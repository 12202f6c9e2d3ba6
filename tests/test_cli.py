"""The command line's help, and the course runner's settings and summary (no training here)."""
from __future__ import annotations

import json

import pytest

from utils import cli, config, course

COMMANDS = ("data", "extract", "train", "crossval", "evaluate", "report", "predict", "export", "course")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m utils " + command)
    if command in ("extract", "data", "train", "crossval"):
        assert "(default:" in out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["nosuch"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("folds, expected", [("loso", "loso"), ("LOSO", "loso"), ("5", 5)])
def test_crossval_folds_argument(folds, expected):
    args = cli.build_parser().parse_args(["crossval", "--features", "f.npz", "--model", "lstm", "--out", "cv",
                                          "--folds", folds])
    assert args.folds == expected and args.func is cli.cmd_crossval


@pytest.mark.parametrize("folds", ["1", "all", "0"])
def test_crossval_folds_argument_refuses_nonsense(folds, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["crossval", "--features", "f.npz", "--model", "lstm", "--out", "cv", "--folds", folds])
    assert exit_info.value.code == 2
    assert "argument --folds" in capsys.readouterr().err


def test_mediapipe_size_argument_of_extract_and_predict(capsys):
    parse = cli.build_parser().parse_args
    assert parse(["extract", "data", "--out", "f.npz"]).mediapipe_size == config.MEDIAPIPE_SIZE
    assert parse(["extract", "data", "--out", "f.npz", "--mediapipe-size", "0"]).mediapipe_size == 0
    # as the run's features were made
    assert parse(["predict", "v.mp4", "--model", "run"]).mediapipe_size is None
    assert parse(["predict", "v.mp4", "--model", "run", "--mediapipe-size", "480"]).mediapipe_size == 480
    with pytest.raises(SystemExit):
        cli.main(["predict", "v.mp4", "--model", "run", "--mediapipe-size", "-1"])
    assert "argument --mediapipe-size" in capsys.readouterr().err


def test_course_settings_follow_the_environment(monkeypatch):
    monkeypatch.setenv("DATASET", "ucf11")
    monkeypatch.setenv("FAST", "1")
    settings = config.course_settings()
    assert (settings.dataset, settings.fast, settings.num_frames, settings.epochs) == ("ucf11", True, 20, 3)
    assert settings.features_path.name == "ucf11_fast_T20_S64.npz"
    monkeypatch.delenv("DATASET")
    monkeypatch.setenv("FAST", "0")
    settings = config.course_settings()
    assert (settings.dataset, settings.fast, settings.epochs) == ("synthetic", False, None)
    assert settings.synthetic == config.SYNTHETIC_DEFAULT
    assert settings.source_dir.name == "synthetic"


def test_course_finds_the_seven_notebooks_in_order():
    names = [path.name for path in course.course_notebooks()]
    assert [name[:2] for name in names] == ["01", "02", "03", "04", "05", "06", "07"]


def test_summary_table_lists_every_run(tmp_path):
    for name, accuracy in (("lstm_recommended", 0.95), ("fused_small", 0.2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"model": name.split("_")[0], "config": name.split("_")[1], "test_accuracy": accuracy,
             "macro_f1": accuracy - 0.01, "params": 1234, "train_seconds": 12.0}))
    table = course.summary_table(tmp_path).splitlines()
    assert len(table) == 5 and "0.950" in table[2] and "0.200" in table[1]
    assert table[3] == "The runs were tested on different signers, so compare them with care:"
    assert "no runs" in course.summary_table(tmp_path / "empty")


def test_summary_table_names_the_test_signers(tmp_path):
    for name in ("lstm_recommended", "fused_recommended"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"model": name.split("_")[0], "config": "recommended", "test_accuracy": 0.9, "macro_f1": 0.9,
             "params": 1, "train_seconds": 1.0, "test_groups": ["s05", "s09"]}))
    assert course.summary_table(tmp_path).splitlines()[-1] == (
        "Every run was tested on the same held-out signers: s05, s09.")


def test_publish_keeps_figures_small_and_drops_progress_bars(tmp_path):
    import base64
    import io

    import nbformat
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((1600, 1200,
                                                      3)) * 255).astype(np.uint8)).save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title"),
                                               nbformat.v4.new_code_cell("plot()")])
    notebook.cells[1].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="epochs: 50%|#####     | 1/2\n"),
        nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.9\n"),
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    source = tmp_path / "results"
    source.mkdir()
    nbformat.write(notebook, source / "01_x.ipynb")
    (source / course.RUN_RECORD).write_text(json.dumps({
        "commit": "abc1234", "dataset": "synthetic", "fast": False, "machine": "x86_64, 2 cores",
        "started": "2026-12-06T08:00:00+00:00", "notebooks": {"01_x.ipynb": {"seconds": 12.0}}}))
    [written] = course.publish(source, tmp_path / "docs")
    published = nbformat.read(written, as_version=4)
    nbformat.validate(published)
    assert "commit `abc1234`" in published.cells[1].source
    outputs = published.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream", "display_data"] and outputs[0].name == "stdout"
    image = Image.open(io.BytesIO(base64.b64decode(outputs[1].data["image/png"])))
    assert max(image.size) <= course.MAX_IMAGE_SIDE and len(outputs[1].data["image/png"]) < len(png)
    assert (tmp_path / "docs" / course.RUN_RECORD).is_file()


def test_train_frames_overrides_the_configurations_number_of_frames(monkeypatch, tmp_path):
    """`train --config original --frames 20` (UCF11 at the original's 20 frames) trains it with T=20."""
    from utils import cli
    from utils.training.loop import train_run

    seen = {}

    def fake_train(features, model_name, config, **kwargs):
        seen["config"] = config
        return {"model": model_name, "config": config.name, "test_accuracy": 0.0, "macro_f1": 0.0}

    monkeypatch.setattr(train_run, "train", fake_train)  # what train_from_file (the train command) calls
    base = ["train", "--features", "f.npz", "--model", "fused", "--config", "original", "--out",
            str(tmp_path / "r")]
    assert cli.main(base + ["--frames", "20"]) == 0
    assert seen["config"].name == "original" and seen["config"].num_frames == 20
    assert seen["config"].lstm_units == (512, 512)  # everything else stays the original's
    assert cli.main(base) == 0 and seen["config"].num_frames == 30
    assert cli.main(base + ["--frames", "0"]) == 2
