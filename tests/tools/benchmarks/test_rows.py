"""Every benchmark row runs at tiny sizes on CPU and fills the table (never a time)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import coco as bench_coco
from benchmarks import data as bench_data
from benchmarks import detection as bench_detection
from benchmarks import gpu as bench_gpu
from benchmarks.harness import TABLE_COLUMNS, BenchOptions, format_table

TINY = BenchOptions(batch=1, size=64, repetitions=1, warmup=0)
HAS_D2 = importlib.util.find_spec("detectron2") is not None


def _check(rows, names):
    assert [r.row for r in rows] == names
    for r in rows:
        if r.peer is not None:
            assert r.ours > 0 and r.peer > 0 and r.ratio == pytest.approx(r.ours / r.peer)
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count("|") == len(TABLE_COLUMNS) + 1 for line in lines)


def test_detection_inputs_same_for_both_sides():
    a, b = bench_detection.detection_inputs(TINY), bench_detection.detection_inputs(TINY)
    assert torch.equal(a[0]["image"], b[0]["image"]) and torch.equal(a[0]["boxes"], b[0]["boxes"])
    boxes = a[0]["boxes"]
    assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes[:, 2] <= a[0]["width"]).all()


def test_fpn_rows_against_torchvision():
    rows = bench_detection.fpn_rows(TINY, roi_batch=8)
    _check(rows, ["R50-FPN train iter", "R50-FPN inference"])
    assert rows[0].peer_name.startswith("torchvision")


def test_neutral_rpn_gives_the_roi_head_its_full_batch():
    # With trained-looking proposals (all anchors) the RoI head samples its whole batch.
    model = bench_detection.neutral_torchvision_rpn(
        bench_detection.build_ours(
            "modern/faster_rcnn_R50_C4_1x.yaml",
            TINY,
            ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16"],
        )
    )
    seen = []
    model.roi_heads.box_head.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    model.train()(bench_detection.detection_inputs(BenchOptions(batch=1, size=128)))
    assert seen == [16]


@pytest.mark.skipif(HAS_D2, reason="detectron2 is installed: the row runs instead")
def test_c4_rows_skip_without_detectron2():
    rows = bench_detection.c4_rows(TINY)
    _check(rows, ["R50-C4 train iter", "R101-C4 train iter"])
    assert all(r.ours is None and "detectron2" in r.note for r in rows)


@pytest.mark.skipif(not HAS_D2, reason="needs detectron2")
def test_c4_rows_against_detectron2():
    rows = bench_detection.c4_rows(TINY, depths=(50,), roi_batch=8, test_proposals=16)
    _check(rows, ["R50-C4 train iter", "R50-C4 inference"])
    assert "16 proposals/image" in rows[1].note


def test_loader_rows(tmp_path):
    rows = bench_data.loader_rows(
        str(tmp_path),
        BenchOptions(batch=2, size=64, repetitions=1, warmup=0),
        batches=1,
        num_images=4,
    )
    _check(rows, ["classification loader", "detection loader"])
    assert sorted(os.listdir(tmp_path / "imagenet" / "train")) == [f"n{c:08d}" for c in range(4)]
    assert rows[0].extra["ours_images_per_s"] == pytest.approx(1 / rows[0].ours)


def test_coco_rows_same_ap_both_sides(tmp_path):
    rows = bench_coco.coco_rows(
        str(tmp_path), BenchOptions(repetitions=1, warmup=0), num_images=12, dets_per_image=6
    )
    _check(rows, ["COCO eval, tools/evaluate.py path", "COCO eval, metric only"])
    for r in rows:
        assert (
            r.extra["ours_AP"] == pytest.approx(r.extra["peer_AP"], abs=1e-4)
            and r.extra["ours_AP"] > 0
        )


def test_segm_problem_masks_match_their_objects(tmp_path):
    gt_path, res_path = bench_coco.make_segm_problem(str(tmp_path), num_images=5, dets_per_image=4)
    gt, results = json.loads(open(gt_path).read()), json.loads(open(res_path).read())
    assert len(results) == 5 * 4
    assert all(isinstance(r["segmentation"]["counts"], str) and "bbox" not in r for r in results)
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        assert 0 < ann["area"] <= w * h + 1  # the polygon lies inside its box


def test_coco_segm_row_same_ap_both_sides(tmp_path):
    rows = bench_coco.coco_segm_rows(
        str(tmp_path), BenchOptions(repetitions=1, warmup=0), num_images=12, dets_per_image=6
    )
    _check(rows, ["COCO segm eval, metric only"])
    assert rows[0].extra["ours_AP"] == pytest.approx(rows[0].extra["peer_AP"], abs=1e-4)
    assert rows[0].extra["ours_AP"] > 0


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_end_to_end_rows_time_whole_processes_with_equal_ap(tmp_path, iou_type):
    rows = bench_coco.coco_e2e_rows(
        str(tmp_path),
        BenchOptions(repetitions=1, warmup=0),
        iou_type=iou_type,
        num_images=12,
        dets_per_image=6,
    )
    name = "COCO eval, end to end" if iou_type == "bbox" else "COCO segm eval, end to end"
    _check(rows, [name])
    extra = rows[0].extra
    # Both processes scored the same files: tools/evaluate.py's metrics.json and the
    # pycocotools script's COCOeval.stats agree on all six AP numbers.
    assert extra["max_abs_ap_diff"] <= 1e-6 and extra["ours_AP"] > 0
    assert extra["ours_process_s"] > 0 and extra["peer_process_s"] > 0
    assert len(extra["ours_wall_all"]) == len(extra["peer_wall_all"]) == 1


def test_coco_error_row(tmp_path):
    rows = bench_coco.coco_error_rows(
        str(tmp_path), BenchOptions(repetitions=1, warmup=0), num_images=12, dets_per_image=6
    )
    _check(rows, ["COCO error analysis"])
    extra = rows[0].extra
    assert extra["tide_AP50"] > 0 and extra["coco_AP50"] > 0
    assert {f"dAP/{k}" for k in ("cls", "loc", "both", "dupe", "bkg", "miss")} <= set(extra)


def test_gpu_rows_run_on_cpu(tmp_path):
    opts = BenchOptions(batch=2, size=32, repetitions=1, warmup=0)
    rows = bench_gpu.resnet50_rows(opts)
    train = bench_data.write_jpeg_folder(
        str(tmp_path), num_classes=2, per_class=2, height=48, width=64
    )
    rows.append(bench_gpu.jpeg_pipeline_row(train, opts, workers=0, iterations=1))
    # Our loader on the CPU "device" (INPUT.DECODE_DEVICE cpu): the same path as "cuda".
    rows.append(bench_gpu.pretraining_loader_row(train, opts, workers=0, iterations=1))
    _check(
        rows,
        [
            "ResNet-50 train step",
            "JPEG pipeline + ResNet-50 step",
            "ResNet-50 pretraining, our loader on the device",
        ],
    )
    assert rows[2].extra["ours_images_per_s"] == pytest.approx(2 / rows[2].ours)
    assert rows[0].extra["ours_tflops"] > 0 and "bf16_peak_tflops" not in rows[0].extra  # no card
    assert rows[1].extra["pipeline_fraction_of_model_rate"] == pytest.approx(
        rows[1].peer / rows[1].ours
    )


def test_gpu_augment_shape_and_normalisation():
    g = torch.Generator().manual_seed(0)
    images = [
        torch.full((3, 40, 60), 124, dtype=torch.uint8),
        torch.zeros(3, 30, 20, dtype=torch.uint8),
    ]
    batch = bench_gpu.gpu_augment(images, 16, g)
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == torch.float32
    assert batch[0, 0].abs().max() < 0.02  # 124 is about the red mean


@pytest.mark.slow
def test_r101_c4_row_on_cpu():
    row = bench_gpu.r101_c4_amp_row(
        BenchOptions(batch=1, size=64, repetitions=1, warmup=0), roi_batch=8
    )
    assert row.ours > 0 and row.peer is None and "0.619" in row.peer_name


# tools/gpu_check.sh's GPU machine has torch and torchvision but not fvcore, iopath or
# pycocotools: the ResNet-50 and JPEG pipeline rows must import and run without them.
_WITHOUT_CONFIG_DEPS = """
import sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fvcore", "iopath", "pycocotools", "faster_coco_eval"):
            raise ImportError(f"{name} is not installed here")

