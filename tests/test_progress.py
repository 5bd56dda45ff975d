"""Progress bars draw on a terminal only; written to a file they leave nothing."""
from __future__ import annotations

import io
import sys

from pytal.engine.progress import bars_wanted, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not bars_wanted(True)
    assert list(progress_bar(range(50), progress=True, desc="x")) == list(range(50))
    assert sys.stderr.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert bars_wanted(True) and not bars_wanted(False)
    assert list(progress_bar(range(50), progress=True, desc="x", file=terminal)) == list(range(50))
    assert "\r" in terminal.getvalue()
