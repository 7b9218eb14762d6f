"""DetectionTrainer: Faster R-CNN training on the generic engine (DefaultTrainer).

The loop, checkpointing with exact resume, AMP, DDP, lr schedules and writers are the generic
engine's; this module wires the detector (resnet_det.modeling.build_model), the detection
loaders (resnet_det.data), COCO / VOC evaluation (resnet_det.evaluation), MODEL.WEIGHTS
loading into the backbone, the per-image sampler seeds, and the picture of detections.
"""

import logging
import os
from collections import OrderedDict
from typing import Any, Mapping, Optional

import torch
from torch import nn

from ..checkpoint import (
    INPUT_CONTRACT_KEY,
    detector_input_contract,
    load_pretrained_weights,
    unwrap_model,
)
from ..config import CfgNode
from ..data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
    read_image,
)
from ..data.detection import DatasetMapper
from ..data.skips import SkippedImage
from ..evaluation import (
    build_evaluator,
    check_error_analysis,
    inference_on_dataset,
    print_csv_format,
)
from ..modeling import ModelDescription, describe_model
from ..modeling.detection import GeneralizedRCNN
from ..utils import comm
from ..utils.visualize import DetectionPanel, plot_detections
from .defaults import DefaultTrainer
from .events import put_pr_curves
from .preflight import warn_frozen_from_scratch
from .train_loop import HookBase

__all__ = ["DetectionTrainer", "SamplerIteration", "visualize_detections"]

logger = logging.getLogger(__name__)


class SamplerIteration(HookBase):
    """Before each step, tell the detector the iteration, so that the fg/bg samplers' per-image
    seeds are (SEED, iteration, image_id) in every process and after a resume."""

    def before_step(self) -> None:
        model = unwrap_model(self.trainer.model)
        if isinstance(model, GeneralizedRCNN):
            model.sampling_iteration = self.trainer.iter


class DetectionTrainer(DefaultTrainer):
    """DefaultTrainer for the built-in Faster R-CNN engine.

    Use::

        trainer = DetectionTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()      # {"bbox": {"AP": ..., "AP50": ...}} after the final eval

    Its checkpoints record the input the detector was trained on (INPUT.FORMAT,
    MODEL.PIXEL_MEAN, MODEL.PIXEL_STD), checked when one is loaded as MODEL.WEIGHTS.
    """

    def __init__(self, cfg: CfgNode, **kwargs):
        super().__init__(cfg, **kwargs)
        self.checkpointer.metadata[INPUT_CONTRACT_KEY] = detector_input_contract(self.cfg).to_dict()

    @classmethod
    def describe_model(cls, cfg: CfgNode) -> ModelDescription:
        return describe_model(cfg, meta_architecture="GeneralizedRCNN")

    @classmethod
    def build_model(cls, cfg: CfgNode, description: Optional[ModelDescription] = None) -> nn.Module:
        description = description if description is not None else cls.describe_model(cfg)
        model = super().build_model(cfg, description)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in model.parameters())
        logger.info(
            "Model: %s, %.2fM parameters (%.2fM trainable)",
            description["backbone"].name,
            n_all / 1e6,
            n_train / 1e6,
        )
        return model

    @classmethod
    def build_train_loader(cls, cfg: CfgNode, start_iter: int = 0):
        return build_detection_train_loader(cfg, start_iter=start_iter)

    @classmethod
    def head_classes(cls, description: ModelDescription):
        heads = description["roi_heads"]
        return heads.key_of("num_classes"), heads["num_classes"]

    @classmethod
    def preflight(
        cls,
        cfg: CfgNode,
        *,
        train: bool = True,
        test: bool = True,
        resume: Optional[bool] = None,
        description: Optional[ModelDescription] = None,
    ) -> ModelDescription:
        """DefaultTrainer's checks, the error analysis' test sets, and a warning when a
        from-scratch run freezes norms or stages that only pretrained weights could fill (the
        backbone's description says which of its arguments are norms and which key set
        them). MODEL.WEIGHTS's input contract is checked when the weights are loaded
        (:meth:`build_weights_loader`), before the first iteration."""
        description = super().preflight(
            cfg, train=train, test=test, resume=resume, description=description
        )
        if test and cfg.TEST.ERROR_ANALYSIS:
            for name in cfg.DATASETS.TEST:
                check_error_analysis(name, key="TEST.ERROR_ANALYSIS")
        backbone = description["backbone"]
        norms = {
            backbone.key_of(arg): backbone[arg]
            for arg in ("norm", "fpn_norm")
            if backbone.key_of(arg) is not None
        }
        warn_frozen_from_scratch(
            cfg.MODEL.WEIGHTS,
            norms,
            backbone.get("freeze_at"),
            freeze_key=backbone.key_of("freeze_at") or "MODEL.BACKBONE.FREEZE_AT",
        )
        return description

    @classmethod
    def build_weights_loader(cls, cfg: CfgNode):
        # The contract of the weights loaded is compared with the input this config feeds
        # (MODEL.WEIGHTS_INPUT_CONTRACT, resnet_det.checkpoint.detector): the run's one read
        # of it under "check"; under "adopt", set-up put the weights' values in the config.
        contract, policy = detector_input_contract(cfg), cfg.MODEL.WEIGHTS_INPUT_CONTRACT
        return lambda model, path: load_pretrained_weights(
            unwrap_model(model), path, input_contract=contract, contract_policy=policy
        )

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module) -> Optional[Mapping[str, Any]]:
        """Evaluate on every DATASETS.TEST set with the evaluator its metadata names (COCO
        sets: box AP, and mask AP "segm" too when MODEL.MASK_ON).

        Returns {"bbox": {...}} ({"bbox": ..., "segm": ...} with masks) for one test set,
        {name: {"bbox": {...}}} for several.
        """
        if not cfg.DATASETS.TEST:
            logger.warning("DATASETS.TEST is empty: nothing to evaluate")
            return None
        results = OrderedDict()
        for name in cfg.DATASETS.TEST:
            loader = build_detection_test_loader(cfg, name)
            evaluator = build_evaluator(
                name,
                os.path.join(cfg.OUTPUT_DIR, "inference", name),
                distributed=comm.get_world_size() > 1,
                use_07_metric=cfg.TEST.VOC_USE_07_METRIC,
                tasks=("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",),
                error_analysis=cfg.TEST.ERROR_ANALYSIS,
            )
            if cfg.MODEL.MASK_ON and not evaluator.scores_masks():
                logger.warning(
                    "MODEL.MASK_ON: %s scores boxes only on %s (no mask AP)",
                    type(evaluator).__name__,
                    name,
                )
            res = inference_on_dataset(model, loader, evaluator)
            if comm.is_main_process():
                logger.info("Evaluation results for %s:", name)
                print_csv_format(res)
                put_pr_curves(name, getattr(evaluator, "error_analyses", {}))
            results[name] = res
        if len(results) == 1:
            return next(iter(results.values()))
        return results

    def build_hooks(self):
        # First, so that the seeds are set before anything else of the step runs.
        return [SamplerIteration()] + super().build_hooks()


