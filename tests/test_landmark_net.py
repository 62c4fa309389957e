"""Audio-assisted PFLD: coordinate frame, the audio switch, the loss, and learning on real
degraded face crops against dlib's landmarks of the clean crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avrestore.audio.windows import audio_windows
from avrestore.faces.crop import crop_square, square_boxes
from avrestore.faces.detect import FaceDetector
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.media.audio import read_audio
from avrestore.media.video import read_frames
from avrestore.models.landmark_net import INPUT_SIZE, LandmarkNet, landmark_loss
from avrestore.models.registry import build

WINDOW, N_MFCC = 21, 13


def test_landmarks_are_in_the_input_pixel_frame() -> None:
    torch.manual_seed(0)
    net = LandmarkNet().eval()
    large = torch.rand(2, 3, 2 * INPUT_SIZE, 2 * INPUT_SIZE)
    # What the network sees of a 224 crop: its antialiased bilinear resize to 112.
    size = (INPUT_SIZE, INPUT_SIZE)
    small = F.interpolate(large, size=size, mode="bilinear", antialias=True)
    audio = torch.randn(2, WINDOW, N_MFCC)
    with torch.no_grad():
        at_112, at_224 = net(small, audio), net(large, audio)
    assert at_112.shape == at_224.shape == (2, 68, 2)
    # Same fractions of the image, twice the pixels (pixel centres at integers).
    torch.testing.assert_close(at_224, 2 * (at_112 + 0.5) - 0.5, rtol=0, atol=1e-4)


def test_use_audio_removes_exactly_the_audio_parameters() -> None:
    with_audio = dict(LandmarkNet(use_audio=True).named_parameters())
    without = dict(LandmarkNet(use_audio=False).named_parameters())
    audio_only = set(with_audio) - set(without)
    assert audio_only and all(name.startswith("audio.") for name in audio_only)
    assert set(without) <= set(with_audio)
    changed = [n for n in without if with_audio[n].shape != without[n].shape]
    assert changed == ["head.weight"]  # the head reads audio_dim more inputs
    extra_head = with_audio["head.weight"].numel() - without["head.weight"].numel()
    assert extra_head == 68 * 2 * 64
    n_audio = sum(with_audio[n].numel() for n in audio_only)
    total = sum(p.numel() for p in with_audio.values())
    assert total - sum(p.numel() for p in without.values()) == n_audio + extra_head
    assert total < 1_500_000


def test_audio_is_used_ignored_or_missing_as_documented() -> None:
    torch.manual_seed(0)
    frames, audio = torch.rand(3, 3, 96, 96), torch.randn(3, WINDOW, N_MFCC)
    with_audio, without = LandmarkNet(use_audio=True).eval(), LandmarkNet(use_audio=False).eval()
    with torch.no_grad():
        assert not torch.allclose(with_audio(frames, audio), with_audio(frames, None))
        torch.testing.assert_close(without(frames, audio), without(frames, None))
    with pytest.raises(ValueError, match="audio windows"):
        with_audio(frames, torch.randn(3, WINDOW, 20))
    with pytest.raises(ValueError, match="frames"):
        with_audio(torch.rand(3, 1, 96, 96), audio)


def test_registered_with_the_model_protocol() -> None:
    net = build("landmark-net").eval()
    assert net.contract.input_size == 112
    inputs = net.dummy_inputs(96, 80)
    assert inputs["frames"].shape == (1, 3, 96, 80)
    with torch.no_grad():
        assert net(**inputs).shape == (1, 68, 2)
    assert build("landmark-net", use_audio=False).dummy_inputs(96, 80).keys() == {"frames"}


def test_loss_is_mean_squared_distance_in_crop_units() -> None:
    target = torch.rand(2, 68, 2) * 100
    pred = target + torch.tensor([3.0, 4.0])  # every landmark 5 px off
    assert landmark_loss(pred, target, (100, 100)).item() == pytest.approx(0.05**2)
    # The same error on a crop taken at twice the resolution costs the same.
    assert landmark_loss(2 * pred, 2 * target, (200, 200)).item() == pytest.approx(0.05**2)


@pytest.fixture(scope="module")
def degraded_faces(grid_clip: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 face crops of the real clip: bicubic x4-degraded frames (8, 3, 112, 112), dlib
    landmarks of the clean crops (8, 68, 2) and the frames' MFCC windows (8, 21, 13)."""
    video, fps = read_frames(grid_clip, max_frames=72)
    frame_ids = np.arange(0, 72, 9)
    detector = FaceDetector("hog", upsample=0)
    predictor = LandmarkPredictor(detector)
    crops, targets = [], []
    for frame in video[frame_ids]:
        face = detector.detect(frame)[0][0]
        points = predictor.predict(frame, face)
        crop, (left, top, right, _) = crop_square(frame, square_boxes(face), INPUT_SIZE)
        # Teacher landmarks of the clean crop; the network sees it bicubic x4 down and up.
        targets.append((points - (left, top) + 0.5) * INPUT_SIZE / (right - left) - 0.5)
        small = cv2.resize(crop, (INPUT_SIZE // 4, INPUT_SIZE // 4), interpolation=cv2.INTER_CUBIC)
        crops.append(cv2.resize(small, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_CUBIC))
    frames = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    audio = read_audio(grid_clip, rate=16000)
    windows = audio_windows(audio.mono, audio.rate, len(video), fps, WINDOW, N_MFCC)[frame_ids]
    return frames, torch.from_numpy(np.stack(targets)), torch.from_numpy(windows)


def test_learns_landmarks_of_real_degraded_faces(degraded_faces) -> None:
    frames, targets, windows = degraded_faces
    torch.manual_seed(0)
    net = LandmarkNet()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = landmark_loss(net(frames, windows), targets, (INPUT_SIZE, INPUT_SIZE))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
