"""tools/export_model.py: artifact + description + check, and a failing check fails the tool."""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "predictor"))
import _demo  # noqa: E402


def _tool():
    spec = importlib.util.spec_from_file_location(
        "export_model", os.path.join(ROOT, "tools", "export_model.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return _demo.save_random_checkpoint(str(tmp_path_factory.mktemp("export") / "model_final.pth"))


def test_onnx_export_writes_artifact_description_and_checks_two_sizes(
    weights, tmp_path, single_thread
):
    out = tmp_path / "exported"
    report = _tool().main(
        ["--format", "onnx", "--config-file", _demo.DEMO_CONFIG, "--output", str(out), "--opts"]
        + _demo.SMALL
        + ["MODEL.WEIGHTS", weights]
    )
    assert report.passed and report.artifact == str(out / "model.onnx")
    desc = json.loads((out / "model.json").read_text())
    assert desc["format"] == "onnx" and desc["class_names"] == ["circle", "square", "triangle"]
    assert [i["name"] for i in desc["inputs"]] == ["image"]
    assert [o["name"] for o in desc["outputs"]] == ["boxes", "scores", "labels"]
    assert desc["inputs"][0]["sizes"] == {"height": "any", "width": "any"}
    checks = desc["verification"]
    assert len(checks) == 2 and all(c["passed"] and c["num_eager"] > 0 for c in checks)
    assert checks[0]["size"] != checks[1]["size"]  # a second image of another size


def test_a_difference_beyond_the_tolerance_fails_the_tool(weights, tmp_path, monkeypatch, capsys):
    from resnet_det.export import pipeline
    from resnet_det.utils.cli import run_tool

    real = pipeline.load_artifact

    def shifted(fmt, path, device=None):  # an export whose boxes are 0.5 px off
        run = real(fmt, path, device)
        return lambda image: (lambda b, s, label: (b + 0.5, s, label))(*run(image))

    monkeypatch.setattr(pipeline, "load_artifact", shifted)
    with pytest.raises(SystemExit) as exit_info:
        run_tool(
            "export_model.py",
            _tool().main,
            [
                "--format",
                "torchscript",
                "--config-file",
                _demo.DEMO_CONFIG,
                "--output",
                str(tmp_path),
                "--opts",
            ]
            + _demo.SMALL
            + ["MODEL.WEIGHTS", weights],
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "differs from the eager detector beyond the tolerance" in err and "0.5 px" in err
    assert (tmp_path / "model.json").is_file()  # the numbers are kept for inspection
    assert not json.loads((tmp_path / "model.json").read_text())["verification"][0]["passed"]
