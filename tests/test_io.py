"""pytal.io: atomic writes, JSON, and that the layer stays torch-free."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytal.io import atomic_write, read_json, write_json


def test_atomic_write_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})

    def fail(f):
        f.write('{"half": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail)
    assert read_json(path)[0] == {"a": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    fresh, kept = tmp_path / "fresh.txt", tmp_path / "kept.txt"
    kept.write_text("old")
    os.chmod(kept, 0o640)
    umask = os.umask(0o022)
    try:
        atomic_write(fresh, lambda f: f.write("x"))
        atomic_write(kept, lambda f: f.write("new"))
    finally:
        os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o644
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new"


def test_read_json_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*nope.json"):
        read_json(tmp_path / "nope.json", what="annotation")


def test_importing_io_leaves_torch_unimported():
    code = "import sys, pytal.io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
