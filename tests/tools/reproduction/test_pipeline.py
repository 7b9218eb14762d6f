"""run_comparison's bookkeeping with the runs replaced by a fake: skipping finished steps,
resuming an interrupted one, refusing a changed config, the report after every call."""

import json
import os
import re

import pytest

from reproduction import COMPARISONS, DEMO, load_state, pipeline, run_comparison
from resnet_det.utils.errors import UsageError

NUMBERS = {"vgg16q": {"AP50": 40.0, "AP": 20.0}, "r18": {"AP50": 47.5, "AP": 26.25}}


class FakeRuns:
    """Stands in for the engine: writes each step's artifact, records the calls, and can stop
    a step the way an interrupted run stops (a checkpoint written, no model_final)."""

    def __init__(self, interrupt=None):
        self.calls, self.interrupt = [], interrupt

    def __call__(self, step, num_gpus, dist_url):
        self.calls.append(step.name)
        os.makedirs(step.run_dir, exist_ok=True)
        if step.name == self.interrupt:
            self.interrupt = None
            open(os.path.join(step.run_dir, "last_checkpoint"), "w").close()
            raise KeyboardInterrupt
        open(step.artifact, "wb").close()
        if step.kind == "detect" and list(step.cfg.DATASETS.TEST) == ["voc_2012_test"]:
            return {"voc_submission": {"detections": 10.0, "images": 5.0}}  # no annotations
        if step.kind == "detect":
            return {"bbox": dict(NUMBERS[step.backbone.slug])}
        return {"center": {"top1_err": 5.0}} if step.kind == "pretrain" else {"entries": 3}


