"""CLTDR-GMG packaged configs: shared keys present and the pyramid consistent."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "pytal" / "configs"
NAMES = ("cltdr_gmg_thumos", "cltdr_gmg_anet", "cltdr_gmg_small")
SHARED = {
    "model": ("name", "variant"),
    "dataset": ("annotation_file", "feature_dir", "file_ext", "feat_stride", "num_frames", "default_fps",
                "input_dim", "num_classes", "train_subset", "val_subset", "max_seq_len"),
    "train": ("epochs", "batch_size", "lr", "num_workers", "seed"),
}


def _load(name):
    with open(CONFIG_DIR / f"{name}.yaml") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("name", NAMES)
def test_config_shared_keys_and_pyramid(name):
    cfg = _load(name)
    for section, keys in SHARED.items():
        for key in keys:
            assert key in cfg[section], f"{name}: {section}.{key} missing"
    m, d, t = cfg["model"], cfg["dataset"], cfg["train"]
    assert m["name"] == "cltdr_gmg" and m["variant"] in ("paper", "release")
    num_levels = m["backbone_arch"][2] + 1
    assert len(m["regression_range"]) == num_levels
    lows = [lo for lo, _ in m["regression_range"]]
    highs = [hi for _, hi in m["regression_range"]]
    assert lows[0] == 0 and lows[1:] == highs[:-1]          # contiguous ranges
    assert d["max_seq_len"] % m["scale_factor"] ** (num_levels - 1) == 0
    assert m["embd_dim"] % 16 == 0 and m["fpn_dim"] == m["embd_dim"]
    assert m["reg_loss"] in ("diou", "giou") and m["cls_loss"] in ("varifocal", "focal")
    assert m["center_sample"] == "radius" and m["center_sample_radius"] == 1.5
    assert m["loss_norm_momentum"] == 0.9 and m["init_loss_norm"] > 0
    assert isinstance(cfg["eval"]["pre_nms_topk"], int) and t["epochs"] >= 1


def test_dataset_specific_values():
    thumos, anet, small = (_load(n) for n in NAMES)
    assert (thumos["dataset"]["input_dim"], thumos["dataset"]["feat_stride"], thumos["dataset"]["num_frames"],
            thumos["dataset"]["max_seq_len"]) == (2048, 4, 16, 2304)
    assert thumos["model"]["backbone_arch"][2] + 1 == 6
    assert (anet["dataset"]["input_dim"], anet["dataset"]["max_seq_len"]) == (512, 192)
    assert anet["model"]["backbone_arch"][2] + 1 == 7 and anet["dataset"]["force_upsampling"]
    assert small["dataset"]["input_dim"] == 512
