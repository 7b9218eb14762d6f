#!/usr/bin/env python
"""Run a trained detector on your own images: a picture per image and predictions.json.

    python tools/predict.py --input photos/ --output out/            # the demo's trained model
    python tools/predict.py --config-file configs/faster_rcnn_R101.yaml \\
        --input 'photos/*.jpg' --output out/ \\
        --opts MODEL.WEIGHTS output/coco_R101_C4/model_final.pth
    python tools/predict.py --input image.jpg --output drawn.png --confidence-threshold 0.3

--input takes files, glob patterns and folders (their image files), and video files or webcam
indices where OpenCV is installed. --output is a folder (OUTPUT/<name>.png per image plus
OUTPUT/predictions.json in COCO's results format) or, for one image, a picture file name.
Without --config-file the demo's model (output/demo_shapes/model_final.pth, made by
tools/train_net.py) is used. An input that cannot be read is named and left out; the others
are processed, and the exit status is then 1. docs/deployment.md has the details.
"""

import argparse
import logging
import os
import sys

DEMO_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "configs", "demo", "faster_rcnn_shapes.yaml"
)
logger = logging.getLogger("resnet_det.predict")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config-file",
        default="",
        metavar="FILE",
        help="detector config (default: the demo, configs/demo/faster_rcnn_shapes.yaml)",
    )
    p.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="image files, glob patterns, folders; video files or webcam indices (OpenCV)",
    )
    p.add_argument(
        "--output",
        help="folder for the pictures and predictions.json, or a picture "
        "file for a single input (default: nothing written, a summary only)",
    )
    p.add_argument(
        "--confidence-threshold",
        type=float,
        default=0.5,
        help="minimum score of the detections kept, drawn and written (default 0.5; "
        "use 0.05 for a predictions.json to evaluate)",
    )
    p.add_argument(
        "--dataset",
        help="registered dataset the inputs belong to: predictions.json "
        "then uses its image and category ids (tools/evaluate.py --dataset NAME)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default MODEL.DEVICE)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="float16 autocast (GPU only)")
    precision.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU or CPU)")
    p.add_argument("--channels-last", action="store_true", help="channels-last convolution weights")
    p.add_argument(
        "--compile",
        nargs="?",
        const="inductor",
        default=None,
        metavar="BACKEND",
        help="torch.compile the backbone (default backend inductor)",
    )
    p.add_argument(
        "--fuse",
        action="store_true",
        help="fold frozen / eval-mode BatchNorms into their convolutions",
    )
    p.add_argument("--max-frames", type=int, help="stop each video or webcam after N frames")
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
    if args.batch_size < 1:
        p.error(f"--batch-size {args.batch_size} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
    import resnet_det.data  # noqa: F401  registers the datasets (class names, --dataset)
    from resnet_det.config import get_cfg
    from resnet_det.predictor import Predictor, expand_inputs
    from resnet_det.predictor.run import predict_files
    from resnet_det.utils.errors import MissingFileError

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file or DEMO_CONFIG)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = args.confidence_threshold
    if not args.config_file and not cfg.MODEL.WEIGHTS:
        demo = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
        if not os.path.isfile(demo):
            raise MissingFileError(
                f"the demo's trained model {demo} does not exist: make it with  python3 "
                "tools/train_net.py  (the demo, about 10 minutes on a 2-core CPU), or give "
                "--config-file and --opts MODEL.WEIGHTS of a trained detector"
            )
    files, problems = expand_inputs(args.input)
    for message in problems:
        print(f"predict.py: {message}", file=sys.stderr)
    precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    predictor = Predictor(
        cfg,
        device=args.device,
        precision=precision,
        channels_last=args.channels_last,
        compile=args.compile or False,
        fuse=args.fuse,
    )
    summary = predict_files(
        predictor,
        files,
        args.output,
        batch_size=args.batch_size,
        dataset=args.dataset,
        max_frames=args.max_frames,
        on_skip=lambda m: print(f"predict.py: {m}", file=sys.stderr),
    )
    print(summary.describe())
    if summary.pictures:
        where = os.path.dirname(summary.pictures[0]) or "."
        print(f"{len(summary.pictures)} pictures in {where}")
    if summary.predictions:
        print(f"Predictions (COCO results format): {summary.predictions}")
    return 1 if (summary.skipped or problems) else 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("predict.py", main))
