"""The ``python -m utils`` commands. Thin: each one parses its arguments and calls a helper.

Heavy libraries (TensorFlow, MediaPipe) are imported inside the commands, so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from utils import __version__, config as defaults
from utils.errors import CourseError


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=32)


# ----------------------------------------------------------------------------- data
def cmd_data(args: argparse.Namespace) -> int:
    from utils.data import datasets, synthetic

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


# ----------------------------------------------------------------------------- record / merge
def cmd_record(args: argparse.Namespace) -> int:
    from utils.data import record

    camera = args.camera if args.camera is None or not args.camera.isdigit() else int(args.camera)
    summary = record.record(args.signs, args.signer, clips=args.clips, out=args.out, camera=camera,
                            order=args.order, yes=args.yes, keys=args.keys, seconds=args.seconds,
                            countdown=args.countdown, session=args.session, mirror=args.mirror,
                            seed=args.seed)
    print(summary["out"])
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from utils.data import recordings

    manifest = recordings.merge(args.sources, args.out, group_by=args.group_by)
    print(recordings.describe_manifest(manifest))
    print(manifest.parent)
    return 0


# ----------------------------------------------------------------------------- extract
def cmd_extract(args: argparse.Namespace) -> int:
    from utils.data import features

    report = features.extract_features(args.source, args.out, num_frames=args.frames,
                                       image_size=args.image_size, workers=args.workers,
                                       keypoints_from=args.keypoints_from, limit=args.limit,
                                       hand_size=args.hand_size, mediapipe_size=args.mediapipe_size,
                                       parallel=args.parallel)
    print(report.path)
    return 0


# ----------------------------------------------------------------------------- train / evaluate
def cmd_train(args: argparse.Namespace) -> int:
    from utils.training import loop as training

    metrics = training.train_from_file(features_path=args.features, model_name=args.model,
                                       config_name=args.config, out_dir=args.out, epochs=args.epochs,
                                       seed=args.seed, test_group=args.test_group, batch_size=args.batch_size,
                                       num_frames=args.frames, ensemble=args.ensemble,
                                       validation=args.validation, resume=args.resume,
                                       tensorboard=args.tensorboard, deterministic=args.deterministic,
                                       mixed_precision=args.mixed_precision)
    print(f"{metrics['model']} ({metrics['config']}): test accuracy {metrics['test_accuracy']:.3f}, "
          f"macro-F1 {metrics['macro_f1']:.3f} -> {args.out}")
    return 0


def cmd_crossval(args: argparse.Namespace) -> int:
    from utils.evaluation import crossval
    from utils.training import loop as training

    config = training.with_overrides(training.resolve_config(args.model, args.config), args.ensemble,
                                     args.validation)
    summary = crossval.run(args.features, args.model, config, out_dir=args.out, folds=args.folds,
                           seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    print(f"{crossval.describe(summary)} -> {Path(args.out) / crossval.SUMMARY_FILE}")
    return 0


def _add_validation(parser: Any) -> None:
    """--[no-]validation: override the configuration's ``validation`` (train and crossval)."""
    parser.add_argument("--validation", action=argparse.BooleanOptionalAction, default=None,
                        help="override the configuration's choice: --validation carves validation signers "
                             "from the training side (early stopping, best epoch); --no-validation trains "
                             "every training signer for the configuration's epochs and keeps the last "
                             "weights (the recommended lstm's own setting)")


def _add_fast(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true",
                        help="run the fast inference copy of the model (utils/models/fast.py: the same "
                             "answers "
                             "within rounding, less work on a CPU); the output says when it was used")


def _folds(value: str) -> str | int:
    """argparse type of --folds: 'loso' or K >= 2."""
    from utils.evaluation.crossval import parse_folds  # light: numpy only

    try:
        return parse_folds(value)
    except CourseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _pixels(value: str) -> int:
    """argparse type of --mediapipe-size: 0 or a positive number of pixels."""
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise argparse.ArgumentTypeError("expected 0 (full resolution) or a positive number of pixels, got "
                                         f"{value!r}")
    return size


