"""The one definition of how the extension module ``pytal._C`` is built.

``setup.py`` imports this module; ``CMakeLists.txt`` runs it (``python build_config.py
--cmake``) and reads the same sources, flags and paths, so the two builds cannot drift.

Rules:
  * CPU sources: ``csrc/*.cpp`` and ``csrc/<op>/*.cpp`` except ``*_cuda_host.cpp`` (always built).
  * ``csrc/tables/*.cpp`` is a second, torch-free module, ``pytal._tables`` (plain CPython API):
    the JSON walkers of evaluation, which must not make ``pytal.evaluation`` import torch.
  * CUDA sources: ``csrc/<op>/*.cu`` (kernels, compiled by nvcc) and ``csrc/<op>/*_cuda_host.cpp``
    (tensor handling and ``TORCH_LIBRARY_IMPL(pytal, CUDA, m)``, compiled by the host compiler),
    built when nvcc is found and ``PYTAL_CUDA`` is not ``0``.
  * ``.cu`` files never include torch headers: they expose plain launch functions, and all
    tensor handling lives in ``.cpp`` files compiled by the host compiler (fast nvcc builds).
  * CUDA architectures: ``TORCH_CUDA_ARCH_LIST`` when set, else ``DEFAULT_CUDA_ARCHS`` (the
    build machines have no GPU to detect one from).
  * cuFFT and friends: the CUDA toolkit on the build machines lacks their headers; the
    ``nvidia-*`` wheels that torch depends on carry them under ``site-packages/nvidia/cu*/``.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(ROOT, "csrc")
TABLES = os.path.join(CSRC, "tables")

DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"

CXX_FLAGS = ["-O3", "-fopenmp", "-Wall", "-Wno-unused-function"]
# IEEE float arithmetic like the CPU build: no fast math (approximate expf / division, flushed
# subnormals) and no fused multiply-add contraction, which the host compiler does not do for
# the baseline x86-64 target either. What still differs from the CPU (expf / logf / exp within
# 1-2 ulp of glibc's) is listed with its tolerance in docs/cuda.md.
NVCC_FLAGS = ["-O3", "--fmad=false", "--ftz=false", "--prec-div=true", "--prec-sqrt=true",
              "-lineinfo", "--expt-relaxed-constexpr"]
LINK_FLAGS = ["-fopenmp"]
# Libraries the CUDA kernels call directly, as sonames: the nvidia wheels ship no unversioned
# ``libcufft.so`` link, so ``-lcufft`` would not resolve.
CUDA_LIBRARIES = ["cufft"]


def _rel(paths: list[str]) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in paths)


def _all_cpp() -> list[str]:
    """The sources of ``pytal._C`` (every ``.cpp`` under csrc/ but those of ``pytal._tables``)."""
    found = glob.glob(os.path.join(CSRC, "*.cpp")) + glob.glob(os.path.join(CSRC, "*", "*.cpp"))
    return [p for p in found if os.path.dirname(p) != TABLES]


def cpu_sources() -> list[str]:
    """Sources of every build, relative to the repository root."""
    return _rel([p for p in _all_cpp() if not p.endswith("_cuda_host.cpp")])


def cuda_sources() -> list[str]:
    """Sources of the CUDA build only (``.cu`` kernels and their ``*_cuda_host.cpp`` hosts)."""
    return _rel([p for p in _all_cpp() if p.endswith("_cuda_host.cpp")]
                + glob.glob(os.path.join(CSRC, "*", "*.cu")))


def tables_sources() -> list[str]:
    """Sources of ``pytal._tables`` (no torch, no CUDA), relative to the repository root."""
    return _rel(glob.glob(os.path.join(TABLES, "*.cpp")))


TABLES_CXX_FLAGS = ["-O3", "-Wall"]


def find_nvcc() -> str | None:
    """Path of nvcc, from CUDA_HOME / CUDA_PATH, /usr/local/cuda or PATH; None if absent."""
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def cuda_home() -> str | None:
    """The CUDA toolkit root: the directory above nvcc's real ``bin/`` (links resolved)."""
    nvcc = find_nvcc()
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None


