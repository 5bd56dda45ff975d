"""Every packaged CLTDR-GMG config: loads, builds its detector (shrunk by overrides), runs a forward pass
and detection on a tiny input, and evaluates with its dataset's tIoU thresholds. Label spaces of
one annotation file (EPIC-KITCHENS-100's verb / noun) chosen by ``dataset.label_space``."""
from __future__ import annotations

import pytest
import torch

from pytal.config import ConfigError, load_config, packaged_configs
from pytal.data import FeatureDataset
from pytal.evaluation import evaluate
from pytal.evaluation.thresholds import (ACTIVITYNET_TIOU, EPIC_TIOU, HACS_TIOU, MULTITHUMOS_TIOU,
                                         THUMOS14_TIOU, dataset_tiou_thresholds,
                                         parse_tiou_thresholds)
from pytal.io.annotations import AnnotationError, load_annotations, load_instances
from pytal.models import build_model

#: dataset.name of each packaged config's benchmark -> the thresholds its papers report.
BENCHMARK_TIOU = {"thumos14": THUMOS14_TIOU, "thumos14_synthetic": THUMOS14_TIOU,
                  "multithumos": MULTITHUMOS_TIOU, "epic_kitchens_100": EPIC_TIOU,
                  "activitynet13": ACTIVITYNET_TIOU, "hacs": HACS_TIOU}


#: the packaged configs of CLTDR-GMG (other detectors' configs are tested with them).
CLTDR_CONFIGS = [n for n in packaged_configs() if n.startswith("cltdr_gmg_")]


def test_presets_of_the_five_benchmarks():
    assert MULTITHUMOS_TIOU == tuple(parse_tiou_thresholds("0.1:0.9:0.1"))
    assert EPIC_TIOU == tuple(parse_tiou_thresholds("0.1:0.5:0.1"))
    assert HACS_TIOU == tuple(parse_tiou_thresholds("0.5:0.95:0.05"))
    assert dataset_tiou_thresholds("MultiTHUMOS") == MULTITHUMOS_TIOU
    assert dataset_tiou_thresholds("hacs_segments") == HACS_TIOU
    assert dataset_tiou_thresholds("thumos14") == THUMOS14_TIOU
    assert parse_tiou_thresholds("multithumos") == list(MULTITHUMOS_TIOU)


def test_every_benchmark_has_packaged_configs():
    names = set(CLTDR_CONFIGS)
    datasets = {load_config(n).dataset.name for n in names}
    assert set(BENCHMARK_TIOU) <= datasets | {"thumos14_synthetic"}
    for space in ("verb", "noun"):
        assert load_config(f"cltdr_gmg_epic_slowfast_{space}").dataset.label_space == space


@pytest.mark.parametrize("name", CLTDR_CONFIGS)
def test_packaged_config_builds_and_runs(name):
    cfg = load_config(name)
    assert cfg.eval.tiou_thresholds == BENCHMARK_TIOU[cfg.dataset.name]
    levels = cfg.model.num_levels
    small = load_config(name, {"model.embd_dim": 16, "model.fpn_dim": 16, "model.head_dim": 8,
                               "model.gmg_mlp_dim": 16, "dataset.max_seq_len": 2 ** levels,
                               "eval.pre_nms_topk": 100, "eval.max_seg_num": 50})
    assert small.model.backbone_arch == cfg.model.backbone_arch
    assert small.model.regression_range == cfg.model.regression_range
    torch.manual_seed(0)
    model = build_model(small)
    assert len(model.neck.norms) == levels and model.variant == cfg.model.variant
    c_in, t = cfg.dataset.input_dim, 2 ** levels - 3
    x = torch.randn(2, c_in, t)
    mask = torch.ones(2, 1, t, dtype=torch.bool)
    mask[1, :, t - 5:] = False
    num_classes = cfg.dataset.num_classes
    losses = model.losses(x, mask, [torch.tensor([[1.0, 6.0]]), torch.tensor([[0.0, 3.0], [2.0, 9.0]])],
                          [torch.tensor([num_classes - 1]), torch.tensor([0, num_classes - 1])])
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    losses["loss"].backward()
    model.eval()
    meta = [dict(video_id=str(i), duration=20.0, fps=25.0, feat_stride=cfg.dataset.feat_stride or 4,
                 feat_num_frames=cfg.dataset.num_frames or 16) for i in range(2)]
    dets = model.detect(x, mask, meta)
    assert len(dets) == 2 and all(d["segments"].shape[1] == 2 for d in dets)
    assert all(int(d["labels"].max()) < num_classes for d in dets if len(d["labels"]))


