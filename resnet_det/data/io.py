"""Where datasets live and how an image file becomes a tensor, for every task.

One ``read_image`` (EXIF orientation applied, BGR or RGB), one ``datasets_root`` and one
error type for an image that cannot be read, so that detection and classification read the
same file the same way and fail the same way (docs/datasets.md).
"""

import os
from typing import Any, Optional, Tuple, Type

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from PIL import Image, ImageOps

from ..utils.errors import DataError, MissingFileError

__all__ = [
    "SUPPORTED_FORMATS",
    "ON_BAD_IMAGE_CHOICES",
    "BadImageError",
    "MissingImageError",
    "ImageSizeError",
    "check_on_bad_image",
    "datasets_root",
    "read_image",
]

SUPPORTED_FORMATS = ("BGR", "RGB")
# DATALOADER.ON_BAD_IMAGE: "stop" raises (BadImageError for an image), "skip" leaves the image
# or annotation out, counts it and goes on (resnet_det.data.skips).
ON_BAD_IMAGE_CHOICES = ("stop", "skip")


class BadImageError(DataError):
    """An image (or a folder of images) that cannot be read: missing, truncated, empty or not
    an image. The message names the file and, where known, the image id.

    Constructed from the message alone, so that it survives pickling and the re-raise of
    errors from DataLoader worker processes (which rebuild an exception from its message);
    ``reason`` (a resnet_det.data.skips.IMAGE_REASONS entry) is therefore the class's.

    Args:
        message: the full message.
        path: the file or folder at fault.
        image_id: the dataset's id of the image, if known.
    """

    reason = "unreadable"

    def __init__(self, message: str, *, path: Optional[str] = None, image_id: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.image_id = image_id

    @classmethod
    def at(
        cls, path: str, reason: str, *, image_id: Any = None, kind: str = "image"
    ) -> "BadImageError":
        """The error for ``path``: "cannot read image PATH (image id ID): REASON; fix"."""
        where = f"{kind} {path}" + ("" if image_id is None else f" (image id {image_id})")
        return cls(
            f"cannot read {where}: {reason}; replace or remove it, or set "
            f"DATALOADER.ON_BAD_IMAGE skip to leave unreadable images out",
            path=path,
            image_id=image_id,
        )


class MissingImageError(BadImageError, MissingFileError):
    """A BadImageError for a file that does not exist (also a FileNotFoundError)."""

    reason = "missing"


class ImageSizeError(BadImageError):
    """The decoded image's size differs from the height/width its annotation records (so the
    boxes would be placed wrongly)."""

    reason = "size mismatch"

    @classmethod
    def mismatch(
        cls, path: str, size: Tuple[int, int], annotated: Tuple[int, int], *, image_id: Any = None
    ) -> "ImageSizeError":
        """The error for an image of ``size`` = (width, height) annotated as ``annotated``."""
        where = path + ("" if image_id is None else f" (image id {image_id})")
        return cls(
            f"image {where} is {size[0]}x{size[1]} (width x height, after EXIF "
            f"orientation) but its annotation says {annotated[0]}x{annotated[1]}; fix "
            f"the annotation's height/width (or the image), or set "
            f"DATALOADER.ON_BAD_IMAGE skip to leave such images out",
            path=path,
            image_id=image_id,
        )


def check_on_bad_image(
    value: str, key: str = "on_bad_image", error: Type[Exception] = ValueError
) -> str:
    """``value`` if it is an ON_BAD_IMAGE_CHOICES policy; else ``error`` naming ``key`` (a
    builder passes "DATALOADER.ON_BAD_IMAGE" and ConfigError)."""
    if value not in ON_BAD_IMAGE_CHOICES:
        raise error(f"{key} must be one of {ON_BAD_IMAGE_CHOICES}, got {value!r}")
    return value


def datasets_root() -> str:
    """The datasets folder: $RESNET_DET_DATASETS (``~`` expanded), default ./datasets.

    Read at each call rather than at import, so the variable can be set after
    ``import resnet_det``; the layouts under it are in docs/datasets.md.
    """
    return os.path.expanduser(os.environ.get("RESNET_DET_DATASETS", "./datasets"))


def read_image(file_name: str, format: str = "BGR", *, image_id: Any = None) -> torch.Tensor:
    """Read ``file_name`` into a uint8 tensor [3, H, W] in ``format`` channel order.

    The EXIF orientation tag is applied (camera photos in COCO and ImageNet carry it), so
    height and width are those of the image as displayed, which is what annotations refer to.

    Args:
        file_name: image path (any iopath-supported path).
        format: "BGR" (MSRA / detectron2 weights) or "RGB" (torchvision weights).
        image_id: the dataset's id of the image, named in the error if it cannot be read.

    Raises:
        MissingImageError: the file does not exist (a BadImageError and FileNotFoundError).
        BadImageError: the file cannot be opened or decoded (empty, truncated, not an image).
    """
    if format not in SUPPORTED_FORMATS:
        raise ValueError(f"read_image: format must be one of {SUPPORTED_FORMATS}, got {format!r}")
    try:
        f = g_pathmgr.open(file_name, "rb")
    except FileNotFoundError as e:
        raise MissingImageError.at(file_name, "the file does not exist", image_id=image_id) from e
    except OSError as e:
        raise BadImageError.at(file_name, f"{type(e).__name__}: {e}", image_id=image_id) from e
    with f:
        try:
            img = Image.open(f)
            # load() decodes the whole file, so a truncated or corrupt one fails here, by name.
            img.load()
            img = ImageOps.exif_transpose(img).convert("RGB")
        # PIL's decoders raise many types on corrupt data (OSError, SyntaxError, ValueError,
        # DecompressionBombError, struct.error, ...): all of them mean "not a readable image".
        except Exception as e:
            raise BadImageError.at(file_name, f"{type(e).__name__}: {e}", image_id=image_id) from e
    arr = np.asarray(img)
    if format == "BGR":
        arr = arr[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
