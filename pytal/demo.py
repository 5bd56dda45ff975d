"""``pytal demo``: synthetic THUMOS14-like data -> train CLTDR-GMG (small config, CPU) ->
evaluate -> metrics, detections and a timeline plot.

The dataset has the real THUMOS14 layout (videos, durations, actions and classes of the
annotation file shipped in ``pytal/resources/thumos14.json``) with synthetic features
(:mod:`pytal.data.synthetic`). Training uses subset ``validation`` and evaluation ``test``, as
for THUMOS14; there is no checkpoint selection on the test subset (one evaluation, after the
last epoch).
"""
from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from pytal.config import Overrides

__all__ = ["DEMO_OVERRIDES", "LAYOUT_FILE", "QUICK_OVERRIDES", "layout_overrides", "run_demo"]

LAYOUT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources",
                           "thumos14.json")

#: The demo's training budget: 25 epochs of the small config take about 6.5 minutes on one
#: core (the config's own schedule is longer; see benchmarks/RESULTS.md).
DEMO_OVERRIDES = {"train.epochs": 25}

#: Reduced mode (tests, smoke runs): a few videos, a tiny model, one epoch.
QUICK_OVERRIDES = {"model.embd_dim": 16, "model.fpn_dim": 16, "model.head_dim": 16,
                   "model.head_num_layers": 1, "model.gmg_mlp_dim": 16,
                   "model.backbone_arch": [1, 1, 2], "model.num_bins": 4,
                   "model.regression_range": [[0, 8], [8, 32], [32, 10000]],
                   "dataset.max_seq_len": 256, "train.epochs": 1, "train.warmup_epochs": 0,
                   "train.batch_size": 2}


def layout_overrides(ds) -> dict[str, Any]:
    """Config overrides that train on a synthetic THUMOS14-layout dataset ``ds`` (what
    :func:`pytal.data.synthetic.write_dataset` returns) as on THUMOS14: subset ``validation``,
    one evaluation on ``test`` after the last epoch (no checkpoint selection on it)."""
    return {**ds.config_overrides(), "dataset.train_subset": "validation",
            "dataset.val_subset": "test", "train.eval_every": 0}


def run_demo(output: str, *, quick: bool = False, data_dir: Optional[str] = None,
             overrides: Overrides = (), progress: bool = True,
             timeline_videos: int = 4) -> dict[str, Any]:
    """Run the demo into ``output``; returns ``{"metrics", "train_seconds", "total_seconds",
    "timeline"}``. ``overrides``: config overrides on top of the demo's, a dict
    (``{"train.epochs": 3}``) or ``"key=value"`` strings. ``quick``: 6 videos per subset, 32
    channels, a tiny model and one epoch.
    ``data_dir``: where the synthetic dataset goes (default ``output/data``; reused when
    already written with the same arguments)."""
    from pytal.config import load_config, overrides_dict, save_config
    from pytal.io.jsonio import read_json, write_json
    from pytal.data.synthetic import write_dataset
    from pytal.engine import Trainer
    from pytal.visualize import plot_timelines

    start = time.perf_counter()
    data_dir = data_dir or os.path.join(output, "data")
    ds = write_dataset(data_dir, feat_dim=32 if quick else 512, seed=0, layout=LAYOUT_FILE,
                       max_videos=6 if quick else None, reuse=True)
    cfg_overrides = {**layout_overrides(ds), **DEMO_OVERRIDES,
                     **(QUICK_OVERRIDES if quick else {}), **overrides_dict(overrides)}
    cfg = load_config("cltdr_gmg_small", cfg_overrides)
    save_config(cfg, os.path.join(output, "config.yaml"))
    trainer = Trainer(cfg, output, progress=progress)
    metrics = trainer.fit()
    detections, _ = read_json(os.path.join(output, "detections.json"))
    ground_truth, _ = read_json(ds.annotation_file)
    videos = ds.subsets["test"][:timeline_videos]
    timeline = plot_timelines(ground_truth, detections, videos,
                              os.path.join(output, "timeline.png"))
    result = {"metrics": metrics, "train_seconds": trainer.train_seconds,
              "total_seconds": time.perf_counter() - start, "timeline": timeline,
              "quick": quick}
    write_json(os.path.join(output, "demo.json"), result, indent=2)
    return result
