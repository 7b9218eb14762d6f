"""Box heads: what runs on each pooled RoI before the class/box predictor.

- ``Res5BoxHead``: the paper's ResNet detector (Appendix A, "Faster R-CNN + ResNet"): RoI
  pooling on res4 (stride 16), then all of conv5_x (res5, its first block at stride 2) and
  global average pooling, as the head, i.e. "the same structure as the classification net".
- ``VGGFCHead``: the original Faster R-CNN / VGG-16 head, fc6 and fc7 (4096 each, ReLU,
  dropout as VGG trains it), named so that VGG ImageNet fc6/fc7 weights load into it.
- ``FastRCNNConvFCHead``: the FPN paper's 2-fc (1024) "2mlp" head.
Each returns one flat vector per RoI, which torchvision's FastRCNNPredictor takes.
"""

import torch
from torch import Tensor, nn

from ...utils.errors import ArgumentError
from ..layers import check_positive_int

__all__ = [
    "Res5BoxHead",
    "VGGFCHead",
    "FastRCNNConvFCHead",
    "check_vgg_fc_head_arguments",
    "check_conv_fc_head_arguments",
]


@torch.jit.ignore
def res5_feature(x) -> Tensor:
    """A Backbone-style res5 returns its features by name; a Sequential the tensor."""
    return x["res5"] if isinstance(x, dict) else x


class Res5BoxHead(nn.Module):
    """res5 (stride 2) + global average pooling over each pooled RoI.

    Args:
        res5: the res5 stage (from ``resnet_det.modeling.build_res5_head``); kept as the child
            named ``res5`` so that ImageNet "res5.*" weights map onto it one to one.
        out_channels: channels res5 outputs (2048 for bottleneck nets, 512 for R18/34).
    """

    def __init__(self, *, res5: nn.Module, out_channels: int):
        super().__init__()
        self.res5 = res5
        self.out_channels = int(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.res5(x)
        if not torch.jit.is_scripting():  # scripted, res5 is the builder's Sequential
            x = res5_feature(x)
        return x.mean(dim=(2, 3))


def check_vgg_fc_head_arguments(
    *, in_channels: int = 512, pooler_resolution: int = 7, fc_dim: int = 4096, dropout: float = 0.5
) -> None:
    """``VGGFCHead``'s argument check (same arguments)."""
    if pooler_resolution != 7:
        raise ArgumentError(
            "pooler_resolution",
            f"VGGFCHead: pooler_resolution={pooler_resolution!r}: VGG's fc6 takes 7x7 pooled "
            "features (pool5's size)",
        )
    check_positive_int("in_channels", in_channels)
    check_positive_int("fc_dim", fc_dim)
    if not 0.0 <= dropout < 1.0:
        raise ArgumentError("dropout", f"VGGFCHead: dropout={dropout!r} must be in [0, 1)")


class VGGFCHead(nn.Module):
    """VGG's fc6/fc7 on a 512x7x7 RoIPool output (Ren et al., Faster R-CNN, Sec. 3).

    Args:
        in_channels: channels of the pooled feature (512 for conv5_3).
        pooler_resolution: side of the pooled feature (7, as VGG's pool5).
        fc_dim: width of fc6 and fc7 (4096 in VGG-16).
        dropout: dropout after each fc in training (0.5, as VGG and Fast R-CNN train them).
    """

    def __init__(
        self,
        *,
        in_channels: int = 512,
        pooler_resolution: int = 7,
        fc_dim: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__()
        check_vgg_fc_head_arguments(
            in_channels=in_channels,
            pooler_resolution=pooler_resolution,
            fc_dim=fc_dim,
            dropout=dropout,
        )
        self.fc6 = nn.Linear(in_channels * pooler_resolution * pooler_resolution, fc_dim)
        self.fc7 = nn.Linear(fc_dim, fc_dim)
        self.dropout = float(dropout)
        self.out_channels = int(fc_dim)
        for fc in (self.fc6, self.fc7):
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        # Written out rather than a loop over (fc6, fc7), which TorchScript cannot compile.
        x = torch.relu(self.fc6(x.flatten(1)))
        if self.dropout > 0:
            x = nn.functional.dropout(x, self.dropout, self.training)
        x = torch.relu(self.fc7(x))
        if self.dropout > 0:
            x = nn.functional.dropout(x, self.dropout, self.training)
        return x


def check_conv_fc_head_arguments(
    *, in_channels: int = 256, pooler_resolution: int = 7, num_fc: int = 2, fc_dim: int = 1024
) -> None:
    """``FastRCNNConvFCHead``'s argument check (same arguments)."""
    for name, value in (
        ("in_channels", in_channels),
        ("pooler_resolution", pooler_resolution),
        ("num_fc", num_fc),
        ("fc_dim", fc_dim),
    ):
        check_positive_int(name, value)


class FastRCNNConvFCHead(nn.Module):
    """``num_fc`` fully connected layers (ReLU) on the flattened pooled feature.

    Args:
        in_channels: channels of the pooled feature (FPN.OUT_CHANNELS).
        pooler_resolution: side of the pooled feature (7).
        num_fc: number of fc layers (2 in the FPN paper's head).
        fc_dim: width of each fc layer (1024).
    """

    def __init__(
        self, *, in_channels: int, pooler_resolution: int = 7, num_fc: int = 2, fc_dim: int = 1024
    ):
        super().__init__()
        check_conv_fc_head_arguments(
            in_channels=in_channels,
            pooler_resolution=pooler_resolution,
            num_fc=num_fc,
            fc_dim=fc_dim,
        )
        dims = [in_channels * pooler_resolution * pooler_resolution] + [fc_dim] * num_fc
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out_channels = int(fc_dim)
        for fc in self.fcs:
            # Xavier-fill, as detectron2's c2_xavier_fill for the box head's fcs.
            nn.init.kaiming_uniform_(fc.weight, a=1)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for fc in self.fcs:
            x = torch.relu(fc(x))
        return x
