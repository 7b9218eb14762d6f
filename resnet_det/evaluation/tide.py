"""TIDE's error breakdown (Bolya et al., "TIDE: A General Toolbox for Identifying Object
Detection Errors", ECCV 2020): how much AP50 each kind of error costs, as ``tidecv`` 1.0.1
computes it, with its definitions and its conventions, vectorised over images.

Definitions (foreground IoU 0.5, background IoU 0.1). Per image, the top 100 detections by
score are matched greedily (highest score first) to the unmatched ground truth of their class
with the highest IoU, at IoU >= 0.5; an unmatched detection that covers a crowd region of its
class (intersection over its own area > 0.5) is ignored. Every other unmatched detection is
one error, tested in this order:

- loc (TIDE's "Loc"): 0.1 <= its best IoU with a ground truth of its class <= 0.5;
- cls ("Cls"): IoU >= 0.5 with a ground truth of another class;
- dupe ("Dupe"): IoU >= 0.5 with a ground truth of its class that another detection matched;
- bkg ("Bkg"): IoU <= 0.1 with every ground truth;
- both ("Both"): anything else (wrong class and badly localised).

A ground truth that no detection matched is "miss" unless a cls / loc error points at it.
dAP of a main error = max(AP50 with that error fixed - AP50, 0): fixing turns the
highest-scored cls / loc error of each unmatched ground truth into a true positive (the others
pointing at it are dropped), drops dupe / bkg / both detections, and removes missed ground
truth from the count. The special errors: false_pos = AP50 with every false positive scored
below every true positive, false_neg = AP50 with every unmatched ground truth removed (both
minus AP50, not clipped).

AP50 is TIDE's own: per class, the precision at the 101 recalls 0, 0.01, ..., 1 (precision
made monotone, the first point at or beyond each recall), averaged; a class with detections
but no ground truth counts 0; the classes' mean over those with ground truth or detections.
Detections of equal score keep the order tidecv gives them (so ties break alike).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from .error_data import ErrorAnalysisData, image_chunks, padded

__all__ = ["TIDE_MAIN_ERRORS", "TIDE_SPECIAL_ERRORS", "TideResult", "tide_errors"]

TIDE_MAIN_ERRORS = ("cls", "loc", "both", "dupe", "bkg", "miss")
TIDE_SPECIAL_ERRORS = ("false_pos", "false_neg")
# tidecv's short names, for tables that readers compare with TIDE's own printout.
TIDE_NAMES = {
    "cls": "Cls",
    "loc": "Loc",
    "both": "Both",
    "dupe": "Dupe",
    "bkg": "Bkg",
    "miss": "Miss",
    "false_pos": "FalsePos",
    "false_neg": "FalseNeg",
}
_TP, _CLS, _LOC, _BOTH, _DUPE, _BKG = 0, 1, 2, 3, 4, 5
_CODES = {"cls": _CLS, "loc": _LOC, "both": _BOTH, "dupe": _DUPE, "bkg": _BKG}
# tidecv's recall points: x / 100 as Python floats (not np.linspace, whose values differ in
# the last bit for some x).
_RECALLS = np.array([x / 100 for x in range(101)])


@dataclass
class TideResult:
    """Attributes:
    ap50: TIDE's AP50 (percent) the errors are measured against.
    dap: error name (TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS) -> dAP in AP points.
    counts: main error name -> number of such errors.
    per_class_dap: error name -> [K] dAP of each category's own AP50 (NaN where the
        category is not evaluated).
    """

    ap50: float
    dap: Dict[str, float]
    counts: Dict[str, int]
    per_class_dap: Dict[str, np.ndarray] = field(default_factory=dict)


def _class_aps(cls, tp, num_gt, universe) -> np.ndarray:
    """TIDE's AP (percent) of each category in ``universe`` from its points ``cls``, ``tp``,
    sorted by category and, within one, in tidecv's order (score descending, ties in push
    order); NaN for the other categories and for those left empty (no points, no ground
    truth)."""
    num_classes = len(num_gt)
    aps = np.full(num_classes, np.nan)
    bounds = np.searchsorted(cls, np.arange(num_classes + 1))
    for k in np.flatnonzero(universe):
        t = tp[bounds[k] : bounds[k + 1]]
        n_gt = int(num_gt[k])
        if len(t) == 0 and n_gt == 0:
            continue  # tidecv's is_empty: not averaged
        if n_gt == 0 or len(t) == 0:
            aps[k] = 0.0
            continue
        num_true = np.cumsum(t)
        precision = num_true / np.arange(1, len(t) + 1)
        recall = num_true / n_gt
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, _RECALLS, side="left")
        y = np.where(at < len(t), precision[np.minimum(at, len(t) - 1)], 0.0)
        # Python's sum, left to right, as tidecv adds its 101 bars.
        aps[k] = sum(y.tolist()) / len(_RECALLS) * 100
    return aps


def _mean(aps: np.ndarray) -> float:
    vals = aps[~np.isnan(aps)]
    return sum(vals.tolist()) / len(vals) if len(vals) else float("nan")


def _match_images(data: ErrorAnalysisData, keep: np.ndarray, rank: np.ndarray, pos, bg):
    """Greedy matching, ignore regions and the error type of every kept detection.

    Returns per detection: matched gt (global index or -1), ignored flag, error code, target gt
    (global index or -1); per gt: used flag.
    """
    n_dt = len(data.dt_score)
    matched = np.full(n_dt, -1, np.int64)
    ignored = np.zeros(n_dt, bool)
    err = np.full(n_dt, -1, np.int64)
    target = np.full(n_dt, -1, np.int64)
    gt_used = np.zeros(len(data.gt_cat), bool)

    dt_local = np.arange(n_dt) - data.dt_start[data.dt_image]
    gt_local = np.arange(len(data.gt_cat)) - data.gt_start[data.gt_image]
    regular = ~data.gt_crowd
    # Position of each regular (crowd) annotation among the regular (crowd) ones of its image.
    reg_rank = _rank_within(data.gt_image, regular)
    crowd_rank = _rank_within(data.gt_image, data.gt_crowd)

    kept = np.flatnonzero(keep)
    n_kept = np.bincount(data.dt_image[kept], minlength=data.num_images)
    n_reg = np.bincount(data.gt_image[regular], minlength=data.num_images)
    n_crowd = np.bincount(data.gt_image[data.gt_crowd], minlength=data.num_images)
    images = np.flatnonzero(n_kept > 0)
    for chunk in image_chunks(n_kept[images] * np.maximum(n_reg[images] + n_crowd[images], 1)):
        imgs = images[chunk]
        row_of = np.full(data.num_images, -1, np.int64)
        row_of[imgs] = np.arange(len(imgs))
        n, D = len(imgs), int(n_kept[imgs].max())
        G, C = int(n_reg[imgs].max()), int(n_crowd[imgs].max())
        d_sel = kept[row_of[data.dt_image[kept]] >= 0]
        d_rows, d_cols = row_of[data.dt_image[d_sel]], rank[d_sel]
        dt_glob = padded(d_sel, d_rows, d_cols, (n, D), -1)
        dt_loc = padded(dt_local[d_sel], d_rows, d_cols, (n, D), -1)
        g_sel = np.flatnonzero(regular & (row_of[data.gt_image] >= 0))
        g_rows, g_cols = row_of[data.gt_image[g_sel]], reg_rank[g_sel]
        gt_glob = padded(g_sel, g_rows, g_cols, (n, G), -1)
        gt_loc = padded(gt_local[g_sel], g_rows, g_cols, (n, G), -1)
        c_sel = np.flatnonzero(data.gt_crowd & (row_of[data.gt_image] >= 0))
        c_rows, c_cols = row_of[data.gt_image[c_sel]], crowd_rank[c_sel]
        crowd_loc = padded(gt_local[c_sel], c_rows, c_cols, (n, C), -1)
        crowd_glob = padded(c_sel, c_rows, c_cols, (n, C), -1)

        valid_d = dt_glob >= 0
        valid_g = gt_glob >= 0
        dcls = np.where(valid_d, data.dt_cat[dt_glob], -1)
        gcls = np.where(valid_g, data.gt_cat[gt_glob], -2)
        # tidecv's matrices: IoU with the regular annotations (0 where there is none).
        iou = np.maximum(data.gather_iou(imgs, dt_loc, gt_loc), 0.0)
        same = dcls[:, :, None] == gcls[:, None, :]
        cls_iou = iou * same

        # Greedy matching, highest score first; a matched annotation's column is zeroed.
        available = valid_g.copy()
        match = np.full((n, D), -1, np.int64)
        rows = np.arange(n)
        for r in range(D):
            row = np.where(available, cls_iou[:, r, :], 0.0)
            best = np.argmax(row, axis=1) if G else np.zeros(n, np.int64)
            val = row[rows, best] if G else np.zeros(n)
            hit = valid_d[:, r] & (val >= pos)
            match[hit, r] = best[hit]
            available[rows[hit], best[hit]] = False
        tp = match >= 0
        used = valid_g & ~available

        # An unmatched detection inside a crowd region of its class is ignored.
        if C:
            crowd_iou = data.gather_iou(imgs, dt_loc, crowd_loc)
            ccls = np.where(crowd_glob >= 0, data.gt_cat[np.maximum(crowd_glob, 0)], -2)
            inside = (crowd_iou > pos) & (dcls[:, :, None] == ccls[:, None, :])
            ign = valid_d & ~tp & inside.any(axis=2)
        else:
            ign = np.zeros((n, D), bool)

        # Error types, in tidecv's order of tests.
        best_of = _max_and_argmax
        m_loc, i_loc = best_of(cls_iou)
        m_cls, i_cls = best_of(iou * ~same)
        m_dupe, _ = best_of(iou * same * used[:, None, :])
        m_any = iou.max(axis=2) if G else np.zeros((n, D))
        wrong = valid_d & ~tp
        is_loc = wrong & (bg <= m_loc) & (m_loc <= pos)
        is_cls = wrong & ~is_loc & (m_cls >= pos)
        is_dupe = wrong & ~is_loc & ~is_cls & (m_dupe >= pos)
        is_bkg = wrong & ~is_loc & ~is_cls & ~is_dupe & (m_any <= bg)
        code = np.full((n, D), _BOTH)
        code[is_loc], code[is_cls], code[is_dupe], code[is_bkg] = _LOC, _CLS, _DUPE, _BKG
        code[tp] = _TP
        tgt = np.full((n, D), -1, np.int64)
        if G:
            tgt = np.where(is_loc, np.take_along_axis(gt_glob, i_loc, 1), tgt)
            tgt = np.where(is_cls, np.take_along_axis(gt_glob, i_cls, 1), tgt)

        sel = valid_d
        dets = dt_glob[sel]
        err[dets] = code[sel]
        target[dets] = tgt[sel]
        ignored[dets] = ign[sel]
        if G:
            match_glob = np.take_along_axis(gt_glob, np.maximum(match, 0), 1)
            matched[dets] = np.where(match[sel] >= 0, match_glob[sel], -1)
        gt_used[gt_glob[used]] = True
    return matched, ignored, err, target, gt_used


def _max_and_argmax(m: np.ndarray):
    """Maximum and first argmax along the last axis (0 and 0 when it is empty)."""
    if m.shape[-1] == 0:
        return np.zeros(m.shape[:-1]), np.zeros(m.shape[:-1], np.int64)
    i = np.argmax(m, axis=-1)
    return np.take_along_axis(m, i[..., None], -1)[..., 0], i


def _rank_within(groups: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For items where ``mask``: their position among the masked items of their group (items
    sorted by group); -1 elsewhere."""
    out = np.full(len(groups), -1, np.int64)
    idx = np.flatnonzero(mask)
    if len(idx):
        g = groups[idx]
        first = np.searchsorted(g, g)  # g is sorted: first position of each group
        out[idx] = np.arange(len(idx)) - first
    return out


