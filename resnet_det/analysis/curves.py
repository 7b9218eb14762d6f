"""Training curves in the style of the paper's Fig. 4 and Fig. 6: training error (thin) and
test error (bold) against iterations, one colour per run, from the runs' metrics.json files
(one JSON object a line, as resnet_det.engine's JSONWriter writes them)."""
import json
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["load_metrics", "metric_curve", "plot_training_curves", "finish_figure", "DEFAULT_TRAIN_KEY",
           "DEFAULT_TEST_KEY"]

# What the ClassificationTrainer logs: the training batches' top-1 error (windowed median) and
# the periodic centre-crop top-1 error on the first test set.
DEFAULT_TRAIN_KEY = "train_top1_err"
DEFAULT_TEST_KEY = "center/top1_err"


def load_metrics(path: str) -> List[Dict]:
    """The records of a metrics.json; a line that is not a JSON object raises naming the file
    and line. A resumed run appends, so a later record of an iteration replaces an earlier one."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({e})") from e
            if not isinstance(rec, dict) or "iteration" not in rec:
                raise ValueError(f"{path}:{lineno}: a metrics record needs an 'iteration'")
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
            raise ValueError(f"{path}: no '{train_key}' or '{test_key}' in its metrics")
        c = colours[i % len(colours)]
        if train[0]:
            ax.plot(*train, color=c, linewidth=0.8, alpha=0.8, linestyle="--")
        if test[0]:
            ax.plot(*test, color=c, linewidth=2.5, label=label)
        else:
            ax.plot([], [], color=c, linewidth=2.5, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(title="bold: test, dashed: train", fontsize=9)
    return finish_figure(fig, ax, title, output)


def finish_figure(fig, title_ax, title: Optional[str], output: str) -> str:
    """Titles ``title_ax`` (when ``title``), lays out ``fig``, writes it to ``output`` as a PNG
    (see ``_save_png``) and closes it; returns ``output``."""
    import matplotlib.pyplot as plt

    if title:
        title_ax.set_title(title)
    fig.tight_layout()
    _save_png(fig, output)
    plt.close(fig)
    return output


def _save_png(fig, output: str) -> None:
    """Writes to a temporary file beside ``output`` and renames it into place."""
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120)
        # mkstemp creates the file 0600; give it the usual permissions of a new file.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
