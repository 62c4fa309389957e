"""Cut, for each video frame, the window of audio feature steps centred on that frame's time.

Video frame ``t`` at ``fps`` sits at ``t / fps`` seconds; its window is the ``width`` steps
around the step whose centre is nearest that time (see the framing convention in
:mod:`avrestore.audio.features`), the centre step at index ``width // 2``. With the defaults
(16 kHz, 25 ms / 10 ms framing, 25 fps) frame ``t`` is centred on step ``4t - 1``, whose
samples ``[(4t-1)*160, (4t-1)*160 + 400)`` straddle ``t / fps``. Windows that reach past
either end of the features repeat the first or last step (edge replication).
"""

from __future__ import annotations

import numpy as np

from avrestore.audio.features import (
    DEFAULT_FRAMING,
    MFCC_WINDOW,
    N_MFCC,
    Framing,
    mfcc,
    mfcc_filters,
)
from avrestore.errors import InputError


def frame_windows(
    features: np.ndarray,
    n_frames: int,
    fps: float,
    width: int = MFCC_WINDOW,
    framing: Framing = DEFAULT_FRAMING,
) -> np.ndarray:
    """(n_frames, width, C) windows of ``features`` (steps, C) centred on each frame's time.

    ``framing`` is the one the features were computed with; ends are edge-replicated.
    """
    features = np.asarray(features)
    if features.ndim != 2 or len(features) == 0:
        raise InputError(f"expected features of shape (steps >= 1, C), got {features.shape}")
    if n_frames < 0 or fps <= 0 or width < 1:
        raise InputError(f"need n_frames >= 0, fps > 0, width >= 1: {n_frames}, {fps}, {width}")
    centres = framing.step_at(np.arange(n_frames) / fps)
    steps = centres[:, None] + np.arange(width) - width // 2
    return features[np.clip(steps, 0, len(features) - 1)]


def audio_windows(
    audio: np.ndarray,
    rate: int,
    n_frames: int,
    fps: float,
    width: int = MFCC_WINDOW,
    n_mfcc: int = N_MFCC,
) -> np.ndarray:
    """(n_frames, width, n_mfcc) float32 MFCC windows of a mono signal, one per video frame.

    The MFCCs are :func:`~avrestore.audio.features.mfcc` with its defaults (those of
    python_speech_features, as DAVD-Net and SyncNet use) up to 26 coefficients; more (the VQ
    restorer's 80) take one mel filter per coefficient and a longer FFT (``mfcc_filters``). A
    signal shorter than the video, even an empty one, still gives every frame a window.
    """
    framing = Framing(rate)
    n_filters, n_fft = mfcc_filters(n_mfcc, rate)
    features = mfcc(audio, rate, n_mfcc, n_fft=n_fft, n_filters=n_filters)
    return frame_windows(features, n_frames, fps, width, framing)
