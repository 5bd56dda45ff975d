"""The ``pytal`` command line.

Each subcommand is a pair of functions: ``add_<name>_parser(subparsers)`` declares its
arguments and sets ``handler`` to ``run_<name>(args) -> int``. To add one (train, infer, demo,
bench), write that pair and list the first in :data:`SUBCOMMANDS`.

Errors a user can fix (missing file, malformed JSON, unknown subset, ...) are printed as
``pytal <command>: error: ...`` with exit status 1; usage errors exit with 2 (argparse).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Callable, Optional, Sequence

import pytal


class CommandError(Exception):
    """An error to report to the user without a traceback."""


# --------------------------------------------------------------------------------------- eval

def add_eval_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="detection mAP of a detections file (ActivityNet protocol)",
        description="Detection mAP of an ActivityNet-style submission against ground truth, "
                    "with the official ActivityNet protocol (pytal.evaluation.evaluate).")
    parser.add_argument("--gt", metavar="GT.json", help="ground-truth annotation file")
    parser.add_argument("--pred", metavar="DETECTIONS.json",
                        help='detections: {"results": {video_id: [{"label", "score", "segment"}]}}')
    parser.add_argument("--subset", help="ground-truth subset to evaluate on (e.g. test, validation)")
    parser.add_argument("--tiou", default="0.3:0.7:0.1", metavar="SPEC",
                        help="tIoU thresholds: start:stop:step, comma-separated values, or a preset "
                             "(thumos14 = 0.3:0.7:0.1, activitynet = 0.5:0.95:0.05); default %(default)s")
    parser.add_argument("--json", metavar="OUT", help="also write the result dict to OUT")
    parser.add_argument("--unknown-videos", choices=("false_positive", "ignore"),
                        default="false_positive",
                        help="detections of videos outside the subset: false positives (official "
                             "behaviour, default) or ignored")
    parser.add_argument("--per-class", action="store_true", help="also print the AP of every class")
    parser.add_argument("--ckpt", metavar="CKPT",
                        help="evaluate a trained model on its config's validation subset "
                             "(not available yet)")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    if args.ckpt is not None:
        raise CommandError("--ckpt is not available yet (it needs the training engine); "
                           "evaluate a detections file with --gt GT.json --pred DETECTIONS.json "
                           "--subset SUBSET")
    missing = [flag for flag, value in (("--gt", args.gt), ("--pred", args.pred),
                                        ("--subset", args.subset)) if value is None]
    if missing:
        raise CommandError(f"missing {', '.join(missing)} (usage: pytal eval --gt GT.json "
                           "--pred DETECTIONS.json --subset SUBSET [--tiou 0.3:0.7:0.1] [--json OUT])")
    from pytal.data.jsonio import write_json
    from pytal.evaluation import evaluate, parse_tiou_thresholds

    thresholds = parse_tiou_thresholds(args.tiou)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(args.gt, args.pred, subset=args.subset, tiou_thresholds=thresholds,
                          unknown_videos=args.unknown_videos)
    for warning in caught:
        print(f"pytal eval: warning: {warning.message}", file=sys.stderr)
    print(format_result(result, title=f"{args.pred} vs {args.gt} (subset {args.subset!r})",
                        per_class=args.per_class))
    if args.json:
        write_json(args.json, result, indent=2)
    return 0


def format_result(result: dict, *, title: str = "", per_class: bool = False) -> str:
    """A readable table of an :func:`~pytal.evaluation.evaluate` result (mAP in %)."""
    lines = [title] if title else []
    lines.append(f"  {'tIoU':>6}  {'mAP (%)':>8}")
    for tiou, m_ap in zip(result["tiou_thresholds"], result["mAP"]):
        lines.append(f"  {tiou:>6.2f}  {100 * m_ap:>8.2f}")
    lines.append(f"  {'avg':>6}  {100 * result['average_mAP']:>8.2f}")
    if per_class:
        width = max(len(label) for label in result["per_class_ap"])
        lines.append("")
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{t:>6.2f}" for t in result["tiou_thresholds"]))
        for label, aps in result["per_class_ap"].items():
            lines.append(f"  {label:<{width}}  " + "  ".join(f"{100 * a:>6.2f}" for a in aps))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ driver

#: Builders of the subcommands, in the order ``pytal --help`` lists them.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_eval_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytal", description="Temporal action localization with fused operators.")
    parser.add_argument("--version", action="version", version=f"pytal {pytal.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``pytal ARGS``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (CommandError, FileNotFoundError, ValueError, json.JSONDecodeError) as err:
        print(f"pytal {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
