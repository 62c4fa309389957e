"""The schema of an experiment config: typed, frozen sections, checked before a run starts.

``parse_config`` turns the YAML mapping (overrides applied) into an ``ExperimentConfig`` or
raises one ``InputError`` line that names the key: an unknown key with the nearest valid one, a
wrong type, a value out of range or not among the allowed ones, or a model argument that the
registered model's constructor does not take. It creates nothing (run folder, dataset, model),
so a typo costs no time and leaves no half-made run behind.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from avrestore.data.tasks import COMPRESS_AT, TASKS
from avrestore.degrade import DegradationRanges
from avrestore.errors import InputError
from avrestore.models.registry import REGISTRY
from avrestore.train.objectives import DEFAULT_LOSS, OBJECTIVES, RESTORATION_LOSSES

SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage of training: a model variant and an optimisation schedule.

    ``schedule``: ``constant`` (the paper's: one learning rate per stage) or ``cosine``
    (decay to ``min_lr`` over the stage). ``init``: a weights file the stage's model starts
    from instead of the previous stage's (to continue training a committed checkpoint when its
    run folder is gone). ``objective``: what the stage optimises when it is not the config's.
    It is a stage setting, as ``model`` is, because staged recipes change the loss between
    stages and not only the network: the VQ restorer's code stage (``vq-codes``, no decoder in
    the loop) and then its full stage (``vq-full``). A model argument would not do: the loss is
    not part of the network its weights file rebuilds.
    """

    name: str  # shown in the progress bar and TensorBoard (default stage<i>)
    epochs: int  # epochs of train.iters_per_epoch steps, >= 1
    lr: float  # Adam's learning rate, >= 0 (0 keeps the parameters as they start)
    model: dict[str, Any] = field(default_factory=dict)  # model arguments this stage changes
    freeze: tuple[str, ...] = ()  # parameter-name prefixes this stage does not train
    schedule: str = "constant"  # one of SCHEDULES
    min_lr: float = 1e-7  # where the cosine schedule ends
    init: str | None = None  # weights to start from instead of the previous stage's
    objective: str | None = None  # one of OBJECTIVES; null: the config's objective


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """The ``data`` section: which prepared clips, and how they are cut and degraded."""

    root: str  # a prepared folder (avrestore prepare)
    n: int = 1  # the model restores 2n+1 frames from 2n+5
    patch: int | None = 128  # side of the random training patches; null: whole crops
    val_patch: int | None = None  # side of the fixed validation patches; null: whole crops
    landmarks: str = "teacher"  # teacher (dlib on HQ), or a landmarker run on the LQ frames
    levels: DegradationRanges | None = None  # replaces the task's degradation ranges
    compress_at: tuple[str, ...] | None = None  # car: compress the crop and/or the source
    cache: str | None = None  # cache folder; null: <root>/cache


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The ``train`` section: batches, loaders, checkpoints, validation and the stages."""

    batch_size: int  # items per step on each process
    num_workers: int = 0  # DataLoader worker processes
    precision: str = "fp32"  # one of PRECISIONS; validation always runs in fp32
    loss: str = DEFAULT_LOSS  # restoration: charbonnier (eps 1e-3) or l1 (RESTORATION_LOSSES)
    iters_per_epoch: int | None = None  # steps per epoch; null: one pass over the training set
    checkpoint_every: int | None = None  # steps between checkpoints; null: once per epoch
    val_items: int = 8  # validation windows per epoch; 0 or fewer: every window
    validate: bool = True  # false: no validation split and no validation scores
    stop_after: int | None = None  # exit after this many steps (tests, time-boxed sessions)
    stages: tuple[Stage, ...]  # trained in order


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A whole experiment: ``avrestore train CONFIG`` runs exactly this."""

    name: str | None = None  # run name, runs/NAME; null: the config file's stem
    seed: int = 0  # seeds model initialisation, patches and the sampler
    task: str  # one of data.tasks.TASKS
    objective: str = "restoration"  # one of train.objectives.OBJECTIVES
    device: str = "auto"  # one of DEVICES; auto: CUDA when present
    model: dict[str, Any]  # type (a registered model) and arguments over its registered ones
    data: DataConfig
    train: TrainConfig

    def stage_model(self, stage: Stage) -> dict[str, Any]:
        """The registered name and arguments of a stage's model: config ``model`` + stage's."""
        return {**self.model, **stage.model}

    def stage_objective(self, stage: Stage) -> str:
        """The objective a stage trains with: its own, else the config's."""
        return stage.objective or self.objective


