"""The ``pytal`` command line.

Each subcommand is a pair of functions: ``add_<name>_parser(subparsers)`` declares its
arguments and sets ``handler`` to ``run_<name>(args) -> int``. To add one (train, infer, demo,
bench), write that pair and list the first in :data:`SUBCOMMANDS`.

Errors a user can fix (missing, unreadable or malformed file, unknown subset, ...) are printed
as one line ``pytal <command>: error: ...`` naming the file, with exit status 1 and no traceback
(``PYTAL_DEBUG=1`` shows it); usage errors exit with 2 (argparse).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Callable, Optional, Sequence

import pytal


class CommandError(Exception):
    """An error to report to the user without a traceback."""


# ------------------------------------------------------------------------- shared options

def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser, default: Optional[int] = None) -> None:
    """``--threads N``: CPU threads for torch's intra-op parallelism, applied by :func:`main`
    before the subcommand runs (see :func:`apply_threads`). ``default``: None keeps torch's
    choice."""
    choice = "torch's choice" if default is None else str(default)
    parser.add_argument("--threads", type=_thread_count, metavar="N", default=default,
                        help=f"CPU threads torch may use (torch.set_num_threads; default: {choice}). "
                             "On a shared or small machine 1 can be many times faster")


def apply_threads(args: argparse.Namespace) -> None:
    """``torch.set_num_threads(args.threads)`` when the subcommand has ``--threads`` and it was
    given; otherwise torch's default stays."""
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE`` (repeatable): modules imported before the subcommand runs, e.g. one
    that registers a detector with ``pytal.models.register_model`` (installed packages can
    instead declare it in the ``pytal.models`` entry-point group)."""
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE",
                        help="import MODULE first (e.g. one registering a detector); repeatable")


def apply_imports(args: argparse.Namespace) -> None:
    """Import the ``--import`` modules of the subcommand, if any."""
    import importlib

    for name in getattr(args, "imports", None) or ():
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise CommandError(f"--import {name}: {err}") from None


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
    parser.add_argument("--tiou", default=None, metavar="SPEC",
                        help="tIoU thresholds: start:stop:step, comma-separated values, or a preset "
                             "(thumos14 = 0.3:0.7:0.1, activitynet = 0.5:0.95:0.05, epic = "
                             "0.1:0.5:0.1, multithumos = 0.1:0.9:0.1, hacs = 0.5:0.95:0.05). Default: with --ckpt the config's eval.tiou_thresholds; "
                             "with --gt the preset of --dataset, else of the GT file's name "
                             "(thumos14.json, activitynet13.json.gz, ...), else thumos14")
    parser.add_argument("--dataset", metavar="NAME",
                        help="--gt: the dataset whose tIoU preset to use (e.g. thumos14, "
                             "activitynet13, epic_kitchens)")
    parser.add_argument("--json", metavar="OUT", help="also write the result dict to OUT")
    parser.add_argument("--unknown-videos", choices=("false_positive", "ignore"),
                        default="false_positive",
                        help="detections of videos outside the subset: false positives (official "
                             "behaviour, default) or ignored")
    parser.add_argument("--per-class", action="store_true", help="also print the AP of every class")
    parser.add_argument("--ckpt", metavar="CKPT",
                        help="evaluate a trained model on its config's validation subset "
                             "(dataset.val_subset); a detector with a proposal stage also "
                             "gets its proposals' AR@100 and AUC")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for --ckpt (e.g. dataset.feature_dir=/x)")
    add_import_argument(parser)
    add_threads_argument(parser)
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    if args.ckpt is not None:
        return _eval_checkpoint(args)
    missing = [flag for flag, value in (("--gt", args.gt), ("--pred", args.pred),
                                        ("--subset", args.subset)) if value is None]
    if missing:
        raise CommandError(f"missing {', '.join(missing)} (usage: pytal eval --gt GT.json "
                           "--pred DETECTIONS.json --subset SUBSET [--tiou 0.3:0.7:0.1] [--json OUT])")
    from pytal.io.jsonio import write_json
    from pytal.evaluation import evaluate, parse_tiou_thresholds

    thresholds = parse_tiou_thresholds(args.tiou) if args.tiou is not None else \
        gt_tiou_thresholds(args.gt, args.dataset)
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


def gt_tiou_thresholds(gt: str, dataset: Optional[str]) -> list[float]:
    """``pytal eval --gt``'s thresholds without ``--tiou``: the preset of ``dataset``, else of
    the GT file's name, else THUMOS14's."""
    from pytal.evaluation.thresholds import THUMOS14_TIOU, dataset_tiou_thresholds

    if dataset is not None:
        preset = dataset_tiou_thresholds(dataset)
        if preset is None:
            raise CommandError(f"--dataset {dataset!r}: no tIoU preset for that name (thumos*, "
                               "multithumos*, activitynet* / anet*, epic*, hacs*); give --tiou")
        return list(preset)
    return list(dataset_tiou_thresholds(os.path.basename(gt)) or THUMOS14_TIOU)


def _eval_checkpoint(args: argparse.Namespace) -> int:
    from pytal.io.jsonio import write_json
    from pytal.engine import build_dataset, infer_with_config, load_model
    from pytal.evaluation import evaluate_model_detections, parse_tiou_thresholds

    model, cfg, names = load_model(args.ckpt, overrides=args.override)
    dataset = build_dataset(cfg, "val")
    detections = infer_with_config(model, dataset, cfg, names)
    subset = cfg.dataset.val_subset
    thresholds = parse_tiou_thresholds(args.tiou) if args.tiou is not None else \
        list(cfg.eval.tiou_thresholds)
    result = evaluate_model_detections(cfg.dataset.annotation_file, detections, subset=subset,
                                       tiou_thresholds=thresholds,
                                       label_space=cfg.dataset.label_space,
                                       class_agnostic=cfg.evaluates_class_agnostic)
    print(format_result(result, title=f"{args.ckpt} on subset {subset!r}",
                        per_class=args.per_class))
    if args.json:
        write_json(args.json, result, indent=2)
    return 0


def format_result(result: dict, *, title: str = "", per_class: bool = False) -> str:
    """A readable table of an :func:`~pytal.evaluation.evaluate` result (mAP in %), and the
    proposal metrics of :func:`~pytal.evaluation.evaluate_model_detections` when present."""
    lines = [title] if title else []
    if result.get("class_agnostic"):
        lines.append("  class-agnostic: labels ignored, every action is one class")
    lines.append(f"  {'tIoU':>6}  {'mAP (%)':>8}")
    for tiou, m_ap in zip(result["tiou_thresholds"], result["mAP"]):
        lines.append(f"  {tiou:>6.2f}  {100 * m_ap:>8.2f}")
    lines.append(f"  {'avg':>6}  {100 * result['average_mAP']:>8.2f}")
    for name, value in result.get("sub_averages", {}).items():
        lines.append(f"  {'avg ' + name:>6}  {100 * value:>8.2f}")
    for name, value in result.get("proposals", {}).items():
        lines.append(f"  proposals {name} (%): {100 * value:.2f}")
    if per_class:
        width = max(len(label) for label in result["per_class_ap"])
        lines.append("")
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{t:>6.2f}" for t in result["tiou_thresholds"]))
        for label, aps in result["per_class_ap"].items():
            lines.append(f"  {label:<{width}}  " + "  ".join(f"{100 * a:>6.2f}" for a in aps))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- train

def packaged_config_names() -> str:
    """The names of the configs shipped in ``pytal/configs``, for help texts."""
    from pytal import config

    return ", ".join(config.packaged_configs())


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a detector from a config",
        description="Train a detector: CONFIG is a YAML path or a packaged config name "
                    f"({packaged_config_names()}). RUN_DIR receives "
                    "config.yaml (resolved), last.pt / best.pt, train.log, metrics.json and "
                    "detections.json (validation subset). Several processes: torchrun "
                    "--nproc_per_node=N -m pytal train ... (DistributedDataParallel; gloo on the "
                    "CPU, nccl on CUDA with one GPU per process; train.batch_size is per process).")
    parser.add_argument("config", metavar="CONFIG")
    parser.add_argument("--output", required=True, metavar="RUN_DIR")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="set config keys, e.g. train.epochs=3 dataset.feature_dir=/x")
    parser.add_argument("--resume", action="store_true",
                        help="continue from RUN_DIR/last.pt (with RUN_DIR/config.yaml)")
    parser.add_argument("--device", default="cpu",
                        help="torch device (default cpu); under torchrun 'cuda' means "
                             "cuda:LOCAL_RANK")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_import_argument(parser)
    add_threads_argument(parser)
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from pytal.engine.distributed import close_distributed, init_distributed

    info, device = init_distributed(args.device)     # a process group under torchrun only
    try:
        return _train(args, device, main_process=info.is_main)
    finally:
        close_distributed()


def _train(args: argparse.Namespace, device, *, main_process: bool) -> int:
    import logging
    import os

    from pytal.config import load_config, save_config
    from pytal.engine import Trainer
    from pytal.engine.distributed import barrier

    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING,
                        format="%(message)s")
    resume = None
    if args.resume:
        resume = os.path.join(args.output, "last.pt")
        if not os.path.isfile(resume):
            raise CommandError(f"--resume: {resume} does not exist")
        cfg = load_config(os.path.join(args.output, "config.yaml"), args.override)
    else:
        cfg = load_config(args.config, args.override)
    barrier()                                   # every rank has read config.yaml
    if main_process:
        save_config(cfg, os.path.join(args.output, "config.yaml"))
    best = Trainer(cfg, args.output, device=device,
                   progress=not args.no_progress).fit(resume=resume)
    if best is not None and main_process:
        print(format_result(best, title=f"{args.output}: epoch {best['epoch']} on subset "
                                        f"{cfg.dataset.val_subset!r}"))
    return 0


# -------------------------------------------------------------------------------------- infer

def add_infer_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="detect actions in feature files or videos with a trained model",
        description="Detect actions in one feature file or a folder of them (no annotation "
                    "file needed: fps from the annotation file when it lists the video, else "
                    "dataset.default_fps; duration from the feature length), or in videos "
                    "(VIDEO...: features extracted with the checkpoint's settings; --out DIR).")
    parser.add_argument("--ckpt", required=True, metavar="CKPT",
                        help="pytal checkpoint, or a foreign one the detector converts, e.g. "
                             "the CLTDR-GMG public code's (needs --config)")
    parser.add_argument("--features", metavar="DIR_OR_FILE")
    parser.add_argument("--out", required=True, metavar="DETECTIONS.json|DIR")
    parser.add_argument("--config", metavar="NAME_OR_YAML",
                        help="config to use instead of the checkpoint's: a YAML path or a "
                             f"packaged config name ({packaged_config_names()})")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                        help="public-code checkpoints: EMA weights (default) or raw ones")
    parser.add_argument("--batch-size", type=int, default=1)
    add_import_argument(parser)
    add_threads_argument(parser)
    from pytal.video_commands import add_video_infer_arguments
    add_video_infer_arguments(parser)
    parser.set_defaults(handler=run_infer)


def run_infer(args: argparse.Namespace) -> int:
    if (args.features is None) == (not args.videos):
        raise CommandError("pass --features DIR_OR_FILE or VIDEO... (one of the two)")
    if args.videos:
        from pytal.video_commands import run_infer_videos
        return run_infer_videos(args)
    from pytal.io.jsonio import write_json
    from pytal.engine import feature_items, infer_with_config, load_model

    model, cfg, names = load_model(args.ckpt, config=args.config, overrides=args.override,
                                   weights=args.weights)
    items = list(feature_items(args.features, cfg))
    detections = infer_with_config(model, items, cfg, names, batch_size=args.batch_size)
    write_json(args.out, detections)
    count = sum(len(v) for v in detections["results"].values())
    print(f"pytal infer: {count} detections in {len(items)} video(s) -> {args.out}")
    return 0


# ------------------------------------------------------------------------- convert-checkpoint

def add_convert_checkpoint_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-checkpoint", help="rewrite a trusted checkpoint that pytal refuses as a safe one",
        description="pytal loads checkpoints with torch.load(weights_only=True), so loading "
                    "never runs code, and refuses files whose pickle needs more (numpy arrays, "
                    "custom classes). This reads FILE once with full pickle, which CAN RUN CODE "
                    "(hence --trust), and writes its content as tensors, numbers, strings, "
                    "lists and dicts to OUT, a checkpoint every pytal command loads.")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("out", metavar="OUT")
    parser.add_argument("--trust", action="store_true",
                        help="required: you trust FILE's origin (unpickling it may run code)")
    parser.set_defaults(handler=run_convert_checkpoint)


def run_convert_checkpoint(args: argparse.Namespace) -> int:
    from pytal.engine.checkpoint import convert_checkpoint

    if not args.trust:
        raise CommandError(f"{args.file}: converting unpickles the file, which can run code; "
                           "pass --trust if you trust its origin")
    convert_checkpoint(args.file, args.out, trust=True)
    print(f"pytal convert-checkpoint: {args.file} -> {args.out} (loads with weights_only=True)")
    return 0


# --------------------------------------------------------------------------------------- demo

def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train and evaluate CLTDR-GMG on synthetic THUMOS14-like data (CPU)",
        description="Write a synthetic dataset with the THUMOS14 layout, train CLTDR-GMG with "
                    "the small config on the CPU, evaluate on the test subset, and write "
                    "metrics.json, detections.json and timeline.png to DIR.")
    parser.add_argument("--output", default="demo_output", metavar="DIR")
    parser.add_argument("--quick", action="store_true",
                        help="reduced mode: a few videos, a tiny model, one epoch")
    parser.add_argument("--data-dir", metavar="DIR", help="synthetic data folder (default DIR/data)")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    # One thread by default: on 2 idle cores a second thread gained only ~1.25x, and on a busy
    # machine OpenMP oversubscription made training steps many times slower.
    add_threads_argument(parser, default=1)
    parser.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    import logging

    from pytal.demo import run_demo

    logging.basicConfig(level=logging.INFO, format="%(message)s")     # one line per epoch

    result = run_demo(args.output, quick=args.quick, data_dir=args.data_dir,
                      overrides=tuple(args.override), progress=not args.no_progress)
    print(format_result(result["metrics"], title="CLTDR-GMG on synthetic THUMOS14 (subset 'test')"))
    print(f"training {result['train_seconds']:.0f} s, total {result['total_seconds']:.0f} s; "
          f"wrote {args.output}/metrics.json, detections.json, {os.path.basename(result['timeline'])}")
    return 0


# -------------------------------------------------------------------------------------- bench

def add_bench_parser(subparsers: argparse._SubParsersAction) -> None:
    from pytal.bench_options import add_arguments

    parser = subparsers.add_parser(
        "bench", help="end-to-end benchmark: extension ops vs reference ops",
        description="Training-step time and inference time per video of a detector at "
                    "THUMOS14 shapes (synthetic inputs), with every pytal op on the extension "
                    "vs on its reference, in one run; checks that both give the same loss and "
                    "detections (exit status 1 when they do not).")
    add_arguments(parser)
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from pytal.bench import run_from_args

    return run_from_args(args)


# ------------------------------------------------------------------------------ extract

def add_extract_parser(subparsers: argparse._SubParsersAction) -> None:
    from pytal.video_commands import add_extract_parser as add

    add_threads_argument(add(subparsers))


def add_extract_maps_parser(subparsers: argparse._SubParsersAction) -> None:
    from pytal.video_commands import add_extract_maps_parser as add

    add_threads_argument(add(subparsers))


# ------------------------------------------------------------------------------------ driver

#: Builders of the subcommands, in the order ``pytal --help`` lists them.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_demo_parser, add_train_parser, add_eval_parser, add_infer_parser, add_extract_parser,
    add_extract_maps_parser, add_convert_checkpoint_parser, add_bench_parser]


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
        apply_threads(args)
        apply_imports(args)
        return int(args.handler(args) or 0)
    except (CommandError, OSError, ValueError) as err:
        if os.environ.get("PYTAL_DEBUG") == "1":
            raise
        print(f"pytal {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    """An error message on one line (some messages of torch and numpy span several)."""
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
