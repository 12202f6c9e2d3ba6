"""Tests for benchmarks.speed (tables, ratios, the per-setting processes) and benchmarks/torch_original.py."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from benchmarks import speed as benchmark


def _result(train: float | None, infer: float, load: float = 1.0, **extra: object) -> dict:
    """One setting's result as a measuring process prints it."""
    return {"train_clips_per_s": train, "infer_clips_per_s": infer, "train_cpu_s_per_clip": 0.5,
            "infer_cpu_s_per_clip": 0.5, "load_before": load,
            "framework": "X 1.0", "threads": "2", **extra}


def test_model_table_plan_and_memory() -> None:
    quick = benchmark.plan(quick=True)
    assert {config for _, config, _, _ in quick} == {"small"}
    assert ("fused", "small", None, "stock") in quick and ("fused", "small", None, "fast") in quick
    assert ("convlstm", "seed", benchmark.SEED_BATCH_SIZE, "fast") in benchmark.plan(quick=False)
    rows = [benchmark.Measurement("fused", "small", "fast", 16, 10, 2.4, 11.2, 900.0),
            benchmark.Measurement("fused", "small", "stock", 16, 10, 1.2, 5.6, 950.0)]
    table = benchmark.format_table(rows)
    assert "fused" in table and "2.40" in table and "5.60" in table
    assert "training 2.0x, inference 2.0x" in benchmark.speedup_summary(rows)
    batch = benchmark.random_batch("fused", num_frames=3, image_size=4, batch_size=2, keypoint_dim=7)
    assert batch["keypoints"].shape == (2, 3, 7) and batch["frames"].dtype == np.uint8
    assert benchmark._peak_memory_mb() > 10
    assert not hasattr(benchmark, "PYTORCH_REFERENCE")  # no quoted figure: PyTorch is timed in the same run


def test_comparison_table_gives_best_median_and_paired_ratios() -> None:
    comparison = benchmark.Comparison(["pytorch", "keras", "tflite", "keras-xla"])
    comparison.rounds = [
        {"pytorch": _result(1.0, 4.0, load=0.5), "keras": _result(1.6, 6.0), "tflite": _result(None, 10.0),
         "keras-xla": {"setting": "keras-xla", "error": "exit status 1: boom"}},
        {"pytorch": _result(0.5, 2.0, load=7.5), "keras": _result(0.9, 3.0), "tflite": _result(None, 6.0),
         "keras-xla": {"setting": "keras-xla", "error": "exit status 1: boom"}},
        {"pytorch": _result(0.8, 3.0), "keras": _result(1.0, 4.5), "tflite": _result(None, 3.0),
         "keras-xla": {"setting": "keras-xla", "error": "exit status 1: boom"}},
    ]
    table = benchmark.format_comparison(comparison)
    keras_line = next(line for line in table.splitlines() if line.startswith("keras "))
    # best / median over rounds; ratios are the median of each round's keras/pytorch (1.6, 1.8, 1.25 -> 1.6),
    # not the ratio of the medians (1.0 / 0.8 = 1.25)
    assert "0.50/0.50" in keras_line  # CPU seconds per clip, training / inference
    assert "1.60 / 1.00" in keras_line and "6.00 / 4.50" in keras_line
    assert "1.60x" in keras_line and "1.50x" in keras_line
    assert "1.00/1.00" in keras_line  # per CPU second: every process here took 0.5 CPU s per clip
    comparison.rounds[0]["keras"]["infer_cpu_s_per_clip"] = 0.25  # twice PyTorch's 0.5 in round 1 only
    comparison.rounds[1]["keras"]["infer_cpu_s_per_clip"] = 0.2
    keras_line = next(
        line for line in benchmark.format_comparison(comparison).splitlines() if line.startswith("keras ")
    )
    assert "1.00/2.00" in keras_line  # the median of the rounds' 2.0, 2.5 and 1.0
    tflite_line = next(line for line in table.splitlines() if line.startswith("tflite "))
    # no training figure
    assert "10.00 / 6.00" in tflite_line and "2.50x" in tflite_line and " - " in tflite_line
    assert "keras-xla        failed: exit status 1: boom" in table
    notes = benchmark.comparison_notes(comparison)
    assert "round 1: 0.5" in notes and "round 2: 7.5" in notes and "pytorch: X 1.0, threads 2" in notes


