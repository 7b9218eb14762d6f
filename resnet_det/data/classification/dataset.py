"""Classification datasets over dataset dicts, and their batch collation.

Classification dataset dicts (the counterpart of the detection dicts in docs/internals.md):

    {"image_id": int | str, "label": int (0-based),
     and either "file_name": str (decoded on use) or "image": uint8 ndarray [H, W, 3] (RGB)}

A batch is ``{"image": float Tensor[B, 3, H, W], "label": int64 Tensor[B], "image_id": list,
"skipped": list of SkippedImage (reason, file, id) of the images left out under
on_bad_image="skip"}``.
"""

import logging
from typing import Any, Callable, Dict, List, Tuple, Union

import numpy as np
import torch

from ..io import BadImageError, check_on_bad_image, decode_image, read_image_bytes
from ..skips import SkippedImage

__all__ = [
    "load_classification_image",
    "ClassificationTrainDataset",
    "ClassificationTestDataset",
    "collate_classification",
]

logger = logging.getLogger(__name__)


def load_classification_image(d: Dict[str, Any]) -> torch.Tensor:
    """The dict's image as a uint8 RGB Tensor[3, H, W] (files decoded as
    resnet_det.data.read_image decodes them, EXIF orientation applied, left in the decoder's
    memory layout); BadImageError names the file and image id."""
    if "image" in d:
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
    file_name, image_id = d["file_name"], d.get("image_id")
    data = read_image_bytes(file_name, image_id=image_id)
    return decode_image(data, file_name, image_id=image_id)


def _read_or_skip(d: Dict[str, Any], on_bad_image: str) -> Union[torch.Tensor, Dict[str, Any]]:
    """load_classification_image(d); under on_bad_image="skip" an unreadable image is logged
    and the item a dataset returns in its place, ``{"skipped": SkippedImage}``, comes back
    instead."""
    try:
        return load_classification_image(d)
    except BadImageError as e:
        if on_bad_image == "stop":
            raise
        logger.warning("Skipping unreadable image (DATALOADER.ON_BAD_IMAGE=skip): %s", e)
        return {"skipped": SkippedImage(e.reason, str(e.path), d.get("image_id"))}


class ClassificationTrainDataset(torch.utils.data.Dataset):
    """Items are ``(index, seed)`` pairs, as resnet_det.data.samplers.TrainBatchSampler yields
    them: the image ``dicts[index]`` augmented with torch's generator seeded by ``seed`` (a
    function of the run's seed and the sample's position in the stream).

    Args:
        dicts: classification dataset dicts.
        transform: uint8 Tensor[3, H, W] -> model input (random ops draw from torch).
        on_bad_image: "stop" raises BadImageError; "skip" logs it and returns
            ``{"skipped": SkippedImage}``.
    """

    def __init__(
        self, dicts: List[Dict[str, Any]], *, transform: Callable, on_bad_image: str = "stop"
    ):
        if not dicts:
            raise ValueError("ClassificationTrainDataset: the dataset is empty")
        check_on_bad_image(on_bad_image)
        self.dicts = dicts
        self.transform = transform
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, item: Tuple[int, int]) -> Dict[str, Any]:
        index, seed = item
        d = self.dicts[index]
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


def collate_classification(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stacks images and labels; items skipped as unreadable are listed under "skipped".
    Images of different sizes (the multi-scale test) stay a list."""
    kept = [it for it in items if "skipped" not in it]
    batch: Dict[str, Any] = {"skipped": [it["skipped"] for it in items if "skipped" in it]}
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
