"""Results for people: the papers' table in markdown, and one frame of every method side by
side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from avrestore.evaluate.methods import REFERENCES
from avrestore.evaluate.run import Evaluation
from avrestore.media.images import side_by_side


@dataclass(frozen=True)
class Column:
    """A metric column: its results key, title, direction, number format and display scale;
    ``references_compete``: whether ``input`` and ``bicubic`` may hold its best value."""

    key: str
    title: str
    higher_is_better: bool
    fmt: str
    scale: float = 1.0
    references_compete: bool = True

    def cell(self, value: float) -> str:
        """The value as shown (scaled, rounded)."""
        return format(value * self.scale, self.fmt)

    @property
    def header(self) -> str:
        """The title with its arrow: ↑ higher is better, ↓ lower is better."""
        return f"{self.title} {'↑' if self.higher_is_better else '↓'}"


COLUMNS = (
    Column("psnr", "PSNR", True, ".2f"),
    Column("ssim", "SSIM", True, ".4f"),
    Column("ms_ssim", "MS-SSIM", True, ".4f"),
    Column("psnr_mouth", "PSNR mouth", True, ".2f"),
    Column("lmd", "LMD", False, ".3f"),
    Column("identity", "Identity", True, ".4f"),
    Column("warp_error", "E_warp ×10⁻³", False, ".3f", 1e3),
    Column("niqe", "NIQE", False, ".3f"),
    Column("lpips", "LPIPS", False, ".4f"),
    Column("sync_c", "Sync_c", True, ".3f"),
    Column("sync_d", "Sync_d", False, ".3f"),
    # Taking the frames as they are costs nothing; only the networks' times compare.
    Column("seconds", "s/frame", False, ".4f", references_compete=False),
)


def markdown_table(results: dict) -> str:
    """Rows = methods, columns = metrics with ↑/↓, the best value of each column in bold.
    Columns no method has are left out and named below the table."""
    rows = results["models"]
    shown = [c for c in COLUMNS if any(r[c.key] is not None for r in rows.values())]
    missing = [c.title for c in COLUMNS if c not in shown]
    lines = [
        f"Task {results['task']}, level {results['level']} ({results['degradation']}"
        + (
            ", compressed at the source video's size"
            if results.get("compress_at") == "source"
            else ""
        )
        + f"): "
        f"{results['clips']} clips, {results['frames']} frames"
        + (f"; landmarks: {results['landmarks']}" if results["landmarks"] else "")
        + ".",
        "",
        *table_lines(rows, shown),
    ]
    if missing:
        lines += ["", f"Not computed (weights not given, or no audio): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def table_lines(
    rows: Mapping[str, Mapping[str, float | None]], columns: Sequence[Column]
) -> list[str]:
    """The markdown lines of a table of ``rows`` (label → value by column key; ``None`` shows
    as –): the header with ↑/↓, then one line per row, the best value of each column in bold."""
    lines = [
        "| Method | " + " | ".join(c.header for c in columns) + " |",
        "|:--|" + "--:|" * len(columns),
    ]
    contenders = {c.key: _contenders(c, list(rows)) for c in columns}
    best = {c.key: _best(c, [rows[label][c.key] for label in contenders[c.key]]) for c in columns}
    for label, row in rows.items():
        cells = []
        for c in columns:
            value = row[c.key]
            text = "–" if value is None else c.cell(value)
            bold = label in contenders[c.key] and text == best[c.key]
            cells.append(f"**{text}**" if bold else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _contenders(column: Column, labels: list[str]) -> list[str]:
    """The rows that compete for the column's best value; none when only one row would."""
    rows = labels if column.references_compete else [x for x in labels if x not in REFERENCES]
    return rows if len(rows) > 1 else []


def _best(column: Column, values: list[float | None]) -> str | None:
    """The best value as shown (so that values equal when rounded are all bold)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return column.cell(max(present) if column.higher_is_better else min(present))


def preview_grid(evaluation: Evaluation) -> np.ndarray:
    """The preview frame of every method with its PSNR, the HQ frame last."""
    tiles = [p.frame for p in evaluation.preview] + [evaluation.hq]
    captions = [[p.label, f"PSNR {p.psnr:.2f} dB"] for p in evaluation.preview] + [["HQ"]]
    return side_by_side(tiles, captions)
