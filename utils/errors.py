"""Typed errors. Every error raised for bad input derives from :class:`CourseError`; its message names
the file or value at fault and says what to do. The command line prints the message, not a traceback."""


class CourseError(Exception):
    """Bad input or environment, explained in the message."""


class VideoError(CourseError):
    """A video file is missing, empty, truncated or not a video."""


class DatasetError(CourseError):
    """A dataset folder has no recognisable layout, or an unknown dataset was named."""


class DownloadError(CourseError):
    """A dataset could not be downloaded (offline, no credentials, ...)."""


class FeatureFileError(CourseError):
    """A features .npz is missing arrays, has wrong shapes or values, or does not fit the model."""


class ModelDirError(CourseError):
    """A trained-model folder is missing files or belongs to another configuration."""
