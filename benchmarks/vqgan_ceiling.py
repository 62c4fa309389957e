"""The audio-guided VQ restorer's ceiling: how well a trained TS-VQGAN reconstructs the clean
face crops of speakers it never saw, through its codebook.

    .venv/bin/python benchmarks/vqgan_ceiling.py data/prepared224 --model ts-vqgan-small

The VQ restorer draws every face with this decoder from predicted codes, so even perfectly
predicted codes cannot score above these figures. Each test clip's first ``--max-frames`` HQ
crops (whole 224², as ``avrestore evaluate`` scores them) are reconstructed in consecutive
clips of the model's 3 frames (the last clip repeats its final frame to fill up), in fp32 on
one thread; PSNR, SSIM and MS-SSIM are ``metrics.clip.fidelity``'s, the means over all frames
of all clips. The code statistics are those of every latent position of every frame: the
perplexity (exp of the entropy of the code histogram, 1 .. K) and the fraction of the K codes
used. One markdown table on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from avrestore.data.clip_cache import clip_frames
from avrestore.evaluate.sources import select_clips
from avrestore.metrics.clip import fidelity
from avrestore.models.contract import restorer_contract
from avrestore.models.vector_quantizer import perplexity
from avrestore.models.weights import resolve_model


def reconstruct(model: torch.nn.Module, frames: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """The reconstruction (uint8, as ``frames``: T, H, W, 3) and the codes of every frame."""
    t = restorer_contract(model).frames_in
    x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255  # a copy: writable
    pad = -len(x) % t
    x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)]) if pad else x
    clips = x.unflatten(0, (-1, t))
    out, codes = [], []
    with torch.inference_mode():
        for clip in clips:
            k = model.codes(clip[None])  # (1, T, h, w)
            codes.append(k.flatten())
            out.append(model.decode(model.embed(k))[0][0])
    recon = torch.cat(out)[: len(frames)].clamp(0, 1)
    restored = (recon.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    return restored, torch.cat(codes)


def main() -> None:
    """Reconstruct the test speakers' clips and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared folder (avrestore prepare)")
    ap.add_argument("--model", default="ts-vqgan-small", help="shipped name or weights path")
    ap.add_argument("--clips", default="test")
    ap.add_argument("--max-frames", type=int, default=60)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = resolve_model(args.model)
    if not getattr(model, "quantize", False):
        ap.exit(2, f"{ap.prog}: error: {args.model} does not quantise (a warm-up autoencoder)\n")
    clip_set = select_clips(args.data, args.clips, args.max_frames)
    rows, all_codes = [], []
    for folder in clip_set.folders:
        hq = clip_frames(folder, clip_set.cache)[: args.max_frames]
        restored, codes = reconstruct(model, hq)
        rows.append((folder.name, len(hq), fidelity(restored, hq)))
        all_codes.append(codes)
    n_codes = model.quantizer.codebook.shape[0]
    codes = torch.cat(all_codes)
    frames = sum(n for _, n, _ in rows)
    print("| clip | frames | PSNR | SSIM | MS-SSIM |\n| --- | ---: | ---: | ---: | ---: |")
    for name, n, f in rows:
        print(f"| {name} | {n} | {f['psnr']:.2f} | {f['ssim']:.4f} | {f['ms_ssim']:.4f} |")
    mean = {k: sum(n * f[k] for _, n, f in rows) / frames for k in ("psnr", "ssim", "ms_ssim")}
    print(
        f"| all | {frames} | **{mean['psnr']:.2f}** | **{mean['ssim']:.4f}** | "
        f"**{mean['ms_ssim']:.4f}** |\n\ncodes: {len(codes)} positions, perplexity "
        f"{perplexity(codes, n_codes).item():.1f} of {n_codes}, "
        f"{len(codes.unique()) / n_codes:.1%} of the codes used"
    )


if __name__ == "__main__":
    main()
