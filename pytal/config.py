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


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first unknown or mistyped key."""
    # completed below (sections, readers of every key)
    return None


def save_config(cfg: Mapping[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write the resolved config as YAML, atomically."""
    import tempfile
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(dict(cfg), f, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
