"""tools/device_vqgan.py: the frame archive that carries the clean crops to the accelerator
machine, and the training clips drawn from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from avrestore.media.video import read_frames

TOOL = Path(__file__).resolve().parents[1] / "tools" / "device_vqgan.py"


def _tool():
    spec = importlib.util.spec_from_file_location("device_vqgan", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_archive_keeps_three_of_every_stride_and_windows_stay_inside_a_run(
    prepared_root: Path, tmp_path: Path
) -> None:
    tool = _tool()
    archive = tmp_path / "frames.npz"
    tool.pack(prepared_root, archive, quality=95, stride=5)
    frames, clip, split = tool._decode(archive, torch.device("cpu"))
    # train: GRID (14 frames: 0-2, 5-7, 10-12) and the silent clip (12: 0-2, 5-7, 10-11);
    # val: GRID again.
    assert len(frames) == 9 + 8 + 9
    assert split.tolist() == [0] * 17 + [1] * 9
    grid, _ = read_frames(prepared_root / "clips" / "grid_bbaf2n" / "face.mp4")
    kept = grid[[0, 1, 2, 5, 6, 7, 10, 11, 12]]
    decoded = frames[:9].permute(0, 2, 3, 1).numpy().astype(np.float64)
    mse = np.mean((decoded - kept) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35  # JPEG q95 of the crops, in order
    starts = tool._starts(clip, split, 0)
    # A window of 3 never joins frames 2 and 5, nor the silent clip's short tail (10-11).
    assert starts.tolist() == [0, 3, 6, 9, 12]
    assert tool._starts(clip, split, 1).tolist() == [17, 20, 23]


def test_training_batch_is_a_patch_of_three_consecutive_frames() -> None:
    tool = _tool()
    frames = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 3, 8, 8).clone()
    batch = tool._batch(frames, np.array([0, 3]), 4, 4, np.random.default_rng(0))["hq"]
    assert batch.shape == (4, 3, 3, 4, 4)
    first = (batch[:, :, 0, 0, 0] * 255).round()
    assert ((first[:, 1] - first[:, 0]) == 1).all() and ((first[:, 2] - first[:, 1]) == 1).all()
    assert set(first[:, 0].tolist()) <= {0.0, 3.0}


def test_stages_are_the_recipe_of_the_cpu_config() -> None:
    warmup, vq = _tool()._stages(_tool().CONFIG)
    assert (warmup.name, warmup.lr, warmup.schedule, warmup.quantize) == (
        "warmup",
        2e-4,
        "constant",
        False,
    )
    assert (vq.name, vq.lr, vq.schedule, vq.min_lr, vq.quantize) == (
        "vq",
        1e-4,
        "cosine",
        1e-5,
        True,
    )