def cmd_evaluate(args: argparse.Namespace) -> int:
    from utils.evaluation import evaluate as evaluation

    metrics = evaluation.evaluate_saved(model_dir=args.model, features_path=args.features, split=args.split,
                                        fast=args.fast)
    used = f" ({metrics['inference']})" if "inference" in metrics else ""
    print(f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {metrics['n']} "
          f"clips{used}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from utils.evaluation import report

    if args.check:
        stale = report.differences()
        for line in stale:
            print(f"differs from its results file: {line}")
        if stale:
            print("run `python -m utils report` to rewrite them (never edit a generated table by hand)")
        return 1 if stale else 0
    changed = report.write()
    print("\n".join(f"rewrote {path}" for path in changed) or "every generated table is up to date")
    return 0


# ----------------------------------------------------------------------------- predict / export
def cmd_predict(args: argparse.Namespace) -> int:
    if args.webcam is not None:
        from utils.serving import webcam

        return webcam.run_webcam(args.model, camera_index=args.webcam, stride=args.stride, window=args.window,
                                 mediapipe_size=args.mediapipe_size, fast=args.fast)
    if not args.video:
        raise CourseError("predict needs a VIDEO path or --webcam [INDEX]")
    from utils.serving import predict

    predict.predict_video(args.video, args.model, out_path=args.out, stride=args.stride, window=args.window,
                          json_path=args.json, answer=args.answer, mediapipe_size=args.mediapipe_size,
                          fast=args.fast)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from utils.serving import export

    if args.out is None and args.web is None:
        raise CourseError("export needs --out FOLDER (TFLite and SavedModel files), --web FOLDER (the "
                          "browser page), or both")
    if args.out is not None:
        # prints each file and its size
        export.export_model(args.model, args.out, formats=args.formats, fp16=args.fp16, fast=args.fast)
    if args.web is not None:
        from utils.serving import web

        web.build_web(args.model, args.web)
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    from utils import course

    if args.dataset:
        os.environ["DATASET"] = args.dataset
    if args.fast:
        os.environ["FAST"] = "1"
    if args.publish:
        for path in course.publish():
            print(f"published {path}")
        return 0
    course.run_course(only=args.only)
    return 0


def program_name(argv0: str | None = None) -> str:
    """How the user called us: 'sign-course' (the installed script) or 'python -m utils'."""
    name = Path(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")).name
    return "python -m utils" if name in ("__main__.py", "", "-c") else name


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """What to train and how, shared by train and crossval: the data, the model, its configuration and
    overrides."""
    group = p.add_argument_group("model and training")
    group.add_argument("--features", required=True,
                       help="features .npz or store folder from 'extract' (with signers, for folds by "
                            "signer)")
    group.add_argument("--model", required=True, choices=["lstm", "convlstm", "fused", "linear", "boosted"])
    group.add_argument("--config", default=None,
                       help="configuration: recommended (default), small, or original (the 2022 project's, "
                            "for GPUs)")
    group.add_argument("--epochs", type=int, default=None, help="override the configuration's epochs")
    group.add_argument("--batch-size", type=int, default=None, help="override the configuration's batch size")
    group.add_argument("--ensemble", type=int, default=None, metavar="N",
                       help="override the configuration's number of networks averaged (seeds seed .. "
                            "seed+N-1)")
    group.add_argument("--seed", type=int, default=0, help="training seed (and, for crossval, the fold "
                                                           "assignment)")
    _add_validation(group)


def _data_parser(sub: Any) -> None:
    p = sub.add_parser("data", formatter_class=_formatter,
                       help="generate the synthetic default dataset or download a real one",
                       description="Generate the embedded synthetic dataset (offline) or download the Kaggle "
                                   "ASL dataset or UCF11 (needs internet; Kaggle credentials for the kaggle "
                                   "client).")
    p.add_argument("dataset", choices=["synthetic", "asl", "ucf11"])
    p.add_argument("--out", help="destination folder (default: data/synthetic or data/raw/<dataset>)")
    p.add_argument("--clips-per-class", type=int, default=defaults.SYNTHETIC_CLIPS_PER_CLASS,
                   help="synthetic: clips per sign")
    p.add_argument("--signers", type=int, default=defaults.SYNTHETIC_SIGNERS,
                   help="synthetic: number of distinct signers")
    p.add_argument("--difficulty", type=float, default=1.0,
                   help="synthetic: 0 = clean, 1 = default, 2 = hard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=defaults.NUM_FRAMES, help="synthetic: frames per clip")
    p.add_argument("--image-size", type=int, default=defaults.SYNTHETIC_RENDER_SIZE,
                   help="synthetic: rendered video size in pixels")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=cmd_data)

def _record_parser(sub: Any) -> None:
    p = sub.add_parser("record", formatter_class=_formatter,
                       help="record your own signs with a camera (window with skeleton, countdown, review)",
                       description="Record clips of each sign: a countdown, the recording, then a review "
                                   "screen (k/Enter keep, r redo, s skip, q quit). Kept clips (video, "
                                   "keypoints, a row of manifest.csv) are written at once; run the same "
                                   "command again to record what is missing. See docs/recording.md.")
    p.add_argument("--signs", nargs="+", required=True,
                   help="the signs to record, e.g. hello thanks iloveyou")
    p.add_argument("--signer", required=True, help="your name or a pseudonym (letters, digits, _ and -)")
    p.add_argument("--clips", type=int, default=5,
                   help="clips of each sign wanted for this signer: in total, or in --session when one is "
                        "named")
    p.add_argument("--out", default=None, help="recordings folder (default: data/raw/mine)")
    p.add_argument("--camera", default=None,
                   help="camera index, or a video file standing in for a camera (default: tries 0, 1, 2)")
    p.add_argument("--order", choices=["random", "fixed"], default="random",
                   help="signs shuffled (random: less drift between signs) or one sign after the other")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    p.add_argument("--countdown", type=float, default=3.0, help="seconds of countdown before each clip")
    p.add_argument("--session", default=None,
                   help="session name; --clips then counts this session's clips (default: the date and time, "
                        "and --clips counts every session)")
    p.add_argument("--mirror", action="store_true", help="save the videos flipped left-right (the preview is "
                                                          "always a mirror image)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random order")
    p.add_argument("--yes", action="store_true", help="no window: keep every clip (for scripts)")
    p.add_argument("--keys", default=None,
                   help="review decisions as letters instead of the keyboard (k keep, r redo, s skip, "
                        "q quit), e.g. 'krks'; for tests and demos")
    p.set_defaults(func=cmd_record)


def _merge_parser(sub: Any) -> None:
    p = sub.add_parser("merge", formatter_class=_formatter,
                       help="one manifest over several dataset folders (your recordings, MP_Data, ...)",
                       description="Write OUT/manifest.csv listing the clips of every SOURCE folder (any "
                                   "layout extract reads); signs with the same name (letter case ignored) "
                                   "become one class; a source without signers counts as one signer named "
                                   "after its folder.")
    p.add_argument("sources", nargs="+", help="dataset folders")
    p.add_argument("--out", required=True, help="folder of the merged manifest.csv")
    p.add_argument("--group-by", choices=["signer", "session", "signer_session"], default="signer",
                   help="what the signer column of the merged manifest holds; 'session' to cross-validate "
                        "one person's recordings by session")
    p.set_defaults(func=cmd_merge)


def _extract_parser(sub: Any) -> None:
    p = sub.add_parser("extract", formatter_class=_formatter,
                       help="turn a dataset folder into one features .npz (or a features store folder)",
                       description="Extract frames and MediaPipe keypoints from a video folder "
                                   "(<root>/<class>/*.mp4, Kaggle ASL, UCF11, synthetic) or import an "
                                   "MP_Data folder (<root>/<class>/<seq>/<frame>.npy) into one .npz. "
                                   "Resumable.")
    p.add_argument("source", help="dataset folder")
    p.add_argument("--out", required=True,
                   help="output: a name ending in .npz writes one compressed file; any other name a features "
                        "store folder (one .npy per array, memory-mapped when read: for datasets larger than "
                        "memory)")
    p.add_argument("--frames", type=int, default=defaults.NUM_FRAMES, help="frames sampled per clip (T)")
    p.add_argument("--image-size", type=int, default=defaults.IMAGE_SIZE,
                   help="frame thumbnail size S for the ConvLSTM")
    p.add_argument("--workers", type=int, default=None, help="clips extracted at once (default: all cores)")
    p.add_argument("--parallel", choices=list(defaults.EXTRACT_PARALLEL_MODES),
                   default=defaults.EXTRACT_PARALLEL,
                   help="run those clips as threads of one process (each its own MediaPipe graph; less CPU "
                        "per frame, see benchmarks/keypoint_speed.md) or as worker processes")
    p.add_argument("--keypoints-from", choices=["auto", "mediapipe", "stored"], default="auto",
                   help="synthetic clips carry exact keypoints: 'stored' uses them, 'mediapipe' re-extracts")
    p.add_argument("--limit", type=int, default=None, help="only the first N clips (for a quick look)")
    p.add_argument("--hand-size", type=int, default=32,
                   help="side in pixels of the crops around each hand, cut from full-resolution frames (0 = "
                        "none)")
    p.add_argument("--mediapipe-size", type=_pixels, default=defaults.MEDIAPIPE_SIZE,
                   help="longer side in pixels of the frames MediaPipe sees (0 = full resolution); recorded "
                        "in the features file, and predict uses the same")
    p.set_defaults(func=cmd_extract)


def _train_parser(sub: Any) -> None:
    p = sub.add_parser("train", formatter_class=_formatter, help="train lstm / convlstm / fused on a "
                                                                 "features file",
                       description="Split, train (best-on-validation weights, or the last with "
                                   "--no-validation), "
                                   "evaluate once on test, and "
                                   "write metrics.json, model.keras, history.csv and figures into --out.")
    _add_model_options(p)
    p.add_argument("--frames", type=int, default=None,
                   help="override the configuration's frames per clip T (e.g. --config original --frames 20 "
                        "for UCF11)")
    p.add_argument("--test-group", default=None, help="hold out this group (signer) as the test set")
    p.add_argument("--out", required=True, help="output folder of the run")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of the same --out at the epoch after its last checkpoint",
    )
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard logs into <out>/tensorboard")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                   help="deterministic TensorFlow ops (default: on without a GPU, off with one, where they "
                        "are slow)")
    p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                   help="float16 compute with float32 weights and softmax (default: on with a GPU, off on "
                        "CPU)")
    p.set_defaults(func=cmd_train)


