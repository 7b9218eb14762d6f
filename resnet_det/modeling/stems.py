"""Stems: the layers before res2 (ImageNet, Table 1 "conv1" + pool) and the CIFAR stem
(Sec. 4.2: "The first layer is 3x3 convolutions")."""

import torch
import torch.nn.functional as F
from torch import nn

from .layers import make_conv
from .norm import NormArg, check_norm

__all__ = ["BasicStem", "CifarStem"]


class BasicStem(nn.Module):
    """7x7/2 conv with 64 filters, norm, ReLU, 3x3/2 max pool (Table 1): stride 4.

    Args:
        in_channels: image channels.
        out_channels: conv1 filters (64 in the paper).
        norm: norm name, see ``get_norm``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 64, *, norm: NormArg = "BN"):
        super().__init__()
        check_norm(norm)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 4
        self.conv1 = make_conv(in_channels, out_channels, 7, stride=2, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class CifarStem(nn.Module):
    """3x3/1 conv with 16 filters (Sec. 4.2), then norm and ReLU: stride 1.

    Args:
        in_channels: image channels.
        out_channels: filters (16 in the paper).
        norm: norm name, see ``get_norm``.
        activate: False leaves out norm and ReLU, for pre-activation nets whose first block
            starts with its own norm-ReLU (He et al. 2016).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 16,
        *,
        norm: NormArg = "BN",
        activate: bool = True,
    ):
        super().__init__()
        check_norm(norm)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 1
        self.activate = activate
        self.conv1 = make_conv(in_channels, out_channels, 3, norm=norm, post_norm=activate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return F.relu_(x) if self.activate else x
