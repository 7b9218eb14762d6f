"""Which rows tools/benchmark.py runs, by name (the rows themselves are in the modules beside
this one)."""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import torchvision

from resnet_det.modeling.zoo import create_model

from .annotations import COCO_TRAIN_ANNOTATIONS, COCO_TRAIN_IMAGES
from .data import loader_rows, write_jpeg_folder
from .gpu import jpeg_pipeline_row, pretraining_loader_row, r101_c4_amp_row, resnet50_rows
from .harness import BenchOptions, BenchRow, classifier_rows

__all__ = ["ROWS", "run_rows"]

ROWS = (
    "classifier",
    "detector",
    "c4",
    "loaders",
    "coco",
    "coco_segm",
    "coco_errors",
    "coco_e2e",
    "coco_segm_e2e",
    "coco_annotations",
    "gpu_resnet50",
    "gpu_pipeline",
    "gpu_pretrain",
    "gpu_r101_c4",
)

# The rows on one generated COCO problem (coco_images x coco_dets, no warm-up: an evaluation
# has nothing to tune, and one call takes seconds to minutes): the function of coco.py that
# makes them and its keywords. Named, not imported: coco.py needs pycocotools, which the GPU
# rows' machine lacks.
_COCO_ROWS = {
    "coco": ("coco_rows", {}),
    "coco_segm": ("coco_segm_rows", {}),
    "coco_errors": ("coco_error_rows", {}),
    "coco_e2e": ("coco_e2e_rows", {"iou_type": "bbox"}),
    "coco_segm_e2e": ("coco_e2e_rows", {"iou_type": "segm"}),
}


def run_rows(
    rows: Sequence[str],
    opts: BenchOptions,
    det: BenchOptions,
    *,
    work_dir: str,
    models: Sequence[str] = ("resnet50",),
    roi_batch: int = 512,
    coco_images: int = 2000,
    coco_dets: int = 100,
    coco_repetitions: int = 3,
    loader_batches: int = 4,
    gpu_workers: int = 8,
    gpu_images: int = 512,
    test_proposals: Optional[int] = None,
    annotation_images: int = COCO_TRAIN_IMAGES,
    annotation_count: int = COCO_TRAIN_ANNOTATIONS,
    detectron2_python: Optional[str] = None,
) -> List[BenchRow]:
    """The named rows, in ROWS order.

    Args:
        rows: names from ROWS.
        opts: options of the classifier, loader and GPU classifier rows.
        det: options of the detector rows (their batch and shorter side).
        work_dir: where generated JPEGs and COCO files go.
        models: classifier row: names both in resnet_det.list_models() and torchvision.models.
        roi_batch: RoIs sampled per image in the detectors (both sides).
        coco_images, coco_dets, coco_repetitions: the COCO evaluation problem and repetitions.
        loader_batches: batches per timed loader call.
        gpu_workers, gpu_images: the JPEG pipeline and pretraining rows' loader workers and
            generated files.
        test_proposals: C4 inference rows: proposals per image (None: the configs' 1000).
        annotation_images, annotation_count: the generated file of the coco_annotations rows
            (default COCO 2017 train's size).
        detectron2_python: the interpreter of an environment with detectron2 that runs the
            coco_annotations rows' detectron2 loads (default: this interpreter).
    """
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise ValueError(f"unknown benchmark rows {unknown}; choose from {list(ROWS)}")
    out: List[BenchRow] = []
    coco_opts = BenchOptions(repetitions=coco_repetitions, warmup=0, clock=opts.clock)
    if "classifier" in rows:
        # torchvision's layout puts the stride in the 3x3 conv ("v1.5"); compare like with like.
        out += classifier_rows(
            models,
            opts,
            peer=lambda n: getattr(torchvision.models, n)(),
            ours=lambda n: create_model(n, **({} if "vgg" in n else {"stride_in_1x1": False})),
        )
    # The detector and COCO rows import resnet_det's config and evaluation, which need fvcore,
    # iopath and pycocotools; imported here, so that the ResNet-50 and JPEG pipeline rows run
    # where those are not installed (tools/gpu_check.sh's GPU machine).
    if "detector" in rows:
        from .detection import fpn_rows

        out += fpn_rows(det, roi_batch=roi_batch)
    if "c4" in rows:
        from .detection import c4_rows

        out += c4_rows(det, roi_batch=roi_batch, test_proposals=test_proposals)
    if "loaders" in rows:
        out += loader_rows(
            os.path.join(work_dir, "loaders"),
            BenchOptions(**{**vars(opts), "device": "cpu"}),
            batches=loader_batches,
        )
    for name, (function, keywords) in _COCO_ROWS.items():
        if name in rows:
            from . import coco

            out += getattr(coco, function)(
                os.path.join(work_dir, name),
                coco_opts,
                num_images=coco_images,
                dets_per_image=coco_dets,
                **keywords,
            )
    if "coco_annotations" in rows:
        from .annotations import annotation_rows

        out += annotation_rows(
            os.path.join(work_dir, "coco_annotations"),
            coco_opts,
            num_images=annotation_images,
            num_annotations=annotation_count,
            detectron2_python=detectron2_python,
        )
    if "gpu_resnet50" in rows:
        out += resnet50_rows(opts)
    if "gpu_pipeline" in rows:
        train = write_jpeg_folder(
            os.path.join(work_dir, "imagenet"), num_classes=8, per_class=max(1, gpu_images // 8)
        )
        out.append(jpeg_pipeline_row(train, opts, workers=gpu_workers))
    if "gpu_pretrain" in rows:
        train = write_jpeg_folder(
            os.path.join(work_dir, "imagenet"), num_classes=8, per_class=max(1, gpu_images // 8)
        )
        out.append(pretraining_loader_row(train, opts, workers=gpu_workers))
    if "gpu_r101_c4" in rows:
        out.append(r101_c4_amp_row(det, roi_batch=roi_batch))
    return out
