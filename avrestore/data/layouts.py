"""Source layouts: which files are clips, their ids, speakers, and the unit a split keeps whole.

- ``voxceleb2``: ``SRC/.../idXXXXX/VIDEO/NNNNN.mp4``; the speaker is the ``id`` folder.
- ``obama``: every video under SRC, one speaker; as no second speaker exists, the split keeps
  clips of one source video together: the first folder under SRC (``SRC/VIDEO/clip.mp4``),
  or the file itself when clips lie directly in SRC.
- ``folder``: every video under SRC; speakers from a TSV with ``file`` and ``speaker`` columns
  (default ``SRC/SOURCES.tsv`` when present) or from a regex on the path relative to SRC
  (its ``speaker`` group, else group 1). A file neither names gets a speaker of its own.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from avrestore.errors import InputError

LAYOUTS = ("voxceleb2", "obama", "folder")
VIDEO_SUFFIXES = frozenset({".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
DEFAULT_SPEAKERS_TSV = "SOURCES.tsv"
_VOX_SPEAKER = re.compile(r"id\d+")


@dataclass(frozen=True)
class ClipSource:
    """One source clip: ``group`` is what the split keeps whole (the speaker, or the source
    video in a one-speaker set); ``speaker_known`` is False when no rule named the speaker."""

    clip_id: str
    path: Path
    speaker: str
    group: str
    speaker_known: bool = True


def _videos(src: Path) -> list[Path]:
    return sorted(
        p
        for p in src.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def _clip_id(rel: Path) -> str:
    """Folder-safe id from a path relative to SRC: parts joined by ``__``, suffix dropped."""
    return "__".join(rel.with_suffix("").parts)


def _voxceleb2(src: Path) -> list[ClipSource]:
    clips = []
    for p in _videos(src):
        rel = p.relative_to(src)
        if len(rel.parts) >= 3 and _VOX_SPEAKER.fullmatch(rel.parts[-3]):
            speaker = rel.parts[-3]
            clip_id = _clip_id(Path(*rel.parts[-3:]))
            clips.append(ClipSource(clip_id, p, speaker, speaker))
    return clips


def _obama(src: Path) -> list[ClipSource]:
    clips = []
    for p in _videos(src):
        rel = p.relative_to(src)
        video = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        clips.append(ClipSource(_clip_id(rel), p, "obama", video))
    return clips


def read_speaker_table(tsv: Path) -> dict[str, str]:
    """``file -> speaker`` from a TSV with a header naming ``file`` and ``speaker`` columns."""
    try:
        with open(tsv, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read speaker table {tsv}: {e}") from None
    if not {"file", "speaker"} <= set(header):
        raise InputError(f"speaker table {tsv} needs a header with 'file' and 'speaker' columns")
    if not rows:
        raise InputError(f"speaker table {tsv} has a header but no rows: list one clip per line")
    return {r["file"]: r["speaker"] for r in rows if r["file"] and r["speaker"]}


def _folder(src: Path, speakers_tsv: Path | None, speaker_regex: str | None) -> list[ClipSource]:
    if speakers_tsv is not None and speaker_regex is not None:
        raise InputError("give either --speakers or --speaker-regex, not both")
    pattern = None
    if speaker_regex is not None:
        try:
            pattern = re.compile(speaker_regex)
        except re.error as e:
            raise InputError(f"bad --speaker-regex {speaker_regex!r}: {e}") from None
    elif speakers_tsv is None and (src / DEFAULT_SPEAKERS_TSV).is_file():
        speakers_tsv = src / DEFAULT_SPEAKERS_TSV
    table = read_speaker_table(speakers_tsv) if speakers_tsv is not None else {}
    clips = []
    for p in _videos(src):
        rel = p.relative_to(src)
        speaker = table.get(rel.as_posix()) or table.get(p.name)
        if pattern is not None and (m := pattern.search(rel.as_posix())):
            speaker = m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0))
        clip_id = _clip_id(rel)
        known = bool(speaker)
        speaker = speaker or clip_id
        clips.append(ClipSource(clip_id, p, speaker, speaker, known))
    return clips


def find_clips(
    src: Path, layout: str, speakers_tsv: Path | None = None, speaker_regex: str | None = None
) -> list[ClipSource]:
    """All clips under ``src`` for ``layout``, sorted by id; InputError if none or ids clash."""
    if src.is_file():
        raise InputError(f"prepare takes a folder of videos; {src} is a file (put it in a folder)")
    if not src.is_dir():
        raise InputError(f"source folder does not exist: {src}")
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout != "folder" and (speakers_tsv is not None or speaker_regex is not None):
        raise InputError("--speakers and --speaker-regex apply to the folder layout only")
    if layout == "voxceleb2":
        clips = _voxceleb2(src)
    elif layout == "obama":
        clips = _obama(src)
    else:
        clips = _folder(src, speakers_tsv, speaker_regex)
    if not clips:
        raise InputError(f"no {layout} clips found under {src}")
    ids: dict[str, Path] = {}
    for c in clips:
        if c.clip_id in ids:
            raise InputError(f"two clips map to the id {c.clip_id}: {ids[c.clip_id]} and {c.path}")
        ids[c.clip_id] = c.path
    return sorted(clips, key=lambda c: c.clip_id)