def _epic_file():
    """Two videos whose annotations carry a verb and a noun each (ids as the release's files)."""
    def ann(s, e, verb, noun):
        return {"segment": [s, e], "label": {"verb": verb[0], "noun": noun[0]},
                "label_id": {"verb": verb[1], "noun": noun[1]}}
    return {"database": {
        "P01_01": {"subset": "validation", "duration": 30.0, "fps": 30.0, "annotations": [
            ann(1.0, 4.0, ("open", 3), ("door", 8)), ann(2.0, 9.0, ("take", 0), ("cup", 1))]},
        "P01_02": {"subset": "validation", "duration": 20.0, "fps": 30.0, "annotations": [
            ann(0.5, 2.5, ("take", 0), ("door", 8))]}}}


def test_label_space_picks_verb_or_noun():
    data = _epic_file()
    verb = load_annotations(data, label_space="verb").videos["P01_01"]
    noun = load_annotations(data, label_space="noun").videos["P01_01"]
    assert verb.label_names == ("open", "take") and verb.label_ids.tolist() == [3, 0]
    assert noun.label_names == ("door", "cup") and noun.label_ids.tolist() == [8, 1]
    assert (verb.segments == noun.segments).all()
    table = load_instances(data, "validation", "noun")
    assert table.labels == ["door", "cup", "door"] and table.video.tolist() == [0, 0, 1]


def test_label_space_required_and_known():
    data = _epic_file()
    with pytest.raises(AnnotationError, match=r"label spaces \['noun', 'verb'\]; choose one"):
        load_annotations(data)
    with pytest.raises(AnnotationError, match="label space 'action'"):
        load_annotations(data, label_space="action")
    with pytest.raises(AnnotationError, match="label space 'verb'"):
        load_annotations({"database": {"v": {"subset": "validation", "duration": 3.0, "annotations": [
            {"segment": [0.0, 1.0], "label": "open"}]}}}, label_space="verb")
    with pytest.raises(ConfigError, match="dataset.label_space"):
        load_config("cltdr_gmg_epic_slowfast_verb", {"dataset.label_space": ""})


def test_label_space_in_dataset_and_evaluation(tmp_path):
    import numpy as np
    data = _epic_file()
    for vid, steps in (("P01_01", 55), ("P01_02", 36)):
        np.save(tmp_path / f"{vid}.npy", np.zeros((steps, 4), np.float32))
    ds = FeatureDataset(data, tmp_path, subset="validation", feat_stride=16, num_frames=32,
                        label_space="noun")
    assert ds.label_source == "label_id" and ds[0]["labels"].tolist() == [8, 1]
    preds = {"results": {"P01_01": [{"label": "open", "score": 0.9, "segment": [1.0, 4.0]},
                                    {"label": "take", "score": 0.8, "segment": [2.0, 9.0]}],
                         "P01_02": [{"label": "take", "score": 0.7, "segment": [0.5, 2.5]}]}}
    as_verb = evaluate(data, preds, subset="validation", tiou_thresholds=EPIC_TIOU, label_space="verb")
    assert as_verb["average_mAP"] == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="not a ground-truth class"):
        as_noun = evaluate(data, preds, subset="validation", tiou_thresholds=EPIC_TIOU,
                           label_space="noun")
    assert as_noun["average_mAP"] == 0.0
