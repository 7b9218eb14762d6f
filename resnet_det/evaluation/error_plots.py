"""Pictures of an error analysis (PNG, matplotlib's Agg canvas, no pyplot state):

- <task>_tide.png: TIDE's dAP of each main and special error;
- <task>_analysis.png: cocoapi's analyze plot (stacked PR curves C75 ... FN) over all
  categories, one panel per object size, the legend giving each curve's area;
- <task>_analysis_per_category.png: the same per category (all sizes);
- <task>_ap_per_category.png: AP and AP50 of each category;
- <task>_ap_by_size.png: AP, AP50, AP75 by object size;
- <task>_confusion.png: the confusion matrix, rows normalised (counts written in);
- plot_error_comparison: two or more runs' dAP side by side (the paper comparison).

matplotlib is imported inside the functions: it is only needed when pictures are drawn.
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from ..utils.file_io import atomic_open
from .coco_analyze import AREAS, CURVES, REC_THRS
from .tide import TIDE_MAIN_ERRORS, TIDE_NAMES, TIDE_SPECIAL_ERRORS

__all__ = [
    "plot_error_analysis",
    "plot_tide",
    "plot_analyze",
    "plot_analyze_per_category",
    "plot_ap_per_category",
    "plot_ap_by_size",
    "plot_confusion",
    "plot_error_comparison",
]

# cocoapi's analyze colours (CocoEval.m makeplot) for Loc ... FN; its C75 and C50 are white,
# here two greys so that the two areas can be told apart.
CURVE_COLOURS = (
    (0.80, 0.80, 0.80),
    (0.93, 0.93, 0.93),
    (0.31, 0.51, 0.74),
    (0.75, 0.31, 0.30),
    (0.36, 0.90, 0.38),
    (0.50, 0.39, 0.64),
    (1.00, 0.60, 0.00),
)
# TIDE's own colours for its error types (tidecv plotting.py).
TIDE_COLOURS = {
    "cls": "#e69f00",
    "loc": "#56b4e9",
    "both": "#009e73",
    "dupe": "#f0e442",
    "bkg": "#0072b2",
    "miss": "#d55e00",
    "false_pos": "#cc79a7",
    "false_neg": "#999999",
}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def _stacked_curves(ax, ps: np.ndarray, title: str, legend: bool = True) -> None:
    """cocoapi's makeplot: each curve's band between it and the previous one, filled."""
    below = np.zeros(len(REC_THRS))
    for i, name in enumerate(CURVES):
        ap = float(ps[i].mean())
        label = f"[{ap:.3f}] {name}"
        ax.fill_between(REC_THRS, below, ps[i], color=CURVE_COLOURS[i], label=label, lw=0)
        ax.plot(REC_THRS, ps[i], color="black", lw=0.5)
        below = ps[i]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(loc="lower left", fontsize=7, framealpha=0.9)


def plot_analyze(curves, path: str, *, title: str = "") -> str:
    """The overall analyze plot, one panel per object size."""
    fig = _figure(14, 3.8)
    axes = fig.subplots(1, len(AREAS))
    for a, (ax, area) in enumerate(zip(axes, AREAS)):
        _stacked_curves(ax, curves.overall(a), f"{title} overall, {area}".strip())
    return _save(fig, path)


def plot_analyze_per_category(curves, class_names: Sequence[str], path: str) -> str:
    """The analyze plot of each category (all sizes), four a row."""
    K = len(class_names)
    ncols = min(4, max(K, 1))
    nrows = max(1, math.ceil(K / ncols))
    fig = _figure(3.3 * ncols, 2.9 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for k, name in enumerate(class_names):
        _stacked_curves(axes[k], curves.precision[:, :, k, 0], str(name), legend=True)
    for ax in axes[K:]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_tide(tide, path: str, *, title: str = "") -> str:
    """TIDE's dAP of each main error and the two special ones, as bars."""
    fig = _figure(9, 3.6)
    ax_main, ax_special = fig.subplots(1, 2, width_ratios=[3, 1.2])
    for ax, kinds, name in (
        (ax_main, TIDE_MAIN_ERRORS, "main errors"),
        (ax_special, TIDE_SPECIAL_ERRORS, "special errors"),
    ):
        values = [tide.dap[k] for k in kinds]
        bars = ax.bar(
            [TIDE_NAMES[k] for k in kinds], values, color=[TIDE_COLOURS[k] for k in kinds]
        )
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8)
        ax.set_ylabel("dAP (AP50 points)")
        ax.set_title(name, fontsize=10)
        top = max([v for v in values if np.isfinite(v)] + [1.0])
        ax.set_ylim(0, top * 1.18)
    fig.suptitle(f"{title} TIDE error breakdown, AP50 {tide.ap50:.2f}".strip(), fontsize=11)
    return _save(fig, path)


