"""Per-macroblock QP maps of x264 streams, read with PyAV (``avrestore.media.qp``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.media.qp import crop_qp, effective_qp, read_qp_maps
from avrestore.media.video import VideoWriter, read_frames


@pytest.fixture(scope="module")
def crf45_copy(talking_heads: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames of a real face, 200x136 (not whole macroblocks), at CRF 45 as ``compress``."""
    frames, _ = read_frames(talking_heads / "voxceleb2_Pose_Source_00067.mp4", max_frames=8)
    path = tmp_path_factory.mktemp("qp") / "crf45.mp4"
    with VideoWriter(path, 25, crf=45, preset="medium") as writer:
        writer.write(np.ascontiguousarray(frames[:, 40:176, 12:212]))
    return path


def test_qp_maps_have_the_macroblock_grid_shape(crf45_copy: Path) -> None:
    maps = read_qp_maps(crf45_copy)
    assert maps.macroblock.shape == (8, 9, 13)  # ⌈136/16⌉, ⌈200/16⌉
    assert maps.macroblock.dtype == np.uint8 and maps.picture.shape == (8,)
    # x264 states its CRF as the picture parameter set's initial QP; adaptive quantisation and
    # mbtree move each macroblock's around it.
    assert set(maps.picture.tolist()) == {45}
    assert 20 <= maps.macroblock.min() < 45 < maps.macroblock.max() <= 51
    assert read_qp_maps(crf45_copy, max_frames=3).macroblock.shape == (3, 9, 13)
    # Decoding is deterministic (slice threads; frame threads were not).
    assert np.array_equal(read_qp_maps(crf45_copy).macroblock, maps.macroblock)


def test_the_effective_qp_is_the_larger_of_macroblock_and_picture_qp() -> None:
    mb = np.array([[[40, 47]], [[50, 30]]])
    assert effective_qp(mb, np.array([45, 45])).tolist() == [[[45, 47]], [[50, 45]]]


def test_crop_qp_per_block_and_per_pixel() -> None:
    qp = np.arange(3 * 4).reshape(3, 4)  # macroblock (r, c) holds 4r + c
    per_block = crop_qp(qp, 12, 8, 24, 32)
    assert per_block.shape == (6, 8)
    assert per_block[0].tolist() == [0, 0, 1, 1, 1, 1, 2, 2]  # row 12: macroblock row 0
    assert per_block[:, 0].tolist() == [0, 4, 4, 4, 4, 8]  # column 8: macroblock column 0
    per_pixel = crop_qp(qp[None], 0, 0, 48, 64, step=1)
    assert (
        per_pixel.shape == (1, 48, 64) and per_pixel[0, 47, 63] == 11 and per_pixel[0, 15, 16] == 1
    )
    with pytest.raises(ValueError, match="4-pixel grid"):
        crop_qp(qp, 2, 0, 16, 16)
    with pytest.raises(ValueError, match="outside"):
        crop_qp(qp, 40, 0, 16, 16)


def test_a_stream_other_than_h264_is_refused(tiny_video: Path, grid_clip: Path) -> None:
    assert read_qp_maps(tiny_video).macroblock.shape == (50, 3, 4)  # 64x48
    with pytest.raises(InputError, match=r"H\.264"):
        read_qp_maps(grid_clip)  # MPEG-1
