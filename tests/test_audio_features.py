"""Audio features against independent references (python_speech_features, librosa) and their
alignment to video frames."""

from __future__ import annotations

import numpy as np
import pytest

from avrestore.audio import audio_windows, frame_windows, log_mel, mel_filterbank, mfcc
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.video import read_frames

psf = pytest.importorskip("python_speech_features")
librosa = pytest.importorskip("librosa")

RATE = 16000


def speechlike(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """Harmonics with a wobbling pitch under an on/off envelope, plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(h * phase) / h for h in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    noise = np.random.default_rng(0).normal(0, 0.01, t.size)
    return (0.2 * voiced * envelope + noise).astype(np.float32)


def assert_close_to(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> None:
    """Max absolute error within ``rel`` of the reference's largest magnitude."""
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= rel * np.abs(ref).max()


# --- shapes ---------------------------------------------------------------------------------


def test_feature_shapes_and_dtype() -> None:
    x = speechlike(1.0)  # 16000 samples: 1 + ceil((16000 - 400) / 160) = 99 steps
    assert log_mel(x).shape == (99, 80)
    assert log_mel(x, n_mels=40, hop_ms=20).shape == (50, 40)
    assert mfcc(x).shape == (99, 13)
    assert mfcc(x, n_mfcc=20).shape == (99, 20)
    assert log_mel(x).dtype == mfcc(x).dtype == np.float32


@pytest.mark.parametrize("n", [0, 1, 399, 400])
def test_signal_of_at_most_one_window_gives_one_finite_step(n: int) -> None:
    x = speechlike(1.0)[:n]
    for feats in (log_mel(x), mfcc(x)):
        assert feats.shape[0] == 1
        assert np.isfinite(feats).all()


def test_bad_arguments_raise_input_error() -> None:
    with pytest.raises(InputError, match="mono"):
        mfcc(np.zeros((2, 1000), np.float32))
    with pytest.raises(InputError, match="n_mfcc"):
        mfcc(speechlike(0.1), n_mfcc=30)
    with pytest.raises(InputError, match="n_fft"):
        log_mel(speechlike(0.1), n_fft=256)
    with pytest.raises(InputError, match="fmax"):
        log_mel(speechlike(0.1), fmax=9000)
    with pytest.raises(InputError, match="width"):
        frame_windows(np.zeros((5, 3)), 4, 25.0, width=0)


# --- values against references --------------------------------------------------------------


def test_snapped_filterbank_matches_python_speech_features() -> None:
    ours = mel_filterbank(26, 512, RATE, snap_to_bins=True)
    np.testing.assert_allclose(ours, psf.get_filterbanks(26, 512, RATE), atol=1e-12)


def test_exact_filterbank_matches_librosa_htk() -> None:
    ours = mel_filterbank(80, 512, RATE, fmin=50, fmax=7600)
    ref = librosa.filters.mel(
        sr=RATE, n_fft=512, n_mels=80, fmin=50, fmax=7600, htk=True, norm=None
    )
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize(
    ("rate", "kwargs", "psf_kwargs"),
    [
        (16000, {}, {}),
        (16000, {"n_mfcc": 20}, {"numcep": 20}),
        (16000, {"n_mfcc": 12, "append_energy": False}, {"numcep": 12, "appendEnergy": False}),
        (44100, {}, {"nfft": 2048}),  # our n_fft follows the 1103-sample window
    ],
)
def test_mfcc_matches_python_speech_features(rate: int, kwargs: dict, psf_kwargs: dict) -> None:
    x = speechlike(1.3, rate)
    assert_close_to(mfcc(x, rate, **kwargs), psf.mfcc(x, samplerate=rate, **psf_kwargs))


@pytest.mark.parametrize("n_fft", [400, None])
def test_log_mel_matches_librosa(n_fft: int | None) -> None:
    x = speechlike(1.0).astype(np.float64)
    ours = log_mel(x, n_fft=n_fft)
    # librosa centres the 400-sample window in its n_fft frame; lead the signal with that much
    # silence so its frame k starts at sample k*hop as ours does. Power scaling: |X|^2 / n_fft.
    fft = n_fft or 512
    lead = np.concatenate([np.zeros((fft - 400) // 2), x])
    power = librosa.feature.melspectrogram(
        y=lead,
        sr=RATE,
        n_fft=fft,
        hop_length=160,
        win_length=400,
        window="hann",
        center=False,
        power=2.0,
        n_mels=80,
        htk=True,
        norm=None,
    )
    ref = np.log(np.maximum(power.T / fft, np.finfo(np.float64).eps))
    assert_close_to(ours[: len(ref)], ref)


def test_log_mel_of_a_tone_peaks_in_the_band_around_its_frequency() -> None:
    t = np.arange(RATE) / RATE
    feats = log_mel(np.sin(2 * np.pi * 1000 * t), n_mels=40)
    centres_hz = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 42) / 2595) - 1)
    expected = int(np.argmin(np.abs(centres_hz[1:-1] - 1000)))
    assert (feats.argmax(axis=1) == expected).all()


# --- alignment ------------------------------------------------------------------------------


def test_frame_windows_pick_steps_centred_on_frame_times_and_replicate_the_edges() -> None:
    steps = np.arange(50, dtype=np.float32)[:, None]  # each step holds its own index
    win = frame_windows(steps, n_frames=20, fps=25.0, width=21)[..., 0]
    assert win.shape == (20, 21)
    # Frame t at 25 fps sits at 40t ms; step k is centred at 12.5 + 10k ms, so step 4t - 1.
    np.testing.assert_array_equal(win[10], np.arange(29, 50))
    np.testing.assert_array_equal(win[0], [0] * 12 + list(range(1, 10)))  # steps -11..9
    np.testing.assert_array_equal(win[19], [49] * 21)  # steps 65..85, past the end


@pytest.mark.parametrize(("fps", "frame"), [(25.0, 30), (25.0, 1), (29.97, 17), (30.0, 44)])
def test_click_at_a_frame_time_lands_at_the_centre_of_its_window(fps: float, frame: int) -> None:
    audio = np.zeros(3 * RATE, np.float32)
    audio[round(frame / fps * RATE)] = 1.0
    win = audio_windows(audio, RATE, n_frames=60, fps=fps, width=21)
    energy = win[frame, :, 0]  # coefficient 0 is the log frame energy
    hit = np.flatnonzero(energy > energy.min() + 10)  # steps that contain the click
    assert 2 <= hit.size <= 3  # a 400-sample window slides in 160-sample hops
    assert abs(hit.mean() - 10) <= 0.5


@pytest.mark.parametrize("seconds", [0.0, 0.5])
def test_audio_shorter_than_the_video_still_windows_every_frame(seconds: float) -> None:
    win = audio_windows(speechlike(seconds), RATE, n_frames=50, fps=25.0, width=21, n_mfcc=13)
    assert win.shape == (50, 21, 13)
    assert win.dtype == np.float32
    assert np.isfinite(win).all()
    # Past the audio's end (1 s of video, at most 0.5 s of audio) windows repeat the last step.
    assert (win[-1] == win[-1, :1]).all()


def test_windows_of_a_real_clip_cover_every_video_frame(grid_clip) -> None:
    frames, fps = read_frames(grid_clip)
    audio = read_audio(grid_clip)
    win = audio_windows(audio.mono, audio.rate, len(frames), fps)
    assert len(frames) == 75
    assert win.shape == (75, 21, 13)
    assert np.isfinite(win).all()
    # On real speech too the MFCCs are those of python_speech_features.
    assert_close_to(mfcc(audio.mono), psf.mfcc(audio.mono, samplerate=audio.rate))
