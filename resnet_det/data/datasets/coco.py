"""COCO-format instance annotations (json) -> dataset dicts.

The file is parsed and checked here under DATALOADER.ON_BAD_IMAGE (resnet_det.data.skips):
pycocotools' index assumes a well-formed file and fails on a malformed one with a bare KeyError
or TypeError, so it only ever sees checked data (``read_coco_api``). The faults of the whole file
are checked here; those of its entries in coco_entries.py.

A COCO-2017-train-sized file (450 MB, 860,000 annotations, tens of millions of polygon
coordinates) is read as a stream (resnet_det.utils.json_chunks): its "images" and "annotations"
arrays come in chunks of a few MB, each checked with numpy over all its entries at once and
turned into compact arrays and JSON fragments before the next is parsed, so the file's objects
never exist all at once (coco_entries.py: the bulk passes only establish, for the usual
entries, that the per-entry rules accept them, and leave every other entry to the rules, which
name its fault).
A file that cannot be streamed exactly as the json module reads it is parsed whole. The dataset
dicts come back as a :class:`~resnet_det.data.serialized.SerializedDicts`, kept in the dataset
cache (resnet_det.data.dataset_cache) for large files: read again, the file is only hashed.
"""

import contextlib
import hashlib
import io
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import orjson
from iopath.common.file_io import g_pathmgr
from pycocotools.coco import COCO

from ...utils.bulk import collector_paused
from ...utils.errors import DataError, MissingFileError
from ...utils.json_chunks import ChunkedArray, NotStreamable, iter_members
from ..catalog import MetadataCatalog
from ..dataset_cache import read_cached
from ..serialized import SerializedDicts, SerializedWriter
from ..skips import FaultPolicy, FaultRecord, SkipCounts
from .boxes import CLIPPED, DEGENERATE, KEEP, OUTSIDE
from .coco_entries import AnnotationEntries, ImageEntries, is_int, refuse_ambiguous

__all__ = ["load_coco_json", "read_coco_api"]

logger = logging.getLogger(__name__)

# Bytes of json text parsed at once (a few thousand annotations).
CHUNK_BYTES = 8 << 20
# What changes the parsed result: bump it when the checks or the dicts change, so that cached
# results of an older reader are not used (resnet_det.data.dataset_cache keys on it).
READER_VERSION = "coco-1"


# ---------------------------------------------------------------- the file as a whole
def _read_bytes(json_file: str, local: Optional[str] = None) -> bytes:
    """The bytes of ``json_file``, read from ``local`` when given (the local copy the dataset
    cache hashed, so that the bytes parsed are the bytes hashed); errors name ``json_file``."""
    path = json_file if local is None else local
    if not g_pathmgr.isfile(path):
        raise MissingFileError(
            f"COCO annotation file {json_file} does not exist (layouts under "
            f"$RESNET_DET_DATASETS: docs/datasets.md)"
        )
    try:
        with g_pathmgr.open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"COCO annotation file {json_file} cannot be read: {e}") from e
    if not raw.strip():
        raise DataError(f"COCO annotation file {json_file} is empty")
    return raw


def _parse_whole(raw: bytes, json_file: str) -> Any:
    """The document parsed whole by the json module (the values and errors of the reader
    before streaming)."""
    try:
        return json.loads(raw)
    except ValueError as e:  # JSONDecodeError (with line and column), UnicodeDecodeError
        raise DataError(f"COCO annotation file {json_file} is not valid json: {e}") from e
    except RecursionError as e:
        raise DataError(
            f"COCO annotation file {json_file} is not valid json: nested too deeply"
        ) from e


def _check_top(data: Any, json_file: str) -> None:
    """Faults of the whole file, which always stop."""
    if not isinstance(data, dict):
        raise DataError(
            f"COCO annotation file {json_file}: top level must be an object, "
            f"got {type(data).__name__}"
        )
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"COCO annotation file {json_file}: missing or non-list {key!r}")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"COCO annotation file {json_file}: 'annotations' must be a list")


