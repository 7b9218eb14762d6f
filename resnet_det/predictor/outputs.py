"""What tools/predict.py writes: one drawn picture per input and predictions.json.

predictions.json is COCO's results format (docs/results_files.md) with one more key per entry,
``file_name`` (the input as given). Its ids depend on whether the inputs belong to a registered
dataset (``--dataset``):

- with a dataset: an input is that dataset's image whose file has the same real path, else the
  one image whose file has the same name (base name); image_id and category_id are then the
  dataset's own (COCO: the json's ids; VOC: the file stem and the 1-based class index), so
  tools/evaluate.py scores the file against that dataset. An input that is none of its images
  keeps its file stem as image_id, with a warning (evaluate.py would refuse it for that dataset).
- without: image_id is the file stem and category_id the 1-based class index (the VOC
  convention).

A model with masks (MODEL.MASK_ON) adds each detection's mask as "segmentation", compressed
RLE at the input's size (the evaluation's encoding: resnet_det.evaluation.masks), which
tools/evaluate.py scores as mask AP.
"""

import logging
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.catalog import DatasetCatalog
from ..evaluation import build_evaluator
from ..evaluation.coco_evaluation import instances_to_coco_json
from ..evaluation.masks import encode_masks
from ..utils.file_io import atomic_write_text
from ..utils.visualize import DetectionPanel, plot_detections

__all__ = ["ResultsIds", "draw_prediction", "picture_path", "write_predictions"]

logger = logging.getLogger(__name__)


class ResultsIds:
    """image_id / category_id of predictions.json entries (see the module docstring).

    Args:
        num_classes: the detector's classes (for the 1-based index without a dataset).
        dataset: a registered detection dataset name, or None.
    """

    def __init__(self, num_classes: int, dataset: Optional[str] = None):
        self.dataset = dataset
        self._by_path: Dict[str, Any] = {}
        self._by_name: Dict[str, List[Any]] = defaultdict(list)
        if dataset is None:
            self.category_ids = list(range(1, num_classes + 1))
            return
        for d in DatasetCatalog.get(dataset):
            self._by_path[os.path.realpath(d["file_name"])] = d["image_id"]
            self._by_name[os.path.basename(d["file_name"])].append(d["image_id"])
        category_ids = build_evaluator(dataset, distributed=False).results_category_ids()
        if category_ids is None or len(category_ids) != num_classes:
            raise ValueError(
                f"--dataset {dataset}: its evaluator gives category ids {category_ids} "
                f"for a detector of {num_classes} classes"
            )
        self.category_ids = list(category_ids)

    def image_id(self, file_name: str) -> Tuple[Any, bool]:
        """(image_id, whether it is the dataset's) for the input ``file_name``."""
        stem = os.path.splitext(os.path.basename(file_name))[0]
        if self.dataset is None:
            return stem, False
        found = self._by_path.get(os.path.realpath(file_name))
        if found is None:
            same_name = self._by_name.get(os.path.basename(file_name), [])
            found = same_name[0] if len(same_name) == 1 else None
        if found is None:
            logger.warning(
                "%s is not an image of dataset %s: its predictions use the file stem "
                "%r as image_id (tools/evaluate.py --dataset %s will refuse them)",
                file_name,
                self.dataset,
                stem,
                self.dataset,
            )
            return stem, False
        return found, True

    def entries(self, file_name: str, result: Dict[str, Any]) -> List[Dict[str, Any]]:
        """predictions.json entries of one input's detections."""
        image_id, _ = self.image_id(file_name)
        masks = result.get("masks")
        entries = instances_to_coco_json(
            result["boxes"].numpy(),
            result["scores"].numpy(),
            result["labels"].numpy(),
            image_id,
            self.category_ids,
            None if masks is None else encode_masks(masks),
        )
        for e in entries:
            e["file_name"] = file_name
        return entries


def write_predictions(path: str, entries: Sequence[Dict[str, Any]]) -> str:
    """Write the entries as a JSON list (atomically); returns ``path``."""
    import json

    atomic_write_text(path, json.dumps(list(entries)))
    return path


def picture_path(output: str, file_name: str, single_file: bool) -> str:
    """Where the picture of ``file_name`` goes: ``output`` itself when it names a file for a
    single input, else OUTPUT/<stem>.png."""
    if single_file:
        return output
    return os.path.join(output, os.path.splitext(os.path.basename(file_name))[0] + ".png")


def draw_prediction(
    image_rgb: torch.Tensor,
    result: Dict[str, Any],
    path: str,
    *,
    class_names: Sequence[str],
    score_thresh: float,
    title: str,
) -> str:
    """Draw one image's detections into the picture ``path`` (utils.visualize.plot_detections:
    tags in the class colour, a legend, the threshold; masks filled under the boxes when the
    result has them)."""
    panel = DetectionPanel(
        image=image_rgb,
        boxes=result["boxes"],
        labels=result["labels"],
        scores=result["scores"],
        caption=title,
        masks=result.get("masks"),
    )
    return plot_detections(
        [panel],
        path,
        class_names=class_names,
        score_thresh=score_thresh,
        title=None,
        ncols=1,
        panel_inches=_panel_inches(image_rgb),
    )


def _panel_inches(image: torch.Tensor) -> float:
    # About the image's own size at 100 dpi, within [7, 12] inches: at least the width of the
    # legend and title above it, and small images enlarged so that their tags stay legible.
    return float(np.clip(max(image.shape[-2:]) / 100.0, 7.0, 12.0))
