"""DATALOADER.ON_BAD_IMAGE applied to data faults, and the counts of what it leaves out.

The policy (docs/datasets.md "Bad data", docs/reliability.md): a fault confined to one image
or one annotation stops the run under "stop" (an error naming the file, the id and the fix)
and is left out and counted under "skip"; a fault of a whole file (malformed json, a missing
split or batch file, the category list) and a dataset left empty always stop. Boxes with no
area or lying entirely outside their image are dropped and counted under both policies:
they cannot be trained on, and detectron2 and mmdetection drop them as well.

Faults are met at two moments. Readers meet the annotation faults when a dataset is loaded
(:class:`FaultPolicy`, one summary line per dataset); the image faults (missing, unreadable,
size mismatch) are met when an image is decoded, in a loader worker, which hands a
:class:`SkippedImage` on with the batch. :class:`SkipCountingLoader` adds both up for the
trainer, which writes them to metrics.json.

The error types of an image that cannot be read (:class:`BadImageError` and its kinds) and the
policy's choices are defined here, apart from the decoding (resnet_det.data.io raises them),
so that the readers and the dataset names import no torch.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Type

from ..utils.errors import DataError, MissingFileError, UserError

__all__ = [
    "ON_BAD_IMAGE_CHOICES",
    "BadImageError",
    "MissingImageError",
    "ImageSizeError",
    "check_on_bad_image",
    "IMAGE_REASONS",
    "ANNOTATION_REASONS",
    "SkippedImage",
    "SkipCounts",
    "FaultRecord",
    "FaultPolicy",
    "SkipCountingLoader",
    "skipped_in_batch",
]

logger = logging.getLogger(__name__)

# DATALOADER.ON_BAD_IMAGE: "stop" raises (BadImageError for an image), "skip" leaves the image
# or annotation out, counts it and goes on.
ON_BAD_IMAGE_CHOICES = ("stop", "skip")


class BadImageError(DataError):
    """An image (or a folder of images) that cannot be read: missing, truncated, empty or not
    an image. The message names the file and, where known, the image id.

    Constructed from the message alone, so that it survives pickling and the re-raise of
    errors from DataLoader worker processes (which rebuild an exception from its message);
    ``reason`` (an IMAGE_REASONS entry) is therefore the class's.

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


# Why an image was left out: its file is missing, cannot be decoded (empty, truncated, not an
# image), differs in size from its annotation, shares its id with another image, or its own
# annotation record is missing or malformed (a VOC xml, a COCO "images" entry), or its label is
# not a known class (a CIFAR label, an ImageNet folder not in the class list); "unreadable
# folder" counts an ImageNet class folder that cannot be listed (its images are unknown);
# "missing mask": an object without a mask in a Mask R-CNN training set (MODEL.MASK_ON);
# "other" is a custom mapper's None.
IMAGE_REASONS = (
    "missing",
    "unreadable",
    "size mismatch",
    "duplicate id",
    "bad annotation",
    "unknown category",
    "unreadable folder",
    "missing mask",
    "other",
)
# Why one annotation was dropped (its image stays); "bad mask": its "segmentation" cannot be
# used (resnet_det/data/segmentation.py).
ANNOTATION_REASONS = (
    "unknown category",
    "unknown image",
    "malformed",
    "duplicate id",
    "bad mask",
    "degenerate box",
    "outside image",
)

_SKIP_HINT = "or set DATALOADER.ON_BAD_IMAGE skip to leave it out and count it"


class SkippedImage(NamedTuple):
    """Stands in for an image left out while loading under on_bad_image="skip" (what a
    mapper or a classification dataset returns instead of the sample)."""

    reason: str
    file_name: str
    image_id: Any = None


