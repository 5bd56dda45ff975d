"""Typed configs, read once: packaged YAML files or paths, overrides, validation, saving.

    cfg = pytal.config.load_config("cltdr_gmg_small", ["train.epochs=3", "dataset.feature_dir=/x"])
    cfg = pytal.config.load_config("cltdr_gmg_small", {"train.epochs": 3})     # same, as a dict
    cfg.train.epochs, cfg.dataset.input_dim, cfg.eval.tiou_thresholds, cfg.model.embd_dim

:func:`load_config` returns a :class:`Config`: four frozen dataclasses, one per section.
``dataset`` (:class:`DatasetConfig`), ``train`` (:class:`TrainConfig`, the engine's) and ``eval``
(:class:`EvalConfig`, the inference and evaluation protocol) are defined here; ``model`` is the
config class of the detector named by ``model.name`` (its ``config_class``, see
:mod:`pytal.models.protocol`). Each class owns its keys, types and defaults; a key no class
has, or a value of the wrong type, is a :class:`ConfigError` naming the key and the file.
``eval.tiou_thresholds`` left unset is the preset of ``dataset.name``
(:func:`pytal.evaluation.thresholds.dataset_tiou_thresholds`). A path that starts with
``pytal:`` names a file inside the installed package (``pytal:resources/thumos14.json``).
:func:`save_config` writes the resolved config, every default filled in.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Literal, Mapping, Optional, Union

import yaml

from pytal.evaluation.thresholds import dataset_tiou_thresholds
from pytal.io.atomic import atomic_write

__all__ = ["CONFIG_DIR", "PACKAGE_DIR", "Config", "ConfigError", "DatasetConfig", "EvalConfig",
           "Overrides", "TrainConfig", "apply_overrides", "config_from_dict", "config_path",
           "load_config", "overrides_dict", "package_path", "packaged_configs", "parse_override",
           "read_section", "save_config"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(PACKAGE_DIR, "configs")
#: Prefix of paths inside the installed package (``pytal:resources/thumos14.json``).
PACKAGE_PREFIX = "pytal:"
SECTIONS = ("model", "dataset", "train", "eval")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


def package_path(path: str) -> str:
    """``"pytal:resources/x.json"`` -> the absolute path of that file in the installed package;
    any other path is returned unchanged."""
    if path.startswith(PACKAGE_PREFIX):
        return os.path.join(PACKAGE_DIR, *path[len(PACKAGE_PREFIX):].split("/"))
    return path


# ------------------------------------------------------------------------------- sections

def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class DatasetConfig:
    """``dataset.*``: where the features and annotations are and how videos become inputs.

    Units: ``feat_stride`` / ``num_frames`` in frames, ``max_seq_len`` / ``resize_length`` in
    feature steps, ``trunc_thresh`` and ``crop_ratio`` as fractions. ``label_space``: which
    labelling of an annotation file with several to use (EPIC-KITCHENS-100's ``verb`` /
    ``noun``), null for files with one. ``clip_stride`` (steps): train on the fixed clips of
    ``max_seq_len`` steps every that many steps that hold a whole action (AFSD's rule,
    :mod:`pytal.data.clips`); null: one random crop per video and epoch. ``class_agnostic``:
    every action of the file is class 0 for training (needs ``num_classes: 1``); evaluation
    then takes classes from ``eval.ext_score_file``, or without it is class-agnostic.
    """

    SECTION: ClassVar[str] = "dataset"

    input_dim: int
    num_classes: int
    name: str = ""
    annotation_file: str = ""
    feature_dir: str = ""
    file_prefix: Optional[str] = None
    file_ext: str = ".npy"
    feat_stride: Optional[float] = None
    num_frames: Optional[float] = None
    default_fps: Optional[float] = None
    train_subset: Union[str, tuple[str, ...]] = "training"
    val_subset: Union[str, tuple[str, ...]] = "validation"
    max_seq_len: int = 2304
    trunc_thresh: float = 0.5
    crop_ratio: Optional[tuple[float, float]] = None
    force_upsampling: bool = False
    resize_length: Optional[int] = None
    frame_dir: str = ""
    flow_dir: str = ""
    frame_fps: Optional[float] = None
    frame_crop: Optional[int] = None
    label_space: Optional[str] = None
    clip_stride: Optional[int] = None
    class_agnostic: bool = False

    def __post_init__(self) -> None:
        if self.class_agnostic and self.num_classes != 1:
            raise _fail("dataset.num_classes", "1 with dataset.class_agnostic: true",
                        self.num_classes)
        if self.clip_stride is not None and self.clip_stride < 1:
            raise _fail("dataset.clip_stride", "an integer >= 1 or null", self.clip_stride)
        if self.flow_dir and not self.frame_dir:
            raise _fail("dataset.frame_dir", "set when dataset.flow_dir is", self.frame_dir)
        if self.frame_crop is not None and self.frame_crop < 1:
            raise _fail("dataset.frame_crop", "an integer >= 1 or null", self.frame_crop)
        if self.label_space is not None and not self.label_space:
            raise _fail("dataset.label_space", "a label space name (e.g. verb, noun) or null",
                        self.label_space)
        for key in ("input_dim", "num_classes", "max_seq_len"):
            if getattr(self, key) < 1:
                raise _fail(f"dataset.{key}", "an integer >= 1", getattr(self, key))
        if self.resize_length is not None and self.resize_length < 1:
            raise _fail("dataset.resize_length", "an integer >= 1 or null", self.resize_length)
        for key in ("feat_stride", "num_frames", "default_fps", "frame_fps"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise _fail(f"dataset.{key}", "a number > 0 or null", value)
        if not 0.0 <= self.trunc_thresh <= 1.0:
            raise _fail("dataset.trunc_thresh", "a number in [0, 1]", self.trunc_thresh)
        crop = self.crop_ratio
        if crop is not None and not 0.0 < crop[0] <= crop[1] <= 1.0:
            raise _fail("dataset.crop_ratio", "[lo, hi] with 0 < lo <= hi <= 1, or null",
                        list(self.crop_ratio))


@dataclass(frozen=True)
class TrainConfig:
    """``train.*``: optimisation and bookkeeping of :class:`~pytal.engine.Trainer`.

    epochs, warmup_epochs: training length and linear warm-up (epochs). batch_size: videos per
    step (per process). lr, eta_min: peak learning rate and the cosine floor. optimizer:
    ``adamw`` (decoupled weight decay) or ``adam`` (weight decay added to the gradients, as
    torch's Adam does). weight_decay: the optimiser's (not applied to biases and norm weights). clip_grad_l2norm:
    gradient-norm clip (<= 0: off). model_ema, ema_decay: keep an EMA of the weights and
    evaluate it. num_workers: DataLoader workers. seed: seeds the weights, the sampler, the
    crops and the model's noise. eval_every: evaluate every that many epochs (0: only after
    the last epoch); the best evaluation selects ``best.pt``. checkpoint_every: save
    ``last.pt`` every that many epochs. amp: mixed precision of the training steps, ``none``
    (float32), ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA only, with loss scaling).
    """

    SECTION: ClassVar[str] = "train"

    epochs: int = 30
    warmup_epochs: float = 5.0
    batch_size: int = 2
    lr: float = 1e-4
    eta_min: float = 1e-8
    optimizer: Literal["adamw", "adam"] = "adamw"
    schedule: Literal["cosine"] = "cosine"
    weight_decay: float = 0.05
    clip_grad_l2norm: float = 1.0
    model_ema: bool = False
    ema_decay: float = 0.999
    num_workers: int = 0
    seed: int = 0
    eval_every: int = 0
    checkpoint_every: int = 1
    amp: Literal["none", "bf16", "fp16"] = "none"

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise _fail(f"train.{key}", "an integer >= 1", getattr(self, key))
        for key in ("num_workers", "seed", "eval_every"):
            if getattr(self, key) < 0:
                raise _fail(f"train.{key}", "an integer >= 0", getattr(self, key))
        for key in ("warmup_epochs", "eta_min", "weight_decay", "clip_grad_l2norm"):
            if getattr(self, key) < 0:
                raise _fail(f"train.{key}", "a number >= 0", getattr(self, key))
        if not self.lr > 0:
            raise _fail("train.lr", "a number > 0", self.lr)
        if not 0 <= self.ema_decay < 1:
            raise _fail("train.ema_decay", "a number in [0, 1)", self.ema_decay)


#: ``eval.nms_method`` -> the ``method`` of :func:`pytal.postprocess.batched_nms` (None: no NMS).
NMS_METHODS = {"soft": "gaussian", "linear": "linear", "hard": "hard", "none": None}


@dataclass(frozen=True)
class EvalConfig:
    """``eval.*``: how detections are made from a model's candidates and scored.

    tiou_thresholds: the tIoU thresholds of the mAP (unset: the preset of ``dataset.name``).
    pre_nms_thresh, pre_nms_topk: candidates above that score, at most that many per video.
    nms_method (``soft`` = Gaussian Soft-NMS, ``linear``, ``hard``, ``none``), iou_threshold,
    nms_sigma, min_score, multiclass_nms, voting_thresh (segment voting, class-agnostic NMS
    only), max_seg_num: :func:`pytal.postprocess.batched_nms`. duration_thresh: segments not
    longer than that many feature steps are dropped. ext_score_file, ext_score_topk: external
    video-level class scores (ActivityNet) and how many of a video's best classes each take a
    copy of its detections (:mod:`pytal.engine.class_scores`). amp: mixed precision of
    inference, ``none``, ``bf16`` or ``fp16`` (CUDA only): the model's forward runs under
    ``torch.autocast`` with that dtype (faster where the processor has bfloat16 / float16
    matrix units; detections close to, not equal to, float32's).
    """

    SECTION: ClassVar[str] = "eval"

    tiou_thresholds: Optional[tuple[float, ...]] = None
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    iou_threshold: float = 0.1
    min_score: float = 0.001
    max_seg_num: int = 200
    nms_method: Literal["soft", "linear", "hard", "none"] = "soft"
    nms_sigma: float = 0.5
    duration_thresh: float = 0.05
    multiclass_nms: bool = True
    voting_thresh: float = 0.0
    ext_score_file: Optional[str] = None
    ext_score_topk: int = 2
    amp: Literal["none", "bf16", "fp16"] = "none"

    def __post_init__(self) -> None:
        if self.tiou_thresholds is not None and (
                not self.tiou_thresholds or not all(0 < t <= 1 for t in self.tiou_thresholds)):
            raise _fail("eval.tiou_thresholds", "a non-empty list of numbers in (0, 1]",
                        list(self.tiou_thresholds))
        for key in ("pre_nms_thresh", "iou_threshold", "voting_thresh"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise _fail(f"eval.{key}", "a number in [0, 1]", getattr(self, key))
        for key in ("min_score", "duration_thresh"):
            if getattr(self, key) < 0:
                raise _fail(f"eval.{key}", "a number >= 0", getattr(self, key))
        if not self.nms_sigma > 0:
            raise _fail("eval.nms_sigma", "a number > 0", self.nms_sigma)
        for key in ("pre_nms_topk", "max_seg_num", "ext_score_topk"):
            if getattr(self, key) < 1:
                raise _fail(f"eval.{key}", "an integer >= 1", getattr(self, key))

    @property
    def nms(self) -> Optional[str]:
        """The ``method`` of :func:`pytal.postprocess.batched_nms` (None: no NMS)."""
        return NMS_METHODS[self.nms_method]


@dataclass(frozen=True)
class Config:
    """A resolved config: the detector's ``model`` section (its ``config_class``), ``dataset``,
    ``train`` and ``eval``. ``source`` is the file it came from (for messages only)."""

    model: Any
    dataset: DatasetConfig
    train: TrainConfig
    eval: EvalConfig
    source: str = field(default="<dict>", compare=False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain YAML-able sections, every key present (tuples become lists)."""
        return {s: _plain(dataclasses.asdict(getattr(self, s))) for s in SECTIONS}

    def replace(self, **sections: Any) -> "Config":
        """A copy with whole sections replaced (``cfg.replace(train=...)``)."""
        return dataclasses.replace(self, **sections)

    @property
    def evaluates_class_agnostic(self) -> bool:
        """True when evaluation ignores classes: a class-agnostic detector
        (``dataset.class_agnostic``) without external class scores (``eval.ext_score_file``)."""
        return self.dataset.class_agnostic and not self.eval.ext_score_file


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------- typed reads

def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is type(None):
        return "null"
    if origin is Literal:
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({_describe(args[0])})"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, getattr(kind, "__name__", str(kind)))


class _Mismatch(Exception):
    pass


def _coerce(value: Any, kind: Any) -> Any:
    """``value`` as type ``kind`` (bool, int, float, str, Optional, Union, Literal, tuple[...]),
    or :class:`_Mismatch`. Ints are accepted as floats; lists become tuples."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if kind is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for alternative in args:
            try:
                return _coerce(value, alternative)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if kind is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise TypeError(f"config: unsupported field type {kind!r}")


def read_section(cls: type, values: Mapping[str, Any], section: str, source: str) -> Any:
    """An instance of the dataclass ``cls`` from one section's mapping: every key must be a
    field of ``cls`` and of its type; missing keys take the field's default. Errors are
    :class:`ConfigError` naming ``source`` and ``section.key``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: section {section!r} must be a mapping of keys, got "
                          f"{type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key {section}.{key} (known keys of {section}: "
                              f"{', '.join(sorted(known))})")
        try:
            kwargs[key] = _coerce(value, hints[key])
        except _Mismatch:
            raise ConfigError(f"{source}: {section}.{key} must be {_describe(hints[key])}, got "
                              f"{value!r}") from None
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{source}: missing key {section}.{missing[0]}")
    try:
        return cls(**kwargs)
    except ValueError as err:                # the class's own checks name section.key
        raise ConfigError(f"{source}: {err}") from None


