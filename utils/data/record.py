"""Recording your own signs: ``python -m utils record --signs hello thanks --signer anna``.

One clip goes through three screens in an OpenCV window:

1. **countdown**: the live picture with the MediaPipe skeleton, the sign to perform and a number counting
   down;
2. **recording**: the live picture with a red bar filling up for ``seconds`` (MediaPipe is not run while
   recording, so no camera frame is missed; the skeleton comes on the next screen);
3. **review**: the clip replayed with its skeleton; ``k`` or Enter keeps it, ``r`` records it again, ``s``
   skips it (nothing kept; a later session asks for it again), ``q`` or Esc quits.

A kept clip is written at once (see :mod:`utils.data.recordings`), so quitting at any moment, closing the
window, Ctrl+C, or a camera that stops, loses only the clip on screen. Running the same command again
resumes: it records only what is missing to reach ``clips`` per sign for that signer.

``yes=True`` (``--yes``) needs no window and keeps every clip; ``keys="kkrs..."`` plays a script of review
keys instead of the keyboard (for tests and demos). ``camera`` is an index or a video file; a file stands in
for a camera (it is read at its own frame rate and starts again from its beginning when it ends).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from utils import paths
from utils.data.recordings import ClipInfo, RecordingFolder, check_name, progress_lines
from utils.errors import CameraError, CourseError, DatasetError

KEEP, REDO, SKIP, QUIT = "keep", "redo", "skip", "quit"
REVIEW_KEYS = {ord("k"): KEEP, 13: KEEP, 10: KEEP, ord("r"): REDO, ord("s"): SKIP, ord("q"): QUIT, 27: QUIT}
LIVE_KEYS = {ord("s"): SKIP, ord("q"): QUIT, 27: QUIT}  # during the countdown and the recording
START_KEYS = {ord(" "): KEEP, 13: KEEP, 10: KEEP, ord("q"): QUIT, 27: QUIT}
REVIEW_HELP = "k/Enter keep   r redo   s skip   q quit"
LIVE_HELP = "s skip this clip   q quit (kept clips stay saved)"
SCRIPT_LETTERS = {"k": KEEP, "r": REDO, "s": SKIP, "q": QUIT}
DEFAULT_INDICES = (0, 1, 2)  # camera indices tried when none is named
ORDERS = ("random", "fixed")
WINDOW = "record your signs"
RED, GREEN, WHITE, YELLOW = (220, 30, 30), (40, 200, 40), (255, 255, 255), (255, 220, 0)  # RGB


# ----------------------------------------------------------------------------- the camera
class Camera:
    """A camera index or a video file, read one RGB frame at a time; a file starts again when it ends."""

    def __init__(self, camera: int | str | None = None) -> None:
        from utils.data.video import capture_fps

        self.capture, self.name, self.is_file = _open(camera)
        self.fps = capture_fps(self.capture)  # 30 when the camera does not say (many webcams report 0)
        self.frames_read = 0

    def read(self) -> np.ndarray:
        """The next frame, RGB uint8 (H, W, 3); CameraError when the camera stops giving frames."""
        import cv2

        ok, frame = self.capture.read()
        if (not ok or frame is None) and self.is_file:  # the end of the stand-in video: start it again
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        if not ok or frame is None:
            raise CameraError(
                f"camera {self.name} stopped giving frames (unplugged, or taken by another program); "
                "the clips kept so far are saved, run the same command again to go on"
            )
        self.frames_read += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()


def _open(camera: int | str | None):
    """(opened cv2.VideoCapture, name for messages, is a file) for an index, a digit string, a file or
    None."""
    import cv2

    if isinstance(camera, str) and not camera.strip().isdigit():
        path = Path(camera).expanduser()
        if not path.is_file():
            raise CameraError(f"--camera {camera!r}: no such video file, and not a camera index (0, 1, ...)")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened() or not capture.read()[0]:
            capture.release()
            raise CameraError(
                f"--camera {path}: OpenCV cannot read this video file; check that it plays, or "
                "re-encode it to H.264 .mp4"
            )
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return capture, path.name, True  # the file's name only: the manifest need not show your folders
    indices = DEFAULT_INDICES if camera is None else (int(camera),)
    quiet = hasattr(cv2, "setLogLevel")
    level = cv2.getLogLevel() if quiet else None
    if quiet:
        cv2.setLogLevel(0)  # silent: OpenCV would print a warning for each index with no camera
    try:
        for index in indices:
            capture = cv2.VideoCapture(index)
            if capture.isOpened() and capture.read()[0]:
                return capture, str(index), False
            capture.release()
    finally:
        if quiet:
            cv2.setLogLevel(level)
    tried = ", ".join(map(str, indices))
    raise CameraError(
        f"no camera could be opened (tried index {tried}): none is connected, another program "
        "(a video call, a browser tab) is using it, or this machine has none (a server, a container). "
        "Name another index with --camera 1, close the other program, or pass a video file "
        "with --camera clip.mp4"
    )


def check_display() -> None:
    """CourseError when no window can be shown (no display, or an OpenCV build without GUI)."""
    import cv2

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise CourseError(
            "no display: the recorder opens a window, but DISPLAY is not set (a server or an ssh "
            "session without -X). Run it on a desktop, or add --yes to record without a window"
        )
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        raise CourseError(
            "this OpenCV build has no GUI (opencv-python-headless?): install opencv-contrib-python "
            "from requirements.txt, or add --yes to record without a window"
        )


# ----------------------------------------------------------------------------- keys
class Keys:
    """Where decisions come from: the keyboard (``script`` None), a script of letters, or always-keep
    (--yes)."""

    def __init__(self, script: str | list[str] | None = None, keep_all: bool = False) -> None:
        letters = list(script) if script is not None else None
        unknown = sorted({c for c in letters or () if c not in SCRIPT_LETTERS and not c.isspace()})
        if unknown:
            raise CourseError(
                f"--keys {''.join(letters)!r}: unknown letter(s) {', '.join(unknown)}; use k (keep), "
                "r (redo), s (skip), q (quit)"
            )
        self.script: Iterator[str] | None = iter([c for c in letters if not c.isspace()]) if letters else None
        self.scripted = letters is not None or keep_all
        self.keep_all = keep_all

    def review(self, pressed: int | None) -> str | None:
        """The decision on a recorded clip: from the script, always keep, or the key pressed (None: not
        yet)."""
        if self.keep_all:
            return KEEP
        if self.scripted:
            return SCRIPT_LETTERS[next(self.script, "q")] if self.script else QUIT  # a script that ends quits
        return REVIEW_KEYS.get(pressed) if pressed is not None else None

    def live(self, pressed: int | None, table: dict[int, str]) -> str | None:
        """A key pressed during a live screen (scripts and --yes press none there)."""
        return None if self.scripted or pressed is None else table.get(pressed)


# ----------------------------------------------------------------------------- screens
def _text(
    image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.7, color=WHITE, thickness: int = 2
) -> None:
    """Text with a dark outline, readable on any picture (in place)."""
    import cv2

    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def compose(
    frame: np.ndarray,
    keypoints: np.ndarray | None,
    flip: bool,
    title: str,
    help_line: str,
    countdown: int | None = None,
    progress: float | None = None,
    status: str = "",
) -> np.ndarray:
    """One screen: the picture (with the skeleton when keypoints are given), mirrored if asked, then the
    texts: the sign to perform at the top, a big countdown number, a recording bar, the keys at the bottom."""
    import cv2

    from utils.data.keypoints import draw_landmarks
    from utils.data.video import fit_frame

    picture = draw_landmarks(frame, keypoints) if keypoints is not None else frame
    picture = np.ascontiguousarray(
        fit_frame(picture[:, ::-1] if flip else picture, min_side=480, max_side=960)
    )
    height, width = picture.shape[:2]
    cv2.rectangle(picture, (0, 0), (width, 40), (0, 0, 0), -1)
    _text(picture, title, (10, 28), 0.75, YELLOW)
    if countdown is not None:
        _text(picture, str(countdown), (width // 2 - 30, height // 2 + 30), 3.0, YELLOW, 6)
    if progress is not None:
        cv2.rectangle(picture, (10, height - 62), (width - 10, height - 44), WHITE, 2)
        cv2.rectangle(
            picture, (12, height - 60), (12 + int((width - 24) * min(progress, 1.0)), height - 46), RED, -1
        )
        cv2.circle(picture, (width - 30, 65), 12, RED, -1)
        _text(picture, "REC", (width - 90, 73), 0.7, RED)
    if status:
        _text(picture, status, (10, 70), 0.7, GREEN)
    cv2.rectangle(picture, (0, height - 32), (width, height), (0, 0, 0), -1)
    _text(picture, help_line, (10, height - 10), 0.5, WHITE, 1)
    return picture


def progress_screen(counts: dict[str, int], wanted: int, signer: str, footer: str) -> np.ndarray:
    """A dark screen listing the clips kept of each sign by this signer."""
    lines = progress_lines(counts, wanted)
    height = 120 + 32 * len(lines)
    width = max(640, 16 * max(map(len, lines + [footer]), default=40))
    image = np.full((height, width, 3), 30, dtype=np.uint8)
    _text(image, f"signer {signer}: clips kept of each sign", (20, 40), 0.8, YELLOW)
    for row, line in enumerate(lines):
        _text(image, line, (20, 85 + 32 * row), 0.7)
    _text(image, footer, (20, height - 20), 0.6, GREEN, 1)
    return image


class Display:
    """The OpenCV window, or nothing (``show=False``); ``show`` returns the key pressed meanwhile (or
    None)."""

    def __init__(self, show: bool, fps: float, paced: bool) -> None:
        self.enabled, self.opened = show, False
        self.delay_ms = max(1, int(1000 / fps)) if paced else 1  # a video file plays at its own speed

    def show(self, image: np.ndarray, wait_ms: int | None = None) -> int | None:
        if not self.enabled:
            return None
        import cv2

        try:
            if not self.opened:  # no toolbar: the window shows the picture and its own help line only
                cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
                self.opened = True
            cv2.imshow(WINDOW, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            pressed = cv2.waitKey(wait_ms or self.delay_ms) & 0xFF
            if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return 27  # the window was closed: quit
        except cv2.error as error:
            raise CourseError(
                f"OpenCV could not open a window ({str(error).strip().splitlines()[-1]}); "
                "add --yes to record without one"
            ) from None
        return None if pressed == 255 else pressed

    def close(self) -> None:
        if self.enabled:
            import cv2

            try:
                cv2.destroyAllWindows()
                cv2.waitKey(1)
            except cv2.error:
                pass


# ----------------------------------------------------------------------------- the session
def plan(counts: dict[str, int], clips: int, order: str, rng: np.random.Generator) -> list[str]:
    """The signs to record, one entry per missing clip: sign after sign (fixed) or shuffled (random)."""
    if order not in ORDERS:
        raise DatasetError(f"order={order!r}; use one of {', '.join(ORDERS)}")
    slots = [sign for sign, have in counts.items() for _ in range(max(0, clips - have))]
    if order == "random":
        rng.shuffle(slots)
    return slots


class _Session:
    """One run of the recorder: the camera, MediaPipe, the window and the folder, and the three screens."""

    def __init__(
        self,
        folder: RecordingFolder,
        camera: Camera,
        display: Display,
        keys: Keys,
        extractor,
        info: dict,
        seconds: float,
        countdown: float,
        mirror: bool,
    ) -> None:
        self.folder, self.camera, self.display = folder, camera, display
        self.keys, self.extractor = keys, extractor
        self.info, self.mirror = info, mirror
        self.record_frames = max(1, round(seconds * camera.fps))
        self.countdown_frames = max(0, round(countdown * camera.fps))
        self.flip_view = not camera.is_file and not mirror  # a live camera is previewed as a mirror

    def frame(self) -> np.ndarray:
        frame = self.camera.read()
        return np.ascontiguousarray(frame[:, ::-1]) if self.mirror else frame

    def countdown(self, title: str) -> str | None:
        """The countdown screen; SKIP or QUIT when such a key is pressed, else None."""
        for index in range(self.countdown_frames):
            frame = self.frame()
            if not self.display.enabled:
                continue  # without a window the countdown only lets the camera run (time to get ready)
            vector, _ = self.extractor.extract_frame(frame)
            left = int(np.ceil((self.countdown_frames - index) / self.camera.fps))
            pressed = self.display.show(
                compose(frame, vector, self.flip_view, title, LIVE_HELP, countdown=left)
            )
            action = self.keys.live(pressed, LIVE_KEYS)
            if action:
                return action
        return None

    def record(self, title: str) -> np.ndarray | str:
        """The recording screen: the clip's frames, or SKIP / QUIT."""
        frames = []
        for index in range(self.record_frames):
            frame = self.frame()
            frames.append(frame)
            progress = (index + 1) / self.record_frames
            action = self.keys.live(
                self.display.show(compose(frame, None, self.flip_view, title, LIVE_HELP, progress=progress)),
                LIVE_KEYS,
            )
            if action:
                return action
        return np.stack(frames)

    def review(self, title: str, frames: np.ndarray, keypoints: np.ndarray) -> str:
        """The review screen: the clip replayed with its skeleton until a decision."""
        if not self.display.enabled:
            return self.keys.review(None) or QUIT
        while True:
            for frame, vector in zip(frames, keypoints):
                screen = compose(frame, vector, self.flip_view, title, REVIEW_HELP, status="review: keep it?")
                pressed = self.display.show(screen)
                decision = None if self.keys.scripted else self.keys.review(pressed)
                if decision:
                    return decision
            if self.keys.scripted:  # a script decides after one replay
                return self.keys.review(None) or QUIT

    def start_screen(self, counts: dict[str, int], wanted: int) -> bool:
        """The progress screen before the first clip; False when the user quits there."""
        if not self.display.enabled:
            return True
        screen = progress_screen(counts, wanted, self.info["signer"], "space/Enter: start    q: quit")
        while True:
            pressed = self.display.show(screen, wait_ms=1000 if self.keys.scripted else 50)
            if self.keys.scripted:
                return True
            action = START_KEYS.get(pressed) if pressed is not None else None
            if action:
                return action == KEEP


