"""Training windows of prepared clips: shapes, alignment with the prepared files, augmentation,
determinism, degradation, silent clips. One real GRID clip and the real silent clip, prepared
at 96² for a few frames."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avrestore.data.augment import crop_landmarks, crop_origin, flip_frames, flip_landmarks
from avrestore.data.clip_cache import cached_arrays, clip_frames, clip_qp, save_array
from avrestore.data.datasets import FaceWindowDataset
from avrestore.data.tasks import Task, get_task
from avrestore.degrade import DegradationRanges
from avrestore.errors import InputError
from avrestore.faces.landmarks import FLIP_PERMUTATION
from avrestore.media.qp import crop_qp
from avrestore.media.video import read_frames
from avrestore.models.cpm import block_transform, luma, qstep

SIZE, PATCH = 96, 64  # SIZE: the side prepared_root is prepared at
TASKS = ("car", "deblur", "sr", "mixed")


@pytest.fixture(scope="module")
def root(prepared_root: Path) -> Path:
    """The shared prepared folder (see conftest): GRID (14 frames) and the silent clip (12)."""
    return prepared_root


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize("task", TASKS)
def test_items_have_the_documented_shapes_and_range(root: Path, task: str) -> None:
    ds = FaceWindowDataset(root, "train", task, patch=PATCH)
    assert len(ds) == (14 - 7 + 1) + (12 - 7 + 1)  # every start of a 7-frame window
    item = ds[3]
    assert item["lq"].shape == (7, 3, PATCH, PATCH) and item["lq"].dtype == torch.float32
    assert item["hq"].shape == (3, 3, PATCH, PATCH) and item["hq"].dtype == torch.float32
    assert item["audio"].shape == (3, 21, 13) and item["audio"].dtype == torch.float32
    assert item["landmarks"].shape == (3, 68, 2) and item["landmarks"].dtype == torch.float32
    assert item["lq"].min() >= 0 and item["lq"].max() <= 1
    assert (item["clip"], item["start"], item["has_audio"]) == ("grid_bbaf2n", 3, True)
    assert item["audio"].abs().sum() > 0


def test_a_dataloader_with_workers_collates_batches(root: Path) -> None:
    loader = DataLoader(FaceWindowDataset(root, "train", "sr", patch=PATCH), 4, num_workers=1)
    batch = next(iter(loader))
    assert batch["lq"].shape == (4, 7, 3, PATCH, PATCH)
    assert batch["landmarks"].shape == (4, 3, 68, 2)
    assert batch["clip"] == ["grid_bbaf2n"] * 4 and batch["start"].tolist() == [0, 1, 2, 3]


def test_hq_and_landmarks_are_the_prepared_centre_frames(root: Path) -> None:
    ds = FaceWindowDataset(root, "val", "deblur", patch=None)
    assert [w[1] for w in ds.windows] == [0, 3, 6]  # stride 2N+1: every centre frame once
    clip = root / "clips" / "grid_bbaf2n"
    frames, _ = read_frames(clip / "face.mp4")
    landmarks = np.load(clip / "landmarks.npy")
    item = ds[1]
    want = torch.from_numpy(frames[5:8]).permute(0, 3, 1, 2) / 255
    assert item["hq"].shape == (3, 3, SIZE, SIZE)
    torch.testing.assert_close(item["hq"], want, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(item["landmarks"].numpy(), landmarks[5:8])


def test_flip_mirrors_landmarks_and_swaps_left_and_right() -> None:
    landmarks = np.zeros((1, 68, 2), np.float32)
    landmarks[0, 36] = (10, 20)  # outer corner of the eye on the image's left
    landmarks[0, 45] = (50, 21)  # outer corner of the eye on the image's right
    flipped = flip_landmarks(landmarks, width=64)
    np.testing.assert_array_equal(flipped[0, 45], (63 - 10, 20))
    np.testing.assert_array_equal(flipped[0, 36], (63 - 50, 21))
    # A pixel under a landmark is still under it after flipping frames and landmarks.
    frames = np.zeros((1, 32, 64, 3), np.uint8)
    frames[0, 20, 10] = 255
    x, y = flipped[0, 45].astype(int)
    assert flip_frames(frames)[0, y, x, 0] == 255


def test_crop_shifts_landmarks_by_its_origin() -> None:
    assert crop_origin((96, 120), 64, None) == (16, 28)
    origin = crop_origin((96, 120), 64, np.random.default_rng(0))
    assert 0 <= origin[0] <= 32 and 0 <= origin[1] <= 56
    shifted = crop_landmarks(np.array([[[40.0, 30.0]]], np.float32), (16, 28))
    np.testing.assert_array_equal(shifted, [[[12.0, 14.0]]])
    with pytest.raises(InputError, match="patch size"):
        crop_origin((96, 120), 128, None)


def test_train_items_are_crops_or_mirrored_crops_of_the_prepared_frames(root: Path) -> None:
    """Recover each item's crop origin from its landmarks; the pixels must agree with it."""
    clip = root / "clips" / "grid_bbaf2n"
    frames, _ = read_frames(clip / "face.mp4")
    landmarks = np.load(clip / "landmarks.npy")
    ds = FaceWindowDataset(root, "train", "deblur", patch=PATCH, seed=5)
    torch.manual_seed(0)
    flips = []
    for index in range(8):
        item = ds[index]
        hq = item["hq"].permute(0, 2, 3, 1).numpy()
        lm, orig = item["landmarks"].numpy(), landmarks[index + 2 : index + 5]
        x0, y0 = np.rint(orig[0, 30] - lm[0, 30]).astype(int)  # the nose tip, not mirrored
        plain = frames[index + 2 : index + 5, y0 : y0 + PATCH, x0 : x0 + PATCH] / 255
        if np.allclose(hq, plain, atol=1e-6):
            np.testing.assert_allclose(lm, orig - (x0, y0), atol=1e-4)
            flips.append(False)
            continue
        x0 = int(np.rint(orig[0, 30, 0] - (PATCH - 1 - lm[0, 30, 0])))
        mirrored = frames[index + 2 : index + 5, y0 : y0 + PATCH, x0 : x0 + PATCH][:, :, ::-1]
        np.testing.assert_allclose(hq, mirrored / 255, atol=1e-6)
        want = (orig - (x0, y0))[:, FLIP_PERMUTATION]
        want[..., 0] = PATCH - 1 - want[..., 0]
        np.testing.assert_allclose(lm, want, atol=1e-4)
        flips.append(True)
    assert any(flips) and not all(flips)


