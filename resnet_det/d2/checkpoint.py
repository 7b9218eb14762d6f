"""detectron2's DetectionCheckpointer with resnet_det's file rules.

- Reading never runs code: .pkl files (MSRA / detectron2 model zoo) go through resnet_det's
  restricted unpickler instead of ``pickle.load``; everything else through
  ``torch.load(weights_only=True)``.
- ImageNet weights in torchvision's layout (or a resnet_det classifier checkpoint) are renamed
  to detectron2's names and handed to detectron2's suffix matching, which places them in the
  backbone, the C4 head's res5 and the VGG head's fc6/fc7.
- Writing is atomic (temp file + os.replace), for checkpoints and the last_checkpoint tag.
"""
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..checkpoint import convert_state_dict, detect_layout, safe_load
from ..utils.file_io import atomic_torch_save, atomic_write_text

__all__ = ["SafeDetectionCheckpointer"]

# Keys of a detectron2 detector (GeneralizedRCNN) checkpoint: loaded by exact names.
_DETECTOR_PREFIXES = ("backbone.", "proposal_generator.", "roi_heads.")


class SafeDetectionCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that reads with the restricted unpickler / weights_only and
    writes atomically. Arguments: as DetectionCheckpointer (model, save_dir, checkpointables)."""

    def _load_file(self, filename: str):
        if filename.endswith(".pkl"):
            data = safe_load(filename)
            if not isinstance(data, dict):
                raise ValueError(f"resnet_det.d2: {filename!r} holds a {type(data).__name__}, "
                                 "not a dict of weights")
            if "model" in data and "__author__" in data:  # detectron2 model zoo format
                return data
            # Caffe2 / Detectron model zoo (MSRA R-50.pkl, R-101.pkl): detectron2 renames the
            # blobs itself (c2_conversion) once they are read.
            if "blobs" in data:
                data = data["blobs"]
            data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
            return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        if filename.endswith(".pyth"):
            raise ValueError(f"resnet_det.d2: {filename!r}: pycls .pyth files are not supported; "
                             "convert them with tools/convert_weights.py")
        return super()._load_file(filename)

    def _torch_load(self, f: str):
        loaded = torch.load(f, map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict):
            raise ValueError(f"resnet_det.d2: {f!r} holds a {type(loaded).__name__}, not a dict")
        wrapped = isinstance(loaded.get("model"), dict)
        sd = loaded["model"] if wrapped else loaded
        keys = [k for k in sd if isinstance(k, str)]
        if not keys or any(k.startswith(_DETECTOR_PREFIXES) for k in keys):
            return loaded  # a detector checkpoint (ours or detectron2's): exact names
        try:
            layout = detect_layout(sd)
        except ValueError:
            return loaded  # not a layout we know: detectron2 reports what did not match
        # A backbone / classifier: our names are detectron2's, and detectron2's suffix
        # matching puts them under backbone. / roi_heads.res5 / roi_heads.box_head.
        out = {k: v for k, v in loaded.items() if k != "model"} if wrapped else {}
        out["model"] = sd if layout == "resnet_det" else convert_state_dict(sd, to="detectron2")
        if layout != "resnet_det":
            self.logger.info(f"Renamed {len(out['model'])} {layout}-layout weights from {f} to "
                             "detectron2's names")
        out.setdefault("__author__", f"resnet_det ({layout} layout)")
        out["matching_heuristics"] = True
        return out

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {path}")
        atomic_torch_save(data, path)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_text(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename)
