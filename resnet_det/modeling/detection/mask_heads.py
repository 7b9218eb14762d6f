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

from typing import Optional

import torch
from torch import Tensor, nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from ..norm import get_norm

__all__ = ["build_mask_convs", "MaskPredictor", "Res5MaskHead"]


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
    if num_conv < 0 or conv_dim < 1:
        raise ValueError(
            f"build_mask_convs: num_conv={num_conv} must be >= 0, conv_dim={conv_dim} >= 1"
        )
    norm_layer = None
    if norm and norm != "none":
        norm_layer = lambda c: get_norm(norm, c)  # noqa: E731 (torchvision calls it with channels)
    # dilation 1: detectron2's and the paper's head.
    return MaskRCNNHeads(in_channels, [conv_dim] * num_conv, 1, norm_layer=norm_layer)


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


@torch.jit.ignore
def _res5_feature(x) -> Tensor:
    """A Backbone-style res5 returns its features by name; a Sequential the tensor."""
    return x["res5"] if isinstance(x, dict) else x


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
            x = _res5_feature(x)
        return self.convs(x)
