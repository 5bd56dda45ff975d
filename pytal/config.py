"""Configs: packaged YAML files or paths, ``a.b=value`` overrides, validation.

    cfg = pytal.config.load_config("cltdr_gmg_small", ["train.epochs=3", "dataset.feature_dir=/x"])

``load_config`` returns a plain dict (sections ``model``, ``dataset``, ``train``, ``test``) after
validating it: the detector's own keys by the detector's config class, the engine's keys by
:class:`pytal.engine.settings.TrainSettings`, the shared dataset keys here. A key that nobody
reads, or a value of the wrong type, is an error that names the key.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Iterable, Mapping, Union

import yaml

from pytal.io.atomic import atomic_write

__all__ = ["CONFIG_DIR", "ConfigError", "apply_overrides", "config_path", "load_config",
           "packaged_configs", "parse_override", "save_config"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key."""


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
    if isinstance(parsed, str) and _looks_like_float(parsed):
        parsed = float(parsed)           # YAML 1.1 reads "1e-3" as a string
    return parts, parsed


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    """A copy of ``cfg`` with each ``"a.b=value"`` set. The section must exist; the key need
    not (validation then says whether anybody reads it)."""
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        parts, value = parse_override(text)
        node = cfg
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                where = ".".join(parts[:i + 1])
                raise ConfigError(f"override {text!r}: {where} is not a config section "
                                  f"(sections: {', '.join(sorted(cfg))})")
            node = child
        node[parts[-1]] = value
    return cfg


def _fix_floats(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_floats(v) for v in node]
    if isinstance(node, str) and _looks_like_float(node) and any(c in node for c in "eE."):
        return float(node)
    return node


def load_config(name_or_path: Union[str, os.PathLike], overrides: Iterable[str] = ()) -> dict:
    """Read a packaged config (``"cltdr_gmg_small"``) or a YAML file, apply ``overrides``
    (``"a.b=value"``) and validate; returns the config dict."""
    path = config_path(name_or_path)
    with open(path, "r", encoding="utf-8") as f:
        try:
            cfg = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"config {path}: not valid YAML ({err})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config {path}: expected a mapping of sections, got "
                          f"{type(cfg).__name__}")
    cfg = apply_overrides(_fix_floats(cfg), overrides)
    validate_config(cfg)
    return cfg


SECTIONS = ("model", "dataset", "train", "test")

_STR, _OPT_STR = (str,), (str, type(None))
_NUM, _OPT_NUM = (int, float), (int, float, type(None))
#: Keys every detector shares, read by the engine and the datasets: key -> accepted types.
SHARED_KEYS: dict[str, dict[str, tuple]] = {
    "model": {"name": _STR, "variant": _STR},
    "dataset": {"name": _OPT_STR, "annotation_file": _STR, "feature_dir": _STR,
                "file_prefix": _OPT_STR, "file_ext": _STR, "feat_stride": _OPT_NUM,
                "num_frames": _OPT_NUM, "default_fps": _OPT_NUM, "input_dim": (int,),
                "num_classes": (int,), "train_subset": (str, list), "val_subset": (str, list),
                "max_seq_len": (int,), "trunc_thresh": _NUM, "crop_ratio": (list, type(None)),
                "force_upsampling": (bool,), "resize_length": (int, type(None))},
    "train": {},              # the engine's keys: pytal.engine.settings.TrainSettings
    "test": {"tiou_thresholds": (list,), "ext_score_file": _OPT_STR},
}


class _Recorder(dict):
    """A dict that remembers which keys were looked up (to learn what a reader reads)."""

    def __init__(self, data: Mapping[str, Any], seen: set) -> None:
        super().__init__(data)
        self.seen = seen

    def __contains__(self, key: object) -> bool:
        self.seen.add(key)
        return super().__contains__(key)

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)


def _model_keys(cfg: Mapping[str, Any]) -> dict[str, set]:
    """Per section, the keys the detector's config class reads (it validates them itself)."""
    from pytal.models import registry

    name = cfg["model"].get("name")
    if name not in registry.registered_models():
        raise ConfigError(f"config: model.name must be one of {registry.registered_models()}, "
                          f"got {name!r}")
    config_class = getattr(registry._MODELS[name], "config_class", None)
    if config_class is None:                 # a detector without a config class reads anything
        return {s: set(cfg.get(s) or {}) for s in SECTIONS}
    seen = {s: set() for s in SECTIONS}
    recorded = {s: _Recorder(cfg.get(s) or {}, seen[s]) for s in SECTIONS}
    try:
        config_class.from_dict(recorded)
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(str(err.args[0]) if err.args else str(err)) from None
    for section, keys in getattr(config_class, "ACCEPTED_UNUSED", {}).items():
        seen[section].update(keys)
    return seen


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first unknown section or key, or a shared key of
    the wrong type. The detector's keys are checked by its ``config_class.from_dict``, the
    engine's ``train.*`` keys by :class:`~pytal.engine.settings.TrainSettings`."""
    from pytal.engine.settings import TrainSettings

    unknown = [s for s in cfg if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"config: unknown section {unknown[0]!r} (sections: "
                          f"{', '.join(SECTIONS)})")
    for section in SECTIONS:
        if not isinstance(cfg.get(section, {}), Mapping):
            raise ConfigError(f"config: section {section!r} must be a mapping of keys, got "
                              f"{type(cfg[section]).__name__}")
    if "name" not in cfg.get("model", {}):
        raise ConfigError("config: missing key model.name")
    for section, types in SHARED_KEYS.items():
        for key, accepted in types.items():
            value = cfg.get(section, {}).get(key)
            if key in cfg.get(section, {}) and (
                    not isinstance(value, accepted) or (bool not in accepted and isinstance(value, bool))):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in accepted)
                raise ConfigError(f"config: {section}.{key} must be {names}, got {value!r}")
    try:
        TrainSettings.from_dict(cfg)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    readers = _model_keys(cfg)
    for section in SECTIONS:
        known = set(SHARED_KEYS[section]) | readers[section]
        if section == "train":
            known |= set(TrainSettings.keys())
        for key in cfg.get(section, {}):
            if key not in known:
                raise ConfigError(f"config: unknown key {section}.{key} (known keys of "
                                  f"{section}: {', '.join(sorted(known))})")


def save_config(cfg: Mapping[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write(path, lambda f: yaml.safe_dump(dict(cfg), f, sort_keys=False))
