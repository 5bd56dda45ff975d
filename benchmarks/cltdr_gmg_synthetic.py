"""CLTDR-GMG on synthetic THUMOS14-layout data, trained on the CPU: training time, inference
time and detection mAP (average mAP over tIoU 0.3:0.7).

    python -m benchmarks.cltdr_gmg_synthetic [--root DIR] [--config cltdr_gmg_small]
        [--output RUN_DIR] [--override train.epochs=20 ...] [--layout THUMOS14.json]
        [--stride-padding] [--bf16]

Writes (or reuses) ``pytal.data.synthetic.write_dataset(root, feat_dim=512, seed=0,
layout=<thumos14.json>)``: the real THUMOS14 videos, durations, actions and classes with
synthetic features. Trains on subset ``validation`` (200 videos) with
:class:`pytal.engine.Trainer`, evaluates once after the last epoch on ``test`` (210 videos)
with :func:`pytal.evaluation.evaluate` (no checkpoint selection on the test subset), and
prints the training time, the inference time of the test videos and the mAP table;
``--stride-padding`` evaluates the same trained model again with
``model.inference_padding=stride`` (inputs padded to the stride multiple, not to
``max_seq_len``), ``--bf16`` with ``eval.amp=bf16`` (the forward under bfloat16 autocast), both
flags also with the two together.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from benchmarks.common import environment, load_average

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LAYOUT = os.path.join(REPO, "pytal", "resources", "thumos14.json")
DEFAULT_ROOT = os.path.join(REPO, "data", "synthetic_thumos14")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=DEFAULT_ROOT, help="synthetic dataset folder")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, help="THUMOS14 annotation JSON")
    parser.add_argument("--config", default="cltdr_gmg_small")
    parser.add_argument("--output", default=None, help="run folder (checkpoints, metrics)")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--progress", action="store_true", help="tqdm bars")
    parser.add_argument("--stride-padding", action="store_true",
                        help="also evaluate the trained model with model.inference_padding=stride "
                             "(inputs padded to the stride multiple, not max_seq_len)")
    parser.add_argument("--bf16", action="store_true",
                        help="also evaluate the trained model with eval.amp=bf16 (bfloat16 autocast)")
    args = parser.parse_args(argv)

    from pytal.cli import format_result
    from pytal.config import load_config, overrides_dict
    from pytal.data.synthetic import write_dataset
    from pytal.demo import layout_overrides
    from pytal.engine import Trainer, infer_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    ds = write_dataset(args.root, feat_dim=512, seed=0, layout=os.path.abspath(args.layout),
                       reuse=True)
    write_seconds = time.perf_counter() - start
    overrides = {**layout_overrides(ds), **overrides_dict(args.override)}
    cfg = load_config(args.config, overrides)
    print(f"environment: {environment()}; load average before: {load_average()}")
    print(f"dataset: {args.root} ({', '.join(f'{k}: {len(v)} videos' for k, v in ds.subsets.items())}; "
          f"{write_seconds:.1f} s to write or reuse)")
    print("config:", json.dumps({"train": cfg.to_dict()["train"]}, default=str)[:400])

    trainer = Trainer(cfg, args.output, progress=args.progress)
    # Train without the final evaluation inside fit, to time inference on its own.
    epochs = trainer.settings.epochs
    start = time.perf_counter()
    while trainer.epoch < epochs:
        stats = trainer.train_one_epoch()
        trainer.epoch += 1
        print(f"  epoch {trainer.epoch:>3}/{epochs}: loss {stats['loss']:.4f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - start

    model = trainer.eval_model()
    val = trainer.val_set
    start = time.perf_counter()
    detections = infer_dataset(model, val, val.class_names, progress=args.progress)
    infer_seconds = time.perf_counter() - start
    metrics, _ = trainer.evaluate_from(detections)
    load_after = load_average()

    print(f"\ntraining: {epochs} epochs x {len(trainer.loader)} steps "
          f"(batch {trainer.settings.batch_size}) in {train_seconds:.1f} s "
          f"({train_seconds / epochs:.1f} s/epoch)")
    print(f"inference: {len(val)} test videos in {infer_seconds:.1f} s "
          f"({1e3 * infer_seconds / len(val):.1f} ms/video)")
    print(f"load average after: {load_after}")
    print(format_result(metrics, title="mAP on subset 'test'"))
    result = {"train_seconds": train_seconds, "infer_seconds": infer_seconds,
              "epochs": epochs, "metrics": metrics, "environment": environment(),
              "load_average_after": load_after}
    variants = [(padding, amp) for padding in ("max_seq_len", "stride") for amp in ("none", "bf16")
                if (padding, amp) != ("max_seq_len", "none")
                and (args.stride_padding or padding == "max_seq_len")
                and (args.bf16 or amp == "none")]
    for padding, amp in variants:
        model.inference_padding = padding
        name = ", ".join(([f"model.inference_padding={padding}"] if padding != "max_seq_len" else [])
                         + ([f"eval.amp={amp}"] if amp != "none" else []))
        start = time.perf_counter()
        detections = infer_dataset(model, val, val.class_names, progress=args.progress, amp=amp)
        seconds = time.perf_counter() - start
        variant_metrics, _ = trainer.evaluate_from(detections)
        print(f"\ninference with {name}: {len(val)} test videos in {seconds:.1f} s; average mAP "
              f"{100 * variant_metrics['average_mAP']:.2f} vs {100 * metrics['average_mAP']:.2f} "
              f"padded to max_seq_len in float32")
        print(format_result(variant_metrics, title=f"mAP on subset 'test', {name}"))
        result.setdefault("variants", {})[name] = {"infer_seconds": seconds,
                                                   "metrics": variant_metrics}
    if args.output:
        trainer.epoch = epochs
        from pytal.io.jsonio import write_json
        write_json(os.path.join(args.output, "benchmark.json"), result, indent=2)
    return result


if __name__ == "__main__":
    main()
