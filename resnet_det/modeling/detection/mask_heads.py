"""Mask heads (Mask R-CNN, He et al. 2017): what runs on each pooled RoI before the mask
predictor, built from torchvision's MaskRCNNHeads / MaskRCNNPredictor so that torchvision's
RoIHeads computes the mask loss (``maskrcnn_loss``) and the per-class mask probabilities.

- FPN and VGG (StandardROIHeads): detectron2's "MaskRCNNConvUpsampleHead", ``num_conv`` 3x3
  convs (torchvision's MaskRCNNHeads, 4 x 256 in the FPN paper's head) on 14x14 RoIAlign
  features, then the predictor: a 2x2 stride-2 deconv, ReLU and a 1x1 conv, 28x28 masks.
- C4 (Res5ROIHeads): ``Res5MaskHead`` runs the box head's res5 (the same module, shared
  weights, as detectron2's Res5ROIHeads) on the RoIs pooled from res4 like the box branch,
  then the predictor (deconv + 1x1, no convs): 14x14 masks from the 7x7 res5 output.

Class-agnostic masks (MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK) predict one channel, which
``MaskPredictor`` broadcasts to every class so that torchvision's loss and inference, which
pick the channel of the box's class, use it for every class.
"""

from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from ...utils.errors import ArgumentError
from ..backbone import ShapeSpec
from ..layers import check_bool, check_norm, get_norm
from .box_heads import res5_feature
from .poolers import RoIPooler, check_pooler_type

__all__ = [
    "build_mask_convs",
    "build_mask_branch",
    "check_mask_head_arguments",
    "MaskPredictor",
    "Res5MaskHead",
]


def build_mask_convs(
    *, in_channels: int, num_conv: int, conv_dim: int, norm: str = ""
) -> MaskRCNNHeads:
    """``num_conv`` 3x3 convs (stride 1, ReLU, an optional norm after each) of ``conv_dim``
    channels: torchvision's MaskRCNNHeads, named ``<i>.0`` (conv) and ``<i>.1`` (norm).
    With ``num_conv`` 0 it passes its input through.

    Args:
        in_channels: channels of the pooled feature.
        num_conv: number of convs (4 in the FPN head, 0 for C4).
        conv_dim: channels of each conv.
        norm: "" / "none" for none (convs then have a bias, as in detectron2), or a norm name.
    """
    for name, value, low in (("num_conv", num_conv, 0), ("conv_dim", conv_dim, 1)):
        _check_int(name, value, low)
    norm_layer = None
    if norm and norm != "none":
        norm_layer = lambda c: get_norm(norm, c)  # noqa: E731 (torchvision calls it with channels)
    # dilation 1: detectron2's and the paper's head.
    return MaskRCNNHeads(in_channels, [conv_dim] * num_conv, 1, norm_layer=norm_layer)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ArgumentError(name, f"mask head: {name}={value!r} must be an int >= {low}")