def visualize_detections(
    cfg: CfgNode,
    model: nn.Module,
    *,
    dataset_name: Optional[str] = None,
    num_images: int = 9,
    score_thresh: float = 0.5,
    output_path: Optional[str] = None,
) -> str:
    """Run ``model`` on the first ``num_images`` images of ``dataset_name`` (default the first
    DATASETS.TEST set) and draw them, three a row, with the predictions scoring at least
    ``score_thresh`` (their masks too, for a Mask R-CNN) and the ground truth
    (utils.visualize.plot_detections) into ``output_path`` (default OUTPUT_DIR/detections.png).
    Returns the path."""
    name = dataset_name or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else None)
    if name is None:
        raise ValueError("visualize_detections: give dataset_name or set DATASETS.TEST")
    dicts = DatasetCatalog.get(name)[:num_images]
    class_names = MetadataCatalog.get(name).thing_classes
    mapper = DatasetMapper.from_config(cfg, is_train=False)
    model = unwrap_model(model)
    was_training = model.training
    model.eval()
    panels = []
    try:
        with torch.no_grad():
            for d in dicts:
                inputs = mapper(d)
                if isinstance(inputs, SkippedImage):
                    continue  # unreadable under DATALOADER.ON_BAD_IMAGE "skip": counted there
                out = model([inputs])[0]
                image = read_image(d["file_name"], format="RGB")
                gt = torch.tensor(
                    [a["bbox"] for a in d.get("annotations", [])], dtype=torch.float32
                ).reshape(-1, 4)
                masks = out["masks"].cpu() if "masks" in out else None
                panels.append(
                    DetectionPanel(
                        image,
                        out["boxes"].cpu(),
                        out["labels"].cpu(),
                        out["scores"].cpu(),
                        gt,
                        caption=f"image {d.get('image_id', '')}",
                        masks=masks,
                    )
                )
    finally:
        model.train(was_training)
    path = output_path or os.path.join(cfg.OUTPUT_DIR, "detections.png")
    plot_detections(
        panels,
        path,
        class_names=class_names,
        score_thresh=score_thresh,
        title=f"{name}, its first {len(panels)} images",
        ncols=3,
    )
    logger.info("Saved detections on %d %s images to %s", len(panels), name, path)
    return path
