"""Training curves from runs' metrics.json files (one JSON object a line, as
resnet_det.engine's JSONWriter writes them).

- :func:`plot_training_curves`: several runs compared in the style of the paper's Fig. 4 and
  Fig. 6, training error (thin) and test error (bold) against iterations, one colour per run.
- :func:`plot_run_curves`: one run at a glance, without TensorBoard: the total loss and its
  parts, the learning rate, and the metrics of each evaluation (detection: AP, AP50, AP75),
  against iterations; every detection run writes it as OUTPUT_DIR/training_curves.png.
"""

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from ..utils.errors import DataError, MissingFileError
from ..utils.visualize import finish_figure

__all__ = [
    "load_metrics",
    "metric_curve",
    "plot_training_curves",
    "plot_run_curves",
    "loss_keys",
    "eval_keys",
    "DEFAULT_TRAIN_KEY",
    "DEFAULT_TEST_KEY",
    "RUN_CURVES_NAME",
]

# What the ClassificationTrainer logs: the training batches' top-1 error (windowed median) and
# the periodic centre-crop top-1 error on the first test set.
DEFAULT_TRAIN_KEY = "train_top1_err"
DEFAULT_TEST_KEY = "center/top1_err"
# File name of plot_run_curves' picture in a run's OUTPUT_DIR.
RUN_CURVES_NAME = "training_curves.png"
# Evaluation metrics drawn by plot_run_curves when present (the headline COCO box numbers);
# otherwise every evaluation key is drawn.
_PREFERRED_EVAL = ("AP", "AP50", "AP75")


