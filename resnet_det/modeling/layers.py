"""Conv2dNorm: a convolution with an optional norm child, named like detectron2's Conv2d.

Keeping the norm as a child of the conv (``res2.0.conv1.norm``) is what makes detectron2 and
MSRA weights map one to one onto ours (docs/internals.md, "Parameter names").
"""
from typing import Optional

import torch
from torch import nn

__all__ = ["Conv2dNorm", "c2_msra_fill"]


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
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return x


def c2_msra_fill(module: nn.Module) -> None:
    """He initialization (He et al. 2015, "Delving deep into rectifiers"), as the paper's
    Sec. 3.4 prescribes: normal with std sqrt(2 / fan_out), zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)
