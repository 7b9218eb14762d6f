#!/usr/bin/env python
"""Training throughput of our classifiers against torchvision's, as ratios from one run.

    python tools/benchmark.py --models resnet50 resnet101 --batch 64 --amp bf16 --channels-last

Prints images/s of ours and of torchvision's same network and the ratio ours/peer; writes
the rows as JSON with --output. Use a GPU for meaningful numbers; on CPU use a small batch.
"""
import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import resnet_det  # noqa: E402
from resnet_det.analysis.benchmark import compare_classifier_throughput  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet50"],
                   help="names present both in resnet_det.list_models() and torchvision.models")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output", help="write the rows as JSON here")
    args = p.parse_args(argv)

    for name in args.models:
        if not hasattr(torchvision.models, name):
            p.error(f"--models: torchvision has no model named {name!r} to compare against")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    # torchvision's layout puts the stride in the 3x3 conv ("v1.5"); compare like with like.
    ours = {n: (lambda n=n: resnet_det.create_model(n, stride_in_1x1=False) if "vgg" not in n
                else resnet_det.create_model(n)) for n in args.models}
    peers = {n: (lambda n=n: getattr(torchvision.models, n)()) for n in args.models}
    rows = compare_classifier_throughput(
        ours, peers, batch_size=args.batch, image_size=args.size, num_classes=1000,
        device=torch.device(args.device), steps=args.steps, warmup=5, amp_dtype=amp,
        channels_last=args.channels_last,
    )
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"device: {dev}  batch {args.batch}  size {args.size}  amp {args.amp}  "
          f"channels_last {args.channels_last}")
    print(f"{'model':<20}{'ours img/s':>12}{'torchvision img/s':>20}{'ratio':>8}")
    for r in rows:
        print(f"{r['model']:<20}{r['ours_img_s']:>12.1f}{r['peer_img_s']:>20.1f}{r['ratio']:>8.3f}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"device": dev, "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("benchmark.py", main)
