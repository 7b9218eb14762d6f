"""The layers every network is made of, and the checks of the arguments they share.

- Argument checks (``check_bool``, ``check_positive_int``, ...): each raises
  :class:`~resnet_det.utils.errors.ArgumentError` naming the argument; a model built from a
  config reports it under the config key that gave the argument
  (resnet_det.modeling.registry.ModelDescription).
- Norms chosen by name: "BN" (BatchNorm2d, the paper: "BN right after each convolution",
  Sec. 3.4), "FrozenBN" (fixed statistics and affine, as the paper's detection fine-tuning,
  Appendix A), "SyncBN" (BatchNorm over all processes), "GN" (GroupNorm, 32 groups), "none".
- ``Conv2dNorm``: a convolution with an optional norm child, named like detectron2's Conv2d.
  Keeping the norm as a child of the conv (``res2.0.conv1.norm``) is what makes detectron2
  and MSRA weights map one to one onto ours (docs/internals.md, "Parameter names").
"""

from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d as _TVFrozenBatchNorm2d

from ..utils.errors import ArgumentError

__all__ = [
    "check_bool",
    "check_positive_int",
    "check_num_classes",
    "check_freeze_at",
    "resolve_out_features",
    "FrozenBatchNorm2d",
    "get_norm",
    "check_norm",
    "is_no_norm",
    "convert_frozen_batchnorm",
    "NORM_NAMES",
    "GN_GROUPS",
    "NormArg",
    "Conv2dNorm",
    "c2_msra_fill",
    "make_conv",
]


# ------------------------------------------------------------------------- argument checks
def check_bool(name: str, value) -> None:
    """``value`` must be True or False (not 0/1: a flag given a number is a mistake)."""
    if not isinstance(value, bool):
        raise ArgumentError(name, f"resnet_det: {name}={value!r} must be True or False")


def check_positive_int(name: str, value) -> None:
    """``value`` must be an int >= 1 (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(name, f"resnet_det: {name}={value!r} must be a positive int")


def check_num_classes(num_classes) -> None:
    """A classifier's outputs (a positive int), or None for a backbone that returns features."""
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ArgumentError(
            "num_classes",
            f"resnet_det: num_classes={num_classes!r} must be a positive int, or None for a "
            "backbone that returns features",
        )


def check_freeze_at(freeze_at, parts: Sequence[str]) -> None:
    """``freeze_at`` must be an int from 0 (nothing frozen) to ``len(parts)``, the number of
    parts a backbone freezes in order (ResNet: the stem, then each stage; VGG: its blocks)."""
    if (
        isinstance(freeze_at, bool)
        or not isinstance(freeze_at, int)
        or not 0 <= freeze_at <= len(parts)
    ):
        raise ArgumentError(
            "freeze_at",
            f"resnet_det: freeze_at={freeze_at!r} must be an int from 0 (nothing) to "
            f"{len(parts)} ({', '.join(parts)})",
        )


def resolve_out_features(
    out_features: Optional[Sequence[str]], valid: Sequence[str], num_classes: Optional[int]
) -> List[str]:
    """The requested feature names, checked against ``valid``; default: the last one
    (backbone mode). A classifier (``num_classes`` set) takes no ``out_features``."""
    if out_features is not None and num_classes is not None:
        raise ArgumentError(
            "out_features",
            f"resnet_det: out_features={list(out_features)!r} is for backbones, but "
            f"num_classes={num_classes} builds a classifier that returns logits; pass "
            "num_classes=None to get features",
        )
    if out_features is None:
        return [valid[-1]]
    if isinstance(out_features, str):
        out_features = [out_features]
    out_features = list(out_features)
    bad = [f for f in out_features if f not in valid]
    if bad or not out_features:
        raise ArgumentError(
            "out_features",
            f"resnet_det: out_features={out_features!r} has unknown names {bad!r}; choose from "
            + ", ".join(valid),
        )
    return out_features


# ------------------------------------------------------------------------------------ norms
GN_GROUPS = 32

# What a ``norm=`` argument accepts: a name, a callable channels -> module, or None (no norm).
NormArg = Union[str, Callable[[int], nn.Module], None]


class FrozenBatchNorm2d(_TVFrozenBatchNorm2d):
    """BatchNorm2d with fixed statistics and affine parameters.

    Reuses torchvision's implementation; the buffers are named like detectron2's
    (weight, bias, running_mean, running_var; no num_batches_tracked, which is dropped on
    load), so BN and FrozenBN checkpoints load into each other.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps=eps)
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's arithmetic (x * scale + bias, the same values bit for bit), with the
        # bias added in place to the product, which nothing else holds: one full-size tensor
        # and one memory pass less per layer.
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return (x * scale.reshape(1, -1, 1, 1)).add_(bias.reshape(1, -1, 1, 1))

    @classmethod
    def from_batchnorm(cls, bn: nn.modules.batchnorm._BatchNorm) -> "FrozenBatchNorm2d":
        """A FrozenBatchNorm2d holding ``bn``'s current statistics and affine parameters."""
        frozen = cls(bn.num_features, eps=bn.eps)
        with torch.no_grad():
            if bn.affine:
                frozen.weight.copy_(bn.weight.detach())
                frozen.bias.copy_(bn.bias.detach())
            if bn.track_running_stats:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
        frozen.to(device=bn.running_mean.device if bn.running_mean is not None else None)
        return frozen