def _categories(
    data: Dict[str, Any], json_file: str, streamed: bool = False
) -> Tuple[Dict[int, int], List[str]]:
    """COCO category id -> contiguous index (in increasing id order), and the class names.
    The category list defines the labels, so its faults always stop."""
    cats = data["categories"]
    if not cats:
        raise DataError(f"COCO annotation file {json_file}: 'categories' is empty")
    for i, c in enumerate(cats):
        if not (isinstance(c, dict) and is_int(c.get("id")) and isinstance(c.get("name"), str)):
            if streamed:
                refuse_ambiguous(c)
            raise DataError(
                f"COCO annotation file {json_file}: categories[{i}] must be an "
                f"object with an int 'id' and a str 'name', got {c!r:.200}"
            )
    ids = [c["id"] for c in cats]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"COCO annotation file {json_file}: duplicate category ids {dup}")
    cats = sorted(cats, key=lambda c: c["id"])
    return {c["id"]: i for i, c in enumerate(cats)}, [c["name"] for c in cats]


# ---------------------------------------------------------------- reading
class _Parsed:
    """What one read of the file found (the caller applies its policy to ``policy``'s
    record)."""

    def __init__(self, top, images, annotations, id_map, names, policy) -> None:
        self.top, self.images, self.annotations = top, images, annotations
        self.id_map, self.thing_classes, self.policy = id_map, names, policy


def _read(raw: bytes, json_file: str, *, keep_objects: bool = False) -> _Parsed:
    """Parse and check the file's bytes (streaming; parsed whole where it cannot)."""
    with collector_paused():  # millions of short-lived containers, none in a cycle
        try:
            return _read_streaming(raw, json_file, keep_objects)
        except NotStreamable as e:
            logger.debug("%s: parsed whole (%s)", json_file, e)
        return _read_whole(raw, json_file, keep_objects)


def _read_streaming(raw: bytes, json_file: str, keep_objects: bool) -> _Parsed:
    policy = FaultPolicy(json_file, "skip")
    images = ImageEntries(policy, True, keep_objects)
    annotations: Optional[AnnotationEntries] = None
    top: Dict[str, Any] = {}
    for key, value in iter_members(raw, ("images", "annotations"), CHUNK_BYTES):
        if isinstance(value, ChunkedArray):
            if key == "images":
                for chunk in value:
                    images.add(chunk)
                images.finish()
                top["images"] = []
            else:
                if "images" not in top:
                    raise NotStreamable("'annotations' before 'images'")
                annotations = AnnotationEntries(images, True, keep_objects)
                for chunk in value:
                    annotations.add(chunk)
                top["annotations"] = []
        else:
            top[key] = value
    return _finish(top, images, annotations, json_file, policy, streamed=True)


def _read_whole(raw: bytes, json_file: str, keep_objects: bool) -> _Parsed:
    data = _parse_whole(raw, json_file)
    _check_top(data, json_file)
    policy = FaultPolicy(json_file, "skip")
    _categories(data, json_file)  # its faults stop before any entry's
    images = ImageEntries(policy, False, keep_objects)
    images.add(data["images"])
    images.finish()
    annotations = AnnotationEntries(images, False, keep_objects)
    annotations.add(data.get("annotations", []))
    top = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    top["images"], top["annotations"] = [], []
    return _finish(top, images, annotations, json_file, policy, streamed=False)


def _finish(top, images, annotations, json_file, policy, streamed) -> _Parsed:
    _check_top(top, json_file)
    id_map, names = _categories(top, json_file, streamed)
    if annotations is None:
        annotations = AnnotationEntries(images, streamed, False)
    annotations.finish(id_map, policy)
    return _Parsed(top, images, annotations, id_map, names, policy)


def _sorted_image_rows(ids: List[int]) -> np.ndarray:
    """The rows of ``ids`` in increasing id order."""
    try:
        return np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    except OverflowError:  # an id beyond 64 bits
        return np.asarray(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)