def cuda_requested() -> bool:
    """False when the user turned CUDA off with ``PYTAL_CUDA=0``."""
    return os.environ.get("PYTAL_CUDA", "1").strip().lower() not in ("0", "false", "off", "no")


def with_cuda() -> bool:
    return cuda_requested() and find_nvcc() is not None and bool(cuda_sources())


def cuda_arch_list() -> str:
    return os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip() or DEFAULT_CUDA_ARCHS


def nvidia_wheel_dirs() -> tuple[list[str], list[str]]:
    """(include dirs, library dirs) of the ``nvidia`` CUDA wheels installed beside torch."""
    includes, libs = [], []
    for entry in sys.path:
        for root in sorted(glob.glob(os.path.join(entry, "nvidia", "cu[0-9]*"))):
            if os.path.isdir(os.path.join(root, "include")):
                includes.append(os.path.join(root, "include"))
            if os.path.isdir(os.path.join(root, "lib")):
                libs.append(os.path.join(root, "lib"))
    # de-duplicate, keep order
    return list(dict.fromkeys(includes)), list(dict.fromkeys(libs))


def cuda_link_args(library_dirs: list[str]) -> list[str]:
    """Linker arguments for CUDA_LIBRARIES, by soname when only a versioned file exists."""
    args = []
    for name in CUDA_LIBRARIES:
        found = None
        for d in library_dirs:
            exact = os.path.join(d, f"lib{name}.so")
            versioned = sorted(glob.glob(os.path.join(d, f"lib{name}.so.*")))
            if os.path.exists(exact):
                found = f"-l{name}"
            elif versioned:
                found = f"-l:{os.path.basename(versioned[0])}"
            if found:
                args += [f"-L{d}", f"-Wl,-rpath,{d}", found]
                break
        if found is None:
            args.append(f"-l{name}")  # let the toolkit's own library path resolve it
    return args


def define_macros(cuda: bool) -> list[tuple[str, str]]:
    macros = [("PYTAL_CUDA_ARCHS", f'"{cuda_arch_list() if cuda else ""}"')]
    if cuda:
        macros.append(("PYTAL_WITH_CUDA", "1"))
    return macros


def _cmake_list(items: list[str]) -> str:
    return "|".join(items)


def nvrtc_library(library_dirs: list[str]) -> str:
    """libnvrtc from the nvidia wheels (torch's CMake config asks for it), or ''."""
    for d in library_dirs:
        found = sorted(glob.glob(os.path.join(d, "libnvrtc.so*")))
        if found:
            return found[0]
    return ""


def print_cmake() -> None:
    """Print ``KEY=value`` lines for CMakeLists.txt; lists are joined by '|' (CMake's ';'
    would split the lines)."""
    includes, libs = nvidia_wheel_dirs()
    cuda = with_cuda()
    lines = {
        "PYTAL_CUDA_HOME": cuda_home() or "",
        "PYTAL_NVRTC_LIBRARY": nvrtc_library(libs),
        "PYTAL_CUDA_ARCHS_STRING": cuda_arch_list() if cuda else "",
        "PYTAL_CPU_SOURCES": _cmake_list(cpu_sources()),
        "PYTAL_CUDA_SOURCES": _cmake_list(cuda_sources() if cuda else []),
        "PYTAL_TABLES_SOURCES": _cmake_list(tables_sources()),
        "PYTAL_TABLES_CXX_FLAGS": _cmake_list(TABLES_CXX_FLAGS),
        "PYTAL_WITH_CUDA": "ON" if cuda else "OFF",
        "PYTAL_CUDA_ARCHS": _cmake_list(cuda_arch_list().split(";")),
        "PYTAL_CXX_FLAGS": _cmake_list(CXX_FLAGS),
        "PYTAL_NVCC_FLAGS": _cmake_list(NVCC_FLAGS),
        "PYTAL_LINK_FLAGS": _cmake_list(LINK_FLAGS + (cuda_link_args(libs) if cuda else [])),
        "PYTAL_EXTRA_INCLUDES": _cmake_list(includes if cuda else []),
        "PYTAL_NVCC": find_nvcc() or "",
    }
    for key, value in lines.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--cmake"]:
        print_cmake()
    else:
        sys.exit("usage: python build_config.py --cmake")
