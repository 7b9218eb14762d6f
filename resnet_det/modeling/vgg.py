"""VGG-16/19 (Simonyan & Zisserman 2015), the paper's baseline (Table 3, Sec. 4.1, and the
VGG-16 Faster R-CNN of Table 7/8).

Parameter names: ``vgg_block{k}.conv{k}_{j}`` (a Conv2dNorm; with a norm, ``.norm`` under it)
and ``fc6``, ``fc7``, ``fc8``. Block k>1 starts with the max pool that ends block k-1, so
block k's output "vgg_conv{k}" is conv{k}_last after ReLU at stride 2^(k-1); "vgg_conv5"
(conv5_3 for VGG-16) is the detection feature at stride 16, pool5 is not applied in backbone
mode. In classifier mode: pool5, adaptive average pool to 7x7 (as torchvision, so small inputs
work), then fc6/fc7 (4096, ReLU, dropout 0.5) and fc8.

``width`` scales the layout: the reproduction demo's VGG-16 (configs/reproduce_demo/) is VGG-16
at a quarter width (``build_vgg16_quarter``; the classifier ``vgg16_quarter`` and the backbone
``build_vgg16_quarter_backbone`` of the model registries). VGG-16 has 138M parameters (103M of
them in fc6) and 15.3 GFLOPs per 224 px image, out of reach of the demo's few CPU minutes; the
quarter keeps what makes it the VGG-16 Faster R-CNN of Ren et al. (13 3x3 convs in 5 blocks,
conv5_3 at stride 16 shared with the RPN, 7x7 RoI pooling, fc6 and fc7 initialised from the
classifier) with convs of 16-128 channels and fc6/fc7 of 256: 2.6M parameters, and VGG-16's
parameter names, so its checkpoints take the real VGG-16's code paths.
"""

from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ArgumentError
from .backbone import Backbone, freeze_module
from .layers import (
    NormArg,
    check_freeze_at,
    check_norm,
    check_num_classes,
    check_positive_int,
    make_conv,
    resolve_out_features,
)

__all__ = [
    "VGG",
    "build_vgg",
    "build_vgg16_quarter",
    "check_vgg_arguments",
    "vgg_widths",
    "VGG_DEPTHS",
    "VGG_CHANNELS",
    "VGG_FC_DIM",
    "QUARTER_WIDTH",
]

VGG_CHANNELS = (64, 128, 256, 512, 512)
VGG_FC_DIM = 4096
VGG_DEPTHS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FEATURE_NAMES = tuple(f"vgg_conv{k}" for k in range(1, 6))
BLOCK_NAMES = tuple(f"vgg_block{k}" for k in range(1, 6))
# The reproduction demo's VGG-16: convs (16, 32, 64, 128, 128), fc6/fc7 256.
QUARTER_WIDTH = 0.25


def vgg_widths(width: float = 1.0):
    """(channels of the 5 conv blocks, width of fc6 and fc7) of VGG at ``width``: the convs
    scaled by ``width``, fc6/fc7 by ``width`` squared (fc6 reads ``width`` times fewer
    channels, and narrower fcs keep it from dominating the net: 256 at a quarter width)."""
    return tuple(int(c * width) for c in VGG_CHANNELS), int(VGG_FC_DIM * width * width)


def check_vgg_arguments(
    *,
    depth: int = 16,
    num_classes: Optional[int] = None,
    out_features: Optional[Sequence[str]] = None,
    norm: NormArg = "none",
    in_channels: int = 3,
    dropout: float = 0.5,
    freeze_at: int = 0,
    width: float = 1.0,
) -> None:
    """Raise ArgumentError naming the first argument of ``VGG`` (same arguments) that it would
    refuse, without building anything."""
    if depth not in VGG_DEPTHS:
        raise ArgumentError(
            "depth",
            f"resnet_det: depth={depth!r} is not a VGG depth; choose one of "
            + ", ".join(str(d) for d in VGG_DEPTHS),
        )
    check_norm(norm)
    check_num_classes(num_classes)
    check_positive_int("in_channels", in_channels)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise ArgumentError("width", f"resnet_det: width={width!r} must be in (0, 1]")
    if min(min(vgg_widths(width)[0]), vgg_widths(width)[1]) < 1:
        raise ArgumentError("width", f"resnet_det: width={width!r} leaves a layer no channels")
    if not 0.0 <= dropout < 1.0:
        raise ArgumentError("dropout", f"resnet_det: dropout={dropout!r} must be in [0, 1)")
    resolve_out_features(out_features, FEATURE_NAMES, num_classes)
    check_freeze_at(freeze_at, BLOCK_NAMES)


