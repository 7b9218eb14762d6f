"""Conv2dNorm: a convolution with an optional norm child, named like detectron2's Conv2d.

Keeping the norm as a child of the conv (``res2.0.conv1.norm``) is what makes detectron2 and
MSRA weights map one to one onto ours (docs/internals.md, "Parameter names").
"""

from typing import Optional

import torch
from torch import nn

from .norm import NormArg, get_norm, is_no_norm

__all__ = ["Conv2dNorm", "c2_msra_fill", "make_conv"]


class Conv2dNorm(nn.Conv2d):
    """``nn.Conv2d`` followed by ``self.norm`` when one is given; never an activation.

    Args:
        *args, **kwargs: as ``nn.Conv2d``.
        norm: a norm module applied to the convolution's output, or None.
    """

    def __init__(self, *args, norm: Optional[nn.Module] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # nn.Conv2d.forward's own body: TorchScript cannot compile super().forward.
        x = self._conv_forward(x, self.weight, self.bias)
        if self.norm is not None:
            x = self.norm(x)
        return x


def c2_msra_fill(module: nn.Module) -> None:
    """He initialization (He et al. 2015, "Delving deep into rectifiers"), as the paper's
    Sec. 3.4 prescribes: normal with std sqrt(2 / fan_out), zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def make_conv(
    in_ch: int,
    out_ch: int,
    k: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    norm: NormArg = None,
    post_norm: bool = True,
    bias: Optional[bool] = None,
) -> Conv2dNorm:
    """A He-initialized k x k Conv2dNorm ("same" padding for odd k), the conv of every block,
    stem and VGG layer.

    Args:
        in_ch, out_ch, k, stride, dilation, groups: as ``nn.Conv2d`` (padding dilation * (k // 2)).
        norm: norm name or factory (see ``get_norm``).
        post_norm: give the conv its norm as the ``.norm`` child; False for pre-activation
            blocks, whose norms precede the conv and are built by the block.
        bias: default: a bias only when no norm follows (a bias before BN is redundant).
    """
    has_norm = post_norm and not is_no_norm(norm)
    conv = Conv2dNorm(
        in_ch,
        out_ch,
        kernel_size=k,
        stride=stride,
        padding=dilation * (k // 2),
        dilation=dilation,
        groups=groups,
        bias=is_no_norm(norm) if bias is None else bias,
        norm=get_norm(norm, out_ch) if has_norm else None,
    )
    c2_msra_fill(conv)
    return conv
