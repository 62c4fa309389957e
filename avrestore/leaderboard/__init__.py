"""``avrestore leaderboard``: every shipped checkpoint evaluated on the test speakers at its
task's protocol level, as a markdown page with pictures; results are cached per checkpoint.

This module loads nothing heavy: the command line reads ``LEVELS`` for its help.
"""

from __future__ import annotations

# The protocol level of each task, the one the shipped checkpoints are trained and evaluated
# at (see their model cards): x264 CRF 45, Gaussian blur k=21, x4 downscaling.
LEVELS = {"car": 45, "deblur": 21, "sr": 4}
