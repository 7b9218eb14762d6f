"""ResNet (He et al. 2015): the residual blocks (Fig. 2, Fig. 5) with the three shortcut options
of Sec. 3.3 and the plain baselines of Sec. 4.1, the stem, the network (stem + res2..res5 +
optional classifier head, Table 1) and its builders, ``build_resnet`` and ``build_res5_head``
(res5 alone, the C4 detector's box head, Appendix A).

The default layout is the paper's (option B shortcuts, Sec. 3.3/4.1; stride in the first 1x1
of a bottleneck, as MSRA's released models). torchvision's ResNets ("v1.5") put the stride in
the 3x3 conv: build with ``stride_in_1x1=False`` to get exactly torchvision's function (and load
torchvision weights). The paper's FLOPs (Table 1) are for the stride-in-1x1 layout.

Every block has ``in_channels``, ``out_channels`` and ``stride`` attributes and a
``zero_init_residual()`` method; blocks name their convs conv1..conv3 and the projection
``shortcut`` (detectron2 naming).
"""

from typing import Dict, List, Optional, Sequence, Type

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ArgumentError
from .backbone import Backbone, freeze_module
from .layers import (
    NormArg,
    check_bool,
    check_freeze_at,
    check_norm,
    check_num_classes,
    check_positive_int,
    make_conv,
    resolve_out_features,
)

__all__ = [
    "SHORTCUT_TYPES",
    "RESNET_DEPTHS",
    "RESNET_STAGES",
    "check_shortcut",
    "ShortcutA",
    "make_shortcut",
    "BasicBlock",
    "BottleneckBlock",
    "make_stage",
    "BasicStem",
    "ResNet",
    "res2_channels",
    "check_resnet_arguments",
    "build_resnet",
    "check_res5_head_arguments",
    "build_res5_head",
]

# Sec. 3.3: (A) zero-padding shortcuts for increasing dimensions, all parameter-free;
# (B) projections for increasing dimensions, identity otherwise; (C) all projections.
SHORTCUT_TYPES = ("A", "B", "C")


def check_shortcut(shortcut) -> None:
    """``shortcut`` must be one of SHORTCUT_TYPES."""
    if shortcut not in SHORTCUT_TYPES:
        raise ArgumentError(
            "shortcut",
            f"resnet_det: shortcut={shortcut!r} is not a shortcut option; choose 'A' "
            "(zero-padding identity), 'B' (projection only where the shape changes) or "
            "'C' (projection everywhere)",
        )