def plot_ap_per_category(
    metrics: Mapping[str, Any], curves, class_names: Sequence[str], path: str
) -> str:
    """AP (COCO, from the metrics) and AP50 (C50's area) of each category, best first."""
    ap = np.array([float(metrics.get(f"AP-{n}", float("nan"))) for n in class_names])
    ap50 = curves.aps(0)[1] * 100
    order = np.argsort(-np.nan_to_num(ap, nan=-1.0), kind="stable")
    K = len(class_names)
    fig = _figure(7, max(2.0, 0.28 * K + 1.2))
    ax = fig.subplots()
    y = np.arange(K)
    ax.barh(y - 0.2, ap50[order], height=0.4, color="#9ecae1", label="AP50")
    ax.barh(y + 0.2, ap[order], height=0.4, color="#3182bd", label="AP")
    ax.set_yticks(y, [str(class_names[i]) for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("AP (%)")
    ax.set_title("AP per category", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_ap_by_size(metrics: Mapping[str, Any], curves, path: str) -> str:
    """AP (COCO's AP / APs / APm / APl), AP50 and AP75 (C50 and C75 areas) by object size."""
    keys = {"all": "AP", "small": "APs", "medium": "APm", "large": "APl"}
    ap = [float(metrics.get(keys[a], float("nan"))) for a in AREAS]
    ap50 = [curves.overall(a)[1].mean() * 100 for a in range(len(AREAS))]
    ap75 = [curves.overall(a)[0].mean() * 100 for a in range(len(AREAS))]
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    x = np.arange(len(AREAS))
    for dx, vals, name, colour in (
        (-0.27, ap, "AP", "#3182bd"),
        (0.0, ap50, "AP50", "#9ecae1"),
        (0.27, ap75, "AP75", "#6baed6"),
    ):
        bars = ax.bar(x + dx, np.nan_to_num(vals), width=0.27, color=colour, label=name)
        ax.bar_label(
            bars, labels=[f"{v:.1f}" if np.isfinite(v) else "n/a" for v in vals], fontsize=7
        )
    ax.set_xticks(x, AREAS)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.set_title("AP by object size (AP50 / AP75: mean over categories, 0 where none)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str) -> str:
    """Rows (ground truth, then background) normalised to 100 %, counts written in."""
    rows = list(class_names) + ["background"]
    cols = list(class_names) + ["missed"]
    sums = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(sums > 0, cm / np.maximum(sums, 1) * 100, 0.0)
    n = len(rows)
    size = max(4.0, 0.45 * n + 2.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, label="% of the row")
    ax.set_xticks(np.arange(n), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n), rows, fontsize=8)
    ax.set_xlabel("detected as")
    ax.set_ylabel("ground truth")
    if n <= 31:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    colour = "white" if norm[i, j] > 55 else "black"
                    ax.text(
                        j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7, color=colour
                    )
    ax.set_title("Confusion matrix (score >= 0.3, IoU >= 0.5)", fontsize=10)
    return _save(fig, path)


def plot_error_analysis(
    analysis, metrics: Mapping[str, Any], output_dir: str, *, title: str = ""
) -> Dict[str, str]:
    """Every picture of one task's ErrorAnalysis into ``output_dir``; name -> path."""
    task = analysis.iou_type
    names = analysis.class_names

    def out(name: str) -> str:
        return os.path.join(output_dir, f"{task}_{name}.png")

    label = f"{title} {task}".strip()
    return {
        "tide": plot_tide(analysis.tide, out("tide"), title=label),
        "analyze": plot_analyze(analysis.curves, out("analysis"), title=label),
        "analyze_per_category": plot_analyze_per_category(
            analysis.curves, names, out("analysis_per_category")
        ),
        "ap_per_category": plot_ap_per_category(
            metrics, analysis.curves, names, out("ap_per_category")
        ),
        "ap_by_size": plot_ap_by_size(metrics, analysis.curves, out("ap_by_size")),
        "confusion": plot_confusion(analysis.confusion, names, out("confusion")),
    }


def plot_error_comparison(
    runs: Mapping[str, Mapping[str, float]],
    path: str,
    *,
    title: str = "",
    ap50: Optional[Mapping[str, float]] = None,
) -> str:
    """dAP of each error type for two or more runs side by side.

    Args:
        runs: run name -> {"cls": dAP, ..., "false_neg": dAP} (TIDE's eight numbers).
        path: the PNG to write.
        title: the figure's title.
        ap50: run name -> TIDE's AP50 (written in the legend), optional.
    """
    kinds = TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS
    names = list(runs)
    fig = _figure(10, 4)
    ax = fig.subplots()
    x = np.arange(len(kinds))
    width = 0.8 / max(len(names), 1)
    palette = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c")
    for i, name in enumerate(names):
        vals = [float(runs[name].get(k, float("nan"))) for k in kinds]
        label = name if not ap50 or name not in ap50 else f"{name} (AP50 {ap50[name]:.1f})"
        bars = ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            np.nan_to_num(vals),
            width=width,
            label=label,
            color=palette[i % len(palette)],
        )
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], fontsize=7)
    ax.set_xticks(x, [TIDE_NAMES[k] for k in kinds])
    ax.axvline(len(TIDE_MAIN_ERRORS) - 0.5, color="black", lw=0.6, ls=":")
    ax.set_ylabel("dAP (AP50 points): lower is better")
    ax.set_title(textwrap.fill(title or "TIDE error breakdown", 110), fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)
