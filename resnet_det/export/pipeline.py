"""Config + trained weights -> an exported detector, its description, and proof that it works.

``export_detector`` (what tools/export_model.py runs) loads the detector as ``resnet_det.Predictor``
does, prepares the sample image as the predictor would (the config's test-time resize), exports,
writes ``<artifact>.json`` describing the inputs and outputs, then runs the artifact on the
sample and on a second image of another size and compares with the eager detector
(export.verify). A comparison beyond the tolerance raises ExportError after the description
(with the numbers) is written.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..data.datasets.shapes import render_shapes_image
from ..predictor.inputs import to_image_tensor
from ..predictor.predictor import Predictor
from ..utils.file_io import atomic_write_text
from .formats import EXTENSIONS, FORMATS, ONNX_OPSET, ExportError, export_artifact, load_artifact
from .module import INPUT_NAMES, MASK_OUTPUT_NAMES, OUTPUT_NAMES
from .verify import DEFAULT_TOLERANCE, ImageComparison, Tolerance, compare_detections

__all__ = ["ExportReport", "export_detector", "artifact_path", "sample_images"]

logger = logging.getLogger(__name__)


@dataclass
class ExportReport:
    """What ``export_detector`` wrote and measured."""

    artifact: str
    description: str
    input_sizes: Dict[str, Any]
    comparisons: List[ImageComparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)


def artifact_path(output: str, fmt: str) -> str:
    """``output`` if it names a file with the format's extension, else OUTPUT/model.<ext>."""
    ext = EXTENSIONS[fmt]
    if output.endswith(ext):
        return output
    if os.path.splitext(output)[1] and not os.path.isdir(output):
        raise ExportError(f"--output {output!r}: a {fmt} file ends with {ext} (or give a folder)")
    return os.path.join(output, "model" + ext)


def _demo_sample() -> torch.Tensor:
    """An RGB uint8 [3, H, W] image of the demo's generated shapes (no file needed)."""
    image, _ = render_shapes_image(0, 0, "val")
    return torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous()


