"""Ground truth and detections of one COCO evaluation as flat arrays, with the IoU of every
(detection, ground truth) pair of an image: what the error analyses (TIDE's dAP in tide.py,
cocoapi's analyze curves in coco_analyze.py, the confusion matrix in confusion.py) read.

Boxes are compared with pycocotools' own box IoU, written out in numpy with the same
operations in the same order (so every value is bit-identical to ``pycocotools.mask.iou``),
and masks with ``pycocotools.mask.iou``, one call per image. A crowd annotation's IoU is its
intersection over the detection's area, as pycocotools defines it.

Orders matter for ties and are kept: images in the annotation file's order, annotations in
file order within an image, detections in results order within an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from ..utils.errors import DataError

__all__ = ["ErrorAnalysisData", "box_iou_xywh", "padded", "image_chunks"]


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbIou for pairs: ``dt[i]`` against ``gt[i]`` (XYWH, float64), crowd[i] True
    for intersection over the detection's area. Same operations as maskApi.c, same bits."""
    dx, dy, dw, dh = dt.T
    gx, gy, gw, gh = gt.T
    ga = gw * gh
    da = dw * dh
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    union = np.where(crowd, da, da + ga - inter)
    ok = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
    return out


def padded(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape, fill) -> np.ndarray:
    """An array of ``shape`` filled with ``fill`` and ``values`` put at (rows, cols)."""
    out = np.full(shape, fill, dtype=np.asarray(values).dtype)
    out[rows, cols] = values
    return out


def image_chunks(cost: np.ndarray, budget: int = 4_000_000) -> List[np.ndarray]:
    """Indices of ``cost`` (one number per item, e.g. detections x ground truths of an image)
    cut into chunks whose padded size (items x the largest cost) stays near ``budget``; items
    sorted by cost so that padding is small."""
    order = np.argsort(cost, kind="stable")
    c = np.asarray(cost)[order]
    chunks, start = [], 0
    while start < len(order):
        # Padded size of [start, stop) is c[stop - 1] * (stop - start): increasing in stop.
        padded_size = c[start:] * np.arange(1, len(order) - start + 1)
        stop = start + max(1, int(np.searchsorted(padded_size, budget, side="right")))
        chunks.append(order[start:stop])
        start = stop
    return chunks


