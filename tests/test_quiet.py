"""What the course prints is the course's own: TensorFlow's start-up lines stay out of notebooks and
commands."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]

# Lines TensorFlow and Keras print that say nothing to a student (and how to recognise them).
NOISE = ("Unable to register", "absl::InitializeLog", "failed call to cuInit", "computation placer",
         "use_unbounded_threadpool", "triggered tf.function retracing",
         "doesn't match the expected structure")


def noise_in(text: str) -> list[str]:
    """The lines of text that are framework noise."""
    return [line for line in text.splitlines() if any(pattern in line for pattern in NOISE)]


def test_noise_in_finds_the_lines_it_should() -> None:
    sample = ("E0000 00:00:1 cuda_dnn.cc:8579] Unable to register cuDNN factory\nepoch 1: accuracy 0.5\n"
              "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert len(noise_in(sample)) == 2 and noise_in("accuracy 0.5\n") == []


@pytest.mark.slow
def test_training_and_prediction_print_no_framework_noise(tmp_path: Path) -> None:
    """Versions, a tiny training of the linear and an LSTM model, predictions with dict inputs: no noise."""
    script = """
from tests.tiny_runs import NUM_FRAMES, tiny_features
from utils import config, models
config.print_versions(("numpy", "tensorflow", "keras"))
from utils.training import loop as training
features = tiny_features()
for name in ("linear", "lstm"):
    cfg = models.get_config(name, "small").replace(num_frames=NUM_FRAMES, epochs=2, batch_size=8)
    if name == "lstm":
        cfg = cfg.replace(lstm_units=(8,))
    training.train(features, name, cfg, out_dir=OUT + "/" + name, verbose=0)
print("finished")
""".replace("OUT", repr(str(tmp_path)))
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "finished" in result.stdout
    assert noise_in(result.stdout + result.stderr) == []


def test_published_notebooks_carry_no_framework_noise() -> None:
    """The executed chapters a reader sees on GitHub (docs/notebooks, written by `make run` then     `python
    -m utils course --publish`) hold the course's output only."""
    import json

    published = sorted((PROJECT_DIR / "docs" / "notebooks").glob("*.ipynb"))
    if not published:
        pytest.skip("docs/notebooks holds no executed chapter yet (make run, then python -m utils course "
                    "--publish)")
    found = {}
    for path in published:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                if noise_in(text):
                    found.setdefault(path.name, []).extend(noise_in(text))
    assert found == {}
