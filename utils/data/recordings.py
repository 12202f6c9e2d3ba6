"""A folder of your own recorded signs: clip files, the manifest, resuming, and merging with other datasets.

``python -m utils record`` (:mod:`utils.data.record`) writes into a recordings folder::

    recordings.json                          marks the folder as one the recorder owns
    manifest.csv                             one row per kept clip (the manifest layout `extract` reads)
    <sign>/<signer>_<session>_<nnn>.mp4      the raw video of the clip, as the camera gave it
    <sign>/<signer>_<session>_<nnn>.keypoints.npz   keypoints (frames, 1662) and detected (frames, 4)

The manifest's columns are ``path, label, signer`` (what :func:`utils.data.datasets.read_manifest` needs)
and ``session, date, camera, width, height, fps, frames, mirrored, mediapipe, keypoints``: when, with what
and how each clip was made. Every file is written to a temporary name first and renamed when complete, and a
clip counts only once its manifest row is written, so an interrupted session leaves no half-written clip:
:class:`RecordingFolder` removes temporary files and unlisted clip files when it opens the folder again.

:func:`merge` writes one manifest over several dataset folders (your recordings, MP_Data folders, any layout
``extract`` reads): signs with the same name become one class.
"""

from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from utils.data import datasets
from utils.errors import DatasetError, OutputError

FOLDER_MARK = "recordings.json"
MANIFEST_NAME = datasets.MANIFEST_NAME
COLUMNS = (
    "path",
    "label",
    "signer",
    "session",
    "date",
    "camera",
    "width",
    "height",
    "fps",
    "frames",
    "mirrored",
    "mediapipe",
    "keypoints",
)
GROUP_BY = ("signer", "session", "signer_session")
_NAME = re.compile(r"^[\w-]+$")  # letters (any script), digits, _ and -: safe as a file or folder name
_CLIP_NAME = re.compile(r"^(?P<signer>[\w-]+)_(?P<session>[\w-]+)_(?P<index>\d{3,})$")


def _nfc(text: str) -> str:
    """Unicode NFC form, so a name typed on macOS (NFD) equals the same name typed elsewhere."""
    return unicodedata.normalize("NFC", text)


def check_name(name: str, what: str) -> str:
    """A sign, signer or session name, checked to be usable as a file name; DatasetError saying why not."""
    name = _nfc(str(name).strip())
    if not name or not _NAME.match(name):
        raise DatasetError(
            f"{what} {name!r}: use letters, digits, '_' or '-' only (it becomes part of a file "
            "name), e.g. hello, thank_you, anna"
        )
    return name


