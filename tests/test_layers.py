"""The package's layers hold: every import inside ``pytal`` goes downward, and no CUDA source
reaches a torch header.

Order (each layer imports only layers below it)::

    cli -> engine -> config -> models -> nn | data | evaluation | postprocess | visualize | video
        -> ops | backbones -> io | compiled modules (pytal._C, pytal._tables)

``nn``, ``data``, ``evaluation``, ``postprocess``, ``visualize`` and ``video`` stand side by
side and do not import each other, nor do ``ops`` and ``backbones``; ``pytal.ops.reference`` (the ops' specification) imports nothing of
pytal but itself; ``pytal.io`` imports no torch. Imports are read from the source with ``ast``,
including those inside functions, so a lazy import is an edge like any other.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytal"
CSRC = ROOT / "csrc"

#: Layer groups: name -> (rank, module prefixes). A higher rank imports a lower one; modules of
#: one group import each other; groups of one rank stand side by side and do not.
GROUPS = {
    "cli": (7, ("pytal.cli", "pytal.__main__", "pytal.demo", "pytal.bench", "pytal.bench_options",
                "pytal.bench_harness", "pytal.video_commands", "pytal.video_infer")),
    "engine": (6, ("pytal.engine",)),
    "config": (5, ("pytal.config",)),
    "models": (4, ("pytal.models",)),
    "nn": (3, ("pytal.nn",)),
    "data": (3, ("pytal.data",)),
    "evaluation": (3, ("pytal.evaluation",)),
    "postprocess": (3, ("pytal.postprocess",)),
    "visualize": (3, ("pytal.visualize",)),
    "video": (3, ("pytal.video",)),
    "ops": (2, ("pytal.ops",)),
    "backbones": (2, ("pytal.backbones",)),
    "io": (1, ("pytal.io",)),
    "compiled": (0, ("pytal._C", "pytal._tables")),
}

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from ... import`` (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import statement of the file, at any depth.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module (a
    source file or a compiled module), else of ``pkg``.
    """
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, path, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node.lineno


def compiled_modules() -> set[str]:
    names = set()
    for p in PACKAGE.glob("*.so"):
        names.add("pytal." + p.name.split(".")[0])
    return names | {"pytal._C", "pytal._tables"}


def layer_of(module: str) -> tuple[Optional[str], Optional[int]]:
    """``(group, rank)`` of ``module`` in ``GROUPS`` (``(None, None)`` when it has none)."""
    for group, (rank, prefixes) in GROUPS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return group, rank
    return None, None


def violation(source: str, target: str) -> Optional[str]:
    """Why ``source`` may not import ``target`` (both inside pytal), or None."""
    if source.startswith("pytal.ops.reference"):
        if target.startswith("pytal.ops.reference"):
            return None
        return "pytal.ops.reference imports nothing of pytal but itself"
    if target == "pytal":
        return None                               # the root package imports nothing eagerly
    src_group, src_rank = layer_of(source)
    dst_group, dst_rank = layer_of(target)
    if src_rank is None:
        return f"{source} has no layer in tests/test_layers.py GROUPS"
    if dst_rank is None:
        return f"{target} has no layer in tests/test_layers.py GROUPS"
    if src_rank > dst_rank or src_group == dst_group:
        return None
    if src_rank == dst_rank:
        return f"{src_group} and {dst_group} stand side by side and may not import each other"
    return f"{src_group} (layer {src_rank}) may not import {dst_group} (layer {dst_rank})"


def edges() -> list[tuple[str, str, str, int]]:
    """``(source module, target module, file, line)`` of every import of a pytal module."""
    found = modules()
    known = set(found) | compiled_modules()
    out = []
    for module, path in found.items():
        for target, line in imports(module, path, known):
            if target == "pytal" or target.startswith("pytal."):
                out.append((module, target, str(path.relative_to(ROOT)), line))
    return out


def test_every_module_has_a_layer():
    missing = [m for m in modules() if m != "pytal" and layer_of(m)[1] is None]
    assert not missing, f"modules without a layer in GROUPS: {missing}"


