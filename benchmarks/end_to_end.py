"""End-to-end benchmark of CLTDR-GMG: training step and inference per video at THUMOS14 shapes,
every pytal op on the extension vs on its reference, in one run. A thin entry point: the
logic lives in :mod:`pytal.bench` so that the installed ``pytal bench`` command has it too.

    python -m benchmarks.end_to_end --device cpu --threads 1 --repeats 3
    python -m benchmarks.end_to_end --config cltdr_gmg_small --repeats 2      # quick
    pytal bench --json e2e.json                                               # same options
"""
from __future__ import annotations

import sys

from pytal.bench import main

if __name__ == "__main__":
    sys.exit(main())
