"""Landmark error on degraded faces: the landmark network against dlib run on the same frames.

    .venv/bin/python benchmarks/landmark_error.py data/prepared224 --split test --every 3

For each task at its evaluated level (car CRF 45, deblur k 21, sr x4), the clips of a split
are degraded as training degrades them (whole 224² face crops), and the 68 landmarks of every
``--every``-th frame are predicted twice: by the landmark network (with the speech, as at
deployment) and by dlib on the same LQ frame: with ``--box detect`` HOG face detection
(else the crop's implied face box) then the 68-point shape predictor, with ``--box implied``
the predictor in the face box the crop implies (what ``restore`` and the trainer use). Both
are scored against the teacher: dlib on the clean frame. Mean point error in pixels of the
224² crop, all 68 points and the 20 mouth points (48-67). One JSON line per task.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from avrestore.data.datasets import FaceWindowDataset
from avrestore.degrade import DegradationRanges
from avrestore.faces.crop import face_box_in_crop
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.models.landmark_net import LandmarkNet
from avrestore.models.weights import resolve_model

LEVELS = {
    "car": None,  # the whole-clip CRF 45 copy
    "deblur": DegradationRanges(blur=(21, 21)),
    "sr": DegradationRanges(downscale=(4, 4)),
}
MOUTH = slice(48, 68)


def errors(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean distance over all points and over the mouth points."""
    d = np.linalg.norm(pred - truth, axis=-1)
    return d.mean(1), d[:, MOUTH].mean(1)


def main() -> None:
    """Score both predictors on every task and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a prepared folder (avrestore prepare)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--net", default="landmark-net", help="a shipped name or a weights path")
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--box", choices=("detect", "implied"), default="detect")
    ap.add_argument("--tasks", default=",".join(LEVELS), help="comma-separated, of car,deblur,sr")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = resolve_model(args.net)
    assert isinstance(net, LandmarkNet), f"{args.net} is not a landmark network"
    dlib = LandmarkPredictor()
    for task in args.tasks.split(","):
        levels = LEVELS[task]
        ds = FaceWindowDataset(args.root, args.split, task, patch=None, levels=levels)
        level = ds.task.levels()[0]
        dlib_seconds = 0.0
        scores: dict[str, list[np.ndarray]] = {
            k: [] for k in ("net", "net_mouth", "dlib", "dlib_mouth")
        }
        for clip in ds.clips:
            lq = ds.lq_clip(clip, level)[:: args.every]
            teacher = np.load(clip.folder / "landmarks.npy")[:: args.every]
            audio = ds.audio_windows(clip)[:: args.every] if clip.has_audio else None
            keep = np.isfinite(teacher).all((1, 2))
            net_pts = net.predict_frames(lq, audio)
            box = face_box_in_crop(lq.shape[2], lq.shape[1]) if args.box == "implied" else None
            start = time.perf_counter()
            dlib_pts = np.stack([dlib.predict(f, box) for f in lq])
            dlib_seconds += time.perf_counter() - start
            for name, pts in (("net", net_pts), ("dlib", dlib_pts)):
                full, mouth = errors(pts[keep], teacher[keep])
                scores[name].append(full)
                scores[f"{name}_mouth"].append(mouth)
        row = {"task": task, "level": ds.task.key(level), "split": args.split, "box": args.box}
        row["frames"] = int(sum(len(s) for s in scores["net"]))
        row["dlib_ms_per_frame"] = round(1000 * dlib_seconds / row["frames"], 1)
        row.update({k: round(float(np.concatenate(v).mean()), 2) for k, v in scores.items()})
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
