#!/usr/bin/env python
"""Training curves from runs' metrics.json.

One run at a glance (total loss and its parts, learning rate, each evaluation's AP), the
picture every detection run leaves as OUTPUT_DIR/training_curves.png:

    python tools/plot_curves.py output/demo_shapes   # -> output/demo_shapes/training_curves.png

Runs compared as in the paper's Fig. 4 / Fig. 6: training error (thin, dashed) and test error
(bold) against iterations, one colour per run:

    python tools/plot_curves.py --run plain-56 output/digits_plain56 \\
        --run ResNet-56 output/digits_resnet56 --output docs/figures/digits_plain56_vs_resnet56.png
"""

import argparse
import sys

from resnet_det.engine.curves import (
    DEFAULT_TEST_KEY,
    DEFAULT_TRAIN_KEY,
    plot_run_curves,
    plot_training_curves,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run_dir",
        nargs="?",
        default=None,
        help="one run's OUTPUT_DIR (or metrics.json): draw its losses, lr and evaluations",
    )
    parser.add_argument(
        "--run",
        nargs=2,
        action="append",
        metavar=("LABEL", "PATH"),
        help="compare runs: a label and an OUTPUT_DIR or metrics.json (repeat for each run)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="PNG to write (default with run_dir: RUN_DIR/training_curves.png)",
    )
    parser.add_argument(
        "--train-key",
        default=DEFAULT_TRAIN_KEY,
        help="with --run: metrics.json key of the training error",
    )
    parser.add_argument(
        "--test-key",
        default=DEFAULT_TEST_KEY,
        help="with --run: metrics.json key of the test error",
    )
    parser.add_argument("--title", default=None)
    parser.add_argument(
        "--ylim",
        nargs=2,
        type=float,
        default=None,
        metavar=("LOW", "HIGH"),
        help="with --run: y-axis range",
    )
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (args.run is None):
        parser.error("give either one RUN_DIR or one or more --run LABEL PATH")
    if args.run_dir is not None:
        out = plot_run_curves(args.run_dir, args.output, title=args.title)
    else:
        if args.output is None:
            parser.error("--run needs --output")
        out = plot_training_curves(
            [tuple(r) for r in args.run],
            args.output,
            train_key=args.train_key,
            test_key=args.test_key,
            title=args.title,
            ylim=tuple(args.ylim) if args.ylim else None,
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("plot_curves.py", main))
