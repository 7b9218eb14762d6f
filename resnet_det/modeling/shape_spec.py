"""ShapeSpec: what a backbone tells its consumers (FPN, RPN, RoI heads) about a feature map."""

from dataclasses import dataclass
from typing import Optional

__all__ = ["ShapeSpec"]


@dataclass(frozen=True)
class ShapeSpec:
    """Channels and stride (relative to the input image) of one named feature map.

    ``ShapeSpec(channels, stride)`` positionally; height/width are optional extras kept for
    compatibility with detectron2's ShapeSpec, which consumers may build by keyword.
    """

    channels: Optional[int] = None
    stride: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