def _crossval_parser(sub: Any) -> None:
    p = sub.add_parser("crossval", formatter_class=_formatter,
                       help="cross-validate a model by signer (group): one run per fold, mean and 95%% "
                            "interval",
                       description="Leave-one-group-out (or K group-disjoint folds): each fold trains with "
                                   "its "
                                   "signers held out as test and, where the configuration uses them, "
                                   "validation "
                                   "signers taken from the training side. "
                                   "Writes crossval.json, folds.png, confusion_matrix.png and fold_<k>/ run "
                                   "folders "
                                   "into --out. Resumable: finished folds are not retrained.")
    _add_model_options(p)
    p.add_argument("--folds", type=_folds, default="loso", help="'loso' (one fold per group) or K folds")
    p.add_argument("--out", required=True, help="output folder (crossval.json, figures, fold_<k>/)")
    p.set_defaults(func=cmd_crossval)


def _evaluate_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", formatter_class=_formatter, help="re-score a saved model on a features "
                                                                    "file")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--features", required=True, help="features .npz or store folder")
    p.add_argument("--split", default="all", help="which clips: all, or train/val/test as the run split them")
    _add_fast(p)
    p.set_defaults(func=cmd_evaluate)


def _report_parser(sub: Any) -> None:
    p = sub.add_parser("report", formatter_class=_formatter,
                       help="rewrite the result tables of the README and docs/ from the results files",
                       description="Every table between <!-- table: NAME --> and <!-- end table --> in "
                                   "README.md and docs/*.md is written from the JSON files of benchmarks/.")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table differs")
    p.set_defaults(func=cmd_report)


