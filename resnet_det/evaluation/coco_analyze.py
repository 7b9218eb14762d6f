"""cocoapi's ``analyze`` (MatlabAPI/CocoEval.m; Hoiem et al., "Diagnosing Error in Object
Detectors", ECCV 2012): PR curves of each category and object size under settings that forgive
more and more errors, vectorised over images and categories.

For each category, with at most 100 detections per image (COCO's maxDets=100) and COCO's
matching (highest score first; an unmatched regular ground truth of highest IoU first, else an
ignored one; crowd regions may match many detections; a detection matched to an ignored object,
or unmatched and outside the area range, is ignored):

- C75, C50: COCO's PR curve at IoU 0.75 and 0.5;
- Loc: at IoU 0.1 (localisation errors forgiven, duplicates not);
- Sim: at IoU 0.1, the objects of the other categories of the same supercategory present but
  ignored (a detection on one of them is neither right nor wrong: confusion with a similar
  class forgiven);
- Oth: at IoU 0.1, the objects of every other category ignored (any class confusion forgiven);
- BG: 1 wherever Oth's precision is above 0 (false positives on background forgiven);
- FN: 1 everywhere (the area above BG is what the missed objects cost).

As in cocoapi, undefined precisions (no ground truth of the category and size) count 0, and
the overall curves are the means over categories. The legend of each curve is the area under
it (the mean over the 101 recall points): C75 and C50 are the category's COCO AP75 and AP50.
The precision is computed as pycocotools' ``COCOeval.accumulate`` computes it, so C75 and
C50 equal pycocotools' ``eval["precision"]`` at those thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np

from .error_data import ErrorAnalysisData, image_chunks, padded

__all__ = ["CURVES", "AREAS", "REC_THRS", "AnalyzeCurves", "analyze_curves"]

CURVES = ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")
AREAS = ("all", "small", "medium", "large")
# pycocotools' Params: areaRng and recThrs.
AREA_RANGES = ((0.0, 1e5**2), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2))
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
_MATCHED_CURVES = 5  # C75, C50, Loc, Sim, Oth come from matching; BG and FN follow from Oth
_THRESHOLDS = (0.75, 0.5, 0.1, 0.1, 0.1)
_C50_ALL = 1 * len(AREAS) + 0  # setting index of C50, area "all"


@dataclass
class PRCounts:
    """One category's detections at IoU 0.5 (C50, all sizes), highest score first.

    Attributes:
        scores: [N] scores, descending.
        tp, fp: [N] bool: true / false positive (neither: ignored).
        num_gt: regular (not crowd) ground truth of the category.
    """

    scores: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    num_gt: int

    def threshold_counts(self, num_thresholds: int = 101) -> Dict[str, np.ndarray]:
        """TensorBoard's PR-curve counts at the score thresholds 0, 1/(n-1), ..., 1: true and
        false positives scoring at least the threshold, the ground truth they miss (false
        negatives; true negatives are 0, detection has none), precision and recall (0 where
        undefined, as TensorBoard's add_pr_curve does)."""
        thresholds = np.linspace(0.0, 1.0, num_thresholds)
        # Scores are descending: the detections at or above t are a prefix.
        upto = np.searchsorted(-self.scores, -thresholds, side="right")
        tp = np.concatenate([[0], np.cumsum(self.tp)])[upto].astype(np.float64)
        fp = np.concatenate([[0], np.cumsum(self.fp)])[upto].astype(np.float64)
        fn = self.num_gt - tp
        tiny = 1e-7  # torch.utils.tensorboard's _MINIMUM_COUNT
        return {
            "true_positive_counts": tp,
            "false_positive_counts": fp,
            "true_negative_counts": np.zeros(num_thresholds),
            "false_negative_counts": fn,
            "precision": tp / np.maximum(tp + fp, tiny),
            "recall": tp / np.maximum(tp + fn, tiny),
        }


@dataclass
class AnalyzeCurves:
    """Attributes:
    precision: [7, R, K, A] the curves as plotted (CURVES order, REC_THRS, categories in
        sorted-id order, AREAS); undefined values 0.
    raw: [5, R, K, A] the precisions of C75, C50, Loc, Sim, Oth as evaluated, -1 where the
        category has no ground truth of that size (pycocotools' convention).
    pr: per category, its detections at C50 (for TensorBoard's PR curves).
    """

    precision: np.ndarray
    raw: np.ndarray
    pr: List[PRCounts]

    def overall(self, area: int = 0) -> np.ndarray:
        """[7, R]: the mean of every category's curves (cocoapi's "overall-all")."""
        return self.precision[:, :, :, area].mean(axis=2)

    def aps(self, area: int = 0) -> np.ndarray:
        """[7, K]: each curve's area per category; [7] overall via ``overall(area).mean(1)``."""
        return self.precision[:, :, :, area].mean(axis=1)

    def summary(self, class_names: Sequence[str]) -> Dict[str, Any]:
        """The areas under the curves, overall per size and per category (all sizes)."""
        out: Dict[str, Any] = {"curves": list(CURVES), "overall": {}, "per_category": {}}
        for a, area in enumerate(AREAS):
            out["overall"][area] = dict(zip(CURVES, self.overall(a).mean(axis=1).tolist()))
        aps = self.aps(0)
        for k, name in enumerate(class_names):
            out["per_category"][name] = dict(zip(CURVES, aps[:, k].tolist()))
        return out


def _gt_settings(gcat, gcrowd, garea, valid, cat, sup_of, sup_cat):
    """present, ignored [n, S, G] of each ground truth under each setting (curve x area)."""
    same = valid & (gcat == cat[:, None])
    same_sup = valid & (sup_of[np.maximum(gcat, 0)] == sup_cat[:, None])
    present, ignored = [], []
    for c in range(_MATCHED_CURVES):
        for lo, hi in AREA_RANGES:
            base_ign = gcrowd | (garea < lo) | (garea > hi)
            if c < 3:
                present.append(same)
                ignored.append(base_ign)
            else:
                present.append(same_sup if c == 3 else valid)
                ignored.append(base_ign | ~same)
    return np.stack(present, 1), np.stack(ignored, 1)


def _match(data: ErrorAnalysisData, keep, rank):
    """tp, fp [N, S] of every detection under every setting (False for detections not kept)."""
    S = _MATCHED_CURVES * len(AREAS)
    n_dt = len(data.dt_score)
    tp_out = np.zeros((n_dt, S), bool)
    fp_out = np.zeros((n_dt, S), bool)
    K = data.num_categories
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        return tp_out, fp_out
    group = data.dt_image[kept] * K + data.dt_cat[kept]
    groups, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    g_image, g_cat = groups // K, groups % K
    # Each image's annotations by category, file order within (COCOeval's useCats=0 order).
    gt_order = np.lexsort((np.arange(len(data.gt_cat)), data.gt_cat, data.gt_image))
    gt_pos = np.empty(len(gt_order), np.int64)
    gt_pos[gt_order] = np.arange(len(gt_order)) - data.gt_start[data.gt_image[gt_order]]
    gt_local = np.arange(len(data.gt_cat)) - data.gt_start[data.gt_image]
    dt_local = np.arange(n_dt) - data.dt_start[data.dt_image]
    sup_names = sorted(set(data.supercategories))
    sup_of = np.array([sup_names.index(s) for s in data.supercategories], np.int64)
    thr = np.repeat(np.array(_THRESHOLDS), len(AREAS))
    lo = np.tile(np.array([r[0] for r in AREA_RANGES]), _MATCHED_CURVES)
    hi = np.tile(np.array([r[1] for r in AREA_RANGES]), _MATCHED_CURVES)

    # Annotations that can match a group's detections: IoU >= the lowest threshold with one of
    # them. Groups with none match nothing (their detections are false positives, or ignored
    # outside the area range); the others are matched with only those columns.
    pair_det, pair_gt = data.pairs()
    group_of = np.full(n_dt, -1, np.int64)
    group_of[kept] = inverse
    near = (data.iou >= min(_THRESHOLDS)) & (group_of[pair_det] >= 0)
    near_pairs = np.unique(group_of[pair_det[near]] * len(data.gt_cat) + pair_gt[near])
    n_near = np.bincount(near_pairs // max(len(data.gt_cat), 1), minlength=len(groups))
    lonely = kept[n_near[inverse] == 0]
    d_area = data.dt_area[lonely][:, None]
    fp_out[lonely] = ~((d_area < lo[None, :]) | (d_area > hi[None, :]))

    # Each group's near annotations in COCOeval's order (by category, file order within).
    near_group, near_gt = (
        near_pairs // max(len(data.gt_cat), 1),
        near_pairs % max(len(data.gt_cat), 1),
    )
    by_order = np.lexsort((gt_pos[near_gt], near_group))
    near_group, near_gt = near_group[by_order], near_gt[by_order]
    near_rank = np.arange(len(near_group)) - np.searchsorted(near_group, near_group)

    matched_groups = np.flatnonzero(n_near > 0)
    cost = counts[matched_groups] * n_near[matched_groups] * S
    for chunk in image_chunks(cost, budget=4_000_000):
        chunk = matched_groups[chunk]
        # Groups with the most detections first, so that rank r's groups are a prefix.
        chunk = chunk[np.argsort(-counts[chunk], kind="stable")]
        n, D, G = len(chunk), int(counts[chunk].max()), int(n_near[chunk].max())
        row_of = np.full(len(groups), -1, np.int64)
        row_of[chunk] = np.arange(n)
        sel = kept[row_of[inverse] >= 0]
        rows, cols = row_of[inverse[row_of[inverse] >= 0]], rank[sel]
        dt_glob = padded(sel, rows, cols, (n, D), -1)
        dt_loc = padded(dt_local[sel], rows, cols, (n, D), -1)
        imgs = g_image[chunk]
        in_chunk = row_of[near_group] >= 0
        g_rows, g_cols = row_of[near_group[in_chunk]], near_rank[in_chunk]
        gt_glob = padded(near_gt[in_chunk], g_rows, g_cols, (n, G), -1)
        gt_loc = padded(gt_local[near_gt[in_chunk]], g_rows, g_cols, (n, G), -1)
        iou = data.gather_iou(imgs, dt_loc, gt_loc)  # [n, D, G], -1 pads
        valid_g = gt_glob >= 0
        gi = np.maximum(gt_glob, 0)
        gcat = np.where(valid_g, data.gt_cat[gi], -1)
        gcrowd = valid_g & data.gt_crowd[gi]
        garea = np.where(valid_g, data.gt_area[gi], 0.0)
        gid_nonzero = valid_g & (data.gt_id[gi] != 0)
        cat = g_cat[chunk]
        present, ignored = _gt_settings(gcat, gcrowd, garea, valid_g, cat, sup_of, sup_of[cat])
        # COCOeval keeps the last of equal IoUs: with the columns reversed, argmax's first.
        iou = np.ascontiguousarray(iou[:, :, ::-1])
        present = np.ascontiguousarray(present[:, :, ::-1])
        regular = ~np.ascontiguousarray(ignored[:, :, ::-1])
        crowd = gcrowd[:, None, ::-1]
        thr3 = thr[None, :, None]
        used = np.zeros((n, S, G), bool)
        match = np.full((n, S, D), -1, np.int64)
        dt_ign = np.zeros((n, S, D), bool)
        active = (counts[chunk][None, :] > np.arange(D)[:, None]).sum(axis=1)
        for r in range(D):
            na = int(active[r])
            iou_r = iou[:na, r, None, :]  # [na, 1, G]
            elig = present[:na] & (~used[:na] | crowd[:na]) & (iou_r >= thr3)
            reg = elig & regular[:na]
            has_reg, has = reg.any(-1), elig.any(-1)
            # A regular annotation if one qualifies, else an ignored one (COCOeval's order).
            cand = np.where(has_reg[..., None], reg, elig)
            m = np.where(has, np.argmax(np.where(cand, iou_r, -1.0), axis=-1), -1)
            match[:na, :, r] = m
            dt_ign[:na, :, r] = has & ~has_reg
            rr, ss = np.nonzero(has)
            used[rr, ss, m[rr, ss]] = True
        gid_nonzero = gid_nonzero[:, ::-1]
        valid_d = dt_glob >= 0
        matched = (match >= 0) & gid_nonzero[np.arange(n)[:, None, None], np.maximum(match, 0)]
        d_area = np.where(valid_d, data.dt_area[np.maximum(dt_glob, 0)], 0.0)[:, None, :]
        outside = (d_area < lo[None, :, None]) | (d_area > hi[None, :, None])
        dt_ign = dt_ign | (~matched & outside)
        tp = matched & ~dt_ign
        fp = ~matched & ~dt_ign
        dets = dt_glob[valid_d]
        tp_out[dets] = np.transpose(tp, (0, 2, 1))[valid_d]
        fp_out[dets] = np.transpose(fp, (0, 2, 1))[valid_d]
    return tp_out, fp_out


def analyze_curves(data: ErrorAnalysisData, *, max_dets: int = 100) -> AnalyzeCurves:
    """cocoapi's analyze curves of ``data`` (see the module docstring).

    Args:
        data: the evaluation's ground truth and detections (ErrorAnalysisData.build).
        max_dets: detections kept per image and category (COCO's maxDets: 100).
    """
    K, A, R = data.num_categories, len(AREAS), len(REC_THRS)
    S = _MATCHED_CURVES * A
    # Rank within (image, category): score descending, results order for ties (COCOeval's
    # stable sort of the image's detections of the category).
    order = np.lexsort((data.dt_index, -data.dt_score, data.dt_cat, data.dt_image))
    group = data.dt_image[order] * K + data.dt_cat[order]
    first = np.searchsorted(group, group)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - first
    keep = rank < max_dets
    tp, fp = _match(data, keep, rank)

    # npig: regular ground truth of each category and size.
    regular = ~data.gt_crowd
    npig = np.zeros((K, A), np.int64)
    for a, (lo, hi) in enumerate(AREA_RANGES):
        inside = regular & (data.gt_area >= lo) & (data.gt_area <= hi)
        npig[:, a] = np.bincount(data.gt_cat[inside], minlength=K)

    # COCOeval.accumulate concatenates images in sorted-id order, then sorts by score (stable).
    image_pos = np.empty(data.num_images, np.int64)
    image_pos[np.argsort(np.asarray(data.image_ids), kind="stable")] = np.arange(data.num_images)
    kept = np.flatnonzero(keep)
    acc = kept[
        np.lexsort(
            (rank[kept], image_pos[data.dt_image[kept]], -data.dt_score[kept], data.dt_cat[kept])
        )
    ]
    bounds = np.searchsorted(data.dt_cat[acc], np.arange(K + 1))
    raw = -np.ones((S, R, K), np.float64)
    pr_counts: List[PRCounts] = []
    for k in range(K):
        dets = acc[bounds[k] : bounds[k + 1]]
        pr_counts.append(
            PRCounts(
                scores=data.dt_score[dets],
                tp=tp[dets, _C50_ALL],
                fp=fp[dets, _C50_ALL],
                num_gt=int(npig[k, 0]),
            )
        )
        nd = len(dets)
        tp_sum = np.cumsum(tp[dets].T, axis=1).astype(float)  # [S, nd]
        fp_sum = np.cumsum(fp[dets].T, axis=1).astype(float)
        for s in range(S):
            n_gt = npig[k, s % A]
            if n_gt == 0:
                continue  # pycocotools leaves -1
            q = np.zeros(R)
            if nd:
                rc = tp_sum[s] / n_gt
                pr = tp_sum[s] / (fp_sum[s] + tp_sum[s] + np.spacing(1))
                pr = np.maximum.accumulate(pr[::-1])[::-1]
                inds = np.searchsorted(rc, REC_THRS, side="left")
                ok = inds < nd
                q[ok] = pr[inds[ok]]
            raw[s, :, k] = q
    raw = raw.reshape(_MATCHED_CURVES, A, R, K).transpose(0, 2, 3, 1)  # [5, R, K, A]
    precision = np.zeros((len(CURVES), R, K, A))
    precision[:_MATCHED_CURVES] = np.where(raw == -1, 0.0, raw)
    precision[5] = precision[4] > 0
    precision[6] = 1.0
    return AnalyzeCurves(precision=precision, raw=raw, pr=pr_counts)
