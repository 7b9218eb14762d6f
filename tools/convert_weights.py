#!/usr/bin/env python
"""Convert ResNet / VGG weights between layouts.

    python tools/convert_weights.py R-50.pkl r50_torchvision.pth --to torchvision
    python tools/convert_weights.py resnet50-0676ba61.pth R-50-tv.pkl --to detectron2

The input layout (torchvision, detectron2, MSRA/Caffe2 .pkl, resnet_det) is detected. Output:
.pkl writes {"model": {name: numpy array}, "__author__": "resnet_det", "matching_heuristics":
True} (detectron2's MODEL.WEIGHTS format); .pth writes a torch file. Written atomically.
With --check-model NAME the converted weights are loaded (strictly) into that model first.

The weights' input contract (channel order, pixel mean and std they were trained with) is
carried over: recorded by our pretraining, or known from the layout (MSRA Caffe2 blobs: BGR,
std 1; torchvision: RGB, ImageNet std). The output records it (a torchvision-layout .pth has no
place for it and is only written for torchvision's own contract). For weights without one,
give it:  --input-format RGB --pixel-mean 123.675 116.28 103.53 --pixel-std 58.395 57.12 57.375
"""

import argparse
import sys

from resnet_det.checkpoint import (
    InputContract,
    contract_of,
    convert_weights_file,
    load_weights,
    read_checkpoint,
    unwrap_checkpoint,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help="weights file (.pth/.pt/.pkl)")
    parser.add_argument("output", help="output file (.pkl or .pth)")
    parser.add_argument("--to", required=True, choices=("resnet_det", "detectron2", "torchvision"))
    parser.add_argument(
        "--check-model",
        metavar="NAME",
        default=None,
        help="load the weights into resnet_det.create_model(NAME) (strict) first",
    )
    parser.add_argument(
        "--stride-in-1x1",
        default=None,
        choices=("true", "false"),
        help="stride_in_1x1 for --check-model (torchvision weights need false)",
    )
    parser.add_argument(
        "--input-format",
        choices=("RGB", "BGR"),
        help="record this input contract (with --pixel-mean and --pixel-std) "
        "instead of the input file's",
    )
    parser.add_argument("--pixel-mean", type=float, nargs=3, metavar="M")
    parser.add_argument("--pixel-std", type=float, nargs=3, metavar="S")
    args = parser.parse_args(argv)
    given = [args.input_format, args.pixel_mean, args.pixel_std]
    if any(v is not None for v in given) and not all(v is not None for v in given):
        parser.error("--input-format, --pixel-mean and --pixel-std go together")

    checkpoint = read_checkpoint(args.input)
    if args.check_model:
        from resnet_det import create_model

        kwargs = (
            {} if args.stride_in_1x1 is None else {"stride_in_1x1": args.stride_in_1x1 == "true"}
        )
        result = load_weights(create_model(args.check_model, **kwargs), checkpoint, strict=True)
        print(f"checked: loads into {args.check_model} (source layout {result.layout})")
    if args.input_format:
        try:
            contract = InputContract(
                args.input_format,
                args.pixel_mean,
                args.pixel_std,
                origin="given to tools/convert_weights.py",
            )
        except ValueError as e:
            parser.error(str(e))
        how = "given on the command line"
    else:
        contract, how = contract_of(*unwrap_checkpoint(checkpoint), repr(args.input))
    sd = convert_weights_file(checkpoint, args.output, to=args.to, input_contract=contract)
    print(f"wrote {len(sd)} entries in {args.to} layout to {args.output}")
    if contract is not None:
        print(f"input contract: {contract} ({how})")
    else:
        print(
            f"input contract unknown ({how}); record it with --input-format, --pixel-mean and "
            "--pixel-std"
        )
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("convert_weights.py", main))