@dataclass
class ErrorAnalysisData:
    """One evaluation's ground truth and detections (see the module docstring).

    Attributes:
        iou_type: "bbox" or "segm".
        image_ids: the dataset's image ids in the annotation file's order.
        cat_ids: the dataset's category ids, sorted (index k = category k).
        supercategories: each category's "supercategory" (its own name when it has none).
        gt_image, gt_cat, gt_crowd, gt_area, gt_id: per annotation, grouped by image
            (file order within), with gt_start[i]:gt_start[i + 1] the annotations of image i.
        dt_image, dt_cat, dt_score, dt_area, dt_index: per detection, grouped by image
            (results order within), dt_index its position in the results list; dt_start
            like gt_start.
        iou, iou_start: image i's IoU matrix [detections, annotations] (row-major) is
            iou[iou_start[i]:iou_start[i + 1]].
    """

    iou_type: str
    image_ids: List[Any]
    cat_ids: np.ndarray
    supercategories: List[str]
    gt_image: np.ndarray
    gt_cat: np.ndarray
    gt_crowd: np.ndarray
    gt_area: np.ndarray
    gt_id: np.ndarray
    gt_start: np.ndarray
    dt_image: np.ndarray
    dt_cat: np.ndarray
    dt_score: np.ndarray
    dt_area: np.ndarray
    dt_index: np.ndarray
    dt_start: np.ndarray
    iou: np.ndarray
    iou_start: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def num_categories(self) -> int:
        return len(self.cat_ids)

    def gt_counts(self) -> np.ndarray:
        return np.diff(self.gt_start)

    def dt_counts(self) -> np.ndarray:
        return np.diff(self.dt_start)

    def pairs(self):
        """(detection, annotation) global indices of every entry of ``iou``."""
        nd, ng = self.dt_counts(), self.gt_counts()
        sizes = nd * ng
        pair_img = np.repeat(np.arange(self.num_images), sizes)
        within = np.arange(len(self.iou)) - np.repeat(self.iou_start[:-1], sizes)
        ngp = np.maximum(ng[pair_img], 1)
        return self.dt_start[pair_img] + within // ngp, self.gt_start[pair_img] + within % ngp

    def gather_iou(self, images: np.ndarray, dt_local: np.ndarray, gt_local: np.ndarray):
        """IoU [n, D, G] of detections ``dt_local`` [n, D] and annotations ``gt_local`` [n, G]
        (positions within their image ``images`` [n]; -1 pads, whose IoU is -1)."""
        ng = self.gt_counts()[images][:, None, None]
        base = self.iou_start[images][:, None, None]
        flat = base + dt_local[:, :, None] * ng + gt_local[:, None, :]
        valid = (dt_local[:, :, None] >= 0) & (gt_local[:, None, :] >= 0)
        return np.where(valid, self.iou[np.where(valid, flat, 0)], -1.0)

    @classmethod
    def build(
        cls,
        coco_gt,
        coco_results: Sequence[Mapping[str, Any]],
        *,
        iou_type: str = "bbox",
    ) -> ErrorAnalysisData:
        """From a pycocotools ``COCO`` and COCO results entries (image_id, category_id, score,
        and "bbox" XYWH or a "segmentation" RLE). Detections of images that are not in the
        ground truth are left out (COCO's metric leaves them out too)."""
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"error analysis iou_type {iou_type!r}: expected 'bbox' or 'segm'")
        dataset = coco_gt.dataset
        image_ids = [img["id"] for img in dataset.get("images", [])]
        image_index = {image_id: i for i, image_id in enumerate(image_ids)}
        cat_ids = np.array(sorted(coco_gt.getCatIds()), dtype=np.int64)
        cat_index = {int(c): k for k, c in enumerate(cat_ids)}
        supercategories = [
            str(coco_gt.cats[int(c)].get("supercategory") or coco_gt.cats[int(c)].get("name"))
            for c in cat_ids
        ]

        anns = dataset.get("annotations", [])
        for ann in anns:
            if ann["image_id"] not in image_index:
                raise DataError(
                    f"annotation id {ann.get('id')!r}: image_id {ann['image_id']!r} is not an "
                    "image of the ground truth"
                )
        a_img = np.array([image_index[a["image_id"]] for a in anns], dtype=np.int64)
        a_order = np.argsort(a_img, kind="stable")
        anns = [anns[i] for i in a_order]
        gt_image = a_img[a_order]
        gt_cat = np.array([cat_index[int(a["category_id"])] for a in anns], dtype=np.int64)
        gt_crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
        missing = next((a for a in anns if "area" not in a), None)
        if missing is not None:
            raise DataError(
                f"annotation id {missing.get('id')!r} has no 'area': COCO's object sizes (and "
                "the analysis by size) need it"
            )
        gt_area = np.array([float(a["area"]) for a in anns], dtype=np.float64)
        gt_id = np.array([a["id"] for a in anns], dtype=np.int64)
        gt_start = np.searchsorted(gt_image, np.arange(len(image_ids) + 1))

        d_keep = [i for i, r in enumerate(coco_results) if r["image_id"] in image_index]
        results = [coco_results[i] for i in d_keep]
        r_img = np.array([image_index[r["image_id"]] for r in results], dtype=np.int64)
        r_order = np.argsort(r_img, kind="stable")
        results = [results[i] for i in r_order]
        dt_image = r_img[r_order]
        dt_index = np.asarray(d_keep, dtype=np.int64)[r_order]
        try:
            dt_cat = np.array([cat_index[int(r["category_id"])] for r in results], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"a detection's category_id {e} is not in the ground truth") from e
        dt_score = np.array([float(r["score"]) for r in results], dtype=np.float64)
        dt_start = np.searchsorted(dt_image, np.arange(len(image_ids) + 1))

        nd, ng = np.diff(dt_start), np.diff(gt_start)
        iou_start = np.concatenate([[0], np.cumsum(nd * ng)]).astype(np.int64)
        if iou_type == "bbox":
            dt_box = np.array([r["bbox"] for r in results], dtype=np.float64).reshape(-1, 4)
            gt_box = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            # A results box's area is w * h, as pycocotools' loadRes sets it.
            dt_area = dt_box[:, 2] * dt_box[:, 3]
            iou = _pairwise_box_iou(dt_box, gt_box, gt_crowd, dt_start, gt_start, iou_start)
        else:
            dt_rle = [_results_rle(r) for r in results]
            gt_rle = [coco_gt.annToRLE(a) for a in anns]
            dt_area = _mask_areas(dt_rle)
            iou = np.zeros(int(iou_start[-1]), dtype=np.float64)
            for i in np.flatnonzero((nd > 0) & (ng > 0)):
                d0, d1, g0, g1 = dt_start[i], dt_start[i + 1], gt_start[i], gt_start[i + 1]
                block = mask_utils.iou(dt_rle[d0:d1], gt_rle[g0:g1], gt_crowd[g0:g1].tolist())
                iou[iou_start[i] : iou_start[i + 1]] = np.asarray(block, np.float64).ravel()
        return cls(
            iou_type=iou_type,
            image_ids=image_ids,
            cat_ids=cat_ids,
            supercategories=supercategories,
            gt_image=gt_image,
            gt_cat=gt_cat,
            gt_crowd=gt_crowd,
            gt_area=gt_area,
            gt_id=gt_id,
            gt_start=gt_start,
            dt_image=dt_image,
            dt_cat=dt_cat,
            dt_score=dt_score,
            dt_area=dt_area,
            dt_index=dt_index,
            dt_start=dt_start,
            iou=iou,
            iou_start=iou_start,
        )