def parse_config(raw: Any) -> ExperimentConfig:
    """Check a config mapping against the schema and return it typed; InputError if not."""
    get = _Section(raw, "", ExperimentConfig)
    cfg = ExperimentConfig(
        name=get("name", _string, null=True),
        seed=get("seed", _integer, 0),
        task=get("task", _choice, tuple(TASKS)),
        objective=get("objective", _choice, tuple(OBJECTIVES)),
        device=get("device", _choice, DEVICES),
        model=get("model", _model),
        data=get("data", _data),
        train=get("train", _train),
    )
    for i, stage in enumerate(cfg.train.stages):
        _check_model_args(cfg, stage, i)
        objective = cfg.stage_objective(stage)
        if objective != "restoration" and cfg.train.loss != DEFAULT_LOSS:
            raise InputError(
                f"train.loss {cfg.train.loss} is for the restoration objective; "
                f"{objective} has its own"
            )
    return cfg


def parse_stages(items: Any) -> tuple[Stage, ...]:
    """The stages of ``train.stages``, with one clear error for a malformed entry."""
    return _stages("train.stages", items)


def portable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A model spec ({"type": name, **kwargs}) without the arguments that name weights files
    the model loads when built (its class's ``weights_args``, e.g. the VQ restorer's
    ``vqgan_weights``): what goes into a saved model's metadata, since its own tensors hold
    what those files gave, so that loading it never depends on a file that may be gone."""
    loaded = getattr(REGISTRY[spec["type"]].cls, "weights_args", ())
    return {k: v for k, v in spec.items() if k not in loaded}


def config_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as plain YAML-ready data, which ``parse_config`` reads back unchanged."""
    return _plain(asdict(cfg))


def _plain(value: Any) -> Any:
    # yaml.safe_dump refuses tuples (freeze, compress_at, level ranges): write them as lists.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _unknown(what: str, path: str, key: str, valid: Iterable[str]) -> InputError:
    """``unknown <what> 'a.b'; did you mean 'a.c'?``, or the valid names when none is near."""

    def full(name: str) -> str:
        return f"{path}.{name}" if path else name

    valid = list(valid)
    near = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {full(near[0])!r}?" if near else f"valid: {', '.join(valid)}"
    return InputError(f"unknown {what} {full(key)!r}; {hint}")


class _Section:
    """One mapping of the raw config, read key by key against a dataclass of the schema.

    Keys the dataclass lacks are refused up front; an absent key takes the field's default,
    or is an error when the field has none.
    """

    def __init__(self, raw: Any, path: str, schema: type) -> None:
        self.path = path
        self.fields = {f.name: f for f in fields(schema)}
        if not isinstance(raw, dict):
            raise InputError(f"{path or 'the config'} must be a mapping, got {raw!r}")
        for key in raw:
            if key not in self.fields:
                raise _unknown("config key", path, str(key), self.fields)
        self.raw = raw

    def __call__(self, name: str, check: Callable[..., Any], *args: Any, null: bool = False) -> Any:
        """The value of key ``name`` as ``check(path, value, *args)`` returns it; ``null``:
        None is allowed too."""
        path = f"{self.path}.{name}" if self.path else name
        if name not in self.raw:
            spec = self.fields[name]
            if spec.default is not MISSING:
                return spec.default
            if spec.default_factory is not MISSING:
                return spec.default_factory()
            raise InputError(f"config needs {path}")
        value = self.raw[name]
        if value is None and null:
            return None
        return check(path, value, *args)


