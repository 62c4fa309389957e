"""Per-method results: the clips' metric means combined into means over all frames."""

from __future__ import annotations

from collections.abc import Mapping

from avrestore.metrics.clip import METRICS

# The metrics reported per method (ClipScorer's keys, less its Y-channel variants), then
# the restoration time per frame.
REPORTED = (*(m for m in METRICS if not m.endswith("_y")), "seconds")


class FrameWeightedMeans:
    """Means over all frames of all clips from per-clip means, each weighted by the clip's
    frame count; a metric a clip lacks (``None``: no audio, no face) is left out there, and
    stays ``None`` when no clip has it."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weights: dict[str, int] = {}

    def add(self, scores: Mapping[str, float | None], frames: int) -> None:
        """Add one clip's means over its ``frames`` frames."""
        for key in REPORTED:
            value = scores.get(key)
            if value is not None:
                self.sums[key] = self.sums.get(key, 0.0) + value * frames
                self.weights[key] = self.weights.get(key, 0) + frames

    def means(self) -> dict[str, float | None]:
        """Every reported metric: its frame-weighted mean, or ``None``."""
        return {k: self.sums[k] / self.weights[k] if k in self.sums else None for k in REPORTED}
