"""``resnet_det.Predictor``: a trained detector applied to one's own images.

    predictor = resnet_det.Predictor("configs/demo/faster_rcnn_shapes.yaml")
    result = predictor("photo.jpg")  # boxes (XYXY, original pixels), scores, labels,
                                     # class_names (and masks for a Mask R-CNN config)
    results = predictor(["a.jpg", "b.png"])  # a list is one batch

The images go through exactly what evaluation feeds the detector (the test loader's
``DatasetMapper``: the one image reader, then INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST resizing),
so a dataset image gets the evaluator's detections. Batches are padded to a common size, as in
detectron2, which can change detections slightly compared with one image at a time.
"""

import contextlib
import logging
import os
import random
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from ..checkpoint import LoadResult, load_pretrained_weights, resolve_weights_contract
from ..config import CfgNode, ConfigError, get_cfg
from ..data.catalog import MetadataCatalog
from ..data.detection.mapper import DatasetMapper
from ..data.detection.transforms import apply_transforms
from ..modeling.build import build_model
from ..modeling.fuse import fuse_conv_norms
from ..utils.errors import MissingFileError, UsageError, WeightsError
from .inputs import to_image_tensor

__all__ = ["Predictor", "PRECISIONS", "resolve_weights", "class_names_of"]

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def _load_cfg(config_or_path: Union[str, os.PathLike, CfgNode]) -> CfgNode:
    if isinstance(config_or_path, CfgNode):
        return config_or_path.clone()
    cfg = get_cfg()
    cfg.merge_from_file(os.fspath(config_or_path))
    return cfg


def resolve_weights(cfg: CfgNode, weights: Optional[str] = None) -> str:
    """The detector checkpoint to load: ``weights`` if given, else MODEL.WEIGHTS, else
    OUTPUT_DIR/model_final.pth (what training leaves). Raises MissingFileError naming what
    was looked for when there is none."""
    if weights:
        chosen, origin = os.fspath(weights), "weights="
    elif cfg.MODEL.WEIGHTS:
        chosen, origin = cfg.MODEL.WEIGHTS, "MODEL.WEIGHTS="
    else:
        chosen, origin = (
            os.path.join(cfg.OUTPUT_DIR, "model_final.pth"),
            "OUTPUT_DIR/model_final.pth = ",
        )
    if "://" not in chosen and not os.path.isfile(chosen):
        raise MissingFileError(
            f"Predictor: no trained detector at {origin}{chosen!r}; train one (tools/train_net.py "
            "--config-file ...) or pass weights=/MODEL.WEIGHTS a model_final.pth"
        )
    return chosen


def class_names_of(cfg: CfgNode) -> List[str]:
    """thing_classes of DATASETS.TEST[0] (else DATASETS.TRAIN[0]); "class i" names, with a
    warning, when neither dataset's metadata has them."""
    for name in list(cfg.DATASETS.TEST[:1]) + list(cfg.DATASETS.TRAIN[:1]):
        classes = MetadataCatalog.get(name).get("thing_classes")
        if classes:
            if len(classes) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
                raise ConfigError(
                    f"config MODEL.ROI_HEADS.NUM_CLASSES={cfg.MODEL.ROI_HEADS.NUM_CLASSES}, but "
                    f"dataset {name!r} (DATASETS.TEST / TRAIN) has {len(classes)} classes; set "
                    "the datasets the detector was trained on"
                )
            return list(classes)
    logger.warning(
        "No thing_classes in the metadata of DATASETS.TEST / DATASETS.TRAIN (%s, %s): "
        "classes are named 'class 0', 'class 1', ...",
        list(cfg.DATASETS.TEST),
        list(cfg.DATASETS.TRAIN),
    )
    return [f"class {i}" for i in range(cfg.MODEL.ROI_HEADS.NUM_CLASSES)]


