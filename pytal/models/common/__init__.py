"""Parts that point-based detectors share (ActionFormer / TriDet family), each used by more
than one detector or written so that the next one needs no copy:

* ``points``      pyramid points ``[t, range_lo, range_hi, stride]`` and regression ranges
                  (input feature steps), ``PointGenerator``, ``pyramid_strides``
* ``assignment``  label assignment: centre sampling, regression ranges, min-length ties ->
                  class / offset targets (``assign_targets``, ``assign_targets_batch``)
* ``losses``      sigmoid focal, varifocal, 1D GIoU / DIoU (centre-offset form), IoU weighting,
                  the EMA loss normaliser and one branch's normalised losses (``branch_losses``)
* ``heads``       ``ConvTower`` (masked convs + LayerNorm + ReLU), ``ClassificationHead``
                  (prior bias, empty classes), ``prior_bias``
* ``inputs``      the checks of a detector's (B, C, T) features and (B, 1, T) masks and of
                  its ground truth (segments, labels)
* ``decoding``    candidate selection per level, segments from distances, the call into
                  ``pytal.postprocess.batched_nms`` with the ``eval.*`` settings and the
                  conversion to seconds (``detections_in_seconds``)
"""
from .assignment import assign_targets, assign_targets_batch
from .decoding import (check_metadata, detections_in_seconds, drop_short,
                       feature_steps_to_seconds, segments_from_offsets, select_candidates)
from .inputs import check_feats_and_masks, check_targets
from .heads import ClassificationHead, ConvTower, check_levels, prior_bias
from .losses import (LossNormalizer, branch_losses, ctr_diou_loss_1d, ctr_giou_loss_1d,
                     ctr_iou_1d, positive_entries, sigmoid_focal_loss, varifocal_loss)
from .points import PointGenerator, pyramid_strides

__all__ = [
    "ClassificationHead", "ConvTower", "LossNormalizer", "PointGenerator", "assign_targets",
    "assign_targets_batch", "branch_losses", "check_feats_and_masks", "check_levels", "check_metadata",
    "check_targets",
    "ctr_diou_loss_1d", "ctr_giou_loss_1d", "ctr_iou_1d", "detections_in_seconds",
    "drop_short", "feature_steps_to_seconds", "positive_entries", "prior_bias",
    "pyramid_strides", "segments_from_offsets", "select_candidates", "sigmoid_focal_loss",
    "varifocal_loss",
]
