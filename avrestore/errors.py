"""The one exception type the command line turns into a single line on stderr."""


class InputError(Exception):
    """Bad input from the user: a missing file, a non-media file, an unusable path or option.

    The CLI prints ``avrestore: error: <message>`` and exits with code 2; no traceback.
    """
