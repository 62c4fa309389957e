"""SyncNet: the released architecture's shapes and state-dict names, the offset search on
embeddings whose answer is known, the face crops and MFCC windows of syncnet_python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avrestore.audio.features import mfcc
from avrestore.errors import InputError
from avrestore.metrics.sync import (
    CROP_SIZE,
    SMOOTH,
    VSHIFT,
    face_crops,
    mfcc_track,
    offset_search,
    resample_indices,
    sync_scores,
)
from avrestore.metrics.syncnet_model import SyncNet, load_syncnet


def test_streams_map_windows_to_1024d() -> None:
    net = SyncNet().eval()
    with torch.no_grad():
        assert net.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.zeros(2, 3, 5, CROP_SIZE, CROP_SIZE)).shape == (2, 1024)


def test_state_dict_names_are_the_released_ones() -> None:
    """A few names and shapes of syncnet_v2.model, layer indices included."""
    shapes = {k: tuple(v.shape) for k, v in SyncNet().state_dict().items()}
    assert shapes["netcnnaud.0.weight"] == (64, 1, 3, 3)
    assert shapes["netcnnaud.18.weight"] == (512, 256, 5, 4)
    assert shapes["netcnnlip.0.weight"] == (96, 3, 5, 7, 7)
    assert shapes["netcnnlip.18.weight"] == (512, 256, 1, 6, 6)
    assert shapes["netfcaud.3.weight"] == (1024, 512)
    assert shapes["netfclip.1.running_var"] == (512,)
    assert {k.split(".")[0] for k in shapes} == {"netcnnaud", "netfcaud", "netfclip", "netcnnlip"}


def test_offset_search_finds_a_known_shift() -> None:
    """Video window i equals audio window i − 3: the offset is 3 and its distance ~0 on the
    windows that overlap (the 3 shifted past the start meet the zero padding)."""
    torch.manual_seed(0)
    audio = torch.randn(60, 16)
    video = torch.zeros_like(audio)
    video[3:] = audio[:-3]
    result = offset_search(video, audio)
    assert result.offset == 3
    assert result.distances.shape == (2 * VSHIFT + 1,)
    assert int(np.argmin(result.distances)) == VSHIFT - 3
    assert result.sync_d == pytest.approx(result.distances.min())
    assert result.sync_c == pytest.approx(np.median(result.distances) - result.distances.min())
    assert result.sync_d < 0.1 * np.median(result.distances)

    aligned = offset_search(audio, audio)
    assert aligned.offset == 0 and aligned.sync_d < 1e-4  # pairwise_distance adds eps=1e-6


def test_resample_to_25_fps() -> None:
    np.testing.assert_array_equal(resample_indices(5, 25.0), np.arange(5))
    np.testing.assert_array_equal(resample_indices(6, 50.0), [0, 2, 4])
    idx = resample_indices(300, 29.97)
    assert len(idx) == 250 and idx[-1] <= 299 and np.all(np.diff(idx) >= 1)


def test_face_crops_follow_crop_video() -> None:
    """Landmarks spanning x 100–200, y 70–170: half-side s = 50 about (150, 120), so the crop
    is rows [y − s, y + 1.8 s) = [70, 210) and columns [x − 1.4 s, x + 1.4 s) = [80, 220),
    resized to 224×224, BGR. Pixel values here encode their own column (R) and row (G)."""
    yy, xx = np.mgrid[0:240, 0:256]
    frame = np.stack([xx, yy, np.zeros_like(xx)], axis=-1).astype(np.uint8)
    frames = np.repeat(frame[None], SMOOTH, axis=0)
    pts = np.full((SMOOTH, 68, 2), (150, 120), np.float32)
    pts[:, 0], pts[:, 1] = (100, 70), (200, 170)
    crops = face_crops(frames, pts).astype(int)
    assert crops.shape == (SMOOTH, CROP_SIZE, CROP_SIZE, 3)
    b, g, r = crops[0, 0, 0]
    assert b == 0 and abs(r - 80) <= 1 and abs(g - 70) <= 1
    b, g, r = crops[-1, -1, -1]
    assert abs(r - 219) <= 1 and abs(g - 209) <= 1

    # Near the frame's corner the crop reaches into the grey (110) padding.
    pts[:, 0], pts[:, 1], pts[:, 2:] = (0, 0), (100, 100), (50, 50)
    crops = face_crops(frames, pts)
    assert crops[0, 100, 0].tolist() == [110, 110, 110]


def test_mfcc_track_at_int16_scale() -> None:
    """Scaling by 32768 adds log(32768²) to the log energy c0 and leaves c1…c12 unchanged."""
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    track = mfcc_track(tone)
    assert track.shape == (13, 99)  # 1 s at 100 Hz: 1 + ceil((16000 − 400) / 160) steps
    plain = mfcc(tone, 16000).T
    np.testing.assert_allclose(track[0] - plain[0], 2 * np.log(32768), rtol=1e-5)
    np.testing.assert_allclose(track[1:], plain[1:], rtol=1e-4, atol=1e-3)


def test_sync_scores_on_a_real_clip_with_random_weights(grid_clip: Path) -> None:
    from avrestore.media.audio import read_audio
    from avrestore.media.video import read_frames

    frames, fps = read_frames(grid_clip, max_frames=14)
    audio = read_audio(grid_clip).mono[: 14 * 640]
    pts = np.full((14, 68, 2), (180, 125), np.float32)
    pts[:, 0], pts[:, 1] = (130, 60), (230, 190)
    torch.manual_seed(0)
    result = sync_scores(SyncNet().eval(), frames, pts, audio, fps)
    assert result is not None
    assert result.distances.shape == (2 * VSHIFT + 1,)
    assert -VSHIFT <= result.offset <= VSHIFT and result.sync_c >= 0
    assert sync_scores(SyncNet().eval(), frames[:12], pts[:12], audio, fps) is None


def test_loader(tmp_path: Path) -> None:
    assert load_syncnet(None) is None
    torch.manual_seed(1)
    net = SyncNet()
    # The released file predates BatchNorm's num_batches_tracked buffers.
    state = {k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    loaded = load_syncnet(path)
    assert loaded is not None and not loaded.training
    assert torch.equal(loaded.netcnnlip[0].weight, net.netcnnlip[0].weight)
    torch.save({"netcnnaud.0.weight": state["netcnnaud.0.weight"]}, tmp_path / "partial.model")
    with pytest.raises(InputError, match=r"SyncNet weights .* lacks"):
        load_syncnet(tmp_path / "partial.model")
    with pytest.raises(InputError, match="no such file"):
        load_syncnet(tmp_path / "missing.model")
