"""inference_on_dataset, DatasetEvaluators, result printing, and gathering across 2 processes."""

import json
import os
import subprocess
import sys
import textwrap
from collections import OrderedDict

import pytest
import torch
from torch import nn

import resnet_det.evaluation as evaluation
from resnet_det.evaluation import (
    ClassificationEvaluator,
    COCOEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    PascalVOCDetectionEvaluator,
    build_evaluator,
    format_metrics_table,
    inference_on_dataset,
    print_csv_format,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FixedDetector(nn.Module):
    """Returns stored detections per image id; records the mode and grad state it ran in."""

    def __init__(self, per_image):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.per_image = per_image
        self.seen = []

    def forward(self, inputs):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return [
            {
                k: v * self.weight if k != "labels" else v
                for k, v in self.per_image[i["image_id"]].items()
            }
            for i in inputs
        ]


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


# Perfect cat detections (contiguous 1) and the dog (0) found with IoU 0.68 (see
# test_coco_evaluation): AP-cat 100; AP-dog 40 (TP at 4 of 10 IoU thresholds), AP50 100.
DETECTIONS = {
    11: _det([[0, 0, 20, 20], [10, 40, 30, 53.6]], [0.9, 0.6], [1, 0]),
    12: _det([[50, 50, 70, 70]], [0.7], [1]),
}


class Recorder(DatasetEvaluator):
    def __init__(self, task):
        self.task, self.resets, self.images = task, 0, []

    def reset(self):
        self.resets += 1
        self.images = []

    def process(self, inputs, outputs):
        assert len(inputs) == len(outputs)
        self.images += [i["image_id"] for i in inputs]

    def evaluate(self):
        return OrderedDict([(self.task, {"n": len(self.images)})])


def _loader():
    return [
        [
            {"image_id": 11, "height": 100, "width": 100},
            {"image_id": 12, "height": 100, "width": 100},
        ]
    ]


def test_inference_runs_in_eval_mode_without_grad_and_restores_mode(coco_dataset):
    model = FixedDetector(DETECTIONS)
    model.train()
    recorder = Recorder("count")
    results = inference_on_dataset(
        model,
        _loader(),
        DatasetEvaluators([COCOEvaluator(coco_dataset, distributed=False), recorder]),
    )
    assert model.seen == [(False, False)]
    assert model.training is True
    assert recorder.resets == 1 and recorder.images == [11, 12]
    assert list(results) == ["bbox", "count"] and results["count"] == {"n": 2}
    assert results["bbox"]["AP-cat"] == pytest.approx(100.0)
    assert results["bbox"]["AP-dog"] == pytest.approx(40.0)
    assert results["bbox"]["AP50"] == pytest.approx(100.0)

    model.eval()
    inference_on_dataset(model, _loader(), None)
    assert model.training is False


def test_mode_restored_when_the_model_fails():
    class Broken(nn.Module):
        def forward(self, inputs):
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        inference_on_dataset(model, _loader(), Recorder("x"))
    assert model.training is True


def test_two_evaluators_reporting_the_same_task_is_an_error():
    evaluators = DatasetEvaluators([Recorder("bbox"), Recorder("bbox")])
    with pytest.raises(ValueError, match="'bbox'"):
        inference_on_dataset(FixedDetector(DETECTIONS), _loader(), evaluators)


def test_print_csv_format_and_table():
    results = OrderedDict(bbox={"AP": 12.5, "AP50": 30.0, "AP75": float("nan"), "AP-cat": 1.0})
    text = print_csv_format(results)
    assert text.splitlines() == [
        "copypaste: Task: bbox",
        "copypaste: AP,AP50,AP75",
        "copypaste: 12.5000,30.0000,nan",
    ]
    table = format_metrics_table(results)
    assert "AP-cat" in table and "12.5000" in table and "nan" in table


def test_build_evaluator_chooses_by_evaluator_type(coco_dataset, register):
    assert isinstance(build_evaluator(coco_dataset), COCOEvaluator)
    voc = register(
        "eval_voc_meta", lambda: [], evaluator_type="voc", thing_classes=["a"], year=2012
    )
    assert isinstance(build_evaluator(voc), PascalVOCDetectionEvaluator)
    other = register("eval_other", lambda: [], evaluator_type="lvis")
    with pytest.raises(ValueError, match=f"{other}.*'lvis'"):
        build_evaluator(other)
    no_year = register("eval_voc_noyear", lambda: [], evaluator_type="voc", thing_classes=["a"])
    with pytest.raises(ValueError, match=f"{no_year}.*'year'"):
        PascalVOCDetectionEvaluator(no_year)
    # An explicit choice needs no year.
    assert PascalVOCDetectionEvaluator(no_year, use_07_metric=False).metric == "area"
    cls = register("eval_cls", lambda: [], evaluator_type="classification")
    evaluator = build_evaluator(cls, distributed=False)
    assert isinstance(evaluator, ClassificationEvaluator)
    assert evaluator.dataset_name == cls and evaluator.distributed is False


def test_build_evaluator_names_an_unregistered_dataset():
    with pytest.raises(KeyError, match="eval_never_registered.*not registered"):
        build_evaluator("eval_never_registered")


def test_register_evaluator_adds_a_type_once(register, monkeypatch):
    monkeypatch.setattr(evaluation, "EVALUATORS", dict(evaluation.EVALUATORS))
    seen = {}

    def factory(dataset_name, *, output_dir, distributed, use_07_metric):
        seen.update(name=dataset_name, output_dir=output_dir, distributed=distributed)
        return Recorder("lvis")

    evaluation.register_evaluator("lvis", factory)
    name = register("eval_lvis", lambda: [], evaluator_type="lvis")
    assert isinstance(build_evaluator(name, "out", distributed=False), Recorder)
    assert seen == {"name": name, "output_dir": "out", "distributed": False}
    with pytest.raises(ValueError, match="'lvis' is already registered"):
        evaluation.register_evaluator("lvis", factory)


WORKER = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    sys.path.insert(0, {root!r})
    from resnet_det.data import register_coco_instances
    from resnet_det.evaluation import COCOEvaluator, inference_on_dataset

    rank = int(sys.argv[1])
    dist.init_process_group("gloo", init_method="file://{init}", rank=rank, world_size=2)
    register_coco_instances("dist_coco", {{}}, {json_file!r}, {root!r})

    def det(boxes, scores, labels):
        return {{"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                 "scores": torch.tensor(scores), "labels": torch.tensor(labels)}}

    detections = {{11: det([[0, 0, 20, 20], [10, 40, 30, 53.6]], [0.9, 0.6], [1, 0]),
                   12: det([[50, 50, 70, 70]], [0.7], [1])}}
    class Model(torch.nn.Module):
        def forward(self, inputs):
            return [detections[i["image_id"]] for i in inputs]

    model = Model()
    # Each rank sees only its own image: rank 0 image 11, rank 1 image 12.
    shard = [[{{"image_id": [11, 12][rank], "height": 100, "width": 100}}]]
    out_dir = {out!r} if rank == 0 else None
    results = inference_on_dataset(model, shard, COCOEvaluator("dist_coco", output_dir=out_dir))
    with open({out!r} + f"/rank{{rank}}.json", "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()
    """
)


def test_two_processes_gather_predictions_and_rank0_evaluates(tmp_path):
    from .conftest import write_coco_json

    json_file = write_coco_json(tmp_path / "instances.json")
    script = tmp_path / "worker.py"
    script.write_text(
        WORKER.format(
            root=ROOT, init=str(tmp_path / "init"), json_file=json_file, out=str(tmp_path)
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r)], env=env, stderr=subprocess.PIPE, text=True
        )
        for r in range(2)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    # Rank 0 scored the predictions of both ranks: with image 12's cat missing it would be
    # AP-cat 50, not 100.
    assert rank0["bbox"]["AP-cat"] == pytest.approx(100.0)
    assert rank0["bbox"]["AP-dog"] == pytest.approx(40.0)
    assert rank1 == {}
    written = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert sorted(r["image_id"] for r in written) == [11, 11, 12]
