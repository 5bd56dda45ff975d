"""Detector registry: ``register_model(name)``, ``build_model(cfg)``, ``model_class(name)``."""
from __future__ import annotations

import dataclasses
from importlib import metadata
from typing import Any, Callable, TypeVar

from pytal.models.protocol import ModelConfig

__all__ = ["build_model", "model_class", "register_model", "registered_models"]

_MODELS: dict[str, type] = {}
M = TypeVar("M", bound=type)
#: Entry-point group through which installed packages register detectors: an entry point
#: ``name = "package.module:Class"`` is imported when ``model.name`` is ``name``.
ENTRY_POINT_GROUP = "pytal.models"


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a detector under ``name`` (the config's ``model.name``).
    The class needs a ``config_class`` (a dataclass subclassing
    :class:`~pytal.models.protocol.ModelConfig`) and is built as ``cls(cfg)`` from the whole
    typed config; see :mod:`pytal.models.protocol`."""
    def decorator(cls: M) -> M:
        config_class = getattr(cls, "config_class", None)
        if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)
                and issubclass(config_class, ModelConfig)):
            raise TypeError(f"register_model({name!r}): {cls.__qualname__}.config_class must be "
                            "a dataclass subclassing pytal.models.protocol.ModelConfig")
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"register_model: a model named {name!r} is already registered "
                             f"({_MODELS[name].__qualname__})")
        _MODELS[name] = cls
        return cls
    return decorator


def registered_models() -> list[str]:
    """Names of the registered detectors, sorted."""
    return sorted(_MODELS)


def _load_entry_point(name: str) -> None:
    """Import the detector an installed package declares under ``name`` in the
    ``pytal.models`` entry-point group (its module registers it)."""
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            entry.load()


def model_class(name: str) -> type:
    """The detector class registered as ``name`` (imported from the ``pytal.models`` entry
    points when no imported module registered it)."""
    if name not in _MODELS:
        _load_entry_point(name)
    if name not in _MODELS:
        raise KeyError(f"unknown model.name {name!r}; known models: {registered_models()}")
    return _MODELS[name]


def build_model(cfg: Any) -> Any:
    """Build the detector named by ``cfg.model.name`` from the typed config
    (:class:`pytal.config.Config`)."""
    model = getattr(cfg, "model", None)
    if not isinstance(model, ModelConfig):
        raise TypeError("build_model: expected a pytal.config.Config (pytal.config.load_config "
                        f"or config_from_dict), got {type(cfg).__name__}")
    return model_class(model.name)(cfg)
