#!/usr/bin/env python
"""Train and evaluate Faster R-CNN with a ResNet / VGG backbone (the paper's Sec. 4.3).

    python tools/train_net.py     # the embedded demo: configs/demo/faster_rcnn_shapes.yaml
    python tools/train_net.py --config-file configs/faster_rcnn_R101.yaml --num-gpus 8 \\
        MODEL.WEIGHTS /path/to/R-101.pkl
    python tools/train_net.py --config-file configs/voc/faster_rcnn_R101.yaml --resume
    python tools/train_net.py --config-file configs/faster_rcnn_R101.yaml --eval-only \\
        MODEL.WEIGHTS output/coco_R101_C4/model_final.pth
    python tools/train_net.py --engine detectron2 --config-file ...   # detectron2 + our backbone

ENGINE "builtin" (default) runs resnet_det's torchvision-based Faster R-CNN; "detectron2"
hands the same config to the detectron2 plugin (resnet_det.d2.train).
"""

import logging
import os
import sys

from resnet_det.checkpoint import Checkpointer
from resnet_det.config import get_cfg
from resnet_det.engine import default_argument_parser, default_setup, launch
from resnet_det.engine.curves import plot_run_curves
from resnet_det.engine.defaults import auto_scale_workers
from resnet_det.engine.detection import DetectionTrainer, visualize_detections
from resnet_det.engine.launch import check_batch_split
from resnet_det.engine.run_summary import format_run_summary
from resnet_det.utils import comm

DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "configs", "demo", "faster_rcnn_shapes.yaml"
)
INSTALL_D2 = (
    "ENGINE detectron2 needs detectron2, which publishes no package for current PyTorch: "
    "build it from source with  pip install --no-build-isolation "
    "'git+https://github.com/facebookresearch/detectron2.git'  (see README.md), or run "
    "the built-in engine with --engine builtin"
)
logger = logging.getLogger("resnet_det.train_net")


def load_cfg(args):
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file or DEFAULT_CONFIG)
    cfg.merge_from_list(args.opts or [])
    if args.engine:
        cfg.ENGINE = args.engine  # the flag wins; saved in OUTPUT_DIR/config.yaml
    return cfg


def main(args):
    cfg = auto_scale_workers(load_cfg(args), comm.get_world_size())
    cfg.freeze()
    default_setup(cfg, args)
    logger.info("Engine: builtin (resnet_det Faster R-CNN on torchvision.models.detection)")
    if args.eval_only:
        # The checks a training run makes at start-up (test sets, class count, weights).
        description = DetectionTrainer.preflight(cfg, train=False, resume=args.resume)
        model = DetectionTrainer.build_model(cfg, description)
        Checkpointer(
            model, cfg.OUTPUT_DIR, weights_loader=DetectionTrainer.build_weights_loader(cfg)
        ).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = DetectionTrainer.test(cfg, model)
    else:
        trainer = DetectionTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()
        model = trainer.model
    if comm.is_main_process():
        if results and "bbox" in results:
            print(
                "bbox: "
                + "  ".join(
                    f"{k} {results['bbox'][k]:.1f}"
                    for k in ("AP", "AP50", "AP75")
                    if k in results["bbox"]
                )
            )
        pictures = {}
        if cfg.DATASETS.TEST:
            pictures["detections"] = visualize_detections(cfg, model)
        if not args.eval_only:
            pictures["training curves"] = plot_run_curves(cfg.OUTPUT_DIR)
        print(
            format_run_summary(cfg.OUTPUT_DIR, pictures=pictures, eval_only=args.eval_only),
            flush=True,
        )
    return results


def run_detectron2(args):
    try:
        from resnet_det.d2 import train as d2_train
    except ImportError as e:
        sys.exit(f"{INSTALL_D2}\n(import failed: {e})")
    return d2_train.main(args)


def cli(argv=None):
    parser = default_argument_parser()
    parser.add_argument(
        "--engine",
        choices=["builtin", "detectron2"],
        default=None,
        help="override the config's ENGINE (default: the config's, 'builtin')",
    )
    args = parser.parse_args(argv)
    args.config_file = args.config_file or DEFAULT_CONFIG
    # --engine detectron2 skips our reading of the file: a detectron2 run's OUTPUT_DIR/config.yaml
    # holds detectron2-only keys, which only the plugin's config knows.
    cfg = None if args.engine == "detectron2" else load_cfg(args)
    engine = args.engine or cfg.ENGINE
    print(f"Engine: {engine}  (config {args.config_file})", flush=True)
    if engine == "detectron2":
        return run_detectron2(args)
    # Before any process starts: the batch splits over the processes of srun, torchrun or
    # --num-gpus (the message names the variable the world size comes from).
    check_batch_split(
        ims_per_batch=cfg.SOLVER.IMS_PER_BATCH,
        reference_world_size=cfg.SOLVER.REFERENCE_WORLD_SIZE,
        num_gpus_per_machine=args.num_gpus,
        num_machines=args.num_machines,
    )
    # launch() runs main in this process for one process, joins torchrun's or srun's group
    # when started by them, and spawns otherwise: always go through it.
    return launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("train_net.py", cli)
