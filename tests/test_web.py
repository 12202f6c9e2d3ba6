"""The browser page in a real browser: headless Chromium, a course-made clip as camera, predict's answer.

A tiny LSTM is trained on synthetic signers (keypoints only, seconds); ``build_web`` writes its page (npm ci
the first time); Chromium opens the page with a fake camera that plays a y4m clip of a synthetic signer; the
page must show the same top sign as ``python -m utils predict`` on the same clip, with probabilities close
to predict's, within a time limit and with no console error.

The clip is a signer holding one moment of a sign (a still picture, repeated): headless Chromium on two
cores runs MediaPipe's WebGL graphs in software at a few seconds per frame, so a moving clip would give
the page windows of other frames than predict's; a still one gives both the same frames whatever the speed.

Skips only when no Chromium or no npm is found (CI installs both: .ci/run).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SIGNS = ("hello", "thanks", "yes")
NUM_FRAMES = 16  # frames per synthetic training clip
STILL_FRAMES = 30  # frames of the fake camera's clip (one second at 30 fps, looping)
TIME_LIMIT = 240  # seconds for the page to start and give its answer (software WebGL: ~5 s per frame here)
WINDOWS = 3  # windows the page's answer must be the mean of
PROBABILITY_TOLERANCE = (
    0.15  # page vs predict, each class (JavaScript vs Python MediaPipe, y4m colour decoding)
)
XY_TOLERANCE = (
    0.02  # mean |x, y| difference of a part, page vs Python, on the same picture (1.0 = picture side)
)


def _tools():
    from utils.serving import web

    chromium, npm = web.find_chromium(), web.find_npm()
    if chromium is None:
        pytest.skip("no Chromium found (apt install chromium, or set CHROMIUM=/path/to/chrome)")
    if npm is None:
        pytest.skip("no npm found (apt install nodejs npm): the page's packages cannot be installed")
    return chromium


@pytest.fixture(scope="module")
def chromium():
    return _tools()


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory, chromium) -> Path:
    """A tiny LSTM trained for a few seconds on the keypoints of synthetic signers of three signs."""
    from utils import models
    from utils.data import synthetic
    from utils.data.features import FeatureSet
    from utils.training import loop as training

    rng = np.random.default_rng(0)
    signers = synthetic.make_signers(6, rng)
    keypoints, labels, groups = [], [], []
    for _ in range(2):
        for signer in signers:
            for label, sign in enumerate(SIGNS):
                exact = synthetic.simulate_keypoints(sign, signer, rng, 0.5, NUM_FRAMES)
                keypoints.append(synthetic.simulate_detection(exact, rng, 0.5)[0])
                labels.append(label)
                groups.append(signer.id)
    count = len(labels)
    features = FeatureSet(
        keypoints=np.asarray(keypoints, dtype=np.float32),
        frames=np.zeros((count, NUM_FRAMES, 8, 8, 3), np.uint8),
        labels=np.asarray(labels),
        classes=list(SIGNS),
        groups=np.asarray(groups),
        split=np.full(count, ""),
        paths=np.array([f"clip{i}.mp4" for i in range(count)]),
    )
    config = models.get_config("lstm", "small").replace(
        num_frames=8, image_size=8, lstm_units=(16,), epochs=15, batch_size=8
    )
    out_dir = tmp_path_factory.mktemp("web_runs") / "lstm"
    training.train(features, "lstm", config, out_dir=out_dir, verbose=0)
    return out_dir


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory) -> Path:
    """A y4m clip of a synthetic signer holding one moment of 'hello' (one rendered picture, repeated): the
    first moment from the middle of the sign on in which Python MediaPipe finds the pose and a hand, and the
    same parts every time (this signer: the left hand, not the right one, so swapped hands show)."""
    from utils.data import synthetic
    from utils.data.keypoints import HolisticExtractor
    from utils.serving.web import write_y4m

    rng = np.random.default_rng(2)
    signer = synthetic.make_signers(1, rng)[0]
    clip = synthetic.generate_clip(
        "hello", signer, rng, difficulty=0.3, num_frames=NUM_FRAMES, image_size=256
    )
    import cv2

    for index in [*range(NUM_FRAMES // 2, NUM_FRAMES), *range(NUM_FRAMES // 2)]:
        # the picture as it comes out of the y4m file (colours stored as 4:2:0 YUV)
        picture = cv2.cvtColor(
            cv2.cvtColor(clip.frames[index], cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420
        )
        with HolisticExtractor(warn_small_frames=False) as extractor:
            found = np.array([extractor.extract_frame(picture)[1] for _ in range(5)])
        if (found == found[0]).all() and found[0, 1] and found[0, 2:].any():
            break
    else:
        pytest.fail("no moment of the synthetic clip in which MediaPipe finds the pose and a hand")
    still = np.repeat(clip.frames[index][None], STILL_FRAMES, axis=0)
    return write_y4m(tmp_path_factory.mktemp("clips") / "still.y4m", still)


def python_clip_frame(video: Path):
    """The first frame of a video as Python decodes it (RGB)."""
    from utils.data.video import iter_frames

    return next(iter(iter_frames(video)))


def test_page_answers_as_predict(tmp_path, chromium, synthetic_run, still_clip):
    import cv2
    from playwright.sync_api import sync_playwright

    from utils.data import keypoints as K
    from utils.serving import predict, web

    expected = predict.predict_video(still_clip, synthetic_run, progress=False, verbose=False)
    # which parts Python MediaPipe finds in the clip (face, pose, left hand, right hand): the page must agree
    python_clip = predict.read_video_keypoints(still_clip, True, None, progress=False)
    python_found = python_clip.detected.mean(axis=0)
    assert python_found[1] > 0.5 and python_found[2:].max() > 0.5, (
        f"MediaPipe should find the pose and a hand in the course-made clip: {python_found}"
    )
    site = web.build_web(synthetic_run, tmp_path / "site", verbose=False)
    assert json.loads((site / "model" / "export.json").read_text())["tflite_ops"], "no operator list"
    errors: list[str] = []
    with web.StaticServer(site) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=web.browser_args(still_clip))
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: m.type == "error" and not web.is_runtime_log(m.text) and errors.append(m.text),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            started = time.monotonic()
            page.goto(url + "index.html")
            page.wait_for_function(
                f"Number(document.getElementById('answer').dataset.windows) >= {WINDOWS}",
                timeout=TIME_LIMIT * 1000,
                polling=1000,
            )
            seconds = time.monotonic() - started
            shown = page.get_attribute("#answer", "data-label")
            state = page.evaluate(
                "({p: window.signPage.state.answerProbabilities, found: "
                "window.signPage.state.found, frames: window.signPage.state.frames})"
            )
            # the page's vector of the very picture Python saw (the y4m's decoded frame, as lossless PNG)
            page.evaluate("window.signPage.pause()")
            picture = cv2.imencode(".png", cv2.cvtColor(python_clip_frame(still_clip), cv2.COLOR_RGB2BGR))[1]
            for _ in range(3):  # a few times, as the camera's repeated frames: MediaPipe tracks and smooths
                vector = page.evaluate(
                    "(png) => window.signPage.keypointsOfPng(png)",
                    base64.b64encode(picture.tobytes()).decode(),
                )["vector"]
        finally:
            browser.close()
    assert not errors, f"console errors: {errors}"
    page_found = np.asarray(state["found"]) / max(state["frames"], 1)
    # a part Python finds in most frames (or hardly ever) the page finds in most frames too (or seldom):
    # left and right not swapped; parts Python finds now and then are left out
    clear = (python_found >= 0.8) | (python_found <= 0.2)
    assert np.array_equal((page_found > 0.5)[clear], (python_found > 0.5)[clear]), (
        f"parts found (face, pose, left, right): page {page_found}, Python {python_found}"
    )
    # the same numbers in the same places: face, pose, left hand, right hand
    # (catches a wrong order or swapped hands)
    page_parts = K.split_parts(np.asarray(vector, np.float32))
    python_parts = K.split_parts(python_clip.keypoints[-1])
    for part in K.PARTS:
        if np.any(python_parts[part] != 0) and np.any(page_parts[part] != 0):
            difference = float(np.abs(page_parts[part][:, :2] - python_parts[part][:, :2]).mean())
            assert difference < XY_TOLERANCE, f"{part}: page and Python differ by {difference:.3f} on average"
    assert shown == expected.answer.label, (
        f"page: {shown} {np.round(state['p'], 3)}, predict: "
        f"{expected.answer.label} {np.round(expected.answer.probabilities, 3)}"
    )
    difference = np.abs(np.asarray(state["p"]) - np.asarray(expected.answer.probabilities)).max()
    assert difference < PROBABILITY_TOLERANCE, (
        f"probabilities differ by {difference:.3f}: page "
        f"{np.round(state['p'], 3)}, predict "
        f"{np.round(expected.answer.probabilities, 3)}"
    )
    print(
        f"page answered {shown} {np.round(state['p'], 3)} in {seconds:.0f} s ({state['frames']} frames); "
        f"predict {expected.answer.label} {np.round(expected.answer.probabilities, 3)}; parts found: page "
        f"{np.round(page_found, 2)}, Python {np.round(python_found, 2)}"
    )
