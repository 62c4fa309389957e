"""Face detection, one-face tracking, crops, dlib landmarks and identity embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.faces.crop import CROP_MARGIN, crop_square, face_box_in_crop, square_boxes
from avrestore.faces.dlib_models import model_file
from avrestore.faces.landmarks import FLIP_PERMUTATION, MOUTH
from avrestore.faces.track import fill_missing, smooth_boxes, track_largest
from avrestore.media.video import read_frames


def _box(cx: float, cy: float, side: float) -> np.ndarray:
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


# --- tracking on synthetic detections (no dlib) ---------------------------------------------


def test_track_follows_the_largest_face() -> None:
    dets = [np.stack([_box(100 + t, 100, 40), _box(300, 120 + t, 90)]) for t in range(10)]
    track = track_largest(dets)
    np.testing.assert_allclose(track, [_box(300, 120 + t, 90) for t in range(10)])


def test_track_never_jumps_to_another_face() -> None:
    big, small = _box(300, 150, 100), _box(80, 80, 60)
    dets: list[np.ndarray | None] = []
    for t in range(30):
        if 10 <= t < 20:  # the big face is lost; only the other face (and gaps) remain
            dets.append(small[None] if t % 3 else None)
        else:
            dets.append(np.stack([small, big]))
    track = track_largest(dets)
    lost = np.isnan(track).any(axis=1)
    assert lost[10:20].all() and not lost[:10].any() and not lost[20:].any()
    np.testing.assert_allclose(track[~lost], np.broadcast_to(big, (20, 4)))


def test_track_starts_at_the_largest_box_of_the_clip() -> None:
    # Frame 0 sees only a small face; the speaker's (bigger) face appears later elsewhere.
    dets = [_box(50, 50, 40)[None]] + [_box(200, 200, 120)[None] for _ in range(5)]
    track = track_largest(dets)
    assert np.isnan(track[0]).all()
    np.testing.assert_allclose(track[1:], np.broadcast_to(_box(200, 200, 120), (5, 4)))


def test_track_without_any_face_is_all_missing() -> None:
    assert np.isnan(track_largest([np.zeros((0, 4)), None, np.zeros((0, 4))])).all()


def test_fill_missing_interpolates_and_holds_the_ends() -> None:
    boxes = np.full((6, 4), np.nan, np.float32)
    boxes[1], boxes[4] = _box(10, 10, 10), _box(40, 10, 10)
    filled = fill_missing(boxes)
    np.testing.assert_allclose(filled[[0, 2, 3, 5], 0], [5, 15, 25, 35])
    with pytest.raises(ValueError):
        fill_missing(np.full((3, 4), np.nan))


def test_smoothing_reduces_jitter_and_keeps_squares() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(200)
    true = np.stack([_box(200 + 30 * np.sin(k / 30), 150, 100) for k in t])
    noisy = square_boxes(true + rng.normal(0, 3, true.shape).astype(np.float32), margin=1.0)
    smooth = smooth_boxes(noisy, sigma=3)
    jitter = lambda b: np.abs(np.diff(b, 2, axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < jitter(noisy) / 5
    assert np.abs(smooth - true).mean() < np.abs(noisy - true).mean()
    np.testing.assert_allclose(smooth[:, 2] - smooth[:, 0], smooth[:, 3] - smooth[:, 1], atol=1e-3)
    np.testing.assert_array_equal(smooth_boxes(noisy, 0), noisy)


# --- crops ------------------------------------------------------------------------------------


def test_crop_of_a_square_box_implies_the_face_box_in_crop() -> None:
    face = _box(120, 90, 50)
    crop_box = square_boxes(face)
    assert crop_box[2] - crop_box[0] == pytest.approx(CROP_MARGIN * 50)
    scale = 224 / (crop_box[2] - crop_box[0])
    in_crop = (face - np.tile(crop_box[:2], 2)) * scale
    np.testing.assert_allclose(in_crop, face_box_in_crop(224, 224), atol=1e-3)


def test_crop_square_slices_resizes_and_pads_with_edge_pixels() -> None:
    yy, xx = np.mgrid[0:60, 0:80]
    image = np.stack([xx, yy, xx + yy], -1).astype(np.uint8)
    crop, used = crop_square(image, np.array([10.4, 5.6, 30.4, 25.6]), 20)
    np.testing.assert_array_equal(used, [10, 6, 30, 26])
    np.testing.assert_array_equal(crop, image[6:26, 10:30])
    crop, used = crop_square(image, np.array([-10, -10, 30, 30]), 80)
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    # The 10 px outside the frame (20 crop px after 2x enlargement) repeat the edge row/column.
    assert np.abs(crop[:18, 30].astype(int) - crop[21, 30]).max() <= 2
    with pytest.raises(ValueError, match="outside"):
        crop_square(image, np.array([100, 100, 120, 120]), 16)


def test_flip_permutation_mirrors_the_68_points() -> None:
    assert sorted(FLIP_PERMUTATION) == list(range(68))
    np.testing.assert_array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(68))
    assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[48] == 54 and FLIP_PERMUTATION[0] == 16
    assert set(FLIP_PERMUTATION[MOUTH]) == set(range(48, 68))
    np.testing.assert_array_equal(FLIP_PERMUTATION[27:31], [27, 28, 29, 30])


def test_missing_model_file_is_an_input_error() -> None:
    assert model_file("shape_predictor_68_face_landmarks.dat").is_file()
    with pytest.raises(InputError, match="not found"):
        model_file("no_such_model.dat")


# --- dlib on real frames ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def models():
    from avrestore.faces.detect import FaceDetector
    from avrestore.faces.identity import FaceEmbedder
    from avrestore.faces.landmarks import LandmarkPredictor

    detector = FaceDetector()
    landmarks = LandmarkPredictor(detector)
    return detector, landmarks, FaceEmbedder(landmarks)


def _face_crop(detector, frame: np.ndarray, size: int = 224) -> np.ndarray:
    boxes, _ = detector.detect(frame)
    assert len(boxes) == 1
    return crop_square(frame, square_boxes(boxes[0]), size)[0]


@pytest.fixture(scope="module")
def grid_frames(grid_clip) -> np.ndarray:
    return read_frames(grid_clip, max_frames=60)[0][[0, 59]]


def test_detector_finds_the_face_and_scales_boxes_back(models, grid_frames) -> None:
    detector = models[0]
    frame = grid_frames[0]
    boxes, scores = detector.detect(frame)
    assert boxes.shape == (1, 4) and scores.shape == (1,) and boxes.dtype == np.float32
    x0, y0, x1, y1 = boxes[0]
    assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 288 and 80 < x1 - x0 < 200
    big = np.repeat(np.repeat(frame, 3, axis=0), 3, axis=1)  # 1080x864: detected at 640
    big_boxes, _ = detector.detect(big)
    # HOG finds boxes on an 8-pixel grid at each scale: agree to within two cells.
    np.testing.assert_allclose(big_boxes[0] / 3, boxes[0], atol=16)
    empty, _ = detector.detect(np.full((120, 160, 3), 128, np.uint8))
    assert empty.shape == (0, 4)


def test_searching_frames_on_threads_finds_the_same_boxes(models, grid_clip) -> None:
    from avrestore.faces.scan import scan_faces

    frames = read_frames(grid_clip, max_frames=40)[0]
    frames[20:26] = 128  # a stretch without a face: empty searches too
    serial = scan_faces(frames, models[0], every=1)
    # Four threads on every frame: one dlib detector shared between threads finds other boxes.
    threaded = scan_faces(iter(frames), models[0], every=1, workers=4)
    assert [b.tolist() for b in threaded] == [b.tolist() for b in serial]
    assert serial[21].shape == (0, 4) and serial[3].shape == (1, 4)
    sparse = scan_faces(iter(frames), models[0], every=3, workers=2)
    assert [b is None for b in sparse] == [t % 3 != 0 for t in range(40)]
    assert all(b.tolist() == serial[t].tolist() for t, b in enumerate(sparse) if b is not None)


def test_landmarks_on_a_crop_put_the_mouth_low_and_central(models, grid_frames) -> None:
    detector, landmarks, _ = models
    crop = _face_crop(detector, grid_frames[0])
    pts = landmarks.predict(crop)
    assert pts.shape == (68, 2) and pts.dtype == np.float32
    mouth = pts[MOUTH].mean(axis=0)
    eyes = pts[36:48].mean(axis=0)
    assert 224 * 0.4 < mouth[0] < 224 * 0.6 and 224 * 0.55 < mouth[1] < 224 * 0.85
    assert eyes[1] < mouth[1] - 30
    # With the box the crop implies, the points agree with the detected-box ones.
    implied = landmarks.predict(crop, face_box_in_crop(224, 224))
    assert np.abs(implied - pts).mean() < 4


def test_landmarks_fall_back_to_the_implied_box_without_a_face(models) -> None:
    pts = models[1].predict(np.full((224, 224, 3), 128, np.uint8))
    x0, y0, x1, y1 = face_box_in_crop(224, 224)
    assert pts.shape == (68, 2)
    assert (pts[:, 0] > x0 - 20).all() and (pts[:, 0] < x1 + 20).all()
    assert (pts[:, 1] > y0 - 20).all() and (pts[:, 1] < y1 + 20).all()


def test_embeddings_are_closer_for_the_same_person(models, grid_frames, talking_heads) -> None:
    detector, landmarks, embedder = models
    a, b = (_face_crop(detector, f) for f in grid_frames)
    other = _face_crop(
        detector, read_frames(talking_heads / "styletalk_Obama_clip1.mp4", max_frames=1)[0][0]
    )
    ea, eb, eo = embedder.embed(a), embedder.embed(b), embedder.embed(other)
    assert ea.shape == (128,) and ea.dtype == np.float32
    same, different = np.linalg.norm(ea - eb), np.linalg.norm(ea - eo)
    assert same < 0.4 < 0.6 < different
    # Landmarks given explicitly give the same descriptor as predicting them.
    np.testing.assert_allclose(embedder.embed(a, landmarks=landmarks.predict(a)), ea, atol=1e-4)
