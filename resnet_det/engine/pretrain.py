"""ClassificationTrainer: ImageNet / CIFAR-10 / digits pretraining on the generic engine.

The loop, checkpointing (exact resume), AMP, channels_last, DDP, lr schedules and writers are
DefaultTrainer's (so is the count of skipped unreadable images, hooks.DataSkipCounts); this
module adds the classifier, the classification loaders, the top-1/top-5 evaluation
(TEST.CLS_MODES) and the metrics of the paper's curves: training error of the batches
("train_top1_err") and images per second.
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Optional

from torch import nn

from ..checkpoint import INPUT_CONTRACT_KEY, InputContract, unwrap_model
from ..config import CfgNode, ConfigError
from ..data.classification import (
    build_classification_test_loader,
    build_classification_train_loader,
)
from ..data.skips import SkipCountingLoader
from ..evaluation.classification import (
    TEST_MODES,
    evaluate_classifier,
    supports_multiscale,
    unwrap_classifier,
)
from ..modeling import ModelDescription, describe_model
from ..utils import comm
from .defaults import DefaultTrainer
from .hooks import PeriodicWriter
from .train_loop import HookBase

__all__ = ["ClassificationTrainer", "ClassificationMetrics", "classifier_input_contract"]

logger = logging.getLogger(__name__)


class ClassificationMetrics(HookBase):
    """After each step: "train_top1_err" (the batch's top-1 error, percent) and
    "images_per_sec" (global batch / step time of IterationTimer). Logs the average images/s
    at the end."""

    def __init__(self, global_batch_size: int, warmup_iter: int = 3, log_period: int = 20):
        """
        Args:
            global_batch_size: images per iteration over all processes (SOLVER.IMS_PER_BATCH).
            warmup_iter: first iterations left out of the final average.
            log_period: log images/s and the training error every this many iterations.
        """
        self.global_batch_size = global_batch_size
        self.warmup_iter = warmup_iter
        self.log_period = log_period
        self._images = 0
        self._seconds = 0.0

    def after_step(self) -> None:
        storage = self.trainer.storage
        latest = storage.latest()
        net = unwrap_model(self.trainer.model)
        err = getattr(net, "last_train_error", None)
        if err is not None:
            storage.put_scalar("train_top1_err", err)
        if "time" in latest:
            dt = latest["time"][0]
            if dt > 0:
                storage.put_scalar("images_per_sec", self.global_batch_size / dt)
            if self.trainer.iter - self.trainer.start_iter >= self.warmup_iter:
                self._images += self.global_batch_size
                self._seconds += dt
        it = self.trainer.iter
        if self.log_period > 0 and (it + 1) % self.log_period == 0 and comm.is_main_process():
            ips = (
                storage.history("images_per_sec").median(self.log_period)
                if "time" in latest
                else float("nan")
            )
            terr = (
                storage.history("train_top1_err").median(self.log_period)
                if err is not None
                else float("nan")
            )
            logger.info("iter: %d  images/s: %.1f  train top-1 error: %.2f%%", it, ips, terr)

    def after_train(self) -> None:
        if self._seconds > 0:
            logger.info(
                "Training throughput: %.1f images/s (%d images in %.1f s, after %d warm-up "
                "iterations)",
                self._images / self._seconds,
                self._images,
                self._seconds,
                self.warmup_iter,
            )


def classifier_input_contract(cfg: CfgNode) -> InputContract:
    """The input a classifier trained with ``cfg`` expects: RGB (the classification loaders
    decode RGB) minus INPUT.CLS.PIXEL_MEAN, divided by INPUT.CLS.PIXEL_STD (0-255 units)."""
    return InputContract(
        "RGB",
        cfg.INPUT.CLS.PIXEL_MEAN,
        cfg.INPUT.CLS.PIXEL_STD,
        origin=f"resnet_det pretraining of {cfg.MODEL.CLASSIFIER.ARCH} on RGB "
        "input normalised by INPUT.CLS.PIXEL_MEAN / PIXEL_STD",
    )


class ClassificationTrainer(DefaultTrainer):
    """DefaultTrainer with build_classifier, the classification loaders and evaluation.

    Its checkpoints (model_NNNNNNN.pth, model_final.pth) record the input the classifier was
    trained on (``classifier_input_contract``), which a detector loading them as MODEL.WEIGHTS
    checks its own input against (resnet_det.checkpoint.weights).
    """

    def __init__(self, cfg: CfgNode, **kwargs):
        super().__init__(cfg, **kwargs)
        self.checkpointer.metadata[INPUT_CONTRACT_KEY] = classifier_input_contract(
            self.cfg
        ).to_dict()

    @property
    def counting_loader(self) -> Optional[SkipCountingLoader]:
        """The training loader when it counts skipped images (the built one does)."""
        loader = self._trainer.data_loader
        return loader if isinstance(loader, SkipCountingLoader) else None

    @classmethod
    def describe_model(cls, cfg: CfgNode) -> ModelDescription:
        return describe_model(cfg, meta_architecture="ImageClassifier")

    @classmethod
    def build_model(cls, cfg: CfgNode, description: Optional[ModelDescription] = None) -> nn.Module:
        model = super().build_model(cfg, description)
        logger.info(
            "Classifier %s: %.2fM parameters",
            cfg.MODEL.CLASSIFIER.ARCH,
            sum(p.numel() for p in model.parameters()) / 1e6,
        )
        return model

    @classmethod
    def build_train_loader(cls, cfg: CfgNode, start_iter: int = 0):
        return build_classification_train_loader(cfg, start_iter=start_iter)

    @classmethod
    def head_classes(cls, description: ModelDescription):
        net = description["net"]
        return net.key_of("num_classes"), net["num_classes"]

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module) -> "OrderedDict[str, Dict[str, float]]":
        """Top-1/top-5 on every DATASETS.TEST under every TEST.CLS_MODES mode; keys are the
        mode ("center/top1_err") with one test set, "<dataset>/<mode>" with several."""
        names = list(cfg.DATASETS.TEST)
        if not names:
            raise ConfigError("DATASETS.TEST is empty: nothing to evaluate the classifier on")
        for mode in cfg.TEST.CLS_MODES:
            if mode not in TEST_MODES:
                raise ConfigError(
                    f"config TEST.CLS_MODES: unknown mode {mode!r}; choose from {list(TEST_MODES)}"
                )
        if "multiscale" in cfg.TEST.CLS_MODES and not supports_multiscale(unwrap_classifier(model)):
            raise ConfigError(
                "config TEST.CLS_MODES: 'multiscale' (the fully-convolutional test) needs a "
                "network "
                f"ending in global average pooling + one fc layer; MODEL.CLASSIFIER.ARCH "
                f"{cfg.MODEL.CLASSIFIER.ARCH!r} does not (VGG's fc6/fc7): use 'center' or '10crop'"
            )
        results: OrderedDict[str, Dict[str, float]] = OrderedDict()
        for name in names:
            for mode in cfg.TEST.CLS_MODES:
                loader = build_classification_test_loader(cfg, name, mode)
                res = evaluate_classifier(model, loader, mode=mode)
                key = mode if len(names) == 1 else f"{name}/{mode}"
                results[key] = res
                if comm.is_main_process():
                    logger.info(
                        "%s (%s): top-1 error %.2f%%, top-5 error %.2f%% on %d images",
                        name,
                        mode,
                        res["top1_err"],
                        res["top5_err"],
                        res["num_images"],
                    )
        return results

    def build_hooks(self) -> List[HookBase]:
        ret = super().build_hooks()
        metrics = ClassificationMetrics(
            self.cfg.SOLVER.IMS_PER_BATCH, log_period=self.cfg.LOG_PERIOD
        )
        # Before the writers, so each step's metrics are written with it.
        at = next((i for i, h in enumerate(ret) if isinstance(h, PeriodicWriter)), len(ret))
        ret.insert(at, metrics)
        return ret
