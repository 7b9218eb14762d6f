"""A randomised Mask R-CNN evaluation problem (ground truth json and model outputs) and its
reference mask AP from pycocotools alone; shared by the segm tests of this folder."""

import contextlib
import io

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from rle_helpers import uncompressed_rle

CATEGORY_IDS = [2, 5, 9]  # not contiguous: a wrong id mapping cannot pass


def ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1


def polygon(rng, x, y, w, h):
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
    radii = rng.uniform(0.5, 1.0, len(angles))
    px, py = x + w / 2 * (1 + radii * np.cos(angles)), y + h / 2 * (1 + radii * np.sin(angles))
    return np.round(np.stack([px, py], 1).ravel(), 2).tolist()


def decode(segm, h, w):
    if isinstance(segm, list):
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segm, h, w))).astype(bool)
    rle = (
        mask_utils.frPyObjects(segm, h, w)
        if isinstance(segm["counts"], list)
        else {"size": segm["size"], "counts": segm["counts"].encode()}
    )
    return mask_utils.decode(rle).astype(bool)


def random_problem(seed, num_images=8, max_gt=6, max_dets=25):
    """(COCO json dict, per-image model outputs {image_id: (inp, out)})."""
    rng = np.random.default_rng(seed)
    images, anns, outputs = [], [], {}
    for image_id in range(1, num_images + 1):
        h, w = int(rng.integers(60, 170)), int(rng.integers(80, 210))
        images.append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.png"})
        gt_masks = []
        for _ in range(int(rng.integers(0, max_gt + 1))):
            # sqrt(area) of the box on both sides of 32 and 96 (COCO's area borders).
            side = float(
                rng.choice([rng.uniform(4, 30), rng.uniform(34, 90), rng.uniform(100, 140)])
            )
            bw, bh = (
                min(side * rng.uniform(0.7, 1.4), w - 1),
                min(side * rng.uniform(0.7, 1.4), h - 1),
            )
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            kind = rng.choice(
                ["polygon", "two polygons", "rle", "uncompressed", "crowd"],
                p=[0.35, 0.15, 0.2, 0.15, 0.15],
            )
            if kind == "polygon":
                segm = [polygon(rng, x, y, bw, bh)]
            elif kind == "two polygons":
                segm = [polygon(rng, x, y, bw / 2, bh), polygon(rng, x + bw / 2, y, bw / 2, bh)]
            else:
                mask = ellipse(h, w, y + bh / 2, x + bw / 2, bh / 2, bw / 2)
                if kind == "rle":
                    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                    segm = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
                else:
                    segm = uncompressed_rle(mask)
            mask = decode(segm, h, w)
            if not mask.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "segmentation": segm,
                    "category_id": int(rng.choice(CATEGORY_IDS)),
                    "iscrowd": int(kind == "crowd"),
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                }
            )
            gt_masks.append((mask, anns[-1]["category_id"]))
        probs, labels = [], []
        for _ in range(int(rng.integers(0, max_dets + 1))):
            r = rng.random()
            if gt_masks and r < 0.6:  # near an object (or crowd region), mostly of its class
                mask, cat = gt_masks[int(rng.integers(len(gt_masks)))]
                mask = np.roll(mask, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
                mask = mask ^ (rng.random(mask.shape) < 0.03)
                if rng.random() > 0.85:
                    cat = int(rng.choice(CATEGORY_IDS))
            elif r < 0.9:
                mask = ellipse(
                    h,
                    w,
                    rng.uniform(0, h),
                    rng.uniform(0, w),
                    rng.uniform(2, h / 2),
                    rng.uniform(2, w / 2),
                )
                cat = int(rng.choice(CATEGORY_IDS))
            else:  # nothing above 0.5: an empty mask
                mask, cat = np.zeros((h, w), dtype=bool), int(rng.choice(CATEGORY_IDS))
            # Probabilities: > 0.5 inside, <= 0.5 outside (0.5 itself included: it is outside).
            inside = rng.uniform(0.5001, 1.0, (h, w))
            outside = np.where(rng.random((h, w)) < 0.1, 0.5, rng.uniform(0, 0.5, (h, w)))
            probs.append(np.where(mask, inside, outside).astype(np.float32))
            labels.append(CATEGORY_IDS.index(cat))
        n = len(probs)
        scores = torch.from_numpy(
            np.round(rng.random(n), 1 if seed % 2 else 6).astype(np.float32)
        )  # ties
        masks = torch.from_numpy(np.stack(probs)[:, None]) if n else torch.zeros((0, 1, h, w))
        # Sorted: x0 <= y0 <= x1 <= y1, a valid XYXY box (boxes do not enter mask AP).
        boxes = torch.tensor(rng.uniform(0, 50, (n, 4)), dtype=torch.float32).sort(dim=1).values
        out = {
            "boxes": boxes,
            "scores": scores,
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": masks,
        }
        outputs[image_id] = ({"image_id": image_id, "height": h, "width": w}, out)
    categories = [{"id": c, "name": f"c{c}"} for c in CATEGORY_IDS]
    return {"images": images, "annotations": anns, "categories": categories}, outputs


def reference(json_file, outputs):
    """pycocotools alone: COCO(json), pycocotools.mask.encode of probabilities > 0.5, loadRes,
    COCOeval(iouType="segm")."""
    results = []
    for inp, out in outputs.values():
        for prob, score, label in zip(
            out["masks"][:, 0].numpy(), out["scores"].tolist(), out["labels"].tolist()
        ):
            rle = mask_utils.encode(np.asfortranarray((prob > 0.5).astype(np.uint8)))
            results.append(
                {
                    "image_id": inp["image_id"],
                    "category_id": CATEGORY_IDS[label],
                    "score": score,
                    "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(json_file)
        ev = COCOeval(gt, gt.loadRes(results), iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev, results
