"""The entries of a COCO annotation file, checked chunk by chunk in bulk.

The rules are those of an entry taken alone (below, and resnet_det.data.segmentation's
check_segmentation); numpy passes over a whole chunk establish that the usual entries pass them
(four finite numbers per bbox, polygons of finite numbers in their image's bounds, RLE counts
covering their image) and leave every other entry to the rules, which name its fault. The
checks that need all entries (an id used twice, an unknown image or category) come when the
file has been read (:meth:`AnnotationEntries.finish`), and the faults are reported in file order
as they always were, so that "stop" raises the same first fault.

An entry that may be kept becomes a compact record: its ids, its clipped box and its JSON
fragment (bbox, iscrowd, id, segmentation in normal form), from which the reader writes the
dataset records; the parsed objects themselves are dropped chunk after chunk.
"""

import contextlib
import json
import math
from itertools import chain
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import numpy as np
import orjson

from ...utils.json_chunks import NotStreamable
from ..segmentation import (
    check_segmentation,
    normalize_segmentation,
    polygons_accepted,
    rles_accepted,
)
from ..skips import FaultPolicy
from .boxes import DEGENERATE, KEEP, OUTSIDE, sanitize_boxes

__all__ = [
    "is_int",
    "positive_int",
    "ambiguous",
    "refuse_ambiguous",
    "ImageEntries",
    "AnnotationEntries",
]

_EMPTY: Dict[str, Any] = {}


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:  # an int beyond float's range
        return False


def positive_int(v: Any) -> Optional[int]:
    """``v`` as a positive int (480 or 480.0), else None."""
    if _is_number(v) and float(v) == int(v) and int(v) > 0:
        return int(v)
    return None


def ambiguous(values) -> bool:
    """Whether ``values`` hold a float that orjson may have made of an integer: it reads an
    integer beyond [-2^63, 2^64) as a float, always of magnitude >= 2^63 (the json module
    reads it as an int, which our checks treat differently)."""
    if float not in set(map(type, values)):
        return False
    return any(type(v) is float and not abs(v) < 2.0**63 for v in values)


def refuse_ambiguous(*objs: Any) -> None:
    """Raise NotStreamable if a value shown in a fault's message may hold such a float (the
    message would show it otherwise than the json module's int)."""
    stack = list(objs)
    while stack:
        v = stack.pop()
        if type(v) is float and not abs(v) < 2.0**63:
            raise NotStreamable("an integer beyond 64 bits")
        if type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.values())


# ---------------------------------------------------------------- images
class ImageEntries:
    """The "images" entries, checked one by one (a tenth of the annotations' count)."""

    def __init__(self, policy: FaultPolicy, streaming: bool, keep_objects: bool) -> None:
        self.policy, self.streaming, self.keep_objects = policy, streaming, keep_objects
        self.num_entries = 0
        self._by_id: Dict[int, List[tuple]] = {}
        self.left_out: Set[Any] = set()
        # Of the images kept, in file order:
        self.ids: List[int] = []
        self.file_names: List[str] = []
        self.heights: List[int] = []
        self.widths: List[int] = []
        self.objects: List[dict] = []
        self.row: Dict[int, int] = {}  # image id -> index in the lists above

    def add(self, chunk: List[Any]) -> None:
        for img in chunk:
            i = self.num_entries
            self.num_entries += 1
            img_id = img.get("id") if isinstance(img, dict) else None
            if self.streaming and isinstance(img, dict):
                if ambiguous([img_id, img.get("height"), img.get("width")]):
                    raise NotStreamable("an integer beyond 64 bits")
            height = positive_int(img.get("height")) if isinstance(img, dict) else None
            width = positive_int(img.get("width")) if isinstance(img, dict) else None
            ok = (
                isinstance(img, dict)
                and is_int(img_id)
                and isinstance(img.get("file_name"), str)
                and img["file_name"]
                and height
                and width
            )
            if not ok:
                if self.streaming:
                    refuse_ambiguous(img)
                self.policy.image(
                    "bad annotation",
                    f"images[{i}] (image id {img_id!r:.50}) is not an "
                    f"object with an int 'id', a 'file_name' and positive int 'height' "
                    f"and 'width': {img!r:.200}",
                    image_id=img_id,
                    fix="correct the entry",
                )
                if is_int(img_id):
                    self.left_out.add(img_id)
                continue
            entry = (img["file_name"], height, width, img if self.keep_objects else None)
            self._by_id.setdefault(img_id, []).append(entry)

    def finish(self) -> None:
        """Count the ids used twice and index the images kept."""
        for img_id, entries in self._by_id.items():
            if len(entries) > 1:
                for _ in entries:
                    self.policy.image(
                        "duplicate id",
                        f"image id {img_id} is used by {len(entries)} "
                        f"'images' entries ({', '.join(e[0] for e in entries)})",
                        image_id=img_id,
                        fix="give each image its own id",
                    )
                self.left_out.add(img_id)
                continue
            file_name, height, width, obj = entries[0]
            self.row[img_id] = len(self.ids)
            self.ids.append(img_id)
            self.file_names.append(file_name)
            self.heights.append(height)
            self.widths.append(width)
            if obj is not None:
                self.objects.append(obj)
        self._by_id = {}


