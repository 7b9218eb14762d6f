#!/usr/bin/env python
"""Export a trained detector to TorchScript, ONNX or torch.export, and check the export.

    python tools/export_model.py --format onnx --output exported/      # the demo's model
    python tools/export_model.py --format torchscript --config-file configs/faster_rcnn_R101.yaml \\
        --sample-image photo.jpg --output exported/ \\
        --opts MODEL.WEIGHTS output/coco_R101_C4/model_final.pth

Writes OUTPUT/model.{pt,onnx,pt2} and OUTPUT/model.json (inputs, outputs, class names, the
accepted input sizes, the check's numbers), then runs the exported model on the sample image
and on a second image of another size and compares boxes and scores with the eager detector:
the largest differences are printed, and beyond the tolerance (--box-tolerance pixels,
--score-tolerance) the tool fails (exit status 2). The model takes one image already resized
as the config's test-time resize; docs/deployment.md explains the formats and their limits.
"""

import argparse
import logging
import os

DEMO_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "configs", "demo", "faster_rcnn_shapes.yaml"
)


def parse_args(argv=None):
    from resnet_det.export import DEFAULT_TOLERANCE, FORMATS

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument(
        "--config-file",
        default="",
        metavar="FILE",
        help="detector config (default: the demo, configs/demo/faster_rcnn_shapes.yaml)",
    )
    p.add_argument("--output", required=True, help="folder (OUTPUT/model.<ext>) or artifact file")
    p.add_argument(
        "--sample-image", help="image to trace and check with (default: a generated demo image)"
    )
    p.add_argument(
        "--fixed-size",
        action="store_true",
        help="fix height and width to the sample's (default: dynamic where the format allows)",
    )
    p.add_argument(
        "--box-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE.boxes,
        help=f"largest accepted box difference in pixels (default {DEFAULT_TOLERANCE.boxes})",
    )
    p.add_argument(
        "--score-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE.scores,
        help=f"largest accepted score difference (default {DEFAULT_TOLERANCE.scores})",
    )
    p.add_argument(
        "--opts",
        dest="opts_flag",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides KEY VALUE ... (also accepted without --opts at the end)",
    )
    p.add_argument("opts", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.opts = list(args.opts) + list(args.opts_flag)
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
    import resnet_det.data  # noqa: F401  registers the datasets (class names)
    from resnet_det.config import get_cfg
    from resnet_det.export import Tolerance, export_detector

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file or DEMO_CONFIG)
    cfg.merge_from_list(args.opts)
    report = export_detector(
        cfg,
        args.format,
        args.output,
        sample_image=args.sample_image,
        dynamic=not args.fixed_size,
        tolerance=Tolerance(args.box_tolerance, args.score_tolerance),
    )
    print(f"Exported {args.format}: {report.artifact} (input sizes {report.input_sizes})")
    print(f"Description: {report.description}")
    for c in report.comparisons:
        print("  " + c.describe())
    return report


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("export_model.py", main)
