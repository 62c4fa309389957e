"""Experiment configs: one YAML per experiment, overridden from the command line.

An override is ``dotted.key=value``; the value is parsed as YAML, so ``train.seed=3`` gives an
int, ``data.root=/x`` a string and ``model.use_audio=false`` a bool. List items are addressed
by index: ``stages.0.epochs=2``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from avrestore.errors import InputError


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Read a YAML experiment config and apply ``key=value`` overrides."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such config: {p}")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"config {p} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise InputError(f"config {p} must be a mapping at the top level")
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``cfg`` with each ``dotted.key=value`` override set."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"override {item!r} is not key=value")
        *parents, last = key.split(".")
        node: Any = cfg
        for part in parents:
            node = _child(node, part, item)
        value = yaml.safe_load(raw)
        if isinstance(node, list):
            node[_index(node, last, item)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise InputError(f"override {item!r}: {last!r} is inside a value, not a section")
    return cfg


def _index(node: list, part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise InputError(f"override {item!r}: {part!r} is not an index of a {len(node)}-item list")
    return int(part)


def _child(node: Any, part: str, item: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, item)]
    if not isinstance(node, dict):
        raise InputError(f"override {item!r}: {part!r} is inside a value, not a section")
    if part not in node:
        node[part] = {}
    return node[part]
