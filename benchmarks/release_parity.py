"""pytal's CLTDR-GMG ``release`` variant against the authors' public code, per public config.

    python -m benchmarks.release_parity --release /path/to/CLTDR-GMG [--configs thumos_i3d_focalloss ...]
                                        [--seed 0] [--weight-noise 0.05] [--small]

``--release`` is a checkout of github.com/LiQiang0307/CLTDR-GMG (never part of pytal); its
compiled ``nms_1d_cpu`` must be importable, from its ``libs/utils`` (``cd libs/utils && python
setup.py build_ext --inplace``) or from a copy of ``setup.py`` and ``csrc`` built elsewhere and
put on ``PYTHONPATH``; without its training dependencies (pandas, ...) only its
``libs/utils/nms.py`` is loaded from ``libs/utils``. For each public config (``configs/<name>.yaml``) and the packaged pytal
config that follows it (:data:`PACKAGED`):

1. the hyper-parameters of the two configs are compared key by key (:data:`MODEL_KEYS`, ...);
2. the public code's model is built from its config, its random initial weights are perturbed
   (every parameter + ``N(0, weight_noise)``, so that the zero-initialised branches count),
   converted with ``pytal.models.cltdr_gmg.convert_release_checkpoint`` and loaded strictly
   into pytal's model of the packaged config with ``model.variant=release``;
3. training losses on the same random batch of two videos (random features, random segments
   in feature steps, one segment labelled twice: multi-label) are compared, with the
   stochastic parts off on both sides (``input_noise`` 0, drop-path 0);
4. detections (public code: one video per call, its Soft-NMS; pytal: ``detect``) of each video:
   the same count, and each of the public code's ``--top`` best detections found in pytal's
   with the same label, boundaries (seconds) and score within ``--atol`` (matching, not
   sorting); the rank and score of the best unmatched one are printed;
5. the two stages of those detections, per video: (a) the candidates before NMS (the public
   code's, captured at its ``postprocessing``, against pytal's with ``eval.nms_method none``):
   the same count and every one matched; (b) pytal's NMS (``detections_in_seconds``) of the
   public code's own candidates against the public code's detections: printed as they are,
   and required to match all when no two candidate scores are equal (each equal score moved
   to the next float below, a few ulps: :func:`distinct_scores`, the same input to both sides).

A config agrees when 1, 3, 4 (best ``--top``), 5a and 5b (distinct scores) all hold.

Equal scores: random weights saturate many sigmoids to exactly 1.0 (or the float32 values
just below it), and Soft-NMS keeps the first of two overlapping equal-score candidates
undecayed, so which of them comes first decides the detections. Two orders differ:
* before NMS, pytal orders equal scores by step, then class (``select_candidates``); the
  public code sorts its candidates with ``Tensor.sort``, whose order among equal values is
  unspecified (on CPU not by index). By default (``--public-sort stable``) the public code's
  inference runs with ``Tensor.sort`` made stable, which orders them as pytal does;
  ``--public-sort as-is`` keeps the public code's own order.
* within Soft-NMS, ``pytal.ops.soft_nms`` takes the equal score of the lowest input index; the
  public code's ``nms_1d_cpu.softnms`` takes the first in its working array, which its swaps
  (the selected one to the front, a dropped one with the last) have reordered. Stage 5b shows
  this: as they are, its detections can differ from the first exactly equal overlapping pair
  on; with no two scores equal, they all match.
Below the best few hundred, candidate scores that differ by rounding (about 1e-6) can reorder
near-equal decayed scores the same way; stages 5a and 5b separate that from a real difference.

``--small`` shrinks the channel widths of both sides to 64 (the structure stays). Prints one
line per config and a summary; exit status 1 when any config disagrees.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
import time
from typing import Any, Optional

import torch

from benchmarks.cltdr_gmg_release import build_pair, import_release, match_detections
from pytal.bench import load_average
from pytal.config import load_config
from pytal.models.common.decoding import detections_in_seconds

#: public config (configs/<name>.yaml) -> the packaged pytal config that follows it.
PACKAGED = {
    "thumos_i3d_focalloss": "cltdr_gmg_thumos",
    "thumos_videomae": "cltdr_gmg_thumos_videomae",
    "thumos_intervideo_vflloss": "cltdr_gmg_thumos_internvideo2",
    "multithumos_i3d": "cltdr_gmg_multithumos_i3d",
    "multithumos_i3d_rgb_only_focalloss": "cltdr_gmg_multithumos_i3d_rgb",
    "multithumos_videomae_vflloss": "cltdr_gmg_multithumos_videomae",
    "epic_slowfast_verb_vflloss": "cltdr_gmg_epic_slowfast_verb",
    "epic_slowfast_noun_focalloss": "cltdr_gmg_epic_slowfast_noun",
    "anet_tsp": "cltdr_gmg_anet_tsp_release",
    "hacs_i3d_focalloss": "cltdr_gmg_hacs_i3d",
    "hacs_slowfast_focalloss": "cltdr_gmg_hacs_slowfast",
}
#: public ``model`` / ``train_cfg`` key -> pytal ``model`` key.
MODEL_KEYS = {
    "backbone_arch": "backbone_arch", "scale_factor": "scale_factor", "regression_range": "regression_range",
    "n_sgp_win_size": "gmg_kernel_size", "embd_kernel_size": "embd_kernel_size", "embd_dim": "embd_dim",
    "embd_with_ln": "embd_with_ln", "fpn_dim": "fpn_dim", "fpn_with_ln": "fpn_with_ln", "head_dim": "head_dim",
    "head_kernel_size": "head_kernel_size", "boudary_kernel_size": "boundary_kernel_size",
    "head_num_layers": "head_num_layers", "head_with_ln": "head_with_ln",
    "max_buffer_len_factor": "max_buffer_len_factor", "use_abs_pe": "use_abs_pe",
    "downsample_type": "downsample_type", "k": "gmg_k", "init_conv_vars": "gmg_init_conv_vars",
    "num_bins": "num_bins", "iou_weight_power": "iou_weight_power", "input_noise": "input_noise",
    "sgp_mlp_dim": "gmg_mlp_dim",
}
TRAIN_CFG_KEYS = {
    "center_sample": "center_sample", "center_sample_radius": "center_sample_radius",
    "loss_weight": "loss_weight", "cls_prior_prob": "cls_prior_prob", "init_loss_norm": "init_loss_norm",
    "head_empty_cls": "head_empty_cls", "dropout": "dropout", "droppath": "droppath",
    "label_smoothing": "label_smoothing",
}
DATASET_KEYS = ("num_classes", "input_dim", "feat_stride", "num_frames", "default_fps", "trunc_thresh",
                "crop_ratio", "max_seq_len", "force_upsampling")
EVAL_KEYS = ("pre_nms_thresh", "pre_nms_topk", "iou_threshold", "min_score", "max_seg_num", "nms_method",
             "nms_sigma", "duration_thresh", "multiclass_nms", "voting_thresh")
OPT_KEYS = {"learning_rate": "lr", "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs",
            "eta_min": "eta_min"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def config_differences(public: dict, cfg: Any) -> list[str]:
    """``section.key: public != pytal`` for every hyper-parameter the two configs disagree on."""
    out = []
    pairs = [(f"model.{k}", public["model"][k], getattr(cfg.model, v)) for k, v in MODEL_KEYS.items()]
    pairs += [(f"train_cfg.{k}", public["train_cfg"][k], getattr(cfg.model, v))
              for k, v in TRAIN_CFG_KEYS.items()]
    pairs += [(f"dataset.{k}", public["dataset"][k], getattr(cfg.dataset, k)) for k in DATASET_KEYS]
    pairs += [(f"test_cfg.{k}", public["test_cfg"][k], getattr(cfg.eval, k)) for k in EVAL_KEYS]
    pairs += [(f"opt.{k}", public["opt"][k], getattr(cfg.train, v)) for k, v in OPT_KEYS.items()]
    pairs.append(("opt.epochs + warmup_epochs", public["opt"]["epochs"] + public["opt"]["warmup_epochs"],
                  cfg.train.epochs))
    pairs.append(("loader.batch_size", public["loader"]["batch_size"], cfg.train.batch_size))
    pairs.append(("train_cfg.clip_grad_l2norm", public["train_cfg"]["clip_grad_l2norm"],
                  cfg.train.clip_grad_l2norm))
    for key, a, b in pairs:
        if key == "model.sgp_mlp_dim" and b is None:
            b = 4 * cfg.model.embd_dim
        if not _same(a, b):
            out.append(f"{key}: {a!r} != {b!r}")
    return out


@contextlib.contextmanager
def stable_tensor_sort(enabled: bool = True):
    """Within the block, ``Tensor.sort`` sorts stably (equal values keep their index order)."""
    if not enabled:
        yield
        return
    original = torch.Tensor.sort

    def stable_sort(self, *args, **kwargs):
        kwargs["stable"] = True
        return original(self, *args, **kwargs)
    torch.Tensor.sort = stable_sort
    try:
        yield
    finally:
        torch.Tensor.sort = original


def distinct_scores(scores: torch.Tensor) -> torch.Tensor:
    """(N,) float32 scores with no two equal: in descending order (equal ones by index), each
    one that is not below the previous becomes the next float below it (a few ulps)."""
    out = scores.clone()
    below = torch.tensor(float("-inf"), dtype=scores.dtype)
    previous = None
    for i in torch.argsort(scores, descending=True, stable=True).tolist():
        if previous is not None and out[i] >= previous:
            out[i] = torch.nextafter(previous, below)
        previous = out[i]
    return out


def random_videos(cfg: Any, generator: torch.Generator) -> list[dict[str, Any]]:
    """Two videos: random (C, T) features (T <= max_seq_len) and random segments in feature
    steps; the first video's first segment appears twice with two labels (multi-label)."""
    d = cfg.dataset
    lengths = (d.max_seq_len - 37, d.max_seq_len // 2 + 5)
    videos = []
    for i, t in enumerate(lengths):
        n = 4
        centre = torch.rand(n, generator=generator) * t
        width = 2.0 + torch.rand(n, generator=generator) * min(t / 4, 200.0)
        segs = torch.stack([(centre - width / 2).clamp(min=0), (centre + width / 2).clamp(max=t - 1)], 1)
        labels = torch.randint(0, d.num_classes, (n,), generator=generator)
        if i == 0 and d.num_classes > 1:
            segs = torch.cat([segs, segs[:1]])
            labels = torch.cat([labels, (labels[:1] + 1) % d.num_classes])
        fps = 30.0
        stride = d.feat_stride or 16.0
        frames = d.num_frames or 16.0
        videos.append({"video_id": f"v{i}", "feats": torch.randn(d.input_dim, t, generator=generator),
                       "segments": segs.float(), "labels": labels.long(), "fps": fps,
                       "duration": (t * stride + frames) / fps, "feat_stride": stride,
                       "feat_num_frames": frames})
    return videos


def compare(name: str, load_release: Any, make_meta_arch: Any, *, seed: int, weight_noise: float,
            small: bool, top: int, atol: float, stable_public_sort: bool = True) -> dict[str, Any]:
    """One public config against its packaged pytal config; the differences found."""
    diffs = config_differences(load_release(name), load_config(PACKAGED[name]))
    public_model = {"input_noise": 0.0, "droppath": 0.0}
    overrides = {"model.input_noise": 0.0, "model.droppath": 0.0}
    if small:
        public_model.update({key: 64 for key in ("embd_dim", "fpn_dim", "head_dim", "sgp_mlp_dim")})
        overrides.update({"model.embd_dim": 64, "model.fpn_dim": 64, "model.head_dim": 64,
                          "model.gmg_mlp_dim": 64})
    _, cfg, release, model = build_pair(load_release, make_meta_arch, name, PACKAGED[name],
                                        public_model=public_model, overrides=overrides,
                                        seed=seed, weight_noise=weight_noise)
    videos = random_videos(cfg, torch.Generator().manual_seed(seed + 2))

    release.train()
    model.train()
    ref = release([dict(v) for v in videos])
    t = max(v["feats"].shape[1] for v in videos)
    x = torch.zeros(len(videos), cfg.dataset.input_dim, t)
    mask = torch.zeros(len(videos), 1, t, dtype=torch.bool)
    for i, v in enumerate(videos):
        x[i, :, :v["feats"].shape[1]] = v["feats"]
        mask[i, :, :v["feats"].shape[1]] = True
    got = model.losses(x, mask, [v["segments"] for v in videos], [v["labels"] for v in videos])
    loss_diff = {k: abs(float(ref[r]) - float(got[k].detach())) / max(abs(float(ref[r])), 1e-12)
                 for k, r in (("loss", "final_loss"), ("cls_loss", "cls_loss"), ("reg_loss", "reg_loss"))}
    losses = {k: (float(ref[r]), float(got[k].detach()))
              for k, r in (("loss", "final_loss"), ("cls_loss", "cls_loss"), ("reg_loss", "reg_loss"))}

    release.eval()
    model.eval()
    captured = []
    public_postprocessing = release.postprocessing

    def capture_candidates(results):
        captured[:] = [{k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in r.items()}
                       for r in results]
        return public_postprocessing(results)
    release.postprocessing = capture_candidates
    protocol = model.protocol
    no_nms = dataclasses.replace(protocol, nms_method="none")
    dets, cands, nms, nms_distinct = [], [], [], []
    with torch.no_grad():
        for v in videos:
            with stable_tensor_sort(stable_public_sort):
                r = release([dict(v)])[0]
            meta = {k: v[k] for k in ("video_id", "fps", "duration", "feat_stride", "feat_num_frames")}
            feats, mask = v["feats"][None], torch.ones(1, 1, v["feats"].shape[1], dtype=torch.bool)
            p = model.detect(feats, mask, [meta])[0]
            dets.append(match_detections(r, p, top, atol))
            # the public code's candidates (before its NMS, feature steps): pytal's candidates
            # against them, and pytal's NMS of them against the public code's detections
            c = captured[0]
            videos_index = torch.zeros_like(c["labels"])
            model.protocol = no_nms
            try:
                p_cands = model.detect(feats, mask, [meta])[0]
            finally:
                model.protocol = protocol
            r_cands = detections_in_seconds(c["segments"], c["scores"], c["labels"], videos_index, [meta], no_nms)[0]
            cands.append(match_detections(r_cands, p_cands, len(r_cands["scores"]), atol))
            p_nms = detections_in_seconds(c["segments"], c["scores"], c["labels"], videos_index, [meta], protocol)[0]
            nms.append(match_detections(r, p_nms, top, atol))
            # the same with no two equal scores: both NMS then agree wherever they compute alike
            distinct = dict(c, scores=distinct_scores(c["scores"]))
            r_nms = public_postprocessing([dict(distinct)])[0]
            p_nms = detections_in_seconds(distinct["segments"], distinct["scores"], c["labels"], videos_index,
                                          [meta], protocol)[0]
            nms_distinct.append(match_detections(r_nms, p_nms, len(r_nms["scores"]), atol))
    release.postprocessing = public_postprocessing
    return {"config_diffs": diffs, "losses": losses, "loss_rel_diff": loss_diff, "detections": dets,
            "candidates": cands, "nms": nms, "nms_distinct": nms_distinct}


def _stage_summary(res: dict[str, Any]) -> str:
    """The two stages of the detections, each video: the candidates before NMS (public/pytal,
    all matched?) and pytal's NMS of the public code's candidates against its detections."""
    def part(matches):
        return " ".join(f"{d.matched}/{d.checked}" + (f" (first unmatched rank {d.first_unmatched})"
                                                       if d.first_unmatched else "") for d in matches)
    counts = " ".join(f"{d.ref_count}/{d.got_count}" for d in res["candidates"])
    return (f"candidates public/pytal {counts}, all matched {part(res['candidates'])} (max |score| diff "
            f"{max(d.worst_score for d in res['candidates']):.1e}); pytal NMS of the public candidates: "
            f"best matched {part(res['nms'])} (max |score| diff {max(d.worst_score for d in res['nms']):.1e}), "
            f"with no two equal scores all matched {part(res['nms_distinct'])} (max |score| diff "
            f"{max(d.worst_score for d in res['nms_distinct']):.1e})")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", required=True, metavar="PATH",
                        help="checkout of the public CLTDR-GMG code (with libs/utils/nms_1d_cpu built)")
    parser.add_argument("--configs", nargs="*", default=list(PACKAGED), metavar="NAME",
                        help=f"public config names (default: all of {', '.join(PACKAGED)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight-noise", type=float, default=0.05)
    parser.add_argument("--small", action="store_true", help="64-channel layers on both sides")
    parser.add_argument("--rtol", type=float, default=1e-4, help="losses: relative tolerance")
    parser.add_argument("--atol", type=float, default=1e-3,
                        help="detections: score and boundary (seconds) tolerance")
    parser.add_argument("--top", type=int, default=200,
                        help="detections: how many of the public code's best must be matched")
    parser.add_argument("--public-sort", choices=("stable", "as-is"), default="stable",
                        help="the public code's candidate sort: stable (equal scores by step, "
                             "then class, as pytal) or as-is (unspecified order of equal scores)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    unknown = [n for n in args.configs if n not in PACKAGED]
    if unknown:
        parser.error(f"unknown public config {unknown[0]!r}; known: {', '.join(PACKAGED)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_release, make_meta_arch = import_release(args.release)
    print(f"load average: {load_average()}; seed {args.seed}, weight noise {args.weight_noise}, "
          f"{'64-channel' if args.small else 'full-size'} models, public sort {args.public_sort}", flush=True)
    failed = []
    for name in args.configs:
        start = time.perf_counter()
        res = compare(name, load_release, make_meta_arch, seed=args.seed,
                      weight_noise=args.weight_noise, small=args.small, top=args.top, atol=args.atol,
                      stable_public_sort=args.public_sort == "stable")
        worst_loss = max(res["loss_rel_diff"].values())
        dets = res["detections"]
        counts_ok = all(d.ref_count == d.got_count for d in dets)
        all_matched = all(d.matched == d.checked for d in dets)
        stages_ok = all(d.ref_count == d.got_count and d.matched == d.checked
                        for d in res["candidates"] + res["nms_distinct"])
        ok = not res["config_diffs"] and worst_loss <= args.rtol and counts_ok and all_matched and stages_ok
        if not ok:
            failed.append(name)
        losses = ", ".join(f"{k} {a:.6g}/{b:.6g}" for k, (a, b) in res["losses"].items())
        counts = " ".join(f"{d.ref_count}/{d.got_count}" for d in dets)
        matched = " ".join(f"{d.matched}/{d.checked}" for d in dets)
        unmatched = "; ".join(f"video {i}: first unmatched rank {d.first_unmatched} (score "
                              f"{d.first_unmatched_score:.4g})" for i, d in enumerate(dets) if d.first_unmatched)
        print(f"{'OK  ' if ok else 'DIFF'} {name} -> {PACKAGED[name]} ({time.perf_counter() - start:.0f} s): "
              f"config {'same' if not res['config_diffs'] else res['config_diffs']}; losses public/pytal "
              f"{losses} (max rel diff {worst_loss:.1e}); detections public/pytal {counts}; best "
              f"{args.top} matched {matched} (max |score| diff {max(d.worst_score for d in dets):.1e}, "
              f"max |boundary| diff {max(d.worst_boundary for d in dets):.1e} s)"
              + (f"; {unmatched}" if unmatched else "") + "; " + _stage_summary(res), flush=True)
    print(f"{len(args.configs) - len(failed)}/{len(args.configs)} configs agree"
          + (f"; differ: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
