"""Inference speed of TAL-MTS in frames per second: whole clips through the model
(``TALMTS.clip_detections``: backbone, pyramid, RFP, STT, FSA, coarse heads, boundary-pooling
refinement, eq. 13), with pytal's extension ops against the pure-PyTorch reference ops.

    python -m benchmarks.talmts [--config talmts_small|talmts_thumos] [--device cpu|cuda]
                                [--batch 1] [--threads N]

``talmts_thumos`` runs its I3D two-stream model with random weights (speed only). Prints the
median and best seconds per batch of clips (interleaved, after a warm-up call whose time is
shown separately) and frames per second (clip_length x batch / median).
"""
from __future__ import annotations

import argparse

import torch

import pytal
from benchmarks.common import environment, time_interleaved
from pytal.config import load_config
from pytal.models import build_model


def make_model(config: str, device: str):
    cfg = load_config(config, {"model.i3d_random": True} if config != "talmts_small" else {})
    torch.manual_seed(0)
    model = build_model(cfg).to(device).eval()
    feats = torch.rand(1, cfg.dataset.input_dim, model.clip_steps, device=device) * 255
    return model, feats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="talmts_small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, feats = make_model(args.config, args.device)
    feats = feats.expand(args.batch, -1, -1).contiguous()
    masks = torch.ones(args.batch, 1, feats.shape[-1], dtype=torch.bool, device=args.device)

    def run(backend: str):
        def call():
            with torch.no_grad(), pytal.ops.force_backend(backend):
                model.clip_detections(feats, masks)
        return call

    backends = ["reference"] + (["extension"] if pytal.ops.has_kernel("boundary_pool", args.device)
                                else [])
    times = time_interleaved({b: run(b) for b in backends}, device=args.device,
                             repeats=args.repeats)
    frames = model.m.clip_length * args.batch
    print(environment())
    print(f"TAL-MTS {args.config} inference, batch {args.batch} x {model.m.clip_length} frames, "
          f"{args.device}")
    for b, t in times.items():
        print(f"  {b:<10} median {t.median * 1e3:9.2f} ms  best {t.best * 1e3:9.2f} ms  "
              f"first {t.first * 1e3:9.2f} ms  {frames / t.median:10.1f} frames/s")
    if len(times) == 2:
        print(f"  extension speed-up: {times['reference'].median / times['extension'].median:.2f}x")


if __name__ == "__main__":
    main()
