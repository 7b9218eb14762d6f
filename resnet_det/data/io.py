"""Where datasets live and how an image file becomes a tensor, for every task.

One reader (``read_image``: EXIF orientation applied, BGR or RGB), one ``datasets_root`` and one
error type for an image that cannot be read, so that detection and classification read the
same file the same way and fail the same way (docs/datasets.md, "Decoding"). The error types
(resnet_det.data.skips) and ``datasets_root`` (resnet_det.data.paths) are defined without
torch and are also importable from here.

Decoding: JPEG, PNG and WebP with TorchCodec's decoders (libjpeg-turbo, libpng, libwebp; no
FFmpeg needed), which decode straight into a tensor; every other format (GIF, BMP, TIFF, PPM,
...) with Pillow. Every mode becomes 8-bit RGB: grey is repeated, palettes expanded, alpha
dropped, CMYK converted as Pillow does, 16-bit samples scaled by 255 / 65535 and rounded (not
clipped); 32-bit integer and floating-point pixels, whose 8-bit scale is not defined, are
refused naming the file. The pixels are those Pillow's ``convert("RGB")`` gives for every
8-bit mode (tests/data/test_io.py). ``decode_jpegs`` decodes a batch of JPEGs in one call,
on a GPU with nvJPEG (the loaders' ``decode_device``).
"""

import io
import re
import struct
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from PIL import Image, ImageMode, ImageOps

from .paths import datasets_root
from .skips import (
    ON_BAD_IMAGE_CHOICES,
    BadImageError,
    ImageSizeError,
    MissingImageError,
    check_on_bad_image,
)

try:
    from torchcodec.decoders import decode_jpeg, decode_png, decode_webp
except (ImportError, OSError, RuntimeError) as e:  # a missing package or shared library
    # Reported when an image is first decoded (_decoders), so that what needs no image
    # (building models, exporting) still imports.
    _TORCHCODEC_ERROR: Optional[BaseException] = e
else:
    _TORCHCODEC_ERROR = None

__all__ = [
    "SUPPORTED_FORMATS",
    "ON_BAD_IMAGE_CHOICES",
    "BadImageError",
    "MissingImageError",
    "ImageSizeError",
    "check_on_bad_image",
    "datasets_root",
    "ImageHeader",
    "read_image",
    "read_image_bytes",
    "probe_image",
    "decode_image",
    "decode_jpegs",
    "pil_to_rgb",
    "to_format",
    "conversion_note",
    "is_device_decodable",
]

SUPPORTED_FORMATS = ("BGR", "RGB")


class ImageHeader(NamedTuple):
    """What an image file's header says (read by Pillow without decoding the pixels).

    ``format`` is Pillow's name ("JPEG", "PNG", "WEBP", "GIF", ...), ``mode`` its pixel mode
    ("RGB", "L", "P", "RGBA", "CMYK", "I;16", ...); ``width``/``height`` are those of the image
    as displayed, after the EXIF orientation (which annotations refer to).
    """

    format: str
    mode: str
    width: int
    height: int


# EXIF orientation tag; orientations 5-8 turn the image by 90 degrees (width and height swap).
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)
# Pillow's modes of 16-bit grey samples (the byte order differs; numpy reads each as is).
_MODES_16 = ("I;16", "I;16L", "I;16B", "I;16N")
# Formats TorchCodec decodes here (Pillow's names); the others go through Pillow.
_TORCHCODEC_FORMATS = ("JPEG", "PNG", "WEBP")
# A C++ source location TorchCodec puts before its messages ("decode_rows, /.../X.cpp:287, ").
_SOURCE_LOCATION = re.compile(r"^[\w:]+, \S+\.(?:cpp|h):\d+, ")


def _decoders():
    if _TORCHCODEC_ERROR is not None:
        raise ImportError(
            f"resnet_det decodes JPEG, PNG and WebP images with TorchCodec, which could not "
            f"be loaded ({type(_TORCHCODEC_ERROR).__name__}: {_TORCHCODEC_ERROR}); install the "
            f"torchcodec release built for your torch (pip install 'torchcodec>=0.17', "
            f"torchcodec's README lists the pairs). Its image decoders need no FFmpeg."
        ) from _TORCHCODEC_ERROR
    return decode_jpeg, decode_png, decode_webp