class Predictor:
    """A trained detector with the evaluation's preprocessing, for one's own images.

    Args:
        config_or_path: a config YAML path or a CfgNode (not modified).
        weights: a detector checkpoint; default MODEL.WEIGHTS, else OUTPUT_DIR/model_final.pth.
        device: "cpu", "cuda", "cuda:1", ...; default MODEL.DEVICE.
        precision: "fp32"; "fp16" or "bf16" run under autocast (fp16 on a GPU only).
        channels_last: keep convolution weights in channels-last memory format.
        compile: torch.compile the backbone (True, or the name of a torch.compile backend).
        fuse: fold the backbone's frozen / eval-mode BatchNorms into their convolutions
            (resnet_det.modeling.fuse: same outputs up to float rounding).

    Attributes:
        cfg, model, class_names, input_format, device.
    """

    def __init__(
        self,
        config_or_path,
        weights: Optional[str] = None,
        device: Optional[str] = None,
        *,
        precision: str = "fp32",
        channels_last: bool = False,
        compile: Union[bool, str] = False,
        fuse: bool = False,
    ):
        cfg = _load_cfg(config_or_path)
        self.device = torch.device(device or cfg.MODEL.DEVICE)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(
                f"Predictor: device {str(self.device)!r} asked for, but no CUDA GPU is "
                "visible; use device='cpu' (MODEL.DEVICE cpu)"
            )
        if precision not in PRECISIONS:
            raise UsageError(
                f"Predictor: precision={precision!r}; choose one of {list(PRECISIONS)}"
            )
        if precision == "fp16" and self.device.type != "cuda":
            raise UsageError(
                "Predictor: precision 'fp16' needs a GPU (autocast on CPU is bf16 "
                "only); use 'bf16' or 'fp32' on CPU"
            )
        cfg.MODEL.DEVICE = str(self.device)
        self.weights = resolve_weights(cfg, weights)
        cfg.MODEL.WEIGHTS = self.weights
        # Fails fast on weights trained on another input; "adopt" takes the weights' input.
        resolve_weights_contract(cfg)
        cfg.freeze()
        self.cfg = cfg
        self.class_names = class_names_of(cfg)
        self.input_format = cfg.INPUT.FORMAT
        self.precision = precision
        # The evaluation's mapper: its transforms are the test-time resize.
        self._mapper = DatasetMapper.from_config(cfg, is_train=False)
        self.model = build_model(cfg).eval()
        # The input contract was checked by resolve_weights_contract above.
        result = load_pretrained_weights(self.model, self.weights, input_contract=None)
        if isinstance(result, LoadResult):
            raise WeightsError(
                f"Predictor: {self.weights!r} holds ImageNet weights for the backbone only (a "
                "training initialisation); its RPN and box predictor would be random. Pass the "
                f"trained detector (e.g. {os.path.join(cfg.OUTPUT_DIR, 'model_final.pth')})"
            )
        self.model.requires_grad_(False)
        if fuse:
            fuse_conv_norms(self.model)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        if compile:
            backend = compile if isinstance(compile, str) else "inductor"
            # The backbone only: the heads' data-dependent shapes (NMS, top-k) break graphs.
            self.model.backbone = torch.compile(self.model.backbone, backend=backend, dynamic=True)

    # ----------------------------------------------------------------------------- inputs
    def preprocess(self, image: Any, index: int = 0) -> Dict[str, Any]:
        """One image -> the model input dict the test loader would give ("image" resized,
        "height"/"width" of the original)."""
        return self.model_input(to_image_tensor(image, self.input_format, index))

    def model_input(self, image: torch.Tensor) -> Dict[str, Any]:
        """A uint8 [3, H, W] image in INPUT.FORMAT order -> the model input dict (resized by
        the test loader's transforms)."""
        h, w = image.shape[-2:]
        resized, _ = apply_transforms(
            self._mapper.transforms, image, torch.zeros((0, 4)), random.Random(0)
        )
        return {"image": resized.contiguous(), "height": int(h), "width": int(w)}

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # ----------------------------------------------------------------------------- running
    def run_inputs(self, inputs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Run the detector on preprocessed inputs (one batch); results on the CPU."""
        with torch.no_grad(), self._autocast():
            outputs = self.model(inputs)
        results = []
        for out, inp in zip(outputs, inputs):
            res = {
                "boxes": out["boxes"].float().cpu(),
                "scores": out["scores"].float().cpu(),
                "labels": out["labels"].cpu(),
                "image_size": (inp["height"], inp["width"]),
            }
            res["class_names"] = [self.class_names[int(i)] for i in res["labels"]]
            if "masks" in out:
                res["masks"] = out["masks"].float().cpu()
            results.append(res)
        return results

    def __call__(self, images: Union[Any, Sequence[Any]]):
        """Detect objects in one image or a list of images (one batch).

        Args:
            images: a path, PIL image, H x W x 3 uint8 array (INPUT.FORMAT channel order) or
                [3, H, W] tensor; or a list or tuple of them.
        Returns:
            For one image a dict: "boxes" float [N, 4] (XYXY in the original image's pixels),
            "scores" [N], "labels" int64 [N] (0-based), "class_names" (N names),
            "image_size" (height, width), and for a model with masks (MODEL.MASK_ON) "masks",
            float [N, 1, H, W] probabilities in the original image (an object's pixels are
            those > 0.5, as the evaluation binarises them). For a list, a list of such dicts.
        """
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        if not batch:
            return []
        results = self.run_inputs([self.preprocess(im, i) for i, im in enumerate(batch)])
        return results[0] if single else results
