"""A features store for data larger than memory: one folder, an uncompressed ``.npy`` per array, a JSON.

Layout (also in data/README.md)::

    <name>/store.json        format, version, num_clips, classes, meta, {array: {shape, dtype, per}}
    <name>/keypoints.npy     float32 (N, T, 1662)       ─┐ one row per clip: memory-mapped when read,
    <name>/frames.npy        uint8 (N, T, S, S, 3)       │ written clip by clip
    <name>/hand_crops.npy    uint8 (N, T, 2, C, C, 3)    │
    <name>/detected.npy      bool (N, T, 4)             ─┘
    <name>/labels.npy, groups.npy, split.npy, paths.npy, source_frames.npy, source_fps.npy   (N,) columns

Writing (:class:`StoreWriter`) never holds more than one clip: each clip array's file is allocated on disk
when its first clip arrives and every clip is written at its row with a plain file write. Everything goes into
a hidden temporary folder beside the target, which takes the target's name only when the store is complete, so
an interrupted write leaves no half store (and an older store under that name stays as it was).

Reading (:func:`read_store`) opens nothing but ``store.json`` and the small columns: each clip array is a
:class:`MappedArray` that memory-maps its file the first time it is indexed (an LSTM run never opens
``frames.npy``), copies out the rows asked for, and hands the mapped pages back, so the process's resident
memory holds one batch, not the file.
"""
from __future__ import annotations

import json
import mmap
import os
import shutil
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import FeatureFileError

STORE_FORMAT = "sign-course-features-store"
STORE_VERSION = 1
INDEX_FILE = "store.json"
_MAGIC = b"\x93NUMPY\x01\x00"  # .npy format 1.0


def is_store(path: str | Path) -> bool:
    """True when path is a features store folder (it holds store.json)."""
    return (Path(path) / INDEX_FILE).is_file()


# ----------------------------------------------------------------------------- reading
class MappedArray:
    """A read-only array in a ``.npy`` file: shape and dtype known without opening it, memory-mapped on first
    indexing; indexing returns an in-memory copy of the rows asked for and releases the mapped pages."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: Any) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        self._memmap: np.memmap | None = None

    ndim = property(lambda self: len(self.shape), doc="Number of dimensions.")
    size = property(lambda self: int(np.prod(self.shape)), doc="Number of elements.")
    nbytes = property(lambda self: self.size * self.dtype.itemsize, doc="Bytes of the whole array on disk.")

    @property
    def opened(self) -> bool:
        """Whether the file has been memory-mapped (an array that was never indexed never is)."""
        return self._memmap is not None

    def mapped(self) -> np.memmap:
        """The file as a read-only memory map (opened now if needed; shape and dtype checked against
        store.json)."""
        if self._memmap is None:
            try:
                array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as error:
                raise FeatureFileError(f"{self.path}: unreadable ({type(error).__name__}: {error}). "
                                       f"Re-create the store with `python -m utils extract <dataset> --out "
                                       f"{self.path.parent}`."
                                       ) from error
            if array.shape != self.shape or array.dtype != self.dtype:
                raise FeatureFileError(f"{self.path}: holds {array.dtype} {array.shape} but {INDEX_FILE} "
                                       f"says {self.dtype} {self.shape}; re-create the store with `python -m "
                                       f"utils extract <dataset> --out {self.path.parent}`")
            self._memmap = array
        return self._memmap

    def release(self) -> None:
        """Hand the mapped pages back to the system (they stay in its file cache), so resident memory stays
        flat."""
        handle = getattr(self._memmap, "_mmap", None)
        if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
            handle.madvise(mmap.MADV_DONTNEED)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = np.array(self.mapped()[key])  # a copy: nothing keeps the mapped pages
        self.release()
        return rows

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[...] if dtype is None else self[...].astype(dtype)

    # anything else (astype, mean, reshape ...) acts on the whole array
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __repr__(self) -> str:
        return f"MappedArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def read_index(folder: str | Path) -> dict[str, Any]:
    """The store.json of a store folder; FeatureFileError when it is missing or not a store's."""
    folder = Path(folder)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise FeatureFileError(f"{folder}: not a features store (no {INDEX_FILE}). Create it with "
                               f"`python -m utils extract <dataset folder or 'synthetic'> --out {folder}`.")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FeatureFileError(f"{path}: unreadable ({error}); re-create the store with `python -m utils "
                               f"extract <dataset> --out {folder}`") from error
    if index.get("format") != STORE_FORMAT or int(index.get("version", 0)) > STORE_VERSION:
        raise FeatureFileError(f"{path}: format {index.get('format')!r} version {index.get('version')!r} is "
                               f"not a features store this code reads (version <= {STORE_VERSION}); "
                               "re-create it")
    return index