def mediapipe_version() -> str:
    """The installed MediaPipe's version ('' when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        return ""


@dataclass
class ClipInfo:
    """What is known of one recorded clip besides its frames: who, what, when and with which camera."""

    label: str
    signer: str
    session: str
    camera: str
    fps: float
    mirrored: bool = False


def _write_text_atomically(path: Path, text: str) -> None:
    """Write text to a temporary file beside path, then rename it over path."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csv_atomically(path: Path, columns: tuple[str, ...] | list[str], rows: list[dict]) -> None:
    """A CSV file with a header line, written under a temporary name and renamed when complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class RecordingFolder:
    """The recordings folder of one ``record`` command: its manifest rows, counts and the writing of new
    clips.

    Opening a folder creates it (with ``recordings.json``) when it is new, refuses a folder that holds
    something else, and tidies one left by an interrupted session: temporary files and clip files with no
    manifest row (written just before the interruption, never confirmed) are removed and listed in
    ``self.removed``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.manifest = self.root / MANIFEST_NAME
        self.removed: list[str] = []
        self._open()
        self.rows = self._read_rows()
        self._tidy()

    # ------------------------------------------------------------------------- opening
    def _open(self) -> None:
        """Create the folder, or check that an existing one is a recordings folder."""
        mark = self.root / FOLDER_MARK
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"{self.root} is a file, not a folder: choose another --out")
        if self.root.is_dir() and not mark.is_file():
            if any(not p.name.startswith(".") for p in self.root.iterdir()):
                raise DatasetError(
                    f"{self.root} already holds files and is not a recordings folder (no "
                    f"{FOLDER_MARK}): choose a new or empty --out, e.g. data/raw/mine"
                )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not mark.is_file():
                _write_text_atomically(
                    mark,
                    json.dumps(
                        {
                            "kind": "recordings",
                            "created": datetime.now(UTC).isoformat(timespec="seconds"),
                            "layout": "manifest.csv, <sign>/<signer>_<session>_<nnn>.mp4",
                        },
                        indent=1,
                    )
                    + "\n",
                )
        except OSError as error:
            raise OutputError(
                f"cannot write the recordings into {self.root}: {error.strerror or error}. "
                "Choose another --out."
            ) from None

    def _read_rows(self) -> list[dict]:
        """The manifest's rows (empty for a new folder)."""
        if not self.manifest.is_file():
            return []
        with self.manifest.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"path", "label", "signer"} <= set(reader.fieldnames or ()):
                raise DatasetError(
                    f"{self.manifest}: not a recordings manifest (needs path, label, signer); "
                    "choose another --out"
                )
            return [dict(row) for row in reader]

    def _tidy(self) -> None:
        """Remove temporary files and clip files that no manifest row lists (an interrupted write)."""
        listed = {self.root / row["path"] for row in self.rows}
        listed |= {self.root / row["keypoints"] for row in self.rows if row.get("keypoints")}
        for folder in [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")] + [
            self.root
        ]:
            for path in folder.iterdir():
                if not path.is_file():
                    continue
                unfinished = path.name.startswith(".") and ".tmp" in path.name
                stem = path.name.removesuffix(".keypoints.npz").removesuffix(".mp4")
                orphan = (
                    folder != self.root
                    and path not in listed
                    and stem != path.name
                    and bool(_CLIP_NAME.match(stem))
                )
                if unfinished or orphan:
                    path.unlink()
                    self.removed.append(path.relative_to(self.root).as_posix())

    # ------------------------------------------------------------------------- counts
    def counts(self, signer: str, signs: list[str], session: str | None = None) -> dict[str, int]:
        """Kept clips of each sign by this signer: in one session, or in all of them (``session`` None)."""
        found = {sign: 0 for sign in signs}
        for row in self.rows:
            if row["signer"] == signer and row["label"] in found and session in (None, row.get("session")):
                found[row["label"]] += 1
        return found

    def _next_index(self, folder: Path, signer: str, session: str) -> int:
        """The first clip number after every one used by this signer and session in a sign's folder (on disk
        or in the manifest), so that no clip is ever written over another."""
        prefix = f"{signer}_{session}_"

        def number(name: str) -> int:
            stem = name.removesuffix(".keypoints.npz").removesuffix(".mp4")
            rest = stem[len(prefix) :] if stem.startswith(prefix) else ""
            return int(rest) if rest.isdigit() else -1

        used = [number(p.name) for p in folder.iterdir()]
        used += [
            number(Path(row["path"]).name)
            for row in self.rows
            if Path(row["path"]).parent.name == folder.name
        ]
        return max(used, default=-1) + 1

    # ------------------------------------------------------------------------- writing one clip
    def add_clip(
        self, frames: np.ndarray, keypoints: np.ndarray, detected: np.ndarray, info: ClipInfo
    ) -> dict:
        """Write one kept clip (keypoints, then the video, then its manifest row; each atomically); return the
        row.

        ``frames``: (F, H, W, 3) RGB uint8 as they will be saved; ``keypoints`` (F, 1662) and ``detected``
        (F, 4) of those frames.
        """
        from utils.data.video import write_video

        folder = self.root / info.label
        folder.mkdir(exist_ok=True)
        stem = f"{info.signer}_{info.session}_{self._next_index(folder, info.signer, info.session):03d}"
        video_path, keypoints_path = folder / f"{stem}.mp4", folder / f"{stem}.keypoints.npz"
        tmp = keypoints_path.with_name(f".{keypoints_path.name}.tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                keypoints=np.asarray(keypoints, dtype=np.float32),
                detected=np.asarray(detected, dtype=bool),
            )
        os.replace(tmp, keypoints_path)
        write_video(video_path, frames, fps=info.fps)
        row = {
            "path": video_path.relative_to(self.root).as_posix(),
            "label": info.label,
            "signer": info.signer,
            "session": info.session,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "camera": info.camera,
            "width": frames.shape[2],
            "height": frames.shape[1],
            "fps": f"{info.fps:g}",
            "frames": len(frames),
            "mirrored": int(info.mirrored),
            "mediapipe": mediapipe_version(),
            "keypoints": keypoints_path.relative_to(self.root).as_posix(),
        }
        self.rows.append({key: str(value) for key, value in row.items()})
        _write_csv_atomically(self.manifest, COLUMNS, self.rows)
        return row


