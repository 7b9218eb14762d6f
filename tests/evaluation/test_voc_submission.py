"""voc_2012_test's evaluator writes the PASCAL server's submission (comp4_det_test_<class>.txt
per class in results/VOC2012/Main/, zipped) instead of computing AP; boxes go back to the
xml's 1-based pixel values (xmin / ymin + 1, as the reader took 1 off)."""

import os
import zipfile

import pytest
import torch

from resnet_det.data.datasets.voc import VOC_CLASSES, load_voc_instances
from resnet_det.evaluation import PascalVOCSubmissionWriter, build_evaluator
from resnet_det.evaluation.voc_submission import submission_zip_path
from resnet_det.utils.errors import DataError


def _output(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels),
    }


def _xml(root, image_id, box):
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as f:
        f.write(
            "<annotation><size><width>500</width><height>375</height></size><object>"
            "<name>cat</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax>"
            "<ymax>{}</ymax></bndbox></object></annotation>".format(*box)
        )
    with open(os.path.join(root, "ImageSets", "Main", "x.txt"), "w") as f:
        f.write(image_id + "\n")


def test_writes_the_servers_files_and_zip(tmp_path):
    out = str(tmp_path / "inference")
    writer = build_evaluator("voc_2012_test", out, distributed=False)
    assert isinstance(writer, PascalVOCSubmissionWriter)
    # A detection exactly on a box the VOC reader read from <xmin>10 <ymin>20 <xmax>110 <ymax>220
    # comes out as that xml's values.
    _xml(str(tmp_path / "voc"), "2008_000001", (10, 20, 110, 220))
    read_box = load_voc_instances(str(tmp_path / "voc"), "x")[0]["annotations"][0]["bbox"]
    assert read_box == [9.0, 19.0, 110.0, 220.0]
    cat, dog = VOC_CLASSES.index("cat"), VOC_CLASSES.index("dog")
    writer.reset()
    writer.process(
        [{"image_id": "2008_000002"}], [_output([[0.5, 1.25, 30.0, 40.0]], [0.25], [dog])]
    )
    writer.process(
        [{"image_id": "2008_000001"}],
        [_output([read_box, [5, 5, 50, 60]], [0.5, 0.875], [cat, cat])],
    )
    result = writer.evaluate()
    assert result == {"voc_submission": {"detections": 3.0, "images": 2.0}}

    main = os.path.join(out, "results", "VOC2012", "Main")
    assert sorted(os.listdir(main)) == sorted(f"comp4_det_test_{c}.txt" for c in VOC_CLASSES)
    with open(os.path.join(main, "comp4_det_test_cat.txt")) as f:
        # <image id> <confidence> <xmin> <ymin> <xmax> <ymax>, per image by decreasing score.
        assert f.read() == (
            "2008_000001 0.875000 6.0 6.0 50.0 60.0\n2008_000001 0.500000 10.0 20.0 110.0 220.0\n"
        )
    with open(os.path.join(main, "comp4_det_test_dog.txt")) as f:
        assert f.read() == "2008_000002 0.250000 1.5 2.2 30.0 40.0\n"
    with open(os.path.join(main, "comp4_det_test_bird.txt")) as f:
        assert f.read() == ""

    zip_path = submission_zip_path(out, "voc_2012_test")
    assert zip_path == os.path.join(out, "voc_2012_test_submission.zip")
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        assert names == [f"results/VOC2012/Main/comp4_det_test_{c}.txt" for c in VOC_CLASSES]
        with open(os.path.join(main, "comp4_det_test_cat.txt"), "rb") as f:
            assert z.read("results/VOC2012/Main/comp4_det_test_cat.txt") == f.read()
    # The same detections give the same archive, byte for byte.
    with open(zip_path, "rb") as f:
        first = f.read()
    writer.evaluate()
    with open(zip_path, "rb") as f:
        assert f.read() == first


def test_a_results_file_counts_its_images(tmp_path):
    # A results file's detections go through process_results: their images are counted too.
    import numpy as np

    from resnet_det.evaluation.results_file import DatasetResults

    writer = build_evaluator("voc_2012_test", str(tmp_path / "out"), distributed=False)
    cat = VOC_CLASSES.index("cat")
    images = {i: {"image_id": i, "height": 375, "width": 500} for i in ("2008_1", "2008_2")}
    results = DatasetResults(
        images,
        ["2008_1", "2008_2", "2008_1"],
        [cat + 1] * 3,
        np.full(3, cat, dtype=np.int64),
        np.array([[1.0, 2.0, 30.0, 40.0]] * 3),
        np.array([0.5, 0.25, 0.75]),
        None,
    )
    writer.reset()
    writer.process_results(results)
    assert writer.evaluate() == {"voc_submission": {"detections": 3.0, "images": 2.0}}


def test_needs_an_output_folder():
    with pytest.raises(DataError, match="OUTPUT_DIR"):
        build_evaluator("voc_2012_test", None, distributed=False)
