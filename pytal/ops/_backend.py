"""Loading of the compiled extension ``pytal._C`` and the choice of backend for each call.

Every op in ``pytal.ops`` runs the extension's kernel for the inputs' device when the
extension has one, else its pure-PyTorch reference. ``backend="reference"`` or
``backend="extension"`` forces one; forcing the extension where it has no kernel raises
(it never falls back silently).
"""
from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Optional

import torch

BACKENDS = ("extension", "reference")

_extension: Any = None
_load_error: Optional[str] = None
try:
    _extension = importlib.import_module("pytal._C")
except ImportError as exc:  # no compiler at install time, or a broken build
    _load_error = f"{type(exc).__name__}: {exc}"


def extension_loaded() -> bool:
    """True when ``pytal._C`` was imported (its operators are registered)."""
    return _extension is not None


def has_kernel(op: str, device_type: str) -> bool:
    """True when the extension registered a kernel of ``pytal::<op>`` for ``device_type``."""
    if _extension is None or not hasattr(torch.ops.pytal, op):
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    if key is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"pytal::{op}", key)


def choose_backend(op: str, device: torch.device, backend: Optional[str]) -> str:
    """The backend that runs ``op`` on ``device``: ``"extension"`` or ``"reference"``.

    Raises ValueError for an unknown name and RuntimeError when ``backend="extension"`` is
    asked for but the extension has no kernel of ``op`` for that device.
    """
    if backend is None:
        return "extension" if has_kernel(op, device.type) else "reference"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be None, 'extension' or 'reference', got {backend!r}")
    if backend == "extension" and not has_kernel(op, device.type):
        if _extension is None:
            why = f"the extension pytal._C is not built or failed to load ({_load_error})"
        else:
            why = f"pytal._C was built without a {device.type} kernel for it"
        raise RuntimeError(f"pytal.ops.{op}: backend='extension' was asked for, but {why}")
    return backend


def _in_extension(op: str) -> bool:
    """True when the loaded extension defines ``pytal::<op>``. A loaded extension without it
    was built from older sources: warn, and let the op run on its reference."""
    if _extension is None:
        return False
    if hasattr(torch.ops.pytal, op):
        return True
    warnings.warn(f"pytal._C has no operator pytal::{op}: it was built from older sources; "
                  "rebuild it (pip install --no-build-isolation -e .). Until then "
                  f"pytal.ops.{op} runs on its reference.", RuntimeWarning, stacklevel=3)
    return False


def register_fake(op: str) -> Callable[[Callable], Callable]:
    """Decorator: the fake (meta) kernel of ``pytal::<op>``, registered when the extension
    defines the op (so ``torch.compile`` and ``opcheck`` can trace it); a no-op otherwise."""

    def decorator(fn: Callable) -> Callable:
        if _in_extension(op):
            torch.library.register_fake(f"pytal::{op}")(fn)
        return fn

    return decorator


def register_autograd(op: str, backward: Callable, *,
                      setup_context: Optional[Callable] = None) -> None:
    """``torch.library.register_autograd`` for ``pytal::<op>`` when the extension is loaded.

    The reference path is plain PyTorch and differentiates by itself; this makes the
    extension's op differentiable too (backward usually calls the op's backward kernel).
    """
    if _in_extension(op):
        torch.library.register_autograd(f"pytal::{op}", backward, setup_context=setup_context)


def backend_info() -> dict:
    """What was built and what can run here.

    Returns a dict with ``extension`` (pytal._C loaded), ``cpu`` / ``cuda`` (kernels of those
    devices compiled in), ``cuda_arch`` (architectures the CUDA kernels were compiled for),
    ``ops`` (op name -> devices with a kernel), ``torch`` (version), ``torch_cuda`` (the CUDA
    version torch was built with), ``cuda_available`` (a GPU is usable now), ``compiler`` and
    ``load_error`` (why the extension is missing, or None).
    """
    built = _extension.build_info() if _extension is not None else {}
    ops = {}
    if _extension is not None:
        for name in _registered_ops():
            ops[name] = [d for d in ("cpu", "cuda") if has_kernel(name, d)]
    return {
        "extension": _extension is not None,
        "cpu": bool(built.get("cpu", False)),
        "cuda": bool(built.get("cuda", False)),
        "cuda_arch": [a for a in built.get("cuda_arch_list", "").split(";") if a],
        "ops": ops,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "compiler": built.get("compiler"),
        "load_error": _load_error,
    }


def _registered_ops() -> list[str]:
    names = []
    for schema in torch._C._jit_get_all_schemas():
        if schema.name.startswith("pytal::"):
            names.append(schema.name.split("::", 1)[1])
    return sorted(set(names))
