"""tools/evaluate.py end to end on tiny COCO and VOC datasets registered here, and the VOC
evaluator on a hand-worked case."""

import importlib.util
import json
import os
import re
import uuid

import pytest

from resnet_det.data import (
    DatasetCatalog,
    MetadataCatalog,
    register_coco_instances,
    register_pascal_voc,
)
from resnet_det.evaluation import evaluate_results_file, load_results_file

from .conftest import write_coco_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "evaluate_tool", os.path.join(ROOT, "tools", "evaluate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load_tool()


@pytest.fixture
def names():
    registered = []
    yield registered
    for name in registered:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


# --------------------------------------------------------------------------------------------
# VOC: two images, classes (circle, square); xml boxes are 1-based inclusive pixels.
#   000001: circle 11..30 x 11..30; square 41..60 x 41..60 marked difficult
#   000002: circle 51..70 x 21..40; square 1..40 x 1..40
# --------------------------------------------------------------------------------------------
VOC_OBJECTS = {
    "000001": [("circle", (11, 11, 30, 30), 0), ("square", (41, 41, 60, 60), 1)],
    "000002": [("circle", (51, 21, 70, 40), 0), ("square", (1, 1, 40, 40), 0)],
}
# Results (COCO format, 1-based class index, boxes in the dataset dicts' continuous
# coordinates: x = xmin - 1, w = xmax - xmin + 1).
VOC_RESULTS = [
    # circle: TP (exact), FP (nowhere near), TP (exact) -> precision 1, 1/2, 2/3; recall
    # 1/2, 1/2, 1, at every IoU threshold. 11-point: t = 0 ... .5 -> 1 (6 points),
    # t = .6 ... 1 -> 2/3 (5 points): (6 + 10/3) / 11 = 84.85 %. Area under the curve: 5/6.
    {"image_id": "000001", "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
    {"image_id": "000002", "category_id": 1, "bbox": [0, 60, 20, 20], "score": 0.8},
    {"image_id": "000002", "category_id": 1, "bbox": [50, 20, 20, 20], "score": 0.7},
    # square: the best-scored detection hits the difficult object: ignored. The other covers
    # rows 1..27 of the 40x40 object: inclusive IoU 40*27 / 1600 = 0.675, a TP at IoU
    # thresholds .50 ... .65 (AP 100) and a miss from .70 on (AP 0): AP 40, AP50 100.
    {"image_id": "000001", "category_id": 2, "bbox": [40, 40, 20, 20], "score": 0.95},
    {"image_id": "000002", "category_id": 2, "bbox": [0, 0, 40, 27], "score": 0.6},
]
CIRCLE_07 = (6 + 5 * 2 / 3) / 11 * 100
CIRCLE_AUC = 5 / 6 * 100


def _write_voc_tree(root):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets/Main/test.txt").write_text("\n".join(VOC_OBJECTS) + "\n")
    for stem, objs in VOC_OBJECTS.items():
        xml_objs = "".join(
            f"<object><name>{name}</name><difficult>{diff}</difficult><bndbox><xmin>{b[0]}</xmin>"
            f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for name, b, diff in objs
        )
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>80</height>"
            f"<depth>3</depth></size>{xml_objs}</annotation>"
        )


@pytest.fixture
def voc_dataset(tmp_path, names):
    def make(year):
        root = tmp_path / f"VOC{year}"
        _write_voc_tree(root)
        name = f"eval_voc{year}_{uuid.uuid4().hex[:8]}"
        register_pascal_voc(name, str(root), "test", year, class_names=("circle", "square"))
        names.append(name)
        return name

    return make


def _write_results(path, results):
    path.write_text(json.dumps(results))
    return str(path)


@pytest.mark.parametrize(
    "year,flag,circle",
    [
        (2007, [], CIRCLE_07),
        (2012, [], CIRCLE_AUC),
        (2012, ["--voc-07-metric"], CIRCLE_07),
        (2007, ["--no-voc-07-metric"], CIRCLE_AUC),
    ],
)
def test_voc_end_to_end(tool, voc_dataset, tmp_path, capsys, year, flag, circle):
    name = voc_dataset(year)
    results = _write_results(tmp_path / "dets.json", VOC_RESULTS)
    out = tmp_path / "out"
    tool.main(["--dataset", name, "--results", results, "--output", str(out)] + flag)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bbox/AP50-circle"] == pytest.approx(circle, abs=1e-6)
    assert metrics["bbox/AP50-square"] == pytest.approx(100.0)
    assert metrics["bbox/AP50"] == pytest.approx((circle + 100) / 2, abs=1e-6)
    assert metrics["bbox/AP75"] == pytest.approx((circle + 0) / 2, abs=1e-6)
    assert metrics["bbox/AP"] == pytest.approx((circle + 40) / 2, abs=1e-6)
    printed = capsys.readouterr().out
    assert "AP50-circle" in printed and f"{metrics['bbox/AP50']:.4f}" in printed


def test_reading_and_scoring_run_in_one_collector_pause(voc_dataset, tmp_path, monkeypatch):
    # The collector comes back on once, after the results' objects are freed (not between
    # reading and scoring), and as it was before.
    import gc

    import resnet_det.evaluation as evaluation

    seen = []
    read, score = evaluation.read_results_file, evaluation.evaluate_results

    def reading(path):
        seen.append(("read", gc.isenabled()))
        return read(path)

    def scoring(*args, **kwargs):
        seen.append(("score", gc.isenabled()))
        return score(*args, **kwargs)

    monkeypatch.setattr(evaluation, "read_results_file", reading)
    monkeypatch.setattr(evaluation, "evaluate_results", scoring)
    name = voc_dataset(2007)
    results = _write_results(tmp_path / "dets.json", VOC_RESULTS)
    assert gc.isenabled()
    metrics = evaluate_results_file(name, results)
    assert seen == [("read", False), ("score", False)] and gc.isenabled()
    assert metrics["bbox"]["AP50-square"] == pytest.approx(100.0)


def test_voc_evaluator_ground_truth_reads_back_the_xml_values(voc_dataset):
    # The reader stores (xmin - 1, ymin - 1, xmax, ymax); the evaluator adds 1 back, so the
    # devkit sees the xml's numbers.
    from resnet_det.evaluation import PascalVOCDetectionEvaluator

    gt = PascalVOCDetectionEvaluator(voc_dataset(2007))._ground_truth()
    assert gt[0]["000002"] == [{"bbox": [51.0, 21.0, 70.0, 40.0], "difficult": False}]
    assert gt[1]["000001"] == [{"bbox": [41.0, 41.0, 60.0, 60.0], "difficult": True}]
    assert gt[0]["000001"] and set(gt[1]) == {"000001", "000002"}


@pytest.mark.parametrize(
    "entry,match",
    [
        (
            {"image_id": "000009", "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5},
            r"entry 1 has image_id '000009'",
        ),
        (
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5},
            r"entry 1 has image_id 1,.*file stems",
        ),
        (
            {"image_id": "000001", "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.5},
            r"entry 1 has category_id 3",
        ),
        (
            {"image_id": "000001", "category_id": 0, "bbox": [0, 0, 5, 5], "score": 0.5},
            r"entry 1 has category_id 0",
        ),
        (
            {"image_id": "000001", "category_id": 1, "bbox": [0, 0, 5, 5]},
            r"entry 1 lacks key\(s\) \['score'\]",
        ),
        (
            {"image_id": "000001", "category_id": 1, "bbox": [0, 0, -5, 5], "score": 0.5},
            r"entry 1 has bbox .*negative",
        ),
        (
            {"image_id": "000001", "category_id": 1, "bbox": [0, 0, 5], "score": 0.5},
            r"entry 1 has bbox",
        ),
        (
            {"image_id": "000001", "category_id": 1, "bbox": [0, 0, 5, 5], "score": "high"},
            r"entry 1 has score",
        ),
    ],
)
def test_bad_results_entry_is_named(tool, voc_dataset, tmp_path, capsys, entry, match):
    name = voc_dataset(2007)
    results = _write_results(tmp_path / "bad.json", [VOC_RESULTS[0], entry])
    with pytest.raises(SystemExit) as exc:
        tool.main(["--dataset", name, "--results", results])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "bad.json" in err
    assert re.search(match, err), err


def test_results_file_must_be_a_json_list(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="r.json.*not valid JSON"):
        load_results_file(str(bad))
    bad.write_text('{"image_id": 1}')
    with pytest.raises(ValueError, match="must hold a JSON list"):
        load_results_file(str(bad))


# --------------------------------------------------------------------------------------------
# COCO: the conftest's two-image json through the real reader and register_coco_instances.
# --------------------------------------------------------------------------------------------
def test_coco_end_to_end(tool, tmp_path, names, capsys):
    json_file = write_coco_json(tmp_path / "instances.json")
    name = f"eval_coco_tool_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {}, json_file, str(tmp_path))
    names.append(name)
    # With COCO ids (cat 7, dog 3): perfect cat detections and the dog found with IoU 0.68
    # (20 x 13.6 of a 20 x 20 box): dog AP50 100, AP75 0, AP 40 (4 of 10 thresholds).
    results = [
        {"image_id": 11, "category_id": 7, "bbox": [0, 0, 20, 20], "score": 0.9},
        {"image_id": 12, "category_id": 7, "bbox": [50, 50, 20, 20], "score": 0.8},
        {"image_id": 11, "category_id": 3, "bbox": [10, 40, 20, 13.6], "score": 0.7},
    ]
    out = tmp_path / "out"
    tool.main(
        [
            "--dataset",
            name,
            "--results",
            _write_results(tmp_path / "d.json", results),
            "--output",
            str(out),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bbox/AP-cat"] == pytest.approx(100.0)
    assert metrics["bbox/AP-dog"] == pytest.approx(40.0)
    assert metrics["bbox/AP50"] == pytest.approx(100.0)
    assert metrics["bbox/AP75"] == pytest.approx(50.0)
    assert metrics["bbox/AP"] == pytest.approx(70.0)
    written = json.loads((out / "coco_instances_results.json").read_text())
    assert sorted(r["category_id"] for r in written) == [3, 7, 7]

    # A COCO category id that the dataset lacks is named with the entry index.
    results[2]["category_id"] = 5
    with pytest.raises(SystemExit):
        tool.main(["--dataset", name, "--results", _write_results(tmp_path / "bad.json", results)])
    assert "entry 2 has category_id 5" in capsys.readouterr().err


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(
    tool, voc_dataset, tmp_path, names, capsys, monkeypatch
):
    from resnet_det.utils.errors import DataError, MissingFileError

    name = voc_dataset(2007)
    with pytest.raises(MissingFileError, match="nothere.json"):
        load_results_file(str(tmp_path / "nothere.json"))
    with pytest.raises(SystemExit) as exc:
        tool.main(["--dataset", name, "--results", str(tmp_path / "nothere.json")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "MissingFileError" in err and "nothere.json" in err and "Traceback" not in err
    # A classification dataset has no detection results to score.
    cls = f"eval_cls_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(cls, lambda: [])
    MetadataCatalog.get(cls).set(evaluator_type="classification")
    names.append(cls)
    results = _write_results(tmp_path / "dets.json", VOC_RESULTS)
    with pytest.raises(SystemExit):
        tool.main(["--dataset", cls, "--results", results])
    assert (
        "ClassificationEvaluator, which does not score detection results" in capsys.readouterr().err
    )
    # Anything that is not a user error is a bug: it is not turned into one line.
    with pytest.raises(DataError):
        load_results_file(_write_results(tmp_path / "obj.json", {"a": 1}))
    monkeypatch.setattr(tool, "evaluate_results_file", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tool.main(["--dataset", name, "--results", results])


@pytest.mark.parametrize("masks", [False, True], ids=["bbox", "segm"])
def test_coco_results_file_scores_as_pycocotools_scores_it(tmp_path, names, masks):
    # What a user compares against: pycocotools' COCO, loadRes and COCOeval on the same two
    # files. Every AP of the tool equals it to 1e-6 (the file's XYWH boxes are scored as
    # they are, not turned into XYXY and back).
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from resnet_det.evaluation import evaluate_results_file

    from .test_fast_coco import _random_problem

    gt, results = _random_problem(
        7, num_images=20, num_cats=4, max_gt=6, max_dets=40, tied_scores=True, masks=masks
    )
    for ann in gt["annotations"]:
        ann.pop("ignore", None)  # a reader's concern, not the metric's: keep the json plain
        if masks and ann["iscrowd"]:  # COCO gives crowd regions as RLE (the reader insists)
            image = gt["images"][ann["image_id"] - 1]
            rle = mask_utils.merge(
                mask_utils.frPyObjects(ann["segmentation"], image["height"], image["width"])
            )
            ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    for r in results:  # a box with every mask, as Mask R-CNN results (and detectron2's) have
        if masks:
            rle = dict(r["segmentation"], counts=r["segmentation"]["counts"].encode("ascii"))
            r["bbox"] = mask_utils.toBbox(rle).tolist()
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt))
    name = f"eval_coco_plain_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {}, str(gt_file), str(tmp_path))
    names.append(name)
    metrics = evaluate_results_file(name, _write_results(tmp_path / "r.json", results))

    reference = COCO(str(gt_file))
    for task in ("bbox", "segm") if masks else ("bbox",):
        entries = json.loads((tmp_path / "r.json").read_text())
        if task == "segm":
            for r in entries:
                r.pop("bbox", None)
        ev = COCOeval(reference, reference.loadRes(entries), task)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        names_in_order = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
        for k, key in enumerate(names_in_order):
            want = ev.stats[k] * 100 if ev.stats[k] >= 0 else float("nan")
            assert metrics[task][key] == pytest.approx(want, abs=1e-4, nan_ok=True), (task, key)
        assert metrics[task]["AP"] > 0


# The tool's start-up imports no torch (nor torchvision, nor matplotlib without --errors):
# scoring a results file needs none of them, and importing them would be much of its time.
_RUN_TOOL = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    assert e.code in (0, None), e.code
print("HEAVY", sorted(m for m in ("torch", "torchvision", "matplotlib") if m in sys.modules))
"""


def _run_tool_and_list_heavy_imports(args, tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, RESNET_DET_DATASETS=str(tmp_path / "datasets"))
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run(
        [sys.executable, "-c", _RUN_TOOL, os.path.join(ROOT, "tools", "evaluate.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_tool_imports_no_torch(tmp_path):
    from resnet_det.data.datasets.builtin import COCO_CATEGORIES

    annotations = tmp_path / "datasets" / "coco" / "annotations"
    annotations.mkdir(parents=True)
    gt = {
        "images": [{"id": 1, "file_name": "1.jpg", "height": 100, "width": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 18, "bbox": [10, 10, 30, 30], "area": 900}
        ],
        "categories": [{"id": i, "name": n} for i, n in COCO_CATEGORIES],
    }
    (annotations / "instances_val2017.json").write_text(json.dumps(gt))
    results = _write_results(
        tmp_path / "r.json",
        [{"image_id": 1, "category_id": 18, "bbox": [10, 10, 30, 30], "score": 0.9}],
    )
    printed = _run_tool_and_list_heavy_imports(["--help"], tmp_path)
    assert "--results" in printed and "HEAVY []" in printed
    printed = _run_tool_and_list_heavy_imports(
        ["--dataset", "coco_2017_val", "--results", results, "--output", str(tmp_path / "o")],
        tmp_path,
    )
    assert "HEAVY []" in printed, printed
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["bbox/AP"] == pytest.approx(100.0) and metrics["bbox/AP-dog"] == 100.0


def test_tasks_on_an_unregistered_dataset_name_the_dataset():
    from resnet_det.evaluation import evaluate_results

    with pytest.raises(KeyError, match="no_such_dataset.*not registered"):
        evaluate_results("no_such_dataset", [], tasks=("segm",))


def test_tasks_of_a_boxes_only_dataset_are_refused(voc_dataset, tmp_path):
    path = _write_results(tmp_path / "r.json", [])
    with pytest.raises(ValueError, match=r"tasks \('segm',\).*scores boxes only"):
        evaluate_results_file(voc_dataset(2007), path, tasks=("segm",))
