"""What a finished detection run prints last: where each of its outputs is and the commands a
user types next (evaluate again, predict on their own images, resume an interrupted run,
redraw the curves). The commands name OUTPUT_DIR/config.yaml, the run's full resolved config,
so they repeat the run's settings whatever overrides it was started with.
"""

import os
import shlex
from typing import Mapping, Optional

__all__ = ["format_run_summary"]


def _latest_checkpoint(output_dir: str) -> Optional[str]:
    """The checkpoint OUTPUT_DIR/last_checkpoint names (the one --resume continues from)."""
    marker = os.path.join(output_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        name = f.read().strip()
    return os.path.join(output_dir, name) if name else None


def format_run_summary(
    output_dir: str,
    *,
    pictures: Mapping[str, str],
    eval_only: bool = False,
    python: str = "python3",
) -> str:
    """The closing text of a run of tools/train_net.py.

    Args:
        output_dir: the run's OUTPUT_DIR.
        pictures: label -> path of each picture written (e.g. "detections", "training curves").
        eval_only: the run only evaluated (no checkpoint, metrics or resume of its own).
        python: the interpreter named in the commands.

    Returns:
        Lines "Outputs of this run" (path per output) and "Next" (commands), ready to print.
    """
    q = shlex.quote
    out = os.path.normpath(output_dir)
    config = os.path.join(out, "config.yaml")
    weights = _latest_checkpoint(out)
    rows = []
    if weights:
        rows.append(("checkpoint", f"{weights}  (named by {os.path.join(out, 'last_checkpoint')})"))
    if not eval_only:
        rows.append(("metrics", os.path.join(out, "metrics.json")))
    for label, path in pictures.items():
        rows.append((label, path))
    inference = os.path.join(out, "inference")
    if os.path.isdir(inference):
        rows.append(("detections files", f"{inference}{os.sep}<dataset>{os.sep}"))
    rows.append(("log", os.path.join(out, "log.txt")))
    if not eval_only:
        rows.append(("TensorBoard", f"tensorboard --logdir {q(out)}"))
    rows.append(("full config", config))
    width = max(len(label) for label, _ in rows) + 2
    lines = ["Outputs of this run:"] + [f"  {label:<{width}}{value}" for label, value in rows]
    if weights:
        cfg = f"--config-file {q(config)}"
        lines += [
            "Next:",
            f"  evaluate again:     {python} tools/train_net.py {cfg} --eval-only MODEL.WEIGHTS "
            f"{q(weights)}",
            f"  predict on images:  {python} tools/predict.py {cfg} --input IMAGES --output "
            f"{q(os.path.join(out, 'predictions'))} MODEL.WEIGHTS {q(weights)}",
            f"  resume:             {python} tools/train_net.py {cfg} --resume",
            f"  redraw the curves:  {python} tools/plot_curves.py {q(out)}",
        ]
    return "\n".join(lines)
