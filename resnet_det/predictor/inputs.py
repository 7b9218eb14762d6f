"""What the predictor and tools/predict.py accept as images, and how it becomes a tensor.

``to_image_tensor`` turns one input into a uint8 [3, H, W] tensor in the detector's channel
order (INPUT.FORMAT): a file path (read by ``resnet_det.data.io.read_image``, the reader of the
datasets: EXIF orientation applied), a PIL image (EXIF orientation applied too), an H x W x 3
uint8 array or a [3, H, W] tensor (both already in INPUT.FORMAT order; detectron2's
DefaultPredictor always takes BGR arrays instead). Files and PIL images of any mode become
8-bit RGB as the datasets' images do (resnet_det.data.io: palettes expanded, grey repeated,
alpha dropped, 16-bit scaled to 8 bits) and a note naming the conversion is logged; arrays and
tensors with one channel (grey) or four (an alpha channel) are converted to three channels
likewise (docs/deployment.md, "Predicting").

``expand_inputs`` turns tools/predict.py's ``--input`` values (files, globs, folders) into a
list of files, naming each value that matches nothing.
"""

import glob
import logging
import os
from typing import Any, List, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps

from ..data.io import (
    BadImageError,
    MissingImageError,
    conversion_note,
    decode_image,
    pil_to_rgb,
    probe_image,
    read_image_bytes,
    to_format,
)

__all__ = [
    "to_image_tensor",
    "expand_inputs",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "describe_input",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def describe_input(image: Any, index: int = 0) -> str:
    """How messages name an input: its path, or its type and position in the batch."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return f"input {index} ({type(image).__name__})"


def _rgb_array(img: Image.Image, name: str) -> np.ndarray:
    try:
        arr = pil_to_rgb(img)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from e
    note = conversion_note(img.mode)
    if note:
        logger.info("%s has mode %s: %s", name, img.mode, note)
    return arr


def _without_dataset_hint(error: BadImageError) -> BadImageError:
    """The reader's error without its advice about datasets (DATALOADER.ON_BAD_IMAGE), which
    does not apply to an image given to the predictor."""
    message = str(error).split("; replace or remove it")[0]
    return type(error)(message, path=error.path, image_id=error.image_id)


def _from_path(path: str, fmt: str) -> torch.Tensor:
    try:
        return _read_path(path, fmt)
    except BadImageError as e:
        raise _without_dataset_hint(e) from e


def _read_path(path: str, fmt: str) -> torch.Tensor:
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise BadImageError.at(path, "it is a folder, not an image file")
        raise MissingImageError.at(path, "the file does not exist")
    data = read_image_bytes(path)
    header = probe_image(data, path)
    image = to_format(decode_image(data, path, header=header), fmt)
    note = conversion_note(header.mode)
    if note:
        logger.info("%s has mode %s: %s", path, header.mode, note)
    return image


def _from_array(arr: np.ndarray, name: str) -> torch.Tensor:
    if arr.dtype != np.uint8:
        raise ValueError(f"{name}: an image array must be uint8 (0-255), got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{name}: an image array must be H x W x 3 (or H x W, H x W x 1, "
            f"H x W x 4), got shape {arr.shape}"
        )
    if arr.shape[2] != 3:
        logger.info(
            "%s has %d channel(s): converted to 3 channels%s",
            name,
            arr.shape[2],
            " (alpha dropped)" if arr.shape[2] == 4 else " (grey repeated)",
        )
        arr = arr[:, :, :3] if arr.shape[2] == 4 else np.repeat(arr, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _from_tensor(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"{name}: an image tensor must be [3, H, W] (or [1, H, W], [4, H, W]), "
            f"got shape {tuple(t.shape)}"
        )
    if t.dtype != torch.uint8:
        if t.is_floating_point() and float(t.max()) <= 1.0 and t.numel():
            raise ValueError(
                f"{name}: a float image tensor must hold 0-255 values like the "
                "uint8 images the detector was trained on; this one is within "
                "[0, 1] (multiply by 255)"
            )
        t = t.round().clamp(0, 255).to(torch.uint8)
    if t.shape[0] != 3:
        logger.info("%s has %d channel(s): converted to 3 channels", name, t.shape[0])
        t = t[:3] if t.shape[0] == 4 else t.expand(3, -1, -1)
    return t.cpu().contiguous()


def to_image_tensor(image: Any, fmt: str, index: int = 0) -> torch.Tensor:
    """One input image as a uint8 [3, H, W] tensor in channel order ``fmt`` ("BGR"/"RGB").

    Raises:
        BadImageError: a path that is missing (MissingImageError), empty or not an image; the
            message names the file.
        ValueError: an array or tensor of the wrong shape or type (named by its position).
        TypeError: anything else.
    """
    name = describe_input(image, index)
    if isinstance(image, (str, os.PathLike)):
        return _from_path(os.fspath(image), fmt)
    if isinstance(image, Image.Image):
        arr = _rgb_array(ImageOps.exif_transpose(image), name)
        return torch.from_numpy(
            np.ascontiguousarray((arr[:, :, ::-1] if fmt == "BGR" else arr).transpose(2, 0, 1))
        )
    if isinstance(image, np.ndarray):
        return _from_array(image, name)
    if isinstance(image, torch.Tensor):
        return _from_tensor(image, name)
    raise TypeError(
        f"{name}: expected a file path, a PIL image, an H x W x 3 uint8 array or a "
        f"[3, H, W] tensor, got {type(image).__name__}"
    )


def expand_inputs(values: Sequence[str]) -> Tuple[List[str], List[str]]:
    """--input values -> (files in order, messages for values that matched nothing).

    A folder gives its image and video files (by extension, sorted, not recursive); a glob
    pattern its matches (sorted); anything else is taken as a file name as given, so that a
    missing or unreadable file is reported by name when it is read.
    """
    files: List[str] = []
    problems: List[str] = []
    for value in values:
        if os.path.isdir(value):
            found = sorted(
                os.path.join(value, f)
                for f in os.listdir(value)
                if f.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
            )
            if not found:
                problems.append(
                    f"{value}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)})"
                )
            files.extend(found)
        elif glob.has_magic(value):
            found = sorted(glob.glob(value))
            if not found:
                problems.append(f"{value}: the pattern matches no file")
            files.extend(found)
        else:
            files.append(value)
    return files, problems
