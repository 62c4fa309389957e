"""Shared fixtures: the real clips in ../shared/data (skip when absent, fail under CI) and
small generated media."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AVRESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is missing; under CI the shared data must be present")
    pytest.skip(f"{path} not present (the shared sample data lives beside the checkout)")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread while a module's tests run: on two shared cores a second intra-op
    thread only adds sync cost (gradcheck's ~1,400 tiny forwards ran 16x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def talking_heads() -> Path:
    """The folder of 52 real talking-head clips with speech."""
    return _require(SHARED_DATA / "talking_heads")


@pytest.fixture(scope="session")
def grid_clip(talking_heads: Path) -> Path:
    """A short real clip: 3 s, 360x288, 25 fps, stereo 44.1 kHz speech."""
    return _require(talking_heads / "grid_bbaf2n.mpg")


@pytest.fixture(scope="session")
def silent_clip() -> Path:
    """A real face clip with no audio track (176x144, 29.97 fps)."""
    return _require(SHARED_DATA / "misc" / "carphone_noaudio.mp4")


@pytest.fixture(scope="session")
def niqe_params_path() -> Path:
    """NIQE's standard pristine-model parameters (BasicSR's niqe_pris_params.npz)."""
    return _require(SHARED_DATA / "misc" / "niqe_pris_params.npz")


# A GAVN small enough for fast tests: registered as gavn-small, with these overrides.
TINY_GAVN = {
    "type": "gavn-small",
    "channels": 8,
    "deform_groups": 1,
    "deblur_blocks": 1,
    "prop_blocks": 1,
    "identity_blocks": 1,
    "up_blocks": [1, 1],
}


@pytest.fixture(scope="session")
def tiny_gavn_spec() -> dict:
    """Registered name and arguments of a tiny, untrained GAVN (a fresh copy per use)."""
    return dict(TINY_GAVN)


PREPARED_SIZE = 96


@pytest.fixture(scope="session")
def prepared_root(
    grid_clip: Path, silent_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A prepared folder at 96²: the GRID clip (14 frames, speech; splits train and val) and
    the silent clip (12 frames; train only)."""
    from avrestore.data.layouts import ClipSource
    from avrestore.data.prepare import ClipPreparer, PrepareOptions

    root = tmp_path_factory.mktemp("prepared")
    for path, frames in ((grid_clip, 14), (silent_clip, 12)):
        preparer = ClipPreparer(PrepareOptions(size=PREPARED_SIZE, max_frames=frames))
        out = root / "clips" / path.stem
        out.mkdir(parents=True)
        preparer.prepare(ClipSource(path.stem, path, path.stem, path.stem), out)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text(f"{grid_clip.stem}\n{silent_clip.stem}\n")
    (root / "splits" / "val.txt").write_text(f"{grid_clip.stem}\n")
    return root


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 2 s, 25 fps, 64x48 video of a moving gradient with a 440 Hz stereo tone."""
    from avrestore.media.audio import Audio
    from avrestore.media.video import VideoWriter

    path = tmp_path_factory.mktemp("media") / "tiny.mp4"
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = Audio(np.stack([tone, tone]), 16000)
    yy, xx = np.mgrid[0:48, 0:64]
    with VideoWriter(path, 25, crf=12, audio=audio) as w:
        for i in range(50):
            img = np.stack([(xx * 4 + i * 3) % 256, (yy * 5) % 256, (xx + yy + i) % 256], -1)
            w.write(img.astype(np.uint8))
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m avrestore ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "avrestore", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
