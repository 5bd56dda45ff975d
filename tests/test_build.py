"""The build definition: build_config.py is what setup.py and CMakeLists.txt both read."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import build_config  # noqa: E402


def test_sources_follow_the_layout_rules():
    cpu, cuda = build_config.cpu_sources(), build_config.cuda_sources()
    tables = build_config.tables_sources()
    assert "csrc/ops.cpp" in cpu and "csrc/module.cpp" in cpu
    assert not set(cpu) & set(cuda)
    # pytal._tables has its own folder and no torch: none of its sources go into pytal._C
    assert tables and all(s.startswith("csrc/tables/") for s in tables)
    assert not set(tables) & (set(cpu) | set(cuda))
    for source in glob.glob(os.path.join(ROOT, "csrc", "tables", "*")):
        with open(source, encoding="utf-8") as f:
            includes = [line for line in f if line.startswith("#include")]
        assert not [i for i in includes if re.search(r"torch|ATen|c10", i)], source
    assert all(s.endswith(".cu") or s.endswith("_cuda_host.cpp") for s in cuda)
    # every op folder shares its math through <op>/<op>.h
    for folder in {os.path.dirname(s) for s in cpu + cuda} - {"csrc"}:
        op = os.path.basename(folder)
        assert os.path.exists(os.path.join(ROOT, folder, f"{op}.h")), f"{folder}/{op}.h missing"
    # a .cu and a .cpp must not share a basename (they would compile to the same object)
    stems = [os.path.splitext(s)[0] for s in cpu + cuda]
    assert len(stems) == len(set(stems))


def test_cmake_reads_the_same_definition():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "build_config.py"), "--cmake"],
                         check=True, capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert values["PYTAL_CPU_SOURCES"].split("|") == build_config.cpu_sources()
    assert values["PYTAL_TABLES_SOURCES"].split("|") == build_config.tables_sources()
    assert values["PYTAL_CXX_FLAGS"].split("|") == build_config.CXX_FLAGS


def test_cuda_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("PYTAL_CUDA", "0")
    assert not build_config.with_cuda()


@pytest.mark.slow
def test_cmake_builds_the_cpu_module(tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not installed")
    build = tmp_path / "build"
    env = dict(os.environ, PYTAL_CUDA="0")
    subprocess.run([cmake, "-S", ROOT, "-B", str(build), f"-DPython_EXECUTABLE={sys.executable}",
                    f"-DPYTAL_OUTPUT_DIR={tmp_path}"], check=True, env=env, capture_output=True)
    subprocess.run([cmake, "--build", str(build)], check=True, env=env, capture_output=True)
    assert list(tmp_path.glob("_C*.so")) and list(tmp_path.glob("_tables*.so"))
