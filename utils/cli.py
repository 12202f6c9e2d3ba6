"""The ``python -m utils`` commands. Thin: each one parses its arguments and calls a helper.

Heavy libraries (TensorFlow, MediaPipe) are imported inside the commands, so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from utils.errors import CourseError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=32)


# ----------------------------------------------------------------------------- data
def cmd_data(args: argparse.Namespace) -> int:
    from utils import datasets, synthetic

    if args.dataset == "synthetic":
        out = Path(args.out) if args.out else None
        path = synthetic.make_dataset(out_dir=out, clips_per_class=args.clips_per_class,
                                      num_signers=args.signers, difficulty=args.difficulty,
                                      seed=args.seed, num_frames=args.frames, image_size=args.image_size,
                                      workers=args.workers)
    else:
        path = datasets.download(args.dataset, Path(args.out) if args.out else None)
    print(path)
    return 0


# ----------------------------------------------------------------------------- extract
def cmd_extract(args: argparse.Namespace) -> int:
    from utils import features

    report = features.extract_features(args.source, args.out, num_frames=args.frames,
                                       image_size=args.image_size, workers=args.workers,
                                       keypoints_from=args.keypoints_from, limit=args.limit)
    print(report.path)
    return 0


# ----------------------------------------------------------------------------- train / evaluate / bench
def cmd_train(args: argparse.Namespace) -> int:
    from utils import training

    metrics = training.train_from_file(features_path=args.features, model_name=args.model, config_name=args.config,
                                       out_dir=args.out, epochs=args.epochs, seed=args.seed,
                                       test_group=args.test_group, batch_size=args.batch_size)
    print(f"{metrics['model']} ({metrics['config']}): test accuracy {metrics['test_accuracy']:.3f}, "
          f"macro-F1 {metrics['macro_f1']:.3f} -> {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from utils import training

    metrics = training.evaluate_saved(model_dir=args.model, features_path=args.features, split=args.split)
    print(f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {metrics['n']} clips")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from utils import benchmark

    benchmark.main(quick=args.quick, steps=args.steps)
    return 0


# ----------------------------------------------------------------------------- predict / export
def cmd_predict(args: argparse.Namespace) -> int:
    from utils import inference

    if args.webcam is not None:
        return inference.run_webcam(args.model, camera_index=args.webcam, stride=args.stride)
    if not args.video:
        raise CourseError("predict needs a VIDEO path or --webcam [INDEX]")
    inference.predict_video(args.video, args.model, out_path=args.out, stride=args.stride)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from utils import inference

    for path in inference.export_model(args.model, args.out, formats=args.formats):
        print(path)
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    from utils import course

    if args.dataset:
        os.environ["DATASET"] = args.dataset
    if args.fast:
        os.environ["FAST"] = "1"
    course.run_course(only=args.only)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utils", formatter_class=_formatter,
                                     description="Skeleton-based sign-language and action recognition course.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", formatter_class=_formatter,
                       help="generate the synthetic default dataset or download a real one",
                       description="Generate the embedded synthetic dataset (offline) or download the Kaggle ASL "
                                   "dataset or UCF11 (needs internet; Kaggle credentials for the kaggle client).")
    p.add_argument("dataset", choices=["synthetic", "asl", "ucf11"])
    p.add_argument("--out", help="destination folder (default: data/synthetic or data/raw/<dataset>)")
    p.add_argument("--clips-per-class", type=int, default=40, help="synthetic: clips per sign")
    p.add_argument("--signers", type=int, default=10, help="synthetic: number of distinct signers")
    p.add_argument("--difficulty", type=float, default=1.0, help="synthetic: 0 = clean, 1 = default, 2 = hard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=30, help="synthetic: frames per clip")
    p.add_argument("--image-size", type=int, default=128, help="synthetic: rendered video size in pixels")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("extract", formatter_class=_formatter,
                       help="turn a dataset folder into one features .npz",
                       description="Extract frames and MediaPipe keypoints from a video folder "
                                   "(<root>/<class>/*.mp4, Kaggle ASL, UCF11, synthetic) or import an MP_Data "
                                   "folder (<root>/<class>/<seq>/<frame>.npy) into one .npz. Resumable.")
    p.add_argument("source", help="dataset folder")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--frames", type=int, default=30, help="frames sampled per clip (T)")
    p.add_argument("--image-size", type=int, default=64, help="frame thumbnail size S for the ConvLSTM")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--keypoints-from", choices=["auto", "mediapipe", "stored"], default="auto",
                   help="synthetic clips carry exact keypoints: 'stored' uses them, 'mediapipe' re-extracts")
    p.add_argument("--limit", type=int, default=None, help="only the first N clips (for a quick look)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("train", formatter_class=_formatter, help="train lstm / convlstm / fused on a features file",
                       description="Split, train with best-on-validation weights, evaluate once on test, and "
                                   "write metrics.json, model.keras, history.csv and figures into --out.")
    p.add_argument("--features", required=True, help="features .npz from 'extract'")
    p.add_argument("--model", required=True, choices=["lstm", "convlstm", "fused", "linear"])
    p.add_argument("--config", default=None,
                   help="configuration name (default: the recommended one for the model; 'seed' = original)")
    p.add_argument("--epochs", type=int, default=None, help="override the configuration's epochs")
    p.add_argument("--batch-size", type=int, default=None, help="override the configuration's batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-group", default=None, help="hold out this group (signer) as the test set")
    p.add_argument("--out", required=True, help="output folder of the run")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", formatter_class=_formatter, help="re-score a saved model on a features file")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--features", required=True, help="features .npz")
    p.add_argument("--split", default="all", help="which clips: all, or train/val/test as the run split them")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", formatter_class=_formatter,
                       help="training/inference speed and memory of each model on this machine")
    p.add_argument("--quick", action="store_true", help="small configuration only")
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("predict", formatter_class=_formatter,
                       help="recognise signs in a video or from a webcam with a trained model")
    p.add_argument("video", nargs="?", help="input video")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--out", default=None, help="annotated output video (.mp4)")
    p.add_argument("--stride", type=int, default=5, help="frames between windows")
    p.add_argument("--webcam", nargs="?", type=int, const=0, default=None, help="use camera INDEX instead")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", formatter_class=_formatter, help="export a keypoint model to TFLite and SavedModel")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--formats", nargs="+", default=["tflite", "savedmodel"], choices=["tflite", "savedmodel"])
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("course", formatter_class=_formatter,
                       help="the main job: run notebooks 01-06 in order and print a summary of the models",
                       description="Execute the course notebooks in order (executed copies, figures and "
                                   "metrics go under results/). DATASET and FAST environment variables apply.")
    p.add_argument("--dataset", default=None, help="synthetic | asl | ucf11 | a folder (default: $DATASET or synthetic)")
    p.add_argument("--fast", action="store_true", help="quick smoke run (small data, few epochs)")
    p.add_argument("--only", nargs="+", default=None, help="run only notebooks whose names start with these, e.g. 01 03")
    p.set_defaults(func=cmd_course)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130
