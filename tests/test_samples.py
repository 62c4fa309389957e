"""The sample registry: found where the user keeps it, checked by sha256, never downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avrestore.errors import InputError
from avrestore.samples import DEFAULT_SAMPLE, SAMPLES, sample_path


def test_sample_is_read_from_the_samples_folder_and_verified(
    grid_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AVRESTORE_SAMPLES", str(grid_clip.parent))
    assert sample_path(DEFAULT_SAMPLE) == grid_clip
    # A damaged copy in the cache is refused, not used.
    monkeypatch.setenv("AVRESTORE_SAMPLES", str(tmp_path / "empty"))
    cached = tmp_path / "cache" / "avrestore" / "samples" / DEFAULT_SAMPLE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(grid_clip.read_bytes()[:1000])
    with pytest.raises(InputError, match="sha256"):
        sample_path(DEFAULT_SAMPLE)
    shutil.copyfile(grid_clip, cached)
    assert sample_path(DEFAULT_SAMPLE) == cached


def test_a_missing_sample_is_an_error_naming_its_url_not_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AVRESTORE_SAMPLES", str(tmp_path))
    with pytest.raises(InputError) as e:
        sample_path(DEFAULT_SAMPLE)
    assert SAMPLES[DEFAULT_SAMPLE].url in str(e.value) and "AVRESTORE_SAMPLES" in str(e.value)
    assert not (tmp_path / "cache").exists()  # nothing fetched, nothing written
    with pytest.raises(InputError, match="unknown sample"):
        sample_path("nope.mp4")
