"""The comparison's report: OUTPUT_DIR/reproduction.md (the paper's numbers and ours side by
side, the gain of the deeper net in both, where each net loses its AP when the detection runs
ran the error analysis (TEST.ERROR_ANALYSIS), every run's config, command, commit, wall time
and machine load), OUTPUT_DIR/reproduction.png (the numbers as bars) and
OUTPUT_DIR/reproduction_errors.png (the error breakdown of both nets side by side)."""

import os
import platform
import textwrap
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from resnet_det.evaluation.error_plots import plot_error_comparison
from resnet_det.evaluation.tide import TIDE_MAIN_ERRORS, TIDE_NAMES, TIDE_SPECIAL_ERRORS
from resnet_det.evaluation.voc_submission import submission_zip_path
from resnet_det.utils.file_io import atomic_write_text
from resnet_det.utils.visualize import finish_figure

from .paper import Comparison, Metric
from .plan import Step

__all__ = ["ours", "error_breakdown", "write_report", "format_seconds"]

_KIND = {"pretrain": "pretraining", "convert": "conversion", "detect": "detection"}


def format_seconds(seconds: float) -> str:
    """ "2 h 03 min", "12 min 05 s", "42 s"."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _bbox(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """The "bbox" dict of a detection run's results (also under one test set's name)."""
    if "bbox" in results:
        return results["bbox"]
    inner = [v for v in results.values() if isinstance(v, Mapping) and "bbox" in v]
    return inner[0]["bbox"] if len(inner) == 1 else {}


def ours(comparison: Comparison, state: Mapping[str, Any]) -> Dict[str, Dict[str, Optional[float]]]:
    """{backbone slug: {metric label: our number or None (not measured yet)}}."""
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for b in comparison.backbones:
        record = state.get("steps", {}).get(f"detect_{b.slug}", {})
        bbox = _bbox(record.get("results") or {}) if record.get("status") == "done" else {}
        values = {m.label: bbox.get(m.key) for m in comparison.metrics}
        if comparison.server:
            server = state.get("server_map", {}).get(b.slug)
            values = {m.label: server for m in comparison.metrics}
        out[b.slug] = values
    return out


def error_breakdown(
    comparison: Comparison, state: Mapping[str, Any]
) -> Optional[Dict[str, Dict[str, float]]]:
    """{backbone slug: {error: dAP}} (TIDE's eight numbers of the box detections, from the
    detection runs' ``bbox/dAP/*`` metrics), or None until both runs have them."""
    out: Dict[str, Dict[str, float]] = {}
    for b in comparison.backbones:
        record = state.get("steps", {}).get(f"detect_{b.slug}", {})
        bbox = _bbox(record.get("results") or {}) if record.get("status") == "done" else {}
        values = {k: bbox.get(f"dAP/{k}") for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS}
        if any(v is None for v in values.values()):
            return None
        out[b.slug] = {k: float(v) for k, v in values.items()}
    return out


def _error_section(comparison: Comparison, errors, figure: str) -> List[str]:
    base, deep = comparison.backbones
    lines = [
        "## Where the AP is lost: TIDE's error breakdown (boxes, IoU 0.5)",
        "",
        "dAP: how many AP50 points each kind of error costs (the AP50 gained by fixing it "
        "alone; docs/error_analysis.md), lower is better. The last column is the change from "
        f"{base.name} to {deep.name}: negative where {deep.name} makes that error less.",
        "",
        f"| error | {base.name} | {deep.name} | {deep.name} − {base.name} |",
        "| --- | --- | --- | --- |",
    ]
    for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS:
        a, b = errors[base.slug][k], errors[deep.slug][k]
        lines.append(f"| {TIDE_NAMES[k]} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    # Largest reduction first; equal ones in TIDE's order.
    change = sorted(
        ((errors[base.slug][k] - errors[deep.slug][k], k) for k in TIDE_MAIN_ERRORS),
        key=lambda item: -item[0],
    )
    less = [f"{TIDE_NAMES[k]} by {d:.2f}" for d, k in change if d >= 0.005]
    more = [f"{TIDE_NAMES[k]} by {-d:.2f}" for d, k in reversed(change) if d <= -0.005]
    text = f"{deep.name} reduces " + (", ".join(less) if less else "none of the main errors")
    text += " AP50 points"
    if more:
        text += f"; it loses more than {base.name} to " + ", ".join(more)
    lines += ["", text + ".", "", f"![the error breakdown of both backbones]({figure})", ""]
    return lines


def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _gain(
    values: Mapping[str, Mapping[str, Optional[float]]], comparison: Comparison, metric: Metric
) -> Optional[float]:
    base, deep = (values[b.slug][metric.label] for b in comparison.backbones)
    return None if base is None or deep is None else deep - base


def _results_line(step: Step, record: Mapping[str, Any], comparison: Comparison) -> str:
    results = record.get("results") or {}
    if record.get("status") != "done":
        return record.get("status", "not started")
    if step.kind == "convert":
        artifact = os.path.relpath(step.artifact, os.path.dirname(step.run_dir))
        return f"{results.get('entries', '?')} tensors -> `{artifact}`"
    if step.kind == "pretrain":
        parts = [
            f"{mode}: top-1 error {r['top1_err']:.2f}%"
            for mode, r in results.items()
            if isinstance(r, Mapping) and r.get("top1_err") is not None
        ]
        return "; ".join(parts) or "no evaluation"
    bbox = _bbox(results)
    parts = [f"{m.label} {_num(bbox.get(m.key))}" for m in comparison.metrics if m.key in bbox]
    submission = results.get("voc_submission")
    if submission:  # a test set without annotations (VOC 2012 test): files for the server
        parts.append(
            f"{int(submission['detections'])} detections on {int(submission['images'])} "
            "images written for the server"
        )
    return ", ".join(parts) or "evaluated (no box metrics: see the run's log)"


def _table(comparison: Comparison, values) -> List[str]:
    base, deep = comparison.backbones
    lines = [
        f"| metric | | {base.name} | {deep.name} | gain ({deep.name} − {base.name}) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in comparison.metrics:
        paper_gain = comparison.paper_gain(m)
        lines.append(
            f"| {m.label} | paper | {base.paper[m.label]:.1f} | {deep.paper[m.label]:.1f} | "
            f"{paper_gain:+.1f} ({100 * paper_gain / base.paper[m.label]:+.0f}%) |"
        )
        gain = _gain(values, comparison, m)
        base_v = values[base.slug][m.label]
        rel = f" ({100 * gain / base_v:+.0f}%)" if gain is not None and base_v else ""
        lines.append(
            f"| | ours | {_num(base_v)} | {_num(values[deep.slug][m.label])} | "
            f"{_num(gain, True)}{rel} |"
        )
    return lines


def _environment(num_gpus: int) -> List[str]:
    device = (
        ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    )
    import torchvision

    return [
        f"- machine: {platform.node() or 'unknown'}, {device}; {num_gpus} process(es) per run",
        f"- python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}",
    ]


def write_report(
    comparison: Comparison,
    steps: Sequence[Step],
    state: Mapping[str, Any],
    output_dir: str,
    *,
    num_gpus: int = 1,
) -> Dict[str, str]:
    """Write reproduction.md, reproduction.png and, once both detection runs have TIDE's
    numbers, reproduction_errors.png in ``output_dir``; returns their paths ("markdown",
    "figure", "errors_figure")."""
    values = ours(comparison, state)
    records = state.get("steps", {})
    md: List[str] = [f"# Reproducing He et al. 2015 — {comparison.title}", ""]
    labels = [f"{b.name}: {b.ours}" for b in comparison.backbones if b.ours != b.name]
    if labels:
        md += ["Our networks: " + "; ".join(labels) + ".", ""]
    md += _table(comparison, values) + [""]
    if comparison.note:
        md += [comparison.note, ""]
    errors = error_breakdown(comparison, state)
    paths: Dict[str, str] = {}
    if errors is not None:
        paths["errors_figure"] = plot_error_comparison(
            {
                b.name if b.ours == b.name else f"{b.name} (ours: {b.ours})": errors[b.slug]
                for b in comparison.backbones
            },
            os.path.join(output_dir, "reproduction_errors.png"),
            title=f"{comparison.title}: TIDE error breakdown (dAP, AP50 points)",
        )
        md += _error_section(comparison, errors, "reproduction_errors.png")
    if comparison.server:
        files = [
            submission_zip_path(os.path.join(s.run_dir, "inference", name), name)
            for s in steps
            if s.kind == "detect"
            for name in s.cfg.DATASETS.TEST
        ]
        md += ["Submission files for the server: " + ", ".join(f"`{f}`" for f in files) + ".", ""]
    md += [
        "## Runs",
        "",
        "| step | what | config | wall time | CPU time | attempts | load average (start / end) | "
        "result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    total = cpu = 0.0
    for step in steps:
        r = records.get(step.name, {})
        total += r.get("wall_s", 0.0)
        cpu += r.get("cpu_s", 0.0)
        load = f"{r.get('load_start', '—')} / {r.get('load_end', '—')}" if r else "—"
        ran = bool(r.get("attempts"))
        md.append(
            f"| {step.name} | {_KIND[step.kind]}, {step.backbone.ours} | "
            f"{f'`{step.config_file}`' if step.config_file else '—'} | "
            f"{format_seconds(r['wall_s']) if ran else '—'} | "
            f"{format_seconds(r.get('cpu_s', 0.0)) if ran else '—'} | {r.get('attempts', 0)} | "
            f"{load} | {_results_line(step, r, comparison)} |"
        )
    md += [
        "",
        f"Total wall time: {format_seconds(total)}, CPU time {format_seconds(cpu)} (summed over "
        "the "
        "steps and their attempts; CPU time counts this process and the processes it started; the "
        "load average is the machine's 1-minute load when a step started and ended).",
        "",
        "## Commands",
        "",
        "Each step is what these commands of the project's tools do (run in order; "
        "`--resume` continues an interrupted run):",
        "",
        "```bash",
    ]
    md += [step.command(num_gpus) for step in steps] + ["```", "", "## Provenance", ""]
    commits = sorted({r["commit"] for r in records.values() if r.get("commit")})
    md += [f"- git commit(s) of the runs: {', '.join(commits) or '—'}"]
    md += [
        f"- command: `{inv['command']}` ({inv['started']})"
        for inv in state.get("invocations", [])
        if inv.get("command")
    ]
    md += _environment(num_gpus)
    md += [f"- report written {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    md_path = os.path.join(output_dir, "reproduction.md")
    atomic_write_text(md_path, "\n".join(md))
    return {
        "markdown": md_path,
        "figure": plot_comparison(comparison, values, os.path.join(output_dir, "reproduction.png")),
        **paths,
    }


def plot_comparison(
    comparison: Comparison, values: Mapping[str, Mapping[str, Optional[float]]], output: str
) -> str:
    """One panel per metric: the paper's and our numbers for both backbones, with the gains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base, deep = comparison.backbones
    n = len(comparison.metrics)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n + 0.6, 4.4), squeeze=False)
    colors = ("#9e9e9e", "#1f77b4")
    for ax, m in zip(axes[0], comparison.metrics):
        groups = [
            ("paper", base.paper[m.label], deep.paper[m.label]),
            ("ours", values[base.slug][m.label], values[deep.slug][m.label]),
        ]
        top = max([v for _, a, b in groups for v in (a, b) if v is not None] + [1.0])
        for gi, (_, a, b) in enumerate(groups):
            for bi, v in enumerate((a, b)):
                x = gi + (bi - 0.5) * 0.38
                if v is None:
                    ax.text(
                        x,
                        top * 0.04,
                        "not\nyet",
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        color="gray",
                    )
                    continue
                ax.bar(
                    x,
                    v,
                    width=0.36,
                    color=colors[bi],
                    label=(base, deep)[bi].name if gi == 0 else None,
                )
                ax.text(x, v + top * 0.01, f"{v:.1f}", ha="center", va="bottom", fontsize=9)
            if a is not None and b is not None:
                ax.text(
                    gi,
                    top * 1.13,
                    f"gain {b - a:+.1f}",
                    ha="center",
                    fontsize=10,
                    fontweight="bold",
                )
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["paper", "ours"])
        ax.set_ylim(0, top * 1.25)
        ax.set_ylabel(m.label)
        ax.set_title(m.label)
        ax.grid(axis="y", alpha=0.3)
    # Under the first panel, where it hides no bar (tight_layout makes room for it).
    axes[0][0].legend(
        loc="upper left", bbox_to_anchor=(0.0, -0.08), ncol=2, fontsize=9, frameon=False
    )
    title = textwrap.fill(comparison.title, width=int(58 * n))
    if any(b.ours != b.name for b in comparison.backbones):
        title += "\nours: " + " vs ".join(b.ours for b in comparison.backbones)
    fig.suptitle(title, fontsize=10)
    return finish_figure(fig, axes[0][0], None, output)
