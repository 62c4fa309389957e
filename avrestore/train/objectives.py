"""What a run (or one of its stages) optimises: restored frames (``train.loss``: Charbonnier, as
GAVN, or L1, as DAVD-Net), landmarks (PFLD's L2), a VQ autoencoder's reconstruction of clean
clips (TS-VQGAN), the VQ restorer's codes and then its decoded frames, or a restorer's
learned optical flow (BasicVSR++'s SPyNet).

Each objective turns a dataset batch into the model's inputs, a loss, and validation scores,
so one training loop serves the restoration networks, the audio-assisted landmark network and
the staged VQ restorer (its TS-VQGAN first, design/peers.md §3.4).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from avrestore.errors import InputError
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


def _one_process(model: nn.Module, objective: str) -> nn.Module:
    """``model`` unless DistributedDataParallel wraps it: an objective that calls the model's
    ``losses`` bypasses ``forward``, through which DDP synchronises gradients (and a VQ
    codebook's EMA is per process anyway)."""
    if isinstance(model, DistributedDataParallel):
        raise InputError(f"the {objective} objective trains in one process, not under torchrun")
    return model


def _audio(batch: dict, device: torch.device) -> Tensor | None:
    return batch["audio"].to(device) if bool(torch.as_tensor(batch["has_audio"]).all()) else None


def _restorer_inputs(model: nn.Module, batch: dict, device: torch.device) -> dict[str, Tensor]:
    """The keyword arguments of the model's forward call on ``batch`` (``restorer_inputs``):
    items without speech get no audio term (``audio_mask``), the rest keep theirs; the side
    data the contract declares go with it when the batch has them (``qp``, made by the dataset
    for such models)."""
    contract = restorer_contract(_unwrapped(model))
    has_audio = torch.as_tensor(batch["has_audio"])
    audio = batch["audio"].to(device) if bool(has_audio.any()) else None
    side = {name: batch[name].to(device) for name in contract.side_data if name in batch}
    return restorer_inputs(
        contract,
        batch["lq"].to(device),
        audio,
        batch["landmarks"].to(device),
        crop=batch["crop"].to(device),
        audio_mask=None if audio is None else has_audio.to(device),
        side_data=side,
    )


class Restoration:
    """Frames in, frames out; ``loss`` (``RESTORATION_LOSSES``) against the HQ frames; PSNR
    on validation."""

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        self.loss_fn = RESTORATION_LOSSES[loss]

    def predict(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The model's restored frames (B, 2N+1, 3, H, W) from what its contract reads
        (``_restorer_inputs``)."""
        return model(**_restorer_inputs(model, batch, device))

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


class Autoencoder:
    """Clean clips in, their reconstruction out: a VQ autoencoder's pretraining (TS-VQGAN's
    ``losses``: L1 + MS-SSIM + commitment) on the HQ frames alone (the dataset's LQ frames go
    unused); on validation, PSNR of the reconstruction and, when quantising, the perplexity and
    the fraction of the codebook used by the clip's codes.

    Warm-up, then quantisation: a stage with ``model: {quantize: false}`` trains a plain
    autoencoder; the next, with ``quantize: true``, starts from its weights with the codebook
    not yet initialised. Its k-means initialisation needs the trained encoder's outputs, so it
    is done from the data of the quantised stage: the quantiser (``vector_quantizer``) passes
    the encoder outputs of the stage's first batches through unquantised while it collects
    ``kmeans_vectors`` of them, sets the codebook to their k-means centres, and quantises from
    then on. One process only (``_one_process``).
    """

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        if loss != DEFAULT_LOSS:
            raise ValueError(f"the autoencoder trains with its model's losses, not {loss}")

    def clip(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The centre HQ frames (B, T, 3, H, W) the model reconstructs, T its ``frames_in``."""
        frames = restorer_contract(_unwrapped(model)).frames_in
        hq = batch["hq"]
        if hq.shape[1] < frames:
            raise InputError(
                f"the autoencoder reconstructs clips of {frames} HQ frames; data.n gives "
                f"{hq.shape[1]} (2n+1)"
            )
        return _centre(hq, frames).to(device)

    def predict(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The reconstruction of the HQ clip, (B, T, 3, H, W)."""
        net = _one_process(model, "autoencoder")
        return net.reconstruct(self.clip(net, batch, device))[0]

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The model's pretraining loss of the HQ clip (``losses(clip)["total"]``)."""
        net = _one_process(model, "autoencoder")
        return net.losses(self.clip(net, batch, device))["total"]

    def scores(self, model: nn.Module, batch: dict, device: torch.device) -> dict[str, float]:
        """PSNR (RGB, [0, 1]) of the reconstruction; ``perplexity`` and ``usage`` of the
        clip's codes when the model quantises."""
        net = _one_process(model, "autoencoder")
        clip = self.clip(net, batch, device)
        recon, _, stats = net.reconstruct(clip)
        quality = {"psnr": psnr(recon.clamp(0, 1).cpu().numpy(), clip.cpu().numpy())}
        return quality | {name: float(value) for name, value in stats.items()}

    def preview(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """Input | reconstruction of the first item's centre frame, (3, H, 2W)."""
        clip = self.clip(model, batch, device)[0].cpu()
        recon = self.predict(model, batch, device)[0].clamp(0, 1).cpu()
        c = clip.shape[0] // 2
        return torch.cat([clip[c], recon[c]], dim=-1)


class VQPrediction:
    """The VQ restorer's training on degraded windows, ``losses(stage=STAGE)`` of the model
    (its TS-VQGAN frozen: the contract's ``frozen`` makes the trainer require ``freeze:
    [vqgan]``); on validation the restored frames' PSNR and the input's (as ``Restoration``,
    eval mode: eq. 4's smoothing on) and the accuracy of the predicted codes. One process only
    (``_one_process``). Subclasses name the stage."""

    stage: str  # VQRestorer.losses' stage, set by each subclass

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        if loss != DEFAULT_LOSS:
            raise ValueError(f"the VQ restorer trains with its own losses, not {loss}")
        self.restoration = Restoration()

    def losses(
        self, model: nn.Module, batch: dict, device: torch.device, stage: str
    ) -> dict[str, Tensor]:
        """The terms of the model's ``losses`` at ``stage`` on ``batch``."""
        net = _one_process(model, f"vq-{self.stage}")
        inputs = _restorer_inputs(net, batch, device)
        inputs.pop("crop", None)  # where the patch lies: forward accepts it unused, losses not
        return net.losses(hq=batch["hq"].to(device), stage=stage, **inputs)

    def predict(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The restored frames (B, 3, 3, H, W)."""
        return self.restoration.predict(model, batch, device)

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """The ``total`` of the model's losses at this objective's stage."""
        return self.losses(model, batch, device, self.stage)["total"]

    def scores(self, model: nn.Module, batch: dict, device: torch.device) -> dict[str, float]:
        """PSNR of the output and of the input against the HQ frames; ``code_accuracy``: the
        fraction of code positions predicted as the frozen encoder codes the HQ frames."""
        codes = self.losses(model, batch, device, "codes")  # no decoder: the cheap stage
        accuracy = {"code_accuracy": float(codes["code_accuracy"])}
        return self.restoration.scores(model, batch, device) | accuracy

    def preview(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """Input | restored | target of the first item's centre frame, (3, H, 3W)."""
        return self.restoration.preview(model, batch, device)


class VQCodes(VQPrediction):
    """Stage B1 (design/peers.md §3.4): the code predictor alone, cross-entropy against the
    clean frames' codes + eq. 7's alignment; no decoder in the loop."""

    stage = "codes"


class VQFull(VQPrediction):
    """Stage B2: eq. 9 (L1, alignment, smoothing) + cross-entropy through the frozen decoder,
    training the predictor (straight-through) and the fidelity modulation."""

    stage = "full"


class FlowPretraining:
    """A restorer's learned optical-flow network alone (``learned_flow`` in its contract:
    BasicVSR++'s SPyNet), through the model's ``flow_losses`` on the LQ frames aligned with the
    HQ ones; on validation its end-point errors (against DIS flow of the clean frames, and on
    known motion) beside those of zero flow and of DIS flow on the LQ frames (``epe_zero``,
    ``epe_dis_lq``: the fixed-flow option's), in feature pixels. One
    process only (``_one_process``). Freeze the rest of the model in the stage: its weights
    get no gradient here, and a stage without ``freeze`` would still spend Adam state on them.
    """

    def __init__(self, loss: str = DEFAULT_LOSS) -> None:
        if loss != DEFAULT_LOSS:
            raise ValueError(f"the flow objective trains with its model's flow_losses, not {loss}")

    def losses(
        self, model: nn.Module, batch: dict, device: torch.device, baselines: bool = False
    ) -> dict[str, Tensor]:
        """The terms of the model's ``flow_losses`` on ``batch`` (``baselines``: theirs too)."""
        net = _one_process(model, "flow")
        if not restorer_contract(net).learned_flow:
            raise InputError(
                f"the flow objective pretrains a learned flow network; "
                f"this {type(net).__name__} has none"
            )
        hq = batch["hq"].to(device)
        return net.flow_losses(_centre(batch["lq"], hq.shape[1]).to(device), hq, baselines)

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """EPE against the clean frames' DIS flow plus the weighted photometric error."""
        return self.losses(model, batch, device)["total"]

    def scores(self, model: nn.Module, batch: dict, device: torch.device) -> dict[str, float]:
        """The batch's EPEs (the prediction's and the baselines'), known-motion EPE and
        photometric error."""
        terms = self.losses(model, batch, device, baselines=True)
        keys = ("epe", "epe_zero", "epe_dis_lq", "epe_known", "photometric")
        return {k: float(terms[k]) for k in keys}

    def preview(self, model: nn.Module, batch: dict, device: torch.device) -> Tensor:
        """A clean frame | the next one warped onto it by the predicted flow | the next one."""
        return self.losses(model, batch, device)["preview"].clamp(0, 1).cpu()


# Objective name (config ``objective``, or a stage's) -> its class, built with train.loss.
OBJECTIVES = {
    "restoration": Restoration,
    "landmarks": Landmarks,
    "autoencoder": Autoencoder,
    "vq-codes": VQCodes,
    "vq-full": VQFull,
    "flow": FlowPretraining,
}


def mean_scores(items: list[dict[str, float]]) -> dict[str, float]:
    """Average each score over validation batches."""
    return {k: float(np.mean([s[k] for s in items])) for k in items[0]}
