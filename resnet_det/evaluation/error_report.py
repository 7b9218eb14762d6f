"""The error analysis of an evaluation as files in its output folder: error_analysis.json (every
number), the pictures (error_plots.py) and report.html, one page that shows them with the
tables and works offline (the pictures sit beside it and are linked by relative paths).
"""

from __future__ import annotations

import html
import logging
import os
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from ..utils.file_io import atomic_write_json, atomic_write_text
from .coco_analyze import AREAS, CURVES
from .error_plots import plot_error_analysis
from .tide import TIDE_MAIN_ERRORS, TIDE_NAMES, TIDE_SPECIAL_ERRORS

__all__ = ["write_error_report", "REPORT_NAME", "JSON_NAME"]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
JSON_NAME = "error_analysis.json"

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
p.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c if isinstance(c, str) else _fmt(c, digits))}</td>" for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _task_section(task: str, analysis, metrics: Mapping[str, Any], pictures: Mapping[str, str]):
    parts: List[str] = [f"<h2>{html.escape(task)}</h2>"]
    main = [(k, v) for k, v in metrics.items() if "-" not in k and not k.startswith("dAP/")]
    parts.append("<h3>COCO metrics</h3>")
    parts.append(_table([k for k, _ in main], [[v for _, v in main]]))

    tide = analysis.tide
    parts.append("<h3>TIDE error breakdown (dAP, AP points at IoU 0.5)</h3>")
    parts.append(
        _table(
            ["", "AP50 (TIDE)"] + [TIDE_NAMES[k] for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS],
            [
                ["dAP", tide.ap50] + [tide.dap[k] for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS],
                ["errors", ""] + [tide.counts[k] for k in TIDE_MAIN_ERRORS] + ["", ""],
            ],
        )
    )
    if "tide" in pictures:
        parts.append(_img(pictures["tide"], f"TIDE breakdown, {task}"))

    parts.append("<h3>COCO analysis (cocoapi analyze): area under each PR curve</h3>")
    rows = []
    for a, area in enumerate(AREAS):
        rows.append([area] + analysis.curves.overall(a).mean(axis=1).tolist())
    parts.append(_table(["objects"] + list(CURVES), rows, digits=3))
    for key in ("analyze", "analyze_per_category"):
        if key in pictures:
            parts.append(_img(pictures[key], f"COCO analysis, {task}"))

    parts.append("<h3>Per category</h3>")
    aps = analysis.curves.aps(0)
    rows = []
    for k, name in enumerate(analysis.class_names):
        rows.append(
            [name, metrics.get(f"AP-{name}", float("nan"))]
            + aps[:, k].tolist()[:5]
            + [tide.per_class_dap[e][k] for e in TIDE_MAIN_ERRORS]
        )
    parts.append(
        _table(
            ["category", "AP"]
            + [f"{c} (area)" for c in CURVES[:5]]
            + [f"dAP {TIDE_NAMES[e]}" for e in TIDE_MAIN_ERRORS],
            rows,
        )
    )
    for key in ("ap_per_category", "ap_by_size"):
        if key in pictures:
            parts.append(_img(pictures[key], f"{key}, {task}"))

    parts.append("<h3>Confusion matrix (detections scoring &ge; 0.3, IoU &ge; 0.5)</h3>")
    names = list(analysis.class_names)
    cm = analysis.confusion
    parts.append(
        _table(
            ["ground truth \\ detected"] + names + ["missed"],
            [[r] + cm[i].tolist() for i, r in enumerate(names + ["background"])],
        )
    )
    if "confusion" in pictures:
        parts.append(_img(pictures["confusion"], f"confusion matrix, {task}"))
    return "\n".join(parts)


def _img(path: str, alt: str) -> str:
    return f'<p><img src="{html.escape(path)}" alt="{html.escape(alt)}"></p>'


def write_error_report(
    analyses: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, Any]],
    output_dir: str,
    *,
    title: str = "",
    pictures: bool = True,
) -> Dict[str, str]:
    """Write error_analysis.json, the pictures and report.html into ``output_dir``.

    Args:
        analyses: task ("bbox", "segm") -> ErrorAnalysis.
        metrics: task -> the task's COCO metrics (AP, ..., AP-<class>, dAP/...).
        output_dir: the evaluation's folder (OUTPUT_DIR/inference/<dataset> in a run).
        title: the dataset's name, for the page's title.
        pictures: draw the PNGs (matplotlib).

    Returns:
        name -> path of every file written.
    """
    os.makedirs(output_dir, exist_ok=True)
    written: Dict[str, str] = {}
    json_path = os.path.join(output_dir, JSON_NAME)
    atomic_write_json(json_path, {task: a.to_json() for task, a in analyses.items()})
    written["json"] = json_path
    per_task_pictures: Dict[str, Dict[str, str]] = {task: {} for task in analyses}
    if pictures:
        for task, analysis in analyses.items():
            files = plot_error_analysis(analysis, metrics.get(task, {}), output_dir, title=title)
            for key, path in files.items():
                per_task_pictures[task][key] = os.path.basename(path)
                written[f"{task}/{key}"] = path
    body = [
        f"<h1>Error analysis: {html.escape(title)}</h1>",
        '<p class="note">TIDE (Bolya et al., ECCV 2020): dAP = the AP50 gained by fixing one '
        "kind of error (Cls: right box, wrong class; Loc: right class, IoU 0.1-0.5; Both: "
        "wrong class and IoU 0.1-0.5; Dupe: duplicate of a matched object; Bkg: on background; "
        "Miss: object never detected); FalsePos / FalseNeg: AP50 with every false positive / "
        "false negative removed. COCO analysis (cocoapi's analyze): PR curves at IoU 0.75 "
        "(C75), 0.5 (C50), 0.1 (Loc), with confusions within the supercategory (Sim) or with "
        "any class (Oth) forgiven, then background false positives (BG); the area above BG "
        "is what missed objects cost (FN). Definitions: docs/error_analysis.md.</p>",
    ]
    for task, analysis in analyses.items():
        body.append(_task_section(task, analysis, metrics.get(task, {}), per_task_pictures[task]))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Error analysis: {html.escape(title)}</title><style>{_STYLE}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    report_path = os.path.join(output_dir, REPORT_NAME)
    atomic_write_text(report_path, page)
    written["report"] = report_path
    logger.info("Error analysis report: %s", report_path)
    return written
