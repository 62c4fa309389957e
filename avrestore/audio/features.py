"""Log-mel and MFCC features of a mono signal, framed as python_speech_features frames it.

Framing convention, shared by every feature here and by :mod:`avrestore.audio.windows`:
step ``k`` analyses samples ``[k*hop, k*hop + win)``. Frames are *not* centred on ``k*hop``:
the signal is not padded at the start, and only its tail is zero-padded to fill the last
frame. Step ``k`` therefore sits, by its centre, at ``(k*hop + win/2) / rate`` seconds
(12.5 ms + k * 10 ms with the defaults). A signal shorter than one window, even an empty
one, gives exactly one (zero-padded) step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct
from scipy.signal import get_window

from avrestore.errors import InputError

WIN_MS = 25.0
HOP_MS = 10.0
# The speech every model hears: 16 kHz mono, 13 MFCCs, 21 steps (0.2 s) around each frame.
AUDIO_RATE = 16000
N_MFCC = 13
MFCC_WINDOW = 21
PSF_FILTERS = 26  # python_speech_features' mel filterbank size (``mfcc``'s default)
# python_speech_features' stand-in for log(0); MFCCs must match it on digital silence too.
_LOG_FLOOR = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Framing:
    """Short-time frames of a signal at ``rate`` Hz: step k covers ``[k*hop, k*hop + win)``."""

    rate: int = AUDIO_RATE
    win_ms: float = WIN_MS
    hop_ms: float = HOP_MS

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.win_ms <= 0 or self.hop_ms <= 0:
            raise InputError(f"rate, win_ms and hop_ms must be positive: {self}")

    @property
    def win(self) -> int:
        """Window length in samples (rounded half up, as python_speech_features does)."""
        return max(1, math.floor(self.win_ms * self.rate / 1000 + 0.5))

    @property
    def hop(self) -> int:
        """Hop between steps in samples."""
        return max(1, math.floor(self.hop_ms * self.rate / 1000 + 0.5))

    @property
    def n_fft(self) -> int:
        """The default FFT size: the next power of two at least the window length."""
        return 1 << (self.win - 1).bit_length()

    def n_steps(self, n_samples: int) -> int:
        """Number of steps a signal of ``n_samples`` gives (at least one)."""
        return 1 + max(0, math.ceil((n_samples - self.win) / self.hop))

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """The signal cut into frames (steps, win), its tail zero-padded."""
        n = self.n_steps(len(signal))
        padded = np.zeros((n - 1) * self.hop + self.win, signal.dtype)
        padded[: len(signal)] = signal
        return np.lib.stride_tricks.sliding_window_view(padded, self.win)[:: self.hop]

    def step_at(self, seconds: np.ndarray) -> np.ndarray:
        """Index of the step whose centre is nearest each time; may lie outside the signal."""
        k = (np.asarray(seconds, np.float64) * self.rate - self.win / 2) / self.hop
        return np.floor(k + 0.5).astype(np.int64)


DEFAULT_FRAMING = Framing()


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)  # HTK mel scale


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int,
    n_fft: int,
    rate: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    snap_to_bins: bool = False,
) -> np.ndarray:
    """Triangular filters, peak 1, evenly spaced on the HTK mel scale: (n_mels, n_fft//2 + 1).

    ``snap_to_bins`` puts the corners on whole FFT bins, ``floor((n_fft + 1) * hz / rate)``,
    as python_speech_features does; otherwise they sit at their exact frequencies (as
    ``librosa.filters.mel(htk=True, norm=None)``).
    """
    fmax = rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= rate / 2:
        raise InputError(f"need 0 <= fmin < fmax <= rate/2, got fmin={fmin}, fmax={fmax}")
    hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    corners = np.floor((n_fft + 1) * hz / rate) if snap_to_bins else hz * n_fft / rate
    lo, mid, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    bins = np.arange(n_fft // 2 + 1)
    # Snapped corners can coincide; the division is then only taken where it is not used.
    with np.errstate(divide="ignore", invalid="ignore"):
        triangle = np.where(bins < mid, (bins - lo) / (mid - lo), (hi - bins) / (hi - mid))
    return np.where((bins >= lo) & (bins < hi), triangle, 0.0)


def _power_spectrum(
    audio: np.ndarray, framing: Framing, n_fft: int, window: str, preemphasis: float
) -> np.ndarray:
    """|rfft|^2 / n_fft of each windowed frame: (steps, n_fft//2 + 1) float64."""
    x = np.asarray(audio, np.float64)
    if x.ndim != 1:
        raise InputError(f"expected a mono signal of shape (n,), got {x.shape}")
    x = np.concatenate([x[:1], x[1:] - preemphasis * x[:-1]])  # y[n] = x[n] - a x[n-1]
    if n_fft < framing.win:
        raise InputError(f"n_fft={n_fft} is shorter than the {framing.win}-sample window")
    frames = framing.frames(x) * get_window(window, framing.win, fftbins=True)
    return np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft


def log_mel(
    audio: np.ndarray,
    rate: int = AUDIO_RATE,
    n_mels: int = 80,
    win_ms: float = WIN_MS,
    hop_ms: float = HOP_MS,
    n_fft: int | None = None,
    fmin: float = 0.0,
    fmax: float | None = None,
    window: str = "hann",
) -> np.ndarray:
    """Log mel-filterbank energies (steps, n_mels) float32 of a mono signal.

    Periodic Hann window, power spectrum / n_fft, HTK-mel triangles of peak 1, natural log.
    ``n_fft=None`` takes the next power of two at least the window length.
    """
    framing = Framing(rate, win_ms, hop_ms)
    n_fft = n_fft or framing.n_fft
    power = _power_spectrum(audio, framing, n_fft, window, preemphasis=0.0)
    bank = mel_filterbank(n_mels, n_fft, rate, fmin, fmax)
    return np.log(np.maximum(power @ bank.T, _LOG_FLOOR)).astype(np.float32)


def mfcc_filters(n_mfcc: int, rate: int = AUDIO_RATE, win_ms: float = WIN_MS) -> tuple[int, int]:
    """The filterbank size and FFT length ``(n_filters, n_fft)`` for ``n_mfcc`` coefficients.

    Up to 26 coefficients: python_speech_features' 26 filters and the default FFT (``mfcc``'s
    defaults, unchanged). Beyond (the VQ restorer's 80-D MFCC): one filter per coefficient and
    the shortest power-of-two FFT, from the default up, whose bin-snapped filters are all
    non-empty (80 filters at 16 kHz: 1024; 512 would leave one band empty).
    """
    n_fft = Framing(rate, win_ms).n_fft
    if n_mfcc <= PSF_FILTERS:
        return PSF_FILTERS, n_fft
    while (mel_filterbank(n_mfcc, n_fft, rate, snap_to_bins=True).sum(1) == 0).any():
        n_fft *= 2
    return n_mfcc, n_fft


def mfcc(
    audio: np.ndarray,
    rate: int = AUDIO_RATE,
    n_mfcc: int = N_MFCC,
    win_ms: float = WIN_MS,
    hop_ms: float = HOP_MS,
    n_fft: int | None = None,
    n_filters: int = PSF_FILTERS,
    preemphasis: float = 0.97,
    lifter: float = 22.0,
    append_energy: bool = True,
) -> np.ndarray:
    """MFCCs (steps, n_mfcc) float32; the defaults reproduce ``python_speech_features.mfcc``.

    Rectangular window, pre-emphasis, bin-snapped HTK-mel filters, orthonormal DCT-II,
    sinusoidal lifter; coefficient 0 replaced by the log frame energy when ``append_energy``.
    """
    if not 1 <= n_mfcc <= n_filters:
        raise InputError(f"need 1 <= n_mfcc <= n_filters, got {n_mfcc} and {n_filters}")
    framing = Framing(rate, win_ms, hop_ms)
    n_fft = n_fft or framing.n_fft
    power = _power_spectrum(audio, framing, n_fft, "boxcar", preemphasis)
    bank = mel_filterbank(n_filters, n_fft, rate, snap_to_bins=True)
    log_energies = np.log(np.maximum(power @ bank.T, _LOG_FLOOR))
    cepstra = dct(log_energies, type=2, axis=1, norm="ortho")[:, :n_mfcc]
    if lifter > 0:
        cepstra *= 1 + (lifter / 2) * np.sin(np.pi * np.arange(n_mfcc) / lifter)
    if append_energy:
        cepstra[:, 0] = np.log(np.maximum(power.sum(axis=1), _LOG_FLOOR))
    return cepstra.astype(np.float32)
