"""Decoding a batch on a device (INPUT.DECODE_DEVICE): the loader workers read the files, the
main process decodes each batch there and augments it there.

With INPUT.DECODE_DEVICE "cuda" a loader worker reads an image's bytes and its header (format,
mode, displayed size), draws the sample's random augmentation from that size, and sends the
bytes with the drawn parameters; the main process decodes the batch's JPEGs in one nvJPEG call
(resnet_det.data.io.decode_jpegs) and applies the parameters on the GPU. A file other than a
colour JPEG (PNG, WebP, grey or CMYK JPEG, ...) is decoded by the worker on the CPU, as without
the option,
and its pixels are augmented on the GPU with the others. The decoding and augmenting run in a
thread on their own CUDA stream, one batch ahead of the training step. With a CPU device the
same path runs on the CPU: it gives the tensors of the workers' decoding exactly, which is how
the path is tested without a GPU (tests/data/test_device_decode.py).

Each task supplies the step that finishes a batch (``finish(batch, device)``):
resnet_det.data.classification.dataset.ClassificationBatchFinisher and
resnet_det.data.detection.mapper.DetectionBatchFinisher.
"""

import contextlib
import itertools
import logging
import queue
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch

from ..config import ConfigError
from .io import (
    BadImageError,
    decode_image,
    decode_jpegs,
    is_device_decodable,
    probe_image,
    read_image_bytes,
)
from .skips import SkippedImage

__all__ = [
    "resolve_decode_device",
    "read_for_device",
    "decode_on_device",
    "skip_or_raise",
    "DeviceDecodingLoader",
]

logger = logging.getLogger(__name__)

# The keys a worker adds to a sample for the main process (popped there).
ENCODED, PIXELS, DECODED_SIZE = "encoded", "pixels", "decoded_size"


