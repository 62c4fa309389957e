"""Prepare a whole source folder: shards, worker processes, resume, summary and splits.

``DST/clips/<id>/`` holds each kept clip (see ``prepare``), ``DST/rejected/<id>.json`` each
rejected one with its reason. Both count as finished: a rerun skips them (delete a rejected
record to retry it). Clip folders appear whole through ``atomic_dir``, so a crash leaves
only a hidden ``.<id>.*.part`` folder, never a half-written clip. The summary and the
splits are rebuilt from everything on disk, so the last shard to finish writes them whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import cv2
from tqdm import tqdm

from avrestore.data.layouts import ClipSource, find_clips
from avrestore.data.prepare import ClipPreparer, ClipRejected, PrepareOptions
from avrestore.data.split import (
    DEFAULT_FRACTIONS,
    DEFAULT_SEED,
    SPLITS,
    assign_groups,
    split_clips,
    write_splits,
)
from avrestore.errors import InputError
from avrestore.media.files import atomic_dir, atomic_path

_preparer: ClipPreparer | None = None  # one per worker process, so dlib loads once


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        k, n = -1, 0
    if not 0 <= k < n:
        raise InputError(f"--shard wants K/N with 0 <= K < N, got {text!r}")
    return k, n


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def _finished(dst: Path, clip_id: str) -> bool:
    return (dst / "clips" / clip_id / "meta.json").is_file() or (
        dst / "rejected" / f"{clip_id}.json"
    ).is_file()


def _init_worker(options: PrepareOptions) -> None:
    global _preparer
    cv2.setNumThreads(1)  # the workers are the parallelism
    _preparer = ClipPreparer(options)


def _prepare_one(clip: ClipSource, dst: Path) -> str:
    """Prepare one clip in this process (kept, or a rejection record); returns its id."""
    assert _preparer is not None
    start = time.perf_counter()
    try:
        with atomic_dir(dst / "clips" / clip.clip_id) as tmp:
            _preparer.prepare(clip, tmp)
    except Exception as e:  # one bad clip must not stop a dataset run; the reason is kept
        known = isinstance(e, (InputError, ClipRejected))
        record = {
            "clip_id": clip.clip_id,
            "source": str(clip.path),
            "speaker": clip.speaker,
            "reason": str(e) if known else f"{type(e).__name__}: {e}",
            "seconds": round(time.perf_counter() - start, 2),
        }
        _write_json(dst / "rejected" / f"{clip.clip_id}.json", record)
    return clip.clip_id


def _run(todo: list[ClipSource], dst: Path, options: PrepareOptions, workers: int) -> None:
    bar = tqdm(total=len(todo), unit="clip", desc="prepare", dynamic_ncols=True)
    with bar:
        if workers <= 1:
            _init_worker(options)
            for clip in todo:
                bar.set_postfix_str(clip.clip_id[:30])
                _prepare_one(clip, dst)
                bar.update()
            return
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(options,)) as pool:
            futures = [pool.submit(_prepare_one, clip, dst) for clip in todo]
            for f in as_completed(futures):
                bar.set_postfix_str(f.result()[:30])
                bar.update()


def summarize(
    dst: Path, clips: Sequence[ClipSource], assignment: dict[str, str], seed: int
) -> dict:
    """Collect the records of all clips on disk, write the splits, return the summary."""
    kept, rejected = {}, {}
    for c in clips:
        meta = dst / "clips" / c.clip_id / "meta.json"
        record = dst / "rejected" / f"{c.clip_id}.json"
        if meta.is_file():
            kept[c.clip_id] = json.loads(meta.read_text())
        elif record.is_file():
            rejected[c.clip_id] = json.loads(record.read_text())
    group_of = {c.clip_id: c.group for c in clips}
    splits = split_clips({i: group_of[i] for i in kept}, assignment)
    write_splits(dst / "splits", splits)
    timings = [m["seconds"] for m in (*kept.values(), *rejected.values())]
    return {
        "clips": len(clips),
        "kept": len(kept),
        "rejected": len(rejected),
        "pending": len(clips) - len(kept) - len(rejected),
        "frames": sum(m["frames"] for m in kept.values()),
        "video_seconds": round(sum(m["frames"] / m["fps"] for m in kept.values()), 2),
        "seconds_per_clip": round(sum(timings) / len(timings), 2) if timings else None,
        "rejections": {i: r["reason"] for i, r in rejected.items()},
        "no_audio": sorted(i for i, m in kept.items() if not m["has_audio"]),
        "several_faces": {
            i: m["several_faces_ratio"] for i, m in kept.items() if m["several_faces_ratio"] > 0
        },
        "speaker_unknown": sorted(c.clip_id for c in clips if not c.speaker_known),
        "split_seed": seed,
        "splits": {
            name: {
                "groups": sum(v == name for v in assignment.values()),
                "clips": len(splits[name]),
                "frames": sum(kept[i]["frames"] for i in splits[name]),
            }
            for name in SPLITS
        },
    }


def format_summary(summary: dict) -> str:
    """A few human-readable lines for the terminal."""
    s = summary
    lines = [
        f"{s['kept']} kept ({s['frames']} frames, {s['video_seconds']} s of video), "
        f"{s['rejected']} rejected, {s['pending']} pending, of {s['clips']} clips; "
        f"{s['seconds_per_clip']} s per clip",
        *(f"  rejected {i}: {why}" for i, why in s["rejections"].items()),
    ]
    if s["no_audio"]:
        lines.append(f"  no audio (kept): {', '.join(s['no_audio'])}")
    if s["several_faces"]:
        share = ", ".join(f"{i} {r:.0%}" for i, r in s["several_faces"].items())
        lines.append(f"  several faces (kept the largest; share of searched frames): {share}")
    if s["speaker_unknown"]:
        lines.append(f"  no speaker given (own speaker): {', '.join(s['speaker_unknown'])}")
    split = ", ".join(
        f"{n} {v['groups']} groups/{v['clips']} clips" for n, v in s["splits"].items()
    )
    lines.append(f"  split (seed {s['split_seed']}): {split}")
    return "\n".join(lines)


def prepare_dataset(
    src: Path,
    dst: Path,
    layout: str,
    options: PrepareOptions,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    seed: int = DEFAULT_SEED,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    speakers_tsv: Path | None = None,
    speaker_regex: str | None = None,
) -> dict:
    """Prepare this shard's unfinished clips, then write ``DST/summary.json`` and the splits.

    The split assigns groups (speakers) from the whole layout and the seed only, so it is the
    same whichever shard writes it and whichever clips end up rejected.
    """
    if dst.resolve().is_relative_to(src.resolve()):
        raise InputError(f"the output {dst} must not lie inside the source folder {src}")
    clips = find_clips(src, layout, speakers_tsv, speaker_regex)
    assignment = assign_groups([c.group for c in clips], fractions, seed)
    k, n = shard
    todo = [c for i, c in enumerate(clips) if i % n == k and not _finished(dst, c.clip_id)]
    for sub in ("clips", "rejected"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _run(todo, dst, options, workers)
    summary = summarize(dst, clips, assignment, seed)
    summary["this_run"] = {
        "shard": f"{k}/{n}",
        "processed": len(todo),
        "workers": workers,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    summary["source"], summary["layout"] = str(src), layout
    summary["options"] = asdict(options)
    _write_json(dst / "summary.json", summary)
    return summary
