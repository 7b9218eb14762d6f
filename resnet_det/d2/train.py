"""Run a resnet_det config under detectron2's DefaultTrainer (ENGINE "detectron2").

tools/train_net.py calls ``main(args)`` with its parsed arguments (detectron2's flags:
config_file, opts, resume, eval_only, num_gpus, num_machines, machine_rank, dist_url, and
optionally engine); ``main`` launches the processes with detectron2's ``launch`` and returns
the evaluation results of the main process ({"bbox": {"AP": ..., "AP50": ..., ...}}, and
"segm" beside it for Mask R-CNN, MODEL.MASK_ON).

What the run gets: our backbones and heads (resnet_det.d2), our datasets registered in
detectron2's catalogs (the same files the built-in engine reads, under RESNET_DET_DATASETS),
detectron2's COCO / PASCAL VOC evaluators, and in OUTPUT_DIR: config.yaml (with ENGINE
detectron2), log.txt, metrics.json, TensorBoard events, model_*.pth, last_checkpoint, and at the
end of a training run training_curves.png and the closing summary (``finish_run``).
"""

import argparse
import logging
import os
import shlex
from collections import OrderedDict
from typing import Iterable, List, Optional, Tuple

import detectron2
import torch
from detectron2.config import CfgNode as D2CfgNode
from detectron2.config import get_cfg as d2_get_cfg
from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data import MetadataCatalog as D2MetadataCatalog
from detectron2.data import transforms as T
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.data.detection_utils import build_augmentation
from detectron2.engine import DefaultTrainer, hooks, launch
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from ..checkpoint import resolve_weights_contract
from ..config import ConfigError
from ..data import DatasetCatalog, MetadataCatalog  # with the built-in dataset names registered
from ..engine.curves import plot_run_curves
from ..engine.run_summary import format_run_summary
from ..utils.errors import UserError
from ..utils.file_io import atomic_write_text
from ..utils.seeding import resolve_seed
from .checkpoint import SafeDetectionCheckpointer
from .config import add_resnet_det_config, resolve_for_detectron2

__all__ = [
    "main",
    "run",
    "setup_cfg",
    "setup",
    "register_datasets",
    "Trainer",
    "engine_banner",
    "evaluation_tasks",
    "mask_format_for",
    "finish_run",
]

logger = logging.getLogger("resnet_det.d2")


def engine_banner() -> str:
    """The start-up line naming the engine (printed and logged)."""
    return (
        f"Engine: detectron2 {detectron2.__version__} ({os.path.dirname(detectron2.__file__)}) "
        "with resnet_det's backbones and heads (resnet_det.d2)"
    )


# ---------------------------------------------------------------- config
def setup_cfg(config_file: str, opts: Optional[List[str]] = None) -> D2CfgNode:
    """detectron2's config with our keys, ``config_file`` and ``opts`` merged, resolved for
    detectron2 (``resolve_for_detectron2``) and frozen. YAML is read safely: a config file
    never runs python code."""
    cfg = d2_get_cfg()
    add_resnet_det_config(cfg, resnet_det_defaults=True)  # the YAML means what it means for builtin
    if config_file:
        cfg.merge_from_file(config_file, allow_unsafe=False)
    cfg.merge_from_list(list(opts or []))
    for note in resolve_for_detectron2(cfg):
        logger.info("config: %s", note)
    cfg.freeze()
    return cfg


# ---------------------------------------------------------------- datasets
def _resolved_meta(name: str) -> dict:
    if name not in DatasetCatalog:
        return {}
    return MetadataCatalog.get(name).as_dict()


