"""Dataset dict -> model input (docs/internals.md "The train mapper")."""

import copy
import logging
import random
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...config import ConfigError
from ...utils.errors import DataError
from ..device_decode import (
    DECODED_SIZE,
    ENCODED,
    PIXELS,
    decode_on_device,
    read_for_device,
    resolve_decode_device,
    skip_or_raise,
)
from ..io import (
    SUPPORTED_FORMATS,
    BadImageError,
    ImageSizeError,
    check_on_bad_image,
    decode_image,
    read_image_bytes,
)
from ..segmentation import check_segmentation
from ..skips import SkippedImage
from .instance_masks import InstanceMasks
from .transforms import RandomFlip, ResizeShortestEdge, apply_image_ops, plan_transforms

__all__ = ["DatasetMapper", "DetectionBatchFinisher"]

# What a mapper with decode_device adds for the main process: the image's planned operations.
IMAGE_OPS = "image_ops"

logger = logging.getLogger(__name__)


class DatasetMapper:
    """Reads the image, applies resize (+ flip in training) to image and boxes, and returns
    ``{"image", "boxes", "labels", "image_id", "height", "width", "file_name"}``, plus
    ``"masks"`` when training with ``mask_on``.

    In training, crowd annotations (iscrowd=1) are removed, as in detectron2: Faster R-CNN has
    no use for them, and COCO's evaluation ignores crowd regions. Difficult VOC objects are
    kept (detectron2's choice). At test time the output has no boxes/labels/masks.
    "height"/"width" stay the original size, so detections can be mapped back.

    With ``mask_on`` (training only), "masks" is a uint8 Tensor[N, H, W] at the transformed
    image's size, one per box in the order of "boxes"/"labels", 1 inside the instance:
    polygons are resized/flipped as coordinates and then rasterised by pycocotools at H x W,
    RLE masks are decoded and resized (nearest) / flipped as pixels
    (instance_masks.InstanceMasks). The masks take no random draw, so image,
    boxes and labels are the same with and without ``mask_on``.

    An image that is missing, cannot be decoded, or whose size differs from the dict's
    height/width raises BadImageError (MissingImageError, ImageSizeError) naming the file and
    image id when ``on_bad_image="stop"``; with ``"skip"`` it is logged, counted in
    ``num_skipped`` (per process: each loader worker has its own copy) and a
    :class:`~resnet_det.data.skips.SkippedImage` with the reason is returned instead, so that
    the loader draws another image and the trainer counts it (docs/datasets.md "Bad data").
    With ``mask_on``, a training object without a "segmentation" (reason "missing mask") or
    with one that is unusable ("bad annotation") is handled the same way, as a DataError.

    With ``decode_device`` the mapper reads the file's bytes and header only (a file the device
    cannot decode is decoded here), draws the augmentation from the header's size and returns
    everything but "image": in its place "encoded" or "pixels", "decoded_size" and
    "image_ops"; the loader's DetectionBatchFinisher decodes the batch on the device and
    applies the operations there (resnet_det.data.device_decode).

    Args:
        is_train: training (random scale + flip) or test (fixed scale) behaviour.
        min_size_train: shorter-side lengths for training ("choice") or [min, max] ("range").
        min_size_train_sampling: "choice" or "range".
        max_size_train: longer-side cap in training.
        min_size_test: shorter side at test time (0 = keep the original size).
        max_size_test: longer-side cap at test time.
        image_format: channel order of the output image, "BGR" or "RGB".
        flip_prob: horizontal flip probability in training.
        on_bad_image: "stop" or "skip".
        mask_on: add the instance masks in training (Mask R-CNN).
        decode_device: None decodes here; a device: the loader's main process decodes there.
    """

    def __init__(
        self,
        *,
        is_train: bool,
        min_size_train: Sequence[int] = (600,),
        min_size_train_sampling: str = "choice",
        max_size_train: int = 1000,
        min_size_test: int = 600,
        max_size_test: int = 1000,
        image_format: str = "BGR",
        flip_prob: float = 0.5,
        on_bad_image: str = "stop",
        mask_on: bool = False,
        decode_device: Optional[torch.device] = None,
    ) -> None:
        if image_format not in SUPPORTED_FORMATS:
            raise ValueError(
                f"DatasetMapper: image_format must be one of {SUPPORTED_FORMATS}, "
                f"got {image_format!r}"
            )
        check_on_bad_image(on_bad_image, "DatasetMapper: on_bad_image")
        self.is_train = bool(is_train)
        self.image_format = image_format
        self.on_bad_image = on_bad_image
        self.mask_on = bool(mask_on)
        self.decode_device = None if decode_device is None else torch.device(decode_device)
        self.transforms: List = []
        if self.is_train:
            self.transforms.append(
                ResizeShortestEdge(min_size_train, max_size_train, min_size_train_sampling)
            )
            self.transforms.append(RandomFlip(flip_prob))
        elif min_size_test > 0:
            self.transforms.append(ResizeShortestEdge((min_size_test,), max_size_test, "choice"))
        self.num_skipped = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "DatasetMapper":
        """The mapper for ``cfg`` (reads INPUT.*, including INPUT.DECODE_DEVICE,
        DATALOADER.ON_BAD_IMAGE and MODEL.MASK_ON)."""
        min_size_train = cfg.INPUT.MIN_SIZE_TRAIN
        if isinstance(min_size_train, int):
            min_size_train = (min_size_train,)
        sampling = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
        if sampling not in ("choice", "range"):
            raise ConfigError(
                f"INPUT.MIN_SIZE_TRAIN_SAMPLING must be 'choice' or 'range', got {sampling!r}"
            )
        if sampling == "range" and len(min_size_train) != 2:
            raise ConfigError(
                f"INPUT.MIN_SIZE_TRAIN must have two values [min, max] when "
                f"INPUT.MIN_SIZE_TRAIN_SAMPLING is 'range', got {min_size_train}"
            )
        if cfg.INPUT.FORMAT not in SUPPORTED_FORMATS:
            raise ConfigError(
                f"INPUT.FORMAT must be one of {SUPPORTED_FORMATS}, got {cfg.INPUT.FORMAT!r}"
            )
        if not 0.0 <= cfg.INPUT.RANDOM_FLIP_PROB <= 1.0:
            raise ConfigError(
                f"INPUT.RANDOM_FLIP_PROB must be in [0, 1], got {cfg.INPUT.RANDOM_FLIP_PROB}"
            )
        check_on_bad_image(cfg.DATALOADER.ON_BAD_IMAGE, "DATALOADER.ON_BAD_IMAGE", ConfigError)
        return cls(
            is_train=is_train,
            min_size_train=tuple(min_size_train),
            min_size_train_sampling=sampling,
            max_size_train=cfg.INPUT.MAX_SIZE_TRAIN,
            min_size_test=cfg.INPUT.MIN_SIZE_TEST,
            max_size_test=cfg.INPUT.MAX_SIZE_TEST,
            image_format=cfg.INPUT.FORMAT,
            flip_prob=cfg.INPUT.RANDOM_FLIP_PROB,
            on_bad_image=cfg.DATALOADER.ON_BAD_IMAGE,
            mask_on=cfg.MODEL.MASK_ON,
            decode_device=resolve_decode_device(cfg.INPUT.DECODE_DEVICE),
        )

    def __call__(self, dataset_dict: dict, seed: Optional[int] = None) -> Union[dict, SkippedImage]:
        """Map one dataset dict (not modified).

        Args:
            dataset_dict: a dict as the readers return (docs/internals.md).
            seed: seeds this sample's random augmentation; the data loader passes one derived
                from (SEED, position in the stream). None draws from Python's global
                ``random`` state (not reproducible).
        """
        file_name = dataset_dict["file_name"]
        image_id = dataset_dict.get("image_id")
        undecoded = None
        try:
            if self.decode_device is None:
                # RGB until the end: the channel order is set in the one copy that makes the
                # (smaller) transformed image contiguous.
                data = read_image_bytes(file_name, image_id=image_id)
                image = decode_image(data, file_name, image_id=image_id)
                h, w = image.shape[-2:]
            else:
                undecoded, h, w = read_for_device(file_name, image_id=image_id)
            height = dataset_dict.get("height", h)
            width = dataset_dict.get("width", w)
            if (h, w) != (height, width):
                raise ImageSizeError.mismatch(file_name, (w, h), (width, height), image_id=image_id)
        except BadImageError as e:
            return self._skip(e, e.reason, file_name, image_id)

        annos = [
            a
            for a in dataset_dict.get("annotations", [])
            if not (self.is_train and a.get("iscrowd", 0))
        ]
        masks = None
        if self.is_train and self.mask_on:
            fault = _mask_fault(annos, int(h), int(w))
            if fault is not None:
                reason, problem, fix = fault
                error = DataError(
                    f"{file_name} (image id {image_id}): {problem}; {fix}, or set "
                    f"DATALOADER.ON_BAD_IMAGE skip to leave such images out"
                )
                return self._skip(error, reason, file_name, image_id)
            masks = InstanceMasks([a["segmentation"] for a in annos], int(h), int(w))
        # Through numpy: a list of lists becomes a tensor about twice as fast.
        boxes = torch.from_numpy(np.array([a["bbox"] for a in annos], np.float32).reshape(-1, 4))
        rng = random.Random(seed) if seed is not None else random.Random(random.getrandbits(64))
        ops, boxes, masks = plan_transforms(self.transforms, int(h), int(w), boxes, rng, masks)

        if undecoded is None:
            out = {"image": apply_image_ops(image, ops, self.image_format)}
        else:
            out = {**undecoded, DECODED_SIZE: (int(h), int(w)), IMAGE_OPS: ops}
        out.update(
            {
                "image_id": copy.copy(image_id),
                "height": int(height),
                "width": int(width),
                "file_name": file_name,
            }
        )
        if self.is_train:
            out["boxes"] = boxes
            out["labels"] = torch.from_numpy(np.array([a["category_id"] for a in annos], np.int64))
            if masks is not None:
                out["masks"] = masks.to_tensor()
        return out

    def _skip(self, error: DataError, reason: str, file_name: str, image_id) -> SkippedImage:
        """Raise ``error`` under "stop"; else log and count it and stand in for the image."""
        if self.on_bad_image == "stop":
            raise error
        self.num_skipped += 1
        logger.warning(
            "Skipping image (%d skipped so far in this process): %s", self.num_skipped, error
        )
        return SkippedImage(reason, file_name, image_id)

    def batch_finisher(self) -> Optional["DetectionBatchFinisher"]:
        """The main process's step of this mapper's batches when it leaves the decoding to
        the device (``decode_device``), else None."""
        if self.decode_device is None:
            return None
        return DetectionBatchFinisher(self.image_format, self.on_bad_image)

    def __repr__(self) -> str:
        return (
            f"DatasetMapper(is_train={self.is_train}, transforms={self.transforms}, "
            f"image_format={self.image_format!r}, mask_on={self.mask_on}, "
            f"on_bad_image={self.on_bad_image!r}, decode_device={self.decode_device})"
        )


