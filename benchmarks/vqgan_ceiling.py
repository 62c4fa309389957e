"""The audio-guided VQ restorer's ceiling, clip by clip: how well a trained TS-VQGAN
reconstructs the clean face crops of speakers it never saw, through its codebook.

    .venv/bin/python benchmarks/vqgan_ceiling.py data/prepared224 --model ts-vqgan-small

``avrestore.evaluate.ceiling`` does the work (what is reconstructed and scored is said there;
the leaderboard's ``--ceiling`` shows the means); here in fp32 on one thread, one markdown
table on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avrestore.errors import InputError
from avrestore.evaluate.ceiling import codebook_ceiling
from avrestore.models.weights import resolve_model


def main() -> None:
    """Reconstruct the test speakers' clips and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared folder (avrestore prepare)")
    ap.add_argument("--model", default="ts-vqgan-small", help="shipped name or weights path")
    ap.add_argument("--clips", default="test")
    ap.add_argument("--max-frames", type=int, default=60)
    args = ap.parse_args()
    torch.set_num_threads(1)
    try:
        model = resolve_model(args.model)
        ceiling = codebook_ceiling(model, args.data, args.clips, args.max_frames, args.model)
    except InputError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    print("| clip | frames | PSNR | SSIM | MS-SSIM |\n| --- | ---: | ---: | ---: | ---: |")
    for c in ceiling.clips:
        s = c.scores
        print(f"| {c.name} | {c.frames} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['ms_ssim']:.4f} |")
    mean = ceiling.mean()
    print(
        f"| all | {ceiling.frames} | **{mean['psnr']:.2f}** | **{mean['ssim']:.4f}** | "
        f"**{mean['ms_ssim']:.4f}** |\n\ncodes: perplexity {ceiling.perplexity:.1f} of "
        f"{ceiling.n_codes}, {ceiling.usage:.1%} of the codes used"
    )


if __name__ == "__main__":
    main()
