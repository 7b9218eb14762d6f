"""CIFAR-10 ResNets (He et al. 2015, Sec. 4.2) and their pre-activation versions (He et al.
2016, "Identity Mappings in Deep Residual Networks").

Sec. 4.2: a 3x3 conv with 16 filters, then three stages of 2n layers on maps of 32, 16, 8
pixels with 16, 32, 64 filters, global average pooling and a 10-way fc: 6n+2 layers. "We use
identity shortcuts in all cases (i.e., option A)", so ResNets have exactly the plain nets'
parameters. Pre-activation bottleneck nets (ResNet-1001) have 9n+2 layers and 4x wider stage
outputs; following the authors' code, their shortcuts project where the shape changes (B).

The pre-activation blocks (He et al. 2016, Fig. 1b / 4e) and the CIFAR stem live here; the
post-activation blocks are ResNet's (resnet_det.modeling.resnet).
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ArgumentError
from .layers import (
    NormArg,
    check_bool,
    check_freeze_at,
    check_norm,
    check_num_classes,
    check_positive_int,
    get_norm,
    make_conv,
    resolve_out_features,
)
from .resnet import (
    BasicBlock,
    BottleneckBlock,
    ResidualBlock,
    ResNet,
    check_shortcut,
    make_stage,
)

__all__ = [
    "CifarResNet",
    "CifarStem",
    "PreActBasicBlock",
    "PreActBottleneckBlock",
    "build_cifar_resnet",
    "check_cifar_resnet_arguments",
    "cifar_blocks_per_stage",
]

STAGE_NAMES = ("res2", "res3", "res4")


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
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 1
        self.activate = activate
        self.conv1 = make_conv(in_channels, out_channels, 3, norm=norm, post_norm=activate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return F.relu_(x) if self.activate else x


class _PreActBlock(ResidualBlock):
    """Pre-activation (He et al. 2016, Fig. 1b / 4e): norm-ReLU before each conv, nothing
    after the addition, so the shortcut path is a clean identity across the whole net.

    The norms are separate children (``norm1`` precedes ``conv1``); when the shape changes the
    shortcut reads the pre-activated input, as the authors' code does.
    """

    def zero_init_residual(self) -> None:
        """The residual branch ends in a conv here, so zero that conv's weights."""
        if not self.residual:
            super().zero_init_residual()
        with torch.no_grad():
            self._last_conv().weight.zero_()


class PreActBasicBlock(_PreActBlock):
    """Pre-activation basic block (norm-ReLU-3x3, norm-ReLU-3x3), for preact_resnet110_cifar.

    Args: as ``BasicBlock``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        norm: NormArg = "BN",
        shortcut: str = "B",
        residual: bool = True,
        dilation: int = 1,
    ):
        super().__init__(
            in_channels, out_channels, stride, residual, shortcut=shortcut, shortcut_norm=None
        )
        self.norm1 = get_norm(norm, in_channels)
        self.conv1 = make_conv(
            in_channels,
            out_channels,
            3,
            stride=stride,
            dilation=dilation,
            norm=norm,
            post_norm=False,
        )
        self.norm2 = get_norm(norm, out_channels)
        self.conv2 = make_conv(
            out_channels, out_channels, 3, dilation=dilation, norm=norm, post_norm=False
        )

    def _last_conv(self):
        return self.conv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # norm-ReLU written out per norm: TorchScript takes no module as an argument.
        pre = F.relu(self.norm1(x)) if self.norm1 is not None else F.relu(x)
        out = self.conv1(pre)
        out = F.relu(self.norm2(out)) if self.norm2 is not None else F.relu(out)
        out = self.conv2(out)
        return self._add_shortcut(out, x, pre)


class PreActBottleneckBlock(_PreActBlock):
    """Pre-activation bottleneck (norm-ReLU-1x1, norm-ReLU-3x3, norm-ReLU-1x1), for
    preact_resnet1001_cifar.

    Args: as ``BottleneckBlock`` (no groups).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bottleneck_channels: int,
        stride: int = 1,
        num_groups: int = 1,
        norm: NormArg = "BN",
        stride_in_1x1: bool = False,
        dilation: int = 1,
        shortcut: str = "B",
        residual: bool = True,
    ):
        super().__init__(
            in_channels, out_channels, stride, residual, shortcut=shortcut, shortcut_norm=None
        )
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.norm1 = get_norm(norm, in_channels)
        self.conv1 = make_conv(
            in_channels, bottleneck_channels, 1, stride=stride_1x1, norm=norm, post_norm=False
        )
        self.norm2 = get_norm(norm, bottleneck_channels)
        self.conv2 = make_conv(
            bottleneck_channels,
            bottleneck_channels,
            3,
            stride=stride_3x3,
            dilation=dilation,
            groups=num_groups,
            norm=norm,
            post_norm=False,
        )
        self.norm3 = get_norm(norm, bottleneck_channels)
        self.conv3 = make_conv(bottleneck_channels, out_channels, 1, norm=norm, post_norm=False)

    def _last_conv(self):
        return self.conv3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.norm1(x)) if self.norm1 is not None else F.relu(x)
        out = self.conv1(pre)
        out = F.relu(self.norm2(out)) if self.norm2 is not None else F.relu(out)
        out = self.conv2(out)
        out = F.relu(self.norm3(out)) if self.norm3 is not None else F.relu(out)
        out = self.conv3(out)
        return self._add_shortcut(out, x, pre)