def _mask_fault(annos: Sequence[dict], height: int, width: int) -> Optional[Tuple[str, str, str]]:
    """(skip reason, what is wrong, fix) for the first training annotation whose mask is
    missing or unusable, else None. The readers check masks already; a custom dataset's dicts
    reach pycocotools' decoder only through this check."""
    for i, a in enumerate(annos):
        name = f"annotation {a['id']}" if "id" in a else f"annotation {i} (bbox {a['bbox']})"
        segm = a.get("segmentation")
        if segm is None:
            return (
                "missing mask",
                f"{name} has no 'segmentation'; mask training "
                f"(MODEL.MASK_ON) needs one for every non-crowd object",
                "add its mask or remove the annotation",
            )
        bad = check_segmentation(segm, height, width)
        if bad is not None:
            return "bad annotation", f"{name} {bad[0]}", bad[1]
    return None


class DetectionBatchFinisher:
    """The main process's step of a batch mapped with ``decode_device``: decodes its images on
    the device (the JPEGs in one call) and applies each one's planned operations there, giving
    the "image" the mapper gives without the option (in ``image_format`` order, contiguous). An
    image that cannot be decoded stops the run or, under on_bad_image "skip", leaves the batch
    and joins its ``skipped``.

    Args:
        image_format: "BGR" or "RGB".
        on_bad_image: "stop" or "skip".
    """

    def __init__(self, image_format: str = "BGR", on_bad_image: str = "stop") -> None:
        self.image_format = image_format
        self.on_bad_image = check_on_bad_image(on_bad_image)

    def __call__(self, batch: list, device: torch.device) -> list:
        todo = [i for i, d in enumerate(batch) if IMAGE_OPS in d]
        images = decode_on_device([batch[i] for i in todo], device)
        failed = set()
        for i, image in zip(todo, images):
            d = batch[i]
            if isinstance(image, BadImageError):
                batch.skipped.append(skip_or_raise(image, self.on_bad_image))
                failed.add(i)
                continue
            d["image"] = apply_image_ops(image, d.pop(IMAGE_OPS), self.image_format)
            for key in (ENCODED, PIXELS, DECODED_SIZE):
                d.pop(key, None)
        if failed:
            batch[:] = [d for i, d in enumerate(batch) if i not in failed]
        return batch
