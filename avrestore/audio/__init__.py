"""Audio features (log-mel, MFCC) and their alignment to video frames."""

from avrestore.audio.features import (
    AUDIO_RATE,
    MFCC_WINDOW,
    N_MFCC,
    Framing,
    log_mel,
    mel_filterbank,
    mfcc,
)
from avrestore.audio.windows import audio_windows, frame_windows

__all__ = [
    "AUDIO_RATE",
    "MFCC_WINDOW",
    "N_MFCC",
    "Framing",
    "audio_windows",
    "frame_windows",
    "log_mel",
    "mel_filterbank",
    "mfcc",
]
