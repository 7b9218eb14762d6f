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

    def _map(self, polygon, bitmap, height: int, width: int) -> "InstanceMasks":
        """Each polygon (a copy of its coordinates) through ``polygon``, each RLE mask's
        pixels through ``bitmap``: the masks of an image of ``height`` x ``width``."""
        items = [
            [polygon(p.copy()) for p in it] if isinstance(it, list) else bitmap(it)
            for it in self._items
        ]
        return self._of(items, height, width)

    def resize(self, new_height: int, new_width: int) -> "InstanceMasks":
        """Scaled to ``new_height`` x ``new_width`` (per axis, as the boxes are)."""
        sx, sy = new_width / self.width, new_height / self.height

        def scale(q: np.ndarray) -> np.ndarray:
            q[0::2] *= sx
            q[1::2] *= sy
            return q

        def nearest(m: torch.Tensor) -> torch.Tensor:
            size = [new_height, new_width]
            mode = InterpolationMode.NEAREST_EXACT
            return F.resize(m[None], size, interpolation=mode, antialias=False)[0]

        return self._map(scale, nearest, new_height, new_width)

    def hflip(self) -> "InstanceMasks":
        """Flipped horizontally: x -> width - x (continuous coordinates), pixel columns
        reversed."""

        def mirror(q: np.ndarray) -> np.ndarray:
            q[0::2] = self.width - q[0::2]
            return q

        return self._map(mirror, lambda m: m.flip(-1), self.height, self.width)

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
