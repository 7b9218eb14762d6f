"""Residual blocks of He et al. 2015 (Fig. 2 and Fig. 5) and of the pre-activation follow-up
("Identity Mappings in Deep Residual Networks", He et al. 2016), with the three shortcut
options of Sec. 3.3 and the plain (no-shortcut) baselines of Sec. 4.1.

Every block has ``in_channels``, ``out_channels`` and ``stride`` attributes and a
``zero_init_residual()`` method; post-activation blocks name their convs conv1..conv3 and the
projection ``shortcut`` (detectron2 naming).
"""

from typing import List, Optional, Type

import torch
import torch.nn.functional as F
from torch import nn

from .layers import make_conv
from .norm import NormArg, check_norm, get_norm

__all__ = [
    "SHORTCUT_TYPES",
    "check_shortcut",
    "ShortcutA",
    "make_shortcut",
    "BasicBlock",
    "BottleneckBlock",
    "PreActBasicBlock",
    "PreActBottleneckBlock",
    "make_stage",
]

# Sec. 3.3: (A) zero-padding shortcuts for increasing dimensions, all parameter-free;
# (B) projections for increasing dimensions, identity otherwise; (C) all projections.
SHORTCUT_TYPES = ("A", "B", "C")


def check_shortcut(shortcut: str) -> None:
    if shortcut not in SHORTCUT_TYPES:
        raise ValueError(
            f"resnet_det: shortcut={shortcut!r} is not a shortcut option; choose 'A' "
            "(zero-padding identity), 'B' (projection only where the shape changes) or "
            "'C' (projection everywhere)"
        )


class ShortcutA(nn.Module):
    """Option A (Sec. 3.3): identity with extra zero channels and stride-``s`` subsampling.

    Parameter-free, so a net with option A has exactly its plain counterpart's parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"resnet_det: shortcut='A' cannot reduce channels ({in_channels} -> {out_channels})"
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            # Same positions a 1x1 stride-s convolution would read (ceil(H / s) outputs).
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(
    shortcut: str, in_channels: int, out_channels: int, stride: int, norm: NormArg
) -> Optional[nn.Module]:
    """The shortcut module for a block, or None for the identity."""
    check_shortcut(shortcut)
    changes_shape = in_channels != out_channels or stride != 1
    if shortcut == "C" or (shortcut == "B" and changes_shape):
        # Projection W_s x (Eq. 2), a 1x1 conv with BN (Sec. 3.4: BN after each conv).
        return make_conv(in_channels, out_channels, 1, stride=stride, norm=norm)
    if shortcut == "A" and changes_shape:
        return ShortcutA(in_channels, out_channels, stride)
    return None


class _Block(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        residual: bool,
        *,
        norm: NormArg,
        shortcut: str,
        shortcut_norm: NormArg,
    ):
        """Checks ``norm`` and builds the ``shortcut`` child (None for a plain block or an
        identity shortcut), whose projection uses ``shortcut_norm``."""
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.residual = residual
        check_norm(norm)
        self.shortcut = (
            make_shortcut(shortcut, in_channels, out_channels, stride, shortcut_norm)
            if residual
            else None
        )

    def _add_shortcut(
        self, out: torch.Tensor, x: torch.Tensor, shortcut_input: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Eq. (1)/(2): F(x) + x or F(x) + W_s x; ``out`` unchanged for a plain block. A
        projection or option-A shortcut reads ``shortcut_input`` when given (else ``x``)."""
        if not self.residual:
            return out
        sc = (
            x
            if self.shortcut is None
            else self.shortcut(x if shortcut_input is None else shortcut_input)
        )
        # In place, as detectron2 and torchvision add it: ``out`` is the branch's fresh last
        # conv/norm output, which no backward needs; the same sum, one tensor less. Out of place
        # where autocast left the two in different dtypes (the sum takes the wider one).
        return out.add_(sc) if out.dtype == sc.dtype else out + sc

    def _last_norm(self) -> Optional[nn.Module]:
        raise NotImplementedError

    def zero_init_residual(self) -> None:
        """Start the residual branch at zero (Goyal et al. 2017): zero the last norm's gamma,
        so each block begins as its shortcut."""
        if not self.residual:
            raise ValueError(
                "resnet_det: zero_init_residual=True needs residual blocks; a plain net "
                "(no shortcuts) would output zeros"
            )
        norm = self._last_norm()
        if norm is None or getattr(norm, "weight", None) is None:
            raise ValueError(
                "resnet_det: zero_init_residual=True needs a norm with a scale (gamma) "
                "after the block's last conv; norm='none' has none"
            )
        with torch.no_grad():
            norm.weight.zero_()


