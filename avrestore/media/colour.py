"""RGB <-> Y'CbCr with an explicit matrix, range and rounding, for the 8-bit planar formats.

swscale's default rgb24 <-> yuv420p conversion (what ``frame.to_ndarray(format="rgb24")`` does)
shifts colours by about (-1.1, -1.4, -1.2) levels per round trip even when the codec is
lossless; a restorer trained on such frames learns to undo a bias that a real decoder's output
does not have. Here each conversion is a float matrix product rounded half away from zero once:

- matrix: BT.601 or BT.709 (Kr, Kb), as the stream states; an unstated matrix is read as
  BT.709 for frames 720 lines high or more and BT.601 below (what players do; swscale always
  assumes BT.601). Our writer always states the matrix and range it used.
- range: limited (Y' 16-235, C 16-240) unless the stream says full (``yuvj*``, JPEG range).
- chroma 4:2:0 / 4:2:2: down by the mean of each 2x2 (2x1) block, up by bilinear
  interpolation at block centres (centre siting; H.264's default left siting differs by a
  quarter chroma sample, which moves no colour on average).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Kr, Kb of each matrix; Kg = 1 - Kr - Kb.
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
# libavutil's AVColorSpace values of the matrices above (and those read as them).
_AV_MATRIX = {"bt709": 1, "bt601": 6}
_FROM_AV_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601"}
_AV_RANGE = {False: 1, True: 2}  # AVCOL_RANGE_MPEG (limited), AVCOL_RANGE_JPEG (full)
# Chroma subsampling (vertical, horizontal) of the planar 8-bit formats converted here.
SUBSAMPLING = {
    "yuv420p": (2, 2),
    "yuvj420p": (2, 2),
    "yuv422p": (1, 2),
    "yuvj422p": (1, 2),
    "yuv444p": (1, 1),
    "yuvj444p": (1, 1),
}
# What VideoWriter encodes to (PyAV fills these from arrays; yuv422p it cannot).
WRITABLE = ("yuv420p", "yuv444p")
HD_LINES = 720


@dataclass(frozen=True)
class ColourSpec:
    """How Y'CbCr samples map to RGB: ``matrix`` (``bt601``/``bt709``) and ``full_range``."""

    matrix: str = "bt601"
    full_range: bool = False

    @property
    def av_colorspace(self) -> int:
        """The libav colorspace value that states this matrix in a stream."""
        return _AV_MATRIX[self.matrix]

    @property
    def av_color_range(self) -> int:
        """The libav colour range value that states this range in a stream."""
        return _AV_RANGE[self.full_range]


DEFAULT_SPEC = ColourSpec()  # what our writer uses unless told (e.g. the input's own)


def spec_of(colorspace: int, color_range: int, pix_fmt: str, height: int) -> ColourSpec:
    """The spec a decoded frame's metadata states, with the defaults above where it is silent."""
    matrix = _FROM_AV_MATRIX.get(int(colorspace))
    if matrix is None:
        matrix = "bt709" if height >= HD_LINES else "bt601"
    full = int(color_range) == 2 or pix_fmt.startswith("yuvj")
    return ColourSpec(matrix, full)


def _scales(spec: ColourSpec) -> tuple[float, float, float]:
    """(luma offset, luma scale, chroma scale) of 8-bit samples for values in [0, 1]."""
    return (0.0, 255.0, 255.0) if spec.full_range else (16.0, 219.0, 224.0)


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def rgb_to_yuv(
    rgb: np.ndarray, spec: ColourSpec, subsampling: tuple[int, int] = (1, 1)
) -> list[np.ndarray]:
    """RGB uint8 (H, W, 3) -> [Y', Cb, Cr] uint8 planes, chroma subsampled by (sv, sh).

    H and W must be multiples of the subsampling.
    """
    kr, kb = MATRICES[spec.matrix]
    kg = 1.0 - kr - kb
    x = rgb.astype(np.float32) / 255.0
    y = kr * x[..., 0] + kg * x[..., 1] + kb * x[..., 2]
    cb = (x[..., 2] - y) / (2.0 * (1.0 - kb))
    cr = (x[..., 0] - y) / (2.0 * (1.0 - kr))
    sv, sh = subsampling
    if (sv, sh) != (1, 1):
        h, w = y.shape
        cb = cb.reshape(h // sv, sv, w // sh, sh).mean((1, 3))
        cr = cr.reshape(h // sv, sv, w // sh, sh).mean((1, 3))
    off, ys, cs = _scales(spec)
    return [_round_u8(off + ys * y), _round_u8(128.0 + cs * cb), _round_u8(128.0 + cs * cr)]


def yuv_to_rgb(planes: list[np.ndarray], spec: ColourSpec) -> np.ndarray:
    """[Y', Cb, Cr] uint8 planes (chroma at any integer subsampling) -> RGB uint8 (H, W, 3)."""
    y8, cb8, cr8 = planes
    h, w = y8.shape
    off, ys, cs = _scales(spec)
    y = (y8.astype(np.float32) - off) / ys
    cb, cr = ((c.astype(np.float32) - 128.0) / cs for c in (cb8, cr8))
    if cb.shape != (h, w):
        # Exactly x2 per subsampled axis, then cut: an odd side has ceil(side / 2) chroma
        # samples, and stretching them onto the side would shift the chroma at the far edge.
        sv, sh = -(-h // cb.shape[0]), -(-w // cb.shape[1])
        up = (cb.shape[1] * sh, cb.shape[0] * sv)
        cb = cv2.resize(cb, up, interpolation=cv2.INTER_LINEAR)[:h, :w]
        cr = cv2.resize(cr, up, interpolation=cv2.INTER_LINEAR)[:h, :w]
    kr, kb = MATRICES[spec.matrix]
    kg = 1.0 - kr - kb
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return _round_u8(np.stack((r, g, b), -1) * 255.0)
