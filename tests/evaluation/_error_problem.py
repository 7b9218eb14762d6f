"""Randomised detection problems for the error-analysis tests: a COCO ground truth (with a
"segmentation" for every annotation, crowd regions, supercategories) and results whose
detections land near the ground truth in every way TIDE and cocoapi's analyze tell apart
(well and badly localised, wrong class, duplicates, background), with tied scores."""

import json

import numpy as np
from pycocotools import mask as mask_utils

CATEGORIES = [
    {"id": 2, "name": "cat", "supercategory": "animal"},
    {"id": 5, "name": "dog", "supercategory": "animal"},
    {"id": 9, "name": "car", "supercategory": "vehicle"},
    {"id": 11, "name": "bus", "supercategory": "vehicle"},
]
CATEGORY_IDS = [c["id"] for c in CATEGORIES]


def _box_polygon(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _jitter(rng, box, scale):
    x, y, w, h = box
    dx, dy = rng.normal(0, scale * w), rng.normal(0, scale * h)
    sw, sh = np.exp(rng.normal(0, scale, 2))
    return [float(x + dx), float(y + dy), float(max(w * sw, 1.0)), float(max(h * sh, 1.0))]


def _clip(box, w_img, h_img):
    x, y, w, h = box
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, w_img - 1e-3), min(y + h, h_img - 1e-3)
    return [x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)]


