"""``pytal extract`` (videos -> feature files), ``pytal extract-maps`` (frames or videos -> the
I3D spatial maps of TAL-MTS's ``features`` backbone) and the video form of ``pytal infer``
(videos -> detections, timelines, subtitles): argument parsing and the runs."""
from __future__ import annotations

import argparse
import os
from typing import Optional

__all__ = ["add_extract_parser", "run_extract", "add_extract_maps_parser", "run_extract_maps", "add_extraction_arguments",
           "add_video_infer_arguments", "run_infer_videos", "settings_from_args"]


def add_extraction_arguments(parser: argparse.ArgumentParser, *, infer: bool = False) -> None:
    """The options shared by ``extract`` and ``infer VIDEO``; explicit ones override the
    preset's (and, for ``infer``, the checkpoint's). ``infer``: the weights option is
    ``--backbone-weights`` and the batch option ``--clip-batch-size`` (``infer`` has its own
    ``--weights`` and ``--batch-size``)."""
    parser.add_argument("--preset", metavar="NAME",
                        help="extraction recipe (see pytal extract --list-presets); explicit "
                             "options override it")
    parser.add_argument("--backbone", metavar="NAME", help="i3d, r2plus1d_18, s3d, swin3d_t, mvit_v2_s")
    parser.add_argument("--backbone-weights" if infer else "--weights", dest="backbone_weights",
                        metavar="PATH|random",
                        help="backbone weights file (default: the released file in the torch "
                             "cache); 'random' for seeded random weights (tests, smoke runs)")
    parser.add_argument("--fps", type=float, metavar="F",
                        help="resample videos to F frames per second (default: the preset's, "
                             "which may be each video's own rate)")
    parser.add_argument("--num-frames", type=int, metavar="N", help="frames per window")
    parser.add_argument("--stride", type=int, metavar="S", help="frames between windows")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--clip-batch-size" if infer else "--batch-size", dest="clip_batch_size",
                        type=int, default=8, metavar="B",
                        help="windows per backbone call (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from_args(args: argparse.Namespace, base: Optional[dict] = None):
    """ExtractionSettings from ``base`` (a manifest's settings) or ``--preset`` (which replaces
    ``base``), with the explicit options on top. A different backbone drops ``base``'s transform
    and weights record. ValueError when nothing names a backbone and window."""
    from pytal.video.extract import ExtractionSettings
    from pytal.video.presets import get_preset

    values: dict = dict(base or {})
    if args.preset is not None:
        p = get_preset(args.preset)
        values = dict(backbone=p.backbone, fps=p.fps, num_frames=p.num_frames, stride=p.stride)
    if args.backbone is not None and args.backbone != values.get("backbone"):
        values = {k: v for k, v in values.items() if k not in ("resize", "crop", "weights")}
    for key, value in (("backbone", args.backbone), ("fps", args.fps),
                       ("num_frames", args.num_frames), ("stride", args.stride)):
        if value is not None:
            values[key] = value
    missing = [k for k in ("backbone", "num_frames", "stride") if values.get(k) is None]
    if missing:
        raise ValueError(f"no {', '.join(missing)}: pass --preset NAME (see pytal extract "
                         f"--list-presets) or --backbone, --num-frames and --stride")
    values.setdefault("fps", None)
    return ExtractionSettings.from_dict(values, source="extraction settings")


def print_report(command: str, report, out: str) -> int:
    """One line of counts of an extraction report, one per failed video; the exit status."""
    print(f"pytal {command}: {len(report.written)} written, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed -> {out}")
    for path, message in report.failed:
        print(f"  failed: {message}" if path in message else f"  failed: {path}: {message}")
    return 1 if report.failed else 0


def default_device(device: Optional[str]) -> str:
    import torch
    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_extract_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract", help="extract features from videos (one .npy per video)",
        description="Decode videos, cut them into windows of --num-frames frames every --stride "
                    "frames (resampled to --fps), encode each window with a backbone and write "
                    "OUT/<video_id>.npy ((T, C) float32) and OUT/manifest.json. Resumable: "
                    "videos already in OUT are skipped. Feature i is centred at "
                    "(i * stride + num_frames / 2) / fps seconds.")
    parser.add_argument("inputs", nargs="*", metavar="VIDEOS_OR_DIR")
    parser.add_argument("--out", metavar="DIR")
    parser.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    add_extraction_arguments(parser)
    parser.set_defaults(handler=run_extract)
    return parser


def run_extract(args: argparse.Namespace) -> int:
    from pytal.video.presets import format_presets

    if args.list_presets:
        print(format_presets())
        return 0
    if not args.inputs or args.out is None:
        raise ValueError("usage: pytal extract VIDEOS_OR_DIR... --out DIR [--preset NAME] "
                         "(pytal extract --list-presets lists the presets)")
    settings = settings_from_args(args)
    try:
        from pytal.video.extract import extract_videos
        report = extract_videos(args.inputs, args.out, settings, weights=args.backbone_weights,
                                device=default_device(args.device),
                                batch_size=args.clip_batch_size,
                                progress=None if not args.no_progress else False)
    except ImportError as err:
        raise ValueError(str(err)) from None
    return print_report("extract", report, args.out)


