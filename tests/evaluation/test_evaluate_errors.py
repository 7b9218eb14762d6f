"""tools/evaluate.py --errors on the demo shapes: the eight bbox/dAP/* and segm/dAP/* keys of
metrics.json equal tidecv's numbers on the same files, and the pictures and report are
written."""

import importlib.util
import json
import os

import pytest

from ._error_problem import detections_for, tidecv_errors

pytest.importorskip("tidecv", reason="tidecv (the reference) is not installed: pip install tidecv")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAP = ("cls", "loc", "both", "dupe", "bkg", "miss", "false_pos", "false_neg")


def _tool():
    spec = importlib.util.spec_from_file_location(
        "evaluate_tool", os.path.join(ROOT, "tools", "evaluate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shapes_val(tmp_path_factory):
    """shapes_val's annotation file (generated under a private RESNET_DET_DATASETS unless the
    caller points at a cache)."""
    from resnet_det.data import DatasetCatalog, MetadataCatalog

    mp = pytest.MonkeyPatch()
    if not os.environ.get("RESNET_DET_DATASETS"):
        mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    DatasetCatalog.get("shapes_val")  # generates the data
    yield MetadataCatalog.get("shapes_val").json_file
    mp.undo()


def test_errors_equal_tidecv_on_shapes_val(shapes_val, tmp_path):
    with open(shapes_val) as f:
        gt = json.load(f)
    results = detections_for(gt, seed=0)
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(results))
    out = tmp_path / "out"
    _tool().main(
        ["--dataset", "shapes_val", "--results", str(res_path), "--output", str(out), "--errors"]
    )
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    for task, mode in (("bbox", "bbox"), ("segm", "segm")):
        ref, ref_ap = tidecv_errors(shapes_val, str(res_path), mode)
        ours = {k: metrics[f"{task}/dAP/{k}"] for k in DAP}
        assert set(k for k in metrics if k.startswith(f"{task}/dAP/")) == {
            f"{task}/dAP/{k}" for k in DAP
        }
        for k in DAP:
            assert ours[k] == pytest.approx(ref[k], abs=1e-6), (task, k, ours, ref)
        # Not a trivial problem: several error types cost AP.
        assert sum(ref[k] > 0.1 for k in DAP[:6]) >= 3, ref
    analysis = json.loads((out / "error_analysis.json").read_text())
    assert analysis["bbox"]["tide"]["ap50"] == pytest.approx(
        tidecv_errors(shapes_val, str(res_path), "bbox")[1], abs=1e-6
    )
    for task in ("bbox", "segm"):
        for name in ("tide", "analysis", "analysis_per_category", "confusion"):
            assert (out / f"{task}_{name}.png").stat().st_size > 1000
    assert (out / "report.html").exists()
