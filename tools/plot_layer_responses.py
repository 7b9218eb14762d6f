#!/usr/bin/env python
"""Layer responses as in the paper's Fig. 7: the std of each 3x3 layer's output (after BN,
before the addition / ReLU) on test images, per layer in network order and sorted.

    python tools/plot_layer_responses.py \\
        --run plain-56 configs/digits/plain56.yaml output/digits_plain56/model_final.pth \\
        --run ResNet-56 configs/digits/resnet56.yaml output/digits_resnet56/model_final.pth \\
        --output docs/figures/digits_layer_responses.png
"""

import argparse
import sys

from resnet_det.checkpoint import load_weights
from resnet_det.config import get_cfg
from resnet_det.data.classification import build_classification_test_loader
from resnet_det.modeling import build_classifier
from resnet_det.modeling.layer_responses import layer_response_stds, plot_layer_responses


def stds_of(config_file, weights, dataset, num_images, opts):
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(opts)
    model = build_classifier(cfg)
    load_weights(model, weights, strict=True)
    name = dataset or cfg.DATASETS.TEST[0]
    loader = build_classification_test_loader(cfg, name, "center")
    _, stds = layer_response_stds(model.net, (b["image"] for b in loader), max_images=num_images)
    return stds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run",
        nargs=3,
        action="append",
        required=True,
        metavar=("LABEL", "CONFIG", "WEIGHTS"),
        help="a network: label, its config file and a checkpoint (repeat for each)",
    )
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument(
        "--dataset", default="", help="registered dataset (default: the config's first TEST set)"
    )
    parser.add_argument(
        "--num-images", type=int, default=1000, help="images to average over (0: all)"
    )
    parser.add_argument("--title", default="")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides for every run, KEY VALUE"
    )
    args = parser.parse_args(argv)
    results = [
        (label, stds_of(cfg, w, args.dataset, args.num_images, args.opts or []))
        for label, cfg, w in args.run
    ]
    for label, stds in results:
        print(f"{label}: {len(stds)} layers, mean std {stds.mean():.3f}")
    print(f"wrote {plot_layer_responses(results, args.output, title=args.title)}")
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("plot_layer_responses.py", main))
