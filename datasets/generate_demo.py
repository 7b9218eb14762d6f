#!/usr/bin/env python3
"""Generate the demo shapes datasets (COCO json and VOC xml layouts).

The registry generates them on first use (shapes_train, shapes_val, shapes_voc_train,
shapes_voc_val); this script does it ahead of time, or writes a custom-sized copy elsewhere.

    python datasets/generate_demo.py                      # into $RESNET_DET_DATASETS
    python datasets/generate_demo.py --root /tmp/demo --num-train 1000 --seed 1
"""

import argparse
import logging
import os

from resnet_det.data.datasets.shapes import (
    DEFAULT_NUM_TRAIN,
    DEFAULT_NUM_VAL,
    DEFAULT_SEED,
    ensure_shapes_datasets,
)
from resnet_det.data.io import datasets_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument(
        "--root", default=None, help="output folder (default: $RESNET_DET_DATASETS or ./datasets)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--num-train", type=int, default=DEFAULT_NUM_TRAIN)
    parser.add_argument("--num-val", type=int, default=DEFAULT_NUM_VAL)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = args.root or datasets_root()
    folders = {"coco": os.path.join(root, "shapes"), "voc": os.path.join(root, "shapes_voc")}
    ensure_shapes_datasets(folders, seed=args.seed, num_train=args.num_train, num_val=args.num_val)
    for layout, path in folders.items():
        print(f"{layout}: {path}")


if __name__ == "__main__":
    main()
