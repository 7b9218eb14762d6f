"""Instance masks in COCO's results format: binarising a detector's mask output, RLE encoding,
and checking the RLE masks of a results file before pycocotools sees them.

A detector's "masks" output is torchvision's: float [N, 1, H, W] probabilities pasted into the
original image. They are binarised as torchvision's COCO evaluation does (``> 0.5``) and stored
as compressed RLE (pycocotools.mask.encode) with the counts as a str, so that the entries are
plain JSON.

pycocotools' C code trusts an RLE, so the strings of a results file are decoded first
(resnet_det.utils.rle; the check is in results_file.py).

torch is imported by the functions that take a model's tensors (binarize_masks, encode_masks),
not with the module: scoring a results file (tools/evaluate.py) needs none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["MASK_THRESHOLD", "binarize_masks", "encode_masks", "rle_boxes"]

# torchvision's references/detection/coco_eval.py keeps mask probabilities > 0.5.
MASK_THRESHOLD = 0.5


def binarize_masks(masks: Any, *, image_size=None, where: str = "masks") -> torch.Tensor:
    """A detector's masks as a bool tensor [N, H, W] (on the masks' device).

    Args:
        masks: float probabilities [N, 1, H, W] or [N, H, W] (kept where > 0.5), or bool /
            integer masks of those shapes (kept where non-zero); a tensor or an array.
        image_size: (height, width) the masks must have (None: not checked).
        where: how errors refer to the masks (e.g. "image 12's masks").
    """
    import torch

    masks = torch.as_tensor(masks)
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ValueError(
            f"{where}: expected [N, 1, H, W] or [N, H, W], got shape {tuple(masks.shape)}"
        )
    if image_size is not None and tuple(masks.shape[-2:]) != tuple(int(v) for v in image_size):
        raise ValueError(
            f"{where}: masks of {tuple(masks.shape[-2:])} (height, width) for an image of "
            f"{tuple(image_size)}; the detector must paste them into the original image"
        )
    if masks.dtype == torch.bool:
        return masks
    if masks.is_floating_point():
        return masks > MASK_THRESHOLD
    return masks != 0


def encode_masks(masks: Any) -> List[Dict[str, Any]]:
    """Compressed RLE of each mask, ``{"size": [H, W], "counts": str}`` (JSON-ready).

    Args:
        masks: anything :func:`binarize_masks` takes.
    """
    import torch
    from pycocotools import mask as mask_utils

    masks = binarize_masks(masks)
    if len(masks) == 0:
        return []
    # pycocotools wants [H, W, N] in Fortran order, which is the memory of a C-contiguous
    # [N, W, H]: one transposing copy (of bytes, after binarising) and no other.
    arr = masks.to(torch.uint8).transpose(1, 2).contiguous().cpu().numpy()
    rles = mask_utils.encode(arr.transpose(2, 1, 0))
    return [
        {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles
    ]


def rle_boxes(rles: Sequence[Dict[str, Any]]) -> np.ndarray:
    """Tight XYWH box of each checked RLE mask (pycocotools.mask.toBbox), float64 [N, 4]."""
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, 4))
    coded = [{"size": list(r["size"]), "counts": r["counts"].encode("ascii")} for r in rles]
    return np.asarray(mask_utils.toBbox(coded), dtype=np.float64).reshape(-1, 4)