def test_second_call_skips_every_finished_step(tmp_path, monkeypatch):
    fake = FakeRuns()
    monkeypatch.setattr(pipeline, "_run_step", fake)
    out = str(tmp_path / "demo")
    paths = run_comparison(DEMO, output_dir=out, command="tools/reproduce.py --demo")
    assert fake.calls == [
        "pretrain_vgg16q",
        "convert_vgg16q",
        "detect_vgg16q",
        "pretrain_r18",
        "convert_r18",
        "detect_r18",
    ]
    run_comparison(DEMO, output_dir=out)
    assert len(fake.calls) == 6  # nothing ran again
    state = load_state(out)
    assert all(
        r["attempts"] == 1 and r["skipped"] == 1 and r["status"] == "done"
        for r in state["steps"].values()
    )
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?|unknown", state["steps"]["detect_r18"]["commit"])
    text = open(paths["markdown"]).read()
    # Paper and ours side by side, with both gains (48.4 - 41.5 and 47.5 - 40.0).
    assert "| mAP@.5 | paper | 41.5 | 48.4 | +6.9 (+17%) |" in text
    assert "| | ours | 40.0 | 47.5 | +7.5 (+19%) |" in text
    assert "| | ours | 20.0 | 26.2 | +6.2 (+31%) |" in text
    assert "configs/reproduce_demo/faster_rcnn_resnet18.yaml" in text
    assert "`tools/reproduce.py --demo`" in text
    with open(paths["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_has_the_error_breakdown_side_by_side(tmp_path, monkeypatch):
    """Detection runs with TEST.ERROR_ANALYSIS (the demo's configs set it) report dAP; the
    report puts both backbones' side by side, with the change and a picture."""
    dap = {
        "vgg16q": {"loc": 9.0, "cls": 3.0, "both": 1.0, "dupe": 0.5, "bkg": 4.0, "miss": 2.0},
        "r18": {"loc": 4.5, "cls": 3.5, "both": 0.5, "dupe": 0.5, "bkg": 1.0, "miss": 1.5},
    }
    for d in dap.values():
        d.update(false_pos=20.0, false_neg=8.0)

    def fake(step, num_gpus, dist_url):
        assert step.kind != "detect" or step.cfg.TEST.ERROR_ANALYSIS
        result = FakeRuns()(step, num_gpus, dist_url)
        if step.kind == "detect":
            result["bbox"].update({f"dAP/{k}": v for k, v in dap[step.backbone.slug].items()})
        return result

    monkeypatch.setattr(pipeline, "_run_step", fake)
    paths = run_comparison(DEMO, output_dir=str(tmp_path / "demo"))
    text = open(paths["markdown"]).read()
    assert "| Loc | 9.00 | 4.50 | -4.50 |" in text
    assert "| Cls | 3.00 | 3.50 | +0.50 |" in text
    assert "ResNet-101 reduces Loc by 4.50, Bkg by 3.00, Both by 0.50, Miss by 0.50" in text
    assert "it loses more than VGG-16 to Cls by 0.50" in text
    assert "![the error breakdown of both backbones](reproduction_errors.png)" in text
    with open(paths["errors_figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_interrupted_step_runs_again_and_nothing_before_it(tmp_path, monkeypatch):
    fake = FakeRuns(interrupt="detect_r18")
    monkeypatch.setattr(pipeline, "_run_step", fake)
    out = str(tmp_path / "demo")
    with pytest.raises(KeyboardInterrupt):
        run_comparison(DEMO, output_dir=out)
    state = load_state(out)
    assert state["steps"]["detect_r18"]["status"] == "interrupted"
    # The report is written even so: the finished backbone's numbers, the other pending.
    assert "| | ours | 40.0 | — | — |" in open(os.path.join(out, "reproduction.md")).read()
    fake.calls.clear()
    run_comparison(DEMO, output_dir=out)
    assert fake.calls == ["detect_r18"]
    assert load_state(out)["steps"]["detect_r18"]["attempts"] == 2


def test_changed_config_of_a_started_step_stops(tmp_path, monkeypatch):
    fake = FakeRuns(interrupt="detect_r18")
    monkeypatch.setattr(pipeline, "_run_step", fake)
    out = str(tmp_path / "demo")
    with pytest.raises(KeyboardInterrupt):
        run_comparison(DEMO, output_dir=out)
    # Both the finished VGG run and the started ResNet run would mix two configs.
    with pytest.raises(
        UsageError, match="detect_vgg16q .*ran with another config.*SOLVER.BASE_LR 0.5"
    ):
        run_comparison(DEMO, output_dir=out, opts=["SOLVER.BASE_LR", "0.5"])


def test_output_dir_of_another_table_and_server_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_run_step", FakeRuns())
    out = str(tmp_path / "demo")
    run_comparison(DEMO, output_dir=out)
    with pytest.raises(UsageError, match="holds the runs of table 'demo'"):
        run_comparison(COMPARISONS["7"], output_dir=out, pretrain=True)
    with pytest.raises(UsageError, match="--server-map"):
        run_comparison(DEMO, output_dir=out, server_map={"r18": 50.0})


def test_voc12_reports_the_servers_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_run_step", FakeRuns())
    for name in ("R-101.pkl", "vgg16.pth"):
        (tmp_path / name).write_bytes(b"x")
    weights = {"r101": str(tmp_path / "R-101.pkl"), "vgg16": str(tmp_path / "vgg16.pth")}
    out = str(tmp_path / "voc12")
    paths = run_comparison(COMPARISONS["voc12"], output_dir=out, weights=weights)
    text = open(paths["markdown"]).read()
    assert "| | ours | — | — | — |" in text
    assert "10 detections on 5 images written for the server" in text
    assert (
        os.path.join(
            out, "detect_r101", "inference", "voc_2012_test", "voc_2012_test_submission.zip"
        )
        in text
    )
    paths = run_comparison(
        COMPARISONS["voc12"],
        output_dir=out,
        weights=weights,
        server_map={"vgg16": 70.0, "r101": 73.5},
    )
    text = open(paths["markdown"]).read()
    assert "| mAP | paper | 70.4 | 73.8 | +3.4 (+5%) |" in text
    assert "| | ours | 70.0 | 73.5 | +3.5 (+5%) |" in text
    assert json.load(open(paths["state"]))["server_map"] == {"vgg16": 70.0, "r101": 73.5}
