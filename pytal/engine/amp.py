"""Mixed precision: the training steps (``train.amp``: autocast for the forward pass, loss
scaling for float16, gradient clipping on unscaled gradients, and the scaler's state for
checkpoints) and inference (``eval.amp``: autocast around ``model.predict``).

``none``: float32 throughout. ``bf16``: ``torch.autocast`` with bfloat16 on the model's device
type (CPU or CUDA); bfloat16 has float32's exponent range, so no loss scaling. ``fp16``:
autocast with float16 and a ``torch.amp.GradScaler``; CUDA only. The detectors compute their
losses in float32 and the pytal ops accept float16 / bfloat16 inputs (``gmg`` filters and
transforms in float32), so the model needs no casts of its own.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Iterable, Mapping, Optional

import torch
from torch import nn

__all__ = ["AMP_MODES", "MixedPrecision", "autocast_context", "check_amp_mode"]

#: ``train.amp`` / ``eval.amp`` values and the autocast dtype of each.
AMP_MODES: dict[str, Optional[torch.dtype]] = {"none": None, "bf16": torch.bfloat16,
                                               "fp16": torch.float16}


def check_amp_mode(mode: Any, key: str = "train.amp") -> str:
    """``mode`` when it is an ``AMP_MODES`` value, else a ValueError naming the config ``key``."""
    if not isinstance(mode, str) or mode not in AMP_MODES:
        raise ValueError(f"config: {key} must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    return mode


def autocast_context(mode: str, device: torch.device | str, key: str = "train.amp"
                     ) -> ContextManager:
    """``torch.autocast`` on ``device``'s type with ``mode``'s dtype (an ``AMP_MODES`` value);
    nothing for ``none``. ``fp16`` needs a CUDA device: elsewhere a ValueError naming the
    config ``key``."""
    check_amp_mode(mode, key)
    device_type = torch.device(device).type
    if mode == "fp16" and device_type != "cuda":
        raise ValueError(f"config: {key}='fp16' needs a CUDA device (running on "
                         f"{device_type}); allowed there: none, bf16")
    dtype = AMP_MODES[mode]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


class MixedPrecision:
    """One training step's precision handling for ``mode`` (a ``train.amp`` value) on
    ``device``. Use::

        with amp.autocast():
            loss = model(...)["loss"]
        optimizer.zero_grad()
        amp.backward(loss)
        amp.step(optimizer, model.parameters(), clip_grad_l2norm)
    """

    def __init__(self, mode: str, device: torch.device | str) -> None:
        autocast_context(mode, device)              # checks the mode and the device
        self.device_type = torch.device(device).type
        self.mode = mode
        self.scaler = torch.amp.GradScaler(self.device_type) if mode == "fp16" else None

    def autocast(self) -> ContextManager:
        """The forward pass's context: ``torch.autocast`` for bf16 / fp16, nothing for none."""
        return autocast_context(self.mode, self.device_type)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, on the scaled loss for fp16."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, parameters: Iterable[nn.Parameter],
             clip_grad_l2norm: float = 0.0) -> None:
        """Clip the gradients' norm to ``clip_grad_l2norm`` (> 0; unscaled first for fp16)
        and step ``optimizer`` (fp16: skipped when the gradients overflowed, and the scale
        adapted)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if clip_grad_l2norm > 0:
            nn.utils.clip_grad_norm_(parameters, clip_grad_l2norm)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode,
                "scaler": None if self.scaler is None else self.scaler.state_dict()}

    def load_state_dict(self, state: Optional[Mapping[str, Any]]) -> None:
        """Restore the loss scale (a checkpoint without one, e.g. of another mode, leaves the
        fresh scaler)."""
        if self.scaler is not None and state and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
