"""GAVN: shapes, the residual path, the ablation switches, missing inputs, and that it learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avrestore.audio import audio_windows
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.video import read_frames
from avrestore.models.gavn import GAVN
from avrestore.models.heatmaps import landmark_heatmaps
from avrestore.models.losses import charbonnier
from avrestore.models.registry import build

# A few thousand parameters: every branch and stage, at a fraction of gavn-small's cost.
TINY = dict(
    channels=8, deform_groups=2, deblur_blocks=1, prop_blocks=1, identity_blocks=1, up_blocks=(1, 1)
)


def _inputs(model: GAVN, batch: int, h: int, w: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    k = model.frames_out
    return {
        "frames": torch.rand(batch, model.frames_in, 3, h, w, generator=g),
        "audio": torch.randn(batch, k, 21, 13, generator=g),
        "landmarks": torch.rand(batch, k, 68, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0]),
    }


def _params(model: torch.nn.Module) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters()}


@pytest.mark.parametrize(("n", "batch", "h", "w"), [(1, 2, 37, 45), (2, 1, 32, 48)])
def test_output_has_the_centre_frames_shape(n: int, batch: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    model = GAVN(n=n, **TINY).eval()
    assert (model.frames_in, model.frames_out) == (2 * n + 5, 2 * n + 1)
    with torch.no_grad():
        out = model(**_inputs(model, batch, h, w))
    assert out.shape == (batch, 2 * n + 1, 3, h, w)
    assert torch.isfinite(out).all()


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Move every parameter off its initial value, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_every_parameter_gets_a_gradient_once_off_the_identity_init() -> None:
    model = GAVN(**TINY)
    _perturb(model, 1)
    model(**_inputs(model, 2, 32, 32)).mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_a_fresh_model_returns_its_input_centre_frames_exactly() -> None:
    for spec in ({}, {"use_identity": False}):
        model = GAVN(**TINY, **spec).eval()
        inputs = _inputs(model, 1, 37, 45)
        with torch.no_grad():
            out = model(**inputs)
        assert torch.equal(out, inputs["frames"][:, 2:-2])


def test_warmup_starts_exactly_at_the_stage1_model() -> None:
    stage1 = GAVN(**TINY, use_identity=False).eval()
    _perturb(stage1, 2)  # a trained temporal-only model
    full = GAVN(**TINY).eval()
    shared = stage1.state_dict()
    missing, unexpected = full.load_state_dict(shared, strict=False)
    assert unexpected == [] and all(
        k.startswith(("identity.", "reconstruction.modulate")) for k in missing
    )
    inputs = _inputs(full, 2, 32, 48)
    with torch.no_grad():
        expected = stage1(inputs["frames"])
        assert (expected - inputs["frames"][:, 2:-2]).abs().max() > 1e-3  # not the identity
        torch.testing.assert_close(full(**inputs), expected, rtol=0, atol=0)


def test_the_audio_map_of_a_patch_is_the_whole_face_map_cut_at_the_patch() -> None:
    torch.manual_seed(0)
    model = GAVN(**TINY)
    _perturb(model, 3)
    encoder = model.identity.audio.encoder
    mfcc = torch.randn(2, 21, 13)
    whole = encoder(mfcc, (64, 64), torch.tensor([[0.0, 0, 64, 64]] * 2))
    # A 32 x 32 patch whose top-left is (16, 32) in its 64 x 64 face.
    patch = encoder(mfcc, (32, 32), torch.tensor([[16.0, 32, 64, 64]] * 2))
    torch.testing.assert_close(patch[0], whole[0][:, :, 8:24, 16:32])  # level 1/2
    torch.testing.assert_close(patch[1], whole[1][:, :, 4:12, 8:16])  # level 1/4
    assert whole[1].std() > 0  # the map is not constant: where it acts matters


def test_audio_mask_drops_the_audio_of_the_masked_item_only() -> None:
    model = GAVN(**TINY).eval()
    _perturb(model, 4)
    inputs = _inputs(model, 2, 32, 32)
    with torch.no_grad():
        masked = model(**inputs, audio_mask=torch.tensor([True, False]))
        full = model(**inputs)
        silent = model(**{**inputs, "audio": None})
    torch.testing.assert_close(masked[0], full[0])
    torch.testing.assert_close(masked[1], silent[1])
    assert (full[1] - silent[1]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("switch", "prefixes"),
    [
        ("use_audio", ("identity.audio.",)),
        ("use_landmarks", ("identity.landmark.",)),
        ("use_identity", ("identity.", "reconstruction.modulate")),
    ],
)
def test_ablation_switch_removes_exactly_its_branch(switch: str, prefixes: tuple[str, ...]) -> None:
    full = _params(GAVN(**TINY))
    ablated = _params(GAVN(**TINY, **{switch: False}))
    branch = {name: size for name, size in full.items() if name.startswith(prefixes)}
    assert branch  # the branch exists in the full model
    assert ablated == {name: size for name, size in full.items() if name not in branch}
    assert sum(full.values()) - sum(ablated.values()) == sum(branch.values())


def test_missing_audio_runs_the_model_without_its_audio_branch() -> None:
    torch.manual_seed(0)
    with_audio = GAVN(**TINY).eval()
    _perturb(with_audio, 5)
    without = GAVN(**TINY, use_audio=False).eval()
    without.load_state_dict(
        {k: v for k, v in with_audio.state_dict().items() if not k.startswith("identity.audio.")}
    )
    inputs = _inputs(with_audio, 1, 32, 32)
    no_audio = {**inputs, "audio": None}
    with torch.no_grad():
        skipped = with_audio(**no_audio)
        used = with_audio(**inputs)
        ablated = without(**no_audio)
    torch.testing.assert_close(skipped, ablated)
    assert (used - skipped).abs().max() > 1e-4  # the audio does reach the output


def test_landmarks_none_and_temporal_only_model_run() -> None:
    model = GAVN(**TINY, use_identity=False).eval()
    inputs = _inputs(model, 1, 32, 32)
    with torch.no_grad():
        out = model(inputs["frames"])
        assert model.dummy_inputs(32, 32).keys() == {"frames"}
        full = GAVN(**TINY).eval()
        assert full(inputs["frames"], inputs["audio"], landmarks=None).shape == out.shape


def test_bad_inputs_are_rejected() -> None:
    model = GAVN(**TINY)
    with pytest.raises(ValueError, match=r"frames must be \(B, 7, 3, H, W\)"):
        model(torch.rand(1, 5, 3, 32, 32))
    with pytest.raises(ValueError, match="audio must be"):
        model(torch.rand(1, 7, 3, 32, 32), audio=torch.rand(1, 3, 20, 13))
    with pytest.raises(InputError, match="at least 16x16"):
        model(torch.rand(1, 7, 3, 12, 32))


def test_heatmaps_peak_on_their_landmark() -> None:
    points = torch.tensor([[[3.0, 5.0], [10.0, 0.0], [float("nan"), 2.0]]])
    maps = landmark_heatmaps(points, height=8, width=12, sigma=1.5)
    assert maps.shape == (1, 3, 8, 12)
    assert maps[0, 0, 5, 3] == 1 and maps[0, 0].argmax() == 5 * 12 + 3
    assert maps[0, 1, 0, 10] == 1
    assert maps[0, 0, 5, 4] == pytest.approx(torch.exp(torch.tensor(-1 / (2 * 1.5**2))).item())
    assert not maps[0, 2].any()  # a missing landmark draws nothing


def test_ten_adam_steps_move_a_fresh_model_from_its_input_towards_the_target(
    grid_clip: Path,
) -> None:
    """A fresh model starts at its input (identity init); a few steps on a real clip whose LQ
    is dimmed by 20 % must take it most of the way to the HQ frames."""
    torch.manual_seed(0)
    frames, fps = read_frames(grid_clip, max_frames=7)
    h, w = frames.shape[1:3]
    top, left = (h - 64) // 2, (w - 64) // 2
    hq = torch.from_numpy(frames[:, top : top + 64, left : left + 64]).permute(0, 3, 1, 2) / 255
    lq = hq * 0.8
    sound = read_audio(grid_clip)
    mfcc = audio_windows(sound.mono, sound.rate, n_frames=7, fps=fps)[2:5]
    assert mfcc.std() > 1  # real speech features, not silence

    model = build("gavn-small", use_landmarks=False)
    inputs = {"frames": lq[None], "audio": torch.from_numpy(mfcc)[None]}
    target = hq[None, 2:5]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = charbonnier(model(**inputs), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(charbonnier(lq[None, 2:5], target).item(), rel=1e-6)
    with torch.no_grad():
        final = charbonnier(model(**inputs), target).item()
    assert final < 0.5 * losses[0], losses
