"""tools/predict.py end to end: pictures and a predictions.json that tools/evaluate.py scores;
bad inputs named and left out; the demo default and its message when untrained."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "predictor"))
import _demo  # noqa: E402


def _tool():
    spec = importlib.util.spec_from_file_location(
        "predict", os.path.join(ROOT, "tools", "predict.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    files, json_file = _demo.write_images(str(folder / "images"))
    name = _demo.register(str(folder / "images"), json_file)
    weights = _demo.save_random_checkpoint(str(folder / "model_final.pth"))
    yield name, files, weights, folder
    _demo.unregister(name)


def _run(argv, capsys):
    code = _tool().main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pictures_and_predictions_json_that_evaluate_accepts(
    setup, tmp_path, capsys, single_thread
):
    from resnet_det.evaluation import evaluate_results_file

    name, files, weights, folder = setup
    out = tmp_path / "out"
    code, stdout, _ = _run(
        [
            "--config-file",
            _demo.DEMO_CONFIG,
            "--input",
            str(folder / "images"),
            "--output",
            str(out),
            "--dataset",
            name,
            "--confidence-threshold",
            "0.0",
            "--batch-size",
            "2",
            "--opts",
        ]
        + _demo.SMALL
        + ["MODEL.WEIGHTS", weights],
        capsys,
    )
    assert code == 0
    assert "3 images in" in stdout and "images/s" in stdout
    pictures = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert pictures == [os.path.basename(f) for f in files]
    for p in pictures:
        with Image.open(out / p) as im:
            assert im.size[0] > 300 and im.mode in ("RGB", "RGBA")
    entries = json.loads((out / "predictions.json").read_text())
    assert {e["image_id"] for e in entries} == {100, 101, 102}  # the dataset's ids
    assert {e["file_name"] for e in entries} == set(files)
    assert {e["category_id"] for e in entries} <= {1, 2, 3}
    assert all(len(e["bbox"]) == 4 and e["bbox"][2] >= 0 for e in entries)
    results = evaluate_results_file(name, str(out / "predictions.json"))
    assert 0.0 <= results["bbox"]["AP50"] <= 100.0


def test_bad_inputs_are_named_and_the_others_processed(setup, tmp_path, capsys, single_thread):
    _, files, weights, _ = setup
    bad = tmp_path / "bad"
    bad.mkdir()
    rgb = _demo.rgb_array(files[0])
    Image.fromarray(rgb[:, :, 0]).save(bad / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(bad / "alpha.png")
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("not an image")
    inputs = [
        files[0],
        str(bad / "missing.jpg"),
        str(bad / "empty.jpg"),
        str(bad / "text.png"),
        str(bad / "grey.png"),
        str(bad / "alpha.png"),
        str(bad / "*.nothing"),
    ]
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        ["--config-file", _demo.DEMO_CONFIG, "--input"]
        + inputs
        + ["--output", str(out), "--opts"]
        + _demo.SMALL
        + ["MODEL.WEIGHTS", weights],
        capsys,
    )
    assert code == 1
    for name, reason in (
        ("missing.jpg", "does not exist"),
        ("empty.jpg", "empty (0 bytes)"),
        ("text.png", "UnidentifiedImageError"),
        ("*.nothing", "matches no file"),
    ):
        line = next(x for x in stderr.splitlines() if name in x)
        assert reason in line, line
    assert "DATALOADER.ON_BAD_IMAGE" not in stderr  # dataset advice does not apply here
    assert sorted(p for p in os.listdir(out) if p.endswith(".png")) == [
        "000000.png",
        "alpha.png",
        "grey.png",
    ]
    assert "3 images in" in stdout and "3 inputs skipped" in stdout


def test_single_picture_output_and_video_without_opencv(setup, tmp_path, capsys, single_thread):
    _, files, weights, _ = setup
    args = ["--config-file", _demo.DEMO_CONFIG, "--opts"] + _demo.SMALL + ["MODEL.WEIGHTS", weights]
    code, _, _ = _run(["--input", files[1], "--output", str(tmp_path / "one.png")] + args, capsys)
    assert code == 0 and (tmp_path / "one.png").is_file() and (tmp_path / "one.json").is_file()
    try:
        import cv2  # noqa: F401
    except ImportError:
        (tmp_path / "clip.mp4").write_bytes(b"\x00" * 16)
        code, _, stderr = _run(
            ["--input", str(tmp_path / "clip.mp4"), "--output", str(tmp_path / "v")] + args, capsys
        )
        assert code == 1 and "clip.mp4" in stderr and "OpenCV" in stderr


def test_demo_default_says_how_to_train_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no output/demo_shapes/model_final.pth here
    from resnet_det.utils.errors import MissingFileError

    with pytest.raises(
        MissingFileError, match=r"output/demo_shapes/model_final.pth.*tools/train_net.py"
    ):
        _tool().main(["--input", str(tmp_path)])


def test_mask_rcnn_pictures_and_predictions_json_with_masks(tmp_path, capsys, single_thread):
    # The Mask R-CNN demo config with random weights: masks drawn, RLE masks written, and
    # tools/evaluate.py's scoring gives box and mask AP for the file.
    from resnet_det.evaluation import evaluate_results_file

    files, json_file = _demo.write_images(str(tmp_path / "images"), masks=True)
    name = _demo.register(str(tmp_path / "images"), json_file)
    try:
        weights = _demo.save_random_checkpoint(
            str(tmp_path / "model_final.pth"), config=_demo.MASK_DEMO_CONFIG
        )
        out = tmp_path / "out"
        code, stdout, _ = _run(
            [
                "--config-file",
                _demo.MASK_DEMO_CONFIG,
                "--input",
                str(tmp_path / "images"),
                "--output",
                str(out),
                "--dataset",
                name,
                "--confidence-threshold",
                "0.0",
                "--opts",
            ]
            + _demo.SMALL
            + ["MODEL.WEIGHTS", weights],
            capsys,
        )
        assert code == 0 and "3 images in" in stdout
        assert sorted(p for p in os.listdir(out) if p.endswith(".png")) == [
            os.path.basename(f) for f in files
        ]
        entries = json.loads((out / "predictions.json").read_text())
        sizes = {f: list(Image.open(f).size[::-1]) for f in files}
        assert entries and all(e["segmentation"]["size"] == sizes[e["file_name"]] for e in entries)
        results = evaluate_results_file(name, str(out / "predictions.json"))
        assert list(results) == ["bbox", "segm"] and 0.0 <= results["segm"]["AP50"] <= 100.0
    finally:
        _demo.unregister(name)
