#!/usr/bin/env python
"""Score a detection results file against a registered dataset (COCO or VOC metric).

    python tools/evaluate.py --dataset voc_2007_test --results dets.json --output out/

The results file is COCO's results format, a JSON list of
{"image_id", "category_id", "bbox": [x, y, w, h], "score"} with the dataset's own ids: COCO
image/category ids for COCO datasets; for VOC datasets the image's file stem ("000005") and the
1-based class index (aeroplane=1 .. tvmonitor=20). Entries with a "segmentation" (a mask as
COCO RLE, {"size": [height, width], "counts": ...}, as Mask R-CNN runs and tools/predict.py
write them) are scored for mask AP ("segm") too on COCO datasets; --tasks segm computes mask
AP alone. Prints the metrics and, with --output, writes them (bbox/AP, bbox/AP50, ...,
segm/AP, ...) to OUTPUT/metrics.json. Datasets are found under $RESNET_DET_DATASETS (default
./datasets). docs/results_files.md has the format.
"""

import argparse
import json
import logging
import os

from resnet_det.evaluation import (
    evaluate_results_file,
    flatten_results,
    format_metrics_table,
    print_csv_format,
)
from resnet_det.utils.cli import USER_ERRORS, format_user_error


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help="registered dataset name, e.g. coco_2017_val")
    p.add_argument("--results", required=True, help="COCO-format results JSON file")
    p.add_argument("--output", help="folder for metrics.json (and coco_instances_results.json)")
    p.add_argument(
        "--voc-07-metric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="VOC datasets: 11-point AP (VOC2007) or area under the curve; default by the "
        "dataset's year (2007: 11-point)",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        choices=("bbox", "segm"),
        help="COCO datasets: the metrics to compute, e.g. --tasks segm for mask AP alone; "
        "default: every one the results support (box AP, and mask AP when they have masks)",
    )
    p.add_argument(
        "--errors",
        action="store_true",
        help="COCO datasets: also the error analysis: TIDE's dAP per error type (bbox/dAP/cls, "
        "...) in metrics.json, cocoapi's analyze curves, pictures and report.html in --output "
        "(docs/error_analysis.md)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")

    import resnet_det.data  # noqa: F401  registers the builtin datasets

    try:
        results = evaluate_results_file(
            args.dataset,
            args.results,
            output_dir=args.output,
            use_07_metric=args.voc_07_metric,
            error_analysis=args.errors,
            tasks=args.tasks,
        )
    except USER_ERRORS as e:  # a bad results file, an unknown dataset...: one line, status 1
        p.exit(1, format_user_error(p.prog, e) + "\n")
    print(format_metrics_table(results))
    print_csv_format(results)
    if args.output:
        print(f"Metrics written to {os.path.join(args.output, 'metrics.json')}")
        if args.errors:
            print(f"Error analysis: {os.path.join(args.output, 'report.html')}")
    else:
        print(json.dumps(flatten_results(results)))
    return results


if __name__ == "__main__":
    main()