# ------------------------------------------------------------------------------- files

def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``pytal/configs``."""
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))


def config_path(name_or_path: Union[str, os.PathLike]) -> str:
    """The YAML file of a packaged config name or a path."""
    text = os.fspath(name_or_path)
    if os.path.isfile(text):
        return text
    packaged = os.path.join(CONFIG_DIR, text + ".yaml")
    if os.sep not in text and not text.endswith((".yaml", ".yml")) and os.path.isfile(packaged):
        return packaged
    raise FileNotFoundError(f"config {text!r}: no such file and no packaged config of that name "
                            f"(packaged: {', '.join(packaged_configs())})")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> ``(["a", "b"], value)``, the value parsed as a YAML scalar or list
    (``3`` -> int, ``1e-3`` -> float, ``true`` -> bool, ``null`` -> None, ``[1, 2]`` -> list)."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {text!r}: expected section.key=value (e.g. train.epochs=3)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None
    return parts, _fix_floats(parsed)


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def _fix_floats(node: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; such strings become floats."""
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_floats(v) for v in node]
    if isinstance(node, str) and _looks_like_float(node) and any(c in node for c in "eE."):
        return float(node)
    return node


Overrides = Union[Iterable[str], Mapping[str, Any]]


def _override_items(overrides: Overrides) -> list[tuple[list[str], Any, str]]:
    """``(key parts, value, description)`` of ``"a.b=value"`` strings or of a dict, flat
    (``{"train.epochs": 3}``) or nested (``{"train": {"epochs": 3}}``)."""
    if isinstance(overrides, Mapping):
        items = []

        def walk(prefix: list[str], node: Mapping[str, Any]) -> None:
            for key, value in node.items():
                parts = prefix + str(key).split(".")
                if isinstance(value, Mapping):
                    walk(parts, value)
                else:
                    items.append((parts, value, f"{'.'.join(parts)}={value!r}"))

        walk([], overrides)
        return items
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of 'key=value' strings or a dict, got the "
                          f"string {overrides!r}")
    return [(*parse_override(text), repr(text)) for text in overrides]


