"""detectron2's DetectionCheckpointer with resnet_det's file rules, through resnet_det.checkpoint.

- Reading never runs code: files are read by ``resnet_det.checkpoint.read_checkpoint`` (.pkl
  files (MSRA / detectron2 model zoo) through the restricted unpickler instead of
  ``pickle.load``; everything else through ``torch.load(weights_only=True)``).
- Caffe2 / Detectron blobs are unwrapped by ``unwrap_checkpoint`` (the same code as
  ``resnet_det.load_weights``) and left to detectron2's c2 renaming.
- ImageNet weights in torchvision's layout (or a resnet_det classifier checkpoint) are renamed
  to detectron2's names and handed to detectron2's suffix matching, which places them in the
  backbone, the C4 head's res5 and the VGG head's fc6/fc7.
- Writing is atomic, for checkpoints and the last_checkpoint tag (``write_checkpoint``).
"""

import os

from detectron2.checkpoint import DetectionCheckpointer

from ..checkpoint import (
    convert_state_dict,
    detect_layout,
    read_checkpoint,
    tag_last_checkpoint,
    unwrap_checkpoint,
    write_checkpoint,
)
from ..utils.errors import WeightsError

__all__ = ["SafeDetectionCheckpointer"]

# Keys of a detectron2 detector (GeneralizedRCNN) checkpoint: loaded by exact names.
_DETECTOR_PREFIXES = ("backbone.", "proposal_generator.", "roi_heads.")


class SafeDetectionCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that reads with the restricted unpickler / weights_only and
    writes atomically. Arguments: as DetectionCheckpointer (model, save_dir, checkpointables)."""

    def _load_file(self, filename: str):
        if filename.endswith(".pkl"):
            data = read_checkpoint(filename)
            if not isinstance(data, dict):
                raise WeightsError(
                    f"resnet_det.d2: {filename!r} holds a {type(data).__name__}, "
                    "not a dict of weights"
                )
            if "model" in data and "__author__" in data:  # detectron2 model zoo format
                return data
            # Caffe2 / Detectron model zoo (MSRA R-50.pkl, R-101.pkl): the blobs (without the
            # optimizer's _momentum ones); detectron2 renames them itself (c2_conversion).
            blobs, _ = unwrap_checkpoint(data)
            return {"model": blobs, "__author__": "Caffe2", "matching_heuristics": True}
        if filename.endswith(".pyth"):
            raise WeightsError(
                f"resnet_det.d2: {filename!r}: pycls .pyth files are not supported; "
                "convert them with tools/convert_weights.py"
            )
        return super()._load_file(filename)

    def _torch_load(self, f: str):
        loaded = read_checkpoint(f)
        if not isinstance(loaded, dict):
            raise WeightsError(f"resnet_det.d2: {f!r} holds a {type(loaded).__name__}, not a dict")
        wrapped = isinstance(loaded.get("model"), dict)
        sd = loaded["model"] if wrapped else loaded
        keys = [k for k in sd if isinstance(k, str)]
        if not keys or any(k.startswith(_DETECTOR_PREFIXES) for k in keys):
            return loaded  # a detector checkpoint (ours or detectron2's): exact names
        try:
            layout = detect_layout(sd)
        except WeightsError:
            return loaded  # not a layout we know: detectron2 reports what did not match
        # A backbone / classifier: our names are detectron2's, and detectron2's suffix
        # matching puts them under backbone. / roi_heads.res5 / roi_heads.box_head.
        out = {k: v for k, v in loaded.items() if k != "model"} if wrapped else {}
        out["model"] = sd if layout == "resnet_det" else convert_state_dict(sd, to="detectron2")
        if layout != "resnet_det":
            self.logger.info(
                f"Renamed {len(out['model'])} {layout}-layout weights from {f} to "
                "detectron2's names"
            )
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
        self.logger.info(f"Saving checkpoint to {os.path.join(self.save_dir, name + '.pth')}")
        write_checkpoint(data, self.save_dir, name)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        tag_last_checkpoint(self.save_dir, last_filename_basename)