def random_problem(seed, *, num_images=12, max_gt=8, max_dets=30, masks=False, crowd=True):
    """(ground-truth json dict, results list). With ``masks``, results carry an RLE
    "segmentation" (no "bbox") made from an ellipse inside the detection's box, and ground
    truth polygons are the boxes' inscribed diamonds."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for image_id in range(1, num_images + 1):
        h, w = int(rng.integers(80, 260)), int(rng.integers(80, 260))
        images.append({"id": image_id * 3, "height": h, "width": w, "file_name": f"{image_id}.png"})
        gts = []
        for _ in range(int(rng.integers(0, max_gt + 1))):
            side = float(
                rng.choice([rng.uniform(6, 30), rng.uniform(34, 90), rng.uniform(98, 150)])
            )
            bw = min(side * float(np.exp(rng.normal(0, 0.3))), w - 2.0)
            bh = min(side * side / max(bw, 1.0), h - 2.0)
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            is_crowd = crowd and rng.uniform() < 0.08
            cat = int(rng.choice(CATEGORY_IDS))
            box = [x, y, bw, bh]
            if masks:
                poly = [[x + bw / 2, y, x + bw, y + bh / 2, x + bw / 2, y + bh, x, y + bh / 2]]
            else:
                poly = _box_polygon(x, y, bw, bh)
            ann = {
                "id": len(anns) + 1,
                "image_id": image_id * 3,
                "category_id": cat,
                "bbox": box,
                "iscrowd": int(is_crowd),
            }
            if is_crowd:
                rle = mask_utils.frPyObjects(poly, h, w)
                rle = mask_utils.merge(rle)
                m = mask_utils.decode(rle)
                flat = m.flatten(order="F")
                bounds = np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]
                counts = np.diff(bounds).tolist()
                ann["segmentation"] = {"size": [h, w], "counts": ([0] if flat[0] else []) + counts}
                ann["area"] = float(m.sum()) if masks else bw * bh
            else:
                ann["segmentation"] = poly
                ann["area"] = (bw * bh / 2) if masks else bw * bh
            anns.append(ann)
            gts.append(ann)
        for _ in range(int(rng.integers(0, max_dets + 1))):
            kind = rng.uniform()
            if gts and kind < 0.75:
                g = gts[int(rng.integers(len(gts)))]
                scale = float(rng.choice([0.03, 0.1, 0.25, 0.5]))
                box = _clip(_jitter(rng, g["bbox"], scale), w, h)
                cat = g["category_id"] if rng.uniform() < 0.7 else int(rng.choice(CATEGORY_IDS))
            else:
                bw, bh = float(rng.uniform(5, w / 2)), float(rng.uniform(5, h / 2))
                box = [float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), bw, bh]
                cat = int(rng.choice(CATEGORY_IDS))
            # Tied scores: two decimals.
            score = float(np.round(rng.uniform(0.05, 1.0), 2))
            entry = {"image_id": image_id * 3, "category_id": cat, "score": score}
            if masks:
                x, y, bw, bh = box
                yy, xx = np.mgrid[:h, :w]
                m = ((yy + 0.5 - (y + bh / 2)) / (bh / 2)) ** 2 + (
                    (xx + 0.5 - (x + bw / 2)) / (bw / 2)
                ) ** 2 <= 1
                if not m.any():
                    m[int(min(y, h - 1)), int(min(x, w - 1))] = True
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                entry["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            else:
                entry["bbox"] = box
            results.append(entry)
    # Shuffle the results so that the order of the file is not the order of images.
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    gt = {"images": images, "annotations": anns, "categories": CATEGORIES}
    return gt, results


def write_problem(tmp_path, gt, results, stem="p"):
    gt_path, res_path = tmp_path / f"{stem}_gt.json", tmp_path / f"{stem}_res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return str(gt_path), str(res_path)


def tidecv_errors(gt_path, res_path, mode, counts=False):
    """tidecv's eight dAP numbers and its AP50 for the files (mode "bbox" or "segm"), and with
    ``counts`` the number of errors of each main type."""
    import contextlib
    import io

    from tidecv import TIDE, datasets

    with contextlib.redirect_stdout(io.StringIO()):
        tide = TIDE()
        tide.evaluate(
            datasets.COCO(gt_path),
            datasets.COCOResult(res_path),
            mode=TIDE.BOX if mode == "bbox" else TIDE.MASK,
            name="run",
        )
        errors = tide.get_all_errors()
    main, special = errors["main"]["run"], errors["special"]["run"]
    names = {
        "cls": "Cls",
        "loc": "Loc",
        "both": "Both",
        "dupe": "Dupe",
        "bkg": "Bkg",
        "miss": "Miss",
        "false_pos": "FalsePos",
        "false_neg": "FalseNeg",
    }
    out = {k: (main.get(v, special.get(v))) for k, v in names.items()}
    run = tide.runs["run"]
    if not counts:
        return out, run.ap
    by_name = {t.short_name: len(errs) for t, errs in run.error_dict.items()}
    main_keys = ("cls", "loc", "both", "dupe", "bkg", "miss")
    return out, run.ap, {k: by_name[names[k]] for k in main_keys}


def detections_for(gt, seed, *, masks=True, per_object=2, background=3):
    """Results for an existing ground truth (e.g. the demo shapes): around each object up to
    ``per_object`` detections (shifted and rescaled, 25 % of the wrong class), plus
    ``background`` random ones per image; with ``masks`` each carries an RLE of the object's
    own mask shifted like its box (or of its rectangle for background ones)."""
    from pycocotools.coco import COCO

    rng = np.random.default_rng(seed)
    coco = COCO()
    coco.dataset = gt
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    cat_ids = sorted(coco.getCatIds())
    results = []

    def add(image, cat, box, mask):
        entry = {
            "image_id": image["id"],
            "category_id": int(cat),
            "bbox": [float(v) for v in box],
            "score": float(np.round(rng.uniform(0.05, 1.0), 2)),
        }
        if masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            entry["segmentation"] = {"size": list(mask.shape), "counts": rle["counts"].decode()}
        results.append(entry)

    for image in gt["images"]:
        h, w = image["height"], image["width"]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
            for _ in range(int(rng.integers(0, per_object + 1))):
                x, y, bw, bh = ann["bbox"]
                scale = float(rng.choice([0.03, 0.1, 0.3]))
                dx, dy = (
                    int(round(rng.normal(0, scale * bw))),
                    int(round(rng.normal(0, scale * bh))),
                )
                cat = ann["category_id"] if rng.uniform() < 0.75 else int(rng.choice(cat_ids))
                mask = np.roll(np.roll(coco.annToMask(ann).astype(bool), dy, 0), dx, 1)
                add(image, cat, [x + dx, y + dy, bw, bh], mask)
        for _ in range(background):
            bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            mask = np.zeros((h, w), bool)
            mask[y : y + bh, x : x + bw] = True
            add(image, int(rng.choice(cat_ids)), [x, y, bw, bh], mask)
    return results
