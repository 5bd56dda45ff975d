"""Feature extraction throughput at THUMOS14 settings (preset ``thumos14_i3d``: I3D, 16-frame
windows, stride 4, the video's 30 fps, 256 short side -> 224 centre crop): decoding and the
backbone timed separately, then the whole ``extract_video``, in video frames per second.

    python -m benchmarks.extract [--seconds 20] [--width 320 --height 180] [--device cpu]
                                 [--threads 1] [--batch-size 8] [--repeats 3]

The video is synthetic (moving rectangles, H.264), written once into a temporary folder; the
backbone has random weights (speed does not depend on them). Frames per second of the backbone
count the video frames its windows advance over (``windows * stride / seconds``), so the three
rows are comparable: the whole run is roughly bounded by the slower of the first two.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from pytal.bench import environment, load_average


def _median_rate(fn, count: int, repeats: int) -> tuple[float, float]:
    """(median items per second, first-call seconds) of ``fn()`` processing ``count`` items."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - start))
    return float(np.median(rates)), first


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="video length (default 20)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180, help="THUMOS14 videos are 320x180")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8, help="windows per backbone call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from pytal.backbones import build_backbone
    from pytal.video import get_preset, iter_frames
    from pytal.video.extract import ExtractionSettings, extract_video
    from pytal.video.synthetic import write_synthetic_video

    preset = get_preset("thumos14_i3d")
    encoder = build_backbone(preset.backbone, "random", device=args.device)
    settings = ExtractionSettings(preset.backbone, preset.fps, preset.num_frames,
                                  preset.stride).for_encoder(encoder)
    cuda = torch.device(args.device).type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        video = write_synthetic_video(os.path.join(tmp, "bench.mp4"), seconds=args.seconds,
                                      fps=args.fps, width=args.width, height=args.height)
        frames = int(round(args.seconds * args.fps))

        def decode():
            n = sum(1 for _ in iter_frames(video, fps=settings.fps, transform=settings.transform))
            assert n == frames, (n, frames)

        decode_rate, decode_first = _median_rate(decode, frames, args.repeats)

        clips = torch.randint(0, 256, (args.batch_size, preset.num_frames, *settings.crop, 3),
                              dtype=torch.uint8, device=args.device)

        @torch.no_grad()
        def backbone():
            encoder(clips)
            if cuda:
                torch.cuda.synchronize()

        window_rate, backbone_first = _median_rate(backbone, args.batch_size, args.repeats)

        def whole():
            extract_video(video, encoder, settings, batch_size=args.batch_size)

        total_rate, whole_first = _median_rate(whole, frames, max(1, args.repeats - 2))

    print(f"feature extraction, preset thumos14_i3d, {args.width}x{args.height} at "
          f"{args.fps:g} fps, {args.seconds:g} s ({frames} frames), device {args.device}, "
          f"batch {args.batch_size} windows")
    print(f"environment: {environment()}; load average {load_average()}")
    print(f"  {'stage':<44} {'video frames/s':>15} {'first call':>11}")
    print(f"  {'decode + resize + crop (PyAV, streaming)':<44} {decode_rate:>15.1f} "
          f"{decode_first:>10.2f}s")
    print(f"  {'I3D backbone (stride 4: 4 frames per window)':<44} "
          f"{window_rate * preset.stride:>15.1f} {backbone_first:>10.2f}s   "
          f"({window_rate:.2f} windows/s)")
    print(f"  {'extract_video (decode + windows + backbone)':<44} {total_rate:>15.1f} "
          f"{whole_first:>10.2f}s")
    print(f"  real time: the whole run at {total_rate / args.fps:.2f}x the video's speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
