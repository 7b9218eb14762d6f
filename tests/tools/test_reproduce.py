"""tools/reproduce.py --demo --fast end to end: the whole chain (pretraining -> conversion ->
detection, both backbones), its report, a second call that retrains nothing, and weights that
really travel from pretraining to the detectors."""

import importlib.util
import json
import os

import pytest
import torch

from resnet_det.checkpoint import read_checkpoint, unwrap_checkpoint
from resnet_det.data import DatasetCatalog, MetadataCatalog
from resnet_det.utils.errors import MissingFileError, UsageError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
VAL_SUBSET = "shapes_val_first8_reproduce"


def _tool():
    spec = importlib.util.spec_from_file_location(
        "reproduce", os.path.join(ROOT, "tools", "reproduce.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One --demo --fast run (evaluated on 8 validation images to keep it short), then the
    same command again; returns (output folder, mtimes after the first call, the tool)."""
    mp = pytest.MonkeyPatch()
    if not os.environ.get("RESNET_DET_DATASETS"):
        mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    full = DatasetCatalog.get("shapes_val")
    if VAL_SUBSET not in DatasetCatalog.list():
        DatasetCatalog.register(VAL_SUBSET, lambda: [dict(d) for d in full[:8]])
        MetadataCatalog.get(VAL_SUBSET).set(**MetadataCatalog.get("shapes_val").as_dict())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.single_thread: tiny nets on a shared 2-core machine
    try:
        out = str(tmp_path_factory.mktemp("reproduce") / "demo")
        tool = _tool()
        argv = ["--demo", "--fast", "--output-dir", out, "DATASETS.TEST", f"['{VAL_SUBSET}']"]
        tool.main(argv)
        files = [
            os.path.join(d, f)
            for d, _, fs in os.walk(out)
            for f in fs
            if f.endswith(".pth") or f in ("metrics.json", "final_results.json")
        ]
        mtimes = {f: os.stat(f).st_mtime_ns for f in files}
        tool.main(argv)
        yield out, mtimes, tool
    finally:
        torch.set_num_threads(threads)
        mp.undo()


def _sd(path):
    return unwrap_checkpoint(read_checkpoint(path))[0]


def test_report_has_both_backbones_and_the_papers_numbers(demo_run):
    out, _, _ = demo_run
    with open(os.path.join(out, "reproduction.md")) as f:
        text = f.read()
    assert "| mAP@.5 | paper | 41.5 | 48.4 | +6.9 (+17%) |" in text
    assert "| mAP@[.5,.95] | paper | 21.2 | 27.2 | +6.0 (+28%) |" in text
    ours = [line for line in text.splitlines() if line.startswith("| | ours |")]
    assert len(ours) == 2 and all("—" not in line for line in ours)  # both measured
    for name in (
        "ResNet-18 (C4)",
        "VGG-16 layout at 1/4 width",
        "configs/reproduce_demo/faster_rcnn_resnet18.yaml",
        "configs/reproduce_demo/pretrain_vgg16_quarter.yaml",
        "tools/convert_weights.py",
        "git commit",
    ):
        assert name in text, name
    with open(os.path.join(out, "reproduction.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_second_call_retrains_nothing(demo_run):
    out, mtimes, _ = demo_run
    assert len(mtimes) >= 8  # 2 x (pretraining + detection model_final, metrics) + 2 converted
    assert {f: os.stat(f).st_mtime_ns for f in mtimes} == mtimes
    with open(os.path.join(out, "reproduction.json")) as f:
        steps = json.load(f)["steps"]
    assert len(steps) == 6
    assert all(
        r["status"] == "done" and r["attempts"] == 1 and r["skipped"] == 1 for r in steps.values()
    )
    with open(os.path.join(out, "log.txt")) as f:
        assert f.read().count("finished in an earlier call") == 6


@pytest.mark.parametrize(
    "slug,frozen", [("r18", ("stem.", "res2.")), ("vgg16q", ("vgg_block1.", "vgg_block2."))]
)
def test_pretrained_weights_reach_the_detector(demo_run, slug, frozen):
    out, _, _ = demo_run
    pretrained = _sd(os.path.join(out, f"pretrain_{slug}", "model_final.pth"))
    converted = _sd(os.path.join(out, "weights", f"{slug}.pth"))
    assert converted.keys() == pretrained.keys()
    assert all(torch.equal(converted[k], pretrained[k]) for k in converted)
    detector = _sd(os.path.join(out, f"detect_{slug}", "model_final.pth"))
    # The detector's frozen layers (FREEZE_AT 2) and every frozen BN statistic still hold the
    # converted pretraining weights after fine-tuning; a trained layer moved away from them.
    checked = 0
    for key, value in converted.items():
        # res5 (C4) and fc6/fc7 (VGG) are the box head's; the classifier's last layer has no place.
        name = (
            f"roi_heads.box_head.{key}"
            if key.startswith(("res5.", "fc6.", "fc7."))
            else f"backbone.{key}"
        )
        if key.startswith(frozen) or key.endswith(("running_mean", "running_var")):
            if not key.endswith("num_batches_tracked"):  # FrozenBN keeps no counter
                assert torch.equal(detector[name], value), key
            checked += 1
    assert checked > 10
    trained = "res4.0.conv1.weight" if slug == "r18" else "vgg_block5.conv5_1.weight"
    assert not torch.equal(detector[f"backbone.{trained}"], converted[trained])
    with open(os.path.join(out, f"detect_{slug}", "config.yaml")) as f:
        config = f.read()
    assert os.path.join(out, "weights", f"{slug}.pth") in config
    assert "FORMAT: RGB" in config


def test_user_errors(demo_run, tmp_path):
    out, _, tool = demo_run
    with pytest.raises(UsageError, match="--fast"):
        tool.main(["--table", "8", "--fast"])
    with pytest.raises(MissingFileError, match="--weights-r101"):
        tool.main(
            [
                "--table",
                "8",
                "--weights-vgg16",
                __file__,
                "--weights-r101",
                str(tmp_path / "no.pkl"),
                "--output-dir",
                str(tmp_path),
            ]
        )
    with pytest.raises(UsageError, match="holds the runs of table 'demo'"):
        tool.main(["--table", "7", "--pretrain", "--output-dir", out])
    with pytest.raises(UsageError, match="SLUG=MAP"):
        tool.main(["--table", "voc12", "--server-map", "r101", "--output-dir", str(tmp_path)])
