"""Writing and loading the three export formats of ``DetectorExportModule``.

- "torchscript": ``torch.jit.script`` (every input size; deprecated by PyTorch in favour of
  torch.export, still supported), a ``.pt`` file for ``torch.jit.load`` / libtorch. Kept
  because libtorch (C++) loads only TorchScript and no other format takes every input size;
  the deprecation warnings of script, save and load are silenced at these calls
  (docs/deployment.md).
- "onnx": PyTorch's TorchScript-based ONNX exporter (``dynamo=False``), opset 17, height and
  width dynamic, run with onnxruntime. torchvision's detection ops (RoIAlign, RoIPool, NMS) have
  ONNX translations there; the dynamo-based exporter has none for them.
- "torch_export": ``torch.export.export`` (non-strict) to a ``.pt2`` ExportedProgram; height and
  width dynamic over the range the exporter can prove (recorded in the description), or fixed.

docs/deployment.md states what each format keeps and what it gives up.
"""

import contextlib
import logging
import os
import warnings
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor

from ..utils.errors import UserError
from .module import INPUT_NAMES, DetectorExportModule, export_friendly_nms, export_module

__all__ = ["FORMATS", "EXTENSIONS", "ONNX_OPSET", "ExportError", "export_artifact", "load_artifact"]

logger = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx", "torch_export")
EXTENSIONS = {"torchscript": ".pt", "onnx": ".onnx", "torch_export": ".pt2"}
# RoiAlign-16 has the pixel-centre sampling of aligned RoIAlign (detectron2's ROIAlignV2).
ONNX_OPSET = 17

Runner = Callable[[Tensor], Tuple[Tensor, ...]]


class ExportError(UserError, RuntimeError):
    """An export that failed or does not reproduce the eager detector."""


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the deprecation and tracer warnings the exporters print for every call."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning, UserWarning, torch.jit.TracerWarning):
            warnings.simplefilter("ignore", category)
        yield


def _torchscript(module: DetectorExportModule, sample: Tensor, path: str, dynamic: bool) -> Dict:
    with _quiet():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, path)
    return {"height": "any", "width": "any"}


def _onnx(module: DetectorExportModule, sample: Tensor, path: str, dynamic: bool) -> Dict:
    try:
        import onnx  # noqa: F401  (the exporter needs it; a clear message if it is missing)
    except ImportError as e:
        raise ExportError("ONNX export needs the onnx package: pip install onnx onnxruntime") from e
    if dynamic:
        axes = {"image": {1: "height", 2: "width"}}
        axes.update({name: {0: "detections"} for name in module.output_names})
    else:
        axes = {name: {0: "detections"} for name in module.output_names}
    with _quiet():
        torch.onnx.export(
            module,
            (sample,),
            path,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(module.output_names),
            dynamic_axes=axes,
        )
    h, w = sample.shape[-2:]
    return {"height": "any", "width": "any"} if dynamic else {"height": int(h), "width": int(w)}


def _input_ranges(program) -> Dict[str, Any]:
    """The range of each input dimension the ExportedProgram accepts ({"height": [lo, hi]})."""
    node = next(
        n
        for n in program.graph.nodes
        if n.op == "placeholder" and n.name in program.graph_signature.user_inputs
    )
    out = {}
    for axis, name in ((1, "height"), (2, "width")):
        dim = node.meta["val"].shape[axis]
        if isinstance(dim, int):
            out[name] = int(dim)
            continue
        vr = program.range_constraints.get(dim.node.expr)
        out[name] = [
            _bound(vr.lower if vr is not None else None),
            _bound(vr.upper if vr is not None else None),
        ]
    return out


def _bound(value) -> Optional[int]:
    """A range bound as an int; None for an infinite or unknown one (sympy's int_oo)."""
    try:
        return int(value)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None


def _torch_export(module: DetectorExportModule, sample: Tensor, path: str, dynamic: bool) -> Dict:
    from torch.export import Dim

    shapes = {"image": {1: Dim.AUTO, 2: Dim.AUTO}} if dynamic else None
    with _quiet(), export_friendly_nms(), torch.no_grad():
        program = torch.export.export(module, (sample,), dynamic_shapes=shapes, strict=False)
    torch.export.save(program, path)
    return _input_ranges(program)


_EXPORTERS = {"torchscript": _torchscript, "onnx": _onnx, "torch_export": _torch_export}


def export_artifact(
    model: torch.nn.Module, fmt: str, sample: Tensor, path: str, *, dynamic: bool = True
) -> Dict[str, Any]:
    """Export the detector ``model`` (eval mode) in format ``fmt`` to ``path``.

    Args:
        model: a GeneralizedRCNN (a Mask R-CNN exports masks too: ``MaskDetectorExportModule``).
        fmt: one of FORMATS.
        sample: an input image as ``DetectorExportModule`` takes it (float32 [3, H, W],
            resized); ONNX and torch.export trace it.
        path: the file to write.
        dynamic: let height and width vary (as far as the format allows); False fixes them
            to the sample's.
    Returns:
        The accepted input sizes: {"height": ..., "width": ...}, each "any", an int (fixed)
        or [min, max] (max None: unbounded).
    """
    _check_format(fmt)
    module = export_module(model).eval()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        return _EXPORTERS[fmt](module, sample, path, dynamic)
    except (ExportError, OSError):
        raise
    except Exception as e:
        hint = " (try --fixed-size)" if dynamic and fmt == "torch_export" else ""
        raise ExportError(f"{fmt} export failed{hint}: {type(e).__name__}: {e}") from e


def load_artifact(fmt: str, path: str, device: Optional[str] = None) -> Runner:
    """A function image -> (boxes, scores, labels[, masks]) (CPU tensors) running the artifact at
    ``path`` of format ``fmt``."""
    _check_format(fmt)
    if not os.path.isfile(path):
        raise ExportError(f"exported model {path!r} does not exist")
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

        def run_onnx(image: Tensor):
            outs = session.run(None, {"image": image.detach().cpu().float().numpy()})
            return tuple(torch.from_numpy(o) for o in outs)

        return run_onnx
    with _quiet():
        if fmt == "torchscript":
            runnable = torch.jit.load(path, map_location=device)
        else:
            runnable = torch.export.load(path).module()

    def run_torch(image: Tensor):
        with torch.no_grad():
            return tuple(t.cpu() for t in runnable(image))

    return run_torch
