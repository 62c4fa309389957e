"""``avrestore evaluate``: restore degraded face clips with several methods and score them all
on the same inputs, as the papers' result tables.

:mod:`~.protocol` (task and level → degradation), :mod:`~.sources` (which prepared clips,
preparing raw videos into a cache), :mod:`~.clips` (a clip's HQ, cached degraded frames, audio
and teacher landmarks), :mod:`~.landmarks` and :mod:`~.methods` (input, bicubic, networks),
:mod:`~.scores` (frame-weighted means), :mod:`~.run` (the loop), :mod:`~.report` (markdown
table, PNG grid).
"""