# ---------------------------------------------------------------- annotations
def _cat(parts: List[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


# What a chunk learns of an entry by itself (the checks needing all entries come at the end).
_NOT_DICT, _LEFT_OUT, _BAD_ID, _PROBLEM = 1, 2, 4, 8


class AnnotationEntries:
    """The "annotations" entries: flags, ids and the kept ones' JSON fragments, chunk by chunk."""

    def __init__(self, images: ImageEntries, streaming: bool, keep_objects: bool) -> None:
        self.images, self.streaming, self.keep_objects = images, streaming, keep_objects
        self.n = 0
        self.ann_ids: List[Any] = []
        self.img_ids: List[Any] = []
        self.cats: List[Any] = []
        self._flags: List[np.ndarray] = []
        self._rows: List[np.ndarray] = []
        self._box_state: List[np.ndarray] = []
        self._crowd: List[np.ndarray] = []
        self._masked: List[np.ndarray] = []
        self.problems: Dict[int, Tuple[str, str, str]] = {}  # index -> (reason, message, fix)
        self.not_dict: Dict[int, str] = {}  # index -> type name
        self._frags: List[bytes] = []
        self._frag_start: List[np.ndarray] = []
        self.json_fragments: Set[int] = set()  # fragments to be read by the json module
        self.objects: Dict[int, dict] = {}
        h, w = images.heights, images.widths
        self._h = np.asarray(h, dtype=np.float64) if h else np.zeros(0)
        self._w = np.asarray(w, dtype=np.float64) if w else np.zeros(0)

    def add(self, anns: List[Any]) -> None:
        n, base = len(anns), self.n
        self.n += n
        dicts = [a if type(a) is dict else _EMPTY for a in anns]
        flags = np.zeros(n, dtype=np.uint8)
        for i, a in enumerate(anns):
            if type(a) is not dict:
                if self.streaming:
                    refuse_ambiguous(a)
                flags[i] |= _NOT_DICT
                self.not_dict[base + i] = type(a).__name__
        ids = [a.get("id") for a in dicts]
        img_ids = [a.get("image_id") for a in dicts]
        cats = [a.get("category_id") for a in dicts]
        crowds = [a.get("iscrowd", 0) for a in dicts]
        if self.streaming and any(map(ambiguous, (ids, img_ids, cats, crowds))):
            raise NotStreamable("an integer beyond 64 bits")
        self.ann_ids += ids
        self.img_ids += img_ids
        self.cats += cats
        row_of, left_out = self.images.row, self.images.left_out
        rows = np.fromiter(
            (row_of.get(v, -1) if type(v) is int else -1 for v in img_ids), np.int64, n
        )
        if left_out:
            out = np.fromiter((type(v) is int and v in left_out for v in img_ids), bool, n)
            flags[out] |= _LEFT_OUT
        flags[np.fromiter((type(v) is not int for v in ids), bool, n)] |= _BAD_ID
        # The entry's own checks, for entries whose image is known: bbox, iscrowd, mask.
        known = np.flatnonzero((rows >= 0) & (flags == 0))
        kl = known.tolist()
        mine = [dicts[i] for i in kl]
        kcrowds = [crowds[i] for i in kl]
        boxes, box_ok = self._boxes([a.get("bbox") for a in mine])
        crowd_ok = np.fromiter(
            (not (c not in (0, 1) or type(c) is float) for c in kcrowds), bool, len(kl)
        )
        segms = [a.get("segmentation") for a in mine]
        krows = rows[known]
        normal, mask_bad = self._masks(segms, kcrowds, krows, box_ok & crowd_ok)
        for k in np.flatnonzero(~(box_ok & crowd_ok) | mask_bad).tolist():
            i = kl[k]
            if self.streaming:
                refuse_ambiguous(mine[k].get("bbox"), segms[k])
            if not box_ok[k]:
                problem = (
                    "malformed",
                    f"has malformed bbox {mine[k].get('bbox')!r:.100}",
                    "give it four finite numbers [x, y, w, h]",
                )
            elif not crowd_ok[k]:
                problem = ("malformed", f"has iscrowd {kcrowds[k]!r:.50}", "use 0 or 1")
            else:
                problem = ("bad mask",) + self._mask_fault(segms[k], kcrowds[k], krows[k])
            self.problems[base + i] = problem
            flags[i] |= _PROBLEM
        ok = np.flatnonzero(flags[known] == 0)
        state = np.full(n, KEEP, dtype=np.uint8)
        clipped, fate = self._sanitize(boxes[ok], krows[ok])
        state[known[ok]] = fate
        # JSON fragments of the entries that may be kept: {"bbox": ..., "iscrowd", "id",
        # "segmentation"}; the category's contiguous index is put in when all is read.
        frags, frag_json = [], []
        dumps = orjson.dumps
        for k, b, f in zip(ok.tolist(), clipped.tolist(), fate.tolist()):
            if self.keep_objects:
                self.objects[base + kl[k]] = mine[k]
            if f == DEGENERATE or f == OUTSIDE:
                frags.append(b"")
                continue
            a = {"bbox": b, "iscrowd": int(kcrowds[k]), "id": ids[kl[k]]}
            if normal[k] is not None:
                a["segmentation"] = normal[k]
            try:
                frags.append(dumps(a))
            except TypeError:  # an int beyond 64 bits, a str with a lone surrogate
                frags.append(json.dumps(a).encode("ascii"))
                frag_json.append(base + kl[k])
        self.json_fragments.update(frag_json)
        lengths = np.zeros(n, dtype=np.int64)
        lengths[known[ok]] = np.fromiter(map(len, frags), np.int64, len(frags))
        starts = np.zeros(n + 1, dtype=np.int64)
        starts[1:] = np.cumsum(lengths)
        self._frags.append(b"".join(frags))
        self._frag_start.append(starts)
        self._flags.append(flags)
        self._rows.append(rows)
        self._box_state.append(state)
        crowd_arr = np.zeros(n, dtype=bool)
        crowd_arr[known] = np.fromiter(map(bool, kcrowds), bool, len(kl))
        self._crowd.append(crowd_arr)
        masked = np.zeros(n, dtype=bool)
        masked[known] = np.fromiter((s is not None for s in segms), bool, len(kl))
        self._masked.append(masked)

    def _boxes(self, bboxes: List[Any]) -> Tuple[np.ndarray, np.ndarray]:
        """The [x, y, w, h] boxes as float64 [N, 4], and which are four finite numbers."""
        n = len(bboxes)
        out = np.zeros((n, 4), dtype=np.float64)
        ok = np.zeros(n, dtype=bool)
        sel = [i for i, b in enumerate(bboxes) if type(b) is list and len(b) == 4]
        good = [bboxes[i] for i in sel]
        if set(map(type, chain.from_iterable(good))) <= {int, float}:
            with contextlib.suppress(OverflowError):  # an int beyond float's range
                arr = np.fromiter(chain.from_iterable(good), np.float64, 4 * len(good))
                arr = arr.reshape(-1, 4)
                out[sel] = arr
                ok[sel] = np.isfinite(arr).all(axis=1)
                return out, ok
        for i in sel:
            if all(_is_number(v) for v in bboxes[i]):
                ok[i] = True
                out[i] = [float(v) for v in bboxes[i]]
        return out, ok

    def _masks(
        self, segms: List[Any], crowds: List[Any], rows: np.ndarray, usable: np.ndarray
    ) -> Tuple[List[Any], np.ndarray]:
        """Each mask in normal form (None: no mask), and where check_segmentation refuses it;
        ``usable``: the entry passed its other checks (else its mask is not looked at: the
        rules stop at an entry's first fault)."""
        n = len(segms)
        normal: List[Any] = [None] * n
        bad = np.zeros(n, dtype=bool)
        polys, rles, others = [], [], []
        for k, (s, c, u) in enumerate(zip(segms, crowds, usable.tolist())):
            if not u or s is None:
                continue
            if type(s) is list and not c:
                polys.append(k)
            elif type(s) is dict:
                rles.append(k)
            else:
                others.append(k)
        accepted, floats = polygons_accepted(
            [segms[k] for k in polys], self._h[rows[polys]], self._w[rows[polys]]
        )
        for j, (k, a) in enumerate(zip(polys, accepted.tolist())):
            if a:
                normal[k] = segms[k] if floats is None else floats[j]
            else:
                others.append(k)
        if self.streaming:
            for k in rles:
                counts, size = segms[k].get("counts"), segms[k].get("size")
                if ambiguous(size if type(size) is list else ()) or (
                    type(counts) is list and ambiguous(counts)
                ):
                    raise NotStreamable("an integer beyond 64 bits")
        heights, widths = self.images.heights, self.images.widths
        rows_l = rows.tolist()
        plain = rles_accepted(
            [segms[k] for k in rles],
            [heights[rows_l[k]] for k in rles],
            [widths[rows_l[k]] for k in rles],
        )
        for k, a in zip(rles, plain.tolist()):
            if a:
                normal[k] = normalize_segmentation(segms[k], heights[rows_l[k]], widths[rows_l[k]])
            else:
                others.append(k)
        # What the bulk passes could not vouch for: the rule decides, one by one.
        for k in others:
            h, w = heights[rows_l[k]], widths[rows_l[k]]
            if check_segmentation(segms[k], h, w, crowds[k]) is not None:
                bad[k] = True
            else:
                normal[k] = normalize_segmentation(segms[k], h, w)
        return normal, bad

    def _mask_fault(self, segm: Any, crowd: Any, row: int) -> Tuple[str, str]:
        h, w = self.images.heights[row], self.images.widths[row]
        return check_segmentation(segm, h, w, crowd)

    def _sanitize(self, boxes: np.ndarray, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """XYWH -> XYXY, clipped to the image, and each box's fate (boxes.sanitize_boxes)."""
        xyxy = boxes.copy()
        xyxy[:, 2:] += boxes[:, :2]
        return sanitize_boxes(xyxy, self._w[rows], self._h[rows])

    def fragments(self, indices: np.ndarray) -> Iterator[bytes]:
        """The JSON fragments of the entries ``indices`` (kept ones), in that order."""
        chunk = np.searchsorted(self._chunk_bases, indices, side="right") - 1
        local = indices - self._chunk_bases[chunk]
        for c, j in zip(chunk.tolist(), local.tolist()):
            starts = self._frag_start[c]
            yield self._frags[c][starts[j] : starts[j + 1]]

    def finish(self, id_map: Dict[int, int], policy: FaultPolicy) -> "np.ndarray":
        """Apply the checks that need every entry (ids used twice, unknown image or category),
        report each fault in file order, then the dropped boxes; returns which annotations are
        kept (bool [n], before the boxes' drops), as ``kept`` holds it beside ``box_state``."""
        self._chunk_bases = np.cumsum([0] + [len(f) for f in self._flags], dtype=np.int64)
        flags = _cat(self._flags, np.uint8)
        rows = _cat(self._rows, np.int64)
        n = self.n
        eligible = (flags & (_NOT_DICT | _LEFT_OUT | _BAD_ID)) == 0
        dup = np.zeros(n, dtype=bool)
        seen: Set[int] = set()
        for i in np.flatnonzero(eligible).tolist():
            v = self.ann_ids[i]
            if v in seen:
                dup[i] = True
            else:
                seen.add(v)
        cat_ok = np.fromiter((type(c) is int and c in id_map for c in self.cats), bool, n)
        passed = eligible & ~dup
        unknown_image = passed & (rows < 0)
        unknown_cat = passed & (rows >= 0) & ~cat_ok
        problem = passed & (rows >= 0) & cat_ok & ((flags & _PROBLEM) != 0)
        kept = passed & (rows >= 0) & cat_ok & ((flags & _PROBLEM) == 0)
        report = ((flags & _NOT_DICT) != 0) | (
            ((flags & _LEFT_OUT) == 0)
            & (((flags & _BAD_ID) != 0) | dup | unknown_image | unknown_cat | problem)
        )
        for i in np.flatnonzero(report).tolist():
            self._report(i, policy, dup[i], unknown_image[i], unknown_cat[i], id_map)
        self.kept = kept
        self.rows = rows
        self.box_state = _cat(self._box_state, np.uint8)
        self.crowd = _cat(self._crowd, bool)
        self.masked = _cat(self._masked, bool)
        return kept

    def _report(self, i: int, policy: FaultPolicy, dup, unknown_image, unknown_cat, id_map):
        if i in self.not_dict:
            policy.annotation(
                "malformed",
                f"annotations[{i}] is a {self.not_dict[i]}, not an object",
                fix="correct the entry",
            )
            return
        ann_id, img_id = self.ann_ids[i], self.img_ids[i]
        where = f"annotation id {ann_id!r:.50} (image id {img_id!r:.50})"
        if not is_int(ann_id):
            policy.annotation(
                "malformed",
                f"annotations[{i}] ({where}) has no int 'id'",
                image_id=img_id,
                fix="give every annotation an int id",
            )
        elif dup:
            policy.annotation(
                "duplicate id",
                f"{where}: annotation id {ann_id} is not unique",
                image_id=img_id,
                fix="give each annotation its own id",
            )
        elif unknown_image:
            policy.annotation(
                "unknown image",
                f"{where} refers to image id {img_id!r:.50}, which is not in 'images'",
                image_id=img_id,
                fix="add the image to 'images' or remove the annotation",
            )
        elif unknown_cat:
            policy.annotation(
                "unknown category",
                f"{where} has category_id {self.cats[i]!r:.50}, which "
                f"is not in 'categories' (ids {sorted(id_map)})",
                image_id=img_id,
                fix="add the category to 'categories' or correct the annotation",
            )
        else:
            reason, what, fix = self.problems[i]
            policy.annotation(reason, f"{where} {what}", image_id=img_id, fix=fix)
