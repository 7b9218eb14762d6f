"""RoI pooling with the feature strides the backbone declares.

torchvision's MultiScaleRoIAlign guesses each level's scale from the feature/image size ratio
and always uses the unaligned RoIAlign; detectron2's "ROIAlignV2" (the default here) samples
at pixel centres (aligned=True), and the original Faster R-CNN used RoIPool. The level
assignment for several levels reuses torchvision's LevelMapper (FPN paper, Eq. 1).
"""

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align, roi_pool
from torchvision.ops.poolers import LevelMapper

from ...utils.errors import ArgumentError

__all__ = ["RoIPooler", "POOLER_TYPES", "check_pooler_type"]

POOLER_TYPES = ("ROIAlignV2", "ROIAlign", "ROIPool")


def check_pooler_type(pooler_type) -> None:
    """``pooler_type`` must be one of POOLER_TYPES."""
    if pooler_type not in POOLER_TYPES:
        raise ArgumentError(
            "pooler_type", f"RoIPooler: pooler_type={pooler_type!r}, choose one of {POOLER_TYPES}"
        )


class RoIPooler(nn.Module):
    """Pools a fixed-size feature for each box from one or several feature maps.

    Args:
        in_features: names of the feature maps, finest first (e.g. ["res4"] or p2..p5).
        strides: stride of each of them relative to the input image (powers of two).
        output_size: side of the pooled feature (14 for C4, 7 for FPN and VGG).
        pooler_type: "ROIAlignV2" (aligned RoIAlign), "ROIAlign" or "ROIPool".
        sampling_ratio: RoIAlign sampling points per bin side (0 = adaptive).
        canonical_box_size / canonical_level: FPN level assignment (224 maps to level 4).
    """

    def __init__(
        self,
        *,
        in_features: Sequence[str],
        strides: Sequence[int],
        output_size: int,
        pooler_type: str = "ROIAlignV2",
        sampling_ratio: int = 0,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        check_pooler_type(pooler_type)
        if len(in_features) != len(strides) or not in_features:
            raise ArgumentError(
                "strides",
                f"RoIPooler: in_features {list(in_features)} and strides {list(strides)} must "
                "match",
            )
        levels = [math.log2(s) for s in strides]
        if any(abs(lv - round(lv)) > 1e-6 for lv in levels):
            raise ArgumentError(
                "strides", f"RoIPooler: strides must be powers of two, got {list(strides)}"
            )
        levels = [int(round(lv)) for lv in levels]
        if levels != list(range(levels[0], levels[0] + len(levels))):
            raise ArgumentError(
                "strides",
                f"RoIPooler: strides must be consecutive powers of two, got {list(strides)}",
            )
        self.in_features = list(in_features)
        self.scales = [1.0 / s for s in strides]
        self.output_size = (int(output_size), int(output_size))
        self.pooler_type = pooler_type
        self.sampling_ratio = int(sampling_ratio)
        self.level_mapper = (
            LevelMapper(
                levels[0],
                levels[-1],
                canonical_scale=canonical_box_size,
                canonical_level=canonical_level,
            )
            if len(levels) > 1
            else None
        )

    def _pool(self, x: Tensor, rois: Tensor, scale: float) -> Tensor:
        if self.pooler_type == "ROIPool":
            return roi_pool(x, rois, self.output_size, spatial_scale=scale)
        return roi_align(
            x,
            rois,
            self.output_size,
            spatial_scale=scale,
            sampling_ratio=self.sampling_ratio,
            aligned=self.pooler_type == "ROIAlignV2",
        )

    def forward(
        self, features: Dict[str, Tensor], boxes: List[Tensor], image_shapes: List[Tuple[int, int]]
    ) -> Tensor:
        """Same call as torchvision's MultiScaleRoIAlign (RoIHeads' box_roi_pool)."""
        xs = [features[name] for name in self.in_features]
        # rois: (K, 5) rows (batch index, x0, y0, x1, y1), as torchvision.ops expects.
        rois = torch.cat(
            [torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)],
            dim=0,
        )
        if self.level_mapper is None:
            return self._pool(xs[0], rois, self.scales[0])
        levels = self.level_mapper(boxes)
        out = xs[0].new_zeros((rois.shape[0], xs[0].shape[1]) + self.output_size)
        for level, (x, scale) in enumerate(zip(xs, self.scales)):
            # No "if any box is on this level" branch: a traced export (ONNX) would keep only
            # the levels its sample image used, and torch.export cannot branch on a count.
            idx = torch.where(levels == level)[0]
            out[idx] = self._pool(x, rois[idx], scale).to(out.dtype)
        return out
