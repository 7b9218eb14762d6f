"""Classification datasets over dataset dicts, and their batch collation.

Classification dataset dicts (the counterpart of the detection dicts in docs/internals.md):

    {"image_id": int | str, "label": int (0-based),
     and either "file_name": str (decoded on use) or "image": uint8 ndarray [H, W, 3] (RGB)}

A batch is ``{"image": float Tensor[B, 3, H, W], "label": int64 Tensor[B], "image_id": list,
"skipped": list of SkippedImage (reason, file, id) of the images left out under
on_bad_image="skip"}``.

With ``decode_device`` (INPUT.DECODE_DEVICE) the training dataset's items carry the file's
bytes (or, for a file the device cannot decode, its pixels) and the augmentation's drawn
parameters instead of the image; the loader's batches hold them under "undecoded" and
ClassificationBatchFinisher makes the batch above on the device (resnet_det.data.device_decode).
"""

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from ..device_decode import (
    DECODED_SIZE,
    PIXELS,
    decode_on_device,
    read_for_device,
    skip_or_raise,
)
from ..io import BadImageError, check_on_bad_image, decode_image, read_image_bytes
from ..skips import SkippedImage

__all__ = [
    "load_classification_image",
    "ClassificationTrainDataset",
    "ClassificationTestDataset",
    "ClassificationBatchFinisher",
    "collate_classification",
]

logger = logging.getLogger(__name__)


def load_classification_image(d: Dict[str, Any]) -> torch.Tensor:
    """The dict's image as a uint8 RGB Tensor[3, H, W] (files decoded as
    resnet_det.data.read_image decodes them, EXIF orientation applied, left in the decoder's
    memory layout); BadImageError names the file and image id."""
    if "image" in d:
        return _in_memory(d)
    file_name, image_id = d["file_name"], d.get("image_id")
    data = read_image_bytes(file_name, image_id=image_id)
    return decode_image(data, file_name, image_id=image_id)


def _in_memory(d: Dict[str, Any]) -> torch.Tensor:
    arr = np.asarray(d["image"])
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        image_id = d.get("image_id")
        raise BadImageError(
            f"in-memory image (image id {image_id}) must be uint8 HxWx3, "
            f"got {arr.dtype} {arr.shape}",
            path=str(image_id),
            image_id=image_id,
        )
    # A copy: in-memory sets are shared, read-only arrays.
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)


def _read_or_skip(
    d: Dict[str, Any], on_bad_image: str, read: Optional[Callable] = None
) -> Union[Any, Dict[str, Any]]:
    """``read(d)`` (default load_classification_image); under on_bad_image="skip" an
    unreadable image is logged and the item a dataset returns in its place,
    ``{"skipped": SkippedImage}``, comes back instead."""
    try:
        return (read or load_classification_image)(d)
    except BadImageError as e:
        if on_bad_image == "stop":
            raise
        logger.warning("Skipping unreadable image (DATALOADER.ON_BAD_IMAGE=skip): %s", e)
        return {"skipped": SkippedImage(e.reason, str(e.path), d.get("image_id"))}


class ClassificationTrainDataset(torch.utils.data.Dataset):
    """Items are ``(index, seed)`` pairs, as resnet_det.data.samplers.TrainBatchSampler yields
    them: the image ``dicts[index]`` augmented with torch's generator seeded by ``seed`` (a
    function of the run's seed and the sample's position in the stream).

    With ``decode_device`` the item is instead the undecoded sample: "encoded" (the JPEG's
    bytes) or "pixels" (decoded here), "decoded_size", the drawn "params" of
    ``transform.plan``, "label", "image_id" and "file_name" (module doc).

    Args:
        dicts: classification dataset dicts.
        transform: uint8 Tensor[3, H, W] -> model input (random ops draw from torch); with
            ``decode_device`` a ClassificationTrainTransform (it has ``plan``).
        on_bad_image: "stop" raises BadImageError; "skip" logs it and returns
            ``{"skipped": SkippedImage}``.
        decode_device: None decodes here; a device: the main process decodes there.
    """

    def __init__(
        self,
        dicts: List[Dict[str, Any]],
        *,
        transform: Callable,
        on_bad_image: str = "stop",
        decode_device: Optional[torch.device] = None,
    ):
        if not dicts:
            raise ValueError("ClassificationTrainDataset: the dataset is empty")
        check_on_bad_image(on_bad_image)
        if decode_device is not None and not hasattr(transform, "plan"):
            raise ValueError(
                "ClassificationTrainDataset: decoding on a device needs a transform that draws "
                f"its parameters ahead (ClassificationTrainTransform), got {transform!r}"
            )
        self.dicts = dicts
        self.transform = transform
        self.on_bad_image = on_bad_image
        self.decode_device = decode_device

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, item: Tuple[int, int]) -> Dict[str, Any]:
        index, seed = item
        d = self.dicts[index]
        if self.decode_device is not None:
            return self._undecoded(d, seed)
        img = _read_or_skip(d, self.on_bad_image)
        if isinstance(img, dict):
            return img
        # Fork the global CPU generator: torchvision's random transforms draw from it, and
        # forking keeps the draws of this sample independent of what ran before in this
        # process. Only the CPU generator is seeded (torch.manual_seed would also queue a
        # reseed of every CUDA generator, which fork_rng(devices=[]) does not restore).
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            x = self.transform(img)
        return {"image": x, "label": int(d["label"]), "image_id": d.get("image_id")}

    def _undecoded(self, d: Dict[str, Any], seed: int) -> Dict[str, Any]:
        got = _read_or_skip(d, self.on_bad_image, _read_for_device)
        if "skipped" in got:
            return got
        sample, height, width = got["sample"], got["height"], got["width"]
        # The same draws as the decoded path's, from the same seed (plan draws what
        # calling the transform draws, in the same order).
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            sample["params"] = self.transform.plan(height, width)
        sample[DECODED_SIZE] = (height, width)
        sample.update(label=int(d["label"]), image_id=d.get("image_id"))
        sample["file_name"] = d.get("file_name", str(d.get("image_id")))
        return sample