def register_datasets(names: Iterable[str]) -> None:
    """Register our datasets ``names`` in detectron2's DatasetCatalog / MetadataCatalog.

    COCO-format sets (coco_2017_*, the demo shapes_*) through detectron2's
    register_coco_instances on the same json file, VOC sets through register_pascal_voc on the
    same folder, so that both engines read the same files (RESNET_DET_DATASETS; the demo data
    is generated on first use). A name detectron2 already has for other files (its built-in
    coco_2017_train under DETECTRON2_DATASETS) is re-registered to ours; a name only detectron2
    knows (a user's own registration) is left alone; a name neither knows raises.
    """
    for name in dict.fromkeys(names):
        meta = _resolved_meta(name)
        if not meta:
            if name in D2DatasetCatalog.list():
                continue
            raise ConfigError(
                f"config DATASETS: dataset {name!r} is registered neither in "
                "resnet_det.data.DatasetCatalog nor in detectron2's"
            )
        kind = meta.get("evaluator_type")
        if kind == "coco":
            new = dict(json_file=meta["json_file"], image_root=meta["image_root"])
        elif kind == "voc":
            new = dict(dirname=meta["dirname"], split=meta["split"], year=meta["year"])
        else:
            raise ConfigError(
                f"config DATASETS: dataset {name!r} has evaluator_type {kind!r}; the "
                "detectron2 engine runs COCO- and VOC-format detection sets"
            )
        if name in D2DatasetCatalog.list():
            old = D2MetadataCatalog.get(name)
            if all(getattr(old, k, None) == v for k, v in new.items()):
                continue
            logger.info(
                "dataset %s: using resnet_det's files %s instead of detectron2's "
                "built-in registration",
                name,
                new,
            )
            D2DatasetCatalog.remove(name)
            D2MetadataCatalog.remove(name)
        if kind == "coco":
            register_coco_instances(name, {}, new["json_file"], new["image_root"])
        else:
            register_pascal_voc(
                name,
                new["dirname"],
                new["split"],
                new["year"],
                class_names=list(meta["thing_classes"]),
            )
            D2MetadataCatalog.get(name).evaluator_type = "pascal_voc"


