"""The GMG block of the CLTDR-GMG encoder (Li et al., AAAI 2025)."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from pytal.nn.drop import AffineDropPath
from pytal.nn.norm import ChannelLayerNorm
from pytal.nn.pointwise import PointwiseConv1d
from pytal.ops.gmg import gmg

# (release name, pytal name, reshape of the released tensor to pytal's shape)
_RELEASE_NAMES = (
    ("w1", "filter_w1", lambda t: t.reshape(2, -1)),
    ("b1", "filter_b1", lambda t: t.reshape(2, -1)),
    ("w2", "filter_w2", lambda t: t.reshape(2, -1)),
    ("b2", "filter_b2", lambda t: t.reshape(2, -1)),
    ("convw.weight", "conv_weight", lambda t: t.reshape(t.shape[0], t.shape[-1])),
    ("convw.bias", "conv_bias", lambda t: t),
    ("fc.weight", "instant_weight", lambda t: t.reshape(-1)),
    ("fc.bias", "instant_bias", lambda t: t),
)


class GMGBlock(nn.Module):
    """Gated Multi-Granularity block: optional downsampling, channel LayerNorm, the GMG token
    mixer (:func:`pytal.ops.gmg`), a masked residual with drop path, then GroupNorm + MLP with
    a second drop-path residual. The arithmetic is the public CLTDR-GMG code's::

        x        = downsample(x)                                 # max-pool (or avg + 1x1 conv)
        out_mask = nearest-interpolate(mask, T // stride)
        out      = x * out_mask + drop_path_out(gmg(ln(x)))      # gmg output includes ln(x)
        out      = out + drop_path_mlp(mlp(gn(out)))

    (the mixer and MLP outputs are not masked, as in the public code; the mixer mixes over the
    padded steps too, whose features the detectors keep at zero). Unlike the public code, the
    forward does not switch autocast off: :func:`pytal.ops.gmg` computes in float32 whatever
    the input dtype.

    Args:
        n_embd: channels C (divisible by ``gn_groups``).
        kernel_size: odd depthwise kernel of the local branch (<= 31).
        n_ds_stride: downsampling stride (1: none). ``"max"``: ``MaxPool1d(stride + 1, stride,
            (stride + 1) // 2)``; ``"avg"``: ``AvgPool1d(stride)`` then a 1x1 conv.
        n_hidden: MLP hidden width (default 4 * C); ``group``: groups of its 1x1 convs.
        path_pdrop: drop-path probability; > 0 adds per-channel scales (init 1e-4) too.
        act_layer: MLP activation (default GELU).
        init_conv_vars: std of the normal init of the conv and instant weights.
        gating: ``"paper"`` (eq. 4) or ``"release"`` (the public code); see :func:`pytal.ops.gmg`.
        lambd: softshrink threshold of the spectral filter.
        backend: forwarded to :func:`pytal.ops.gmg`.

    Inputs ``x`` (B, C, T) and ``mask`` (B, 1, T) bool (True = valid step); T divisible by the
    stride. Returns ``(out (B, C, T // stride), out_mask (B, 1, T // stride) bool)``.

    Parameters (C = n_embd, k = kernel_size, H = n_hidden) and the names of the public
    CLTDR-GMG ``SGPBlock`` they load from (:meth:`convert_release_state_dict` does it):

    ==========================  ===============  =========================================
    pytal                       shape            release name (shape)
    ==========================  ===============  =========================================
    ``ln.weight``, ``ln.bias``  (1, C, 1)        same
    ``filter_w1``, ``filter_w2``  (2, C)         ``w1``, ``w2`` (2, C, 1)
    ``filter_b1``, ``filter_b2``  (2, C)         ``b1``, ``b2`` (2, C)
    ``conv_weight``             (C, k)           ``convw.weight`` (C, 1, k)
    ``conv_bias``               (C,)             ``convw.bias``
    ``instant_weight``          (C,)             ``fc.weight`` (C, 1, 1)
    ``instant_bias``            (C,)             ``fc.bias``
    ``gn.weight``, ``gn.bias``  (C,)             same
    ``mlp.0.weight``/``.bias``  (H, C/group, 1)  same
    ``mlp.2.weight``/``.bias``  (C, H/group, 1)  same
    ``drop_path_out.scale``     (1, C, 1)        same (only when path_pdrop > 0)
    ``drop_path_mlp.scale``     (1, C, 1)        same (only when path_pdrop > 0)
    ``downsample.1.*``          (C, C, 1)        same (only "avg" downsampling)
    ==========================  ===============  =========================================
    """

    def __init__(self, n_embd: int, kernel_size: int = 3, n_ds_stride: int = 1,
                 n_hidden: Optional[int] = None, group: int = 1, path_pdrop: float = 0.0,
                 act_layer: type[nn.Module] = nn.GELU, downsample_type: str = "max",
                 init_conv_vars: float = 1.0, gating: str = "paper", lambd: float = 1e-3,
                 gn_groups: int = 16, backend: Optional[str] = None) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"GMGBlock: kernel_size must be odd, got {kernel_size}")
        if n_ds_stride < 1:
            raise ValueError(f"GMGBlock: n_ds_stride must be >= 1, got {n_ds_stride}")
        self.n_embd, self.kernel_size, self.stride = n_embd, kernel_size, n_ds_stride
        self.gating, self.lambd, self.backend = gating, lambd, backend
        self.downsample = _downsample(n_embd, n_ds_stride, downsample_type)
        self.ln = ChannelLayerNorm(n_embd)
        self.filter_w1 = nn.Parameter(0.02 * torch.randn(2, n_embd))
        self.filter_b1 = nn.Parameter(0.02 * torch.randn(2, n_embd))
        self.filter_w2 = nn.Parameter(0.02 * torch.randn(2, n_embd))
        self.filter_b2 = nn.Parameter(0.02 * torch.randn(2, n_embd))
        self.conv_weight = nn.Parameter(init_conv_vars * torch.randn(n_embd, kernel_size))
        self.conv_bias = nn.Parameter(torch.zeros(n_embd))
        self.instant_weight = nn.Parameter(init_conv_vars * torch.randn(n_embd))
        self.instant_bias = nn.Parameter(torch.zeros(n_embd))
        self.gn = nn.GroupNorm(gn_groups, n_embd)
        n_hidden = n_hidden or 4 * n_embd
        self.mlp = nn.Sequential(PointwiseConv1d(n_embd, n_hidden, groups=group), act_layer(),
                                 PointwiseConv1d(n_hidden, n_embd, groups=group))
        if path_pdrop > 0.0:
            self.drop_path_out = AffineDropPath(n_embd, drop_prob=path_pdrop)
            self.drop_path_mlp = AffineDropPath(n_embd, drop_prob=path_pdrop)
        else:
            self.drop_path_out = nn.Identity()
            self.drop_path_mlp = nn.Identity()

    def mixer(self, u: torch.Tensor) -> torch.Tensor:
        """The GMG token mixer on u = ln(x): (B, C, T) -> (B, C, T)."""
        return gmg(u, self.filter_w1, self.filter_b1, self.filter_w2, self.filter_b2,
                   self.conv_weight, self.conv_bias, self.instant_weight, self.instant_bias,
                   lambd=self.lambd, gating=self.gating, backend=self.backend)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T), mask (B, 1, T) bool -> (out (B, C, T'), out_mask (B, 1, T') bool),
        T' = T // stride."""
        B, C, T = x.shape
        if mask.shape != (B, 1, T):
            raise ValueError(f"GMGBlock: mask must have shape (B, 1, T) = {(B, 1, T)}, got "
                             f"{tuple(mask.shape)}")
        if T % self.stride:
            raise ValueError(f"GMGBlock: T must be divisible by the stride {self.stride}, "
                             f"got T = {T}")
        x = self.downsample(x)
        out_mask = F.interpolate(mask.to(x.dtype), size=T // self.stride, mode="nearest").detach()
        out = x * out_mask + self.drop_path_out(self.mixer(self.ln(x)))
        out = out + self.drop_path_mlp(self.mlp(self.gn(out)))
        return out, out_mask.bool()

    @staticmethod
    def convert_release_state_dict(state: Mapping[str, torch.Tensor],
                                   prefix: str = "") -> dict[str, torch.Tensor]:
        """Renames and reshapes the parameters of one public CLTDR-GMG ``SGPBlock`` (keys
        ``prefix + name``) to this block's; other keys are kept unchanged."""
        renamed = {prefix + old: (prefix + new, reshape) for old, new, reshape in _RELEASE_NAMES}
        out = {}
        for key, value in state.items():
            if key in renamed:
                new_key, reshape = renamed[key]
                out[new_key] = reshape(value)
            else:
                out[key] = value
        return out


def _downsample(n_embd: int, stride: int, kind: str) -> nn.Module:
    if stride == 1:
        return nn.Identity()
    if kind == "max":
        return nn.MaxPool1d(stride + 1, stride=stride, padding=(stride + 1) // 2)
    if kind == "avg":
        return nn.Sequential(nn.AvgPool1d(stride, stride=stride), PointwiseConv1d(n_embd, n_embd))
    raise ValueError(f"GMGBlock: downsample_type must be 'max' or 'avg', got {kind!r}")
