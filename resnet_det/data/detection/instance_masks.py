"""The masks of one image's instances while the image is transformed (polygons moved as
coordinates, RLE masks as pixels): what the detection mapper and transforms carry beside the
boxes. The masks were checked by the reader (resnet_det.data.segmentation)."""

from typing import List, Sequence, Union

import numpy as np
import torch
from pycocotools import mask as mask_util
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

__all__ = ["InstanceMasks"]


def _decode_rle(segm: dict) -> torch.Tensor:
    counts = segm["counts"]
    rle = {
        "size": list(segm["size"]),
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }
    if isinstance(rle["counts"], list):
        rle = mask_util.frPyObjects(rle, *rle["size"])
    return torch.from_numpy(np.ascontiguousarray(mask_util.decode(rle)))


class InstanceMasks:
    """The masks of one image's instances while the image is transformed.

    Polygons stay coordinates until :meth:`to_tensor` rasterises them with pycocotools at the
    final size (as detectron2 does: no resampling blur); RLE masks are decoded at the start and
    resized by nearest neighbour (pixel centres, as PIL's NEAREST) and flipped as pixels.
    Methods return new objects.

    Args:
        segmentations: one checked segmentation per instance (polygons or RLE, see
            :func:`resnet_det.data.segmentation.check_segmentation`).
        height, width: the image's size, which the RLE masks have.
    """

    def __init__(self, segmentations: Sequence[Union[list, dict]], height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)
        self._items: List[Union[List[np.ndarray], torch.Tensor]] = [
            [np.asarray(p, dtype=np.float64) for p in s] if isinstance(s, list) else _decode_rle(s)
            for s in segmentations
        ]

    @classmethod
    def _of(cls, items, height: int, width: int) -> "InstanceMasks":
        out = cls((), height, width)
        out._items = items
        return out

    def __len__(self) -> int:
        return len(self._items)

    def resize(self, new_height: int, new_width: int) -> "InstanceMasks":
        """Scaled to ``new_height`` x ``new_width`` (per axis, as the boxes are)."""
        sx, sy = new_width / self.width, new_height / self.height
        items = []
        for it in self._items:
            if isinstance(it, list):
                scaled = []
                for p in it:
                    q = p.copy()
                    q[0::2] *= sx
                    q[1::2] *= sy
                    scaled.append(q)
                items.append(scaled)
            else:
                items.append(
                    F.resize(
                        it[None],
                        [new_height, new_width],
                        interpolation=InterpolationMode.NEAREST_EXACT,
                        antialias=False,
                    )[0]
                )
        return self._of(items, new_height, new_width)

    def hflip(self) -> "InstanceMasks":
        """Flipped horizontally: x -> width - x (continuous coordinates), pixel columns
        reversed."""
        items = []
        for it in self._items:
            if isinstance(it, list):
                flipped = []
                for p in it:
                    q = p.copy()
                    q[0::2] = self.width - q[0::2]
                    flipped.append(q)
                items.append(flipped)
            else:
                items.append(it.flip(-1))
        return self._of(items, self.height, self.width)

    def to_tensor(self) -> torch.Tensor:
        """uint8 Tensor[N, height, width], 1 inside each instance."""
        out = torch.zeros((len(self._items), self.height, self.width), dtype=torch.uint8)
        for i, it in enumerate(self._items):
            if isinstance(it, list):
                rle = mask_util.merge(mask_util.frPyObjects(it, self.height, self.width))
                out[i] = torch.from_numpy(np.ascontiguousarray(mask_util.decode(rle)))
            else:
                out[i] = it
        return out
