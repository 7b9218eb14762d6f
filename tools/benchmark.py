#!/usr/bin/env python
"""Speed of our models, loaders and evaluation against peers, as ratios from one process.

    python tools/benchmark.py --rows classifier detector loaders coco coco_segm \\
        --device cpu --threads 1
    python tools/benchmark.py --rows c4 ...   # needs detectron2 (skipped with a note otherwise)
    python tools/benchmark.py --rows coco_annotations --detectron2-python ENV/bin/python
    python tools/benchmark.py --rows gpu_resnet50 --device cuda --amp bf16 --channels-last \\
        --compile --batch 256

Every row: our time, the peer's time measured in the same process on the same inputs
(interleaved, median of --repetitions after --warmup calls; CUDA synchronised before the clock
is read) and the ratio ours / peer (below 1: we are faster). Rows (docs/benchmarks.md):
classifier (training step vs torchvision's same network), detector (R50-FPN training iteration
and inference vs torchvision's Faster R-CNN), c4 (R50-C4 / R101-C4 vs detectron2), loaders
(classification and detection loaders, one worker, vs torchvision's reading), coco (COCO
evaluation vs pycocotools), coco_segm (mask AP evaluation vs pycocotools), coco_errors (the
error analysis vs the plain COCO evaluation), coco_e2e and coco_segm_e2e (the whole
tools/evaluate.py process vs a pycocotools script, boxes and masks), coco_annotations (reading a
COCO-2017-train-sized json vs detectron2's load_coco_json: time, peak memory, the cached load;
4 ranks' summed memory with and without the shared cache), gpu_resnet50 (ResNet-50 at scale
with TFLOP/s), gpu_pipeline (JPEG files decoded on the device vs the model-only step),
gpu_pretrain (ResNet-50 fed by our pretraining loader with INPUT.DECODE_DEVICE vs the
model-only step), gpu_r101_c4 (R101-C4 with AMP, peak memory);
tools/gpu_check.sh runs the GPU set.
Prints a Markdown table; --output writes the rows as JSON.
"""

import argparse
import json
import os
import tempfile

import torch

from benchmarks import harness as B
from benchmarks.annotations import COCO_TRAIN_ANNOTATIONS, COCO_TRAIN_IMAGES
from benchmarks.rows import ROWS, run_rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", nargs="+", choices=ROWS, default=["classifier"])
    p.add_argument(
        "--models", nargs="+", default=["resnet50"], help="classifier row: network names"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", choices=sorted(B.AMP_DTYPES), default="none")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile (a detector's backbone)")
    p.add_argument(
        "--batch", type=int, default=2, help="images per step (classifier, detector, loaders)"
    )
    p.add_argument("--size", type=int, default=224, help="classifier side / detector shorter side")
    p.add_argument("--det-batch", type=int, help="detector rows' images per step (default --batch)")
    p.add_argument("--det-size", type=int, help="detector rows' shorter side (default --size)")
    p.add_argument("--roi-batch", type=int, default=512, help="RoIs sampled per image (both sides)")
    p.add_argument(
        "--test-proposals", type=int, help="C4 inference rows: proposals per image (default 1000)"
    )
    p.add_argument(
        "--clock",
        choices=B.CLOCKS,
        default="wall",
        help="wall, or process: the process's CPU seconds (CPU only; for a shared machine)",
    )
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--coco-images", type=int, default=2000)
    p.add_argument("--coco-dets", type=int, default=100)
    p.add_argument("--coco-repetitions", type=int, default=3)
    p.add_argument("--loader-batches", type=int, default=4)
    p.add_argument(
        "--annotation-images", type=int, default=COCO_TRAIN_IMAGES, help="coco_annotations: images"
    )
    p.add_argument(
        "--annotation-count",
        type=int,
        default=COCO_TRAIN_ANNOTATIONS,
        help="coco_annotations: annotations",
    )
    p.add_argument(
        "--detectron2-python",
        help="coco_annotations: the python of an environment with detectron2, which runs "
        "detectron2's loads (default: this python)",
    )
    p.add_argument(
        "--gpu-workers", type=int, default=8, help="JPEG pipeline / pretraining loader workers"
    )
    p.add_argument("--gpu-images", type=int, default=512, help="JPEGs generated for those two rows")
    p.add_argument("--work-dir", help="where generated files go (default: a temporary folder)")
    p.add_argument("--output", help="write the rows as JSON here")
    return p.parse_args(argv)


def run(args, work_dir):
    opts = B.BenchOptions(
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        batch=args.batch,
        size=args.size,
        repetitions=args.repetitions,
        warmup=args.warmup,
        clock=args.clock,
    )
    det = B.BenchOptions(
        **{**vars(opts), "batch": args.det_batch or args.batch, "size": args.det_size or args.size}
    )
    return run_rows(
        args.rows,
        opts,
        det,
        work_dir=work_dir,
        models=args.models,
        roi_batch=args.roi_batch,
        coco_images=args.coco_images,
        coco_dets=args.coco_dets,
        coco_repetitions=args.coco_repetitions,
        loader_batches=args.loader_batches,
        gpu_workers=args.gpu_workers,
        gpu_images=args.gpu_images,
        test_proposals=args.test_proposals,
        annotation_images=args.annotation_images,
        annotation_count=args.annotation_count,
        detectron2_python=args.detectron2_python,
    )


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    start = B.machine_header(args.device)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        rows = run(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="resnet_det_bench_") as work_dir:
            rows = run(args, work_dir)
    header = dict(
        B.machine_header(args.device), load_average_at_start=start["load_average"], args=vars(args)
    )
    print(
        f"device: {header['device']} ({header['cpus']} CPUs)  threads {header['threads']}  torch "
        f"{header['torch']}  amp {args.amp}  channels_last {args.channels_last}  compile "
        f"{args.compile}  "
        f"clock {args.clock}  load average at start {start['load_average']}, at end "
        f"{header['load_average']}"
    )
    print(B.format_table(rows))
    for r in rows:
        if r.extra:
            print(
                f"  {r.row}: "
                + ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in r.extra.items()
                )
            )
    if args.output:
        from resnet_det.utils.file_io import atomic_write_text

        atomic_write_text(args.output, json.dumps(B.rows_to_json(rows, **header), indent=1))
    return rows


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("benchmark.py", main)
