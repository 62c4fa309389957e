"""The machine a command runs on, as benchmarks and cached timings name it (no torch import)."""

from __future__ import annotations

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