def _predict_parser(sub: Any) -> None:
    p = sub.add_parser("predict", formatter_class=_formatter,
                       help="recognise signs in a video or from a webcam with a trained model",
                       description="Slide windows over a video (each sampled like a training clip), print "
                                   "one line per window and end with ONE line: the answer for the clip.")
    p.add_argument("video", nargs="?", help="input video")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--out", default=None, help="annotated output video (.mp4)")
    p.add_argument("--json", default=None, help="write every window and the clip's answer to this JSON file")
    p.add_argument("--window", default=None,
                   help="frames per window (30) or seconds (1.5s); None: as long as the training clips")
    p.add_argument("--stride", default=None,
                   help="frames (5) or seconds (0.2s) between windows; None: a quarter of the window")
    p.add_argument("--answer", choices=["mean", "whole"], default="mean",
                   help="clip answer: the mean of the window probabilities, or the whole clip as one window "
                        "when it is at most two training clips long")
    p.add_argument("--webcam", nargs="?", type=int, const=0, default=None, help="use camera INDEX instead")
    p.add_argument("--mediapipe-size", type=_pixels, default=None,
                   help="longer side in pixels of the frames MediaPipe sees (0 = full resolution); None: as "
                        "the "
                        "run's training features were extracted")
    _add_fast(p)
    p.set_defaults(func=cmd_predict)


