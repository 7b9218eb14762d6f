"""cocoapi's analyze computed the slow way, with pycocotools' COCOeval run as
MatlabAPI/CocoEval.m's analyze runs its own CocoEval: the reference of test_coco_analyze.py."""

import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


class MatlabIgnoreEval(COCOeval):
    """COCOeval honouring an annotation's "ignore" flag as the Matlab CocoEval does
    (gtIg = iscrowd | ignore | outside the area range); pycocotools' _prepare overwrites
    "ignore" with "iscrowd", so the flag travels as "analyze_ignore"."""

    def _prepare(self):
        super()._prepare()
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = int(bool(g["iscrowd"]) or bool(g.get("analyze_ignore", 0)))


def _coco(dataset):
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _precision(gt, results, iou_type, iou_thrs, use_cats, cls=COCOeval):
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(results))
        ev = cls(gt, dt, iou_type)
        ev.params.iouThrs = np.array(iou_thrs)
        ev.params.maxDets = [100]
        ev.params.useCats = use_cats
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"][..., 0]  # [T, R, K, A]


def reference_analyze(gt_dict, results, iou_type):
    """[5, R, K, A]: C75, C50, Loc, Sim, Oth as cocoapi's analyze evaluates them (-1 where
    undefined)."""
    gt = _coco(gt_dict)
    cat_ids = sorted(gt.getCatIds())
    c = _precision(gt, results, iou_type, [0.75, 0.5, 0.1], 1)
    out = np.concatenate([c, np.zeros((2,) + c.shape[1:])])
    sup = {cat["id"]: cat["supercategory"] for cat in gt_dict["categories"]}
    for k, cat in enumerate(cat_ids):
        dets = [r for r in results if r["category_id"] == cat]
        for row, same_super_only in ((3, True), (4, False)):
            anns = [
                dict(a, analyze_ignore=int(a["category_id"] != cat))
                for a in gt_dict["annotations"]
                if not same_super_only or sup[a["category_id"]] == sup[cat]
            ]
            if not dets:  # pycocotools cannot load no results: precision 0 where defined
                out[row, :, k, :] = np.where(c[1, :, k, :] == -1, -1, 0)
                continue
            sub = _coco(dict(gt_dict, annotations=anns))
            p = _precision(sub, dets, iou_type, [0.1], 0, MatlabIgnoreEval)
            out[row, :, k, :] = p[0, :, 0, :]
    return out
