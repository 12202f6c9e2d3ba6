"""Typed errors. Every error raised for bad input derives from :class:`CourseError`; its message names the
file or value at fault and says what to do. The command line prints the message, not a traceback."""


class CourseError(Exception):
    """Bad input or environment, explained in the message."""


class VideoError(CourseError):
    """A video file is missing, empty, truncated or not a video."""


class CameraError(CourseError):
    """No camera could be opened (none at that index, in use by another program, or no camera at all)."""


class DatasetError(CourseError):
    """A dataset folder has no recognisable layout, or an unknown dataset was named."""


class DownloadError(CourseError):
    """A dataset could not be downloaded (offline, no credentials, ...)."""


class FeatureFileError(CourseError):
    """A features .npz is missing arrays, has wrong shapes or values, or does not fit the model."""


class ModelDirError(CourseError):
    """A trained-model folder is missing files or belongs to another configuration."""


class ConfigError(CourseError, ValueError):
    """An unknown model or configuration name, or settings that do not fit together."""


class SplitError(CourseError, ValueError):
    """The clips cannot be split as asked (too few clips or groups, an unknown test group, ...)."""


class OutputError(CourseError):
    """An output file or folder cannot be written (not a folder, read-only, disk full)."""


def ensure_writable_folder(folder, what: str = "output"):
    """Create folder if needed and check that files can be written there; raise OutputError saying why not."""
    import errno
    import os
    import tempfile
    from pathlib import Path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        reasons = {errno.ENOTDIR: "a parent of it is a file, not a folder",
                   errno.EEXIST: "a file of that name exists", errno.EACCES: "permission denied",
                   errno.EROFS: "the file system is read-only", errno.ENOSPC: "the disk is full"}
        reason = reasons.get(error.errno, os.strerror(error.errno) if error.errno else str(error))
        raise OutputError(f"cannot write the {what} into {folder}: {reason}. Choose another --out.") from None
    return folder


def check_can_write(target, folder=None) -> None:
    """OutputError when `target` (in `folder`, default its parent) cannot be written there; creates
    nothing."""
    import os
    from pathlib import Path

    target = Path(target)
    existing = Path(folder) if folder is not None else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{target}: cannot write there, {existing} is a file, not a folder; choose another "
                          "path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: cannot write there, the folder {existing} is read-only; choose another "
                          "folder or change its permissions")