class BasicBlock(_Block):
    """Two 3x3 convs (Fig. 5 left), used for ResNet-18/34 and the CIFAR nets.

    Args:
        in_channels, out_channels: channels in and out.
        stride: stride of the first 3x3 conv (2 in the first block of res3..res5).
        norm: norm name, see ``get_norm``.
        shortcut: "A", "B" or "C" (Sec. 3.3). Ignored when ``residual`` is False.
        residual: False builds the plain block of Sec. 4.1 (no shortcut).
        dilation: dilation of both 3x3 convs (for res5_dilation=2).
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
            in_channels,
            out_channels,
            stride,
            residual,
            norm=norm,
            shortcut=shortcut,
            shortcut_norm=norm,
        )
        self.conv1 = make_conv(
            in_channels, out_channels, 3, stride=stride, dilation=dilation, norm=norm
        )
        self.conv2 = make_conv(out_channels, out_channels, 3, dilation=dilation, norm=norm)

    def _last_norm(self):
        return self.conv2.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        # Eq. (1)/(2): y = F(x) + x or F(x) + W_s x, then the second nonlinearity.
        return F.relu_(self._add_shortcut(out, x))


class BottleneckBlock(_Block):
    """1x1 reduce, 3x3, 1x1 restore (Fig. 5 right), used for ResNet-50/101/152 and up.

    Args:
        in_channels, out_channels: channels in and out (4x the bottleneck in the paper).
        bottleneck_channels: channels of the 3x3 conv (groups * width_per_group for ResNeXt).
        stride: stride of the block (2 in the first block of res3..res5).
        num_groups: groups of the 3x3 conv (ResNeXt).
        norm: norm name, see ``get_norm``.
        stride_in_1x1: True puts the stride in the first 1x1 conv as the paper and MSRA's
            released models do; False puts it in the 3x3 conv (torchvision's "v1.5").
        dilation: dilation of the 3x3 conv (for res5_dilation=2).
        shortcut: "A", "B" or "C" (Sec. 3.3). Ignored when ``residual`` is False.
        residual: False builds a plain block (no shortcut).
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
        stride_in_1x1: bool = True,
        dilation: int = 1,
        shortcut: str = "B",
        residual: bool = True,
    ):
        super().__init__(
            in_channels,
            out_channels,
            stride,
            residual,
            norm=norm,
            shortcut=shortcut,
            shortcut_norm=norm,
        )
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = make_conv(in_channels, bottleneck_channels, 1, stride=stride_1x1, norm=norm)
        self.conv2 = make_conv(
            bottleneck_channels,
            bottleneck_channels,
            3,
            stride=stride_3x3,
            dilation=dilation,
            groups=num_groups,
            norm=norm,
        )
        self.conv3 = make_conv(bottleneck_channels, out_channels, 1, norm=norm)

    def _last_norm(self):
        return self.conv3.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        return F.relu_(self._add_shortcut(out, x))


class _PreActBlock(_Block):
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
            in_channels,
            out_channels,
            stride,
            residual,
            norm=norm,
            shortcut=shortcut,
            shortcut_norm=None,
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
            in_channels,
            out_channels,
            stride,
            residual,
            norm=norm,
            shortcut=shortcut,
            shortcut_norm=None,
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


def make_stage(
    block_class: Type[nn.Module],
    num_blocks: int,
    *,
    in_channels: int,
    out_channels: int,
    first_stride: int = 1,
    **block_kwargs,
) -> List[nn.Module]:
    """``num_blocks`` blocks; the first takes ``in_channels`` and ``first_stride`` (the paper
    downsamples "by conv3_1, conv4_1, and conv5_1 with a stride of 2", Table 1).

    Args:
        block_class: one of the block classes above.
        num_blocks: number of blocks.
        in_channels, out_channels: channels into the stage's first block and out of each block.
        first_stride: stride of the first block; the others use 1.
        **block_kwargs: passed to every block (norm, shortcut, bottleneck_channels, ...).
    """
    blocks = []
    for i in range(num_blocks):
        blocks.append(
            block_class(
                in_channels if i == 0 else out_channels,
                out_channels,
                stride=first_stride if i == 0 else 1,
                **block_kwargs,
            )
        )
    return blocks
