"""Detector registry: ``register_model(name)`` and ``build_model(cfg)``."""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from torch import nn

__all__ = ["register_model", "build_model", "registered_models"]

_MODELS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {}
M = TypeVar("M", bound=type)


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a detector under ``name`` (the config's ``model.name``).
    The class is built as ``cls(cfg)`` with the whole config dict."""
    def decorator(cls: M) -> M:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"register_model: a model named {name!r} is already registered "
                             f"({_MODELS[name].__qualname__})")
        _MODELS[name] = cls
        return cls
    return decorator


def registered_models() -> list[str]:
    """Names of the registered detectors, sorted."""
    return sorted(_MODELS)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the detector named by ``cfg["model"]["name"]`` from the whole config dict."""
    model_cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    if not isinstance(model_cfg, Mapping) or "name" not in model_cfg:
        raise KeyError("build_model: the config has no model.name (expected a dict with a "
                       f"'model' section naming one of {registered_models()})")
    name = model_cfg["name"]
    if name not in _MODELS:
        raise KeyError(f"build_model: unknown model.name {name!r}; known models: "
                       f"{registered_models()}")
    return _MODELS[name](cfg)
