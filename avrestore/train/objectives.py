"""What a run optimises: restored frames (``train.loss``: Charbonnier, as GAVN, or L1, as
DAVD-Net) or landmarks (PFLD's L2).

Each objective turns a dataset batch into the model's inputs, a loss, and validation scores,
so one training loop serves the restoration networks and the audio-assisted landmark network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from avrestore.models.contract import restorer_contract, restorer_inputs
from avrestore.models.landmark_net import landmark_loss
from avrestore.models.losses import charbonnier, l1
from avrestore.quality import psnr


def _centre(lq: Tensor, n_out: int) -> Tensor:
    """The LQ frames aligned with the restored ones: (B, 2N+5, ...) → (B, 2N+1, ...)."""
    k = (lq.shape[1] - n_out) // 2
    return lq[:, k : k + n_out]


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model itself, inside DistributedDataParallel or not."""
    return model.module if isinstance(model, DistributedDataParallel) else model


RESTORATION_LOSSES = {"charbonnier": charbonnier, "l1": l1}  # train.loss: name -> loss
DEFAULT_LOSS = "charbonnier"


def _audio(batch: dict, device: torch.device) -> Tensor | None:
    return batch["audio"].to(device) if bool(torch.as_tensor(batch["has_audio"]).all()) else None


class Restoration:
    """Frames in, frames out; ``loss`` (``RESTORATION_LOSSES``) against the HQ frames; PSNR
    on validation."""

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        self.loss_fn = RESTORATION_LOSSES[loss]

    def predict(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The model's restored frames (B, 2N+1, 3, H, W); items without speech get no audio
        term (``audio_mask``), the rest keep theirs; the side data the contract declares go
        with it when the batch has them (``qp``, made by the dataset for such models)."""
        contract = restorer_contract(_unwrapped(model))
        has_audio = torch.as_tensor(batch["has_audio"])
        audio = batch["audio"].to(device) if bool(has_audio.any()) else None
        side = {name: batch[name].to(device) for name in contract.side_data if name in batch}
        return model(
            **restorer_inputs(
                contract,
                batch["lq"].to(device),
                audio,
                batch["landmarks"].to(device),
                crop=batch["crop"].to(device),
                audio_mask=None if audio is None else has_audio.to(device),
                side_data=side,
            )
        )

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The loss of the restored frames: Charbonnier (eq. 19 of GAVN, ε = 1e-3) or L1."""
        return self.loss_fn(self.predict(model, batch, device), batch["hq"].to(device))

    def scores(self, model: nn.Module, batch: dict, device: torch.device) -> dict[str, float]:
        """PSNR (RGB, [0, 1]) of the output and of the input against the HQ frames."""
        pred = self.predict(model, batch, device).clamp(0, 1).cpu().numpy()
        hq = batch["hq"].numpy()
        lq = _centre(batch["lq"], hq.shape[1]).numpy()
        return {"psnr": psnr(pred, hq), "psnr_input": psnr(lq, hq)}

    def preview(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """Input | restored | target of the first item's centre frame, (3, H, 3W)."""
        pred = self.predict(model, batch, device)[0].clamp(0, 1).cpu()
        c = pred.shape[0] // 2
        lq = _centre(batch["lq"], pred.shape[0])[0]
        return torch.cat([lq[c], pred[c], batch["hq"][0, c]], dim=-1)


class Landmarks:
    """LQ frames in, 68 landmarks out; L2 against the teacher landmarks of the HQ frames (its
    one loss: ``train.loss`` is the restoration objective's)."""

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        if loss != DEFAULT_LOSS:
            raise ValueError(f"the landmarks objective trains with PFLD's L2, not {loss}")

    def predict(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """Landmarks (B·(2N+1), 68, 2) of each restored-position LQ frame."""
        lq = _centre(batch["lq"], batch["hq"].shape[1]).flatten(0, 1).to(device)
        audio = _audio(batch, device)
        return model(lq, audio.flatten(0, 1) if audio is not None else None)

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """PFLD's L2 on coordinates normalised by the crop size."""
        target = batch["landmarks"].flatten(0, 1).to(device)
        h, w = batch["hq"].shape[-2:]
        return landmark_loss(self.predict(model, batch, device), target, (w, h))

    def scores(self, model: nn.Module, batch: dict, device: torch.device) -> dict[str, float]:
        """Mean landmark error in pixels, overall and over the 20 mouth points."""
        err = (self.predict(model, batch, device).cpu() - batch["landmarks"].flatten(0, 1)).norm(
            dim=-1
        )
        return {"landmark_px": float(err.mean()), "mouth_px": float(err[:, 48:68].mean())}

    def preview(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The first LQ frame with predicted (red) and teacher (green) points, (3, H, W)."""
        frame = _centre(batch["lq"], batch["hq"].shape[1])[0, 0].clone()
        points = {0: self.predict(model, batch, device)[0].cpu(), 1: batch["landmarks"][0, 0]}
        h, w = frame.shape[-2:]
        for channel, pts in points.items():
            xy = pts.round().long()
            keep = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            frame[:, xy[keep, 1], xy[keep, 0]] = 0
            frame[channel, xy[keep, 1], xy[keep, 0]] = 1
        return frame


OBJECTIVES = {"restoration": Restoration, "landmarks": Landmarks}


def mean_scores(items: list[dict[str, float]]) -> dict[str, float]:
    """Average each score over validation batches."""
    return {k: float(np.mean([s[k] for s in items])) for k in items[0]}