def _mask_areas(rles: Sequence[Dict[str, Any]]) -> np.ndarray:
    """pycocotools.mask.area of each RLE, float64. Called on at most 255 masks at a time:
    pycocotools 2.0.11's area() with numpy 2 fails on longer lists (its output length goes
    through a uint8)."""
    parts = [
        np.asarray(mask_utils.area(list(rles[i : i + 255])), dtype=np.float64).reshape(-1)
        for i in range(0, len(rles), 255)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float64)


def _results_rle(entry: Mapping[str, Any]) -> Dict[str, Any]:
    segm = entry.get("segmentation")
    if not isinstance(segm, Mapping) or "counts" not in segm:
        raise DataError(
            "mask error analysis needs every detection's 'segmentation' as RLE; "
            f"detection of image {entry.get('image_id')!r} has {type(segm).__name__}"
        )
    counts = segm["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects(dict(segm), *segm["size"])
    return {"size": list(segm["size"]), "counts": counts}


def _pairwise_box_iou(
    dt_box: np.ndarray,
    gt_box: np.ndarray,
    gt_crowd: np.ndarray,
    dt_start: np.ndarray,
    gt_start: np.ndarray,
    iou_start: np.ndarray,
    chunk: int = 2_000_000,
) -> np.ndarray:
    """Every image's IoU block, row-major, concatenated (images in order)."""
    nd, ng = np.diff(dt_start), np.diff(gt_start)
    sizes = nd * ng
    total = int(iou_start[-1])
    out = np.zeros(total, dtype=np.float64)
    if total == 0:
        return out
    images = np.flatnonzero(sizes > 0)
    # Images in runs whose pairs fit ``chunk`` (an image bigger than that is a run alone).
    bounds = [0]
    acc = 0
    for j, i in enumerate(images):
        if acc and acc + sizes[i] > chunk:
            bounds.append(j)
            acc = 0
        acc += sizes[i]
    bounds.append(len(images))
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        imgs = images[b0:b1]
        n = sizes[imgs]
        pair_img = np.repeat(imgs, n)
        within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        d = dt_start[pair_img] + within // ng[pair_img]
        g = gt_start[pair_img] + within % ng[pair_img]
        start = iou_start[imgs[0]]
        out[start : start + len(d)] = box_iou_xywh(dt_box[d], gt_box[g], gt_crowd[g])
    return out


def class_names_of(coco_gt, class_names: Optional[Sequence[str]]) -> List[str]:
    """``class_names`` (sorted-id order) or the categories' own names."""
    cat_ids = sorted(coco_gt.getCatIds())
    if class_names is None:
        return [str(coco_gt.cats[c]["name"]) for c in cat_ids]
    if len(class_names) != len(cat_ids):
        raise ValueError(
            f"{len(class_names)} class names for {len(cat_ids)} categories in the ground truth"
        )
    return list(class_names)
