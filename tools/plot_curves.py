#!/usr/bin/env python
"""Training curves as in the paper's Fig. 4 / Fig. 6: training error (thin, dashed) and test
error (bold) against iterations, one colour per run, from the runs' metrics.json.

    python tools/plot_curves.py --run plain-56 output/digits_plain56 \
        --run ResNet-56 output/digits_resnet56 --output docs/figures/digits_plain56_vs_resnet56.png
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from resnet_det.analysis.curves import DEFAULT_TEST_KEY, DEFAULT_TRAIN_KEY, plot_training_curves  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("LABEL", "PATH"),
                        help="a run: its label and its OUTPUT_DIR or metrics.json (repeat for each run)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--train-key", default=DEFAULT_TRAIN_KEY, help="metrics.json key of the training error")
    parser.add_argument("--test-key", default=DEFAULT_TEST_KEY, help="metrics.json key of the test error")
    parser.add_argument("--title", default=None)
    parser.add_argument("--ylim", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"))
    args = parser.parse_args(argv)
    out = plot_training_curves([tuple(r) for r in args.run], args.output, train_key=args.train_key,
                               test_key=args.test_key, title=args.title,
                               ylim=tuple(args.ylim) if args.ylim else None)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("plot_curves.py", main))
