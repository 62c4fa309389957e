"""The ceiling of a codebook restorer: how well its VQ autoencoder (a trained TS-VQGAN)
reconstructs the clean frames of clips it never saw, through its codebook.

The audio-guided VQ restorer draws every face with this decoder from predicted codes, so even
perfectly predicted codes cannot score above these figures. Each clip's first ``max_frames``
HQ crops (whole, as ``avrestore evaluate`` scores them) are reconstructed in consecutive clips
of the model's frames (the last clip repeats its final frame to fill up), in fp32; PSNR, SSIM
and MS-SSIM are ``metrics.clip.fidelity``'s. The code statistics are those of every latent
position of every frame: the perplexity (exp of the entropy of the code histogram, 1 .. K) and
the fraction of the K codes used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avrestore.data.clip_cache import clip_frames
from avrestore.errors import InputError
from avrestore.evaluate.sources import select_clips
from avrestore.metrics.clip import fidelity
from avrestore.models.contract import restorer_contract
from avrestore.models.vector_quantizer import perplexity

FIDELITY = ("psnr", "ssim", "ms_ssim")


@dataclass(frozen=True)
class ClipCeiling:
    """One clip's reconstruction: its name, frames scored and fidelity scores."""

    name: str
    frames: int
    scores: dict[str, float]


@dataclass(frozen=True)
class Ceiling:
    """The reconstruction of every clip and the codes' statistics over all of them."""

    clips: list[ClipCeiling]
    perplexity: float
    usage: float
    n_codes: int

    @property
    def frames(self) -> int:
        """Frames scored in all."""
        return sum(c.frames for c in self.clips)

    def mean(self) -> dict[str, float]:
        """PSNR, SSIM and MS-SSIM, the means over all frames of all clips."""
        return {k: sum(c.frames * c.scores[k] for c in self.clips) / self.frames for k in FIDELITY}


def check_vq_autoencoder(model: nn.Module, name: str) -> None:
    """InputError unless ``model`` is a VQ autoencoder past its warm-up (it quantises)."""
    quantize = getattr(model, "quantize", None)
    if quantize is None:
        raise InputError(f"{name} is no VQ autoencoder (a ts-vqgan checkpoint): it has no ceiling")
    if not quantize:
        raise InputError(f"{name} does not quantise (a warm-up autoencoder)")


def reconstruct(model: nn.Module, frames: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """The reconstruction (uint8, as ``frames``: T, H, W, 3) and the codes of every frame."""
    t = restorer_contract(model).frames_in
    x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255  # a copy: writable
    pad = -len(x) % t
    x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)]) if pad else x
    out, codes = [], []
    with torch.inference_mode():
        for clip in x.unflatten(0, (-1, t)):
            k = model.codes(clip[None])  # (1, T, h, w)
            codes.append(k.flatten())
            out.append(model.decode(model.embed(k))[0][0])
    recon = torch.cat(out)[: len(frames)].clamp(0, 1)
    restored = (recon.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    return restored, torch.cat(codes)


def codebook_ceiling(
    model: nn.Module, data: Path, split: str, max_frames: int, name: str = "the model"
) -> Ceiling:
    """Reconstruct the first ``max_frames`` HQ frames of each clip of ``split`` in ``data``."""
    check_vq_autoencoder(model, name)
    clip_set = select_clips(data, split, max_frames)
    clips, all_codes = [], []
    for folder in clip_set.folders:
        hq = clip_frames(folder, clip_set.cache)[:max_frames]
        restored, codes = reconstruct(model, hq)
        clips.append(ClipCeiling(folder.name, len(hq), fidelity(restored, hq)))
        all_codes.append(codes)
    n_codes = model.quantizer.codebook.shape[0]
    codes = torch.cat(all_codes)
    return Ceiling(
        clips,
        float(perplexity(codes, n_codes)),
        len(codes.unique()) / n_codes,
        n_codes,
    )
