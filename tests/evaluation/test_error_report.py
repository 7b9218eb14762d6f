"""report.html and the pictures of the error analysis: every file written, the page's tables
hold the analysis' numbers, and the page checked in a real headless browser (Chromium): it
loads from disk with no server, every picture renders, no console errors."""

import html
import json
import os
import re

import pytest

from resnet_det.evaluation.error_analysis import analyze_errors
from resnet_det.evaluation.error_report import write_error_report

from ._analyze_reference import _coco
from ._browser import REQUIRE_ENV, check_page, find_chromium
from ._error_problem import random_problem


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    analyses, metrics = {}, {}
    for task in ("bbox", "segm"):
        gt, results = random_problem(1, num_images=8, masks=task == "segm")
        analyses[task] = analyze_errors(_coco(gt), results, iou_type=task)
        metrics[task] = {"AP": 31.0, "APs": 20.0, "APm": 30.0, "APl": float("nan"), "AP-cat": 1.0}
    written = write_error_report(analyses, metrics, str(out), title="demo <set>")
    return out, analyses, written


def test_files_and_tables(report):
    out, analyses, written = report
    page = (out / "report.html").read_text()
    for task in ("bbox", "segm"):
        for name in (
            "tide",
            "analysis",
            "analysis_per_category",
            "ap_per_category",
            "ap_by_size",
            "confusion",
        ):
            path = out / f"{task}_{name}.png"
            assert path.stat().st_size > 2000, path
            assert f'src="{task}_{name}.png"' in page
        tide = analyses[task].tide
        for value in tide.dap.values():
            assert f"{value:.2f}" in page
        assert f"{tide.ap50:.2f}" in page
    # The title is escaped; every <img> points at a file beside the page.
    assert "demo &lt;set&gt;" in page and "demo <set>" not in page
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert os.path.isfile(out / html.unescape(src)), src
    data = json.loads((out / "error_analysis.json").read_text())
    assert data["bbox"]["tide"]["dap"] == pytest.approx(analyses["bbox"].tide.dap)
    assert set(written) >= {"json", "report", "bbox/tide", "segm/confusion"}


def test_report_in_headless_browser(report):
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(
                f"{REQUIRE_ENV} is set but no Chromium is installed (.ci/install_chromium.sh)"
            )
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client is not installed")
    out, _, _ = report
    result = check_page(str(out / "report.html"), chromium)
    assert result["loaded"]
    assert result["title"] == "Error analysis: demo <set>"
    assert len(result["images"]) == 12
    for src, width in result["images"]:
        assert width > 0, f"{src} did not render"
    assert result["errors"] == []


def test_browser_check_sees_a_broken_image(report, tmp_path):
    """The check itself can fail: a page with a missing picture is caught."""
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but no Chromium is installed")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client is not installed")
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<img src="missing.png"></body></html>'
    )
    result = check_page(str(page), chromium)
    assert result["images"] == [("missing.png", 0)]
    assert any("missing.png" in e for e in result["errors"]), result["errors"]