class MaskPredictor(MaskRCNNPredictor):
    """Deconv (2x2, stride 2) + ReLU + 1x1 conv: mask logits at twice the pooled resolution
    (torchvision's MaskRCNNPredictor: ``conv5_mask``, ``mask_fcn_logits``).

    Args:
        in_channels: channels of the mask head's output.
        conv_dim: channels of the deconv.
        num_classes: classes including background (torchvision's class 0); the logits have
            one channel per class, or one in all when ``class_agnostic``.
        class_agnostic: predict one mask per box whatever its class.
    """

    def __init__(
        self, *, in_channels: int, conv_dim: int, num_classes: int, class_agnostic: bool = False
    ):
        super().__init__(in_channels, conv_dim, 1 if class_agnostic else num_classes)
        self.num_classes = int(num_classes)
        self.class_agnostic = bool(class_agnostic)
        # detectron2's initialisation: MSRA fill with zero bias for the deconv, small Gaussians
        # for the logits (torchvision leaves the biases at PyTorch's default).
        nn.init.kaiming_normal_(self.conv5_mask.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv5_mask.bias)
        nn.init.normal_(self.mask_fcn_logits.weight, std=0.001)
        nn.init.zeros_(self.mask_fcn_logits.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.mask_fcn_logits(torch.relu(self.conv5_mask(x)))
        if self.class_agnostic:
            # A view, not a copy: the loss and inference index the box's class channel.
            x = x.expand(-1, self.num_classes, -1, -1)
        return x


class Res5MaskHead(nn.Module):
    """res5 on each RoI pooled from res4 (detectron2's Res5ROIHeads mask branch), then
    optional convs.

    Args:
        res5: the box head's res5 module itself (not a copy: box and mask branches share its
            weights). The detector's state dict lists the shared tensors once, under the box
            head (``GeneralizedRCNN`` deduplicates them).
        convs: convs after res5 (``build_mask_convs``), or None (detectron2's C4: NUM_CONV 0).
        out_channels: channels the head outputs.
    """

    def __init__(self, *, res5: nn.Module, out_channels: int, convs: Optional[nn.Module] = None):
        super().__init__()
        self.res5 = res5
        self.convs = convs if convs is not None else nn.Identity()
        self.out_channels = int(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.res5(x)
        if not torch.jit.is_scripting():  # scripted, res5 is the builder's Sequential
            x = res5_feature(x)
        return self.convs(x)


def check_mask_head_arguments(
    *,
    pooler_type: str = "ROIAlignV2",
    pooler_resolution: int = 14,
    pooler_sampling_ratio: int = 0,
    num_conv: int = 0,
    conv_dim: int = 256,
    norm: str = "",
    class_agnostic: bool = False,
    **_,
) -> None:
    """The checks of ``build_mask_branch``'s own arguments."""
    check_pooler_type(pooler_type)
    for name, value, low in (
        ("pooler_resolution", pooler_resolution, 1),
        ("pooler_sampling_ratio", pooler_sampling_ratio, 0),
        ("num_conv", num_conv, 0),
        ("conv_dim", conv_dim, 1),
    ):
        _check_int(name, value, low)
    check_norm(norm)
    check_bool("class_agnostic", class_agnostic)


def build_mask_branch(
    input_shapes: Mapping[str, ShapeSpec],
    *,
    in_features: Sequence[str],
    num_classes: int,
    res5: Optional[nn.Module] = None,
    pooler_type: str = "ROIAlignV2",
    pooler_resolution: int = 14,
    pooler_sampling_ratio: int = 0,
    num_conv: int = 0,
    conv_dim: int = 256,
    norm: str = "",
    class_agnostic: bool = False,
) -> Dict[str, nn.Module]:
    """torchvision RoIHeads' mask branch, {"mask_roi_pool", "mask_head", "mask_predictor"}:
    RoIs pooled from ``in_features``, the mask head (``res5``, the C4 box head's own res5 module
    when given, then ``num_conv`` convs) and ``MaskPredictor`` (one channel per class and the
    background, or one in all when ``class_agnostic``).

    Args:
        input_shapes: the backbone's ``output_shape()``.
        in_features: the features the RoIs are pooled from.
        num_classes: object classes (without the background).
        res5: see above; None: the convs run on the pooled features.
        pooler_type, pooler_resolution, pooler_sampling_ratio: the mask pooler (``RoIPooler``).
        num_conv, conv_dim, norm: the mask head's convs (``build_mask_convs``).
        class_agnostic: one mask per box whatever its class.
    """
    convs = dict(num_conv=num_conv, conv_dim=conv_dim, norm=norm)
    if res5 is not None:
        res5_channels = res5.out_channels
        head = Res5MaskHead(
            res5=res5,
            out_channels=conv_dim if num_conv else res5_channels,
            convs=build_mask_convs(in_channels=res5_channels, **convs) if num_conv else None,
        )
        out_channels = head.out_channels
    else:
        in_channels = input_shapes[in_features[0]].channels
        head = build_mask_convs(in_channels=in_channels, **convs)
        out_channels = conv_dim if num_conv else in_channels
    pooler = RoIPooler(
        in_features=in_features,
        strides=[input_shapes[f].stride for f in in_features],
        output_size=pooler_resolution,
        pooler_type=pooler_type,
        sampling_ratio=pooler_sampling_ratio,
    )
    # +1: torchvision's RoIHeads picks the mask channel of the 1-based label (0 = background).
    predictor = MaskPredictor(
        in_channels=out_channels,
        conv_dim=conv_dim,
        num_classes=num_classes + 1,
        class_agnostic=class_agnostic,
    )
    return dict(mask_roi_pool=pooler, mask_head=head, mask_predictor=predictor)