def _write_records(parsed: _Parsed, writer: SerializedWriter) -> int:
    """One record per image kept, in increasing image id order, its annotations in file order;
    the boxes dropped are counted (then, as ever, after the entries' faults). Returns the
    number of annotations written."""
    images, anns, policy = parsed.images, parsed.annotations, parsed.policy
    m = len(images.ids)
    order = _sorted_image_rows(images.ids)
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    kept = np.flatnonzero(anns.kept)
    kept = kept[np.argsort(rank[anns.rows[kept]], kind="stable")]
    state = anns.box_state[kept]
    for i, s in zip(kept.tolist(), state.tolist()):
        if s == DEGENERATE or s == OUTSIDE:
            reason = "degenerate box" if s == DEGENERATE else "outside image"
            policy.drop(reason, image_id=anns.img_ids[i])
    policy.num_clipped += int((state == CLIPPED).sum())
    final = kept[(state == KEEP) | (state == CLIPPED)]
    rank_of = rank[anns.rows[final]]
    bounds = np.searchsorted(rank_of, np.arange(m + 1)).tolist()
    objects = ~anns.crowd[final]
    num_objects = np.bincount(rank_of[objects], minlength=m).tolist()
    num_unmasked = np.bincount(rank_of[objects & ~anns.masked[final]], minlength=m).tolist()
    # Each fragment with the category's contiguous index put in after its bbox.
    fragments = anns.fragments(final)
    final_l = final.tolist()
    id_map, cats, big = parsed.id_map, anns.cats, anns.json_fragments
    for r, row in enumerate(order.tolist()):
        height, width = images.heights[row], images.widths[row]
        head = {
            "file_name": images.file_names[row],
            "image_id": images.ids[row],
            "height": height,
            "width": width,
        }
        use_json = False
        try:
            prefix = orjson.dumps(head)
        except TypeError:  # an id beyond 64 bits, a lone surrogate
            prefix, use_json = json.dumps(head).encode("ascii"), True
        pieces = []
        for t in range(bounds[r], bounds[r + 1]):
            frag, i = next(fragments), final_l[t]
            k = frag.index(b"]") + 1  # the end of {"bbox":[x0,y0,x1,y1]
            pieces.append(b'%s,"category_id":%d%s' % (frag[:k], id_map[cats[i]], frag[k:]))
            if big and i in big:
                use_json = True
        record = b'%s,"annotations":[%s]}' % (prefix[:-1], b",".join(pieces))
        columns = (
            min(height, 2**63 - 1),
            min(width, 2**63 - 1),
            num_objects[r],
            num_unmasked[r],
        )
        writer.add_bytes(record, columns, use_json)
    return len(final)


def _build(json_file: str, local: str) -> Any:
    """The cache's build function for ``json_file`` (read from ``local``, its local copy):
    parse, check, write the records."""

    def build(writer: SerializedWriter) -> Tuple[Dict[str, Any], str, int]:
        raw = _read_bytes(json_file, local)
        digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
        parsed = _read(raw, json_file)
        del raw  # the records are built from compact arrays: the text is no longer needed
        num_annotations = _write_records(parsed, writer)
        meta = {
            "thing_classes": parsed.thing_classes,
            "id_map": [[k, v] for k, v in parsed.id_map.items()],
            "faults": parsed.policy.record().to_json(),
            "num_annotations": num_annotations,
        }
        return meta, digest, size

    return build


def _check_meta(meta: Dict[str, Any]) -> None:
    """ValueError unless ``meta`` is what build returns (a damaged cache)."""
    names, id_map = meta["thing_classes"], meta["id_map"]
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ValueError("thing_classes is not a list of str")
    if not (
        isinstance(id_map, list)
        and len(id_map) == len(names)
        and all(isinstance(p, list) and len(p) == 2 and all(is_int(v) for v in p) for p in id_map)
        and sorted(v for _, v in id_map) == list(range(len(names)))
    ):
        raise ValueError("id_map is not a map of category ids to 0..N-1")
    FaultRecord.from_json(meta["faults"])
    if not (is_int(meta["num_annotations"]) and meta["num_annotations"] >= 0):
        raise ValueError("num_annotations is not a count")