# ------------------------------------------------------------------------------- shortcuts
class ShortcutA(nn.Module):
    """Option A (Sec. 3.3): identity with extra zero channels and stride-``s`` subsampling.

    Parameter-free, so a net with option A has exactly its plain counterpart's parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if out_channels < in_channels:
            raise ArgumentError(
                "shortcut",
                f"resnet_det: shortcut='A' cannot reduce channels ({in_channels} -> "
                f"{out_channels})",
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
    changes_shape = in_channels != out_channels or stride != 1
    if shortcut == "C" or (shortcut == "B" and changes_shape):
        # Projection W_s x (Eq. 2), a 1x1 conv with BN (Sec. 3.4: BN after each conv).
        return make_conv(in_channels, out_channels, 1, stride=stride, norm=norm)
    if shortcut == "A" and changes_shape:
        return ShortcutA(in_channels, out_channels, stride)
    check_shortcut(shortcut)  # an identity, unless the option is none of A, B, C
    return None


# ---------------------------------------------------------------------------------- blocks
class ResidualBlock(nn.Module):
    """What every block shares: the ``shortcut`` child (None for a plain block or an identity
    shortcut, built first so that the parameter order is detectron2's), the addition of
    Eq. (1)/(2) and ``zero_init_residual``.

    Args:
        in_channels, out_channels, stride: the block's shape.
        residual: False for a plain block (Sec. 4.1).
        shortcut: "A", "B" or "C".
        shortcut_norm: the norm of a projection shortcut (None for pre-activation blocks).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        residual: bool,
        *,
        shortcut: str,
        shortcut_norm: NormArg,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.residual = residual
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
            raise ArgumentError(
                "zero_init_residual",
                "resnet_det: zero_init_residual=True needs residual blocks; a plain net "
                "(no shortcuts) would output zeros",
            )
        norm = self._last_norm()
        if norm is None or getattr(norm, "weight", None) is None:
            raise ArgumentError(
                "zero_init_residual",
                "resnet_det: zero_init_residual=True needs a norm with a scale (gamma) "
                "after the block's last conv; norm='none' has none",
            )
        with torch.no_grad():
            norm.weight.zero_()


class BasicBlock(ResidualBlock):
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
            in_channels, out_channels, stride, residual, shortcut=shortcut, shortcut_norm=norm
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


class BottleneckBlock(ResidualBlock):
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
            in_channels, out_channels, stride, residual, shortcut=shortcut, shortcut_norm=norm
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
        block_class: a block class (BasicBlock, BottleneckBlock, the pre-activation blocks).
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


# ------------------------------------------------------------------------------------ stem
class BasicStem(nn.Module):
    """7x7/2 conv with 64 filters, norm, ReLU, 3x3/2 max pool (Table 1 "conv1" + pool): stride 4.

    Args:
        in_channels: image channels.
        out_channels: conv1 filters (64 in the paper).
        norm: norm name, see ``get_norm``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 64, *, norm: NormArg = "BN"):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = 4
        self.conv1 = make_conv(in_channels, out_channels, 7, stride=2, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


# --------------------------------------------------------------------------------- network
class ResNet(Backbone):
    """Stem, then named stages of blocks, then (if ``num_classes``) global average pooling and
    a fully-connected layer named ``linear``.

    Args:
        stem: module with ``out_channels`` and ``stride`` attributes.
        stages: list of stages, each a list of blocks (with ``out_channels``/``stride``).
        num_classes: None for a backbone (forward returns {name: feature}); an int for a
            classifier (forward returns logits).
        out_features: names to return in backbone mode (default: the last stage).
        stage_names: names of the stages (default res2, res3, ...); it may name stages after
            the built ones (out_features stops early): they still count for ``freeze``'s range,
            so that one freeze_at works for every out_features.
        final_norm: a norm applied (with ReLU) before pooling, for pre-activation nets.
        freeze_at: passed to ``freeze``.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[Sequence[nn.Module]],
        *,
        num_classes: Optional[int] = None,
        out_features: Optional[Sequence[str]] = None,
        stage_names: Optional[Sequence[str]] = None,
        final_norm: Optional[nn.Module] = None,
        freeze_at: int = 0,
    ):
        super().__init__()
        check_num_classes(num_classes)
        self.stem = stem
        self.num_classes = num_classes
        stage_names = list(stage_names or [f"res{i + 2}" for i in range(len(stages))])
        if len(stage_names) < len(stages):
            raise ArgumentError("stage_names", "resnet_det: stage_names needs one name per stage")
        self._freezable = ["stem"] + stage_names
        valid = ["stem"] + stage_names[: len(stages)]
        self._out_features = resolve_out_features(out_features, valid, num_classes)

        stride = stem.stride
        self._out_feature_strides = {"stem": stride}
        self._out_feature_channels = {"stem": stem.out_channels}
        self.stage_names: List[str] = []
        self.stages: List[nn.Module] = []
        for name, blocks in zip(stage_names, stages):
            blocks = list(blocks)
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            for block in blocks:
                stride *= block.stride
            self._out_feature_strides[name] = stride
            self._out_feature_channels[name] = blocks[-1].out_channels
        last_channels = self._out_feature_channels[valid[len(stages)]]

        self.final_norm = final_norm
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.linear = nn.Linear(last_channels, num_classes)
            # Small Gaussian init for the classifier, as detectron2 / MSRA do.
            nn.init.normal_(self.linear.weight, std=0.01)
            nn.init.zeros_(self.linear.bias)
        self.freeze(freeze_at)

    @property
    def in_channels(self) -> int:
        return self.stem.in_channels

    def forward(self, x: torch.Tensor):
        if x.dim() != 4:
            raise ValueError(
                f"resnet_det: ResNet takes (N, C, H, W) input, got shape {list(x.shape)}"
            )
        outputs: Dict[str, torch.Tensor] = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        # The stages by name among the children (registration order = stage order): TorchScript
        # can loop over named_children, not over the plain list self.stages.
        for name, child in self.named_children():
            if name in self.stage_names:
                x = child(x)
                if name in self._out_features:
                    outputs[name] = x
        if self.num_classes is None:
            return outputs
        if self.final_norm is not None:
            x = F.relu(self.final_norm(x))
        return self.linear(torch.flatten(self.avgpool(x), 1))

    def freeze(self, freeze_at: int = 0) -> "ResNet":
        """Freeze the stem (``freeze_at`` >= 1) and stages res2..res<freeze_at>: their
        parameters stop requiring grad and their BatchNorms become FrozenBatchNorm2d (the
        paper's detection fine-tuning fixes BN statistics, Appendix A). Returns self."""
        check_freeze_at(freeze_at, self._freezable)
        if freeze_at >= 1:
            self.stem = freeze_module(self.stem)
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                freeze_module(stage)
        return self

    def zero_init_residual(self) -> "ResNet":
        """Zero the last norm's gamma in every residual block (each block starts as identity).
        Returns self."""
        for stage in self.stages:
            for block in stage:
                block.zero_init_residual()
        return self


