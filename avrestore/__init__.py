"""avrestore: audio-assisted restoration of talking-head videos."""

__version__ = "0.1.0"
