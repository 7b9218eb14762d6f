#!/usr/bin/env python
"""Convert ResNet / VGG weights between layouts.

    python tools/convert_weights.py R-50.pkl r50_torchvision.pth --to torchvision
    python tools/convert_weights.py resnet50-0676ba61.pth R-50-tv.pkl --to detectron2

The input layout (torchvision, detectron2, MSRA/Caffe2 .pkl, resnet_det) is detected. Output:
.pkl writes {"model": {name: numpy array}, "__author__": "resnet_det", "matching_heuristics":
True} (detectron2's MODEL.WEIGHTS format); .pth writes a torch file. Written atomically.
With --check-model NAME the converted weights are loaded (strictly) into that model first.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from resnet_det.checkpoint import (convert_state_dict, load_weights, read_checkpoint,  # noqa: E402
                                   save_weights)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="weights file (.pth/.pt/.pkl)")
    parser.add_argument("output", help="output file (.pkl or .pth)")
    parser.add_argument("--to", required=True, choices=("resnet_det", "detectron2", "torchvision"))
    parser.add_argument("--check-model", metavar="NAME", default=None,
                        help="load the weights into resnet_det.create_model(NAME) (strict) first")
    parser.add_argument("--stride-in-1x1", default=None, choices=("true", "false"),
                        help="stride_in_1x1 for --check-model (torchvision weights need false)")
    args = parser.parse_args(argv)

    checkpoint = read_checkpoint(args.input)
    if args.check_model:
        from resnet_det import create_model

        kwargs = {} if args.stride_in_1x1 is None else {"stride_in_1x1": args.stride_in_1x1 == "true"}
        result = load_weights(create_model(args.check_model, **kwargs), checkpoint, strict=True)
        print(f"checked: loads into {args.check_model} (source layout {result.layout})")
    sd = convert_state_dict(checkpoint, to=args.to)
    save_weights(sd, args.output, layout=args.to)
    print(f"wrote {len(sd)} entries in {args.to} layout to {args.output}")
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("convert_weights.py", main))
