"""Pictures of detections: boxes, class names and scores drawn on images, saved as one PNG.

Drawing reuses torchvision.utils.draw_bounding_boxes / make_grid; the file is written to a
temporary name and renamed, so a crash never leaves a half-written picture.
"""
import io
import os
from typing import Optional, Sequence

import torch
from PIL import Image
from torchvision.utils import draw_bounding_boxes, make_grid

from .file_io import atomic_open

__all__ = ["draw_detections", "save_image_grid"]

# Distinct colours per class (tab10), cycled for more classes.
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def draw_detections(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    class_names: Sequence[str],
    *,
    score_thresh: float = 0.5,
    gt_boxes: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Draw the detections scoring at least ``score_thresh`` on ``image``.

    Args:
        image: uint8 RGB tensor [3, H, W], in the coordinates of ``boxes``.
        boxes: [N, 4] XYXY; labels: [N] 0-based class indices; scores: [N].
        class_names: name of each class index.
        score_thresh: detections below it are not drawn.
        gt_boxes: optional [M, 4] ground-truth boxes, drawn thin and white underneath.
    Returns:
        uint8 RGB tensor [3, H, W] with the drawing.
    """
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"draw_detections: image must be a uint8 [3, H, W] tensor, got "
                         f"{image.dtype} {tuple(image.shape)}")
    out = image
    if gt_boxes is not None and len(gt_boxes):
        out = draw_bounding_boxes(out, gt_boxes.float(), colors="white", width=1)
    keep = scores >= score_thresh
    boxes, labels, scores = boxes[keep].float(), labels[keep], scores[keep]
    if len(boxes):
        bad = [int(c) for c in labels if not 0 <= int(c) < len(class_names)]
        if bad:
            raise ValueError(f"draw_detections: labels {bad[:5]} outside class_names "
                             f"({len(class_names)} classes)")
        texts = [f"{class_names[int(c)]} {float(s):.2f}" for c, s in zip(labels, scores)]
        colors = [_COLORS[int(c) % len(_COLORS)] for c in labels]
        out = draw_bounding_boxes(out, boxes, labels=texts, colors=colors, width=2)
    return out


def save_image_grid(images: Sequence[torch.Tensor], path: str, *, nrow: int = 2, padding: int = 4) -> str:
    """Tile uint8 RGB images [3, H, W] (padded to a common size) into one PNG at ``path``.

    Returns the path written.
    """
    if not images:
        raise ValueError(f"save_image_grid: no images to write to {path!r}")
    h = max(im.shape[1] for im in images)
    w = max(im.shape[2] for im in images)
    padded = []
    for im in images:
        canvas = torch.zeros((3, h, w), dtype=torch.uint8)
        canvas[:, : im.shape[1], : im.shape[2]] = im
        padded.append(canvas)
    grid = make_grid(torch.stack(padded), nrow=nrow, padding=padding, pad_value=255)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).contiguous().numpy()).save(buf, format="PNG")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path
