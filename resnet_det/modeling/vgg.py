"""VGG-16/19 (Simonyan & Zisserman 2015), the paper's baseline (Table 3, Sec. 4.1, and the
VGG-16 Faster R-CNN of Table 7/8).

Parameter names: ``vgg_block{k}.conv{k}_{j}`` (a Conv2dNorm; with a norm, ``.norm`` under it)
and ``fc6``, ``fc7``, ``fc8``. Block k>1 starts with the max pool that ends block k-1, so
block k's output "vgg_conv{k}" is conv{k}_last after ReLU at stride 2^(k-1); "vgg_conv5"
(conv5_3 for VGG-16) is the detection feature at stride 16, pool5 is not applied in backbone
mode. In classifier mode: pool5, adaptive average pool to 7x7 (as torchvision, so small inputs
work), then fc6/fc7 (4096, ReLU, dropout 0.5) and fc8.
"""

from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, freeze_module
from .checks import check_num_classes, check_positive_int, resolve_out_features
from .layers import make_conv
from .norm import NormArg, check_norm

__all__ = ["VGG", "build_vgg", "VGG_DEPTHS", "VGG_CHANNELS"]

VGG_CHANNELS = (64, 128, 256, 512, 512)
VGG_DEPTHS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FEATURE_NAMES = tuple(f"vgg_conv{k}" for k in range(1, 6))


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
        channels: output channels of the 5 conv blocks (VGG's 64, 128, 256, 512, 512; narrower
            widths make a small VGG-layout net, as the reproduction demo's).
        fc_dim: width of fc6 and fc7 (VGG's 4096).
        freeze_at: see ``freeze``.
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
        channels: Sequence[int] = VGG_CHANNELS,
        fc_dim: int = 4096,
    ):
        super().__init__()
        if depth not in VGG_DEPTHS:
            raise ValueError(
                f"resnet_det: depth={depth!r} is not a VGG depth; choose one of "
                + ", ".join(str(d) for d in VGG_DEPTHS)
            )
        check_norm(norm)
        check_num_classes(num_classes)
        check_positive_int("in_channels", in_channels)
        check_positive_int("fc_dim", fc_dim)
        if len(channels) != len(VGG_CHANNELS):
            raise ValueError(
                f"resnet_det: channels={list(channels)!r} needs one width per conv block (5)"
            )
        for i, c in enumerate(channels):
            check_positive_int(f"channels[{i}]", c)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"resnet_det: dropout={dropout!r} must be in [0, 1)")
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
        if isinstance(freeze_at, bool) or not isinstance(freeze_at, int) or not 0 <= freeze_at <= 5:
            raise ValueError(
                f"resnet_det: freeze_at={freeze_at!r} must be an int from 0 (nothing) to 5 "
                "(all conv blocks) for VGG"
            )
        for k, name in enumerate(self.block_names, start=1):
            if freeze_at >= k:
                freeze_module(getattr(self, name))
        return self


def build_vgg(**kwargs) -> VGG:
    """``VGG(**kwargs)``; see its Args."""
    return VGG(**kwargs)
