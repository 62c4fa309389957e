"""Evaluate what the cache lacks: per task, the references and every checkpoint on the same
clips and frames, and the ceilings of the VQ autoencoders named (``--ceiling``), each result
kept in its own cache entry."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

from avrestore.bench.report import machine
from avrestore.evaluate.ceiling import codebook_ceiling
from avrestore.evaluate.methods import BICUBIC, INPUT
from avrestore.evaluate.report import preview_grid
from avrestore.evaluate.run import Evaluation, PreviewFrame, evaluate
from avrestore.evaluate.sources import select_clips
from avrestore.leaderboard import LEVELS
from avrestore.leaderboard.cache import (
    Settings,
    decode_png,
    encode_png,
    entry_key,
    key_id,
    load_entries,
    save_entries,
)
from avrestore.leaderboard.checkpoints import CEILING, Checkpoint
from avrestore.media.files import existing_file, sha256_file
from avrestore.metrics.clip import MetricResources
from avrestore.models.complexity import measure
from avrestore.models.contract import restorer_contract
from avrestore.models.weights import load_model

COST_SIZE = 224  # the frame side parameters' cost is given at, as in the papers' tables


@dataclass(frozen=True)
class Options:
    """The run's data: a prepared folder and its split, the frames scored per clip, every
    how many frames the slow metrics are computed, and NIQE's parameters if given."""

    data: Path
    clips: str
    max_frames: int
    every: int
    niqe: Path | None


@dataclass(frozen=True)
class Row:
    """One method of a task's table: its label, checkpoint (``None`` for a reference) and cache
    entry."""

    label: str
    checkpoint: Checkpoint | None
    entry: dict


@dataclass(frozen=True)
class Board:
    """One task's results: a row per method, the references first, and the HQ preview frame."""

    task: str
    level: int
    rows: list[Row]
    hq: np.ndarray

    def preview(self) -> np.ndarray:
        """The preview frame of every method with its PSNR, the HQ frame last."""
        frames = [
            PreviewFrame(r.label, decode_png(r.entry["preview"]["png"]), r.entry["preview"]["psnr"])
            for r in self.rows
        ]
        return preview_grid(Evaluation({}, frames, self.hq))


@dataclass(frozen=True)
class CeilingRow:
    """A VQ autoencoder's reconstruction of the clean frames (``evaluate.ceiling``): its label,
    checkpoint and cache entry."""

    label: str
    checkpoint: Checkpoint
    entry: dict


def references(task: str) -> list[str]:
    """The methods every task compares against: the input, and bicubic where it downscales."""
    return [INPUT, BICUBIC] if task == "sr" else [INPUT]


def build_boards(
    options: Options,
    tasks: list[str],
    checkpoints: dict[str, list[Checkpoint]],
    cache_json: Path,
) -> list[Board]:
    """The board of each of ``tasks``: methods found in ``cache_json`` are taken from it, the
    others evaluated together (on the same cached degraded clips). The cache is rewritten
    after each task evaluated, without the entries of vanished checkpoints."""
    old = load_entries(cache_json)
    cached = {key_id(e["key"]): e for e in old}
    settings = _settings(options)
    done: dict[str, list[dict]] = {}
    boards = []
    for task in tasks:
        level = LEVELS[task]
        methods: list[tuple[str, Checkpoint | None]] = [(n, None) for n in references(task)]
        methods += [(c.name, c) for c in checkpoints[task]]
        keys = [
            entry_key(task, level, name if c is None else f"sha256:{c.sha256}", settings)
            for name, c in methods
        ]
        todo = [i for i, key in enumerate(keys) if key_id(key) not in cached]
        if todo:
            reused = [methods[i][0] for i in range(len(methods)) if i not in todo]
            _note(
                f"{task}: evaluating {', '.join(methods[i][0] for i in todo)}"
                + (f"; cached: {', '.join(reused)}" if reused else "")
            )
            fresh = _evaluate(
                options, task, level, [methods[i] for i in todo], [keys[i] for i in todo]
            )
            cached.update((key_id(e["key"]), e) for e in fresh)
        else:
            _note(f"{task}: every result is cached")
        rows = [Row(name, c, cached[key_id(k)]) for (name, c), k in zip(methods, keys, strict=True)]
        done[task] = [r.entry for r in rows]
        if todo:
            save_entries(cache_json, _kept(old, done, checkpoints))
        # Every task has the input row, and that entry keeps the evaluation's HQ frame.
        boards.append(Board(task, level, rows, decode_png(rows[0].entry["hq"])))
    save_entries(cache_json, _kept(old, done, checkpoints))
    return boards


def build_ceilings(
    options: Options, checkpoints: dict[str, list[Checkpoint]], cache_json: Path
) -> list[CeilingRow]:
    """The ceiling of each VQ autoencoder in ``checkpoints[CEILING]`` on the clean frames the
    boards score, from ``cache_json`` or computed (and cached) now."""
    old = load_entries(cache_json)
    cached = {key_id(e["key"]): e for e in old}
    settings = _settings(options)
    rows = []
    for checkpoint in checkpoints.get(CEILING, []):
        key = entry_key(CEILING, 0, f"sha256:{checkpoint.sha256}", settings)
        entry = cached.get(key_id(key))
        if entry is None:
            _note(f"ceiling: reconstructing the clean frames with {checkpoint.name}")
            entry = _ceiling_entry(options, checkpoint, key)
        rows.append(CeilingRow(checkpoint.name, checkpoint, entry))
    save_entries(cache_json, _kept(old, {CEILING: [r.entry for r in rows]}, checkpoints))
    return rows