# -------------------------------------------------------------------------------- builders
# Table 1: blocks per stage (res2..res5); 200 is from the pre-activation paper.
RESNET_DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
    101: (BottleneckBlock, (3, 4, 23, 3)),
    152: (BottleneckBlock, (3, 8, 36, 3)),
    200: (BottleneckBlock, (3, 24, 36, 3)),
}
RESNET_STAGES = ("res2", "res3", "res4", "res5")


def _check_depth(depth) -> None:
    if depth not in RESNET_DEPTHS:
        raise ArgumentError(
            "depth",
            f"resnet_det: depth={depth!r} is not a ResNet depth; choose one of "
            + ", ".join(str(d) for d in RESNET_DEPTHS),
        )


def res2_channels(depth: int, stem_out_channels: int = 64) -> int:
    """Output channels of res2: the stem's width, times 4 for bottleneck blocks (Table 1)."""
    _check_depth(depth)
    return stem_out_channels * (4 if RESNET_DEPTHS[depth][0] is BottleneckBlock else 1)


def _check_blocks(
    *, depth, shortcut, norm, groups, width_per_group, stride_in_1x1, zero_init_residual, residual
) -> None:
    """The block options build_resnet and build_res5_head share."""
    _check_depth(depth)
    check_shortcut(shortcut)
    check_norm(norm)
    check_positive_int("groups", groups)
    check_positive_int("width_per_group", width_per_group)
    for name, value in (
        ("stride_in_1x1", stride_in_1x1),
        ("zero_init_residual", zero_init_residual),
        ("residual", residual),
    ):
        check_bool(name, value)
    # Basic blocks (Sec. 3.3, Table 1) have no grouped 3x3 and no bottleneck width.
    if RESNET_DEPTHS[depth][0] is BasicBlock and (groups != 1 or width_per_group != 64):
        bad = "groups" if groups != 1 else "width_per_group"
        raise ArgumentError(
            bad,
            f"resnet_det: {bad}={groups if bad == 'groups' else width_per_group} needs "
            f"bottleneck blocks; depth={depth} uses BasicBlock, which supports only groups=1 "
            "and width_per_group=64 (use depth >= 50)",
        )


def _stage_kwargs(
    block_class,
    stage_idx: int,
    *,
    res2_out_channels: int,
    groups: int,
    width_per_group: int,
    norm,
    shortcut,
    stride_in_1x1,
    residual,
    dilation,
):
    """Block kwargs for stage ``stage_idx`` (0 = res2): widths double per stage (Table 1)."""
    scale = 2**stage_idx
    kwargs = dict(
        out_channels=res2_out_channels * scale,
        norm=norm,
        shortcut=shortcut,
        residual=residual,
        dilation=dilation,
    )
    if block_class is BottleneckBlock:
        kwargs.update(
            bottleneck_channels=groups * width_per_group * scale,
            num_groups=groups,
            stride_in_1x1=stride_in_1x1,
        )
    return kwargs


