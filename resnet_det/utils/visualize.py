"""Pictures of detections.

:func:`plot_detections` draws a grid of images with their predictions and ground truth, made
to be read at a glance: predictions solid in their class's colour with a "class score" tag,
ground truth dashed black-and-white (visible on any background), tags placed so that they
overlap neither each other nor other boxes where a free place exists (:func:`place_labels`),
a legend, and the score threshold in the title; instance masks, when the model gives them, as
a semi-transparent fill in the class colour with a solid outline (:func:`overlay_masks`).
:func:`draw_detections` / :func:`save_image_grid` draw on a tensor image (same size in, same
size out) for tools that want pixels rather than a figure. Every file is written atomically
(utils.file_io).
"""

import io
import os
import textwrap
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torchvision.utils import draw_bounding_boxes, make_grid

from .file_io import atomic_open

__all__ = [
    "DetectionPanel",
    "plot_detections",
    "place_labels",
    "draw_detections",
    "save_image_grid",
    "class_color",
    "overlay_masks",
    "finish_figure",
    "save_figure",
]

# Distinct colours per class (tab10), cycled for more classes.
_COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
# Tag font size (points) and the figure's resolution: at 100 dpi a 9 pt tag is 12-13 px high,
# legible on a 1000-px-wide picture without covering small objects.
_TAG_FONT = 9
_DPI = 100
# Mask fill opacity: the object stays visible under its colour.
_MASK_ALPHA = 0.45


def class_color(label: int) -> str:
    """The colour of class index ``label`` (tab10, cycled)."""
    return _COLORS[int(label) % len(_COLORS)]


class DetectionPanel(NamedTuple):
    """One image of :func:`plot_detections`.

    image: uint8 RGB, [H, W, 3] array or [3, H, W] tensor. boxes: [N, 4] XYXY in the image's
    pixels; labels: [N] 0-based class indices; scores: [N]. gt_boxes: [M, 4] XYXY (or None).
    caption: text under the image (e.g. its id). masks: None, or the detections' masks at the
    image's size, [N, 1, H, W] or [N, H, W]: probabilities (drawn where > 0.5, as evaluated)
    or bool.
    """

    image: object
    boxes: object
    labels: object
    scores: object
    gt_boxes: object = None
    caption: str = ""
    masks: object = None


Box = Tuple[float, float, float, float]


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def place_labels(
    boxes: Sequence[Box], sizes: Sequence[Tuple[float, float]], width: float, height: float
) -> List[Tuple[float, float]]:
    """Top-left corners for tags of ``sizes`` (w, h) attached to ``boxes`` (XYXY), inside a
    ``width`` x ``height`` image, placed greedily in the order given (highest score first).

    Each tag tries, in order: above its box, inside its top edge, below it, inside its bottom
    edge (left-aligned, then right-aligned), clamped into the image; the first place that
    overlaps no earlier tag and no other box is taken, otherwise the place with the least
    overlap (an earlier tag counts ten times more than a box). Only when every place covers an
    earlier tag is the tag nudged down or up by whole tag heights, to the nearest free place:
    a tag away from its box is worse than one over a neighbour's corner.
    """
    if len(boxes) != len(sizes):
        raise ValueError(f"place_labels: {len(boxes)} boxes but {len(sizes)} sizes")
    placed: List[Box] = []
    out = []
    for i, ((x0, y0, x1, y1), (w, h)) in enumerate(zip(boxes, sizes)):
        others = [b for j, b in enumerate(boxes) if j != i]

        def clamp(x: float, y: float, w: float = w, h: float = h) -> Tuple[float, float]:
            return min(max(x, 0.0), max(width - w, 0.0)), min(max(y, 0.0), max(height - h, 0.0))

        def on_tags(x: float, y: float, w: float = w, h: float = h) -> float:
            return sum(_overlap((x, y, x + w, y + h), p) for p in placed)

        def cost(x: float, y: float, w: float = w, h: float = h, others=others) -> float:
            return 10 * on_tags(x, y) + sum(_overlap((x, y, x + w, y + h), b) for b in others)

        candidates = [clamp(x, y) for x in (x0, x1 - w) for y in (y0 - h, y0, y1, y1 - h)]
        best = min(candidates, key=lambda p: cost(*p))  # min keeps the first of equal costs
        if on_tags(*best) > 0:
            for step in range(1, 6):
                free = [
                    p
                    for p in (clamp(best[0], best[1] + s * step * h) for s in (1, -1))
                    if on_tags(*p) == 0
                ]
                if free:
                    best = min(free, key=lambda p: cost(*p))
                    break
        placed.append((best[0], best[1], best[0] + w, best[1] + h))
        out.append(best)
    return out