def _ceiling_entry(options: Options, checkpoint: Checkpoint, key: dict) -> dict:
    """The cache entry of one VQ autoencoder's ceiling."""
    model = load_model(checkpoint.path)
    ceiling = codebook_ceiling(
        model, options.data, options.clips, options.max_frames, checkpoint.name
    )
    return {
        "key": key,
        "weights": checkpoint.path.name,
        "scores": {**ceiling.mean(), "perplexity": ceiling.perplexity, "usage": ceiling.usage},
        "n_codes": ceiling.n_codes,
        "evaluated": {
            "date": date.today().isoformat(),
            "machine": {**machine(), "threads": torch.get_num_threads()},
            "clips": len(ceiling.clips),
            "frames": ceiling.frames,
        },
    }


def _note(message: str) -> None:
    print(f"avrestore: leaderboard: {message}", file=sys.stderr, flush=True)


# What a prepared clip's scores depend on, besides its meta.json: the HQ crops, the speech,
# the teacher landmarks and the crop boxes (the source protocol cuts its copy with them).
CLIP_FILES = ("face.mp4", "audio.wav", "landmarks.npy", "boxes.npy")
# meta.json keys that describe the preparing, not the clip: left out of the digest.
MACHINE_KEYS = ("seconds",)


def clip_digest(folder: Path) -> str:
    """SHA-256 of a prepared clip's name, its meta.json (but for ``MACHINE_KEYS``) and its
    ``CLIP_FILES`` that exist: the same for the same data prepared again, on any machine; new
    when a crop box, a frame or the audio changes (a preparation on another CPU can move a
    face box, and the input's PSNR with it: seen 26.63 -> 26.67 dB on the test speakers)."""
    meta = json.loads(existing_file(folder / "meta.json").read_text())
    kept = {k: v for k, v in meta.items() if k not in MACHINE_KEYS}
    digest = hashlib.sha256(folder.name.encode() + b"\0")
    digest.update(json.dumps(kept, sort_keys=True).encode() + b"\0")
    for name in CLIP_FILES:
        if (folder / name).is_file():
            digest.update(name.encode() + b"\0" + bytes.fromhex(sha256_file(folder / name)))
    return digest.hexdigest()


def _settings(options: Options) -> Settings:
    """The run's settings; the clips named by their content (``clip_digest``), so that a folder
    prepared again differently (other clips, boxes, frames or size) is evaluated again."""
    clip_set = select_clips(options.data, options.clips, options.max_frames)
    digest = hashlib.sha256()
    for folder in clip_set.folders:
        digest.update(clip_digest(folder).encode())
    niqe = None if options.niqe is None else sha256_file(existing_file(options.niqe))
    return Settings(digest.hexdigest(), options.max_frames, options.every, niqe)


def _evaluate(
    options: Options,
    task: str,
    level: int,
    methods: list[tuple[str, Checkpoint | None]],
    keys: list[dict],
) -> list[dict]:
    """The cache entries of ``methods``, evaluated in one pass over the clips."""
    evaluation = evaluate(
        options.data,
        task,
        level,
        [name if c is None else str(c.path) for name, c in methods],
        split=options.clips,
        max_frames=options.max_frames,
        resources=MetricResources(options.niqe),
        every=options.every,
    )
    results = evaluation.results
    # The timings are only comparable on one machine with as many threads.
    where = {**machine(), "threads": torch.get_num_threads()}
    entries = []
    scored = zip(methods, keys, results["models"].values(), evaluation.preview, strict=True)
    for (name, checkpoint), key, scores, preview in scored:
        entry = {
            "key": key,
            "weights": None if checkpoint is None else checkpoint.path.name,
            "scores": scores,
            "params": None,
            "gmacs_per_frame": None,
            "evaluated": {
                "date": date.today().isoformat(),
                "machine": where,
                "degradation": results["degradation"],
                "clips": results["clips"],
                "frames": results["frames"],
                "landmarks": None,
            },
            "preview": {"png": encode_png(preview.frame), "psnr": preview.psnr},
        }
        if checkpoint is not None:
            model = load_model(checkpoint.path)
            cost = measure(model, COST_SIZE)
            entry["params"], entry["gmacs_per_frame"] = cost.params, cost.gmacs_per_frame
            if restorer_contract(model).landmarks:
                entry["evaluated"]["landmarks"] = results["landmarks"]
        if name == INPUT:
            entry["hq"] = encode_png(evaluation.hq)
        entries.append(entry)
    return entries


def _kept(
    old: list[dict], done: dict[str, list[dict]], checkpoints: dict[str, list[Checkpoint]]
) -> list[dict]:
    """The entries to cache: those shown for the tasks ``done``, and for the other tasks the
    old ones still of a reference or a present checkpoint (a vanished one is dropped)."""
    present = {(c.task, f"sha256:{c.sha256}") for found in checkpoints.values() for c in found}
    entries = {key_id(e["key"]): e for shown in done.values() for e in shown}
    for e in old:
        task, method = e["key"]["task"], e["key"]["method"]
        if task not in done and (method in (INPUT, BICUBIC) or (task, method) in present):
            entries.setdefault(key_id(e["key"]), e)
    return list(entries.values())
