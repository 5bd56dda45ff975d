"""SeqAttNet end to end: a training step and inference per video (heads, candidates, error
estimation and classification, Soft-NMS, seconds) with every pytal op on the extension vs on
its pure-PyTorch reference, in one run; random weights and random features.

    python -m benchmarks.seqattnet                          # seqattnet_small, T = 100
    python -m benchmarks.seqattnet --config seqattnet_anet  # the paper's model (5.75M)

A thin entry point to :func:`pytal.bench.main` with SeqAttNet's defaults: the
ActivityNet-style inputs are resized to T = 100 inside the model, so the inference lengths
(default 100 and 225, about the mean ActivityNet video at 16 frames per feature and 30 fps)
only change the resizing. Every other option of ``pytal bench`` applies.
"""
from __future__ import annotations

import sys

from pytal.bench import main

DEFAULTS = ["--config", "seqattnet_small", "--infer-lengths", "100,225"]


def run(argv: list[str]) -> int:
    """``pytal bench`` with SeqAttNet's defaults; options in ``argv`` override them."""
    given = {a.split("=")[0] for a in argv if a.startswith("--")}
    defaults = [x for flag, value in zip(DEFAULTS[::2], DEFAULTS[1::2])
                if flag not in given for x in (flag, value)]
    return main(defaults + argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