def record(
    signs: list[str],
    signer: str,
    clips: int = 5,
    out: str | Path | None = None,
    camera: int | str | None = None,
    order: str = "random",
    yes: bool = False,
    keys: str | None = None,
    seconds: float = 2.0,
    countdown: float = 3.0,
    session: str | None = None,
    mirror: bool = False,
    show: bool | None = None,
    seed: int | None = None,
    verbose: bool = True,
) -> dict:
    """Record ``clips`` clips of each sign by ``signer`` into the recordings folder ``out`` (default
    data/raw/mine), resuming a folder that has some already; returns what happened (kept, redone,     skipped,
    ...).

    ``clips`` counts the clips of each sign by this signer in all sessions, or in ``session`` when one is
    named (so that each session of several can have its own clips; the same name again resumes it).
    ``camera``: an index, a video file, or None (tries indices 0, 1, 2). ``yes``: no window, keep every clip.
    ``keys``: a script of review decisions (k keep, r redo, s skip, q quit) instead of the keyboard; the
    session ends when it runs out. ``show``: open the window (default: unless ``yes``). ``seconds``: length of
    a clip; ``countdown``: seconds before each. ``mirror``: save the video flipped left-right.
    """
    from utils.data.keypoints import HolisticExtractor

    signs = list(dict.fromkeys(check_name(sign, "sign") for sign in signs))
    if not signs:
        raise DatasetError("name at least one sign to record: --signs hello thanks ...")
    signer = check_name(signer, "signer")
    named_session = check_name(session, "session") if session else None  # clips are counted in it
    session = named_session or time.strftime("%Y%m%d-%H%M%S")
    if int(clips) < 1 or seconds <= 0 or countdown < 0:
        raise DatasetError(
            f"clips must be >= 1, seconds > 0 and countdown >= 0 (got {clips}, {seconds}, {countdown})"
        )
    show = (not yes) if show is None else show
    if not show and not yes and keys is None:
        raise CourseError(
            "without a window nobody can press keep or redo: add --yes (keep every clip) or --keys"
        )
    folder = RecordingFolder(out if out is not None else paths.RAW_DIR / "mine")
    say = print if verbose else (lambda *args, **kwargs: None)
    if folder.removed:
        say(
            f"removed {len(folder.removed)} unfinished file(s) of an interrupted session: "
            + ", ".join(folder.removed)
        )
    counts = folder.counts(signer, signs, named_session)
    say(
        f"{folder.root}: clips kept of each sign by {signer}"
        + (f" in session {named_session}" if named_session else "")
        + f" (wanted {clips} each)",
        *progress_lines(counts, clips),
        sep="\n  ",
    )
    slots = plan(counts, int(clips), order, np.random.default_rng(seed))
    summary = {
        "out": str(folder.root),
        "session": session,
        "kept": 0,
        "redone": 0,
        "skipped": 0,
        "quit": False,
        "counts": counts,
    }
    if not slots:
        say(f"nothing to record: every sign has {clips} clips by {signer}; raise --clips to record more")
        return summary
    decisions = Keys(keys, keep_all=yes)
    if show:
        check_display()
    cam = Camera(camera)
    display = Display(show, cam.fps, paced=cam.is_file)
    info = {"signer": signer, "session": session}
    try:
        with HolisticExtractor(warn_small_frames=False) as extractor:
            run = _Session(folder, cam, display, decisions, extractor, info, seconds, countdown, mirror)
            summary["quit"] = not run.start_screen(counts, int(clips))
            position = 0
            while position < len(slots) and not summary["quit"]:
                sign = slots[position]
                title = f"sign: {sign}   clip {counts[sign] + 1} of {clips}"
                frames = run.countdown(title) or run.record(title)
                if isinstance(frames, np.ndarray):
                    # MediaPipe in video mode over the clip, its tracking reset at the clip's first frame
                    keypoints, detected = extractor.extract(frames)
                    decision = run.review(title, frames, keypoints)
                else:
                    decision = frames
                if decision == KEEP:
                    row = folder.add_clip(
                        frames,
                        keypoints,
                        detected,
                        ClipInfo(
                            label=sign,
                            signer=signer,
                            session=session,
                            camera=cam.name,
                            fps=cam.fps,
                            mirrored=mirror,
                        ),
                    )
                    counts[sign] += 1
                    summary["kept"] += 1
                    say(
                        f"kept {row['path']} ({len(frames)} frames; hands found in "
                        f"{int(detected[:, 2:].any(axis=1).sum())})"
                    )
                elif decision == REDO:
                    summary["redone"] += 1
                    continue
                elif decision == SKIP:
                    summary["skipped"] += 1
                    say(f"skipped a clip of {sign}")
                else:
                    summary["quit"] = True
                    break
                position += 1
    finally:
        cam.close()
        display.close()
    say(
        f"{'quit: ' if summary['quit'] else ''}kept {summary['kept']}, redone {summary['redone']}, skipped "
        f"{summary['skipped']}; clips of each sign by {signer} now:",
        *progress_lines(counts, clips),
        sep="\n  ",
    )
    if any(n < clips for n in counts.values()):
        say("run the same command again to record the missing clips")
    return summary
