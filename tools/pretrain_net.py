#!/usr/bin/env python
"""ImageNet / CIFAR-10 / digits classification pretraining (the paper's Sec. 3.4 and 4.2).

    python tools/pretrain_net.py                                    # the embedded digits default
    python tools/pretrain_net.py --config-file configs/imagenet/resnet50.yaml --num-gpus 8
    python tools/pretrain_net.py --config-file configs/cifar10/resnet110.yaml --resume
    python tools/pretrain_net.py --config-file configs/imagenet/resnet50.yaml --eval-only \\
        MODEL.WEIGHTS output/imagenet_resnet50/model_final.pth \\
        TEST.CLS_MODES "['10crop','multiscale']"

Then tools/convert_weights.py turns model_final.pth into detection backbone weights.
"""

import logging
import os

from resnet_det.checkpoint import Checkpointer
from resnet_det.config import get_cfg
from resnet_det.engine import default_argument_parser, default_setup, launch
from resnet_det.engine.defaults import auto_scale_workers
from resnet_det.engine.launch import check_batch_split
from resnet_det.engine.pretrain import ClassificationTrainer
from resnet_det.utils import comm

DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "configs", "digits", "resnet20.yaml"
)
logger = logging.getLogger("resnet_det.pretrain_net")


def load_cfg(args):
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file or DEFAULT_CONFIG)
    cfg.merge_from_list(args.opts or [])
    return cfg


def setup(args):
    cfg = auto_scale_workers(load_cfg(args), comm.get_world_size())
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        # The checks a training run makes at start-up (test sets, class count, weights).
        description = ClassificationTrainer.preflight(cfg, train=False, resume=args.resume)
        model = ClassificationTrainer.build_model(cfg, description)
        Checkpointer(model, cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = ClassificationTrainer.test(cfg, model)
    else:
        trainer = ClassificationTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()
    print_results(results)
    return results


def print_results(results):
    if results and comm.is_main_process():
        for key, res in results.items():
            print(
                f"{key}: top-1 error {res['top1_err']:.2f}%  top-5 error {res['top5_err']:.2f}%  "
                f"(top-1 accuracy {res['top1']:.2f}%, {int(res['num_images'])} images)"
            )


def cli(argv=None):
    args = default_argument_parser().parse_args(argv)
    print("Command Line Args:", args)
    cfg = load_cfg(args)
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

    run_tool("pretrain_net.py", cli)
