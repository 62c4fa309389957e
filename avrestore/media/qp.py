"""Per-macroblock quantiser parameters (QP) of an H.264 stream, as FFmpeg's decoder exports them,
for DAVD-Net's constraining projection (``avrestore.models.cpm``).

Decoding with the codec option ``export_side_data=venc_params`` makes FFmpeg attach
``AV_FRAME_DATA_VIDEO_ENC_PARAMS`` to every frame; PyAV (18.1 here) reads it as
``av.sidedata.encparams.VideoEncParams``, whose ``qp_map()`` is the (H/16, W/16) array of each
macroblock's absolute QP and ``qp`` the base QP it is stated against.

What these numbers are, for x264 streams (measured with libavcodec 62):
- ``qp`` is the picture parameter set's ``pic_init_qp``, not the slice QP: it is the same for
  every frame of a stream, and x264 sets it to the CRF (35, 45 and 51 for CRF 35, 45, 51).
  It is called the picture QP here, as FFmpeg's documentation does.
- A macroblock's QP is the one its residual was quantised with when it codes one. A
  macroblock without coded residual (skipped, or all coefficients zero) codes no QP delta and
  reports the QP inherited from the macroblock before it, not the adaptive-quantisation QP
  that zeroed its coefficients; ``max(macroblock QP, picture QP)`` is then the better bound
  (``effective_qp``). Share of the ground truth's 4x4 luma coefficients within ±Q/2 of the
  decoded frame's, default x264 at CRF 45, 50 frames of four 224² VoxCeleb2 clips: 96.6-99.7 %
  with the macroblock QP, 99.5-99.8 % with the max (``design/peers.md`` §2.5 has 98.9 and
  99.5 % on one of them).
- Not exported by FFmpeg: the prediction, the residual, macroblock types, the transform size
  (4x4 or 8x8) and scaling lists. The projection does not need them (``models.cpm``).

Frames come in presentation order, as ``media.video.read_frames`` reads them (no frame-rate
resampling; streams with a display matrix are not turned: a QP map is in stored pixels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from avrestore.errors import InputError
from avrestore.media.files import existing_file
from avrestore.media.video import open_media

MB = 16  # an H.264 macroblock's side in luma pixels
BLOCK = 4  # the 4x4 transform block's side


@dataclass(frozen=True)
class QPMaps:
    """A stream's QPs: ``macroblock`` (T, ⌈H/16⌉, ⌈W/16⌉) per macroblock and ``picture`` (T,)
    the base QP each frame's map is stated against (see the module docstring)."""

    macroblock: np.ndarray
    picture: np.ndarray

    def effective(self) -> np.ndarray:
        """(T, ⌈H/16⌉, ⌈W/16⌉): the QP to bound each macroblock's coefficients by."""
        return effective_qp(self.macroblock, self.picture)


def effective_qp(macroblock: np.ndarray, picture: np.ndarray) -> np.ndarray:
    """max(macroblock QP, picture QP), per macroblock: (T, h, w) and (T,) -> (T, h, w) uint8."""
    bound = np.maximum(np.asarray(macroblock), np.asarray(picture)[:, None, None])
    return bound.astype(np.uint8)


def read_qp_maps(path: str | os.PathLike, max_frames: int | None = None) -> QPMaps:
    """The QP maps of the first video stream of an H.264 file, frame by frame (up to
    ``max_frames``); InputError if it is not H.264 or a frame carries none."""
    p = existing_file(path)
    maps: list[np.ndarray] = []
    picture: list[int] = []
    with open_media(p) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {p}")
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise InputError(
                f"QP maps are read from H.264 streams; {p} is {stream.codec_context.name}"
            )
        stream.codec_context.options = {"export_side_data": "venc_params"}
        # Not frame threading: with it the maps of some frames came out wrong, and different
        # from run to run (a macroblock of QP 0 in a CRF-45 stream once); slice threading
        # (PyAV's default) gave the same maps as one thread every time.
        stream.thread_type = "SLICE"
        for frame in container.decode(stream):
            if max_frames is not None and len(maps) >= max_frames:
                break
            params = _enc_params(frame)
            if params is None:
                raise InputError(f"{p}: frame {len(maps)} carries no encoder parameters")
            maps.append(np.asarray(params.qp_map(), np.uint8))
            picture.append(int(params.qp))
    if not maps:
        raise InputError(f"no frames could be decoded from {p}")
    return QPMaps(np.stack(maps), np.asarray(picture, np.uint8))


def _enc_params(frame: av.VideoFrame) -> av.sidedata.encparams.VideoEncParams | None:
    """The frame's VIDEO_ENC_PARAMS side data, if any."""
    for data in frame.side_data:
        if data.type == SideDataType.VIDEO_ENC_PARAMS:
            return data
    return None


def crop_qp(
    qp: np.ndarray, top: int, left: int, height: int, width: int, step: int = BLOCK
) -> np.ndarray:
    """The QP of each ``step`` x ``step`` block (4: per transform block; 1: per pixel) of the
    box ``top, left, height, width`` (pixels) of frames whose macroblock QPs are ``qp`` (..., h,
    w): (..., height/step, width/step). ``top``, ``left``, ``height`` and ``width`` must be
    multiples of ``step``, so that each block lies in one macroblock."""
    if MB % step or any(v % step for v in (top, left, height, width)):
        raise ValueError(
            f"a box at ({top}, {left}) of {width}x{height} is not on the {step}-pixel grid "
            "(steps divide 16)"
        )
    rows = (top + np.arange(0, height, step)) // MB
    cols = (left + np.arange(0, width, step)) // MB
    mb_h, mb_w = qp.shape[-2:]
    if rows[-1] >= mb_h or cols[-1] >= mb_w or top < 0 or left < 0:
        raise ValueError(f"the box lies outside the {mb_w * MB}x{mb_h * MB} frame")
    return qp[..., rows[:, None], cols[None, :]]
