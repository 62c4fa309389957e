"""Benchmarks of this machine: restore speed and peak memory, model forward time, training
step time (fp32 against bf16, numerics checked) and data-loading throughput; and, outside
``avrestore bench``, the levers of a real-time restore (``realtime``) and the model's
inference settings (``inference``), which ``benchmarks/realtime.py`` runs.

Each module holds the measuring code of one benchmark; ``avrestore bench`` (through
``avrestore.bench.suite``) runs each in a fresh process (``avrestore.bench.runner``) so that
its peak memory is its own, and the scripts in ``benchmarks/`` are thin wrappers over them.
Nothing here asserts a speed: the figures are reported, never checked.
"""