class VGG(Backbone):
    """VGG-16 or VGG-19.

    Args:
        depth: 16 or 19.
        num_classes: classifier outputs (1000); None for a backbone.
        out_features: backbone outputs among vgg_conv1..vgg_conv5 (default vgg_conv5).
        norm: "none" (default, as the original VGG) or a norm name (then like torchvision's
            vgg16_bn).
        in_channels: image channels.
        dropout: dropout probability after fc6 and fc7.
        freeze_at: see ``freeze``.
        width: fraction of VGG's widths (``vgg_widths``): 1 is VGG, ``QUARTER_WIDTH`` the
            reproduction demo's.
    """

    def __init__(
        self,
        *,
        depth: int = 16,
        num_classes: Optional[int] = None,
        out_features: Optional[Sequence[str]] = None,
        norm: NormArg = "none",
        in_channels: int = 3,
        dropout: float = 0.5,
        freeze_at: int = 0,
        width: float = 1.0,
    ):
        super().__init__()
        check_vgg_arguments(
            depth=depth,
            num_classes=num_classes,
            out_features=out_features,
            norm=norm,
            in_channels=in_channels,
            dropout=dropout,
            freeze_at=freeze_at,
            width=width,
        )
        channels, fc_dim = vgg_widths(width)
        self.depth = depth
        self.num_classes = num_classes
        self._out_features = resolve_out_features(out_features, FEATURE_NAMES, num_classes)
        num_blocks = (
            5
            if num_classes is not None
            else max(FEATURE_NAMES.index(f) for f in self._out_features) + 1
        )

        self.block_names = []
        ch = in_channels
        for k in range(1, num_blocks + 1):
            layers = OrderedDict()
            if k > 1:
                layers[f"pool{k - 1}"] = nn.MaxPool2d(kernel_size=2, stride=2)
            out_ch = channels[k - 1]
            for j in range(1, VGG_DEPTHS[depth][k - 1] + 1):
                # Biases even with a norm, as torchvision's vgg16_bn (so its weights load).
                layers[f"conv{k}_{j}"] = make_conv(ch, out_ch, 3, norm=norm, bias=True)
                layers[f"relu{k}_{j}"] = nn.ReLU(inplace=True)
                ch = out_ch
            name = f"vgg_block{k}"
            self.add_module(name, nn.Sequential(layers))
            self.block_names.append(name)
            self._out_feature_channels[FEATURE_NAMES[k - 1]] = out_ch
            self._out_feature_strides[FEATURE_NAMES[k - 1]] = 2 ** (k - 1)

        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.fc6 = nn.Linear(ch * 7 * 7, fc_dim)
            self.fc7 = nn.Linear(fc_dim, fc_dim)
            self.fc8 = nn.Linear(fc_dim, num_classes)
            self.dropout = nn.Dropout(dropout)
            # VGG's N(0, 0.01), its std scaled by sqrt(VGG-16's fan-in / this fan-in) so that a
            # narrower net's fc layers multiply the signal's scale as VGG-16's do (plain 0.01 on
            # 16x fewer inputs would shrink the logits ~30-fold); at VGG's widths the factor is 1.
            for fc, full_fan_in in (
                (self.fc6, VGG_CHANNELS[-1] * 49),
                (self.fc7, 4096),
                (self.fc8, 4096),
            ):
                nn.init.normal_(fc.weight, 0, 0.01 * (full_fan_in / fc.in_features) ** 0.5)
                nn.init.zeros_(fc.bias)
        self.freeze(freeze_at)

    @property
    def in_channels(self) -> int:
        return self.vgg_block1.conv1_1.in_channels

    def forward(self, x: torch.Tensor):
        outputs: Dict[str, torch.Tensor] = {}
        # The blocks by name among the children (TorchScript has no getattr by a variable name).
        for name, child in self.named_children():
            if name in self.block_names:
                x = child(x)
                feature_name = "vgg_conv" + name[len("vgg_block") :]
                if feature_name in self._out_features:
                    outputs[feature_name] = x
        if self.num_classes is None:
            return outputs
        x = F.max_pool2d(x, kernel_size=2, stride=2)  # pool5
        x = torch.flatten(self.avgpool(x), 1)
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)

    def freeze(self, freeze_at: int = 0) -> "VGG":
        """Freeze vgg_block1..vgg_block<freeze_at> (Faster R-CNN fixes conv1 and conv2 of
        VGG-16, i.e. freeze_at=2). Returns self."""
        check_freeze_at(freeze_at, BLOCK_NAMES)
        for k, name in enumerate(self.block_names, start=1):
            if freeze_at >= k:
                freeze_module(getattr(self, name))
        return self


def build_vgg(**kwargs) -> VGG:
    """``VGG(**kwargs)``; see its Args."""
    return VGG(**kwargs)


def build_vgg16_quarter(**kwargs) -> VGG:
    """The reproduction demo's VGG-16 at a quarter width: ``VGG(depth=16,
    width=QUARTER_WIDTH, **kwargs)``; the other arguments as VGG's."""
    return VGG(**{"depth": 16, "width": QUARTER_WIDTH, **kwargs})