def check_resnet_arguments(
    *,
    depth: int = 50,
    num_classes: Optional[int] = None,
    out_features: Optional[Sequence[str]] = None,
    shortcut: str = "B",
    stride_in_1x1: bool = True,
    norm: NormArg = "BN",
    zero_init_residual: bool = False,
    groups: int = 1,
    width_per_group: int = 64,
    in_channels: int = 3,
    stem_out_channels: int = 64,
    res5_dilation: int = 1,
    freeze_at: int = 0,
    residual: bool = True,
) -> None:
    """Raise ArgumentError naming the first argument of ``build_resnet`` (same arguments)
    that it would refuse, without building anything."""
    _check_blocks(
        depth=depth,
        shortcut=shortcut,
        norm=norm,
        groups=groups,
        width_per_group=width_per_group,
        stride_in_1x1=stride_in_1x1,
        zero_init_residual=zero_init_residual,
        residual=residual,
    )
    check_num_classes(num_classes)
    resolve_out_features(out_features, ("stem",) + RESNET_STAGES, num_classes)
    check_positive_int("in_channels", in_channels)
    check_positive_int("stem_out_channels", stem_out_channels)
    if res5_dilation not in (1, 2):
        raise ArgumentError(
            "res5_dilation", f"resnet_det: res5_dilation={res5_dilation!r} must be 1 or 2"
        )
    check_freeze_at(freeze_at, ("stem",) + RESNET_STAGES)


def build_resnet(
    *,
    depth: int = 50,
    num_classes: Optional[int] = None,
    out_features: Optional[Sequence[str]] = None,
    shortcut: str = "B",
    stride_in_1x1: bool = True,
    norm: NormArg = "BN",
    zero_init_residual: bool = False,
    groups: int = 1,
    width_per_group: int = 64,
    in_channels: int = 3,
    stem_out_channels: int = 64,
    res5_dilation: int = 1,
    freeze_at: int = 0,
    residual: bool = True,
    resnet_class: Type[ResNet] = ResNet,
) -> ResNet:
    """An ImageNet ResNet (or plain net, ResNeXt, Wide ResNet) of He et al. 2015, Table 1.

    Args:
        depth: 18, 34 (basic blocks), 50, 101, 152, 200 (bottleneck blocks).
        num_classes: classifier outputs (1000 for ImageNet); None for a backbone.
        out_features: backbone outputs among stem, res2..res5 (default: res5); stages after
            the last requested one are not built.
        shortcut: "A", "B" (default, the paper's main choice) or "C", Sec. 3.3.
        stride_in_1x1: True (default): stride in the first 1x1 of a bottleneck (paper/MSRA);
            False: in the 3x3 (torchvision).
        norm: "BN", "FrozenBN", "SyncBN", "GN" or "none".
        zero_init_residual: zero each residual block's last norm gamma.
        groups, width_per_group: ResNeXt cardinality and width (bottleneck width of res2 is
            groups * width_per_group; Wide ResNet-50-2 is width_per_group=128).
        in_channels: input image channels.
        stem_out_channels: conv1 filters (64).
        res5_dilation: 2 keeps res5 at stride 16 with dilated 3x3 convs.
        freeze_at: see ``ResNet.freeze``.
        residual: False builds the plain net of Sec. 4.1 (no shortcuts).
        resnet_class: the class built around the stem and stages: ResNet or a subclass that
            keeps its constructor and adds no parameters (the detectron2 plugin's
            ResNetDetBackbone adds detectron2's base class), so the parameter names and the
            initialisation are the same whichever class is built.
    """
    if not (isinstance(resnet_class, type) and issubclass(resnet_class, ResNet)):
        raise TypeError(f"resnet_det: resnet_class={resnet_class!r} must be ResNet or a subclass")
    check_resnet_arguments(
        depth=depth,
        num_classes=num_classes,
        out_features=out_features,
        shortcut=shortcut,
        stride_in_1x1=stride_in_1x1,
        norm=norm,
        zero_init_residual=zero_init_residual,
        groups=groups,
        width_per_group=width_per_group,
        in_channels=in_channels,
        stem_out_channels=stem_out_channels,
        res5_dilation=res5_dilation,
        freeze_at=freeze_at,
        residual=residual,
    )
    block_class, num_blocks = RESNET_DEPTHS[depth]
    res2_out = res2_channels(depth, stem_out_channels)
    valid = ["stem", *RESNET_STAGES]
    requested = resolve_out_features(out_features, valid, num_classes)
    num_stages = 4 if num_classes is not None else max(valid.index(f) for f in requested)

    stem = BasicStem(in_channels, stem_out_channels, norm=norm)
    stages, in_ch = [], stem_out_channels
    for idx in range(num_stages):
        dilation = res5_dilation if idx == 3 else 1
        # res2 follows the max pool, so stride 1; res5 keeps stride 16 when dilated.
        first_stride = 1 if idx == 0 or dilation == 2 else 2
        kwargs = _stage_kwargs(
            block_class,
            idx,
            res2_out_channels=res2_out,
            groups=groups,
            width_per_group=width_per_group,
            norm=norm,
            shortcut=shortcut,
            stride_in_1x1=stride_in_1x1,
            residual=residual,
            dilation=dilation,
        )
        stages.append(
            make_stage(
                block_class, num_blocks[idx], in_channels=in_ch, first_stride=first_stride, **kwargs
            )
        )
        in_ch = kwargs["out_channels"]
    model = resnet_class(
        stem,
        stages,
        num_classes=num_classes,
        out_features=out_features,
        stage_names=RESNET_STAGES,
        freeze_at=freeze_at,
    )
    if zero_init_residual:
        model.zero_init_residual()
    return model


