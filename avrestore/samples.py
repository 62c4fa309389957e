"""A small registry of real sample clips, checked by sha256, for the demo and tests.

A sample is looked up in ``$AVRESTORE_SAMPLES`` (a folder that already holds it, as
``../shared/data/talking_heads`` does here), then in the user cache
(``$XDG_CACHE_HOME/avrestore/samples``). Nothing is downloaded at run time: the upstream URL
is recorded for provenance and for the error that says where to fetch it by hand. A checksum
mismatch is an error, never a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from avrestore.errors import InputError
from avrestore.media.files import sha256_file, user_cache


@dataclass(frozen=True)
class Sample:
    """One registered clip: file name, upstream URL, sha256, licence and attribution."""

    name: str
    url: str
    sha256: str
    licence: str
    attribution: str


_LIPNET = "https://github.com/rizkiarm/LipNet/raw/bec592aa/evaluation/samples/GRID"
_GRID = "GRID audiovisual sentence corpus (Cooke, Barker, Cunningham, Shao), via rizkiarm/LipNet"

SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in [
        Sample(
            "grid_bbaf2n.mpg",
            f"{_LIPNET}/bbaf2n.mpg",
            "e468120039e208b5ff9b9e269f8dc96bbddc45701f8dddcf2c0ae21abc0df546",
            "CC BY 4.0",
            _GRID,
        ),
        Sample(
            "grid_lbbc2a.mpg",
            f"{_LIPNET}/lbbc2a.mpg",
            "9447e5e0732eeaf4444b5ba1e3412c8a9e194975ba7c814fa64c4c41c83d4e4c",
            "CC BY 4.0",
            _GRID,
        ),
    ]
}
DEFAULT_SAMPLE = "grid_bbaf2n.mpg"


def _verified(path: Path, sample: Sample) -> Path:
    digest = sha256_file(path)
    if digest != sample.sha256:
        raise InputError(
            f"sample {path} has sha256 {digest}, expected {sample.sha256}; remove it and retry"
        )
    return path


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Return the local path of a registered sample: ``$AVRESTORE_SAMPLES`` first, then the user
    cache. Nothing is fetched at run time: a missing sample is an error that names its URL."""
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; known: {', '.join(sorted(SAMPLES))}")
    sample = SAMPLES[name]
    local = os.environ.get("AVRESTORE_SAMPLES")
    if local and (Path(local) / name).is_file():
        return _verified(Path(local) / name, sample)
    cached = user_cache("samples") / name
    if cached.is_file():
        return _verified(cached, sample)
    raise InputError(
        f"sample {name} not found: set AVRESTORE_SAMPLES to a folder that holds it, or save "
        f"{sample.url} as {cached}"
    )