sys.meta_path.insert(0, Missing())
sys.path.insert(0, sys.argv[1])
from benchmarks.harness import BenchOptions
from benchmarks.rows import run_rows

opts = BenchOptions(batch=2, size=32, repetitions=1, warmup=0)
rows = run_rows(["gpu_resnet50", "gpu_pipeline"], opts, opts, work_dir=sys.argv[2],
                gpu_workers=0, gpu_images=8)
print([r.row for r in rows], "fvcore" in sys.modules, "pycocotools" in sys.modules)
"""


def test_resnet50_and_pipeline_rows_need_no_config_dependencies(tmp_path):
    tools = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools")
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CONFIG_DEPS, tools, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-2] == (
        "['ResNet-50 train step', 'JPEG pipeline + ResNet-50 step'] False False"
    )


def test_every_named_coco_row_has_its_function_and_the_flags_parse():
    import inspect

    from benchmarks import rows

    for name, (function, keywords) in rows._COCO_ROWS.items():
        assert name in rows.ROWS
        parameters = inspect.signature(getattr(bench_coco, function)).parameters
        assert {"num_images", "dets_per_image", *keywords} <= set(parameters), name
    spec = importlib.util.spec_from_file_location(
        "benchmark_tool", os.path.join(os.path.dirname(bench_coco.__file__), "..", "benchmark.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(
        ["--rows", "coco_annotations", "--annotation-images", "5", "--annotation-count", "9"]
        + ["--detectron2-python", "/x/python"]
    )
    assert (args.annotation_images, args.annotation_count) == (5, 9)
    assert args.detectron2_python == "/x/python"
    assert tool.parse_args([]).annotation_images == 118_287
