"""The authors' public CLTDR-GMG code beside pytal's model, for the scripts that compare them
(``benchmarks.release_parity``: outputs per public config; ``benchmarks.peers_cltdr_gmg``:
speed). The public code (github.com/LiQiang0307/CLTDR-GMG) is never part of pytal: the
scripts take the path of a checkout; its compiled ``nms_1d_cpu`` must be importable, from its
``libs/utils`` (``cd libs/utils && python setup.py build_ext --inplace``) or from a copy of
``setup.py`` and ``csrc`` built elsewhere and put on ``PYTHONPATH``.

* :func:`import_release`: its config loader and model factory;
* :func:`build_pair`: its model of one public config, random weights perturbed so that the
  zero-initialised branches count, and pytal's model of the packaged config with
  ``model.variant=release`` holding the same weights (``convert_release_checkpoint``);
* :func:`match_detections`: how far two detection lists of one video are apart.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import os
import sys
import types
from typing import Any, Mapping, NamedTuple, Optional

import torch

from pytal.config import load_config
from pytal.models import build_model
from pytal.models.cltdr_gmg import convert_release_checkpoint

__all__ = ["DetectionMatch", "build_pair", "import_release", "match_detections"]


def import_release(path: str) -> tuple[Any, Any]:
    """``(load_config, make_meta_arch)`` of the public code at ``path``; ``load_config(name)``
    reads ``configs/<name>.yaml`` over the code's defaults."""
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.join(path, "libs", "modeling")):
        raise FileNotFoundError(f"{path}: not a checkout of the public CLTDR-GMG code (no "
                                f"libs/modeling)")
    for p in (path, os.path.join(path, "libs", "utils")):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        import libs.utils  # noqa: F401  (needs the public code's training dependencies)
    except ImportError:
        # the models need only its batched_nms: load libs/utils/nms.py on its own as libs.utils
        import libs
        utils = types.ModuleType("libs.utils")
        utils.__path__ = [os.path.join(path, "libs", "utils")]
        sys.modules["libs.utils"] = libs.utils = utils
        spec = importlib.util.spec_from_file_location("libs.utils.nms",
                                                      os.path.join(path, "libs", "utils", "nms.py"))
        nms = importlib.util.module_from_spec(spec)
        sys.modules["libs.utils.nms"] = nms
        spec.loader.exec_module(nms)
        utils.batched_nms = nms.batched_nms
    from libs.core.config import DEFAULTS, load_config as release_load_config   # noqa: E402
    from libs.modeling import make_meta_arch                                    # noqa: E402

    def load(name: str) -> dict:
        return release_load_config(os.path.join(path, "configs", f"{name}.yaml"),
                                   defaults=copy.deepcopy(DEFAULTS))
    return load, make_meta_arch


def build_pair(load_release: Any, make_meta_arch: Any, public_name: str, packaged: str, *,
               public_model: Optional[Mapping[str, Any]] = None,
               overrides: Optional[Mapping[str, Any]] = None, seed: int = 0,
               weight_noise: float = 0.05) -> tuple[dict, Any, torch.nn.Module, torch.nn.Module]:
    """``(public config, pytal config, public model, pytal model)`` with the same weights.

    ``public_model``: keys set in the public config's ``model`` section (``train_cfg`` keys
    go to ``model.train_cfg``); ``overrides``: pytal config overrides on top of
    ``model.variant=release``. The public model is built under ``torch.manual_seed(seed)``,
    then every parameter gets ``N(0, weight_noise)`` added.
    """
    public = load_release(public_name)
    for key, value in (public_model or {}).items():
        section = public["model"]["train_cfg"] if key in public["model"]["train_cfg"] else public["model"]
        section[key] = value
    cfg = load_config(packaged, {"model.variant": "release", **(overrides or {})})
    torch.manual_seed(seed)
    release = make_meta_arch(public["model_name"], **public["model"])
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in release.parameters():
            p.add_(torch.randn(p.shape, generator=g) * weight_noise)
    model = build_model(cfg)
    model.load_state_dict(convert_release_checkpoint(release.state_dict()), strict=True)
    return public, cfg, release, model


class DetectionMatch(NamedTuple):
    """One video's detections, the public code's (ref) against pytal's (got)."""
    ref_count: int
    got_count: int
    checked: int            #: ref's best detections looked for (``top``, at most ref_count)
    matched: int            #: of those, found in got with the same label, score and boundaries
    first_unmatched: int    #: 1-based rank (by ref's score) of the best one not found; 0: none
    first_unmatched_score: float
    worst_score: float      #: largest |score| difference of the matched
    worst_boundary: float   #: largest |boundary| difference (seconds) of the matched


def match_detections(ref: Mapping[str, Any], got: Mapping[str, Any], top: int,
                     atol: float) -> DetectionMatch:
    """Look for each of ref's ``top`` best detections in ``got``: the same label, boundaries
    within ``atol`` seconds and score within ``atol`` (the closest such one). Matching, not
    sorting: the order and the cut-off of near-equal scores depend on rounding."""
    def rows(d):
        segs = torch.as_tensor(d["segments"], dtype=torch.float64).reshape(-1, 2)
        scores = torch.as_tensor(d["scores"], dtype=torch.float64).reshape(-1)
        labels = torch.as_tensor(d["labels"]).reshape(-1).long()
        order = torch.argsort(scores, descending=True, stable=True)
        return segs[order], scores[order], labels[order]
    s1, p1, l1 = rows(ref)
    s2, p2, l2 = rows(got)
    checked = min(top, len(p1))
    matched, first, first_score, worst_score, worst_seg = 0, 0, float("nan"), 0.0, 0.0
    for i in range(checked):
        seg_diff = (s2 - s1[i]).abs().amax(dim=1)
        score_diff = (p2 - p1[i]).abs()
        ok = (l2 == l1[i]) & (seg_diff <= atol) & (score_diff <= atol)
        if ok.any():
            j = int(torch.where(ok, torch.maximum(seg_diff, score_diff), math.inf).argmin())
            matched += 1
            worst_score = max(worst_score, float(score_diff[j]))
            worst_seg = max(worst_seg, float(seg_diff[j]))
        elif not first:
            first, first_score = i + 1, float(p1[i])
    return DetectionMatch(len(p1), len(p2), checked, matched, first, first_score, worst_score, worst_seg)
