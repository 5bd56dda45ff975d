"""Loading of the compiled extension ``pytal._C`` and the choice of backend for each call.

Every op in ``pytal.ops`` runs the extension's kernel for the inputs' device when the
extension has one, else its pure-PyTorch reference. ``backend="reference"`` or
``backend="extension"`` forces one; forcing the extension where it has no kernel raises
(it never falls back silently). ``with force_backend("reference"):`` does the same for every
op call inside the block that passes no ``backend=`` of its own (e.g. the ops a model calls),
which is how the end-to-end benchmark runs a whole detector on one backend.

The choice is compile-safe for every op: which kernels the extension registered is read once,
when this module loads (registrations do not change afterwards), so ``choose_backend`` is plain
Python on constants that ``torch.compile`` traces without a graph break, and this module never
imports ``torch._dynamo``.
"""
from __future__ import annotations

import contextlib
import importlib
import warnings
from typing import Any, Callable, Iterator, Optional

import torch

BACKENDS = ("extension", "reference")

_extension: Any = None
_load_error: Optional[str] = None
_forced: Optional[str] = None          # set by force_backend(); None = automatic
try:
    _extension = importlib.import_module("pytal._C")
except ImportError as exc:  # no compiler at install time, or a broken build
    _load_error = f"{type(exc).__name__}: {exc}"

_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def _read_kernels() -> frozenset[tuple[str, str]]:
    """(op, device type) of every kernel the loaded extension registered."""
    if _extension is None:
        return frozenset()
    found = set()
    for device_type, key in _DISPATCH_KEYS.items():
        for name in torch._C._dispatch_get_registrations_for_dispatch_key(key):
            if name.startswith("pytal::"):
                found.add((name.split("::", 1)[1], device_type))
    return frozenset(found)


_KERNELS = _read_kernels()


def extension_loaded() -> bool:
    """True when ``pytal._C`` was imported (its operators are registered)."""
    return _extension is not None


def has_kernel(op: str, device_type: str) -> bool:
    """True when the extension registered a kernel of ``pytal::<op>`` for ``device_type``."""
    return _extension is not None and (op, device_type) in _KERNELS


def choose_backend(op: str, device: torch.device, backend: Optional[str]) -> str:
    """The backend that runs ``op`` on ``device``: ``"extension"`` or ``"reference"``.

    Precedence: the call's ``backend`` argument, then the one set by :func:`force_backend`,
    then automatic (the extension when it has a kernel of ``op`` for ``device.type``).
    Raises ValueError for an unknown name and RuntimeError when ``backend="extension"`` is
    asked for (by argument or by ``force_backend``) but the extension has no kernel of ``op``
    for that device.
    """
    if backend is None:
        backend = _forced
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


@contextlib.contextmanager
def force_backend(backend: Optional[str]) -> Iterator[None]:
    """Context manager: every pytal op called inside the block without a ``backend=``
    argument runs on ``backend`` (``"extension"``, ``"reference"``, or None for automatic).

    An explicit ``backend=`` argument still wins. Forcing ``"extension"`` raises at the first
    op that has no kernel for its device, as ``backend="extension"`` does. The setting is
    process-wide (not per thread) and restored on exit, also on error; blocks nest. Under
    ``torch.compile`` the backend is read at trace time; the compiled code guards on it.
    """
    global _forced
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"force_backend: backend must be None, 'extension' or 'reference', "
                         f"got {backend!r}")
    previous, _forced = _forced, backend
    try:
        yield
    finally:
        _forced = previous


def forced_backend() -> Optional[str]:
    """The backend set by the innermost active :func:`force_backend` block, or None."""
    return _forced


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
    version torch was built with), ``cuda_available`` (a GPU is usable now), ``compiler``,
    ``load_error`` (why the extension is missing, or None) and ``json_tables`` (the torch-free
    module ``pytal._tables`` that evaluation parses JSON with was built and loads).
    """
    from pytal.io import json_tables

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
        "json_tables": json_tables.built(),
    }


def _registered_ops() -> list[str]:
    names = []
    for schema in torch._C._jit_get_all_schemas():
        if schema.name.startswith("pytal::"):
            names.append(schema.name.split("::", 1)[1])
    return sorted(set(names))
