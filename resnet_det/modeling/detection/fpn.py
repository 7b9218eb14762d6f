"""FPN backbone (Lin et al., 2017) on top of a ResNet: torchvision's FeaturePyramidNetwork with
LastLevelMaxPool, exposed under the Backbone contract with detectron2's names p2..p6."""

import math
from collections import OrderedDict
from typing import Dict, Sequence

from torch import Tensor
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from ...utils.errors import ArgumentError
from ..backbone import Backbone
from ..layers import NormArg, check_norm, check_positive_int, get_norm
from ..resnet import build_resnet, check_resnet_arguments

__all__ = ["FPNBackbone", "build_resnet_fpn", "check_resnet_fpn_arguments"]


class FPNBackbone(Backbone):
    """bottom_up features (e.g. res2..res5) -> p2..p5, plus p6 by max pooling p5 (stride 2).

    Args:
        bottom_up: a Backbone returning at least ``in_features``.
        in_features: bottom-up feature names, finest first.
        out_channels: channels of every pyramid level (256).
        norm: norm inside the FPN convs ("" or "none" for none, "GN", "BN", ...).
        top_block: add p6 by max pooling p5 (used by the RPN only, as in the FPN paper).
    """

    def __init__(
        self,
        *,
        bottom_up: Backbone,
        in_features: Sequence[str],
        out_channels: int = 256,
        norm: str = "",
        top_block: bool = True,
    ):
        super().__init__()
        shapes = bottom_up.output_shape()
        missing = [f for f in in_features if f not in shapes]
        if missing:
            raise ArgumentError(
                "in_features",
                f"FPNBackbone: bottom-up backbone does not output {missing}; it gives "
                f"{list(shapes)}",
            )
        self.bottom_up = bottom_up
        self.in_features = list(in_features)
        norm_layer = None
        if norm and norm != "none":
            norm_layer = lambda c: get_norm(norm, c)  # noqa: E731 (torchvision calls it with channels)
        self.fpn = FeaturePyramidNetwork(
            in_channels_list=[shapes[f].channels for f in self.in_features],
            out_channels=out_channels,
            extra_blocks=LastLevelMaxPool() if top_block else None,
            norm_layer=norm_layer,
        )
        strides = [shapes[f].stride for f in self.in_features]
        names = [f"p{int(math.log2(s))}" for s in strides]
        if top_block:
            strides.append(strides[-1] * 2)
            names.append(f"p{int(math.log2(strides[-1]))}")
        self._out_features = names
        self._out_feature_strides = dict(zip(names, strides))
        self._out_feature_channels = {n: out_channels for n in names}

    @property
    def size_divisibility(self) -> int:
        # The coarsest level must tile the input exactly so that anchors and RoIs line up.
        return max(self._out_feature_strides.values())

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        bottom = self.bottom_up(x)
        # Loops rather than generator expressions, which TorchScript does not compile.
        inputs: Dict[str, Tensor] = OrderedDict()
        for f in self.in_features:
            inputs[f] = bottom[f]
        outputs: Dict[str, Tensor] = OrderedDict()
        for name, out in zip(self._out_features, self.fpn(inputs).values()):
            outputs[name] = out
        return outputs


def check_resnet_fpn_arguments(
    *, in_features: Sequence[str], out_channels: int = 256, fpn_norm: NormArg = "", **resnet_kwargs
) -> None:
    """``build_resnet_fpn``'s argument check (same arguments), without building anything."""
    check_norm(fpn_norm, "fpn_norm")
    check_positive_int("out_channels", out_channels)
    if not in_features:
        raise ArgumentError("in_features", "FPN: in_features names no feature")
    try:
        check_resnet_arguments(out_features=list(in_features), **resnet_kwargs)
    except ArgumentError as e:
        if e.argument == "out_features":  # the bottom-up ResNet outputs the pyramid's inputs
            raise ArgumentError("in_features", str(e)) from e
        raise


def build_resnet_fpn(
    *, in_features: Sequence[str], out_channels: int = 256, fpn_norm: NormArg = "", **resnet_kwargs
) -> FPNBackbone:
    """FPNBackbone (p2..p6) on a ResNet that outputs ``in_features``.

    Args:
        in_features: the ResNet's features the pyramid reads (res2..res5), finest first.
        out_channels: channels of every pyramid level.
        fpn_norm: norm inside the FPN convs ("" for none).
        **resnet_kwargs: the bottom-up ResNet's keyword arguments (see ``build_resnet``; not
            out_features, which is ``in_features``).
    """
    check_resnet_fpn_arguments(
        in_features=in_features, out_channels=out_channels, fpn_norm=fpn_norm, **resnet_kwargs
    )
    bottom_up = build_resnet(out_features=list(in_features), **resnet_kwargs)
    return FPNBackbone(
        bottom_up=bottom_up, in_features=in_features, out_channels=out_channels, norm=fpn_norm
    )