def read_coco_api(json_file: str) -> COCO:
    """``json_file`` as a pycocotools ``COCO`` object, after the checks of load_coco_json under
    "stop" (any fault raises DataError naming the file and the entry); prints muted."""
    parsed = _read(_read_bytes(json_file), json_file, keep_objects=True)
    FaultPolicy(json_file, "stop").replay(parsed.policy.record())
    anns = parsed.annotations
    kept = np.flatnonzero(anns.kept)
    # Grouped by image in the order images first have an annotation, file order within.
    rows = anns.rows[kept]
    _, first = np.unique(rows, return_index=True)
    first_at = np.empty(len(parsed.images.ids) or 1, dtype=np.int64)
    first_at[rows[first]] = first
    kept = kept[np.argsort(first_at[rows], kind="stable")]
    api = COCO()
    api.dataset = dict(
        parsed.top,
        images=parsed.images.objects,
        annotations=[anns.objects[i] for i in kept.tolist()],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def load_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: Optional[str] = None,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
    cache: Optional[bool] = None,
) -> SerializedDicts:
    """Read COCO instance annotations into dataset dicts (docs/internals.md).

    Boxes become absolute XYXY; category ids become contiguous 0-based indices in the order of
    increasing COCO id; ``iscrowd`` and the annotation ``id`` are kept; images without
    annotations are kept (the loader filters them when asked); images come in increasing id
    order. Boxes with width or height <= 0, or entirely outside their image, are dropped and
    counted; boxes partly outside are clipped. A ``segmentation`` (optional) is checked
    (resnet_det/data/segmentation.py) and kept as polygons (lists of floats) or compressed
    RLE (``{"size": [h, w], "counts": str}``; uncompressed RLE is compressed).

    The dicts come as a SerializedDicts (a read-only sequence, each dict parsed when it is
    asked for); a large file's are kept in the dataset cache (resnet_det.data.dataset_cache,
    docs/datasets.md "Dataset cache"), which a later read, in any process, maps instead of
    parsing the file again, with the same metadata and the same counts of what was left out.

    Args:
        json_file: path of the COCO json (instances_*.json layout).
        image_root: folder the images' ``file_name`` entries are relative to.
        dataset_name: if given, ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``
            are recorded in ``MetadataCatalog.get(dataset_name)``.
        on_bad_image: what a fault of one image or annotation does (docs/datasets.md "Bad
            data"): "stop" raises DataError naming the file, the ids and the fix; "skip"
            leaves the image (an "images" entry without a valid id, file name or size; an id
            used twice) or the annotation (unknown image or category id, malformed bbox,
            duplicate id; a bad mask: a polygon of fewer than 3 points, an RLE of another
            size than its image, polygons on a crowd region, any other malformed
            segmentation) out, counts it and logs one summary line.
        skip_counts: the counts of what was left out are added here.
        cache: use the dataset cache (None: for files of at least
            resnet_det.data.dataset_cache.MIN_BYTES, unless RESNET_DET_CACHE is "off").

    Raises:
        MissingFileError: ``json_file`` does not exist.
        DataError: the file is empty, not json, or lacks "images"/"categories"; the category
            list is empty or malformed; a fault under "stop"; no image is left.
    """
    policy = FaultPolicy(json_file, on_bad_image, skip_counts)
    if not g_pathmgr.isfile(json_file):
        _read_bytes(json_file)  # raises MissingFileError
    local = g_pathmgr.get_local_path(json_file)
    dicts, meta, how = read_cached(
        local,
        kind="coco",
        version=READER_VERSION,
        build=_build(json_file, local),
        check=_check_meta,
        enabled=cache,
    )
    policy.replay(FaultRecord.from_json(meta["faults"]))
    thing_classes = meta["thing_classes"]
    id_map = {k: v for k, v in meta["id_map"]}
    if dataset_name is not None:
        try:
            MetadataCatalog.get(dataset_name).set(
                thing_classes=thing_classes, thing_dataset_id_to_contiguous_id=id_map
            )
        except ValueError as e:  # registered with other classes than this file's
            raise DataError(
                f"COCO annotation file {json_file}: its categories do not match "
                f"what dataset {dataset_name!r} was registered with ({e})"
            ) from e
    policy.finish(len(dicts))
    logger.info(
        "Loaded %d images, %d annotations from %s%s",
        len(dicts),
        meta["num_annotations"],
        json_file,
        " (dataset cache)" if how == "cached" else "",
    )
    return dicts.with_root(image_root)