def check_res5_head_arguments(
    *,
    depth: int = 50,
    in_channels: Optional[int] = None,
    first_stride: int = 2,
    shortcut: str = "B",
    stride_in_1x1: bool = True,
    norm: NormArg = "FrozenBN",
    groups: int = 1,
    width_per_group: int = 64,
    dilation: int = 1,
    zero_init_residual: bool = False,
    residual: bool = True,
) -> None:
    """Raise ArgumentError naming the first argument of ``build_res5_head`` (same arguments)
    that it would refuse, without building anything."""
    _check_blocks(
        depth=depth,
        shortcut=shortcut,
        norm=norm,
        groups=groups,
        width_per_group=width_per_group,
        stride_in_1x1=stride_in_1x1,
        zero_init_residual=zero_init_residual,
        residual=residual,
    )
    if in_channels is not None:
        check_positive_int("in_channels", in_channels)
    if first_stride not in (1, 2):
        raise ArgumentError(
            "first_stride", f"resnet_det: first_stride={first_stride!r} must be 1 or 2"
        )
    check_positive_int("dilation", dilation)


def build_res5_head(
    *,
    depth: int = 50,
    in_channels: Optional[int] = None,
    first_stride: int = 2,
    shortcut: str = "B",
    stride_in_1x1: bool = True,
    norm: NormArg = "FrozenBN",
    groups: int = 1,
    width_per_group: int = 64,
    dilation: int = 1,
    zero_init_residual: bool = False,
    residual: bool = True,
) -> nn.Sequential:
    """The res5 stage alone, as the C4 detector's box head (Sec. 4 / Appendix A: "RoI pooling,
    then conv5_x (stride 2 in its first block) and global pooling").

    Name it ``res5`` in the parent module so that checkpoint keys match (``res5.0.conv1``).

    Args:
        depth: ResNet depth, fixing the block type and number of blocks.
        in_channels: channels in (res4's: 1024 for bottleneck nets, 256 for R18/34 by default).
        first_stride: stride of the first block (2 as in the backbone).
        shortcut, stride_in_1x1, norm, groups, width_per_group, zero_init_residual, residual:
            as ``build_resnet``.
        dilation: dilation of the 3x3 convs.
    Returns:
        nn.Sequential of blocks with an ``out_channels`` attribute.
    """
    check_res5_head_arguments(
        depth=depth,
        in_channels=in_channels,
        first_stride=first_stride,
        shortcut=shortcut,
        stride_in_1x1=stride_in_1x1,
        norm=norm,
        groups=groups,
        width_per_group=width_per_group,
        dilation=dilation,
        zero_init_residual=zero_init_residual,
        residual=residual,
    )
    block_class, num_blocks = RESNET_DEPTHS[depth]
    res2_out = res2_channels(depth)
    if in_channels is None:
        in_channels = res2_out * 4
    kwargs = _stage_kwargs(
        block_class,
        3,
        res2_out_channels=res2_out,
        groups=groups,
        width_per_group=width_per_group,
        norm=norm,
        shortcut=shortcut,
        stride_in_1x1=stride_in_1x1,
        residual=residual,
        dilation=dilation,
    )
    head = nn.Sequential(
        *make_stage(
            block_class, num_blocks[3], in_channels=in_channels, first_stride=first_stride, **kwargs
        )
    )
    head.out_channels = kwargs["out_channels"]
    if zero_init_residual:
        for block in head:
            block.zero_init_residual()
    return head
