"""Fast checks of the browser page's pieces, without a browser: the JavaScript window sampling against
Python's, the y4m writer, and the messages of ``export --web``."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tiny_runs import convlstm_run, features, lstm_run  # noqa: F401  (pytest fixtures)
from utils.errors import CourseError

WINDOWS_JS = Path(__file__).resolve().parents[1] / "web" / "src" / "windows.js"


def run_node(script: str) -> object:
    """Run an ES module script with Node.js and return what it printed as JSON."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no Node.js found (apt install nodejs)")
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_javascript_windows_sample_as_python():
    from utils.data.video import sample_frame_indices
    from utils.serving.predict import window_starts

    cases = [(1, 30), (7, 30), (30, 30), (31, 30), (45, 30), (100, 8), (2, 1)]
    script = (f"import {{ sampleFrameIndices, windowStarts }} from '{WINDOWS_JS.as_uri()}';\n"
              f"const cases = {json.dumps(cases)};\n"
              "console.log(JSON.stringify({samples: cases.map(([n, t]) => sampleFrameIndices(n, t)),"
              " starts: cases.map(([n, t]) => windowStarts(n * 3, n, Math.max(1, Math.floor(n / 4))))}));")
    got = run_node(script)
    for (available, count), indices, starts in zip(cases, got["samples"], got["starts"]):
        assert indices == sample_frame_indices(available, count)[0].tolist(), (available, count)
        assert starts == window_starts(available * 3, available, max(1, available // 4)), available


def test_write_y4m(tmp_path):
    from utils.data.video import iter_frames
    from utils.serving.web import write_y4m

    frames = np.zeros((3, 32, 48, 3), np.uint8)
    frames[:, :, :24] = (200, 40, 40)
    path = write_y4m(tmp_path / "clip.y4m", frames, fps=25)
    assert path.read_bytes().startswith(b"YUV4MPEG2 W48 H32 F25:1")
    back = list(iter_frames(path))
    assert len(back) == 3 and back[0].shape == (32, 48, 3)
    assert np.abs(back[0].astype(int) - frames[0]).mean() < 8  # 4:2:0 colours, nearly the same picture
    with pytest.raises(ValueError, match="even"):
        write_y4m(tmp_path / "odd.y4m", np.zeros((1, 31, 48, 3), np.uint8))


def test_export_needs_out_or_web(lstm_run, capsys):
    from utils import cli

    assert cli.main(["export", "--model", str(lstm_run)]) != 0
    assert "--web FOLDER" in capsys.readouterr().err


def test_web_page_refuses_a_frame_model(tmp_path, convlstm_run):
    from utils.serving.web import build_web

    with pytest.raises(CourseError, match="keypoint models only"):
        build_web(convlstm_run, tmp_path / "site", verbose=False)
    assert not (tmp_path / "site").exists()


def test_runtime_log_lines_are_told_from_errors():
    from utils.serving.web import is_runtime_log

    assert is_runtime_log("W0000 00:00:1796586975.990000 1 gl_context.cc:1000] OpenGL error checking is off")
    assert not is_runtime_log("TypeError: x is undefined")
