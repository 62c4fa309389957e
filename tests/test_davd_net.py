"""DAVD-Net (``avrestore.models.davd_net``): identity at initialisation, the contract, the audio
branch and its ablations, the audio map's geometry on patches, and the CPM in the forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avrestore.errors import InputError
from avrestore.models.contract import AudioInput, RestorerContract, restorer_inputs
from avrestore.models.cpm import block_transform, luma, qstep
from avrestore.models.davd_net import DAVDNet
from avrestore.models.registry import build

pytestmark = pytest.mark.usefixtures("one_thread")

# A tiny DAVD-Net for 64² faces: the audio seed is 64 / 2⁴ = 4.
TINY = {
    "channels": 8,
    "deform_groups": 1,
    "front_blocks": 1,
    "v_blocks": 1,
    "reconstruction_blocks": 1,
    "audio_hidden": 8,
    "audio_up_blocks": 4,
    "crop_size": 64,
}


def _tiny(**overrides: object) -> DAVDNet:
    torch.manual_seed(0)
    return DAVDNet(**{**TINY, **overrides}).eval()


def _wake(model: DAVDNet) -> DAVDNet:
    """Give the zero-initialised last conv random weights, so that the output depends on all."""
    nn.init.normal_(model.reconstruction.conv_last.weight, std=0.1)
    return model


def _inputs(h: int = 32, w: int = 32, b: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "frames": torch.rand(b, 5, 3, h, w, generator=g),
        "audio": torch.randn(b, 1, 21, 13, generator=g),
    }


@pytest.mark.parametrize("scale", [1, 2])
def test_a_fresh_model_returns_its_centre_input_frame(scale: int) -> None:
    model = _tiny(scale=scale)
    x = _inputs(24, 40)  # not multiples of 8: padded and cropped back
    assert torch.equal(model(**x), x["frames"][:, 2:3])
    qp = torch.full((2, 1, 6, 10), 45)
    assert torch.equal(model(**x, qp=qp), x["frames"][:, 2:3])  # Y' unchanged: in the box


def test_contract_says_what_the_model_consumes() -> None:
    assert _tiny().contract == RestorerContract(
        frames_in=5,
        frames_out=1,
        crop_size=64,
        audio=AudioInput(window=21, n_mfcc=13, rate=16000),
        landmarks=False,
        side_data=("qp",),
        ablations=("audio", "cpm"),
    )
    bare = DAVDNet(**{**TINY, "use_audio": False, "use_cpm": False}).contract
    assert bare.audio is None and bare.side_data == () and bare.ablations == ()
    assert build("davd-net-small").contract.crop_size == 224
    # The callers' helper hands it the audio and the patch's place in the face.
    x = _inputs()
    crop = torch.tensor([[0.0, 0.0, 64.0, 64.0]]).expand(2, 4)
    assert set(restorer_inputs(_tiny().contract, x["frames"], x["audio"], crop=crop)) == {
        "frames",
        "audio",
        "crop",
    }


def test_restorer_inputs_pass_qp_only_to_a_model_declaring_it() -> None:
    x, qp = _inputs(), torch.full((2, 1, 8, 8), 45, dtype=torch.int16)
    given = {"qp": qp, "flow": torch.zeros(1)}
    inputs = restorer_inputs(_tiny().contract, x["frames"], side_data=given)
    assert set(inputs) == {"frames", "qp"} and inputs["qp"] is qp
    for contract in (_tiny(use_cpm=False).contract, RestorerContract(5, 1, 64)):
        assert set(restorer_inputs(contract, x["frames"], side_data=given)) == {"frames"}
    assert "qp" not in restorer_inputs(_tiny().contract, x["frames"], side_data={"qp": None})


def test_audio_ablations() -> None:
    x = _inputs()
    model = _wake(_tiny())
    with_audio, silent = model(**x), model(x["frames"])
    assert not torch.allclose(with_audio, silent)
    # No audio is F^a = 0, item by item with audio_mask.
    mask = torch.tensor([1.0, 0.0])
    masked = model(**x, audio_mask=mask)
    assert torch.allclose(masked[0], with_audio[0]) and torch.allclose(masked[1], silent[1])
    # The video-only baseline (VPB) has no audio branch and no fusion at all.
    vpb = DAVDNet(**{**TINY, "use_audio": False})
    assert vpb.a_subnet is None and vpb.saf is None and vpb.parameter_groups()["audio"] == 0
    assert vpb(**x).shape == (2, 1, 3, 32, 32)
    # Without SAF (the paper's APB row): one conv fuses the concatenation, no attention map.
    apb = DAVDNet(**{**TINY, "use_saf": False})
    assert apb.saf.attention is None and isinstance(apb.saf.aggregate, nn.Conv2d)


def _audio_map(model: DAVDNet, **inputs: torch.Tensor) -> torch.Tensor:
    """F^a as SAF receives it (after sampling at the frames' place in the face)."""
    seen = []
    handle = model.saf.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    try:
        model(**inputs)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("scale", [1, 2])
def test_the_audio_map_of_a_patch_is_the_same_place_of_the_whole_face_map(scale: int) -> None:
    model = _tiny(scale=scale)
    x = _inputs(64, 64, b=1)
    whole = _audio_map(model, **x)
    assert whole.shape == (1, 8, 64 // scale, 64 // scale)
    patch = {"frames": x["frames"][..., 16:48, 8:40], "audio": x["audio"]}
    crop = torch.tensor([[16.0, 8.0, 64.0, 64.0]])
    top, left = 16 // scale, 8 // scale
    expected = whole[..., top : top + 32 // scale, left : left + 32 // scale]
    assert torch.allclose(_audio_map(model, **patch, crop=crop), expected, atol=1e-6)


def test_the_cpm_bounds_the_output_and_can_be_switched_off() -> None:
    x = _inputs()
    model = _wake(_tiny())
    for p in model.reconstruction.conv_last.parameters():
        p.data.mul_(100)  # a residual far outside the box
    raw = model(**x)[:, 0]
    qp = torch.randint(30, 40, (2, 1, 8, 8))
    out = model(**x, qp=qp)[:, 0]
    q = qstep(qp[:, 0]).double()[..., None, None]
    centre = x["frames"][:, 2].double()
    inside = block_transform(luma(out.double()) - luma(centre)).abs() / q
    assert inside.max() <= 0.5 + 1e-4
    assert (block_transform(luma(raw.double()) - luma(centre)).abs() / q).max() > 1
    # A macroblock map gives the same as its 4x4 expansion.
    qp_mb = torch.randint(30, 40, (2, 1, 2, 2))
    assert torch.allclose(
        model(**x, qp=qp_mb), model(**x, qp=qp_mb.repeat_interleave(4, 2).repeat_interleave(4, 3))
    )
    # A negative QP marks an item (or block) with no stream behind it: no bound there.
    mixed = qp.clone()
    mixed[1] = -1
    both = model(**x, qp=mixed)[:, 0]
    assert torch.equal(both[0], out[0]) and torch.allclose(both[1], raw[1], atol=1e-6)
    # Off: in evaluation (``:no-cpm``) and without a QP map (``restore`` on real videos).
    with model.ablate(frozenset({"cpm"})):
        assert torch.equal(model(**x, qp=qp), raw[:, None])
    assert torch.equal(model(**x), raw[:, None])
    with pytest.raises(ValueError, match="cannot switch off"), model.ablate(frozenset({"audio"})):
        pass
    # The stream's own decoded Y' plane may stand for the centre frame's.
    decoded = luma(x["frames"][:, 2])[:, None]
    assert torch.allclose(model(**x, qp=qp, decoded=decoded), model(**x, qp=qp), atol=1e-5)


def test_training_through_the_cpm_reaches_every_module() -> None:
    model = _wake(_tiny()).train()
    x = _inputs()
    out = model(**x, qp=torch.full((2, 1, 8, 8), 45))
    out.abs().mean().backward()
    for name in (
        "video.conv_first.weight",
        "v_subnet.0.conv1.weight",
        "a_subnet.linear.weight",
        "saf.attention.weight",
        "a_subnet.lstm.weight_ih_l0",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_inputs_are_checked() -> None:
    model = _tiny()
    x = _inputs()
    with pytest.raises(ValueError, match="frames must be"):
        model(x["frames"][:, :3])
    with pytest.raises(ValueError, match="audio must be"):
        model(x["frames"], x["audio"][:, :, :20])
    with pytest.raises(InputError, match="at least"):
        model(torch.rand(1, 5, 3, 2, 8))
    with pytest.raises(InputError, match="4x4 blocks"):
        model(torch.rand(1, 5, 3, 30, 32), qp=torch.full((1, 1, 8, 8), 45))
    with pytest.raises(InputError, match="seed"):
        DAVDNet(**{**TINY, "crop_size": 100})


def test_registered_sizes_and_their_audio_and_video_parameters() -> None:
    """``peers.md`` §2.4: 21.5 M at paper scale, 16.9 M of them the flattening linear layer."""
    paper = build("davd-net").parameter_groups()
    assert paper["audio_linear"] == 21 * 256 * 64 * 49 + 64 * 49
    assert paper == {
        "audio": 18_332_698,
        "audio_linear": 16_862_272,
        "fusion": 110_849,
        "video": 3_033_187,
    }
    small = build("davd-net-small")
    assert small.parameter_groups() == {
        "audio": 2_278_074,
        "audio_linear": 2_108_960,
        "fusion": 27_777,
        "video": 599_100,
    }
    # Its A-subnet grows the 7x7 seed four times, to the half-size feature grid of a 224 face.
    assert small.a_subnet(torch.randn(1, 21, 13)).shape == (1, 32, 112, 112)
    out = small.eval()(**small.dummy_inputs(32, 48))
    assert out.shape == (1, 1, 3, 32, 48)
