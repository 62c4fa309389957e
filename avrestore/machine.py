"""The machine a command runs on, as benchmarks and cached timings name it, and how its C
library allocates (no torch import)."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path


def _cpuinfo_field(key: str, cpuinfo: Path) -> str | None:
    """The value of the first ``key`` line of /proc/cpuinfo, or None (no such line or file)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's word for it elsewhere)."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or "unknown"


# CPU flags of native bf16 arithmetic (oneDNN's bf16 kernels); without them PyTorch emulates
# bf16 on the CPU, tens of times slower than fp32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX, from /proc/cpuinfo's
    flags; False where there is no such file)."""
    flags = (_cpuinfo_field("flags", cpuinfo) or "").split()
    return any(flag in flags for flag in BF16_FLAGS)


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's largest on 64-bit: bigger blocks are mapped


def keep_freed_memory() -> bool:
    """Have glibc keep the memory the process frees for reuse (blocks up to 32 MiB from its
    heaps, never trimmed back to the system) instead of mapping each large block afresh and
    unmapping it when freed; whether it could (False off glibc).

    Eager PyTorch allocates every activation anew: with glibc's defaults a model's large
    activations are fresh mappings whose pages fault in on first touch, every window (gavn-small
    in bf16: 8 % of a window, BENCHMARKS.md). The cost: the process holds its peak memory until
    it exits. Process-wide and not undone: for a command, not for a library's caller."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has both  # noqa: B018
    except (OSError, AttributeError):
        return False
    # The mapping threshold first: setting it explicitly also stops glibc adapting it.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    )
