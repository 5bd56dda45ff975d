"""The config keys SeqAttNet reads, validated once, with errors naming the key.

``SeqAttNetConfig.from_dict(cfg)`` takes the whole config dict (sections ``model``,
``dataset``, ``train``, ``test``; see ``pytal/configs/seqattnet_*.yaml``). Every field below
is read from the section named in its metadata; a field without a default is required.
Lengths are in steps of the resized feature sequence (``dataset.max_seq_len`` = T).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping

__all__ = ["SeqAttNetConfig", "NMS_METHODS"]

NMS_METHODS = {"soft": "gaussian", "linear": "linear", "hard": "hard"}
AMASSMENT_SOURCES = ("input", "base")


def _key(section: str, default: Any = MISSING, *, min: float | None = None,
         max: float | None = None, choices: tuple | None = None, key: str | None = None):
    """A config field read from ``section.key`` (``key`` defaults to the field's name)."""
    return field(default=default, metadata={"section": section, "min": min, "max": max,
                                            "choices": choices, "key": key})


@dataclass(frozen=True)
class SeqAttNetConfig:
    """Everything SeqAttNet reads from the config (defaults: the paper's and BMN's)."""

    # dataset
    input_dim: int = _key("dataset", min=1)
    num_classes: int = _key("dataset", min=1)
    temporal_scale: int = _key("dataset", min=4, key="max_seq_len")
    # model: base module, temporal and proposal evaluation (paper's Table 1)
    base_dim: int = _key("model", 256, min=1)
    max_duration: int = _key("model", 0, min=0)          # D; 0: T
    num_samples: int = _key("model", 32, min=1)          # N sample points per proposal
    samples_per_bin: int = _key("model", 3, min=1)
    boundary_ratio: float = _key("model", 0.5, min=0.0)  # context on each side, x length
    hidden_3d: int = _key("model", 512, min=1)
    hidden_2d: int = _key("model", 128, min=1)
    # model: 3D input amassment, attention, two-dimensional sequential networks
    amassment_length: int = _key("model", 0, min=0)      # T_p; 0: T
    amassment_features: str = _key("model", "input", choices=AMASSMENT_SOURCES)
    # training labels and loss (paper's section 3.7 and Table 4)
    label_threshold: float = _key("train", 0.5, min=0.0, max=1.0)   # theta
    lambda_reg: float = _key("train", 10.0, min=0.0)                # lambda_R
    lambda_te: float = _key("train", 1.0, min=0.0)
    lambda_cl: float = _key("train", 1.0, min=0.0)
    lambda_er: float = _key("train", 1.0, min=0.0)
    lambda_l2: float = _key("train", 0.001, min=0.0)                # lambda_2
    error_proposals: int = _key("train", 32, min=1)                 # per video
    error_iou: float = _key("train", 0.5, min=0.0, max=1.0)
    # inference (test.*)
    peak_ratio: float = _key("test", 0.5, min=0.0, max=1.0)
    max_candidates: int = _key("test", 200, min=1)                  # per video, by P
    classes_per_proposal: int = _key("test", 2, min=1)
    nms_method: str = _key("test", "soft", choices=tuple(NMS_METHODS))
    iou_threshold: float = _key("test", 0.1, min=0.0, max=1.0)
    nms_sigma: float = _key("test", 0.5, min=1e-9)
    min_score: float = _key("test", 0.0001, min=0.0)
    max_seg_num: int = _key("test", 100, min=1)
    multiclass_nms: bool = _key("test", True)
    max_proposals: int = _key("test", 100, min=1)

    @property
    def duration_bins(self) -> int:
        """D: the proposal durations of the confidence maps (1 .. D steps)."""
        return self.max_duration or self.temporal_scale

    @property
    def proposal_length(self) -> int:
        """T_p: the time axis of the 3D input."""
        return self.amassment_length or self.temporal_scale

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "SeqAttNetConfig":
        if not isinstance(cfg, Mapping):
            raise TypeError(f"config: expected a dict, got {type(cfg).__name__}")
        values = {}
        for f in fields(cls):
            meta = f.metadata
            section_name, key = meta["section"], meta["key"] or f.name
            section = cfg.get(section_name) if section_name in cfg else {}
            if not isinstance(section, Mapping):
                raise KeyError(f"config: section {section_name!r} must be a mapping")
            if key in section:
                values[f.name] = _checked(f"{section_name}.{key}", section[key], f.type,
                                          meta, f.default)
            elif f.default is MISSING:
                raise KeyError(f"config: missing key {section_name}.{key}")
        c = cls(**values)
        if c.duration_bins > c.temporal_scale:
            raise ValueError(f"config: model.max_duration must be <= dataset.max_seq_len "
                             f"({c.temporal_scale}), got {c.max_duration}")
        longest = min(c.duration_bins + 1, c.temporal_scale)
        if c.proposal_length < longest:
            raise ValueError(f"config: model.amassment_length must be 0 or >= {longest} (the "
                             f"most steps a proposal covers: min(max_duration + 1, max_seq_len))"
                             f", got {c.amassment_length}")
        return c


def _checked(name: str, value: Any, kind: str, meta: Mapping[str, Any], default: Any) -> Any:
    """``value`` checked against the field's type and bounds; errors name ``name``."""
    expected = {"int": "an integer", "float": "a number", "bool": "true or false",
                "str": "a string"}[kind]
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    lo, hi, choices = meta["min"], meta["max"], meta["choices"]
    if ok and choices is not None:
        ok, expected = value in choices, f"one of {list(choices)}"
    if ok and lo is not None and value < lo:
        ok = False
    if ok and hi is not None and value > hi:
        ok = False
    if not ok:
        bounds = "".join([f" >= {lo}" if lo is not None else "",
                          f" <= {hi}" if hi is not None else ""])
        raise ValueError(f"config: {name} must be {expected}{bounds}, got {value!r}")
    return float(value) if kind == "float" else value