def read_image_bytes(file_name: str, *, image_id: Any = None) -> torch.Tensor:
    """The encoded bytes of ``file_name`` as a 1-D uint8 tensor.

    Raises:
        MissingImageError: the file does not exist.
        BadImageError: it cannot be read, or it is empty.
    """
    try:
        with g_pathmgr.open(file_name, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise MissingImageError.at(file_name, "the file does not exist", image_id=image_id) from e
    except OSError as e:
        raise BadImageError.at(file_name, f"{type(e).__name__}: {e}", image_id=image_id) from e
    if not data:
        raise BadImageError.at(file_name, "the file is empty (0 bytes)", image_id=image_id)
    # A writable copy: torch.frombuffer of immutable bytes warns, and the tensor outlives them.
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _open(data: torch.Tensor) -> Image.Image:
    # Pillow reads only the header here; its decompression-bomb check (Image.MAX_IMAGE_PIXELS)
    # refuses absurd sizes before any decoder allocates them.
    return Image.open(io.BytesIO(data.numpy()))


def probe_image(data: torch.Tensor, file_name: str, *, image_id: Any = None) -> ImageHeader:
    """The header of the encoded image ``data`` (read_image_bytes), without decoding it.

    Raises:
        BadImageError: not an image Pillow recognises, or too large (naming ``file_name``).
    """
    try:
        with _open(data) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION)
            fmt, mode = img.format or "", img.mode
    # Pillow raises many types on a corrupt header (UnidentifiedImageError, SyntaxError,
    # DecompressionBombError, struct.error, ...): all of them mean "not a readable image".
    except Exception as e:
        raise BadImageError.at(file_name, f"{type(e).__name__}: {e}", image_id=image_id) from e
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageHeader(fmt, mode, width, height)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """An 8-bit H x W x 3 RGB array of a Pillow image (EXIF orientation not applied).

    16-bit grey (modes I;16*) is scaled by 255 / 65535 and rounded, as TorchCodec scales 16-bit
    PNGs; every other mode is Pillow's ``convert("RGB")`` (grey repeated, palette expanded,
    alpha dropped, CMYK converted).

    Raises:
        ValueError: 32-bit integer or floating-point pixels (modes I, F), which have no
            defined 8-bit scale, or a mode Pillow cannot convert to RGB.
    """
    if img.mode in _MODES_16:
        grey = np.asarray(img).astype(np.uint32)
        # round(v * 255 / 65535) = round(v / 257) = floor((v + 128) / 257) for integers.
        grey = ((grey + 128) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("I", "F"):
        kind = "32-bit integer" if img.mode == "I" else "floating-point"
        raise ValueError(
            f"{kind} pixels (Pillow mode {img.mode}) have no defined 8-bit scale; save the "
            f"image as 8- or 16-bit"
        )
    return np.array(img.convert("RGB"))  # a writable copy (torch tensors share it)


def conversion_note(mode: str) -> Optional[str]:
    """What decoding does to an image of Pillow mode ``mode`` to make it 8-bit RGB, for a log
    line (tools/predict.py); None for RGB."""
    if mode == "RGB":
        return None
    if mode in _MODES_16:
        return "16-bit grey scaled to 8 bits (x 255 / 65535, rounded) and repeated to 3 channels"
    alpha = any(band in ("A", "a") for band in ImageMode.getmode(mode).bands)
    return "converted to 3-channel RGB" + (" (alpha dropped)" if alpha else "")


def _decode_pil(data: torch.Tensor) -> torch.Tensor:
    with _open(data) as img:
        img.load()  # decodes the whole file: a truncated or corrupt one fails here
        rgb = pil_to_rgb(ImageOps.exif_transpose(img))
    return torch.from_numpy(rgb).permute(2, 0, 1)


def _decode_torchcodec(data: torch.Tensor, fmt: str) -> torch.Tensor:
    jpeg, png, webp = _decoders()
    if fmt == "JPEG":
        return jpeg(data, mode="RGB")
    if fmt == "PNG":
        return png(data, mode="RGB")  # 16-bit samples scaled by 255 / 65535, rounded
    image = webp(data, mode="RGB")
    # An animated WebP gives [N, 3, H, W]: its first frame, as Pillow opens it.
    return image[0] if image.dim() == 4 else image


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {_SOURCE_LOCATION.sub('', str(e))}"


# JPEG start-of-frame markers (they carry the size): C0-CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])


def _sniff(b: memoryview) -> Optional[str]:
    """Pillow's format name of a file TorchCodec decodes, from its signature; else None."""
    if b[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "WEBP"
    return None


def _declared_size(b: memoryview, fmt: str) -> Optional[Tuple[int, int]]:
    """(width, height) the header of a JPEG, PNG or WebP declares, or None if it cannot be
    read here (Pillow then reads the header). The pixels are not trusted to match: the size
    only bounds what a decoder is about to allocate."""
    try:
        if fmt == "PNG":
            return struct.unpack_from(">II", b, 16) if b[12:16] == b"IHDR" else None
        if fmt == "WEBP":
            chunk = b[12:16]
            if chunk == b"VP8X":
                w, h = int.from_bytes(b[24:27], "little"), int.from_bytes(b[27:30], "little")
                return w + 1, h + 1
            if chunk == b"VP8L" and b[20] == 0x2F:
                bits = int.from_bytes(b[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":
                w, h = struct.unpack_from("<HH", b, 26)
                return w & 0x3FFF, h & 0x3FFF
            return None
        i = 2  # JPEG: walk the marker segments to the start of frame
        while i + 9 <= len(b):
            if b[i] != 0xFF:
                return None
            marker = b[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker in _JPEG_STANDALONE:
                i += 2
            elif marker in _JPEG_SOF:
                h, w = struct.unpack_from(">HH", b, i + 5)
                return w, h
            else:
                i += 2 + struct.unpack_from(">H", b, i + 2)[0]
    except (struct.error, IndexError):
        pass
    return None


def _check_size(size: Tuple[int, int], file_name: str, image_id: Any) -> None:
    """Pillow's decompression-bomb rule (more than 2 x Image.MAX_IMAGE_PIXELS pixels: refused)
    for the files TorchCodec decodes, before it allocates them."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > 2 * limit:
        raise BadImageError.at(
            file_name,
            f"its header declares {size[0]}x{size[1]} pixels, more than twice Pillow's "
            f"decompression-bomb limit PIL.Image.MAX_IMAGE_PIXELS ({limit})",
            image_id=image_id,
        )


def decode_image(
    data: torch.Tensor,
    file_name: str,
    *,
    image_id: Any = None,
    header: Optional[ImageHeader] = None,
) -> torch.Tensor:
    """Decode the encoded image ``data`` into a uint8 RGB tensor [3, H, W], EXIF orientation
    applied (module doc: formats, modes). The tensor is as the decoder leaves it, often
    channels-last in memory (which torchvision's resize takes fastest); ``to_format`` gives
    a contiguous one in the detector's channel order.

    Args:
        data: the file's bytes (read_image_bytes).
        file_name: named in errors.
        image_id: the dataset's id of the image, named in errors.
        header: probe_image(data) if already read.

    Raises:
        BadImageError: ``data`` cannot be decoded (not an image, truncated, corrupt, a mode
            without an 8-bit picture, larger than Pillow's decompression-bomb limit).
    """
    if header is not None:
        fmt = header.format
    else:
        # The signature and the declared size are read here, in a few microseconds (Pillow's
        # parse of the whole header costs about 2 % of a decode); anything else is Pillow's.
        b = memoryview(data.numpy())
        fmt = _sniff(b)
        size = None if fmt is None else _declared_size(b, fmt)
        if size is None:
            fmt = probe_image(data, file_name, image_id=image_id).format
        else:
            _check_size(size, file_name, image_id)
    try:
        if fmt in _TORCHCODEC_FORMATS:
            return _decode_torchcodec(data, fmt)
        return _decode_pil(data)
    except ImportError:
        raise
    # TorchCodec raises RuntimeError/ValueError; Pillow many types (see probe_image).
    except Exception as e:
        raise BadImageError.at(file_name, _reason(e), image_id=image_id) from e


def to_format(image: torch.Tensor, format: str, *, hflip: bool = False) -> torch.Tensor:
    """The RGB ``image`` [3, H, W] as a contiguous tensor in channel order ``format`` ("BGR" or
    "RGB"), flipped horizontally when ``hflip``: one pass over the pixels at most (none for a
    contiguous RGB image kept as it is)."""
    rgb = format == "RGB"
    if rgb and not hflip and image.is_contiguous():
        return image
    if image.device.type != "cpu":
        # flip() copies on the device (an index tensor would be a host-to-device copy).
        if hflip:
            image = image.flip(-1)
        if not rgb:
            image = image.flip(0)
        return image.contiguous()
    # numpy's strided copy of a channels-last uint8 image is 2-3x torch's (whose copy kernels
    # do not vectorise a stride of 3); the reversals ride on the same copy.
    arr = image.numpy()
    if hflip:
        arr = arr[:, :, ::-1]
    if not rgb:
        arr = arr[::-1]
    return torch.from_numpy(np.ascontiguousarray(arr))


def read_image(file_name: str, format: str = "BGR", *, image_id: Any = None) -> torch.Tensor:
    """Read ``file_name`` into a contiguous uint8 tensor [3, H, W] in ``format`` channel order.

    The EXIF orientation tag is applied (camera photos in COCO and ImageNet carry it), so
    height and width are those of the image as displayed, which is what annotations refer to.
    Every image mode gives 8-bit RGB (module doc) or a BadImageError.

    Args:
        file_name: image path (any iopath-supported path).
        format: "BGR" (MSRA / detectron2 weights) or "RGB" (torchvision weights).
        image_id: the dataset's id of the image, named in the error if it cannot be read.

    Raises:
        MissingImageError: the file does not exist (a BadImageError and FileNotFoundError).
        BadImageError: the file cannot be opened or decoded (empty, truncated, not an image,
            pixels without an 8-bit scale).
    """
    if format not in SUPPORTED_FORMATS:
        raise ValueError(f"read_image: format must be one of {SUPPORTED_FORMATS}, got {format!r}")
    data = read_image_bytes(file_name, image_id=image_id)
    return to_format(decode_image(data, file_name, image_id=image_id), format)


def is_device_decodable(header: ImageHeader) -> bool:
    """Whether the loaders send the image to ``decode_jpegs`` on a GPU: a colour (YCbCr) JPEG,
    what nvJPEG's batched decoder is made for; they decode any other file (grey or CMYK JPEG,
    PNG, ...) on the CPU in their workers."""
    return header.format == "JPEG" and header.mode == "RGB"


def decode_jpegs(
    datas: Sequence[torch.Tensor],
    file_names: Sequence[str],
    *,
    device: Union[str, torch.device] = "cpu",
    image_ids: Optional[Sequence[Any]] = None,
) -> List[Union[torch.Tensor, BadImageError]]:
    """Decode a batch of JPEGs (read_image_bytes) on ``device`` in one call: uint8 RGB
    tensors [3, H, W] with the EXIF orientation applied; on a CUDA device one nvJPEG call for
    the whole batch. A file that cannot be decoded gives its BadImageError in its place (the
    batch is then decoded file by file to tell which).

    Args:
        datas: the encoded files, on the CPU.
        file_names: their names, for errors.
        device: "cpu" or a CUDA device.
        image_ids: the images' dataset ids, for errors.

    Raises:
        RuntimeError: the device fails on a file the CPU decodes (the device's fault, not the
            file's: nothing is decoded elsewhere in its place).
    """
    jpeg = _decoders()[0]
    device = torch.device(device)
    ids = list(image_ids) if image_ids is not None else [None] * len(datas)
    try:
        return list(jpeg(list(datas), mode="RGB", device=device))
    except Exception:  # which file: one at a time
        pass
    out: List[Union[torch.Tensor, BadImageError]] = []
    for data, name, image_id in zip(datas, file_names, ids):
        try:
            out.append(jpeg([data], mode="RGB", device=device)[0])
            continue
        except Exception as e:
            device_error = e
        if device.type != "cpu":
            try:
                jpeg(data, mode="RGB")
            except Exception as e:
                device_error = e
            else:
                raise RuntimeError(
                    f"decoding {name} on {device} failed ({_reason(device_error)}), but it "
                    f"decodes on the CPU; set INPUT.DECODE_DEVICE '' to decode in the loader "
                    f"workers"
                ) from device_error
        out.append(BadImageError.at(name, _reason(device_error), image_id=image_id))
    return out
