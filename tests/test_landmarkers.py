"""Landmarkers: dlib on the LQ face crop (the deployed default) and landmark networks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from avrestore.degrade import Degradation
from avrestore.errors import InputError
from avrestore.media.video import read_frames
from avrestore.models.contract import AudioInput
from avrestore.models.landmarkers import DLIB, load_landmarker
from avrestore.models.registry import build
from avrestore.models.weights import save_model


def test_dlib_on_a_degraded_crop_stays_near_the_teacher(prepared_root: Path) -> None:
    clip = prepared_root / "clips" / "grid_bbaf2n"
    frames, fps = read_frames(clip / "face.mp4")
    teacher = np.load(clip / "landmarks.npy")
    dlib = load_landmarker(DLIB)
    assert dlib.audio is None and dlib.label == "dlib"
    clean = dlib.predict_frames(frames)
    assert clean.shape == (len(frames), 68, 2) and clean.dtype == np.float32
    # prepare's teacher is this very call, on the crop before its near-lossless encoding.
    assert np.linalg.norm(clean - teacher, axis=-1).mean() < 0.5
    blurred = dlib.predict_frames(Degradation(blur=21)(frames, fps))
    error = np.linalg.norm(blurred - teacher, axis=-1).mean()
    assert 0 < error < 0.05 * frames.shape[1], error  # moved, but within 5 % of the crop


def test_dlib_landmarks_are_the_same_from_several_threads(prepared_root: Path) -> None:
    frames = read_frames(prepared_root / "clips" / "grid_bbaf2n" / "face.mp4", max_frames=24)[0]
    frames = Degradation(crf=45)(frames, 25.0)  # degraded: some crops fall back to the implied box
    dlib = load_landmarker(DLIB)
    serial = dlib.predict_frames(frames)
    with ThreadPoolExecutor(4) as pool:  # restore's workers find landmarks at once
        threaded = np.concatenate(list(pool.map(dlib.predict_frames, np.array_split(frames, 4))))
    np.testing.assert_array_equal(threaded, serial)


def test_a_landmark_network_is_loaded_with_its_audio_window(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "lm.safetensors"
    save_model(build("landmark-net"), path, {"type": "landmark-net"})
    net = load_landmarker(str(path))
    assert net.audio == AudioInput(21, 13) and net.label == str(path)
    crops = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), np.uint8)
    assert net.predict_frames(crops, np.zeros((5, 21, 13), np.float32)).shape == (5, 68, 2)


def test_unknown_or_foreign_landmarkers_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no weights for 'nosuch'"):
        load_landmarker("nosuch")
    path = tmp_path / "gavn.safetensors"
    save_model(build("gavn-small", channels=8), path, {"type": "gavn-small", "channels": 8})
    with pytest.raises(InputError, match="not a landmark network"):
        load_landmarker(str(path))
