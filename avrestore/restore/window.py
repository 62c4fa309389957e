"""Sliding-window inference: a model taking ``frames_in`` frames and returning the centre
``frames_out`` is run over a whole sequence so that every frame is restored exactly once.

The sequence is padded by reflection at both ends — ``(frames_in - frames_out) / 2`` frames of
context before the first frame, the same after the last, plus enough to fill the last window —
and windows advance by ``frames_out``. Outputs past the real end are dropped. A part of a longer
run (a block of ``restore.blocks``) comes with its real neighbours as context instead, and only
what they do not cover is padded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from avrestore.models.contract import restorer_contract, restorer_inputs


def _pad(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Reflect along axis 0 (repeat when there is a single frame to reflect)."""
    widths = [(before, after)] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, widths, mode="reflect" if len(x) > 1 else "edge")


def windows(n_frames: int, frames_out: int) -> Iterator[tuple[int, int]]:
    """``(start, count)`` per window: it reads padded frames ``start .. start + frames_in``
    (padded frame ``start + ctx`` is real frame ``start``); its first ``count`` outputs are real."""
    for first in range(0, n_frames, frames_out):
        yield first, min(frames_out, n_frames - first)


@torch.inference_mode()
def restore_sequence(
    model: nn.Module,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    batch: int = 1,
    device: str | torch.device = "cpu",
    side_data: Mapping[str, np.ndarray] | None = None,
    context: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Restore (T, H, W, 3) uint8 frames with per-frame audio windows (T, W_a, n_mfcc) and
    landmarks (T, 68, 2), either may be None; returns (T, H, W, 3) uint8. ``side_data``:
    per-frame arrays (T, ...) by name (e.g. ``qp``, the QP maps of the stream the frames were
    decoded from), each window getting those of its output frames, in their own dtype; only
    those the model's contract declares are passed (``evaluate`` gives them, ``restore``
    never: a face cut from a video and resized is not on its stream's grid).

    ``context`` (before, after): the first ``before`` and last ``after`` frames, at most
    ``(frames_in - frames_out) / 2`` each, are real neighbours read as context only; the frames
    between are restored and returned, and the per-frame inputs are theirs alone."""
    contract = restorer_contract(model)
    n_in, n_out = contract.frames_in, contract.frames_out
    ctx = (n_in - n_out) // 2
    before, after = context
    if not (0 <= before <= ctx and 0 <= after <= ctx and before + after < len(frames)):
        raise ValueError(f"context {context} does not fit {len(frames)} frames and {ctx} a side")
    t = len(frames) - before - after
    tail = -t % n_out
    lq = _pad(frames, ctx - before, ctx - after + tail)
    out = np.empty_like(frames[before : before + t])
    jobs = list(windows(t, n_out))
    for i in range(0, len(jobs), batch):
        group = jobs[i : i + batch]
        x = np.stack([lq[s : s + n_in] for s, _ in group])
        x = torch.from_numpy(x).to(device).permute(0, 1, 4, 2, 3).float() / 255
        a = _per_output(audio, group, n_out, tail, device)
        lm = _per_output(landmarks, group, n_out, tail, device)
        side = {
            name: _per_output(values, group, n_out, tail, device, float_=False)
            for name, values in (side_data or {}).items()
            if name in contract.side_data
        }
        y = (
            model(**restorer_inputs(contract, x, a, lm, side_data=side))
            .clamp(0, 1)
            .mul(255)
            .round()
            .byte()
            .permute(0, 1, 3, 4, 2)
            .cpu()
        )
        for (s, count), frames_y in zip(group, y.numpy(), strict=True):
            out[s : s + count] = frames_y[:count]
    return out


def _per_output(
    values: np.ndarray | None,
    group: list[tuple[int, int]],
    n_out: int,
    tail: int,
    device: str | torch.device,
    float_: bool = True,
) -> torch.Tensor | None:
    """The per-frame inputs (audio windows, landmarks, side data) of each window's output
    frames, as float32 (or in their own dtype without ``float_``)."""
    if values is None:
        return None
    padded = _pad(values, 0, tail)
    x = torch.from_numpy(np.ascontiguousarray(np.stack([padded[s : s + n_out] for s, _ in group])))
    return (x.float() if float_ else x).to(device)