def load_metrics(path: str) -> List[Dict]:
    """The records of a metrics.json; a line that is not a JSON object raises naming the file
    and line. A resumed run appends, so a later record of an iteration replaces an earlier one."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    if not os.path.isfile(path):
        raise MissingFileError(
            f"{path}: no such metrics file; give a run's OUTPUT_DIR (a run "
            f"writes OUTPUT_DIR/metrics.json as it trains) or its metrics.json"
        )
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not a JSON object ({e})") from e
            if not isinstance(rec, dict) or "iteration" not in rec:
                raise DataError(f"{path}:{lineno}: a metrics record needs an 'iteration'")
            records.append(rec)
    return records


def metric_curve(records: Sequence[Dict], key: str) -> Tuple[List[int], List[float]]:
    """(iterations, values) of ``key``, sorted by iteration, the last record of an iteration
    winning (a resumed run rewrites the iterations after its checkpoint)."""
    by_iter: Dict[int, float] = {}
    for rec in records:
        if key in rec:
            by_iter[int(rec["iteration"])] = float(rec[key])
    its = sorted(by_iter)
    return its, [by_iter[i] for i in its]


def _dot(curve) -> Optional[str]:
    """A marker for a curve of one point (drawn as nothing otherwise), none for longer ones."""
    return "o" if len(curve[0]) == 1 else None


def plot_training_curves(
    runs: Sequence[Tuple[str, str]],
    output: str,
    *,
    train_key: str = DEFAULT_TRAIN_KEY,
    test_key: str = DEFAULT_TEST_KEY,
    title: Optional[str] = None,
    ylim: Optional[Tuple[float, float]] = None,
) -> str:
    """Plots the runs on one axis and writes a PNG atomically.

    Args:
        runs: (label, metrics.json path or run folder) per run, e.g. ("plain-56", "out/p56").
        output: the PNG path.
        train_key: metrics.json key of the training error (thin line), in percent.
        test_key: metrics.json key of the test error (bold line), in percent.
        title: figure title.
        ylim: y-axis range in percent; None fits the data.

    Returns:
        ``output``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("plot_training_curves: no run given")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, path) in enumerate(runs):
        records = load_metrics(path)
        train = metric_curve(records, train_key)
        test = metric_curve(records, test_key)
        if not train[0] and not test[0]:
            raise DataError(f"{path}: no '{train_key}' or '{test_key}' in its metrics")
        c = colours[i % len(colours)]
        # A series of one point is a line of zero length: it gets a marker to be seen.
        if train[0]:
            ax.plot(*train, color=c, linewidth=0.8, alpha=0.8, linestyle="--", marker=_dot(train))
        if test[0]:
            ax.plot(*test, color=c, linewidth=2.5, label=label, marker=_dot(test))
        else:
            ax.plot([], [], color=c, linewidth=2.5, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(title="bold: test, dashed: train", fontsize=9)
    return finish_figure(fig, ax, title, output)


def loss_keys(records: Sequence[Dict]) -> List[str]:
    """The loss keys of a run's records: "total_loss" first, then the "loss_*" parts sorted."""
    keys = {k for rec in records for k in rec}
    parts = sorted(k for k in keys if k.startswith("loss"))
    return (["total_loss"] if "total_loss" in keys else []) + parts


def eval_keys(records: Sequence[Dict]) -> List[str]:
    """The evaluation keys of a run's records (EvalHook flattens results with "/", e.g.
    "bbox/AP50"): those ending in AP, AP50 or AP75 when there are any, else all of them."""
    keys = sorted({k for rec in records for k in rec if "/" in k})
    preferred = [k for k in keys if k.rsplit("/", 1)[1] in _PREFERRED_EVAL]
    if preferred:
        order = {name: i for i, name in enumerate(_PREFERRED_EVAL)}
        return sorted(preferred, key=lambda k: (k.rsplit("/", 1)[0], order[k.rsplit("/", 1)[1]]))
    return keys


def plot_run_curves(run: str, output: Optional[str] = None, *, title: Optional[str] = None) -> str:
    """One run's training at a glance, from its metrics.json, written as a PNG atomically.

    Three panels against iterations: the total loss (bold) and its parts (log scale), the
    learning rate, and each evaluation's metrics (:func:`eval_keys`; points at the evaluated
    iterations, the last value in the legend). A panel whose keys the run did
    not log says so instead of being left out, so the picture always has the same layout.

    Args:
        run: the run's OUTPUT_DIR or its metrics.json.
        output: the PNG path (default: RUN_CURVES_NAME in the run's folder).
        title: figure title (default: the run's folder).

    Returns:
        ``output``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    output = output or os.path.join(folder, RUN_CURVES_NAME)
    records = load_metrics(run)
    losses = [(k, metric_curve(records, k)) for k in loss_keys(records)]
    lr = metric_curve(records, "lr")
    evals = [(k, metric_curve(records, k)) for k in eval_keys(records)]
    if not losses and not lr[0] and not evals:
        raise DataError(f"{run}: its metrics hold no loss, 'lr' or evaluation key to plot")
    last = max(max(its) for its, _ in [c for _, c in losses + evals] + [lr] if its)
    fig, (ax_loss, ax_lr, ax_eval) = plt.subplots(
        3, 1, figsize=(7.0, 7.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 2.2]}
    )
    for k, (its, vals) in losses:
        bold = k == "total_loss"
        ax_loss.plot(
            its, vals, linewidth=2.2 if bold else 1.2, color="black" if bold else None, label=k
        )
    if losses:
        if all(v > 0 for _, (_, vals) in losses for v in vals):
            ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8, ncol=2, loc="best", framealpha=0.85)
    ax_loss.set_ylabel("training loss")
    ax_lr.plot(*lr, color="tab:purple")
    ax_lr.set_ylabel("learning rate")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for k, (its, vals) in evals:
        # The last value in the legend, where close curves cannot make it unreadable.
        ax_eval.plot(
            its, vals, marker="o", linewidth=1.8, label=f"{k}: {vals[-1]:.1f} at {its[-1]}"
        )
    if evals:
        ax_eval.legend(fontsize=8, loc="best", framealpha=0.85)
        if all(0 <= v <= 100 for _, (_, vals) in evals for v in vals):
            ax_eval.set_ylim(0, 102)  # percentages (AP, error): the whole scale, not a zoom
    ax_eval.set_ylabel("evaluation")
    ax_eval.set_xlabel("iteration")
    for ax, what in ((ax_loss, losses), (ax_lr, lr[0]), (ax_eval, evals)):
        ax.grid(alpha=0.3)
        if not what:
            ax.text(
                0.5,
                0.5,
                "not logged in this run",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="gray",
            )
    ax_eval.set_xlim(0, last * 1.03 + 1)
    return finish_figure(fig, ax_loss, title or os.path.basename(os.path.abspath(folder)), output)
