"""The options of ``pytal bench`` (= ``python -m benchmarks.end_to_end``), apart from
:mod:`pytal.bench` so that building the ``pytal`` command's parser does not import torch
(``pytal eval`` never needs it)."""
from __future__ import annotations

import argparse

#: 25th, 50th and 75th percentiles of the lengths of the 210 THUMOS14 test videos in I3D
#: feature steps (duration x fps / 4, from the THUMOS14 annotation file; the
#: 10th and 90th are 357 and 3099, the mean 1589).
THUMOS14_TEST_LENGTHS = (715, 1212, 1719)


def lengths(text: str) -> list[int]:
    """``"715,1212"`` -> ``[715, 1212]`` (argparse type: positive integers)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive lengths, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pytal bench`` and ``python -m benchmarks.end_to_end``."""
    parser.add_argument("--config", default="cltdr_gmg_thumos", metavar="NAME_OR_YAML",
                        help="detector config (default %(default)s: I3D 2048-d, the THUMOS14 "
                             "model; cltdr_gmg_small: 512-d, quick)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="default: cuda when a GPU is usable, else cpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per backend (%(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (%(default)s)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--train-length", type=int, metavar="T",
                        help="feature steps of the training videos (default dataset.max_seq_len)")
    parser.add_argument("--infer-lengths", type=lengths, metavar="T1,T2,...",
                        default=list(THUMOS14_TEST_LENGTHS),
                        help="feature steps of the inference videos (default: THUMOS14 test "
                             "quartiles %(default)s)")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", metavar="OUT", help="also write the result dict to OUT (atomic)")
