"""The metrics the engine and the CLI report for a model's detections: detection mAP, and
the proposal metrics when the model has a proposal stage."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from pytal.evaluation.detection import evaluate
from pytal.evaluation.proposals import evaluate_proposals
from pytal.evaluation.thresholds import ThresholdSpec
from pytal.io.jsonio import PathOrDict

__all__ = ["PROPOSAL_BUDGET", "evaluate_model_detections"]

#: Average proposals per video of the reported ``AR@<budget>`` (BMN's and ActivityNet's 100).
PROPOSAL_BUDGET = 100


def evaluate_model_detections(ground_truth: PathOrDict, detections: Mapping[str, Any], *,
                              subset: str, tiou_thresholds: ThresholdSpec,
                              label_space: Optional[str] = None,
                              class_agnostic: bool = False) -> dict[str, Any]:
    """:func:`~pytal.evaluation.evaluate`'s dict for a detections JSON dict (as
    :func:`pytal.engine.detections_json` writes it), plus ``"proposals": {"AR@100", "AUC"}``
    (fractions in [0, 1], :func:`~pytal.evaluation.evaluate_proposals` at the ActivityNet
    thresholds 0.5:0.95) when it carries a proposal stage's ``"proposals"``
    (``{video_id: [{"segment", "score"}]}``). ``label_space`` picks the labelling of a
    ground-truth file with several, for both; ``class_agnostic`` ignores labels (one class,
    ``"class_agnostic": true`` in the result)."""
    metrics = evaluate(ground_truth, detections, subset=subset,
                       tiou_thresholds=tiou_thresholds, label_space=label_space,
                       class_agnostic=class_agnostic)
    if "proposals" in detections:
        curve = evaluate_proposals(ground_truth, {"results": detections["proposals"]},
                                   subset=subset, max_avg_proposals=PROPOSAL_BUDGET,
                                   label_space=label_space)
        key = f"AR@{PROPOSAL_BUDGET}"
        metrics["proposals"] = {key: curve[key], "AUC": curve["AUC"]}
    return metrics
