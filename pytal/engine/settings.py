"""The ``train.*`` keys the engine reads (the detector reads its own ``train.*`` keys itself)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = ["TrainSettings", "TIOU_DEFAULT"]

#: Default ``test.tiou_thresholds`` (THUMOS14's 0.3:0.7:0.1).
TIOU_DEFAULT = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and bookkeeping of :class:`~pytal.engine.Trainer`.

    epochs, warmup_epochs: training length and linear warm-up (epochs). batch_size: videos per
    step. lr, eta_min: AdamW peak learning rate and the cosine floor. weight_decay: AdamW's
    (not applied to biases and norm weights). clip_grad_l2norm: gradient-norm clip (<= 0: off).
    model_ema, ema_decay: keep an EMA of the weights and evaluate it. num_workers: DataLoader
    workers. seed: seeds the weights, the sampler, the crops and the model's noise.
    eval_every: evaluate every that many epochs (0: only after the last epoch); the best
    evaluation selects ``best.pt``. checkpoint_every: save ``last.pt`` every that many epochs.
    amp: mixed precision of the training steps, ``none`` (float32), ``bf16`` (CPU or CUDA) or
    ``fp16`` (CUDA only, with loss scaling); see :mod:`pytal.engine.amp`.
    """

    epochs: int = 30
    warmup_epochs: float = 5
    batch_size: int = 2
    lr: float = 1e-4
    eta_min: float = 1e-8
    optimizer: str = "adamw"
    schedule: str = "cosine"
    weight_decay: float = 0.05
    clip_grad_l2norm: float = 1.0
    model_ema: bool = False
    ema_decay: float = 0.999
    num_workers: int = 0
    seed: int = 0
    eval_every: int = 0
    checkpoint_every: int = 1
    amp: str = "none"

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "TrainSettings":
        """Read ``cfg["train"]`` (other keys there are the detector's); errors name the key."""
        section = cfg.get("train", {}) if isinstance(cfg, Mapping) else {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in section:
                continue
            v = section[f.name]
            kind = type(f.default)
            if kind is bool:
                ok = isinstance(v, bool)
                expected = "true or false"
            elif kind is int:
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
                expected = "an integer >= 0"
            elif kind is float:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                expected = "a number >= 0"
            else:
                ok = isinstance(v, str)
                expected = "a string"
            if not ok:
                raise ValueError(f"config: train.{f.name} must be {expected}, got {v!r}")
            values[f.name] = float(v) if kind is float else v
        out = cls(**values)
        if out.optimizer != "adamw":
            raise ValueError(f"config: train.optimizer must be 'adamw', got {out.optimizer!r}")
        if out.schedule != "cosine":
            raise ValueError(f"config: train.schedule must be 'cosine', got {out.schedule!r}")
        from pytal.engine.amp import check_amp_mode

        check_amp_mode(out.amp)
        for key in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(out, key) < 1:
                raise ValueError(f"config: train.{key} must be an integer >= 1, got "
                                 f"{getattr(out, key)!r}")
        if out.lr <= 0:
            raise ValueError(f"config: train.lr must be a number > 0, got {out.lr!r}")
        if not out.ema_decay < 1:
            raise ValueError(f"config: train.ema_decay must be in [0, 1), got {out.ema_decay!r}")
        return out