def test_compare_skips_pytorch_without_torch_and_runs_each_round(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(benchmark, "torch_available", lambda: False)
    monkeypatch.setattr(benchmark, "run_setting", lambda name, batch_size, steps, timeout, threads:
                        calls.append((name, batch_size, steps)) or _result(1.0, 2.0))
    comparison = benchmark.compare(("pytorch", "keras", "keras-xla", "tflite"), repeats=2, steps=3,
                                   batch_size=4, progress=False)
    assert calls == [("keras", 4, 3), ("keras-xla", 4, 3), ("tflite", 4, 3), ("keras", 4, 3),
                     ("tflite", 4, 3)]
    table = benchmark.format_comparison(comparison)
    assert "pytorch          skipped: PyTorch is not installed" in table
    assert benchmark._result_line({"setting": "tflite", **_result(None, 2.345, load=3.0)}) == \
        "tflite: training - clips/s, inference 2.35 clips/s (load 3.0)"
    with pytest.raises(benchmark.ConfigError, match="nope"):
        benchmark.compare(("nope",), progress=False)


def test_each_setting_runs_in_its_own_process_with_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # the child prints the oneDNN switch it saw, as a measuring process prints its result
    script = ("import json, os; print('noise'); print('BENCH_RESULT ' + json.dumps("
              "{'onednn': os.environ.get('TF_ENABLE_ONEDNN_OPTS')}))")
    monkeypatch.setattr(benchmark, "setting_command", lambda *args: [sys.executable, "-c", script])
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert benchmark.run_setting("keras-no-onednn", 4, 1)["onednn"] == "0"
    assert benchmark.run_setting("keras", 4, 1)["onednn"] == "1"
    failing = [sys.executable, "-c", "import sys; sys.exit('no model here')"]
    monkeypatch.setattr(benchmark, "setting_command", lambda *args: failing)
    result = benchmark.run_setting("keras", 4, 1)
    assert result["error"].startswith("exit status 1") and "no model here" in result["error"]
    monkeypatch.setattr(benchmark, "setting_command",
                        lambda *args: [sys.executable, "-c", "import time; time.sleep(30)"])
    assert benchmark.run_setting("keras", 4, 1, timeout=0.5)["error"] == "stopped after 0.5 s"


def test_setting_commands() -> None:
    assert benchmark.setting_command("pytorch", 16, 4)[1:] == [str(benchmark.TORCH_SCRIPT), "--json",
                                                               "--batch-size", "16", "--steps", "4"]
    assert benchmark.setting_command("keras-xla", 8, 2)[1:] == ["-m", "benchmarks.speed", "--setting",
                                                                "keras-xla", "--batch-size", "8", "--steps",
                                                                "2"]
    assert benchmark.setting_command("tflite", 8, 2, threads=1)[-2:] == ["--threads", "1"]
    assert benchmark.SETTINGS["keras-no-onednn"][1] == {"TF_ENABLE_ONEDNN_OPTS": "0"}


@pytest.mark.parametrize("quick", [True, False])
def test_make_bench_calls_the_real_keypoint_speed_with_arguments_it_accepts(monkeypatch: pytest.MonkeyPatch,
                                                                           quick: bool) -> None:
    """The real script loads (its dataclasses need it registered) and its parser takes what make bench
    passes."""
    module = benchmark.load_keypoint_speed()
    monkeypatch.setattr(module, "real_clips", lambda *args: [])  # no agreement part

    def reached(*args, **kwargs):
        raise RuntimeError("arguments parsed, speed part reached")

    monkeypatch.setattr(module, "speed_clips", reached)
    with pytest.raises(RuntimeError, match="speed part reached"):
        module.main(benchmark.keypoint_speed_args(quick))


def _torch_original():
    """benchmarks/torch_original.py as a module (skips the test when PyTorch is not installed)."""
    pytest.importorskip("torch", reason="PyTorch is the optional 'torch' extra (pip install -e '.[torch]')")
    spec = importlib.util.spec_from_file_location("torch_original", benchmark.TORCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_original_has_the_originals_parameter_count() -> None:
    torch_original = _torch_original()
    from utils import models

    original = torch_original.OriginalFused(num_classes=11)
    assert torch_original.count_params(original) == models.ORIGINAL_PARAM_COUNT
    assert models.ORIGINAL_PARAM_COUNT == models.original_param_count(11)
    keras_seed = models.build_model("fused", models.get_config("fused", "original"), 11).count_params()
    # the difference is the peepholes (3 x 16 x 64 x 64 per ConvLSTM), PyTorch's second LSTM bias, minus the
    # batch-norm moving statistics Keras counts: 393,216 + 4,096 - 64 = 397,248, 5.9% of the Keras model
    assert torch_original.count_params(original) - keras_seed == 397_248
    assert abs(torch_original.count_params(original) - keras_seed) / keras_seed < 0.06
    without = torch_original.OriginalFused(num_classes=11, peepholes=False)
    assert torch_original.count_params(without) == keras_seed - 64 + 4_096


def test_torch_original_trains_and_predicts_at_tiny_shapes() -> None:
    torch_original = _torch_original()
    import torch

    shapes = {"num_frames": 3, "image_size": 8, "keypoint_dim": 7}
    model = torch_original.OriginalFused(num_classes=4, lstm_units=(5, 6), filters=(2, 3), kernel_size=3,
                                         **shapes)
    keypoints, frames, labels = torch_original.random_batch(2, 4, **shapes)
    logits = model(keypoints, frames)
    assert logits.shape == (2, 4)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert all(p.grad is not None for p in model.parameters())
    # batch-first: a clip's answer does not depend on the other clips of its batch (the original's defect 1)
    model.eval()
    with torch.inference_mode():
        both = model(keypoints, frames)
        first = model(keypoints[:1], frames[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)
    assert json.dumps(torch_original.SEED_SHAPES)


def _tiny_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the comparison's model so one setting is measured in seconds."""
    from utils import models

    tiny = models.get_config("fused", "original").replace(num_frames=3, image_size=8, lstm_units=(4,),
                                                      convlstm_filters=(2,), kernel_size=3)
    monkeypatch.setattr(benchmark, "COMPARISON_CONFIG", tiny)


def test_keras_setting_measures_training_and_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_comparison(monkeypatch)
    result = benchmark.measure_setting("keras", batch_size=2, steps=1)
    assert result["setting"] == "keras" and result["batch_size"] == 2
    assert result["train_clips_per_s"] > 0 and result["infer_clips_per_s"] > 0 and result["params"] > 0
    assert result["train_cpu_s_per_clip"] >= 0 and "TF intra" in result["threads"]
    with pytest.raises(benchmark.ConfigError, match="pytorch"):
        benchmark.measure_setting("pytorch")  # PyTorch runs in its own script, never in this process


def test_keras_setting_times_inference_on_the_copy_predict_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inference is timed on models.inference_model's copy (what predict --fast runs)."""
    from utils import models

    _tiny_comparison(monkeypatch)
    copies = []
    original = models.inference_model
    monkeypatch.setattr(models, "inference_model", lambda model: copies.append(original(model)) or copies[-1])
    benchmark.measure_setting("keras", batch_size=2, steps=1)
    assert len(copies) == 1
    assert any(isinstance(layer, models.ConvLSTMStack) for layer in copies[0].layers)
    assert copies[0].predict_function is not None, "the copy, not the trained model, ran predict_on_batch"


def test_bfloat16_setting_times_the_bfloat16_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils import models

    _tiny_comparison(monkeypatch)
    made = []
    original = models.with_compute_dtype
    monkeypatch.setattr(models, "with_compute_dtype", lambda model,
                        dtype: made.append(dtype) or original(model, dtype))
    result = benchmark.measure_setting("keras-bf16", batch_size=2, steps=1)
    assert made == ["bfloat16"] and result["setting"] == "keras-bf16" and result["infer_clips_per_s"] > 0


@pytest.mark.slow
def test_tflite_setting_exports_through_export_model_and_times_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_comparison(monkeypatch)
    result = benchmark.measure_setting("tflite", batch_size=2, steps=1, threads=1)
    assert result["train_clips_per_s"] is None and result["infer_clips_per_s"] > 0
    assert result["threads"] == "TFLite 1" and "TensorFlow Lite" in result["framework"]


# ----------------------------------------------------------------------------- benchmarks/keypoint_speed.py
class _CountingExtractor:
    """Stands in for MediaPipe: zeros for every frame, and counts the frames it was given."""

    frames_seen = 0

    def __init__(self, **options: object) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def extract_frame(self, frame: np.ndarray):
        return np.zeros(1662, np.float32), np.zeros(4, bool)

    def extract(self, frames: np.ndarray):
        type(self).frames_seen += len(frames)
        return np.zeros((len(frames), 1662), np.float32), np.zeros((len(frames), 4), bool)


def test_extract_breakdown_times_every_step_per_sampled_frame(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path) -> None:
    """The breakdown runs MediaPipe on the 30 sampled frames of each clip and its sum row is the sum of the
    steps."""
    from utils.data import video

    ks = benchmark.load_keypoint_speed()
    frames = np.random.default_rng(0).integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
    clips = [video.write_video(tmp_path / f"clip{i}.mp4", frames) for i in range(2)]
    monkeypatch.setattr(ks.K, "HolisticExtractor", _CountingExtractor)
    monkeypatch.setattr(ks, "_worker_startup_seconds", lambda: (1.5, 0.7))
    table = ks.extract_breakdown(clips)
    assert _CountingExtractor.frames_seen == 2 * ks.EXTRACT_FRAMES
    steps = [step for step in table if step not in ("sum of the steps",
                                                    "worker start-up (once per process, seconds)")]
    assert len(steps) == 4 and all(cpu >= 0 and wall > 0 for wall, cpu in (table[s] for s in steps))
    for index in range(2):
        assert table["sum of the steps"][index] == pytest.approx(sum(table[s][index] for s in steps))
    assert table["worker start-up (once per process, seconds)"] == (1.5, 0.7)


def test_extract_table_times_both_modes_alternately_and_projects_the_idle_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads and processes alternate within each repeat; the projection is cores / CPU seconds per frame."""
    ks = benchmark.load_keypoint_speed()
    calls = []

    def fake_extract_fps(clips, size, workers, parallel):
        calls.append(parallel)
        # wall fps, fps per CPU-s, consumed
        return (10.0, 20.0, 40.0) if parallel == "threads" else (5.0, 12.5, 20.0)

    monkeypatch.setattr(ks, "extract_fps", fake_extract_fps)
    monkeypatch.setattr(ks.os, "cpu_count", lambda: 2)
    rows = ks.extract_table([], [0], repeats=2, workers=2)
    assert calls == ["threads", "processes", "threads", "processes"]
    threads, processes = rows[2].split(" | "), rows[3].split(" | ")
    assert "2 threads" in threads[0] and "2 worker processes" in processes[0]
    assert threads[2:5] == ["10.0 / 10.0", "50.0", "40.0"]  # 1000 / 20 ms; 2 cores / 0.050 s
    assert processes[2:5] == ["5.0 / 5.0", "80.0", "25.0"]