class SkipCounts:
    """Images and annotations left out, by reason (IMAGE_REASONS, ANNOTATION_REASONS)."""

    def __init__(self) -> None:
        self.images: Counter = Counter()
        self.annotations: Counter = Counter()

    def add_image(self, reason: str, n: int = 1) -> None:
        self.images[reason] += n

    def add_annotation(self, reason: str, n: int = 1) -> None:
        self.annotations[reason] += n

    @classmethod
    def from_dicts(cls, images: Dict[str, int], annotations: Dict[str, int]) -> "SkipCounts":
        out = cls()
        out.images.update(images)
        out.annotations.update(annotations)
        return out

    def merge(self, other: "SkipCounts") -> "SkipCounts":
        """Add ``other``'s counts to these; returns self."""
        self.images.update(other.images)
        self.annotations.update(other.annotations)
        return self

    @property
    def num_images(self) -> int:
        return sum(self.images.values())

    @property
    def num_annotations(self) -> int:
        return sum(self.annotations.values())

    def __bool__(self) -> bool:
        return bool(self.num_images or self.num_annotations)

    def summary(self) -> str:
        """ "skipped 3 images: 2 unreadable, 1 size mismatch; dropped 4 annotations: 4
        degenerate box" (only the parts that are not zero; "" when nothing was left out)."""
        parts = []
        for verb, noun, counter in (
            ("skipped", "image", self.images),
            ("dropped", "annotation", self.annotations),
        ):
            n = sum(counter.values())
            if n:
                detail = ", ".join(
                    f"{c} {r}" for r, c in sorted(counter.items(), key=lambda rc: (-rc[1], rc[0]))
                )
                parts.append(f"{verb} {n} {noun}{'s' if n != 1 else ''}: {detail}")
        return "; ".join(parts)

    def scalars(self, prefix: str = "data/") -> Dict[str, int]:
        """metrics.json entries: "data/skipped_images", "data/skipped_images/<reason>",
        "data/dropped_annotations", "data/dropped_annotations/<reason>" (spaces become _)."""
        out = {
            f"{prefix}skipped_images": self.num_images,
            f"{prefix}dropped_annotations": self.num_annotations,
        }
        for name, counter in (
            ("skipped_images", self.images),
            ("dropped_annotations", self.annotations),
        ):
            for reason, n in counter.items():
                out[f"{prefix}{name}/{reason.replace(' ', '_')}"] = n
        return out


@dataclass
class FaultRecord:
    """What one read of a file met, whatever the policy: enough to apply either policy to it
    again without reading the file (a reader's cached result, resnet_det.data.dataset_cache).

    Attributes:
        first: the first image or annotation fault as (kind "image" or "annotation", reason,
            message, fix, image id): what "stop" raises; None if there was none.
        images, annotations: counts by reason (dropped boxes included).
        image_ids: the first image ids named in the summary line.
        num_clipped: boxes clipped to their image.
    """

    first: Optional[tuple] = None
    images: Dict[str, int] = field(default_factory=dict)
    annotations: Dict[str, int] = field(default_factory=dict)
    image_ids: List[Any] = field(default_factory=list)
    num_clipped: int = 0

    def to_json(self) -> Dict[str, Any]:
        return {
            "first": list(self.first) if self.first is not None else None,
            "images": dict(self.images),
            "annotations": dict(self.annotations),
            "image_ids": list(self.image_ids),
            "num_clipped": self.num_clipped,
        }

    @classmethod
    def from_json(cls, obj: Any) -> "FaultRecord":
        """The record :meth:`to_json` gave; ValueError if ``obj`` is not one (a damaged cache
        file)."""
        try:
            first = obj["first"]
            if first is not None:
                kind, reason, message, fix, _ = first
                reasons = IMAGE_REASONS if kind == "image" else ANNOTATION_REASONS
                if kind not in ("image", "annotation") or reason not in reasons:
                    raise ValueError(f"unknown fault {kind!r} {reason!r}")
                if not (isinstance(message, str) and isinstance(fix, str)):
                    raise ValueError("fault message and fix must be strings")
                first = tuple(first)
            counts = {}
            for key, known in (("images", IMAGE_REASONS), ("annotations", ANNOTATION_REASONS)):
                counts[key] = {str(r): int(n) for r, n in obj[key].items()}
                if not set(counts[key]) <= set(known) or min(counts[key].values(), default=1) < 1:
                    raise ValueError(f"bad {key} counts {obj[key]!r:.100}")
            image_ids, num_clipped = list(obj["image_ids"]), obj["num_clipped"]
            if type(num_clipped) is not int or num_clipped < 0 or len(image_ids) > 5:
                raise ValueError("bad image ids or clipped count")
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a fault record: {e}") from None
        return cls(first, counts["images"], counts["annotations"], image_ids, num_clipped)


