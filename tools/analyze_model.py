#!/usr/bin/env python
"""Parameters, FLOPs (multiply-adds, as the paper counts them) and activations.

python tools/analyze_model.py --model resnet50
python tools/analyze_model.py --model resnet50 --input-size 800 --override stride_in_1x1=False
python tools/analyze_model.py --all          # the whole family, 224x224 (32x32 for CIFAR)
python tools/analyze_model.py --config-file configs/faster_rcnn_R101.yaml [KEY VALUE ...]
"""

import argparse
import ast
import sys

from resnet_det.config import get_cfg
from resnet_det.modeling.statistics import (
    config_statistics,
    family_table,
    format_table,
    input_size_for,
    model_statistics,
)


def _parse_override(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--override wants KEY=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a bare string such as norm=GN
    return key, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a name from resnet_det.list_models()")
    what.add_argument("--all", action="store_true", help="table of every model")
    what.add_argument(
        "--config-file", help="a detection or pretraining YAML: the network it builds"
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="input side (default 224, or 32 for CIFAR nets)",
    )
    parser.add_argument(
        "--override",
        type=_parse_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="create_model override, e.g. shortcut=C",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="with --config-file: KEY VALUE config overrides"
    )
    args = parser.parse_args(argv)
    overrides = dict(args.override)

    if args.opts and not args.config_file:
        parser.error("KEY VALUE overrides go with --config-file")
    if args.config_file:
        return _from_config(args.config_file, args.opts)
    if args.all:
        print(format_table(family_table(**overrides)))
        return 0
    from resnet_det import create_model

    model = create_model(args.model, **overrides)  # a wrong name or override: run_tool's one line
    size = args.input_size or input_size_for(args.model)
    s = model_statistics(model, size)
    c, h, w = s["input_size"]
    print(f"model: {args.model}  input: {c}x{h}x{w}")
    print(f"params: {s['params']:,} ({s['params'] / 1e6:.2f}M)")
    print(f"GFLOPs (conv+fc multiply-adds, the paper's count): {s['conv_fc_flops'] / 1e9:.3f}")
    print(f"GFLOPs (fvcore total, incl. norm/pool): {s['flops'] / 1e9:.3f}")
    print(f"activations: {s['activations'] / 1e6:.2f}M")
    return 0


def _from_config(path, opts) -> int:
    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.merge_from_list(opts)
    s = config_statistics(cfg)
    c, h, w = s["input_size"]
    print(f"config: {path}  measured: {s['what']}  input: {c}x{h}x{w}")
    print(f"params of the whole model: {s['model_params']:,} ({s['model_params'] / 1e6:.2f}M)")
    print(f"params measured: {s['params']:,} ({s['params'] / 1e6:.2f}M)")
    print(f"GFLOPs (conv+fc multiply-adds, the paper's count): {s['conv_fc_flops'] / 1e9:.3f}")
    print(f"activations: {s['activations'] / 1e6:.2f}M")
    return 0


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    sys.exit(run_tool("analyze_model.py", main))