def _export_parser(sub: Any) -> None:
    p = sub.add_parser("export", formatter_class=_formatter,
                       help="export a trained model to TFLite and SavedModel, taking raw keypoints and "
                            "frames",
                       description="The exported files take raw MediaPipe keypoints (1, T, 1662) float32 and "
                                   "uint8 "
                                   "thumbnails; the run's preprocessing is inside. export.json says what to "
                                   "feed.")
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--web", default=None, metavar="FOLDER",
                   help="also (or only) write the browser page of a keypoint model into FOLDER: static "
                        "files (MediaPipe and LiteRT.js in JavaScript, model.tflite), served by "
                        "python -m http.server")
    p.add_argument("--formats", nargs="+", default=["tflite", "savedmodel"], choices=["tflite", "savedmodel"])
    p.add_argument("--fp16", action="store_true",
                   help="store the TFLite weights as float16 (model_fp16.tflite, about half the size)")
    _add_fast(p)
    p.set_defaults(func=cmd_export)


def _course_parser(sub: Any) -> None:
    p = sub.add_parser("course", formatter_class=_formatter,
                       help="the main job: run notebooks 01-07 in order and print a summary of the models",
                       description="Execute the course notebooks in order (executed copies, figures and "
                                   "metrics go under results/). DATASET and FAST environment variables "
                                   "apply.")
    p.add_argument("--dataset", default=None, help="synthetic | asl | ucf11 | a folder (default: $DATASET or "
                                                   "synthetic)")
    p.add_argument("--fast", action="store_true", help="quick smoke run (small data, few epochs)")
    p.add_argument("--only", nargs="+", default=None,
                   help="run only notebooks whose names start with these, e.g. 01 03")
    p.add_argument("--publish", action="store_true",
                   help="instead: copy the executed notebooks of the last run into docs/notebooks/ for "
                        "GitHub readers")
    p.set_defaults(func=cmd_course)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line: one sub-parser per command, each built by its own function below."""
    parser = argparse.ArgumentParser(prog=prog or program_name(), formatter_class=_formatter,
                                     description="Skeleton-based sign-language and action recognition "
                                                 "course.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_data_parser, _record_parser, _merge_parser, _extract_parser, _train_parser, _crossval_parser,
                _evaluate_parser, _report_parser, _predict_parser, _export_parser, _course_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume "
              "(train: add --resume to continue from the last finished epoch)", file=sys.stderr)
        return 130