def test_validation_items_are_the_same_on_every_call(root: Path) -> None:
    a = FaceWindowDataset(root, "val", "mixed", patch=PATCH, seed=3)
    b = FaceWindowDataset(root, "val", "mixed", patch=PATCH, seed=3)
    torch.manual_seed(0)
    first = a[1]
    torch.manual_seed(1)
    for again in (a[1], b[1]):
        for key in ("lq", "hq", "landmarks", "audio"):
            assert torch.equal(first[key], again[key])


def test_train_items_depend_on_the_seed_and_repeat_under_torch_manual_seed(root: Path) -> None:
    def item(seed: int) -> dict:
        torch.manual_seed(0)
        return FaceWindowDataset(root, "train", "sr", patch=PATCH, seed=seed)[2]

    assert torch.equal(item(0)["lq"], item(0)["lq"])
    assert not torch.equal(item(0)["lq"], item(1)["lq"])


@pytest.mark.parametrize("task", TASKS)
def test_degradation_lowers_psnr(root: Path, task: str) -> None:
    item = FaceWindowDataset(root, "val", task, patch=PATCH)[1]
    centre = item["lq"][2:5]
    assert _psnr(centre, item["hq"]) < 34  # prepared crops are near-lossless (about 52 dB)
    assert _psnr(centre, item["hq"]) > 15  # still the same picture


def test_car_reads_a_whole_clip_copy_compressed_at_crf_45(root: Path, tmp_path: Path) -> None:
    item = FaceWindowDataset(root, "val", "car", patch=None, cache=tmp_path)[1]
    copy = tmp_path / "crf45-rgb2" / "grid_bbaf2n.mp4"
    frames, _ = read_frames(copy)
    want = torch.from_numpy(frames[3:10]).permute(0, 3, 1, 2) / 255
    torch.testing.assert_close(item["lq"], want, atol=1e-6, rtol=0)


