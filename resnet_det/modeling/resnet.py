"""ResNet: stem + stages res2..res5 + optional classifier head (He et al. 2015, Table 1).

Default layout is the paper's (option B shortcuts, Sec. 3.3/4.1; stride in the first 1x1 of a
bottleneck, as MSRA's released models). torchvision's ResNets ("v1.5") put the stride in the
3x3 conv: build with ``stride_in_1x1=False`` to get exactly torchvision's function (and load
torchvision weights). The paper's FLOPs (Table 1) are for the stride-in-1x1 layout.
"""

from typing import Dict, List, Optional, Sequence, Type

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, freeze_module
from .blocks import BasicBlock, BottleneckBlock, check_shortcut, make_stage
from .checks import check_bool, check_num_classes, check_positive_int, resolve_out_features
from .norm import NormArg, check_norm
from .stems import BasicStem

__all__ = ["ResNet", "build_resnet", "build_res5_head", "make_stage", "RESNET_DEPTHS"]

# Table 1: blocks per stage (res2..res5); 200 is from the pre-activation paper.
RESNET_DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
    101: (BottleneckBlock, (3, 4, 23, 3)),
    152: (BottleneckBlock, (3, 8, 36, 3)),
    200: (BottleneckBlock, (3, 24, 36, 3)),
}


# ---------------------------------------------------------------- the network
class ResNet(Backbone):
    """Stem, then named stages of blocks, then (if ``num_classes``) global average pooling and
    a fully-connected layer named ``linear``.

    Args:
        stem: module with ``out_channels`` and ``stride`` attributes.
        stages: list of stages, each a list of blocks (with ``out_channels``/``stride``).
        num_classes: None for a backbone (forward returns {name: feature}); an int for a
            classifier (forward returns logits).
        out_features: names to return in backbone mode (default: the last stage).
        stage_names: names of the stages (default res2, res3, ...).
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
        # stage_names may name stages that were not built (out_features stops early); they
        # still count for freeze_at's range so that one config works for every out_features.
        if len(stage_names) < len(stages):
            raise ValueError("resnet_det: stage_names must have one name per stage")
        self._max_freeze_at = len(stage_names) + 1
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
        max_at = self._max_freeze_at
        if (
            isinstance(freeze_at, bool)
            or not isinstance(freeze_at, int)
            or not 0 <= freeze_at <= max_at
        ):
            raise ValueError(
                f"resnet_det: freeze_at={freeze_at!r} must be an int from 0 (nothing) to "
                f"{max_at} (stem and all stages)"
            )
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


# ---------------------------------------------------------------- builders
def _check_resnet_args(
    depth,
    shortcut,
    norm,
    groups,
    width_per_group,
    res5_dilation,
    stride_in_1x1,
    zero_init_residual,
    residual,
    in_channels,
):
    if depth not in RESNET_DEPTHS:
        raise ValueError(
            f"resnet_det: depth={depth!r} is not a ResNet depth; choose one of "
            + ", ".join(str(d) for d in RESNET_DEPTHS)
        )
    check_shortcut(shortcut)
    check_norm(norm)
    check_positive_int("groups", groups)
    check_positive_int("width_per_group", width_per_group)
    check_positive_int("in_channels", in_channels)
    for name, value in (
        ("stride_in_1x1", stride_in_1x1),
        ("zero_init_residual", zero_init_residual),
        ("residual", residual),
    ):
        check_bool(name, value)
    if RESNET_DEPTHS[depth][0] is BasicBlock and (groups != 1 or width_per_group != 64):
        bad = "groups" if groups != 1 else "width_per_group"
        raise ValueError(
            f"resnet_det: {bad}={groups if bad == 'groups' else width_per_group} needs "
            f"bottleneck blocks; depth={depth} uses BasicBlock, which supports only groups=1 "
            "and width_per_group=64 (use depth >= 50)"
        )
    if res5_dilation not in (1, 2):
        raise ValueError(f"resnet_det: res5_dilation={res5_dilation!r} must be 1 or 2")


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
    _check_resnet_args(
        depth,
        shortcut,
        norm,
        groups,
        width_per_group,
        res5_dilation,
        stride_in_1x1,
        zero_init_residual,
        residual,
        in_channels,
    )
    block_class, num_blocks = RESNET_DEPTHS[depth]
    res2_out = stem_out_channels * (4 if block_class is BottleneckBlock else 1)
    valid = ["stem", "res2", "res3", "res4", "res5"]
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
        stage_names=valid[1:],
        freeze_at=freeze_at,
    )
    if zero_init_residual:
        model.zero_init_residual()
    return model


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
    _check_resnet_args(
        depth,
        shortcut,
        norm,
        groups,
        width_per_group,
        1,
        stride_in_1x1,
        zero_init_residual,
        residual,
        3,
    )
    block_class, num_blocks = RESNET_DEPTHS[depth]
    res2_out = 64 * (4 if block_class is BottleneckBlock else 1)
    if in_channels is None:
        in_channels = res2_out * 4
    check_positive_int("in_channels", in_channels)
    if first_stride not in (1, 2):
        raise ValueError(f"resnet_det: first_stride={first_stride!r} must be 1 or 2")
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
