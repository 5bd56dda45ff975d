"""``python tests/pause_points.py ARGS``: run ``pytal ARGS`` with one deterministic pause, for
tests that SIGKILL the process there.

``PYTAL_TEST_PAUSE`` says where: ``step:N`` right after the N-th optimizer step of this
process, or ``checkpoint:N`` halfway through writing the N-th resumable checkpoint (one with
optimizer state): half of its bytes are written and flushed to the temporary file, then the
process pauses. On reaching the point it creates the file ``PYTAL_TEST_MARKER`` and sleeps.
"""
from __future__ import annotations

import io
import os
import sys
import time

import torch


def _pause() -> None:
    with open(os.environ["PYTAL_TEST_MARKER"], "w"):
        pass
    time.sleep(600)


def install(point: str) -> None:
    kind, _, number = point.partition(":")
    target, count = int(number), [0]

    def reached() -> bool:
        count[0] += 1
        return count[0] == target

    if kind == "step":
        from torch.optim.optimizer import register_optimizer_step_post_hook
        register_optimizer_step_post_hook(
            lambda *_: _pause() if reached() else None)
    elif kind == "checkpoint":
        save = torch.save

        def half_written_save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and "optimizer" in obj and reached():
                data = io.BytesIO()
                save(obj, data, *args, **kwargs)
                f.write(data.getvalue()[:len(data.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
                _pause()
            return save(obj, f, *args, **kwargs)

        torch.save = half_written_save
    else:
        raise SystemExit(f"PYTAL_TEST_PAUSE: expected step:N or checkpoint:N, got {point!r}")


if __name__ == "__main__":
    if os.environ.get("PYTAL_TEST_PAUSE"):
        install(os.environ["PYTAL_TEST_PAUSE"])
    from pytal.cli import main
    sys.exit(main(sys.argv[1:]))
