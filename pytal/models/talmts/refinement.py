"""TAL-MTS refinement: AFSD's boundary regions and the boundary-pooling head that gives
refined offsets, refined class logits and the quality score."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pytal.nn import Float32Conv1d
from pytal.ops import boundary_pool

__all__ = ["RefinementHead", "boundary_regions"]


def boundary_regions(segments: torch.Tensor, *, inclusive: bool = False) -> torch.Tensor:
    """AFSD's start and end regions of proposals (..., 2) ``[s, e]`` -> (..., 4)
    ``[round(s - a), round(s + b), round(e - b), round(e + a)]`` with ``a = max(len / 10, 1)``
    (outside) and ``b = max(len / 4, 1)`` (inside); ``len = e - s``, or ``e - s + 1`` with
    ``inclusive`` (AFSD counts frames inclusively on the frame-level feature, not on the pyramid
    levels). Units of the input: pass segments in steps of the feature they pool."""
    s, e = segments[..., 0], segments[..., 1]
    length = e - s + 1.0 if inclusive else e - s
    outer = (length / 10).clamp(min=1.0)
    inner = (length / 4).clamp(min=1.0)
    return torch.stack((torch.round(s - outer), torch.round(s + inner),
                        torch.round(e - inner), torch.round(e + outer)), dim=-1)


class RefinementHead(nn.Module):
    """Boundary pooling of the level features f_loc / f_cls and of the frame-level feature f_a
    over each coarse proposal's regions, then 1x1 convs.

    ``forward(f_loc, f_cls, f_a, proposals, strides)``: per level l, f_loc[l] / f_cls[l]
    (B, C, T_l) and proposals[l] (B, T_l, 2) in frames (position ``i`` of level l is at frame
    ``(i + 0.5) * stride_l``, so ``u / stride_l - 0.5`` is frame ``u`` in level steps); f_a (B, C_a, T) frame level. Returns
    offsets (B, K, 2) (start, end; in half proposal lengths), class logits (B, K, num_classes)
    and quality logits (B, K), K = sum T_l."""

    def __init__(self, channels: int, frame_channels: int, dim: int, num_classes: int,
                 prior: float):
        super().__init__()

        def proj(cin: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, 2 * dim, 1), nn.ReLU(inplace=True))

        self.loc_level, self.cls_level = proj(channels), proj(channels)
        self.loc_frame, self.cls_frame = proj(frame_channels), proj(frame_channels)
        self.loc_fuse = nn.Sequential(nn.Conv1d(4 * dim + channels, dim, 1), nn.ReLU(inplace=True))
        self.cls_fuse = nn.Sequential(nn.Conv1d(4 * dim + channels, dim, 1), nn.ReLU(inplace=True))
        self.offsets = Float32Conv1d(dim, 2, 1)                     # float32 under autocast
        self.quality = Float32Conv1d(dim, 1, 1)
        self.classes = Float32Conv1d(dim, num_classes, 1)
        nn.init.constant_(self.classes.bias, prior)

    def forward(self, f_loc: list[torch.Tensor], f_cls: list[torch.Tensor], f_a: torch.Tensor,
                proposals: list[torch.Tensor], strides: list[int]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frame_regions = boundary_regions(torch.cat(proposals, dim=1).detach(), inclusive=True)
        loc_a = boundary_pool(self.loc_frame(f_a), frame_regions)          # (B, 2d, K)
        cls_a = boundary_pool(self.cls_frame(f_a), frame_regions)
        loc_l, cls_l = [], []
        for loc, cls, prop, stride in zip(f_loc, f_cls, proposals, strides):
            regions = boundary_regions(prop.detach() / stride - 0.5)
            loc_l.append(torch.cat((boundary_pool(self.loc_level(loc), regions), loc), dim=1))
            cls_l.append(torch.cat((boundary_pool(self.cls_level(cls), regions), cls), dim=1))
        loc_feat = self.loc_fuse(torch.cat((torch.cat(loc_l, dim=2), loc_a), dim=1))
        cls_feat = self.cls_fuse(torch.cat((torch.cat(cls_l, dim=2), cls_a), dim=1))
        return (self.offsets(loc_feat).transpose(1, 2), self.classes(cls_feat).transpose(1, 2),
                self.quality(loc_feat)[:, 0])