def resolve_decode_device(value: str, key: str = "INPUT.DECODE_DEVICE") -> Optional[torch.device]:
    """None for "" (the workers decode), else the device of ``value`` ("cuda", "cuda:1",
    "cpu"); ConfigError naming ``key`` for anything else, or CUDA without a GPU."""
    if not value:
        return None
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"{key} must be '' or a device such as 'cuda', got {value!r}") from e
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key} must be '', 'cpu' or a CUDA device, got {value!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is {value!r} but no CUDA GPU is available; set it to ''")
    return device


def read_for_device(file_name: str, *, image_id: Any = None) -> Tuple[Dict[str, Any], int, int]:
    """What a worker sends for the image ``file_name`` and its displayed (height, width): the
    bytes ({"encoded": ...}) of a JPEG the device decodes, else the pixels decoded here
    ({"pixels": uint8 RGB [3, H, W]}).

    Raises:
        BadImageError: the file is missing or its header unreadable (naming it).
    """
    data = read_image_bytes(file_name, image_id=image_id)
    header = probe_image(data, file_name, image_id=image_id)
    if is_device_decodable(header):
        return {ENCODED: data}, header.height, header.width
    pixels = decode_image(data, file_name, image_id=image_id, header=header)
    return {PIXELS: pixels}, int(pixels.shape[-2]), int(pixels.shape[-1])


def decode_on_device(
    items: List[Dict[str, Any]], device: torch.device
) -> List[Union[torch.Tensor, BadImageError]]:
    """The uint8 RGB image [3, H, W] of each item (a sample holding what read_for_device gave,
    its "decoded_size", "file_name" and "image_id"), on ``device``: every "encoded" JPEG in one
    decode_jpegs call. An image that cannot be decoded, or whose decoded size is not the one
    its header gave (the size the augmentation was drawn for), gives its BadImageError."""
    encoded = [i for i, it in enumerate(items) if ENCODED in it]
    out: List[Any] = [None] * len(items)
    if encoded:
        decoded = decode_jpegs(
            [items[i][ENCODED] for i in encoded],
            [items[i]["file_name"] for i in encoded],
            device=device,
            image_ids=[items[i].get("image_id") for i in encoded],
        )
        for i, image in zip(encoded, decoded):
            out[i] = image
    for i, it in enumerate(items):
        if PIXELS in it:
            out[i] = it[PIXELS].to(device, non_blocking=True)
        image = out[i]
        if isinstance(image, torch.Tensor) and tuple(image.shape[-2:]) != tuple(it[DECODED_SIZE]):
            h, w = it[DECODED_SIZE]
            out[i] = BadImageError.at(
                it["file_name"],
                f"it decodes to {image.shape[-1]}x{image.shape[-2]} (width x height) but its "
                f"header says {w}x{h}",
                image_id=it.get("image_id"),
            )
    return out


def skip_or_raise(error: BadImageError, on_bad_image: str) -> SkippedImage:
    """Raise ``error`` under "stop"; under "skip" log it and return its SkippedImage (the
    image leaves the batch, which is one image shorter: there is no seed-drawn replacement
    once the batch is made)."""
    if on_bad_image == "stop":
        raise error
    logger.warning("Skipping image decoded on the device (DATALOADER.ON_BAD_IMAGE=skip): %s", error)
    return SkippedImage(error.reason, str(error.path), error.image_id)


_END = object()


class DeviceDecodingLoader:
    """Iterates ``loader`` and yields ``finish(batch, device)`` of each batch.

    On a CUDA device the batches are finished in a thread on a stream of their own, ``depth``
    batches ahead (nvJPEG synchronises the stream it decodes on, which must not be the
    training step's); the consumer's stream waits for each batch's work before using it. The
    batches and their order are those of ``loader``, which is iterated in the consumer's
    thread.

    Args:
        loader: the DataLoader of undecoded batches.
        finish: ``finish(batch, device)`` -> the batch with its images decoded on ``device``.
        device: where to decode ("cuda" is the current CUDA device when iterating starts).
        prefetch: finish in a thread ahead of the consumer (default: on CUDA devices).
        depth: finished batches held ready when prefetching.
    """

    def __init__(
        self,
        loader: Iterable,
        finish: Callable[[Any, torch.device], Any],
        *,
        device: Union[str, torch.device],
        prefetch: Optional[bool] = None,
        depth: int = 2,
    ) -> None:
        self.loader = loader
        self.finish = finish
        self.device = torch.device(device)
        self.prefetch = self.device.type == "cuda" if prefetch is None else bool(prefetch)
        self.depth = int(depth)

    @property
    def dataset(self):
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def _resolved_device(self) -> torch.device:
        if self.device.type == "cuda" and self.device.index is None:
            return torch.device("cuda", torch.cuda.current_device())
        return self.device

    def __iter__(self) -> Iterator:
        device = self._resolved_device()
        if not self.prefetch:
            for batch in self.loader:
                yield self.finish(batch, device)
            return
        yield from self._prefetched(device)

    def _prefetched(self, device: torch.device) -> Iterator:
        # The DataLoader is iterated here, in the consumer's thread (its workers, and any
        # random draws a worker-less loader makes from torch's global generator, stay where
        # they are without the option); the finishing thread only decodes and applies drawn
        # parameters, which draws nothing.
        todo: queue.Queue = queue.Queue()
        done: queue.Queue = queue.Queue()

        def work() -> None:
            cuda = device.type == "cuda"
            if cuda:
                torch.cuda.set_device(device)  # the current device is per thread
            stream = torch.cuda.Stream(device) if cuda else None
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                while True:
                    batch = todo.get()
                    if batch is _END:
                        return
                    try:
                        out = self.finish(batch, device)
                    except BaseException as e:  # raised again in the consumer
                        done.put((None, None, e))
                        continue
                    event = None
                    if cuda:
                        event = torch.cuda.Event()
                        event.record(stream)
                    done.put((out, event, None))

        thread = threading.Thread(target=work, name="resnet_det-device-decode", daemon=True)
        thread.start()
        batches = iter(self.loader)
        pending = 0
        try:
            for batch in itertools.islice(batches, self.depth):
                todo.put(batch)
                pending += 1
            while pending:
                out, event, error = done.get()
                pending -= 1
                if error is not None:
                    raise error
                for batch in itertools.islice(batches, 1):
                    todo.put(batch)
                    pending += 1
                if event is not None:
                    current = torch.cuda.current_stream(device)
                    current.wait_event(event)
                    _record_stream(out, current)
                yield out
        finally:
            todo.put(_END)


def _record_stream(obj: Any, stream) -> None:
    """Tell the caching allocator that the tensors in ``obj`` (made on the decoding stream)
    are used on ``stream``, so their memory is not reused before that stream is done."""
    if isinstance(obj, torch.Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, dict):
        for v in obj.values():
            _record_stream(v, stream)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _record_stream(v, stream)
