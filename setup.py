"""Build and install pytal.

Install torch first, then build without isolation (an isolated build would download torch
again)::

    pip install torch==2.14.1
    pip install --no-build-isolation -e .

What is compiled, and how, is defined once in ``build_config.py`` (also read by CMakeLists.txt).
``PYTAL_CUDA=0`` builds the CPU kernels only; ``TORCH_CUDA_ARCH_LIST`` picks CUDA architectures.
"""
from __future__ import annotations

import os
import sys

from setuptools import Extension, find_packages, setup

# PEP 517 backends do not put the project directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_config  # noqa: E402

# torch's cpp_extension guesses CUDA_HOME from `which nvcc`, which is wrong when nvcc is a
# link in /usr/local/bin; give it the real toolkit root before it is imported.
if build_config.cuda_home() and not os.environ.get("CUDA_HOME"):
    os.environ["CUDA_HOME"] = build_config.cuda_home()

try:
    import torch  # noqa: F401
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
except ImportError as exc:  # pragma: no cover - a build without torch cannot work
    raise SystemExit(
        "pytal's build needs torch installed first: `pip install torch==2.14.1`, then "
        "`pip install --no-build-isolation -e .`"
    ) from exc


def extension():
    cuda = build_config.with_cuda()
    sources = build_config.cpu_sources()
    kwargs = dict(
        name="pytal._C",
        include_dirs=[os.path.join(build_config.ROOT, "csrc")],
        define_macros=build_config.define_macros(cuda),
        extra_compile_args={"cxx": list(build_config.CXX_FLAGS)},
        extra_link_args=list(build_config.LINK_FLAGS),
        py_limited_api=False,
    )
    if not cuda:
        return CppExtension(sources=sources, **kwargs)
    # cpp_extension reads the architecture list from the environment.
    os.environ["TORCH_CUDA_ARCH_LIST"] = build_config.cuda_arch_list()
    includes, libs = build_config.nvidia_wheel_dirs()
    kwargs["include_dirs"] += includes
    kwargs["extra_compile_args"]["nvcc"] = list(build_config.NVCC_FLAGS)
    kwargs["extra_link_args"] += build_config.cuda_link_args(libs)
    return CUDAExtension(sources=sources + build_config.cuda_sources(), **kwargs)


def tables_extension():
    """pytal._tables: plain CPython API, no torch (see build_config)."""
    return Extension("pytal._tables", sources=build_config.tables_sources(), language="c++",
                     include_dirs=[os.path.join(build_config.ROOT, "csrc")],
                     extra_compile_args={"cxx": list(build_config.TABLES_CXX_FLAGS)})


# ``pytal[video]``: decoding (PyAV ships FFmpeg in its wheels) and torchvision's video
# backbones for ``pytal extract`` / ``pytal infer VIDEO``. torchvision must match the torch pytal
# is built against (0.29 <-> torch 2.14); unpinned, pip would upgrade torch to fit a newer one.
VIDEO_REQUIRES = ["av>=14", "torchvision>=0.29.1,<0.30"]

setup(
    name="pytal",
    version="0.1.0",
    description="Temporal action localization in PyTorch with fused C++/CUDA operators",
    packages=find_packages(include=["pytal", "pytal.*"]),
    package_data={"pytal": ["configs/*.yaml", "resources/*"]},
    python_requires=">=3.10",
    install_requires=["torch", "numpy", "pyyaml", "tqdm", "matplotlib"],
    extras_require={"video": VIDEO_REQUIRES,
                    "test": ["pytest", "pytest-benchmark", "hypothesis"] + VIDEO_REQUIRES},
    entry_points={"console_scripts": ["pytal = pytal.cli:main"]},
    ext_modules=[extension(), tables_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