def progress_lines(counts: dict[str, int], wanted: int) -> list[str]:
    """One line per sign: a bar of kept clips out of the wanted number."""
    width = max(map(len, counts), default=4)
    return [
        f"{sign:<{width}}  {'#' * min(n, wanted)}{'.' * max(0, wanted - n)}  {n}/{wanted}"
        for sign, n in counts.items()
    ]


# ----------------------------------------------------------------------------- merging dataset folders
def _extra_columns(root: Path) -> dict[Path, dict]:
    """{resolved clip path: manifest row} of a folder with a manifest.csv (to read its session column)."""
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        return {(root / row["path"]).resolve(): row for row in csv.DictReader(handle) if row.get("path")}


def _group(record: datasets.ClipRecord, extra: dict, group_by: str, source_name: str) -> str:
    """The group (signer) a clip gets in a merged manifest."""
    signer = record.group or source_name  # no signer known: the whole source folder is one group
    session = extra.get("session") or ""
    if group_by == "session":
        return session or signer
    if group_by == "signer_session":
        return f"{signer}_{session}" if session else signer
    return signer


def merge(sources: list[str | Path], out: str | Path, group_by: str = "signer") -> Path:
    """Write ``out/manifest.csv`` listing the clips of every source folder; signs with the same name
    (letter case ignored) become one class. Returns the manifest's path.

    A source is any folder ``extract`` reads: a recordings folder, an MP_Data folder
    (``<sign>/<sequence>/<frame>.npy``), a folder of videos, a manifest. Clips keep their signer; a source
    that names no signers (MP_Data) counts as one signer, named after its folder, so its clips never sit on
    both sides of a split by signer. ``group_by``: ``signer`` (default), or ``session`` for recordings of
    one person in several sessions (each session then counts as a signer for ``crossval``).
    """
    if group_by not in GROUP_BY:
        raise DatasetError(f"group_by={group_by!r}; use one of {', '.join(GROUP_BY)}")
    if not sources:
        raise DatasetError("merge needs at least one source folder")
    out = Path(out).expanduser()
    rows, names = [], {}
    for source in sources:
        root = Path(source).expanduser()
        kind, records = datasets.discover(root)
        if (out / MANIFEST_NAME).resolve() in {(root / MANIFEST_NAME).resolve()}:
            raise DatasetError(
                f"{root}: the merged manifest would overwrite its own manifest; choose another --out"
            )
        extra = _extra_columns(root)
        for record in records:
            label = _nfc(record.label).strip()
            names.setdefault(label.casefold(), label)  # the first spelling met names the class
            rows.append(
                {
                    "path": Path(os.path.relpath(record.path.resolve(), out.resolve())).as_posix(),
                    "label": names[label.casefold()],
                    "signer": _group(record, extra.get(record.path.resolve(), {}), group_by, root.name),
                    "split": record.split,
                    "source": f"{root.name} ({kind})",
                }
            )
    if len({row["path"] for row in rows}) < len(rows):
        raise DatasetError("the same clip is listed by two sources; name each folder once")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_csv_atomically(out / MANIFEST_NAME, ("path", "label", "signer", "split", "source"), rows)
    except OSError as error:
        raise OutputError(f"cannot write {out / MANIFEST_NAME}: {error.strerror or error}") from None
    return out / MANIFEST_NAME


def describe_manifest(manifest: str | Path) -> str:
    """Clips per sign and per signer of a manifest, as a few lines of text."""
    with Path(manifest).open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    signs: dict[str, int] = {}
    signers: dict[str, int] = {}
    for row in rows:
        signs[row["label"]] = signs.get(row["label"], 0) + 1
        signers[row.get("signer", "")] = signers.get(row.get("signer", ""), 0) + 1
    return (
        f"{len(rows)} clips, {len(signs)} signs, {len(signers)} signers\n"
        f"  per sign:   {', '.join(f'{k} {v}' for k, v in sorted(signs.items()))}\n"
        f"  per signer: {', '.join(f'{k or chr(8211)} {v}' for k, v in sorted(signers.items()))}"
    )
