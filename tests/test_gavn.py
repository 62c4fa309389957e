"""GAVN: shapes, the residual path, the ablation switches, missing inputs, and that it learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

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


def test_every_parameter_gets_a_gradient() -> None:
    model = GAVN(**TINY)
    model(**_inputs(model, 2, 32, 32)).mean().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_zeroed_head_returns_the_input_centre_frames() -> None:
    model = GAVN(**TINY).eval()
    torch.nn.init.zeros_(model.reconstruction.conv_last.weight)
    torch.nn.init.zeros_(model.reconstruction.conv_last.bias)
    inputs = _inputs(model, 1, 37, 45)
    with torch.no_grad():
        out = model(**inputs)
    assert torch.equal(out, inputs["frames"][:, 2:-2])


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


def test_ten_adam_steps_lower_the_loss_on_a_real_clip(grid_clip: Path) -> None:
    torch.manual_seed(0)
    frames, fps = read_frames(grid_clip, max_frames=7)
    h, w = frames.shape[1:3]
    top, left = (h - 64) // 2, (w - 64) // 2
    hq = torch.from_numpy(frames[:, top : top + 64, left : left + 64]).permute(0, 3, 1, 2) / 255
    lq = F.interpolate(hq, scale_factor=0.25, mode="bicubic", antialias=True)
    lq = F.interpolate(lq, size=(64, 64), mode="bicubic").clamp(0, 1)
    sound = read_audio(grid_clip)
    mfcc = audio_windows(sound.mono, sound.rate, n_frames=7, fps=fps)[2:5]
    assert mfcc.std() > 1  # real speech features, not silence

    model = build("gavn-small", use_landmarks=False)
    inputs = {"frames": lq[None], "audio": torch.from_numpy(mfcc)[None]}
    target = hq[None, 2:5]
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4)
    losses = []
    for _ in range(10):
        loss = charbonnier(model(**inputs), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = charbonnier(model(**inputs), target).item()
    assert final < 0.9 * losses[0], losses
