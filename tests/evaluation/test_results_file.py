"""Results files with masks: tools/evaluate.py scores a file whose entries carry an RLE
"segmentation" as mask AP ("segm") beside box AP, with the numbers the evaluator gives the same
detections from a model; bad mask entries are named by file and entry index."""

import copy
import importlib.util
import json
import os

import pytest
from pycocotools import mask as mask_utils
from rle_helpers import uncompressed_rle

from resnet_det.evaluation import (
    COCOEvaluator,
    evaluate_results_file,
    load_results_file,
    print_csv_format,
)

from ._segm_problem import reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        "evaluate_tool", os.path.join(ROOT, "tools", "evaluate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _evaluator_run(name, outputs, out_dir):
    evaluator = COCOEvaluator(name, output_dir=str(out_dir), distributed=False)
    for inp, out in outputs.values():
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def test_tool_scores_a_segm_results_file_like_the_evaluator(segm_dataset, tmp_path, capsys):
    name, json_file, outputs = segm_dataset(1)
    direct = _evaluator_run(name, outputs, tmp_path / "run")
    results_file = tmp_path / "run" / "coco_instances_results.json"

    metrics = _tool().main(
        ["--dataset", name, "--results", str(results_file), "--output", str(tmp_path / "tool")]
    )
    printed = capsys.readouterr().out
    assert list(metrics) == ["bbox", "segm"]
    for task in ("bbox", "segm"):
        for key, value in direct[task].items():
            assert metrics[task][key] == pytest.approx(value, abs=1e-9, nan_ok=True), (task, key)
    assert "Task: bbox" in printed and "Task: segm" in printed  # the table, one block a task
    assert "copypaste: Task: segm" in print_csv_format(metrics)
    written = json.loads((tmp_path / "tool" / "metrics.json").read_text())
    assert written["segm/AP"] == pytest.approx(direct["segm"]["AP"])
    assert written["bbox/AP50"] == pytest.approx(direct["bbox"]["AP50"])

    # pycocotools' reference on the same masks.
    ref, _ = reference(json_file, outputs)
    assert metrics["segm"]["AP"] / 100 == pytest.approx(ref.stats[0], abs=1e-6)


def test_segm_only_entries_and_uncompressed_rle_are_accepted(segm_dataset, tmp_path, monkeypatch):
    name, json_file, outputs = segm_dataset(2)
    _evaluator_run(name, outputs, tmp_path / "run")
    entries = json.loads((tmp_path / "run" / "coco_instances_results.json").read_text())
    ref, _ = reference(json_file, outputs)
    # No boxes (COCO's segm results format) and a third of the masks uncompressed.
    sizes = {d[0]["image_id"]: (d[0]["height"], d[0]["width"]) for d in outputs.values()}
    for k, e in enumerate(entries):
        del e["bbox"]
        if k % 3 == 0:
            h, w = sizes[e["image_id"]]
            mask = mask_utils.decode(
                {"size": [h, w], "counts": e["segmentation"]["counts"].encode()}
            )
            e["segmentation"] = uncompressed_rle(mask)
    path = tmp_path / "segm_only.json"
    path.write_text(json.dumps(entries))
    # The masks' areas come from the check of their runs (compressed or not), which decodes
    # every mask already: the metric must not decode them again for their areas.
    from faster_coco_eval.core import mask as faster_mask

    def decoded_again(rles):
        raise AssertionError(f"the areas of {len(rles)} masks computed again")

    monkeypatch.setattr(faster_mask, "area", decoded_again)
    metrics = evaluate_results_file(name, str(path))
    assert metrics["segm"]["AP"] / 100 == pytest.approx(ref.stats[0], abs=1e-6)
    assert metrics["bbox"]["AP"] >= 0  # boxes from the masks (pycocotools.mask.toBbox)


def test_tasks_segm_scores_the_masks_alone(segm_dataset, tmp_path, capsys):
    name, json_file, outputs = segm_dataset(4)
    _evaluator_run(name, outputs, tmp_path / "run")
    entries = json.loads((tmp_path / "run" / "coco_instances_results.json").read_text())
    for e in entries[::2]:
        del e["bbox"]  # entries without a box get none: mask AP never reads it
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(entries))
    both = evaluate_results_file(name, str(path))
    metrics = _tool().main(
        ["--dataset", name, "--results", str(path), "--tasks", "segm"]
        + ["--output", str(tmp_path / "out")]
    )
    assert list(metrics) == ["segm"]
    for key, value in both["segm"].items():
        assert metrics["segm"][key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    ref, _ = reference(json_file, outputs)
    assert metrics["segm"]["AP"] / 100 == pytest.approx(ref.stats[0], abs=1e-6)
    written = json.loads((tmp_path / "out" / "coco_instances_results.json").read_text())
    assert ["bbox" in e for e in written] == [k % 2 == 1 for k in range(len(entries))]
    assert sorted(json.loads((tmp_path / "out" / "metrics.json").read_text())) == sorted(
        f"segm/{k}" for k in both["segm"]
    )
    # Boxes alone, from the same file.
    boxes = evaluate_results_file(name, str(path), tasks=("bbox",))
    assert list(boxes) == ["bbox"] and boxes["bbox"] == both["bbox"]


def test_tasks_the_results_cannot_give_are_named(segm_dataset, tmp_path, capsys):
    name, _, outputs = segm_dataset(5)
    _evaluator_run(name, outputs, tmp_path / "run")
    entries = json.loads((tmp_path / "run" / "coco_instances_results.json").read_text())
    for e in entries:
        del e["segmentation"]
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"task 'segm' \(mask AP\) needs a 'segmentation'"):
        evaluate_results_file(name, str(path), tasks=("segm",))
    with pytest.raises(SystemExit) as exit_info:
        _tool().main(["--dataset", name, "--results", str(path), "--tasks", "segm"])
    assert exit_info.value.code == 1
    assert "task 'segm'" in capsys.readouterr().err


