"""Inference-time folding of a convolution's norm into the convolution itself.

A FrozenBatchNorm2d (or a BatchNorm2d in eval mode) after a convolution is an affine map per
output channel, y = scale * conv(x) + shift with scale = gamma / sqrt(var + eps) and
shift = beta - mean * scale, so the pair equals one convolution with weight W * scale and bias
b * scale + shift. Folding removes one pass over every feature map (the paper's nets have a norm
after each convolution, Sec. 3.4) and changes results only by float rounding.

``fuse_conv_norms(model)`` is an explicit step for a model that will only run inference: the
folded model has no norms left to train or to load weights into.
"""

import logging
from typing import Optional

import torch
from torch import nn

from .layers import Conv2dNorm, FrozenBatchNorm2d

__all__ = ["fuse_conv_norms", "fold_norm_into_conv"]

logger = logging.getLogger(__name__)


def _affine(norm: nn.Module):
    """(scale, shift) of a frozen or eval-mode BatchNorm, or None for any other module."""
    if isinstance(norm, FrozenBatchNorm2d):
        weight, bias, eps = norm.weight, norm.bias, norm.eps
    elif isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats:
        weight = norm.weight if norm.affine else torch.ones_like(norm.running_mean)
        bias = norm.bias if norm.affine else torch.zeros_like(norm.running_mean)
        eps = norm.eps
    else:
        return None
    # In float64: the folded weights then carry the rounding of one float32 product only.
    scale = weight.double() * torch.rsqrt(norm.running_var.double() + eps)
    shift = bias.double() - norm.running_mean.double() * scale
    return scale, shift


@torch.no_grad()
def fold_norm_into_conv(conv: Conv2dNorm) -> bool:
    """Fold ``conv.norm`` into ``conv``'s weight and bias and remove it. Returns whether it
    did (only FrozenBatchNorm2d and eval-mode BatchNorm2d fold; others stay)."""
    norm: Optional[nn.Module] = conv.norm
    if norm is None:
        return False
    affine = _affine(norm)
    if affine is None:
        return False
    scale, shift = affine
    dtype = conv.weight.dtype
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=False)
    conv.norm = None
    return True


def fuse_conv_norms(model: nn.Module) -> int:
    """Fold every foldable norm child of a Conv2dNorm in ``model`` into its convolution, in
    place, for inference. Returns how many were folded.

    Folds FrozenBatchNorm2d (the detectors' frozen backbone, Appendix A) and BatchNorm2d in
    eval mode (e.g. the demo trained from scratch); GroupNorm, SyncBatchNorm, training-mode
    BatchNorm and pre-activation norms (before their convolution) are left as they are.

    Raises:
        ValueError: ``model`` is in training mode (a training BatchNorm normalises with batch
            statistics, which no folded weight can reproduce).
    """
    if model.training:
        raise ValueError(
            "fuse_conv_norms: the model is in training mode; call model.eval() "
            "first (folding is for inference only)"
        )
    folded = sum(fold_norm_into_conv(m) for m in model.modules() if isinstance(m, Conv2dNorm))
    logger.info("Folded %d norms into their convolutions", folded)
    return folded