class ClassificationTestDataset(torch.utils.data.Dataset):
    """The dataset in its order, one test view per item (see build_classification_transform).

    Args:
        dicts: classification dataset dicts.
        transform: uint8 Tensor[3, H, W] -> the test view(s).
        on_bad_image: as in ClassificationTrainDataset.
    """

    def __init__(
        self, dicts: List[Dict[str, Any]], *, transform: Callable, on_bad_image: str = "stop"
    ):
        check_on_bad_image(on_bad_image)
        self.dicts = dicts
        self.transform = transform
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        d = self.dicts[idx]
        img = _read_or_skip(d, self.on_bad_image)
        if isinstance(img, dict):
            return img
        return {
            "image": self.transform(img),
            "label": int(d["label"]),
            "image_id": d.get("image_id"),
        }


def _read_for_device(d: Dict[str, Any]) -> Dict[str, Any]:
    if "image" in d:
        pixels = _in_memory(d)
        return {"sample": {PIXELS: pixels}, "height": pixels.shape[-2], "width": pixels.shape[-1]}
    sample, height, width = read_for_device(d["file_name"], image_id=d.get("image_id"))
    return {"sample": sample, "height": height, "width": width}


def collate_classification(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stacks images and labels; items skipped as unreadable are listed under "skipped".
    Images of different sizes (the multi-scale test) stay a list. Undecoded samples
    (``decode_device``) stay a list under "undecoded" (ClassificationBatchFinisher)."""
    kept = [it for it in items if "skipped" not in it]
    batch: Dict[str, Any] = {"skipped": [it["skipped"] for it in items if "skipped" in it]}
    if kept and "params" in kept[0]:
        batch["undecoded"] = kept
        batch["label"] = torch.tensor([it["label"] for it in kept], dtype=torch.int64)
        batch["image_id"] = [it["image_id"] for it in kept]
        return batch
    images = [it["image"] for it in kept]
    if images and all(
        isinstance(im, torch.Tensor) and im.shape == images[0].shape for im in images
    ):
        batch["image"] = torch.stack(images)
    else:
        batch["image"] = images
    batch["label"] = torch.tensor([it["label"] for it in kept], dtype=torch.int64)
    batch["image_id"] = [it["image_id"] for it in kept]
    return batch


class ClassificationBatchFinisher:
    """The main process's step of a batch of undecoded samples (``decode_device``): decodes
    them on the device (the JPEGs in one call), applies each sample's drawn augmentation
    there and stacks them into the batch the decoded path gives. An image that cannot be
    decoded stops the run or, under on_bad_image "skip", leaves the batch and is listed in its
    "skipped".

    Args:
        transform: the dataset's ClassificationTrainTransform.
        on_bad_image: "stop" or "skip".
    """

    def __init__(self, transform: Callable, on_bad_image: str = "stop") -> None:
        self.transform = transform
        self.on_bad_image = check_on_bad_image(on_bad_image)

    def __call__(self, batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
        items = batch.pop("undecoded", None)
        if items is None:  # every image of the batch was skipped by the workers
            batch["image"] = []
            return batch
        skipped = list(batch["skipped"])
        images, plans, labels, ids = [], [], [], []
        for it, image in zip(items, decode_on_device(items, device)):
            if isinstance(image, BadImageError):
                skipped.append(skip_or_raise(image, self.on_bad_image))
                continue
            images.append(image)
            plans.append(it["params"])
            labels.append(it["label"])
            ids.append(it["image_id"])
        return {
            "skipped": skipped,
            "image": self.transform.apply_batch(images, plans) if images else [],
            "label": torch.tensor(labels, dtype=torch.int64),
            "image_id": ids,
        }