class FaultPolicy:
    """Applies ``on_bad_image`` to the faults one dataset read meets, counting what it
    leaves out, and logs one summary line for the dataset.

    Args:
        source: the file or folder read, named in every error and in the summary.
        on_bad_image: "stop" or "skip".
        counts: where to add the counts (a loader builder's, to reach metrics.json);
            default a fresh SkipCounts.
    """

    def __init__(
        self, source: str, on_bad_image: str = "stop", counts: Optional[SkipCounts] = None
    ) -> None:
        self.source = source
        self.on_bad_image = check_on_bad_image(on_bad_image)
        self.counts = SkipCounts()
        self._into = counts
        self._ids: List[Any] = []
        self.num_clipped = 0
        self._first: Optional[tuple] = None

    def _note(self, image_id: Any) -> None:
        if image_id is not None and len(self._ids) < 5 and image_id not in self._ids:
            self._ids.append(image_id)

    def image(
        self,
        reason: str,
        message: str,
        *,
        image_id: Any = None,
        fix: str = "fix or remove it",
        error: Type[UserError] = DataError,
    ) -> None:
        """One image cannot be used: raise ``error`` under "stop" ("SOURCE: MESSAGE; FIX, or
        set DATALOADER.ON_BAD_IMAGE skip ..."), else count it under ``reason``."""
        if self.on_bad_image == "stop":
            raise error(f"{self.source}: {message}; {fix}, {_SKIP_HINT}")
        if self._first is None:
            self._first = ("image", reason, message, fix, image_id)
        self.counts.add_image(reason)
        self._note(image_id)

    def annotation(
        self, reason: str, message: str, *, image_id: Any = None, fix: str = "fix or remove it"
    ) -> None:
        """One annotation cannot be used: raise under "stop", else count it (its image
        stays)."""
        if self.on_bad_image == "stop":
            raise DataError(f"{self.source}: {message}; {fix}, {_SKIP_HINT}")
        if self._first is None:
            self._first = ("annotation", reason, message, fix, image_id)
        self.counts.add_annotation(reason)
        self._note(image_id)

    def drop(self, reason: str, *, image_id: Any = None) -> None:
        """An annotation dropped under both policies (a box with no area or outside its
        image): counted, never raised."""
        self.counts.add_annotation(reason)
        self._note(image_id)

    def record(self) -> FaultRecord:
        """What this policy met so far (read it under "skip": "stop" raises at the first
        fault)."""
        return FaultRecord(
            self._first,
            dict(self.counts.images),
            dict(self.counts.annotations),
            list(self._ids),
            self.num_clipped,
        )

    def replay(self, record: FaultRecord) -> None:
        """Apply this policy to what another read of the same file met: under "stop" its first
        image or annotation fault raises as it did there; otherwise its counts are added."""
        if record.first is not None and self.on_bad_image == "stop":
            kind, reason, message, fix, image_id = record.first
            report = self.image if kind == "image" else self.annotation
            report(reason, message, image_id=image_id, fix=fix)
        if self._first is None:
            self._first = record.first
        self.counts.merge(SkipCounts.from_dicts(record.images, record.annotations))
        for image_id in record.image_ids:
            self._note(image_id)
        self.num_clipped += record.num_clipped

    def finish(self, num_images: int) -> None:
        """Log the summary line, add the counts to ``counts``, and raise DataError if no
        image is left (an empty dataset always stops)."""
        if self.counts:
            shown = ", ".join(str(i) for i in self._ids)
            logger.warning(
                "%s: %s (DATALOADER.ON_BAD_IMAGE=%s; image ids %s%s)",
                self.source,
                self.counts.summary(),
                self.on_bad_image,
                shown,
                ", ..." if len(self._ids) == 5 else "",
            )
        if self.num_clipped:
            logger.info(
                "%s: clipped %d boxes partly outside their image", self.source, self.num_clipped
            )
        if self._into is not None:
            self._into.merge(self.counts)
        if num_images == 0:
            left = (
                f" after leaving out what was bad ({self.counts.summary()})" if self.counts else ""
            )
            raise DataError(
                f"{self.source}: the dataset has no image{left}; check the file "
                f"and the layout (docs/datasets.md)"
            )


def skipped_in_batch(batch: Any) -> List[SkippedImage]:
    """The SkippedImage entries a batch carries: a classification batch's "skipped" list, a
    detection batch's ``skipped`` attribute (resnet_det.data.detection.MappedBatch)."""
    items = batch.get("skipped", ()) if isinstance(batch, dict) else getattr(batch, "skipped", ())
    # A bare path (what a custom dataset may put there) is an unreadable image.
    return [s if isinstance(s, SkippedImage) else SkippedImage("unreadable", str(s)) for s in items]


class SkipCountingLoader:
    """Iterates a training loader, counting what ON_BAD_IMAGE left out: at read time (the
    readers' counts, given) and while loading (the SkippedImage entries of the batches;
    an image met again in a later epoch is counted once in :meth:`counts`).

    Args:
        loader: the loader (any iterable of batches).
        read_counts: what the readers left out when the datasets were loaded.
    """

    def __init__(self, loader: Iterable, read_counts: Optional[SkipCounts] = None) -> None:
        self.loader = loader
        self.read_counts = read_counts if read_counts is not None else SkipCounts()
        self._seen: Dict[str, str] = {}  # file -> reason of each image skipped while loading
        self.num_skipped = 0  # skip events (an image met twice counts twice)
        self.num_images = 0  # images delivered

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            for s in skipped_in_batch(batch):
                self.num_skipped += 1
                self._seen.setdefault(s.file_name, s.reason)
            self.num_images += len(batch["label"]) if isinstance(batch, dict) else len(batch)
            yield batch

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def counts(self) -> SkipCounts:
        """Read-time counts plus the distinct images skipped while loading so far."""
        out = SkipCounts().merge(self.read_counts)
        for reason in self._seen.values():
            out.add_image(reason)
        return out