def _bad(entries, index, **changes):
    bad = copy.deepcopy(entries)
    bad[index]["segmentation"] = dict(bad[index]["segmentation"], **changes)
    return bad


@pytest.fixture
def segm_entries(segm_dataset, tmp_path):
    name, _, outputs = segm_dataset(3)
    _evaluator_run(name, outputs, tmp_path / "run")
    entries = json.loads((tmp_path / "run" / "coco_instances_results.json").read_text())
    assert len(entries) > 5
    return name, entries


def test_bad_masks_are_named_by_file_and_entry(segm_entries, tmp_path):
    name, entries = segm_entries
    h, w = entries[4]["segmentation"]["size"]
    counts = entries[4]["segmentation"]["counts"]
    cases = [
        (
            _bad(entries, 4, size=[h + 1, w]),
            rf"entry 4 has an RLE mask of size \[{h + 1}, {w}\].*{h}x{w}",
        ),
        (
            _bad(entries, 4, counts=counts + "1"),
            r"entry 4 has an RLE mask whose 'counts' covers \d+ pixels",
        ),
        (
            _bad(entries, 4, counts=counts[:-1] + "~"),
            r"entry 4 .*not pycocotools' compressed encoding",
        ),
        (
            _bad(entries, 4, counts=[h * w - 1]),
            rf"entry 4 .*covers {h * w - 1} pixels, not the {h * w}",
        ),
        (_bad(entries, 4, counts=[-1, h * w + 1]), r"entry 4 has RLE 'counts'"),
        (_bad(entries, 4, size=[h]), r"entry 4 has an RLE 'size'"),
        (
            [dict(e) for e in entries[:4]] + [dict(entries[4], segmentation=[[0, 0, 5, 0, 5, 5]])],
            r"entry 4 has a polygon 'segmentation'",
        ),
        (
            [dict(e) for e in entries[:4]] + [dict(entries[4], segmentation={"counts": counts})],
            r"entry 4 has 'segmentation'.*exactly 'size' and 'counts'",
        ),
        (
            [dict(e) for e in entries[:3]]
            + [{k: v for k, v in entries[3].items() if k != "segmentation"}],
            r"entry 0 has a 'segmentation' but entry 3 has none",
        ),
        (
            [{k: v for k, v in entries[0].items() if k not in ("segmentation", "bbox")}],
            r"entry 0 lacks key\(s\) \['bbox'\]",
        ),
    ]
    for k, (results, message) in enumerate(cases):
        path = tmp_path / f"bad_{k}.json"
        path.write_text(json.dumps(results))
        with pytest.raises(ValueError, match=message) as info:
            if k < 4:  # size and runs are checked against the dataset's images when scored
                load_results_file(str(path))
                evaluate_results_file(name, str(path))
            else:
                load_results_file(str(path))
        assert str(path) in str(info.value), k


def test_tool_prints_a_bad_mask_as_one_line(segm_entries, tmp_path):
    name, entries = segm_entries
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad(entries, 2, counts="!!")))
    with pytest.raises(SystemExit) as info:
        _tool().main(["--dataset", name, "--results", str(path)])
    assert info.value.code == 1


def test_masks_of_a_boxes_only_evaluator_are_ignored_with_a_warning(segm_entries, caplog):
    from resnet_det.evaluation import PascalVOCDetectionEvaluator
    from resnet_det.evaluation.results_file import score_results

    assert not PascalVOCDetectionEvaluator.scores_masks(object.__new__(PascalVOCDetectionEvaluator))
    name, entries = segm_entries
    assert COCOEvaluator(name, distributed=False).scores_masks()
    with caplog.at_level("WARNING"):
        result = score_results(
            COCOEvaluator(name, distributed=False, tasks=("bbox",)), name, entries, source="x.json"
        )
    assert list(result) == ["bbox"]
    assert "x.json: the masks ('segmentation') are not scored" in caplog.text