def sample_images(
    predictor, sample_image: Optional[str], same_size: bool
) -> List[Tuple[str, torch.Tensor]]:
    """(name, model input image float32 [3, H, W]) for the sample and a second image: the
    sample with height and width swapped (a 3/4-wide crop of a square one), or, when
    ``same_size``, the sample mirrored (an artifact of fixed size takes no other size)."""
    if sample_image:
        original, name = to_image_tensor(sample_image, predictor.input_format), sample_image
    else:
        rgb, name = _demo_sample(), "generated demo image"
        original = rgb.flip(0) if predictor.input_format == "BGR" else rgb
    if same_size:
        second, how = original.flip(-1), "mirrored"
    elif original.shape[1] != original.shape[2]:
        second, how = original.transpose(1, 2).contiguous(), "transposed"
    else:
        second, how = original[:, :, : original.shape[2] * 3 // 4].contiguous(), "cropped"
    out = []
    for label, image in ((name, original), (f"{name} ({how})", second)):
        out.append((label, predictor.model_input(image)["image"].float()))
    return out


def _mask_outputs(model) -> List[Dict[str, Any]]:
    if not getattr(model, "mask_on", False):
        return []
    return [
        {
            "name": MASK_OUTPUT_NAMES[3],
            "dtype": "float32",
            "shape": ["detections", 1, "M", "M"],
            "description": "mask probabilities at the mask head's resolution (M = 28 FPN, 14 C4) "
            "in each box's frame; paste with torchvision's "
            "paste_masks_in_image(masks, boxes, (H, W)), threshold 0.5",
        }
    ]


def _description(
    predictor,
    fmt: str,
    artifact: str,
    sizes: Dict[str, Any],
    tolerance: Tolerance,
    comparisons: List[ImageComparison],
) -> Dict[str, Any]:
    cfg = predictor.cfg
    dims = [3, "height", "width"]
    return {
        "format": fmt,
        "artifact": os.path.basename(artifact),
        "weights": predictor.weights,
        "torch": torch.__version__,
        "onnx_opset": ONNX_OPSET if fmt == "onnx" else None,
        "inputs": [
            {
                "name": INPUT_NAMES[0],
                "dtype": "float32",
                "shape": dims,
                "sizes": sizes,
                "description": (
                    f"one image, {cfg.INPUT.FORMAT} channel order, values 0-255, resized "
                    f"as the config's test-time resize: shorter side "
                    f"{cfg.INPUT.MIN_SIZE_TEST}, longer side at most {cfg.INPUT.MAX_SIZE_TEST} "
                    "(resnet_det.Predictor.model_input does it); normalisation and "
                    "padding are inside the model"
                ),
            }
        ],
        "outputs": [
            {
                "name": OUTPUT_NAMES[0],
                "dtype": "float32",
                "shape": ["detections", 4],
                "description": "XYXY boxes in the input image's pixels (multiply by original "
                "size / input size for the original image)",
            },
            {
                "name": OUTPUT_NAMES[1],
                "dtype": "float32",
                "shape": ["detections"],
                "description": f"scores >= MODEL.ROI_HEADS.SCORE_THRESH_TEST "
                f"({cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST}), at most "
                f"{cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE} detections",
            },
            {
                "name": OUTPUT_NAMES[2],
                "dtype": "int64",
                "shape": ["detections"],
                "description": "0-based class index into class_names",
            },
        ]
        + _mask_outputs(predictor.model),
        "class_names": list(predictor.class_names),
        "input_format": cfg.INPUT.FORMAT,
        "test_resize": {"min_size": cfg.INPUT.MIN_SIZE_TEST, "max_size": cfg.INPUT.MAX_SIZE_TEST},
        "tolerance": {"boxes_px": tolerance.boxes, "scores": tolerance.scores},
        "verification": [c.to_dict() for c in comparisons],
    }


def export_detector(
    cfg,
    fmt: str,
    output: str,
    *,
    sample_image: Optional[str] = None,
    weights: Optional[str] = None,
    dynamic: bool = True,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> ExportReport:
    """Export the trained detector of ``cfg`` (weights as ``resnet_det.Predictor`` finds them)
    in format ``fmt`` to ``output`` (a file or a folder), describe it and verify it.

    Args:
        cfg: the detector's config (not modified).
        fmt: "torchscript", "onnx" or "torch_export".
        output: the artifact file, or a folder for OUTPUT/model.<ext>.
        sample_image: an image file to trace and check with (default: a generated demo image).
        weights: the detector checkpoint (default MODEL.WEIGHTS, else OUTPUT_DIR/model_final.pth).
        dynamic: height and width free (as far as the format allows); False fixes them to the
            sample's.
        tolerance: the largest accepted difference from the eager detector.
    Raises:
        ExportError: the export failed, or the artifact's outputs differ beyond ``tolerance``.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    predictor = Predictor(cfg, weights=weights, device="cpu")
    model = predictor.model
    artifact = artifact_path(output, fmt)
    images = sample_images(predictor, sample_image, same_size=not dynamic)
    logger.info(
        "Exporting %s to %s (sample %s, %dx%d)",
        fmt,
        artifact,
        images[0][0],
        *images[0][1].shape[-2:],
    )
    sizes = export_artifact(model, fmt, images[0][1], artifact, dynamic=dynamic)
    run = load_artifact(fmt, artifact)
    roi = predictor.cfg.MODEL.ROI_HEADS
    comparisons = []
    for name, image in images:
        with torch.no_grad():
            eager = model([{"image": image}])[0]
        try:
            got = run(image)
        except Exception as e:  # e.g. a size outside a torch.export artifact's range
            raise ExportError(
                f"the exported {fmt} model fails on {name} ({image.shape[1]}x"
                f"{image.shape[2]}): {type(e).__name__}: {e}"
            ) from e
        comparisons.append(
            compare_detections(
                (eager["boxes"], eager["scores"], eager["labels"]),
                got[:3],
                image=name,
                size=tuple(image.shape[-2:]),
                tolerance=tolerance,
                score_thresh=roi.SCORE_THRESH_TEST,
                max_detections=roi.DETECTIONS_PER_IMAGE,
            )
        )
    description = os.path.splitext(artifact)[0] + ".json"
    atomic_write_text(
        description,
        json.dumps(_description(predictor, fmt, artifact, sizes, tolerance, comparisons), indent=2),
    )
    report = ExportReport(artifact, description, sizes, comparisons)
    for c in comparisons:
        logger.info("%s", c.describe())
        if c.num_eager == 0:
            logger.warning(
                "%s: the detector finds nothing above the score threshold %s, so the "
                "comparison checks only that the export finds nothing too (a lower "
                "MODEL.ROI_HEADS.SCORE_THRESH_TEST compares more)",
                c.image,
                roi.SCORE_THRESH_TEST,
            )
    if not report.passed:
        failed = "; ".join(c.describe() for c in comparisons if not c.passed)
        raise ExportError(
            f"the {fmt} export of {artifact} differs from the eager detector beyond "
            f"the tolerance (boxes {tolerance.boxes} px, scores {tolerance.scores}): "
            f"{failed} (details in {description})"
        )
    return report