def cifar_blocks_per_stage(depth: int, bottleneck: bool = False) -> int:
    """n for a depth of 6n+2 (basic blocks) or 9n+2 (bottleneck blocks); ArgumentError
    otherwise."""
    per_block = 3 if bottleneck else 2
    layers_per_n = 3 * per_block
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < layers_per_n + 2
        or ((depth - 2) % layers_per_n)
    ):
        examples = "164, 1001" if bottleneck else "20, 32, 44, 56, 110, 1202"
        kind = "bottleneck" if bottleneck else "basic"
        raise ArgumentError(
            "depth",
            f"resnet_det: depth={depth!r} is not a CIFAR ResNet depth; {kind} blocks need "
            f"depth = {layers_per_n}n+2 (e.g. {examples})",
        )
    return (depth - 2) // layers_per_n


def check_cifar_resnet_arguments(
    *,
    depth: int = 20,
    num_classes: Optional[int] = 10,
    out_features: Optional[Sequence[str]] = None,
    shortcut: Optional[str] = None,
    norm: NormArg = "BN",
    residual: bool = True,
    preact: bool = False,
    bottleneck: bool = False,
    stride_in_1x1: bool = False,
    zero_init_residual: bool = False,
    in_channels: int = 3,
    width: int = 16,
    freeze_at: int = 0,
) -> None:
    """Raise ArgumentError naming the first argument of ``CifarResNet`` (same arguments) that
    it would refuse, without building anything."""
    for name, value in (
        ("residual", residual),
        ("preact", preact),
        ("bottleneck", bottleneck),
        ("stride_in_1x1", stride_in_1x1),
        ("zero_init_residual", zero_init_residual),
    ):
        check_bool(name, value)
    cifar_blocks_per_stage(depth, bottleneck)
    if shortcut is not None:
        check_shortcut(shortcut)
    check_norm(norm)
    check_num_classes(num_classes)
    check_positive_int("in_channels", in_channels)
    check_positive_int("width", width)
    resolve_out_features(out_features, ("stem",) + STAGE_NAMES, num_classes)
    check_freeze_at(freeze_at, ("stem",) + STAGE_NAMES)


class CifarResNet(ResNet):
    """The CIFAR-10 ResNet / plain net / pre-activation ResNet.

    Features: "stem" (stride 1), "res2" (1), "res3" (2), "res4" (4).

    Args:
        depth: 6n+2 (basic blocks) or 9n+2 (``bottleneck=True``).
        num_classes: classifier outputs (10); None for a backbone.
        out_features: backbone outputs among stem, res2, res3, res4 (default: res4).
        shortcut: "A" (default, Sec. 4.2), "B" or "C"; default "B" for pre-activation nets.
        norm: norm name, see ``get_norm`` ("GN" needs channels divisible by 32, which 16 is not).
        residual: False builds the plain net.
        preact: pre-activation blocks (norm-ReLU before each conv) and a final norm-ReLU.
        bottleneck: bottleneck blocks (4x wider outputs), 9n+2 layers.
        stride_in_1x1: for bottleneck blocks, where the stride goes (default False: in the 3x3).
        zero_init_residual: start each residual branch at zero.
        in_channels: image channels.
        width: filters of the first stage (16); the others double it.
        freeze_at: see ``ResNet.freeze``.
    """

    def __init__(
        self,
        *,
        depth: int = 20,
        num_classes: Optional[int] = 10,
        out_features: Optional[Sequence[str]] = None,
        shortcut: Optional[str] = None,
        norm: NormArg = "BN",
        residual: bool = True,
        preact: bool = False,
        bottleneck: bool = False,
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
        in_channels: int = 3,
        width: int = 16,
        freeze_at: int = 0,
    ):
        check_cifar_resnet_arguments(
            depth=depth,
            num_classes=num_classes,
            out_features=out_features,
            shortcut=shortcut,
            norm=norm,
            residual=residual,
            preact=preact,
            bottleneck=bottleneck,
            stride_in_1x1=stride_in_1x1,
            zero_init_residual=zero_init_residual,
            in_channels=in_channels,
            width=width,
            freeze_at=freeze_at,
        )
        n = cifar_blocks_per_stage(depth, bottleneck)
        if shortcut is None:
            shortcut = "B" if preact else "A"
        valid = ["stem", *STAGE_NAMES]
        requested = resolve_out_features(out_features, valid, num_classes)
        num_stages = 3 if num_classes is not None else max(valid.index(f) for f in requested)

        if preact:
            block_class = PreActBottleneckBlock if bottleneck else PreActBasicBlock
        else:
            block_class = BottleneckBlock if bottleneck else BasicBlock
        expansion = 4 if bottleneck else 1
        stem = CifarStem(in_channels, width, norm=norm, activate=not preact)
        stages, in_ch = [], width
        for idx in range(num_stages):
            out_ch = width * 2**idx * expansion
            kwargs = dict(out_channels=out_ch, norm=norm, shortcut=shortcut, residual=residual)
            if bottleneck:
                kwargs.update(bottleneck_channels=width * 2**idx, stride_in_1x1=stride_in_1x1)
            # Sec. 4.2: "subsampling is performed by convolutions with a stride of 2".
            stages.append(
                make_stage(
                    block_class, n, in_channels=in_ch, first_stride=1 if idx == 0 else 2, **kwargs
                )
            )
            in_ch = out_ch
        # Pre-activation nets end with norm-ReLU before pooling (the last block adds
        # un-normalized maps).
        final_norm = get_norm(norm, in_ch) if preact and num_classes is not None else None
        super().__init__(
            stem,
            stages,
            num_classes=num_classes,
            out_features=out_features,
            stage_names=STAGE_NAMES,
            final_norm=final_norm,
            freeze_at=freeze_at,
        )
        self.depth = depth
        if zero_init_residual:
            self.zero_init_residual()


def build_cifar_resnet(**kwargs) -> CifarResNet:
    """``CifarResNet(**kwargs)``; see its Args."""
    return CifarResNet(**kwargs)