def _integer(path: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # YAML's true is not a count
        raise InputError(f"{path} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{path} must be >= {minimum}, got {value}")
    return value


def _number(path: str, value: Any, minimum: float) -> float:
    number = value
    if isinstance(value, str):  # PyYAML reads an exponent without a dot (1e-4) as a string
        with contextlib.suppress(ValueError):
            number = float(value)
    if isinstance(number, bool) or not isinstance(number, int | float) or math.isinf(number):
        raise InputError(f"{path} must be a number, got {value!r}")
    if not number >= minimum:  # also refuses nan
        raise InputError(f"{path} must be >= {minimum:g}, got {number:g}")
    return float(number)


def _string(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{path} must be a string, got {value!r}")
    return value


def _boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path} must be true or false, got {value!r}")
    return value


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{path} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _list(path: str, value: Any) -> list:
    if not isinstance(value, list):
        raise InputError(f"{path} must be a list, got {value!r}")
    return value


def _strings(path: str, value: Any) -> tuple[str, ...]:
    return tuple(_string(f"{path}.{i}", v) for i, v in enumerate(_list(path, value)))


def _mapping(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InputError(f"{path} must be a mapping of names to values, got {value!r}")
    return dict(value)


def _model(path: str, value: Any) -> dict[str, Any]:
    model = _mapping(path, value)
    if "type" not in model:
        raise InputError(f"config needs {path}.type (a registered model name)")
    _choice(f"{path}.type", model["type"], tuple(REGISTRY))
    return model


def _data(path: str, value: Any) -> DataConfig:
    get = _Section(value, path, DataConfig)
    return DataConfig(
        root=get("root", _string),
        n=get("n", _integer, 0),
        patch=get("patch", _integer, 8, null=True),
        val_patch=get("val_patch", _integer, 8, null=True),
        landmarks=get("landmarks", _string),
        levels=get("levels", _levels, null=True),
        compress_at=get("compress_at", _compress_at, null=True),
        cache=get("cache", _string, null=True),
    )


def _levels(path: str, value: Any) -> DegradationRanges:
    get = _Section(value, path, DegradationRanges)
    return DegradationRanges(**{step: get(step, _range, null=True) for step in get.fields})


def _range(path: str, value: Any) -> tuple[int, int]:
    if len(_list(path, value)) != 2:
        raise InputError(f"{path} must be [low, high], got {value!r}")
    low, high = (_integer(f"{path}.{i}", v) for i, v in enumerate(value))
    if low > high:
        raise InputError(f"{path} must be [low, high] with low <= high, got {value!r}")
    return low, high


def _compress_at(path: str, value: Any) -> tuple[str, ...]:
    places = tuple(_choice(f"{path}.{i}", v, COMPRESS_AT) for i, v in enumerate(_list(path, value)))
    if not places:
        raise InputError(f"{path} must name {' and/or '.join(COMPRESS_AT)}, got []")
    return places


def _train(path: str, value: Any) -> TrainConfig:
    get = _Section(value, path, TrainConfig)
    return TrainConfig(
        batch_size=get("batch_size", _integer, 1),
        num_workers=get("num_workers", _integer, 0),
        precision=get("precision", _choice, PRECISIONS),
        loss=get("loss", _choice, tuple(RESTORATION_LOSSES)),
        iters_per_epoch=get("iters_per_epoch", _integer, 1, null=True),
        checkpoint_every=get("checkpoint_every", _integer, 1, null=True),
        val_items=get("val_items", _integer),
        validate=get("validate", _boolean),
        stop_after=get("stop_after", _integer, 1, null=True),
        stages=get("stages", _stages),
    )


def _stages(path: str, value: Any) -> tuple[Stage, ...]:
    items = _list(path, value)
    if not items:
        raise InputError(f"{path} must list at least one stage")
    return tuple(_stage(f"{path}.{i}", item, f"stage{i}") for i, item in enumerate(items))


def _stage(path: str, value: Any, default_name: str) -> Stage:
    get = _Section(value, path, Stage)
    return Stage(
        name=get("name", _string) if "name" in get.raw else default_name,
        epochs=get("epochs", _integer, 1),
        lr=get("lr", _number, 0.0),
        model=get("model", _mapping),
        freeze=get("freeze", _strings),
        schedule=get("schedule", _choice, SCHEDULES),
        min_lr=get("min_lr", _number, 0.0),
        init=get("init", _string, null=True),
        objective=get("objective", _choice, tuple(OBJECTIVES), null=True),
    )


def _check_model_args(cfg: ExperimentConfig, stage: Stage, index: int) -> None:
    """The stage's model is registered and its constructor takes every argument given: a
    misspelt argument is caught here, not as a TypeError once the run has begun."""
    spec = cfg.stage_model(stage)
    own = f"train.stages.{index}.model"
    where = own if "type" in stage.model else "model"
    kind = _choice(f"{where}.type", spec.pop("type"), tuple(REGISTRY))
    params = inspect.signature(REGISTRY[kind].cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for arg in spec:
        if arg not in params:
            raise _unknown(f"{kind} argument", own if arg in stage.model else "model", arg, params)
