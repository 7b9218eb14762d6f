"""CIFAR-10 ResNets (He et al. 2015, Sec. 4.2) and their pre-activation versions (He et al.
2016, "Identity Mappings in Deep Residual Networks").

Sec. 4.2: a 3x3 conv with 16 filters, then three stages of 2n layers on maps of 32, 16, 8
pixels with 16, 32, 64 filters, global average pooling and a 10-way fc: 6n+2 layers. "We use
identity shortcuts in all cases (i.e., option A)", so ResNets have exactly the plain nets'
parameters. Pre-activation bottleneck nets (ResNet-1001) have 9n+2 layers and 4x wider stage
outputs; following the authors' code, their shortcuts project where the shape changes (B).
"""

from typing import Optional, Sequence

from .blocks import (
    BasicBlock,
    BottleneckBlock,
    PreActBasicBlock,
    PreActBottleneckBlock,
    check_shortcut,
    make_stage,
)
from .checks import check_bool, check_positive_int, resolve_out_features
from .norm import NormArg, check_norm, get_norm
from .resnet import ResNet
from .stems import CifarStem

__all__ = ["CifarResNet", "build_cifar_resnet", "cifar_blocks_per_stage"]

STAGE_NAMES = ("res2", "res3", "res4")


def cifar_blocks_per_stage(depth: int, bottleneck: bool = False) -> int:
    """n for a depth of 6n+2 (basic blocks) or 9n+2 (bottleneck blocks); ValueError otherwise."""
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
        raise ValueError(
            f"resnet_det: depth={depth!r} is not a CIFAR ResNet depth; {kind} blocks need "
            f"depth = {layers_per_n}n+2 (e.g. {examples})"
        )
    return (depth - 2) // layers_per_n


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
        for name, value in (
            ("residual", residual),
            ("preact", preact),
            ("bottleneck", bottleneck),
            ("stride_in_1x1", stride_in_1x1),
            ("zero_init_residual", zero_init_residual),
        ):
            check_bool(name, value)
        n = cifar_blocks_per_stage(depth, bottleneck)
        if shortcut is None:
            shortcut = "B" if preact else "A"
        check_shortcut(shortcut)
        check_norm(norm)
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
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
