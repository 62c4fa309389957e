"""Temporal consistency: the flow warping error of Lai et al. 2018 (E_warp), flow from the HQ video.

For t = 1 … T−1, Farnebäck flow ``f`` is computed on the HQ frames from t to t−1
(``HQ_t(p) ≈ HQ_{t−1}(p + f(p))``); the restored frame t−1 is warped onto t,
``W(p) = R_{t−1}(p + f(p))`` (bilinear, ``cv2.remap``), and compared with ``R_t``:

    E_t = Σ_p M(p) · mean_c (R_t(p) − W(p))² / Σ_p M(p),    E_warp = mean_t E_t,

RGB in [0, 1]. The mask M keeps pixels whose flow stays inside the frame and passes the
forward–backward check of Sundaram et al. 2010 (as Lai et al. and Ruder et al. use):
``|f + b(p + f)|² ≤ 0.01 (|f|² + |b(p + f)|²) + 0.5`` with ``b`` the flow from t−1 to t.
Using the HQ flow makes every method warp with the same motion, so the error measures
flicker the restoration adds, not the flow estimator's view of artifacts. Lower is better;
the HQ video itself scores its own (non-zero) floor.
"""

from __future__ import annotations

import cv2
import numpy as np

# OpenCV's tutorial settings for Farnebäck: 3-level pyramid, 15 px window, 5-px polynomials.
FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) with ``src(p) ≈ dst(p + flow(p))`` for grey uint8 frames."""
    return cv2.calcOpticalFlowFarneback(src, dst, None, **FARNEBACK)


def _sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image(p + flow(p))`` by bilinear interpolation (edges replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        gx + flow[..., 0],
        gy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def visible_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels (H, W) whose ``forward`` flow lands in the frame and ``backward`` undoes."""
    h, w = forward.shape[:2]
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    x, y = gx + forward[..., 0], gy + forward[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    back = _sample(backward, forward)
    loop = ((forward + back) ** 2).sum(-1)
    bound = OCCLUSION_ALPHA * ((forward**2).sum(-1) + (back**2).sum(-1)) + OCCLUSION_BETA
    return inside & (loop <= bound)


def warp_error(restored: np.ndarray, hq: np.ndarray) -> float:
    """E_warp of ``restored`` (T, H, W, 3) with flow from ``hq`` (T, H, W, 3), both uint8 RGB."""
    if restored.shape != hq.shape or restored.ndim != 4 or len(restored) < 2:
        raise ValueError(
            f"need two equal (T >= 2, H, W, 3) videos, got {restored.shape}, {hq.shape}"
        )
    grays = [_gray(f) for f in hq]
    errors = []
    for t in range(1, len(hq)):
        forward = _flow(grays[t], grays[t - 1])
        backward = _flow(grays[t - 1], grays[t])
        mask = visible_mask(forward, backward)
        warped = _sample(restored[t - 1].astype(np.float32) / 255, forward)
        sq = ((restored[t].astype(np.float32) / 255 - warped) ** 2).mean(-1)
        errors.append(float(sq[mask].mean()) if mask.any() else float(sq.mean()))
    return float(np.mean(errors))