def add_extract_maps_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract-maps", help="I3D spatial feature maps for TAL-MTS's features backbone",
        description="Run Inception-I3D over frame videos (<video_id>.npy uint8 (T, H, W, 3), a "
                    "folder of them, the layout of dataset.frame_dir) or video files, and "
                    "write OUT/<video_id>.npy: (ceil(T/8), D) float32 rows packing the "
                    "Mixed_4f (T/4, 832, S/16, S/16) and Mixed_5c (T/8, 1024, S/32, S/32) maps "
                    "(docs/talmts.md), RGB then flow, plus OUT/maps.json. Resumable: videos "
                    "already in OUT are skipped.")
    parser.add_argument("inputs", nargs="+", metavar="FRAMES_OR_VIDEOS")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--flow", metavar="DIR", default="",
                        help="optical flow frames <video_id>.npy uint8 (T, H, W, 2) of the same "
                             "frames: adds the flow stream")
    parser.add_argument("--weights", metavar="PATH|random",
                        help="RGB I3D weights (public rgb_imagenet.pt layout; default: that file "
                             "in the torch cache); 'random' for seeded random weights (tests)")
    parser.add_argument("--flow-weights", metavar="PATH|random",
                        help="flow I3D weights (flow_imagenet.pt layout)")
    parser.add_argument("--size", type=int, default=96,
                        help="frame size S in pixels, a multiple of 32 (default %(default)s: "
                             "model.frame_size); frames are centre-cropped to it")
    parser.add_argument("--fps", type=float, default=10.0,
                        help="video inputs: frames per second to decode (default %(default)s)")
    parser.add_argument("--resize", type=int, default=112,
                        help="video inputs: shorter side before the crop (default %(default)s)")
    parser.add_argument("--chunk", type=int, default=256,
                        help="frames per I3D call, a multiple of 8 (default %(default)s: "
                             "model.clip_length)")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.set_defaults(handler=run_extract_maps)
    return parser


def run_extract_maps(args: argparse.Namespace) -> int:
    from pytal.video.maps import MapsSettings, write_feature_maps

    settings = MapsSettings(size=args.size, fps=args.fps, resize=args.resize, chunk=args.chunk,
                            streams=("rgb", "flow") if args.flow else ("rgb",))
    try:
        report = write_feature_maps(args.inputs, args.out, settings, flow_dir=args.flow,
                                    weights=args.weights, flow_weights=args.flow_weights,
                                    device=default_device(args.device))
    except ImportError as err:
        raise ValueError(str(err)) from None
    return print_report("extract-maps", report, args.out)


def add_video_infer_arguments(parser: argparse.ArgumentParser) -> None:
    """``pytal infer --ckpt CKPT VIDEO... --out DIR``: the positional videos and the extraction
    options."""
    parser.add_argument("videos", nargs="*", metavar="VIDEO",
                        help="video files or folders: extract features with the checkpoint's "
                             "settings and write DIR/detections.json, DIR/<video>.timeline.png "
                             "and DIR/<video>.srt (--out is then a folder)")
    add_extraction_arguments(parser, infer=True)
    parser.add_argument("--min-score", type=float, default=0.3,
                        help="videos: lowest score drawn and subtitled (default %(default)s)")


def run_infer_videos(args: argparse.Namespace) -> int:
    """The video form of ``pytal infer``."""
    from pytal.video_infer import checkpoint_extraction, detect_in_videos

    base = checkpoint_extraction(args.ckpt)
    if base is None and args.preset is None and args.backbone is None:
        raise ValueError(f"{args.ckpt} records no extraction settings (its features had no "
                         "manifest.json); pass --preset NAME, or --backbone, --num-frames, "
                         "--stride and --fps as the features were extracted")
    settings = settings_from_args(args, base)
    try:
        result = detect_in_videos(args.ckpt, args.videos, args.out, settings=settings,
                                  backbone_weights=args.backbone_weights, config=args.config,
                                  overrides=args.override, device=default_device(args.device),
                                  clip_batch_size=args.clip_batch_size, min_score=args.min_score,
                                  progress=not args.no_progress and os.isatty(2))
    except ImportError as err:
        raise ValueError(str(err)) from None
    count = sum(len(v) for v in result.detections.get("results", {}).values())
    if result.files:
        print(f"pytal infer: {count} detections in {len(result.files)} video(s) -> "
              f"{os.path.join(args.out, 'detections.json')}, one .timeline.png and .srt per video")
    else:
        print("pytal infer: no video could be read; nothing written")
    for path, message in result.failed:
        print(f"  failed: {message}")
    return 1 if result.failed else 0