def overrides_dict(overrides: Overrides) -> dict[str, Any]:
    """Overrides (``"a.b=value"`` strings or a dict) as one flat dict ``{"a.b": value}``, so
    that several sets merge with ``{**first, **overrides_dict(second)}``."""
    return {".".join(parts): value for parts, value, _ in _override_items(overrides)}


def apply_overrides(cfg: Mapping[str, Any], overrides: Overrides) -> dict:
    """A copy of the raw config dict ``cfg`` with each override set (``"a.b=value"`` strings or
    a dict). The section must exist or be one of the sections; the key need not (reading the
    sections says whether it is known)."""
    cfg = copy.deepcopy(dict(cfg))
    for parts, value, text in _override_items(overrides):
        if len(parts) < 2:
            raise ConfigError(f"override {text}: expected section.key=value (e.g. train.epochs=3)")
        if parts[0] not in cfg and parts[0] in SECTIONS:
            cfg[parts[0]] = {}
        node = cfg
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                where = ".".join(parts[:i + 1])
                raise ConfigError(f"override {text}: {where} is not a config section "
                                  f"(sections: {', '.join(SECTIONS)})")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return cfg


def config_from_dict(raw: Mapping[str, Any], overrides: Overrides = (), *,
                     source: str = "<config dict>") -> Config:
    """The typed :class:`Config` of a raw config dict (sections ``model``, ``dataset``,
    ``train``, ``eval``) with ``overrides`` applied; errors name ``source`` and the key."""
    from pytal.models.registry import model_class, registered_models

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    unknown = [s for s in raw if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"{source}: unknown section {unknown[0]!r} (sections: "
                          f"{', '.join(SECTIONS)})")
    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, Mapping) or "name" not in model_raw:
        raise ConfigError(f"{source}: missing key model.name (one of {registered_models()})")
    name = model_raw["name"]
    try:
        model_class(name)
    except KeyError:
        raise ConfigError(f"{source}: model.name must be one of {registered_models()}, got "
                          f"{name!r}") from None
    dataset = read_section(DatasetConfig, raw.get("dataset") or {}, "dataset", source)
    if dataset.annotation_file:
        dataset = dataclasses.replace(dataset,
                                      annotation_file=package_path(dataset.annotation_file))
    evaluation = read_section(EvalConfig, raw.get("eval") or {}, "eval", source)
    if evaluation.ext_score_file:
        evaluation = dataclasses.replace(evaluation,
                                         ext_score_file=package_path(evaluation.ext_score_file))
    if evaluation.tiou_thresholds is None:
        preset = dataset_tiou_thresholds(dataset.name)
        if preset is None:
            raise ConfigError(f"{source}: eval.tiou_thresholds is not set and dataset.name "
                              f"{dataset.name!r} has no preset (names starting with thumos, "
                              "multithumos, activitynet / anet, epic or hacs have one)")
        evaluation = dataclasses.replace(evaluation, tiou_thresholds=tuple(preset))
    cfg = Config(model=read_section(model_class(name).config_class, model_raw, "model", source),
                 dataset=dataset, train=read_section(TrainConfig, raw.get("train") or {},
                                                     "train", source),
                 eval=evaluation, source=source)
    check = getattr(cfg.model, "check", None)
    if check is not None:                     # the detector's checks across sections
        try:
            check(cfg)
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(name_or_path: Union[str, os.PathLike], overrides: Overrides = ()) -> Config:
    """Read a packaged config (``"cltdr_gmg_small"``) or a YAML file, apply ``overrides``
    (``"a.b=value"`` strings or a dict) and return the typed :class:`Config`."""
    path = config_path(name_or_path)
    with open(path, "r", encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"config {path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping of sections, got "
                          f"{type(raw).__name__}")
    return config_from_dict(_fix_floats(raw), overrides, source=f"config {path}")


def save_config(cfg: Config, path: Union[str, os.PathLike]) -> None:
    """Write the resolved config as YAML (every key, defaults included), atomically."""
    atomic_write(path, lambda f: yaml.safe_dump(cfg.to_dict(), f, sort_keys=False))
