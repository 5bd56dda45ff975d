"""Detections of a converted public-code (release) checkpoint checked for values: the EMA and
raw weights give different detections, every detection is one of the model's candidates
(``nms_method: none``) with its segment, and the first selection of each video is its best
candidate with that candidate's score (Soft-NMS never decays the first pick)."""
from __future__ import annotations

import pytest
import torch

from pytal.models.cltdr_gmg import convert_release_checkpoint, extract_release_state_dict

from test_cltdr_model import _batch, _build, _meta, _release_state_dict_shapes, _tiny

LENGTHS = (29, 32)


@pytest.fixture(scope="module")
def checkpoint():
    g = torch.Generator().manual_seed(0)
    shapes = _release_state_dict_shapes()
    return {key: {f"module.{n}": torch.randn(s, generator=g) for n, s in shapes.items()}
            for key in ("state_dict", "state_dict_ema")}


def _detect(checkpoint, weights, **test):
    cfg = _tiny("release")
    cfg["model"]["droppath"] = 0.1
    cfg["eval"].update(test)
    model = _build(cfg)
    model.load_state_dict(convert_release_checkpoint(extract_release_state_dict(checkpoint, weights)),
                          strict=True)
    model.eval()
    x, mask = _batch(LENGTHS)
    with torch.no_grad():
        return model.detect(x, mask, _meta(LENGTHS))


def test_release_detections_are_candidates_and_differ_between_weights(checkpoint):
    dets = {w: _detect(checkpoint, w) for w in ("ema", "raw")}
    assert not torch.equal(dets["ema"][0]["scores"], dets["raw"][0]["scores"])
    cands = _detect(checkpoint, "ema", nms_method="none")
    max_seg = _tiny("release")["eval"]["max_seg_num"]
    for det, cand, n in zip(dets["ema"], cands, LENGTHS):
        assert 0 < len(det["scores"]) <= max_seg < len(cand["scores"])
        scores = det["scores"]
        assert (scores[1:] <= scores[:-1]).all() and (scores > 0).all() and (scores <= 1).all()
        # the first selection is a best candidate (one of them if tied), undecayed
        best = cand["scores"] == cand["scores"].max()
        assert float(scores[0]) == pytest.approx(float(cand["scores"].max()), rel=1e-6)
        first = ((cand["segments"][best] - det["segments"][0]).abs().max(dim=1).values < 1e-5) & \
            (cand["labels"][best] == det["labels"][0])
        assert first.any()
        # every detection is a candidate: same segment and label, score not above the original
        for seg, score, label in zip(det["segments"], scores, det["labels"]):
            same = ((cand["segments"] - seg).abs().max(dim=1).values < 1e-5) & \
                (cand["labels"] == label)
            assert same.any() and float(score) <= float(cand["scores"][same].max()) + 1e-6
        duration = (n * 4 + 8) / 25.0
        assert (det["segments"] >= 0).all() and (det["segments"] <= duration + 1e-6).all()


def test_saturated_scores_are_taken_by_step_then_class():
    """Every score exactly 1.0 (saturated sigmoid): each level's candidates are its first
    ``pre_nms_topk`` (step, class) entries in that order, and Soft-NMS's first pick of every
    class is its earliest candidate, undecayed."""
    x, mask = _batch(LENGTHS)
    out = {}
    for nms in ("none", "soft"):
        torch.manual_seed(0)
        cfg = _tiny("release")
        cfg["eval"].update(pre_nms_topk=10, max_seg_num=200, nms_method=nms)
        model = _build(cfg)
        with torch.no_grad():
            for head, bias in ((model.cls_head.classifier.conv, 20.0), (model.refine_head.logits.conv, 5.0)):
                head.weight.zero_()
                head.bias.fill_(bias)
        model.eval()
        with torch.no_grad():
            out[nms] = model.detect(x, mask, _meta(LENGTHS))
    levels = len(cfg["model"]["regression_range"])
    for cand, det in zip(out["none"], out["soft"]):
        assert (cand["scores"] == 1.0).all() and len(cand["scores"]) == 10 * levels
        assert cand["labels"].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] * levels
        for c in range(3):
            first = det["labels"].tolist().index(c)
            assert float(det["scores"][first]) == 1.0
            assert torch.equal(det["segments"][first], cand["segments"][c])