def tide_errors(
    data: ErrorAnalysisData,
    *,
    pos_threshold: float = 0.5,
    background_threshold: float = 0.1,
    max_dets: int = 100,
) -> TideResult:
    """TIDE's main and special errors as dAP (see the module docstring).

    Args:
        data: the evaluation's ground truth and detections (ErrorAnalysisData.build).
        pos_threshold: foreground IoU (TIDE: 0.5).
        background_threshold: background IoU (TIDE: 0.1).
        max_dets: detections kept per image, highest scores first (TIDE: 100).
    """
    K = data.num_categories
    # Rank of each detection within its image: score descending, results order for ties.
    order = np.lexsort((data.dt_index, -data.dt_score, data.dt_image))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - data.dt_start[data.dt_image[order]]
    keep = rank < max_dets
    seq = np.empty(len(order), np.int64)  # tidecv's push order: image, then rank
    seq[order] = np.arange(len(order))

    matched, ignored, err, target, gt_used = _match_images(
        data, keep, rank, pos_threshold, background_threshold
    )
    regular = ~data.gt_crowd
    num_gt = np.bincount(data.gt_cat[regular], minlength=K)

    # BestGTMatch: each unmatched annotation that cls / loc errors point at is fixed by the
    # highest-scored of them (ties: the first, i.e. the lowest rank).
    cand = np.flatnonzero(keep & ((err == _CLS) | (err == _LOC)))
    cand = cand[~gt_used[target[cand]]]
    winner = np.zeros(len(data.dt_score), bool)
    usable = np.zeros(len(data.gt_cat), bool)
    if len(cand):
        idx = cand[np.lexsort((rank[cand], -data.dt_score[cand], target[cand]))]
        first = np.r_[True, target[idx][1:] != target[idx][:-1]]
        winner[idx[first]] = True
        usable[target[cand]] = True
    missed = regular & ~gt_used & ~usable
    false_neg = regular & ~gt_used
    miss_per_class = np.bincount(data.gt_cat[missed], minlength=K)
    fn_per_class = np.bincount(data.gt_cat[false_neg], minlength=K)

    kept = np.flatnonzero(keep)
    is_tp = err[kept] == _TP
    cls_d, score_d, seq_d = data.dt_cat[kept], data.dt_score[kept], seq[kept]
    ign_d, err_d, win_d = ignored[kept], err[kept], winner[kept]
    tgt_cls = np.where(target[kept] >= 0, data.gt_cat[np.maximum(target[kept], 0)], -1)

    universe = (num_gt > 0) | (np.bincount(cls_d[~ign_d], minlength=K) > 0)
    base = ~ign_d
    by_base = np.lexsort((seq_d, -score_d, cls_d))
    by_base = by_base[base[by_base]]
    ap_base = _class_aps(cls_d[by_base], is_tp[by_base], num_gt, universe)
    ap50 = _mean(ap_base)

    # tidecv rebuilds the points of a fixed evaluation errors first, then the true positives.
    fix_order = np.where(is_tp, len(data.dt_score) + seq_d, seq_d)
    by_fix = np.lexsort((fix_order, -score_d, cls_d))

    def variant(kind: str) -> np.ndarray:
        pts_keep = ~ign_d
        cls_v, tp_v, gts = cls_d, is_tp, num_gt
        if kind in _CODES:
            this = err_d == _CODES[kind]
            if kind in ("cls", "loc"):
                fixed = this & win_d
                pts_keep = (pts_keep & ~this) | fixed
                tp_v = is_tp | fixed
                if kind == "cls":
                    cls_v = np.where(fixed, tgt_cls, cls_d)
            else:
                pts_keep = pts_keep & ~this
        elif kind == "miss":
            gts = num_gt - miss_per_class
        elif kind == "false_neg":
            gts = num_gt - fn_per_class
        if kind == "cls":  # fixed points move to their object's class: sort again
            perm = np.lexsort((fix_order, -score_d, cls_v))
        else:
            perm = by_fix
        perm = perm[pts_keep[perm]]
        if kind == "false_pos":
            # Every true positive scored 1, every false positive 0: true positives first.
            perm = perm[np.lexsort((~tp_v[perm], cls_v[perm]))]
        return _class_aps(cls_v[perm], tp_v[perm], gts, universe)

    dap: Dict[str, float] = OrderedDict()
    per_class: Dict[str, np.ndarray] = OrderedDict()
    for kind in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS:
        aps = variant(kind)
        delta = _mean(aps) - ap50
        dap[kind] = max(delta, 0.0) if kind in TIDE_MAIN_ERRORS else delta
        per_class[kind] = aps - ap_base
    counts = OrderedDict((k, int(np.sum(err_d == c))) for k, c in _CODES.items())
    counts["miss"] = int(missed.sum())
    counts = OrderedDict((k, counts[k]) for k in TIDE_MAIN_ERRORS)
    return TideResult(ap50=ap50, dap=dap, counts=counts, per_class_dap=per_class)
