"""The report's numbers: which results count as ours, and how times read."""

from reproduction import COMPARISONS
from reproduction.report import format_seconds, ours


def test_ours_reads_the_detection_runs_box_metrics():
    state = {
        "steps": {
            # One test set: {"bbox": ...}; several: {name: {"bbox": ...}} (DetectionTrainer.test).
            "detect_vgg16": {"status": "done", "results": {"bbox": {"AP50": 41.0, "AP": 21.0}}},
            "detect_r101": {
                "status": "done",
                "results": {"coco_2014_val": {"bbox": {"AP50": 48.0, "AP": 27.5}}},
            },
        }
    }
    assert ours(COMPARISONS["8"], state) == {
        "vgg16": {"mAP@.5": 41.0, "mAP@[.5,.95]": 21.0},
        "r101": {"mAP@.5": 48.0, "mAP@[.5,.95]": 27.5},
    }
    # A run that has not finished counts as not measured, whatever it wrote before.
    state["steps"]["detect_r101"]["status"] = "interrupted"
    assert ours(COMPARISONS["8"], state)["r101"] == {"mAP@.5": None, "mAP@[.5,.95]": None}
    # VOC's column is the evaluator's AP50.
    voc = {
        "steps": {
            "detect_r101": {"status": "done", "results": {"bbox": {"AP50": 76.0, "AP": 50.0}}}
        }
    }
    assert ours(COMPARISONS["7"], voc)["r101"] == {"mAP": 76.0}


def test_format_seconds():
    assert [format_seconds(s) for s in (0.4, 59.6, 61, 3599, 3600, 7381)] == [
        "0 s",
        "1 min 00 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "2 h 03 min",
    ]


ERRORS = ("cls", "loc", "both", "dupe", "bkg", "miss", "false_pos", "false_neg")


def test_error_breakdown_needs_both_runs():
    from reproduction.report import error_breakdown

    dap = {f"dAP/{k}": float(i) for i, k in enumerate(ERRORS)}
    state = {
        "steps": {
            "detect_vgg16": {"status": "done", "results": {"bbox": {"AP50": 41.0, **dap}}},
            "detect_r101": {"status": "done", "results": {"bbox": {"AP50": 48.0}}},
        }
    }
    assert error_breakdown(COMPARISONS["8"], state) is None  # r101 ran without the analysis
    state["steps"]["detect_r101"]["results"]["bbox"].update(dap)
    out = error_breakdown(COMPARISONS["8"], state)
    assert out["r101"] == out["vgg16"] == {k: float(i) for i, k in enumerate(ERRORS)}
