"""The audio-guided VQ restorer and its TS-VQGAN: eq. 4's smoothing on a known translation,
the identity-initialised eq. 5, the contract, the audio windows it reads, tiny forwards and
both training objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avrestore.audio import audio_windows
from avrestore.audio.features import mfcc_filters
from avrestore.errors import InputError
from avrestore.models.contract import AudioInput, RestorerContract
from avrestore.models.registry import build
from avrestore.models.spynet import flow_warp
from avrestore.models.ts_vqgan import TSVQGAN, ms_ssim_loss_term
from avrestore.models.vq_restorer import (
    VQRestorer,
    farneback_flow,
    smooth_sequence,
    smooth_window,
    smoothing_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# Five levels (factor 16, as the real ones), a few thousand parameters.
TINY_VQGAN = {"ch": 8, "ch_mult": [1, 1, 2, 2, 2], "z_dim": 8, "n_codes": 16}
TINY = {"vqgan": TINY_VQGAN, "feature_dim": 8, "cnn_channels": 8, "fidelity_channels": 4}


def _texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random RGB image (1, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    return F.interpolate(coarse, (h, w), mode="bicubic", align_corners=True).clamp(0, 1)


def _inputs(model: VQRestorer, b: int, h: int, w: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "frames": torch.rand(b, model.frames_in, 3, h, w, generator=g),
        "audio": torch.randn(b, 3, model.audio_window, model.n_mfcc, generator=g),
        "flows": torch.randn(b, 3, 2, 2, h, w, generator=g),
    }


def test_smoothing_undoes_a_known_integer_translation() -> None:
    x = _texture(24, 32)
    moved = torch.roll(x, shifts=2, dims=-1)  # frame t+1: the content 2 px to the right
    right = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 24, 32)
    # warp(x_{t+1}, F_{t→t+1})(p) = x_{t+1}(p + (2, 0)) = x_t(p): eq. 4 leaves x_t as it is
    # wherever p + 2 is inside the frame, whatever γ.
    out = smooth_sequence(torch.cat((x, moved)), right, gamma=0.7)
    assert torch.allclose(out[0, ..., :30], x[0, ..., :30], atol=1e-6)
    assert torch.equal(out[1], moved[0])  # the last frame is unchanged
    # Without the flow the blend would show the shift.
    assert (smooth_sequence(torch.cat((x, moved)), 0 * right)[0] - x[0]).abs().max() > 0.01
    # In a window the last frame is blended with its predecessor, by F_{t→t-1} = (-2, 0).
    flows = torch.stack((-right, right), 1)[:, None].expand(1, 2, 2, 2, 24, 32)
    win = smooth_window(torch.stack((x, moved), 1), flows, gamma=0.7)
    assert torch.allclose(win[0, 0, ..., :30], x[0, ..., :30], atol=1e-6)
    assert torch.allclose(win[0, 1, ..., 2:], moved[0, ..., 2:], atol=1e-6)


def test_farneback_flow_finds_the_translation_in_the_warp_convention() -> None:
    x = _texture(64, 64, seed=1)
    moved = torch.roll(x, shifts=(1, 3), dims=(-2, -1))
    flow = farneback_flow(x, moved)
    inner = flow[0, :, 16:-16, 16:-16]
    assert inner[0].median().item() == pytest.approx(3.0, abs=0.3)
    assert inner[1].median().item() == pytest.approx(1.0, abs=0.3)
    err = (flow_warp(moved, flow) - x)[..., 16:-16, 16:-16].abs().mean()
    assert err < 0.01


def test_fidelity_modulation_is_the_identity_at_initialisation() -> None:
    torch.manual_seed(0)
    model = VQRestorer(**TINY, fidelity_lq=True).eval()
    z_q = model.vqgan.embed(torch.randint(16, (2, 3, 2, 3)))
    h = torch.randn(2, 3, 8)
    flows = torch.randn(2, 3, 2, 2, 32, 48)
    lq = torch.rand(2, 3, 3, 32, 48)
    args = (3, h.flatten(0, 1), flows.flatten(0, 1).flatten(1, 2), lq.flatten(0, 1))
    with torch.no_grad():
        plain, feats = model.vqgan.decode(z_q)
        for factor in (8, 4, 2):  # eq. 5 with α = 1, β = 0: each level's features unchanged
            x = feats[factor]
            assert torch.equal(model.fidelity[str(factor)](x, *args), x)
        # The decoded frames too, up to the summation order of convolutions on the modulated
        # features' memory layout.
        assert torch.allclose(model.draw(z_q, h, flows, lq), plain, atol=1e-5)
        # Off the initialisation the modulation does change the decoding.
        model.fidelity["4"].beta.weight.normal_()
        assert (model.draw(z_q, h, flows, lq) - plain).abs().max() > 1e-3


def test_contract_sizes_and_audio_windows_of_80_coefficients() -> None:
    model = build("vq-restorer-small")
    assert model.contract == RestorerContract(
        frames_in=7,
        frames_out=3,
        crop_size=224,
        audio=AudioInput(window=21, n_mfcc=80, rate=16000),
        ablations=("audio", "modulation", "smoothing"),
        train_multiple=8,  # the 28 x 28 code grid of ts-vqgan-small (f = 8)
        frozen=("vqgan.",),
    )
    assert model.vqgan.n_codes == 512 and model.vqgan.z_dim == 64
    assert not any(p.requires_grad for p in model.vqgan.parameters())
    bare = VQRestorer(**TINY, use_audio=False).contract
    assert bare.audio is None and bare.ablations == ("modulation", "smoothing")
    assert isinstance(build("ts-vqgan-small").contract, RestorerContract)
    # The project's audio windows give what the contract asks for.
    assert mfcc_filters(13) == (26, 512) and mfcc_filters(80) == (80, 1024)
    t = np.arange(16000) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype("f4")
    windows = audio_windows(speech, 16000, 25, 25.0, width=21, n_mfcc=80)
    assert windows.shape == (25, 21, 80) and np.isfinite(windows).all()
    assert windows.reshape(-1, 80).std(0).min() > 0  # no empty mel band


def test_each_frame_reads_its_own_five_mfcc_steps() -> None:
    model = VQRestorer(**TINY)
    step = torch.arange(21.0)[None, :, None]
    owner = torch.arange(3.0)[:, None, None]
    audio = (100 * owner + step).expand(3, 21, 80)[None]  # value = 100·window + step
    m = model.frame_audio(audio)[0, :, :, 0]  # (7 frames, 5 steps)
    # Context frames Δ = 1, 2 before the first restored frame: 4 and 8 steps earlier in its
    # window (25 fps); the restored frames: their own centre steps 8..12.
    assert m[0].tolist() == [0, 1, 2, 3, 4] and m[1].tolist() == [4, 5, 6, 7, 8]
    assert m[2].tolist() == [8, 9, 10, 11, 12]
    assert m[3].tolist() == [108, 109, 110, 111, 112]
    assert m[6].tolist() == [216, 217, 218, 219, 220]


def test_a_tiny_restorer_restores_three_frames_of_any_size() -> None:
    torch.manual_seed(0)
    model = VQRestorer(**TINY).eval()
    with torch.no_grad():
        out = model(**_inputs(model, 2, 32, 48))
        assert out.shape == (2, 3, 3, 32, 48) and torch.isfinite(out).all()
        # Flows from Farneback when none are given; a size off the 16 grid is padded.
        odd = model(torch.rand(1, 7, 3, 36, 40), torch.randn(1, 3, 21, 80))
        assert odd.shape == (1, 3, 3, 36, 40)
        with model.ablate(frozenset({"smoothing"})):
            raw = model(**_inputs(model, 2, 32, 48))
        assert not torch.allclose(raw, out)
    with pytest.raises(ValueError, match="audio must be"):
        model(torch.rand(1, 7, 3, 32, 32), torch.randn(1, 3, 5, 80))
    with pytest.raises(ValueError, match="cannot switch off"), model.ablate(frozenset({"x"})):
        pass


def test_training_reaches_the_predictor_and_leaves_the_vqgan_alone() -> None:
    torch.manual_seed(0)
    model = VQRestorer(**TINY).train()
    assert not model.vqgan.training  # frozen: always eval
    inputs = _inputs(model, 2, 32, 32)
    hq = torch.rand(2, 3, 3, 32, 32)
    codes = model.losses(inputs["frames"], hq, inputs["audio"], stage="codes")
    assert set(codes) >= {"total", "ce", "align", "code_accuracy"}
    assert codes["ce"].item() == pytest.approx(np.log(16), rel=0.3)
    full = model.losses(hq=hq, stage="full", **inputs)
    assert set(full) >= {"total", "pixel", "smooth", "ce", "align"}
    full["total"].backward()
    assert model.predictor.classifier.weight.grad.abs().sum() > 0  # straight-through
    assert model.hog_encoder.conv1.weight.grad.abs().sum() > 0
    assert model.fidelity["2"].alpha.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.vqgan.parameters())
    model.vqgan.requires_grad_(True)
    with pytest.raises(InputError, match="freeze the parameter prefix 'vqgan'"):
        model.losses(inputs["frames"], hq, inputs["audio"], stage="codes")


def test_ts_vqgan_attends_across_the_clip_and_warms_up_before_quantising() -> None:
    torch.manual_seed(0)
    vqgan = TSVQGAN(**TINY_VQGAN, kmeans_vectors=40).eval()
    clip = torch.rand(1, 3, 3, 32, 32)
    z = vqgan.encode(clip)
    assert z.shape == (1, 3, 8, 2, 2) and vqgan.codes(clip).shape == (1, 3, 2, 2)
    frames, feats = vqgan.decode(vqgan.embed(vqgan.codes(clip)))
    assert frames.shape == clip.shape
    assert {f: tuple(x.shape[-2:]) for f, x in feats.items()} == {
        16: (2, 2),
        8: (4, 4),
        4: (8, 8),
        2: (16, 16),
        1: (32, 32),
    }
    # Changing frame 0 changes frame 2's latent: the attention spans the 3 frames.
    other = clip.clone()
    other[:, 0] = torch.rand(3, 32, 32)
    assert not torch.allclose(vqgan.encode(other)[:, 2], z[:, 2])
    # Training: a plain autoencoder until the codebook has its k-means vectors (36 a step).
    vqgan.train()
    first = vqgan.losses(torch.rand(3, 3, 3, 32, 32))
    assert first["commitment"].item() == 0 and not vqgan.quantizer.initialised
    first["total"].backward()
    assert vqgan.encoder.conv_in.weight.grad is not None
    # The step that completes the k-means sample already quantises with the new codebook.
    second = vqgan.losses(torch.rand(3, 3, 3, 32, 32))
    assert vqgan.quantizer.initialised and second["commitment"].item() > 0
    assert {"l1", "ms_ssim", "perplexity", "usage"} <= set(second)


def test_the_restorer_loads_a_trained_vqgan_and_its_own_weights_round_trip(tmp_path) -> None:
    from avrestore.models.weights import load_model, save_model

    torch.manual_seed(0)
    vqgan = TSVQGAN(**TINY_VQGAN)
    vqgan.quantizer.codebook.normal_()
    save_model(vqgan, tmp_path / "vqgan.safetensors", {"type": "ts-vqgan-small", **TINY_VQGAN})
    model = VQRestorer(**TINY, vqgan_weights=str(tmp_path / "vqgan.safetensors"))
    assert torch.equal(model.vqgan.quantizer.codebook, vqgan.quantizer.codebook)
    assert not any(p.requires_grad for p in model.vqgan.parameters())
    spec = {"type": "vq-restorer-small", **TINY}
    save_model(model, tmp_path / "restorer.safetensors", spec)
    again = load_model(tmp_path / "restorer.safetensors")
    assert torch.equal(again.vqgan.quantizer.codebook, vqgan.quantizer.codebook)
    with pytest.raises(InputError, match="does not fit this restorer's TS-VQGAN"):
        VQRestorer(vqgan_weights=str(tmp_path / "vqgan.safetensors"))


def test_the_ms_ssim_term_is_computed_in_float32_under_bf16_autocast() -> None:
    # A reconstruction a little off its target: 1 - MS-SSIM is a few hundredths, which bf16
    # Gaussian means (3 significant digits) would not resolve.
    x = _texture(128, 128)
    y = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    reference = ms_ssim_loss_term(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = ms_ssim_loss_term(x, y)
    assert under_autocast.dtype == torch.float32
    assert torch.equal(under_autocast, reference)


def test_eq8_follows_the_motion_and_is_computed_in_float32_under_bf16_autocast() -> None:
    x = _texture(48, 64)
    moved = torch.roll(x, shifts=3, dims=-1)  # frame t+1: the content 3 px to the right
    clip = torch.stack((x, moved, torch.roll(x, shifts=6, dims=-1)), 1)  # (1, 3, 3, H, W)
    flows = torch.zeros(1, 3, 2, 2, 48, 64)
    flows[:, :, 1, 0] = 3.0  # F_{t→t+1}: (3, 0)
    # Warped by the true flow each successor is the frame itself but for the 3 wrapped columns.
    inside = smoothing_loss(clip[..., :58], flows[..., :58])
    assert inside.item() < 1e-3
    assert smoothing_loss(clip, 0 * flows).item() > 0.1  # eq. 8 as written: motion costs
    # Under bf16 autocast the same value (SSIM's variances need float32).
    noisy = clip + 0.02 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(2))
    reference = smoothing_loss(noisy, flows)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = smoothing_loss(noisy, flows)
    assert under_autocast.dtype == torch.float32
    assert torch.allclose(under_autocast, reference, atol=1e-6)


def test_hog_codes_are_blind_to_brightness_and_lq_latent_codes_are_not() -> None:
    """Eq. 2's HOG features ignore a uniform brightness shift, so the faithful predictor gives
    the same logits for a darker face; ``lq_latent`` adds the encoder's view of the degraded
    frames, which sees it (the reason the variant exists)."""
    torch.manual_seed(0)
    frames = torch.stack([_texture(32, 32, seed=k)[0] * 0.6 + 0.2 for k in range(7)])[None]
    darker = frames - 0.15
    for lq_latent, same in ((False, True), (True, False)):
        torch.manual_seed(1)
        model = VQRestorer(**TINY, lq_latent=lq_latent).eval()
        width = model.predictor.cnn[0].in_channels
        assert width == 2 * 8 + (TINY_VQGAN["z_dim"] if lq_latent else 0)
        with torch.no_grad():
            logits = [
                model.code_logits(*model.encode_inputs(x, None, None), x) for x in (frames, darker)
            ]
        assert logits[0].shape == (1, 3, 16, 2, 2)
        assert torch.allclose(logits[0], logits[1], atol=1e-5) == same
