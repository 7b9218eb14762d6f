"""The default VOC07 11-point AP equals detectron2's voc_eval (py-faster-rcnn's algorithm)
bit for bit: against a re-statement of that algorithm on randomized cases, among them recalls
of exactly 0.3, 0.6 and 0.7 (where np.arange's levels and exact tenths part), and against
detectron2's own voc_eval on the same cases written as VOC files when detectron2 is
installed."""

import os

import numpy as np
import pytest

from resnet_det.evaluation import voc_eval_class

NPOS = 10  # non-difficult objects per case: recall k / 10 is exactly 0.3, 0.6, 0.7 for k = 3, 6, 7


def reference_voc_eval(dets, gts, ovthresh, use_07_metric):
    """detectron2's voc_eval (= py-faster-rcnn's lib/datasets/voc_eval.py), restated.

    dets: [(image_id, score, [x0, y0, x1, y1])]; gts: image_id -> (boxes [n, 4], difficult [n]).
    """
    npos = sum(int((~d).sum()) for _, d in gts.values())
    used = {k: [False] * len(d) for k, (_, d) in gts.items()}
    scores = np.array([d[1] for d in dets], dtype=float)
    order = np.argsort(-scores)
    tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
    for rank, i in enumerate(order):
        image_id, _, bb = dets[i]
        bb = np.asarray(bb, dtype=float)
        boxes, difficult = gts[image_id]
        ovmax, jmax = -np.inf, -1
        if boxes.size:
            iw = np.maximum(
                np.minimum(boxes[:, 2], bb[2]) - np.maximum(boxes[:, 0], bb[0]) + 1.0, 0.0
            )
            ih = np.maximum(
                np.minimum(boxes[:, 3], bb[3]) - np.maximum(boxes[:, 1], bb[1]) + 1.0, 0.0
            )
            inter = iw * ih
            union = (
                (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                + (boxes[:, 2] - boxes[:, 0] + 1.0) * (boxes[:, 3] - boxes[:, 1] + 1.0)
                - inter
            )
            overlaps = inter / union
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > ovthresh:
            if not difficult[jmax]:
                if not used[image_id][jmax]:
                    tp[rank] = 1.0
                    used[image_id][jmax] = True
                else:
                    fp[rank] = 1.0
        else:
            fp[rank] = 1.0
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def random_case(rng, found):
    """NPOS non-difficult objects (integer boxes, as VOC xml holds) plus difficult ones over a
    few images; detections: ``found`` distinct objects hit (jittered), duplicates, hits on
    difficult objects, false positives; scores distinct."""
    n_images = int(rng.integers(2, 6))
    n_difficult = int(rng.integers(0, 4))
    owner = rng.integers(0, n_images, NPOS + n_difficult)
    gts, objects = {}, []
    for img in range(n_images):
        idx = np.nonzero(owner == img)[0]
        x0 = rng.integers(1, 300, (len(idx), 2))
        wh = rng.integers(20, 150, (len(idx), 2))
        boxes = np.concatenate([x0, x0 + wh], axis=1).astype(float)
        difficult = idx >= NPOS
        gts[f"{img:06d}"] = (boxes, difficult)
        objects += [(f"{img:06d}", b, d) for b, d in zip(boxes, difficult)]
    plain = [o for o in objects if not o[2]]
    hard = [o for o in objects if o[2]]
    hits = [plain[i] for i in rng.permutation(len(plain))[:found]]
    dets = []
    for image_id, box, _ in (
        hits + hits[: int(rng.integers(0, 3))] + hard[: int(rng.integers(0, 3))]
    ):
        dets.append((image_id, box + rng.uniform(-3, 3, 4)))
    for _ in range(int(rng.integers(0, 12))):
        x0 = rng.uniform(1, 400, 2)
        dets.append(
            (
                f"{int(rng.integers(0, n_images)):06d}",
                np.concatenate([x0, x0 + rng.uniform(5, 100, 2)]),
            )
        )
    scores = rng.permutation(len(dets)) / len(dets) + rng.uniform(0, 1e-3, len(dets))
    return [(i, float(s), [float(v) for v in b]) for (i, b), s in zip(dets, scores)], gts


def _ours(dets, gts, thresh, **kw):
    annotations = {
        k: [{"bbox": b.tolist(), "difficult": bool(d)} for b, d in zip(boxes, diff)]
        for k, (boxes, diff) in gts.items()
    }
    return voc_eval_class(dets, annotations, thresh, **kw)[2]


CASES = [(seed, found) for found in (3, 6, 7, 10, 4, 9) for seed in range(12)]


@pytest.mark.parametrize("thresh", [0.5, 0.7])
def test_11_point_equals_voc_eval_bit_for_bit(thresh):
    differs = 0
    for seed, found in CASES:
        dets, gts = random_case(np.random.default_rng(seed * 100 + found), found)
        for use_07 in (True, False):
            want = reference_voc_eval(dets, gts, thresh, use_07)
            got = _ours(dets, gts, thresh, use_07_metric=use_07)
            assert got == want and abs(got - want) <= 1e-9, (seed, found, use_07)
        exact = _ours(dets, gts, thresh, metric="11point_exact")
        differs += exact != reference_voc_eval(dets, gts, thresh, True)
    # The cases ending at recall 0.3 / 0.6 / 0.7 are where exact tenths score differently.
    assert differs > 0


def test_recall_of_exactly_three_tenths_misses_the_level():
    # Three of ten objects found, no false positive: recall ends at 3/10 == 0.3 exactly, which
    # is below np.arange's 0.30000000000000004: 3 levels (0, .1, .2), not 4.
    for found, levels in ((3, 3), (6, 6), (7, 7)):
        dets, gts = random_case(np.random.default_rng(found), found)
        dets = [d for d in dets if _ours([d], gts, 0.5, use_07_metric=False) > 0][:found]
        assert len(dets) == found
        assert _ours(dets, gts, 0.5, use_07_metric=True) == reference_voc_eval(dets, gts, 0.5, True)
        assert _ours(dets, gts, 0.5, use_07_metric=True) == pytest.approx(levels / 11, abs=1e-15)
        assert _ours(dets, gts, 0.5, metric="11point_exact") == pytest.approx(
            (levels + 1) / 11, abs=1e-15
        )


def _write_voc_case(root, dets, gts, classname="cat"):
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    for image_id, (boxes, difficult) in gts.items():
        objs = "".join(
            f"<object><name>{classname}</name><pose>Left</pose><truncated>0</truncated>"
            f"<difficult>{int(d)}</difficult><bndbox>"
            f"<xmin>{int(b[0])}</xmin><ymin>{int(b[1])}</ymin><xmax>{int(b[2])}</xmax>"
            f"<ymax>{int(b[3])}</ymax></bndbox></object>"
            for b, d in zip(boxes, difficult)
        )
        with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as f:
            f.write(f"<annotation>{objs}</annotation>")
    with open(os.path.join(root, "test.txt"), "w") as f:
        f.write("\n".join(gts) + "\n")
    with open(os.path.join(root, f"{classname}.txt"), "w") as f:
        # repr: the exact float values, so both sides see the same detections.
        f.write("\n".join(f"{i} {s!r} " + " ".join(repr(v) for v in b) for i, s, b in dets))
    return (
        os.path.join(root, "{}.txt"),
        os.path.join(root, "Annotations", "{}.xml"),
        os.path.join(root, "test.txt"),
    )


def test_equals_detectron2_voc_eval(tmp_path):
    d2 = pytest.importorskip("detectron2.evaluation.pascal_voc_evaluation")
    for k, (seed, found) in enumerate(CASES[::3]):
        dets, gts = random_case(np.random.default_rng(seed * 100 + found), found)
        paths = _write_voc_case(str(tmp_path / str(k)), dets, gts)
        for use_07 in (True, False):
            _, _, want = d2.voc_eval(*paths, "cat", ovthresh=0.5, use_07_metric=use_07)
            got = _ours(dets, gts, 0.5, use_07_metric=use_07)
            assert got == want, (seed, found, use_07)
