"""The benchmarks ``avrestore bench`` runs, at full or quick sizes, each in a fresh process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avrestore.bench.runner import run_child

BENCHMARKS = ("restore", "model", "train", "data")


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does."""

    restore_seconds: float  # length the sample clip is looped (or cut) to
    model_size: int  # side of the square frames of one forward window
    model_repeats: int
    prepared_size: int  # crop side of the folder prepared from the sample clip (no --data)
    prepared_frames: int | None  # frames of the sample clip it keeps (None: all)
    train_patch: int
    train_batch: int
    train_steps: int  # the first two are warm-up
    data_tasks: tuple[str, ...]
    data_workers: tuple[int, ...]
    data_batch: int
    data_patch: int
    data_batches: int


# The settings of BENCHMARKS.md's figures, but for training at 64², the configs' patch (bf16
# at 96² takes minutes a step on a CPU without AVX-512 BF16).
FULL = Sizes(
    restore_seconds=10,
    model_size=224,
    model_repeats=5,
    prepared_size=224,
    prepared_frames=None,
    train_patch=64,
    train_batch=4,
    train_steps=6,
    data_tasks=("car", "deblur", "sr", "mixed"),
    data_workers=(0, 2),
    data_batch=4,
    data_patch=128,
    data_batches=50,
)
# Enough to exercise every benchmark in seconds each; the figures are only indicative.
QUICK = Sizes(
    restore_seconds=1,
    model_size=64,
    model_repeats=1,
    prepared_size=96,
    prepared_frames=24,
    train_patch=64,
    train_batch=1,
    train_steps=3,
    data_tasks=("car",),
    data_workers=(0,),
    data_batch=2,
    data_patch=64,
    data_batches=3,
)


class Suite:
    """Runs benchmarks with one model and thread count, making their inputs in ``work``."""

    def __init__(
        self,
        sizes: Sizes,
        model: str,
        threads: int | None,
        data: Path | None,
        work: Path,
        note: Callable[[str], None],
    ) -> None:
        self.sizes = sizes
        self.model = model
        self.threads = threads
        self.work = work
        self.note = note
        self._prepared = data

    def prepared(self) -> Path:
        """The prepared folder: ``--data``, else one made now (once) from the sample clip."""
        if self._prepared is None:
            from avrestore.bench.data import tiny_prepared
            from avrestore.samples import sample_path

            clip, s = sample_path(), self.sizes
            self.note(
                f"no --data: preparing {clip.name} at {s.prepared_size}² in a temporary folder "
                "(to time your own: avrestore prepare SRC DST, then --data DST)"
            )
            folder = self.work / "prepared"
            self._prepared = tiny_prepared(folder, clip, s.prepared_size, s.prepared_frames)
        return self._prepared

    def _restore(self) -> tuple[dict, str]:
        from avrestore.bench.restore import loop_clip, save_untrained
        from avrestore.samples import sample_path

        clip, seconds = sample_path(), self.sizes.restore_seconds
        video = loop_clip(clip, seconds, self.work / "loop.mp4")
        weights, landmarks = save_untrained(self.model, self.work)
        params = {"video": str(video), "weights": str(weights), "landmarks": str(landmarks)}
        return params, f"{self.model} restoring {clip.name} looped to {seconds:g} s (car task)"

    def _model(self) -> tuple[dict, str]:
        size, repeats = self.sizes.model_size, self.sizes.model_repeats
        params = {"models": [self.model], "size": size, "repeats": repeats}
        return params, f"{self.model} forward, one window at {size}², {repeats} repeat(s)"

    def _train(self) -> tuple[dict, str]:
        s = self.sizes
        params = {
            "root": str(self.prepared()),
            "model": self.model,
            "patch": s.train_patch,
            "batch": s.train_batch,
            "steps": s.train_steps,
        }
        return params, f"{self.model} training steps, fp32 and bf16 at {s.train_patch}²"

    def _data(self) -> tuple[dict, str]:
        s = self.sizes
        params = {
            "root": str(self.prepared()),
            "tasks": list(s.data_tasks),
            "workers": list(s.data_workers),
            "batch": s.data_batch,
            "patch": s.data_patch,
            "batches": s.data_batches,
        }
        return params, f"data loading, tasks {', '.join(s.data_tasks)}"

    def run(self, names: list[str]) -> list[dict]:
        """Run each benchmark of ``names`` in a fresh process; one result each."""
        setups = {
            "restore": self._restore,
            "model": self._model,
            "train": self._train,
            "data": self._data,
        }
        results = []
        for i, name in enumerate(names, 1):
            params, what = setups[name]()
            self.note(f"[{i}/{len(names)}] {name}: {what}")
            result = run_child(name, params, self.threads)
            if "rows" in result:
                if name == "restore":  # the child sees only a weights file
                    result["rows"] = [{"model": self.model, **row} for row in result["rows"]]
                self.note(f"{name}: done in {result['seconds']:g} s")
            else:
                self.note(f"{name}: failed ({result['error']})")
            results.append(result)
        return results
