"""Exporting the built-in detector: TorchScript, ONNX (onnxruntime) and torch.export.

    from resnet_det.export import export_detector
    report = export_detector(cfg, "onnx", "out/")     # out/model.onnx + out/model.json, verified

Every format carries ``DetectorExportModule``: one resized image tensor in, (boxes, scores,
labels) out; for a Mask R-CNN ``MaskDetectorExportModule``, which adds the masks at the mask
head's resolution. docs/deployment.md says what each format keeps and gives up;
tools/export_model.py is the command line.
"""

from .formats import EXTENSIONS, FORMATS, ONNX_OPSET, ExportError, export_artifact, load_artifact
from .module import (
    DetectorExportModule,
    MaskDetectorExportModule,
    export_friendly_nms,
    export_module,
)
from .pipeline import ExportReport, artifact_path, export_detector
from .verify import DEFAULT_TOLERANCE, ImageComparison, Tolerance, compare_detections

__all__ = [
    "FORMATS",
    "EXTENSIONS",
    "ONNX_OPSET",
    "ExportError",
    "export_artifact",
    "load_artifact",
    "DetectorExportModule",
    "MaskDetectorExportModule",
    "export_module",
    "export_friendly_nms",
    "ExportReport",
    "export_detector",
    "artifact_path",
    "Tolerance",
    "DEFAULT_TOLERANCE",
    "ImageComparison",
    "compare_detections",
]