def test_car_can_compress_the_source_video_at_its_own_size(root: Path, tmp_path: Path) -> None:
    ds = FaceWindowDataset(root, "val", "car", patch=None, cache=tmp_path, compress_at=("source",))
    clip, item = ds.clips[0], ds[1]  # frames 3..9 of the clip
    frames, _ = read_frames(tmp_path / "crf45src-rgb2" / f"{clip.clip_id}.mp4")
    assert frames.shape[1:3] == (288, 360)  # the GRID video's own size, not the crop's
    x0, y0, x1, y1 = np.load(clip.folder / "boxes.npy")[3].astype(int)
    assert x0 >= 0 and y0 >= 0 and x1 <= 360 and y1 <= 288 and x1 - x0 > 96
    want = cv2.resize(frames[3, y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(item["lq"][0].permute(1, 2, 0).numpy(), want / 255, atol=1e-6)
    at_crop = FaceWindowDataset(root, "val", "car", patch=None, cache=tmp_path)[1]
    assert (item["lq"] - at_crop["lq"]).abs().mean() > 1e-3  # two different degradations
    torch.testing.assert_close(item["hq"], at_crop["hq"], rtol=0, atol=0)


def test_tasks_name_each_compression_place_and_refuse_unknown_ones() -> None:
    car, deblur = get_task("car"), get_task("deblur")
    both = Task(car.chains, car.source_crf, ("crop", "source"))
    assert [both.key(level) for level in both.levels()] == ["crf45", "crf45src"]
    rng = np.random.default_rng(0)
    assert {both.sample(rng).at for _ in range(40)} == {"crop", "source"}
    assert [deblur.key(v) for v in deblur.levels()][:2] == ["blur15", "blur17"]
    with pytest.raises(InputError, match="compress_at"):
        Task(car.chains, 45, ("frame",))


def _uncrop(item: dict, frames: np.ndarray, hq: np.ndarray) -> np.ndarray:
    """The region of whole frames (T, H, W, 3) that ``item["crop"]`` names, mirrored when the
    item was (then its ``left`` is counted in the mirrored face): the one whose HQ frames
    (whole ``hq``, T frames) match the item's."""
    top, left, h, w = (int(v) for v in item["crop"])
    size = item["hq"].shape[-1]
    assert (h, w) == frames.shape[1:3]
    item_hq = item["hq"].permute(0, 2, 3, 1).numpy()
    for view in (frames, frames[:, :, ::-1]):
        mirrored = view is not frames
        ref = (hq[:, :, ::-1] if mirrored else hq)[2:5, top : top + size, left : left + size]
        if np.allclose(item_hq, ref / 255, atol=1e-6):
            return view[:, top : top + size, left : left + size]
    raise AssertionError("the item's HQ frames are no crop of the clip's")


@pytest.mark.parametrize("task", ["deblur", "sr"])
def test_patches_are_cut_from_the_degraded_whole_frames(root: Path, task: str) -> None:
    levels = {"deblur": DegradationRanges(blur=(21, 21)), "sr": DegradationRanges(downscale=(4, 4))}
    ds = FaceWindowDataset(root, "train", task, patch=PATCH, levels=levels[task], seed=2)
    frames, _ = read_frames(root / "clips" / "grid_bbaf2n" / "face.mp4")
    whole = ds.lq_clip(ds.clips[0], ds.task.levels()[0])
    torch.manual_seed(0)
    for index in range(4):
        item = ds[index]
        window = slice(index, index + 7)
        want = _uncrop(item, whole[window], frames[window]) / 255
        np.testing.assert_allclose(item["lq"].permute(0, 2, 3, 1).numpy(), want, atol=1e-6)
        # A blur of the patch alone would differ at its border: the check can fail.
        clean = _uncrop(item, frames[window], frames[window])
        patch_only = ds.task.levels()[0].degradation(np.ascontiguousarray(clean))
        assert not np.allclose(patch_only / 255, want, atol=1e-3)


def test_predicted_landmarks_are_made_per_level_and_cut_with_the_patch(
    root: Path, tmp_path: Path
) -> None:
    from avrestore.models.landmark_net import LandmarkNet
    from avrestore.models.weights import save_model
    from avrestore.train.landmark_cache import predicted_landmarks

    torch.manual_seed(0)
    net = LandmarkNet().eval()
    weights = tmp_path / "lm.safetensors"
    save_model(net, weights, {"type": "landmark-net"})
    levels = DegradationRanges(blur=(15, 17))  # two levels: 15 and 17
    ds = FaceWindowDataset(root, "train", "deblur", patch=PATCH, levels=levels, cache=tmp_path)
    folder = predicted_landmarks([ds], str(weights))
    made = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.npy"))
    assert made == sorted(f"blur{k}/{c.clip_id}.npy" for k in (15, 17) for c in ds.clips)
    clip = ds.clips[0]
    level = ds.task.levels()[1]
    cached = np.load(folder / "blur17" / f"{clip.clip_id}.npy")
    audio = ds.audio_windows(clip)
    np.testing.assert_allclose(cached, net.predict_frames(ds.lq_clip(clip, level), audio))
    assert predicted_landmarks([ds], str(weights)) == folder  # made once, then reused

    fixed = FaceWindowDataset(
        root,
        "val",
        "deblur",
        patch=PATCH,
        levels=DegradationRanges(blur=(17, 17)),
        cache=tmp_path,
        landmark_dir=folder,
    )
    item = fixed[1]  # frames 3..9, centre crop at (16, 16), no flip
    assert item["crop"].tolist() == [16, 16, SIZE, SIZE]
    np.testing.assert_allclose(item["landmarks"].numpy(), cached[5:8] - 16, atol=1e-5)
    assert not np.allclose(cached[5:8], np.load(clip.folder / "landmarks.npy")[5:8], atol=1)


def test_a_clip_without_audio_gives_zeros(root: Path, silent_clip: Path) -> None:
    ds = FaceWindowDataset(root, "train", "deblur", patch=PATCH)
    item = ds[len(ds) - 1]
    assert item["clip"] == silent_clip.stem and item["has_audio"] is False
    assert item["audio"].shape == (3, 21, 13) and not item["audio"].any()


def test_bad_settings_are_input_errors(root: Path) -> None:
    with pytest.raises(InputError, match="unknown task 'denoise'"):
        FaceWindowDataset(root, "train", "denoise")
    with pytest.raises(InputError, match="no split file"):
        FaceWindowDataset(root, "test", "car")
    with pytest.raises(InputError, match="no clip of 15 frames"):
        FaceWindowDataset(root, "val", "car", n=5, patch=None)
    with pytest.raises(InputError, match="patch size"):
        FaceWindowDataset(root, "train", "car", patch=200)
    with pytest.raises(InputError, match="stride >= 1"):
        FaceWindowDataset(root, "val", "car", patch=None, stride=0)


def test_crop_origins_snap_to_a_grid_only_when_asked() -> None:
    draws = [crop_origin((96, 90), 32, np.random.default_rng(s)) for s in range(20)]
    rng = np.random.default_rng(0)  # grid 1 draws exactly as before the grid existed
    assert draws[0] == (int(rng.integers(65)), int(rng.integers(59)))
    assert any(y % 4 or x % 4 for y, x in draws)
    snapped = [crop_origin((96, 90), 32, np.random.default_rng(s), grid=4) for s in range(40)]
    assert all(y % 4 == 0 and x % 4 == 0 and y <= 64 and x <= 58 for y, x in snapped)
    assert len({y for y, _ in snapped}) > 5 and crop_origin((96, 90), 32, None, 4) == (32, 28)


def _in_box(items: list[dict]) -> float:
    """Share of the 4x4 luma transform coefficients of the items' HQ centre frames within ±Q/2
    of their LQ centre frames', Q = Qstep(item["qp"]) (DAVD-Net's CPM box)."""
    shares = []
    for item in items:
        lq, hq = item["lq"][2:3].double(), item["hq"].double()
        q = qstep(item["qp"].long()).double()
        ratio = block_transform(luma(hq) - luma(lq)).abs() / q[..., None, None]
        shares.append((ratio <= 0.5).double().flatten())
    return float(torch.cat(shares).mean())


def test_qp_maps_are_the_crop_streams_at_the_patch_mirrored_with_it(root: Path) -> None:
    """For a model reading QP maps (DAVD-Net): each item's map is the crop-compressed stream's
    effective QP of the 4x4 blocks under its patch (on the 4-pixel grid), mirrored with it, and
    the HQ frame lies in the CPM box of the LQ one. The box alone cannot tell the place of the
    map at CRF 45 (99.74 % in it on a real 224² clip, 99.75 % with frames 2 px off the grid),
    hence the exact comparison."""
    clip = root / "clips" / "grid_bbaf2n"
    ds = FaceWindowDataset(root, "train", "car", n=0, patch=32, seed=1, qp=True)
    maps = clip_qp(clip, root / "cache", 45)
    assert maps.shape == (14, 6, 6) and maps.min() >= 45  # max(macroblock QP, CRF 45)
    frames = clip_frames(clip, root / "cache")
    items, flips = [], []
    for index in range(10):  # GRID's 10 windows of 5 frames
        item = ds[(index, 0)]
        top, left, _, width = (int(v) for v in item["crop"])
        assert top % 4 == 0 and left % 4 == 0 and item["qp"].dtype == torch.int16
        t = index + 2  # the restored frame
        hq = item["hq"][0].permute(1, 2, 0).numpy()
        plain = frames[t, top : top + 32, left : left + 32] / 255
        flipped = not np.allclose(hq, plain, atol=1e-6)
        if flipped:  # ``left`` is counted in the mirrored face
            left = width - 32 - left
            mirrored = frames[t, top : top + 32, left : left + 32][:, ::-1] / 255
            np.testing.assert_allclose(hq, mirrored, atol=1e-6)
        want = crop_qp(maps[t : t + 1], top, left, 32, 32)
        want = want[..., ::-1] if flipped else want
        assert item["qp"].tolist() == want.tolist()
        items.append(item)
        flips.append(flipped)
    assert any(flips) and not all(flips)
    assert _in_box(items) >= 0.98
    assert _in_box([item for item, f in zip(items, flips, strict=True) if f]) >= 0.98


def test_items_not_coded_on_the_crop_grid_have_qp_minus_one(root: Path) -> None:
    at_source = FaceWindowDataset(
        root, "val", "car", n=0, patch=None, compress_at=("source",), qp=True
    )[0]
    assert at_source["qp"].shape == (1, 24, 24) and (at_source["qp"] == -1).all()
    blurred = FaceWindowDataset(root, "train", "deblur", n=0, patch=32, qp=True)[(0, 0)]
    assert blurred["qp"].shape == (1, 8, 8) and (blurred["qp"] == -1).all()
    # Whole validation crops compressed at the crop carry the whole map.
    whole = FaceWindowDataset(root, "val", "car", n=0, patch=None, qp=True)[0]
    assert whole["qp"].shape == (1, 24, 24) and whole["qp"].min() >= 45
    # Batches of both protocols collate to (B, 1, h, w); other models' items have no map.
    kw = {"n": 0, "patch": 32, "compress_at": ("crop", "source")}
    assert "qp" not in FaceWindowDataset(root, "train", "car", **kw)[(0, 0)]
    torch.manual_seed(0)
    batch = next(iter(DataLoader(FaceWindowDataset(root, "train", "car", qp=True, **kw), 8)))
    assert batch["qp"].shape == (8, 1, 8, 8) and batch["qp"].dtype == torch.int16
    coded = [bool((row >= 45).all()) for row in batch["qp"].flatten(1)]
    uncoded = [bool((row == -1).all()) for row in batch["qp"].flatten(1)]
    assert any(coded) and any(uncoded) and all(a != b for a, b in zip(coded, uncoded, strict=True))
    with pytest.raises(InputError, match="4x4 blocks"):
        FaceWindowDataset(root, "train", "car", patch=30, qp=True)


def test_arrays_made_together_are_made_again_together(tmp_path: Path) -> None:
    """``cached_arrays`` (evaluate's frames and QP maps of one encode): a missing file, or the
    first one made again alone (newer than the second), makes both again."""
    source, a, b = tmp_path / "face.mp4", tmp_path / "a.npy", tmp_path / "a.qp.npy"
    source.write_bytes(b"")
    made = []

    def make() -> tuple[np.ndarray, np.ndarray]:
        made.append(len(made))
        return np.full(2, len(made)), np.full(3, len(made))

    first = cached_arrays([a, b], source, make)
    assert [x.tolist() for x in first] == [[1, 1], [1, 1, 1]]
    assert [x.tolist() for x in cached_arrays([a, b], source, make)] == [[1, 1], [1, 1, 1]]
    save_array(np.zeros(2), a)  # the frames made again by a run that wanted no QP maps
    os.utime(a, (b.stat().st_mtime + 5, b.stat().st_mtime + 5))
    assert [x.tolist() for x in cached_arrays([a, b], source, make)] == [[2, 2], [2, 2, 2]]
    b.unlink()
    assert [x.tolist() for x in cached_arrays([a, b], source, make)] == [[3, 3], [3, 3, 3]]
    assert made == [0, 1, 2]