# ---------------------------------------------------------------- trainer
class Trainer(DefaultTrainer):
    """detectron2's DefaultTrainer with our evaluators, data options and file rules:
    INPUT.RANDOM_FLIP_PROB, TEST.IMS_PER_BATCH, LOG_PERIOD and SOLVER.AMP.DTYPE are applied,
    checkpoints are read safely and written atomically (SafeDetectionCheckpointer)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.SOLVER.AMP.ENABLED:
            dtype = cfg.SOLVER.AMP.DTYPE
            if dtype not in ("float16", "bfloat16"):
                raise ConfigError(f"config SOLVER.AMP.DTYPE={dtype!r}: choose float16 or bfloat16")
            self._trainer.precision = getattr(torch, dtype)

    def build_hooks(self):
        # DefaultTrainer made self.checkpointer just before; the hooks must use the safe one.
        old = self.checkpointer
        self.checkpointer = SafeDetectionCheckpointer(
            old.model, old.save_dir, **old.checkpointables
        )
        ret = super().build_hooks()
        for hook in ret:
            if isinstance(hook, hooks.PeriodicWriter):
                hook._period = self.cfg.LOG_PERIOD  # detectron2 fixes 20; ours is a key
        return ret

    @classmethod
    def build_train_loader(cls, cfg):
        augs = build_augmentation(cfg, is_train=True)
        prob = cfg.INPUT.RANDOM_FLIP_PROB
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"config INPUT.RANDOM_FLIP_PROB={prob!r}: must be in [0, 1]")
        flips = [i for i, a in enumerate(augs) if isinstance(a, T.RandomFlip)]
        if not flips and prob not in (0.0, 0.5):
            raise ConfigError(
                f"config INPUT.RANDOM_FLIP_PROB={prob!r} with INPUT.RANDOM_FLIP "
                f"{cfg.INPUT.RANDOM_FLIP!r}: no flip to apply it to"
            )
        for i in flips:
            augs[i] = T.RandomFlip(
                prob=prob, horizontal=augs[i].horizontal, vertical=augs[i].vertical
            )
        if not cfg.MODEL.MASK_ON:
            return build_detection_train_loader(
                cfg, mapper=DatasetMapper(cfg, is_train=True, augmentations=augs)
            )
        # Mask R-CNN: the set is read once here, to choose the mask format from what it holds.
        # (the arguments detectron2's build_detection_train_loader reads it with)
        dataset = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=(
                cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
            ),
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
        )
        mapper = DatasetMapper(
            cfg,
            is_train=True,
            augmentations=augs,
            instance_mask_format=mask_format_for(cfg, dataset),
        )
        return build_detection_train_loader(cfg, mapper=mapper, dataset=dataset)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, batch_size=cfg.TEST.IMS_PER_BATCH)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        meta = D2MetadataCatalog.get(dataset_name)
        kind = getattr(meta, "evaluator_type", "coco" if hasattr(meta, "json_file") else None)
        if kind == "coco":
            # output_dir=None: detectron2 writes its result files non-atomically.
            return COCOEvaluator(dataset_name, tasks=evaluation_tasks(cfg), output_dir=None)
        if kind == "pascal_voc":
            if cfg.TEST.VOC_USE_07_METRIC != (meta.year == 2007):
                raise ConfigError(
                    f"config TEST.VOC_USE_07_METRIC={cfg.TEST.VOC_USE_07_METRIC}: detectron2's VOC "
                    f"evaluator uses the 11-point metric exactly for year 2007 ({dataset_name!r} "
                    f"is {meta.year}); use ENGINE builtin for this combination"
                )
            return PascalVOCDetectionEvaluator(dataset_name)
        raise ConfigError(
            f"config DATASETS.TEST: no evaluator for {dataset_name!r} (evaluator_type {kind!r})"
        )


def evaluation_tasks(cfg) -> Tuple[str, ...]:
    """COCO evaluation tasks of the model: "bbox", and "segm" for Mask R-CNN (MODEL.MASK_ON)."""
    return ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)


def mask_format_for(cfg, dataset: List[dict]) -> str:
    """detectron2's instance mask format for training on ``dataset`` (its dataset dicts).

    INPUT.MASK_FORMAT "polygon" (detectron2's default, what COCO's training annotations are)
    rasterises each polygon inside its box, but cannot hold RLE masks; a set with RLE masks
    outside crowd regions (which training drops) is trained with "bitmask", which reads both.
    """
    fmt = cfg.INPUT.MASK_FORMAT
    if fmt != "polygon":
        return fmt
    for record in dataset:
        for obj in record.get("annotations", ()):
            if isinstance(obj.get("segmentation"), dict) and not obj.get("iscrowd", 0):
                logger.info(
                    "INPUT.MASK_FORMAT: polygon -> bitmask for training: %s (image %s) "
                    "holds RLE masks, which the polygon format cannot read",
                    record.get("file_name"),
                    record.get("image_id"),
                )
                return "bitmask"
    return fmt


# ---------------------------------------------------------------- entry points
def setup(cfg, args: Optional[argparse.Namespace] = None) -> None:
    """Logging (console + OUTPUT_DIR/log.txt), environment and engine in the log,
    OUTPUT_DIR/config.yaml written atomically, RNG seeding (SEED + rank). SEED < 0 is resolved
    first (rank 0 draws one seed for all), so config.yaml records the seed the run uses and
    reproduces it (docs/reproducibility.md)."""
    out = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    if comm.is_main_process() and out:
        os.makedirs(out, exist_ok=True)
    for name in ("fvcore", "detectron2", "resnet_det"):
        setup_logger(out, distributed_rank=rank, name=name, abbrev_name=name[:3])
    logger.info(engine_banner())
    logger.info("Rank %d of %d", rank, comm.get_world_size())
    logger.info("Environment info:\n%s", collect_env_info())
    if args is not None:
        logger.info("Command line arguments: %s", args)
    seed = resolve_seed(cfg)  # a collective call: every rank, before config.yaml is written
    # MODEL.WEIGHTS against INPUT.FORMAT / MODEL.PIXEL_*: stops on a mismatch under "check";
    # "adopt" sets the weights' values before config.yaml is written.
    resolve_weights_contract(cfg)
    if comm.is_main_process() and out:
        path = os.path.join(out, "config.yaml")
        atomic_write_text(path, cfg.dump())
        logger.info("Full config saved to %s", path)
    seed_all_rng(seed + rank)
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK


def run(args: argparse.Namespace):
    """One process: config, setup, then train (or evaluate with --eval-only); the main process
    prints the results and ``finish_run``'s summary. Returns the evaluation results ({dataset
    task: {metric: value}}, e.g. {"bbox": {"AP": ...}, "segm": {"AP": ...}})."""
    opts = list(args.opts or [])
    if getattr(args, "engine", None) not in (None, "detectron2"):
        raise ConfigError(
            f"resnet_det.d2.train: --engine {args.engine!r}; this is the detectron2 engine"
        )
    cfg = setup_cfg(args.config_file, opts)
    setup(cfg, args)
    register_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
    if args.eval_only:
        model = Trainer.build_model(cfg)
        SafeDetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = Trainer.test(cfg, model)
    else:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
        results = getattr(trainer, "_last_eval_results", None) or OrderedDict()
    if comm.is_main_process():
        for task in evaluation_tasks(cfg):
            scores = (results or {}).get(task, {})
            if scores:
                print(
                    f"{task}: "
                    + "  ".join(
                        f"{k} {scores[k]:.1f}" for k in ("AP", "AP50", "AP75") if k in scores
                    )
                )
        print(finish_run(cfg, eval_only=args.eval_only), flush=True)
    return results


def finish_run(cfg, *, eval_only: bool = False, python: str = "python3") -> str:
    """The end of a run under this engine, as the built-in engine ends one:
    training_curves.png drawn from OUTPUT_DIR/metrics.json (a training run), and the closing
    text of ``resnet_det.engine.run_summary`` with the next commands spelled for this engine
    (``--engine detectron2`` on OUTPUT_DIR/config.yaml). No detections picture: it draws the
    built-in detector's outputs. Returns the text (to print)."""
    out = cfg.OUTPUT_DIR
    pictures = {}
    if not eval_only and os.path.isfile(os.path.join(out, "metrics.json")):
        try:
            pictures["training curves"] = plot_run_curves(out)
        except UserError as e:  # nothing logged yet (0 iterations): the run itself is fine
            logger.warning("training curves not drawn: %s", e)
    text = format_run_summary(out, pictures=pictures, eval_only=eval_only, python=python)
    head = text.split("\nNext:")[0]
    marker = os.path.join(out, "last_checkpoint")
    if not os.path.isfile(marker):
        return head
    q = shlex.quote
    with open(marker) as f:
        weights = os.path.join(os.path.normpath(out), f.read().strip())
    config = os.path.join(os.path.normpath(out), "config.yaml")
    train = f"{python} tools/train_net.py --engine detectron2 --config-file {q(config)}"
    return "\n".join(
        [
            head,
            "Next:",
            f"  evaluate again:     {train} --eval-only MODEL.WEIGHTS {q(weights)}",
            f"  resume:             {train} --resume",
            f"  redraw the curves:  {python} tools/plot_curves.py {q(os.path.normpath(out))}",
            "  predict on images:  detectron2's DefaultPredictor with this config "
            "(docs/detectron2.md); "
            "tools/predict.py runs the built-in engine",
        ]
    )


def main(args: argparse.Namespace):
    """tools/train_net.py's entry for ENGINE detectron2: print the engine, launch ``run`` on
    args.num_gpus processes per machine (detectron2's launch; one process runs in place) and
    return the main process's results."""
    print(engine_banner())
    if args.num_gpus * args.num_machines > 1:
        launch(
            run,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
        return None  # the main worker printed its results
    return run(args)