def convert_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d / SyncBatchNorm in ``module`` by a FrozenBatchNorm2d.

    Returns the converted module (``module`` itself unless it is a BatchNorm).
    """
    if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
        return FrozenBatchNorm2d.from_batchnorm(module)
    for name, child in module.named_children():
        new_child = convert_frozen_batchnorm(child)
        if new_child is not child:
            module.add_module(name, new_child)
    return module


def _group_norm(channels: int) -> nn.Module:
    if channels % GN_GROUPS:
        raise ArgumentError(
            "norm",
            f"resnet_det: norm='GN' uses {GN_GROUPS} groups and needs channels divisible by "
            f"{GN_GROUPS}; a layer here has {channels} channels (use norm='BN' for this net)",
        )
    return nn.GroupNorm(GN_GROUPS, channels)


_NORMS: Dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    "FrozenBN": FrozenBatchNorm2d,
    "SyncBN": nn.SyncBatchNorm,
    "GN": _group_norm,
}
NORM_NAMES = tuple(_NORMS) + ("none",)


def is_no_norm(norm: NormArg) -> bool:
    """True for the spellings of "no norm": None, "" and "none"."""
    return norm is None or norm in ("", "none")


def check_norm(norm: NormArg, name: str = "norm") -> None:
    """Raise ArgumentError naming the argument ``name`` if ``norm`` is not a known norm name
    or a callable."""
    if is_no_norm(norm) or callable(norm) or norm in _NORMS:
        return
    raise ArgumentError(
        name,
        f"resnet_det: {name}={norm!r} is not a known norm; choose one of "
        + ", ".join(repr(n) for n in NORM_NAMES),
    )


def get_norm(norm: NormArg, channels: int) -> Optional[nn.Module]:
    """The norm layer named ``norm`` for ``channels`` channels, or None for "none"/""/None.

    Args:
        norm: one of "BN", "FrozenBN", "SyncBN", "GN", "none", or a callable channels -> module.
        channels: number of channels normalized.
    """
    check_norm(norm)
    if is_no_norm(norm):
        return None
    if isinstance(norm, str):
        return _NORMS[norm](channels)
    return norm(channels)


# ------------------------------------------------------------------------------------ convs
class Conv2dNorm(nn.Conv2d):
    """``nn.Conv2d`` followed by ``self.norm`` when one is given; never an activation.

    Args:
        *args, **kwargs: as ``nn.Conv2d``.
        norm: a norm module applied to the convolution's output, or None.
    """

    def __init__(self, *args, norm: Optional[nn.Module] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # nn.Conv2d.forward's own body: TorchScript cannot compile super().forward.
        x = self._conv_forward(x, self.weight, self.bias)
        if self.norm is not None:
            x = self.norm(x)
        return x


def c2_msra_fill(module: nn.Module) -> None:
    """He initialization (He et al. 2015, "Delving deep into rectifiers"), as the paper's
    Sec. 3.4 prescribes: normal with std sqrt(2 / fan_out), zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def make_conv(
    in_ch: int,
    out_ch: int,
    k: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    norm: NormArg = None,
    post_norm: bool = True,
    bias: Optional[bool] = None,
) -> Conv2dNorm:
    """A He-initialized k x k Conv2dNorm ("same" padding for odd k), the conv of every block,
    stem and VGG layer.

    Args:
        in_ch, out_ch, k, stride, dilation, groups: as ``nn.Conv2d`` (padding dilation * (k // 2)).
        norm: norm name or factory (see ``get_norm``).
        post_norm: give the conv its norm as the ``.norm`` child; False for pre-activation
            blocks, whose norms precede the conv and are built by the block.
        bias: default: a bias only when no norm follows (a bias before BN is redundant).
    """
    has_norm = post_norm and not is_no_norm(norm)
    conv = Conv2dNorm(
        in_ch,
        out_ch,
        kernel_size=k,
        stride=stride,
        padding=dilation * (k // 2),
        dilation=dilation,
        groups=groups,
        bias=is_no_norm(norm) if bias is None else bias,
        norm=get_norm(norm, out_ch) if has_norm else None,
    )
    c2_msra_fill(conv)
    return conv
