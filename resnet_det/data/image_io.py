"""Reading images for detection: PIL, EXIF orientation applied, chosen channel order."""
import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from PIL import Image, ImageOps

__all__ = ["read_image", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = ("BGR", "RGB")


def read_image(file_name: str, format: str = "BGR") -> torch.Tensor:
    """Read ``file_name`` into a uint8 tensor [3, H, W] in ``format`` channel order.

    The EXIF orientation tag is applied (camera photos in COCO carry it), so height and width
    are those of the image as displayed, which is what the annotations refer to.

    Args:
        file_name: image path (any iopath-supported path).
        format: "BGR" (MSRA / detectron2 weights) or "RGB" (torchvision weights).

    Raises:
        FileNotFoundError: the file does not exist.
        OSError: the file cannot be decoded (message names the file).
    """
    if format not in SUPPORTED_FORMATS:
        raise ValueError(f"read_image: format must be one of {SUPPORTED_FORMATS}, got {format!r}")
    with g_pathmgr.open(file_name, "rb") as f:
        try:
            img = Image.open(f)
            img.load()
        except Exception as e:  # PIL raises several exception types on corrupt data
            raise OSError(f"cannot decode image {file_name}: {e}") from e
    img = ImageOps.exif_transpose(img).convert("RGB")
    arr = np.asarray(img)
    if format == "BGR":
        arr = arr[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