def read_store(folder: str | Path) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(arrays, classes, meta) of a store: clip arrays as unopened :class:`MappedArray`, columns read
    whole."""
    folder = Path(folder)
    index = read_index(folder)
    arrays: dict[str, Any] = {}
    for name, info in index["arrays"].items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise FeatureFileError(f"{path}: missing from the store; re-create it with `python -m utils "
                                   f"extract <dataset> --out {folder}`")
        if info.get("per") == "clip":
            arrays[name] = MappedArray(path, info["shape"], info["dtype"])
        else:
            arrays[name] = np.load(path, allow_pickle=False)
    return arrays, [str(c) for c in index.get("classes", [])], dict(index.get("meta") or {})


# ----------------------------------------------------------------------------- writing
def _npy_header(shape: tuple[int, ...], dtype: np.dtype, length: int | None = None) -> bytes:
    """A .npy 1.0 header for a C-ordered array, padded to `length` bytes (default: the next multiple of
    64)."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
    length = length or -(-(len(_MAGIC) + 2 + len(text) + 1) // 64) * 64
    padding = length - len(_MAGIC) - 2 - len(text) - 1
    if padding < 0:
        raise ValueError(f"a header for shape {shape} does not fit in {length} bytes")
    return _MAGIC + struct.pack("<H",
                                length - len(_MAGIC) - 2) + (text + " " * padding + "\n").encode("latin1")


class _ClipFile:
    """One clip array's .npy being filled row by row with file writes (no memory map, so no resident
    pages)."""

    def __init__(self, path: Path, capacity: int, row_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.row_shape, self.dtype = path, tuple(row_shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.header = _npy_header((capacity, *self.row_shape), self.dtype)
        self.filled = np.zeros(capacity, dtype=bool)
        self.handle = open(path, "wb+")
        self.handle.write(self.header)
        # allocated (sparse) at its full size
        self.handle.truncate(len(self.header) + capacity * self.row_bytes)

    def write(self, row: int, values: np.ndarray) -> None:
        """Put one clip's values at its row."""
        os.pwrite(self.handle.fileno(), np.ascontiguousarray(values, dtype=self.dtype).tobytes(),
                  len(self.header) + row * self.row_bytes)
        self.filled[row] = True

    def close(self, num_rows: int) -> None:
        """Shrink the file to its first num_rows rows (same header length), flush and close it."""
        self.handle.seek(0)
        self.handle.write(_npy_header((num_rows, *self.row_shape), self.dtype, len(self.header)))
        self.handle.truncate(len(self.header) + num_rows * self.row_bytes)
        self.handle.close()


class StoreWriter:
    """Write a features store clip by clip (``with StoreWriter(folder, capacity) as w: w.put(i, clip) ...``,
    then :meth:`finish`); nothing appears under ``folder`` unless finish succeeds."""

    def __init__(self, folder: str | Path, capacity: int, dtypes: Mapping[str, Any] | None = None) -> None:
        self.folder, self.capacity = Path(folder), int(capacity)
        if self.folder.exists() and not is_store(self.folder):
            raise FeatureFileError(f"{self.folder} exists and is not a features store: choose another --out "
                                   "(a name ending in .npz writes one .npz file instead)")
        self.dtypes = {name: np.dtype(dtype) for name, dtype in (dtypes or {}).items()}
        self.temporary = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.partial")
        self.files: dict[str, _ClipFile] = {}
        _remove_stale_partials(self.folder)
        self.temporary.mkdir(parents=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.abort()  # after finish() there is nothing left to remove

    def put(self, row: int, clip: Mapping[str, np.ndarray]) -> None:
        """Write one clip's arrays (each without the clip axis) at row."""
        if not 0 <= row < self.capacity:
            raise IndexError(f"row {row} outside the store's {self.capacity} clips")
        for name, values in clip.items():
            values = np.asarray(values)
            file = self.files.get(name)
            if file is None:
                file = self.files[name] = _ClipFile(self.temporary / f"{name}.npy", self.capacity,
                                                    values.shape, self.dtypes.get(name, values.dtype))
            if values.shape != file.row_shape:
                raise FeatureFileError(f"{self.folder}: clip {row} has '{name}' of shape {values.shape}, the "
                                       f"earlier clips {file.row_shape}; every clip must have the same shape")
            file.write(row, values)

    def complete(self, num_rows: int) -> list[str]:
        """Names of the clip arrays written for every one of the first num_rows rows."""
        return [name for name, file in self.files.items() if file.filled[:num_rows].all()]

    def row_shape(self, name: str) -> tuple[int, ...] | None:
        """Shape of one clip of array name (None when no clip had it)."""
        return self.files[name].row_shape if name in self.files else None

    def finish(self, columns: Mapping[str, np.ndarray], classes: list[str], meta: Mapping[str, Any],
               num_rows: int | None = None) -> Path:
        """Write the (N,) columns and store.json, keep the clip arrays every clip has, publish the folder."""
        num_rows = self.capacity if num_rows is None else int(num_rows)
        keep = set(self.complete(num_rows))
        arrays: dict[str, dict[str, Any]] = {}
        for name, file in self.files.items():
            file.close(num_rows)
            if name in keep:
                arrays[name] = {"shape": [num_rows, *file.row_shape], "dtype": file.dtype.str, "per": "clip"}
            # some clip lacked it (e.g. frames in a manifest mixing videos and MP_Data): dropped, as in .npz
            else:
                file.path.unlink()
        for name, values in columns.items():
            values = np.asarray(values)
            if len(values) != num_rows:
                raise FeatureFileError(f"{self.folder}: column '{name}' has {len(values)} values for "
                                       f"{num_rows} clips")
            np.save(self.temporary / f"{name}.npy", values, allow_pickle=False)
            arrays[name] = {"shape": list(values.shape), "dtype": values.dtype.str, "per": "column"}
        index = {"format": STORE_FORMAT, "version": STORE_VERSION, "num_clips": num_rows,
                 "classes": list(classes), "arrays": arrays, "meta": dict(meta)}
        (self.temporary / INDEX_FILE).write_text(json.dumps(index, indent=1, ensure_ascii=False),
                                                 encoding="utf-8")
        _publish(self.temporary, self.folder)
        return self.folder

    def abort(self) -> None:
        """Close the files and remove the temporary folder (no-op after finish)."""
        for file in self.files.values():
            if not file.handle.closed:
                file.handle.close()
        shutil.rmtree(self.temporary, ignore_errors=True)


def _publish(temporary: Path, folder: Path) -> None:
    """Give the finished temporary folder the store's name, replacing an older store only once this one is
    whole."""
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(temporary, folder)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale_partials(folder: Path) -> None:
    """Remove temporary folders of earlier writes of this store whose process is gone (killed mid-write)."""
    for partial in folder.parent.glob(f".{folder.name}.*.partial"):
        pid = partial.name[len(folder.name) + 2:-len(".partial")]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_store(folder: str | Path, clips: Iterable[Mapping[str, np.ndarray]], num_clips: int,
                columns: Mapping[str, np.ndarray], classes: list[str], meta: Mapping[str, Any],
                dtypes: Mapping[str, Any] | None = None) -> Path:
    """Write num_clips clips (dicts of per-clip arrays, taken one at a time from an iterable) and the (N,)
    columns into a store folder; the iterable may stop early (fewer clips)."""
    with StoreWriter(folder, num_clips, dtypes) as writer:
        row = 0
        for clip in clips:
            writer.put(row, clip)
            del clip  # hold no clip while the next one is made
            row += 1
        return writer.finish(columns, classes, meta, row)
