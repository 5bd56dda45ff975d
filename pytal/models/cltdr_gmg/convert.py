"""Loading checkpoints of the authors' public CLTDR-GMG code into pytal's module layout.

``convert_release_checkpoint(state_dict)`` renames the public code's parameters (with or without
the ``module.`` prefix of DataParallel) to the names of ``pytal.models.CLTDRGMG``; the table is
``RELEASE_RENAMES`` (see also the package docstring). The internals of the encoder's GMG blocks
(``SGPBlock`` in the release) are renamed and reshaped by ``GMGBlock.convert_release_state_dict``.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

import torch

__all__ = ["RELEASE_RENAMES", "RELEASE_UNUSED", "convert_release_checkpoint",
           "extract_release_state_dict"]

#: (pattern on the release name, replacement giving pytal's name), tried in order.
RELEASE_RENAMES: tuple[tuple[str, str], ...] = (
    # encoder: projection, GMG stem and pyramid branch; identity neck with per-level LayerNorm
    (r"^backbone\.embd\.(\d+)\.", r"encoder.embed.convs.\1."),
    (r"^backbone\.embd_norm\.(\d+)\.", r"encoder.embed.norms.\1."),
    (r"^backbone\.stem\.(\d+)\.", r"encoder.stem.\1."),
    (r"^backbone\.branch\.(\d+)\.", r"encoder.branch.\1."),
    (r"^neck\.fpn_norms\.(\d+)\.", r"neck.norms.\1."),
    # CLTDR decoder (TSCODE.py): DeCLS, DeReg, CrossLevel
    (r"^decls\.contrans\.", "cls_decoupler.upsample."),
    (r"^decls\.conv_l\.", "cls_decoupler.attention.lateral."),
    (r"^decls\.attn\.1\.", "cls_decoupler.attention.fc."),
    (r"^dereg\.down\.", "reg_decoupler.downsample."),
    (r"^dereg\.conv_l\.", "reg_decoupler.attention.lateral."),
    (r"^dereg\.attn\.1\.", "reg_decoupler.attention.fc."),
    (r"^cross_level\.conv\.", "fusion.downsample."),
    (r"^cross_level\.convtrans\.", "fusion.upsample."),
    # heads (meta_archs.py): ClsHead x3, RegHead, RefineHead
    (r"^cls_head\.head\.(\d+)\.", r"cls_head.tower.convs.\1."),
    (r"^cls_head\.norm\.(\d+)\.", r"cls_head.tower.norms.\1."),
    (r"^cls_head\.cls_head\.", "cls_head.classifier."),
    (r"^start_head\.head\.(\d+)\.", r"trident_head.start.tower.convs.\1."),
    (r"^start_head\.norm\.(\d+)\.", r"trident_head.start.tower.norms.\1."),
    (r"^start_head\.cls_head\.", "trident_head.start.classifier."),
    (r"^end_head\.head\.(\d+)\.", r"trident_head.end.tower.convs.\1."),
    (r"^end_head\.norm\.(\d+)\.", r"trident_head.end.tower.norms.\1."),
    (r"^end_head\.cls_head\.", "trident_head.end.classifier."),
    (r"^reg_head\.head\.(\d+)\.", r"trident_head.offset.tower.convs.\1."),
    (r"^reg_head\.norm\.(\d+)\.", r"trident_head.offset.tower.norms.\1."),
    (r"^reg_head\.scale\.(\d+)\.scale$", r"trident_head.offset.scales.\1.scale"),
    (r"^reg_head\.offset_head\.", "trident_head.offset.offset."),
    (r"^refineHead\.head\.(\d+)\.", r"refine_head.tower.convs.\1."),
    (r"^refineHead\.norm\.(\d+)\.", r"refine_head.tower.norms.\1."),
    (r"^refineHead\.prob_head\.", "refine_head.logits."),
    (r"^refineHead\.s_offset_head\.", "refine_head.start_offset."),
    (r"^refineHead\.e_offset_head\.", "refine_head.end_offset."),
)

#: Release parameters that its forward pass never reads; they are dropped.
RELEASE_UNUSED: tuple[str, ...] = (
    r"^refineHead\.scale\.\d+\.scale$",   # RefineHead builds per-level Scales but does not apply them
)

_COMPILED = [(re.compile(p), r) for p, r in RELEASE_RENAMES]
_UNUSED = [re.compile(p) for p in RELEASE_UNUSED]
_BLOCK_PREFIX = re.compile(r"^(encoder\.(?:stem|branch)\.\d+\.)")


def _default_block_converter(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    from pytal.nn.gmg_block import GMGBlock  # the encoder block's own conversion
    return GMGBlock.convert_release_state_dict(state, prefix=prefix)


def convert_release_checkpoint(
        state_dict: Mapping[str, torch.Tensor], *,
        block_converter: Callable[[Mapping[str, torch.Tensor], str], dict[str, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """Map a public-code CLTDR-GMG state dict onto ``pytal.models.CLTDRGMG``'s parameter names.

    Args:
        state_dict: the release model's ``state_dict`` (its checkpoints' ``"state_dict"`` or
            ``"state_dict_ema"`` entry; a leading ``module.`` is stripped).
        block_converter: ``f(state, prefix) -> state`` renaming the parameters of one encoder
            block found under ``prefix`` (default: ``GMGBlock.convert_release_state_dict``).

    Returns: a new dict with pytal's names (tensors are shared, not copied).

    Raises:
        KeyError: naming every key that matches no rule (a checkpoint of another model or
            another code version), so nothing is silently left unloaded.
    """
    block_converter = block_converter or _default_block_converter
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if any(p.search(name) for p in _UNUSED):
            continue
        for pattern, repl in _COMPILED:
            new, n = pattern.subn(repl, name)
            if n:
                out[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"state_dict: no CLTDR-GMG release parameter matches these keys: {unknown}")
    prefixes = sorted({m.group(1) for k in out if (m := _BLOCK_PREFIX.match(k))})
    for prefix in prefixes:
        out = block_converter(out, prefix)
    return out


def extract_release_state_dict(checkpoint: Mapping, weights: str = "ema") -> Mapping[str, torch.Tensor]:
    """The state dict inside a public-code checkpoint file's dict (``{"state_dict",
    "state_dict_ema", ...}``): ``weights="ema"`` (what its eval.py loads; falls back to
    ``state_dict`` when there is no EMA entry) or ``"raw"``. A bare state dict is returned as is."""
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights: expected 'ema' or 'raw', got {weights!r}")
    if "state_dict" not in checkpoint and "state_dict_ema" not in checkpoint:
        return checkpoint
    if weights == "ema" and checkpoint.get("state_dict_ema") is not None:
        return checkpoint["state_dict_ema"]
    if "state_dict" not in checkpoint:
        raise KeyError("checkpoint: has no 'state_dict' entry (raw weights)")
    return checkpoint["state_dict"]
