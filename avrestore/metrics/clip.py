"""Score a restored clip against its HQ original: every metric of the papers in one pass.

Conventions: frames are (T, H, W, 3) uint8 RGB, converted to [0, 1] floats for the fidelity
metrics; every value is a mean over frames (PSNR: mean of per-frame PSNRs). HQ landmarks
are computed once (or taken from the caller) and serve the mouth box, LMD, identity and the
SyncNet crops. A metric whose input or weights are missing is ``None``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from avrestore.errors import InputError
from avrestore.faces.identity import FaceEmbedder
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.metrics.color import y_channel
from avrestore.metrics.identity import identity_similarity
from avrestore.metrics.lpips import load_lpips, lpips_frames
from avrestore.metrics.mouth import lmd, mouth_psnr, refit_landmarks
from avrestore.metrics.niqe import NiqeParams, niqe, niqe_applicable
from avrestore.metrics.ssim import ms_ssim, ssim
from avrestore.metrics.sync import sync_scores
from avrestore.metrics.syncnet_model import load_syncnet
from avrestore.metrics.temporal import warp_error
from avrestore.quality import psnr

METRICS = (
    "psnr",
    "psnr_y",
    "ssim",
    "ssim_y",
    "ms_ssim",
    "psnr_mouth",
    "lmd",
    "identity",
    "warp_error",
    "niqe",
    "lpips",
    "sync_c",
    "sync_d",
)


@dataclass(frozen=True)
class MetricResources:
    """User-given files for the metrics that need them; each left ``None`` disables its metric.

    ``lpips_paths`` is (torchvision AlexNet state dict, LPIPS v0.1 ``alex.pth``).
    """

    niqe_params: str | os.PathLike | None = None
    lpips_paths: tuple[str | os.PathLike, str | os.PathLike] | None = None
    syncnet_path: str | os.PathLike | None = None


def _frames01(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) / 255.0


def _check_clip(restored: np.ndarray, hq: np.ndarray, hq_landmarks: np.ndarray | None) -> None:
    for name, v in (("restored", restored), ("HQ", hq)):
        if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
            raise InputError(f"{name} frames must be uint8 (T, H, W, 3), got {v.dtype} {v.shape}")
    if restored.shape != hq.shape:
        raise InputError(f"restored {restored.shape} and HQ {hq.shape} frames differ in shape")
    if hq_landmarks is not None and np.shape(hq_landmarks) != (len(hq), 68, 2):
        raise InputError(f"HQ landmarks must be ({len(hq)}, 68, 2), got {np.shape(hq_landmarks)}")


def fidelity(restored: np.ndarray, hq: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM (RGB and Y) and MS-SSIM of two uint8 videos, each the mean of per-frame
    values (keys ``psnr``, ``psnr_y``, ``ssim``, ``ssim_y``, ``ms_ssim``)."""
    rows = []
    for r, q in zip(restored, hq, strict=True):
        r01, q01 = _frames01(r), _frames01(q)
        ry, qy = y_channel(r01), y_channel(q01)
        rows.append((psnr(r, q), psnr(ry, qy), ssim(r01, q01), ssim(ry, qy), ms_ssim(r01, q01)))
    names = ("psnr", "psnr_y", "ssim", "ssim_y", "ms_ssim")
    return dict(zip(names, map(float, np.mean(np.array(rows), axis=0)), strict=True))


class ClipScorer:
    """Holds the loaded models (landmarks, identity, LPIPS, SyncNet, NIQE parameters) so that
    many clips are scored without reloading them.

    ``every`` > 1 computes identity and NIQE, the slow per-frame metrics on one CPU core
    (two dlib ResNet passes, ~0.3 s a frame; NIQE 0.06 s at 360×288, 0.3 s at 512×512), on
    every ``every``-th frame only.
    """

    def __init__(self, resources: MetricResources | None = None, every: int = 1) -> None:
        resources = resources or MetricResources()
        if every < 1:
            raise InputError(f"every must be >= 1, got {every}")
        self.every = every
        self.landmarks = LandmarkPredictor()
        self.embedder = FaceEmbedder(self.landmarks)
        self.niqe_params = (
            NiqeParams.load(resources.niqe_params) if resources.niqe_params is not None else None
        )
        self.lpips = load_lpips(*(resources.lpips_paths or (None, None)))
        self.syncnet = load_syncnet(resources.syncnet_path)

    def hq_landmarks(self, hq: np.ndarray) -> np.ndarray:
        """Landmarks (T, 68, 2) of every HQ frame (face detection on each)."""
        return np.stack([self.landmarks.predict(f) for f in hq])

    def score(
        self,
        restored: np.ndarray,
        hq: np.ndarray,
        hq_landmarks: np.ndarray | None = None,
        audio16k: np.ndarray | None = None,
        fps: float = 25.0,
    ) -> dict[str, float | None]:
        """All metrics (keys ``METRICS``) of ``restored`` against ``hq``, (T, H, W, 3) uint8 RGB.

        ``hq_landmarks`` (T, 68, 2) are detected when not given; ``audio16k`` is the clip's
        mono 16 kHz track in [−1, 1] (Sync_c / Sync_d are ``None`` without it).
        """
        _check_clip(restored, hq, hq_landmarks)
        marks = self.hq_landmarks(hq) if hq_landmarks is None else np.asarray(hq_landmarks)
        out: dict[str, float | None] = dict.fromkeys(METRICS)
        out.update(fidelity(restored, hq))
        out["psnr_mouth"] = mouth_psnr(restored, hq, marks)
        # Both landmark sets are refitted in the same boxes (2 ms a frame): identical frames
        # then give LMD 0 and identity 1 whatever produced ``marks``.
        fitted = refit_landmarks(self.landmarks, restored, marks)
        fitted_hq = refit_landmarks(self.landmarks, hq, marks)
        out["lmd"] = lmd(fitted, fitted_hq)
        step = slice(None, None, self.every)
        out["identity"] = identity_similarity(
            self.embedder, restored[step], hq[step], fitted[step], fitted_hq[step]
        )
        if len(hq) >= 2:
            out["warp_error"] = warp_error(restored, hq)
        if self.niqe_params is not None and niqe_applicable(*hq.shape[1:3]):
            scores = [niqe(_frames01(f), self.niqe_params) for f in restored[step]]
            # Flat frames (a fade to black) have no NIQE; the others still count.
            if not np.isnan(scores).all():
                out["niqe"] = float(np.nanmean(scores))
        if self.lpips is not None:
            out["lpips"] = lpips_frames(self.lpips, restored, hq)
        if self.syncnet is not None and audio16k is not None:
            result = sync_scores(self.syncnet, restored, marks, audio16k, fps)
            if result is not None:
                out["sync_c"], out["sync_d"] = result.sync_c, result.sync_d
        return out


def score_clip(
    restored: np.ndarray,
    hq: np.ndarray,
    hq_landmarks: np.ndarray | None = None,
    audio16k: np.ndarray | None = None,
    fps: float = 25.0,
    extras: MetricResources | None = None,
) -> dict[str, float | None]:
    """Score one clip (see ``ClipScorer.score``); loads the models, so prefer a ``ClipScorer``
    when scoring many clips."""
    return ClipScorer(extras).score(restored, hq, hq_landmarks, audio16k, fps)
