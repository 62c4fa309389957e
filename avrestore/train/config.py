"""Experiment configs: one YAML per experiment, overridden from the command line.

An override is ``dotted.key=value``; the value is parsed as YAML, so ``train.seed=3`` gives an
int, ``data.root=/x`` a string and ``model.use_audio=false`` a bool. List items are addressed
by index: ``train.stages.0.epochs=2``. The result is checked against ``schema`` before anything
runs.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from avrestore.errors import InputError
from avrestore.train.schema import ExperimentConfig, parse_config


def load_config(
    path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Read a YAML experiment config, apply ``key=value`` overrides and check the result."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such config: {p}")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"config {p} is not valid YAML: {_yaml_problem(e)}") from None
    if not isinstance(cfg, dict):
        raise InputError(f"config {p} must be a mapping at the top level")
    return parse_config(apply_overrides(cfg, overrides))


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error as one line: PyYAML's own message quotes the offending lines below it."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return " ".join(f"{e.problem or e.context}{where}".split())
    return " ".join(str(e).split())


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
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise InputError(f"override {item!r}: {_yaml_problem(e)}") from None
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
