"""train_and_evaluate: one engine run with --resume semantics, its final evaluation read back."""

import json
import os

import pytest

from reproduction.paper import repo_path
from reproduction.runs import RESULTS_FILE, train_and_evaluate
from resnet_det.config import get_cfg
from resnet_det.data import DatasetCatalog, MetadataCatalog

VAL_SUBSET = "shapes_val_first8_runs"


@pytest.fixture(scope="module", autouse=True)
def demo_datasets(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    if not os.environ.get("RESNET_DET_DATASETS"):
        mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    full = DatasetCatalog.get("shapes_val")
    if VAL_SUBSET not in DatasetCatalog.list():
        DatasetCatalog.register(VAL_SUBSET, lambda: [dict(d) for d in full[:8]])
        MetadataCatalog.get(VAL_SUBSET).set(**MetadataCatalog.get("shapes_val").as_dict())
    yield
    mp.undo()


def _cfg(out, max_iter):
    cfg = get_cfg()
    cfg.merge_from_file(repo_path("configs/reproduce_demo/faster_rcnn_vgg16_quarter.yaml"))
    cfg.merge_from_list(
        [
            "OUTPUT_DIR",
            out,
            "MODEL.WEIGHTS",
            "",
            "SOLVER.MAX_ITER",
            str(max_iter),
            "SOLVER.STEPS",
            "[]",
            "SOLVER.WARMUP_ITERS",
            "0",
            "LOG_PERIOD",
            "1",
            "INPUT.MIN_SIZE_TRAIN",
            "[64]",
            "INPUT.MAX_SIZE_TRAIN",
            "96",
            "INPUT.MIN_SIZE_TEST",
            "64",
            "INPUT.MAX_SIZE_TEST",
            "96",
            "MODEL.RPN.POST_NMS_TOPK_TEST",
            "8",
            "DATASETS.TEST",
            f"['{VAL_SUBSET}']",
        ]
    )
    return cfg


def _trained_iterations(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return [r["iteration"] for r in map(json.loads, f) if "total_loss" in r]


def test_a_run_continues_from_its_checkpoint_and_a_finished_one_only_evaluates(
    tmp_path, single_thread
):
    out = str(tmp_path / "run")
    first = train_and_evaluate("detect", _cfg(out, 1))
    assert set(first["bbox"]) >= {"AP", "AP50"}
    assert _trained_iterations(out) == [0]
    # A longer schedule in the same folder resumes at iteration 1 (not from scratch) ...
    train_and_evaluate("detect", _cfg(out, 2))
    assert _trained_iterations(out) == [0, 1]
    # ... and the finished run, run again, trains nothing but is evaluated again.
    os.remove(os.path.join(out, RESULTS_FILE))
    again = train_and_evaluate("detect", _cfg(out, 2))
    assert _trained_iterations(out) == [0, 1]
    assert os.path.isfile(os.path.join(out, RESULTS_FILE)) and set(again["bbox"]) >= {"AP", "AP50"}


def test_unknown_kind():
    with pytest.raises(ValueError, match="pretrain"):
        train_and_evaluate("segment", get_cfg())
