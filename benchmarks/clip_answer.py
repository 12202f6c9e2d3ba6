"""Which clip answer should `predict` give: the whole clip as one window, or the mean of the window
probabilities?

Runs predict's own code (:func:`utils.predict.predict_clip`) on clips of ONE sign whose keypoints are
known, so only the answer rule differs:

* synthetic: a recommended LSTM trained on the synthetic features file, then new signers (never seen
  in training) signing each of the 10 signs at 0.67x-2x the training clips' duration, and signing at
  the training speed with 0.5 s of stillness before and after;
* real (when ../shared/real exists and --real-keypoints is given): a recommended LSTM trained on the
  real MP_Data signers (sequences.npz + crowd.npz), then the 24 real ASL videos, whose per-frame
  MediaPipe keypoints were extracted beforehand by ``predict.read_video_keypoints`` (see --help).

Usage::

    python benchmarks/clip_answer.py [--epochs 30] [--real-keypoints /tmp/real_kp] [--out /tmp/clip_answer]

Prints one table per source: accuracy of "whole" (the whole clip when it is at most ONE_SIGN_SPANS
training spans long, else the mean of windows), "mean" (predict's default: always the mean of windows)
and "whole always" (the whole clip however long).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import (
    keypoints as K,  # noqa: E402
    synthetic,
)
from utils.data.features import FeatureSet  # noqa: E402
from utils.serving import predict  # noqa: E402
from utils.training import loop as training
from utils.training.runs import load_run  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
FPS = 30.0
RULES = ("whole", "mean", "whole always")


def answers(classify: predict.WindowClassifier, keypoints: np.ndarray, fps: float) -> dict[str, str]:
    """The label each rule gives for one clip of per-frame keypoints (N, 1662)."""
    clip = predict.VideoKeypoints(num_frames=len(keypoints), fps=fps, keypoints=keypoints.astype(np.float32),
                                  detected=K.parts_present(keypoints), thumbnails=None)
    window = classify.spec.window_frames(fps)
    stride = max(1, window // 4)
    return {"whole": predict.predict_clip(classify, clip, window, stride, "whole").answer.label,
            "mean": predict.predict_clip(classify, clip, window, stride, "mean").answer.label,
            "whole always": predict.predict_clip(classify, clip, len(keypoints), len(keypoints),
                                                 "whole").answer.label}


def table(title: str, rows: dict[str, list[tuple[str, dict[str, str]]]]) -> None:
    """Print accuracy per rule for each group of clips."""
    print(f"\n{title}\n| clips | n | " + " | ".join(RULES) + " |\n|---|---|" + "---|" * len(RULES))
    for group, results in rows.items():
        cells = [f"{np.mean([got[rule] == true for true, got in results]):.2f}" for rule in RULES]
        print(f"| {group} | {len(results)} | " + " | ".join(cells) + " |")


def synthetic_study(out: Path, epochs: int) -> None:
    """Train on the synthetic features, answer for new signers at several speeds and with still frames."""
    features_path = Path(os.environ.get("COURSE_DATA_DIR", "data")) / "features" / "synthetic_T30_S64.npz"
    training.train(features_path, "lstm", None, out_dir=out / "synthetic_lstm", epochs=epochs, verbose=0,
                   measure_speed=False)
    model, run_info = load_run(out / "synthetic_lstm")
    classify = predict.WindowClassifier(model, run_info)
    rng = np.random.default_rng(2024)
    signers = synthetic.make_signers(3, rng)
    rows: dict[str, list] = {}
    for frames, hold in ((20, 0), (30, 0), (45, 0), (60, 0), (30, 15)):
        name = f"{frames} frames" + (f" + {hold} still before and after" if hold else "")
        for signer in signers:
            for sign in synthetic.SIGNS:
                exact = synthetic.simulate_keypoints(sign, signer, rng, 1.0, frames)
                keypoints, _ = synthetic.simulate_detection(exact, rng, 1.0)
                if hold:
                    keypoints = np.concatenate([np.repeat(keypoints[:1], hold, 0), keypoints,
                                                np.repeat(keypoints[-1:], hold, 0)])
                rows.setdefault(name, []).append((sign, answers(classify, keypoints, FPS)))
    table(f"synthetic, new signers, training clips {run_info['sampling']}", rows)


def real_features() -> FeatureSet:
    """The real MP_Data signers (four + forty) as one keypoints-only FeatureSet, groups = signers."""
    parts = [np.load(REAL / "mp_data_signers" / name) for name in ("sequences.npz", "crowd.npz")]
    keypoints = np.concatenate([K.mp_data_to_original(p["keypoints"].astype(np.float32)) for p in parts])
    names = np.concatenate([p["labels"].astype(str) if p["labels"].dtype.kind in "US" else
                            np.asarray(p["classes"]).astype(str)[p["labels"]] for p in parts])
    classes = sorted(set(names.tolist()))
    signers = np.concatenate([p["signers"].astype(str) for p in parts])
    return FeatureSet(keypoints=keypoints, frames=None, labels=np.array([classes.index(n) for n in names]),
                      classes=classes, groups=signers, split=np.full(len(names), ""),
                      paths=np.full(len(names), ""), meta={"path": str(REAL / "mp_data_signers")})


def real_study(out: Path, epochs: int, keypoint_dir: Path) -> None:
    """Train on the real MP_Data signers, answer for the 24 real ASL videos."""
    training.train(real_features(), "lstm", None, out_dir=out / "real_lstm", epochs=epochs, verbose=0,
                   measure_speed=False)
    model, run_info = load_run(out / "real_lstm")
    classify = predict.WindowClassifier(model, run_info)
    rows: dict[str, list] = {}
    for path in sorted(keypoint_dir.glob("*__*.npz")):
        sign = path.name.split("__")[0]
        with np.load(path) as data:
            keypoints, fps = data["keypoints"], float(data["fps"])
        group = (
            "up to 2 spans"
            if len(keypoints) <= predict.ONE_SIGN_SPANS * classify.spec.window_frames(fps)
            else "longer"
        )
        result = answers(classify, keypoints, fps)
        rows.setdefault(group, []).append((sign, result))
        rows.setdefault("all 24", []).append((sign, result))
    table(f"real ASL videos (7 signs), model trained on real MP_Data signers ({len(run_info['classes'])} "
          "signs)",
          rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="/tmp/clip_answer")
    parser.add_argument("--real-keypoints", default=None,
                        help="folder of <sign>__<source>.npz (keypoints, fps) written with "
                             "utils.serving.predict.read_video_keypoints for each real ASL video")
    parser.add_argument("--only", choices=["synthetic", "real"], default=None)
    args = parser.parse_args()
    out = Path(args.out)
    if args.only in (None, "synthetic"):
        synthetic_study(out, args.epochs)
    if args.only in (None, "real") and args.real_keypoints and REAL.is_dir():
        real_study(out, args.epochs, Path(args.real_keypoints))


if __name__ == "__main__":
    main()