def test_imports_go_downward():
    bad = []
    for source, target, where, line in edges():
        why = violation(source, target)
        if why is None:
            continue
        bad.append(f"{where}:{line}: {source} -> {target}: {why}")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_io_imports_no_torch():
    bad = [f"{where}:{line}: {source} imports {target}"
           for source, path in modules().items() if source.startswith("pytal.io")
           for target, line in imports(source, path, set(modules()))
           for where in [str(path.relative_to(ROOT))]
           if target == "torch" or target.startswith("torch.")]
    assert not bad, "pytal.io must stay torch-free:\n" + "\n".join(bad)


@pytest.mark.parametrize("source, target, expected", [
    ("pytal.ops._backend", "pytal.data.annotations", "layer 2"),
    ("pytal.evaluation.detection", "pytal.data", "side by side"),
    ("pytal.ops.reference.gmg", "pytal.ops._checks", "imports nothing of pytal"),
    ("pytal.config", "pytal.engine", "layer 5"),
    ("pytal.io.jsonio", "pytal.ops", "layer 1"),
    ("pytal.ops.gmg", "pytal.nn.norm", "layer 2"),
])
def test_the_checker_names_a_bad_edge(source, target, expected):
    why = violation(source, target)
    assert why is not None and expected in why, why


@pytest.mark.parametrize("source, target", [
    ("pytal.cli", "pytal.engine"), ("pytal.models.cltdr_gmg.model", "pytal.ops"),
    ("pytal.data.dataset", "pytal.io.annotations"), ("pytal.ops._backend", "pytal.io"),
    ("pytal.ops.gmg", "pytal.ops.reference"), ("pytal.io.annotations", "pytal.io.jsonio"),
    ("pytal.ops.reference.trident_decode", "pytal.ops.reference"),
])
def test_the_checker_allows_a_downward_edge(source, target):
    assert violation(source, target) is None


def test_imports_inside_functions_are_read(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from pytal.engine import Trainer\n")
    assert ("pytal.engine", 2) in list(imports("pytal.ops.m", path, set()))


# ---------------------------------------------------------------------------------------------
# CUDA sources: a .cu file is compiled by nvcc without torch's headers, so it may reach only
# plain C++/CUDA headers through its #include "..." chain.

_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)
_TORCH_HEADER = re.compile(r"^(torch|ATen|c10|caffe2)/")


def torch_includes(path: Path, root: Path = CSRC, chain: tuple[str, ...] = (),
                   seen: Optional[set] = None) -> list[str]:
    """Include chains from ``path`` that end in a torch / ATen / c10 header (quoted includes
    are looked up beside the file, then under ``root``, as the build's include path does)."""
    seen = set() if seen is None else seen
    chain = chain + (str(path.relative_to(root)),)
    found = []
    for kind, name in _INCLUDE.findall(path.read_text(encoding="utf-8")):
        if _TORCH_HEADER.match(name):
            found.append(" -> ".join(chain + (name,)))
            continue
        if kind != '"':
            continue
        target = next((p for p in (path.parent / name, root / name) if p.is_file()), None)
        if target is None:
            found.append(" -> ".join(chain + (f"{name} (not found under csrc/)",)))
        elif target.resolve() not in seen:
            seen.add(target.resolve())
            found += torch_includes(target, root, chain, seen)
    return found


def test_cuda_sources_reach_no_torch_header():
    sources = sorted(CSRC.rglob("*.cu"))
    assert sources, "no .cu file found under csrc/"
    bad = [c for p in sources for c in torch_includes(p)]
    assert not bad, "CUDA sources reaching torch headers:\n" + "\n".join(bad)


def test_the_include_check_follows_chains(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "k.cu").write_text('#include "a/k.h"\n')
    (tmp_path / "a" / "k.h").write_text('#include <cuda_runtime.h>\n#include "common/x.h"\n')
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "x.h").write_text("#include <ATen/ATen.h>\n")
    (tmp_path / "a" / "ok.cu").write_text('#include "k2.h"\n')
    (tmp_path / "a" / "k2.h").write_text("#include <cuda_fp16.h>\n")
    assert torch_includes(tmp_path / "a" / "ok.cu", tmp_path) == []
    chains = torch_includes(tmp_path / "a" / "k.cu", tmp_path)
    assert chains == ["a/k.cu -> a/k.h -> common/x.h -> ATen/ATen.h"]
