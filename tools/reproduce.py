#!/usr/bin/env python
"""Reproduce the paper's detection comparison (He et al. 2015, Faster R-CNN with VGG-16 vs
ResNet-101) in one command: train and evaluate both backbones with the paper configs and write
OUTPUT_DIR/reproduction.md and reproduction.png beside the paper's numbers.

    python3 tools/reproduce.py --table 8 --num-gpus 8 \\
        --weights-r101 R-101.pkl --weights-vgg16 vgg16.pth
    python3 tools/reproduce.py --table 7 --num-gpus 8 --pretrain  # our own ImageNet pretraining
    python3 tools/reproduce.py --table voc12 --server-map r101=73.5 --server-map vgg16=70.1
    python3 tools/reproduce.py --demo                             # the chain on generated data

--table 7: VOC 2007 test (07+12); voc12: VOC 2012 test (07++12, scored by the PASCAL server);
8: COCO val2014. Run the same command again to continue: finished runs are skipped, an
interrupted one resumes from its last checkpoint. Trailing KEY VALUE pairs override both
detection configs. docs/reproduction.md, "Running the comparison".
"""

import argparse
import os
import shlex
import sys

from reproduction import (
    COMPARISONS,
    DEMO,
    FAST_DETECT_OPTS,
    FAST_PRETRAIN_OPTS,
    run_comparison,
)
from resnet_det.utils.errors import UsageError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", choices=sorted(COMPARISONS), help="the paper's table to reproduce")
    what.add_argument(
        "--demo", action="store_true", help="the whole chain on generated data (CPU, minutes)"
    )
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per run (default 1)")
    parser.add_argument(
        "--dist-url", default="auto", help="process-group rendezvous (default: a free local port)"
    )
    parser.add_argument(
        "--weights-r101",
        metavar="FILE",
        help="ResNet-101 weights (default: the config's MODEL.WEIGHTS)",
    )
    parser.add_argument(
        "--weights-vgg16",
        metavar="FILE",
        help="VGG-16 weights (default: the config's MODEL.WEIGHTS)",
    )
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="first pretrain both backbones on ImageNet (configs/imagenet) and convert them",
    )
    parser.add_argument(
        "--output-dir", metavar="DIR", help="default ./output/reproduce/table<T> (or demo)"
    )
    parser.add_argument(
        "--server-map",
        action="append",
        default=[],
        metavar="SLUG=MAP",
        help="--table voc12: the evaluation server's mAP of r101 or vgg16",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="with --demo: a few iterations per run on tiny images (checks the wiring)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the runs' commands, run nothing"
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides of both detection configs"
    )
    return parser.parse_args(argv)


def _server_map(items):
    out = {}
    for item in items:
        slug, sep, value = item.partition("=")
        try:
            out[slug] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"--server-map {item!r}: give SLUG=MAP, e.g. r101=73.8")
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.fast and not args.demo:
        raise UsageError("--fast shortens the demo's runs; the paper tables run as configured")
    comparison = DEMO if args.demo else COMPARISONS[args.table]
    return run_comparison(
        comparison,
        output_dir=args.output_dir
        or os.path.join("output", "reproduce", "demo" if args.demo else f"table{args.table}"),
        num_gpus=args.num_gpus,
        dist_url=args.dist_url,
        pretrain=args.pretrain or args.demo,
        weights={"r101": args.weights_r101, "vgg16": args.weights_vgg16},
        opts=(FAST_DETECT_OPTS if args.fast else []) + list(args.opts),
        pretrain_opts=FAST_PRETRAIN_OPTS if args.fast else [],
        server_map=_server_map(args.server_map),
        dry_run=args.dry_run,
        command=shlex.join(["tools/reproduce.py", *(sys.argv[1:] if argv is None else argv)]),
    )


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("reproduce.py", main)