def _as_hwc(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(
                f"plot_detections: a tensor image must be [3, H, W], got {tuple(image.shape)}"
            )
        image = image.permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"plot_detections: image must be uint8 [H, W, 3], got {image.dtype} {image.shape}"
        )
    return image


def _as_array(x, shape_tail: Tuple[int, ...] = ()) -> np.ndarray:
    if x is None:
        return np.zeros((0,) + shape_tail, dtype=np.float64)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape((-1,) + shape_tail)


def _binary_masks(masks, height: int, width: int) -> np.ndarray:
    """bool [N, H, W] from [N, 1, H, W] / [N, H, W] probabilities (> 0.5, the evaluation's
    threshold) or bool masks; the size must be the image's."""
    masks = (
        masks.detach().cpu()
        if isinstance(masks, torch.Tensor)
        else torch.as_tensor(np.asarray(masks))
    )
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3 or tuple(masks.shape[1:]) != (height, width):
        raise ValueError(
            f"masks of shape {tuple(masks.shape)} for an image of {height}x{width}: expected "
            f"[N, 1, {height}, {width}] or [N, {height}, {width}]"
        )
    return (masks > 0.5 if masks.is_floating_point() else masks != 0).numpy()


def overlay_masks(
    image: np.ndarray, masks, labels: Sequence[int], *, alpha: float = _MASK_ALPHA
) -> np.ndarray:
    """``image`` (uint8 [H, W, 3]) with each mask filled semi-transparently in its class colour
    and outlined in it; later masks on top. Returns a new array.

    Args:
        image: uint8 RGB [H, W, 3].
        masks: [N, 1, H, W] or [N, H, W], probabilities (> 0.5 drawn) or bool.
        labels: [N] class indices (the colours).
        alpha: opacity of the fill.
    """
    out = image.astype(np.float32)
    masks = _binary_masks(masks, image.shape[0], image.shape[1])
    if len(masks) != len(labels):
        raise ValueError(f"overlay_masks: {len(masks)} masks for {len(labels)} labels")
    for mask, label in zip(masks, labels):
        colour = np.array(
            [int(class_color(label)[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32
        )
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
        # The outline: mask pixels with a 4-neighbour outside the mask (or on the border).
        inner = np.zeros_like(mask)
        inner[1:-1, 1:-1] = (
            mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        )
        out[mask & ~inner] = colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _text_colour(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "white"


def plot_detections(
    panels: Sequence[DetectionPanel],
    output: str,
    *,
    class_names: Sequence[str],
    score_thresh: float = 0.5,
    title: Optional[str] = None,
    ncols: int = 3,
    panel_inches: float = 3.3,
) -> str:
    """Draw ``panels`` in a grid and write the PNG ``output`` atomically; returns ``output``.

    Args:
        panels: the images with their predictions and ground truth.
        output: PNG path.
        class_names: name of each class index (for the tags and the legend).
        score_thresh: predictions scoring below it are not drawn; stated in the title.
        title: first line of the title (e.g. the dataset); the threshold line follows.
        ncols: panels per row.
        panel_inches: side of each panel in inches (at 100 dpi).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.font_manager import FontProperties
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    if not panels:
        raise ValueError(f"plot_detections: no image to draw into {output!r}")
    ncols = max(1, min(int(ncols), len(panels)))
    nrows = (len(panels) + ncols - 1) // ncols
    # The legend lists the classes drawn (a COCO model's 80 would bury the pictures) and the
    # ground truth when there is some, in as many rows as the width needs.
    drawn, has_gt = set(), False
    for panel in panels:
        labels, scores = _as_array(panel.labels).astype(int), _as_array(panel.scores)
        drawn.update(int(c) for c in labels[scores >= score_thresh])
        has_gt = has_gt or len(_as_array(panel.gt_boxes, (4,))) > 0
    bad = sorted(c for c in drawn if not 0 <= c < len(class_names))
    if bad:
        raise ValueError(
            f"plot_detections: labels {bad[:5]} outside class_names ({len(class_names)} classes)"
        )
    drawn = sorted(drawn)
    entries = len(drawn) + has_gt
    legend_cols = max(1, min(entries, int(ncols * panel_inches / 1.8)))
    legend_rows = -(-entries // legend_cols)
    width = ncols * panel_inches
    # About 12 characters of 10-pt text per inch: wrap the title to the picture's width.
    lines = [f"predictions scoring >= {score_thresh:.2f} (tag: class and score)"]
    lines = ([title] if title else []) + lines
    title_text = "\n".join(textwrap.fill(line, max(20, int(width * 12))) for line in lines)
    title_h = 0.1 + 0.19 * (title_text.count("\n") + 1)  # inches, from the top: title, legend,
    legend_h = 0.25 * legend_rows if entries else 0.0  # then the first row's captions
    header = title_h + legend_h + 0.22
    fig = plt.figure(figsize=(width, nrows * (panel_inches + 0.25) + header), dpi=_DPI)
    fig_h = fig.get_figheight()
    font = FontProperties(size=_TAG_FONT)
    renderer = fig.canvas.get_renderer()
    pad_px = 2.0  # tag padding around the text, display pixels
    halo = [patheffects.withStroke(linewidth=3.5, foreground="black")]
    for k, panel in enumerate(panels):
        row, col = divmod(k, ncols)
        # Fixed axes boxes (no tight_layout): tag sizes are measured in these axes' scale.
        left = col / ncols + 0.01 / ncols
        bottom = 1 - (header + (row + 1) * (panel_inches + 0.25) - 0.25) / fig_h
        ax = fig.add_axes((left, bottom, 0.98 / ncols, panel_inches / fig_h))
        image = _as_hwc(panel.image)
        h, w = image.shape[:2]
        boxes, labels, scores = (
            _as_array(panel.boxes, (4,)),
            _as_array(panel.labels).astype(int),
            _as_array(panel.scores),
        )
        keep = np.nonzero(scores >= score_thresh)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        if panel.masks is not None and len(keep):
            masks = _binary_masks(panel.masks, h, w)
            if len(masks) != len(scores):
                raise ValueError(
                    f"plot_detections: {len(masks)} masks for {len(scores)} detections"
                )
            order = keep[::-1]  # the best-scored mask on top
            image = overlay_masks(image, masks[order], labels[order])
        ax.imshow(image, interpolation="bilinear")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if panel.caption:
            ax.set_title(panel.caption, fontsize=8, pad=2)
        for x0, y0, x1, y1 in _as_array(panel.gt_boxes, (4,)):
            # Black under white dashes: visible on light and dark backgrounds alike.
            ax.add_patch(
                Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="black", linewidth=2.6)
            )
            ax.add_patch(
                Rectangle(
                    (x0, y0),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    edgecolor="white",
                    linewidth=1.4,
                    linestyle=(0, (3, 2)),
                )
            )
        ax.apply_aspect()
        bbox = ax.get_window_extent(renderer)
        per_px = max(w / bbox.width, h / bbox.height)  # image pixels per display pixel
        texts, sizes = [], []
        for i in keep:
            text = f"{class_names[labels[i]]} {scores[i]:.2f}"
            tw, th, _ = renderer.get_text_width_height_descent(text, font, ismath=False)
            texts.append(text)
            sizes.append(((tw + 2 * pad_px) * per_px, (th + 2 * pad_px + 1) * per_px))
        corners = place_labels([tuple(boxes[i]) for i in keep], sizes, w, h)
        for i, text, (tx, ty), (tw, th) in zip(keep, texts, corners, sizes):
            colour = class_color(labels[i])
            x0, y0, x1, y1 = boxes[i]
            rect = Rectangle(
                (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=2.0
            )
            rect.set_path_effects(halo)
            ax.add_patch(rect)
            # Tags above every box (zorder), so that no later box crosses an earlier tag.
            ax.add_patch(
                Rectangle(
                    (tx, ty), tw, th, facecolor=colour, edgecolor="black", linewidth=0.5, zorder=4
                )
            )
            ax.text(
                tx + pad_px * per_px,
                ty + th / 2,
                text,
                fontproperties=font,
                va="center",
                ha="left",
                color=_text_colour(colour),
                zorder=5,
            )
    handles = [
        Line2D(
            [],
            [],
            color=class_color(c),
            linewidth=2.5,
            path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
        )
        for c in drawn
    ]
    names = [f"{class_names[c]} (prediction)" for c in drawn]
    if has_gt:
        handles.append(
            (
                Line2D([], [], color="black", linewidth=2.6),
                Line2D([], [], color="white", linewidth=1.4, linestyle=(0, (3, 2))),
            )
        )
        names.append("ground truth")
    if handles:
        fig.legend(
            handles,
            names,
            loc="upper center",
            bbox_to_anchor=(0.5, 1 - title_h / fig_h),
            ncol=legend_cols,
            fontsize=9,
            frameon=False,
            handlelength=2.5,
            handler_map={tuple: HandlerTuple(ndivide=1, pad=0)},
        )
    fig.suptitle(title_text, y=1 - 0.05 / fig_h, va="top", fontsize=10)
    save_figure(fig, output, dpi=_DPI)
    return output


def draw_detections(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    class_names: Sequence[str],
    *,
    score_thresh: float = 0.5,
    gt_boxes: Optional[torch.Tensor] = None,
    masks: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Draw the detections scoring at least ``score_thresh`` on ``image`` (same size out).

    Args:
        image: uint8 RGB tensor [3, H, W], in the coordinates of ``boxes``.
        boxes: [N, 4] XYXY; labels: [N] 0-based class indices; scores: [N].
        class_names: name of each class index.
        score_thresh: detections below it are not drawn.
        gt_boxes: optional [M, 4] ground-truth boxes, drawn thin and white underneath.
        masks: optional [N, 1, H, W] / [N, H, W] masks of the detections (probabilities drawn
            where > 0.5, or bool), filled in the class colour under the boxes.
    Returns:
        uint8 RGB tensor [3, H, W] with the drawing.
    """
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(
            f"draw_detections: image must be a uint8 [3, H, W] tensor, got "
            f"{image.dtype} {tuple(image.shape)}"
        )
    out = image
    if gt_boxes is not None and len(gt_boxes):
        out = draw_bounding_boxes(out, gt_boxes.float(), colors="white", width=1)
    keep = scores >= score_thresh
    if masks is not None and bool(keep.any()):
        order = torch.nonzero(keep).flatten()[torch.argsort(scores[keep])]  # best on top
        drawn = overlay_masks(
            out.permute(1, 2, 0).numpy(),
            _binary_masks(masks, *out.shape[1:])[order.numpy()],
            [int(c) for c in labels[order]],
        )
        out = torch.from_numpy(drawn).permute(2, 0, 1).contiguous()
    boxes, labels, scores = boxes[keep].float(), labels[keep], scores[keep]
    if len(boxes):
        bad = [int(c) for c in labels if not 0 <= int(c) < len(class_names)]
        if bad:
            raise ValueError(
                f"draw_detections: labels {bad[:5]} outside class_names "
                f"({len(class_names)} classes)"
            )
        texts = [f"{class_names[int(c)]} {float(s):.2f}" for c, s in zip(labels, scores)]
        colors = [class_color(c) for c in labels]
        out = draw_bounding_boxes(out, boxes, labels=texts, colors=colors, width=2)
    return out


def save_image_grid(
    images: Sequence[torch.Tensor], path: str, *, nrow: int = 2, padding: int = 4
) -> str:
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


def save_figure(fig, output: str, *, dpi: int = 120) -> str:
    """Renders ``fig`` as a PNG, writes it to ``output`` with the one atomic writer
    (utils.file_io.atomic_open, which also makes the folder) and closes the figure; returns
    ``output``."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    with atomic_open(output, "wb") as f:
        f.write(buf.getvalue())
    return output


def finish_figure(fig, title_ax, title: Optional[str], output: str) -> str:
    """Titles ``title_ax`` (when ``title``), lays ``fig`` out and saves it (:func:`save_figure`,
    120 dpi); returns ``output``. The plots of curves, layer responses and comparisons end
    with it."""
    if title:
        title_ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, output)
