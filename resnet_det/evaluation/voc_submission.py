"""Detections on a VOC test set without public annotations (VOC 2012 test), written for the
PASCAL VOC evaluation server instead of scored here.

The server's detection format (VOC devkit documentation, "Submission of Results"): one text
file per class, ``results/VOC<year>/Main/<comp>_det_<split>_<class>.txt``, one line per
detection, ``<image id> <confidence> <xmin> <ymin> <xmax> <ymax>``, boxes in the devkit's
1-based inclusive pixel coordinates. Our boxes are continuous coordinates with the reader's
-1 on xmin / ymin (resnet_det.data.datasets.voc), so 1 is added back to xmin and ymin only,
as detectron2's PascalVOCDetectionEvaluator does when it writes these files. The competition is
"comp4": training data beyond the VOC training sets (ImageNet pretraining) is used.

The files are zipped into one archive (the results/ tree at its root), which is what the
server takes. It computes AP as the area under the curve (VOC2010+), per class and the mean.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import OrderedDict
from typing import Dict, List

from ..data.catalog import MetadataCatalog
from ..utils.comm import all_gather, get_world_size
from ..utils.errors import DataError
from ..utils.file_io import atomic_open, atomic_write_text
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator

__all__ = ["PascalVOCSubmissionWriter", "submission_zip_path", "SERVER_URL"]

logger = logging.getLogger(__name__)

SERVER_URL = "http://host.robots.ox.ac.uk:8080/"
# A fixed timestamp in the archive: the same detections give the same bytes.
_ZIP_DATE = (2012, 1, 1, 0, 0, 0)


def submission_zip_path(output_dir: str, dataset_name: str) -> str:
    """Where PascalVOCSubmissionWriter(dataset_name, output_dir) writes its archive."""
    return os.path.join(output_dir, f"{dataset_name}_submission.zip")


class PascalVOCSubmissionWriter(PascalVOCDetectionEvaluator):
    """Writes a VOC test set's detections in the evaluation server's format and zips them.

    ``evaluate()`` writes ``output_dir/results/VOC<year>/Main/comp4_det_<split>_<class>.txt``
    for every class (empty when the class has no detection) and
    ``output_dir/<dataset>_submission.zip``, logs where they are and how to submit, and
    returns ``{"voc_submission": {"detections": n, "images": k}}`` (no AP: the annotations
    are the server's).
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: str,
        distributed: bool = True,
        *,
        competition: str = "comp4",
    ):
        """
        Args:
            dataset_name: a registered dataset with metadata thing_classes, year and split
                (register_pascal_voc_images).
            output_dir: folder for results/ and the zip archive.
            distributed: gather detections from all ranks; rank 0 writes.
            competition: the file prefix, "comp4" (external training data, e.g. ImageNet
                pretraining) or "comp3" (VOC training data only).
        """
        if not output_dir:
            raise DataError(
                f"Dataset {dataset_name!r} has no public annotations: its detections "
                "are written for the PASCAL evaluation server and need an output "
                "folder (set OUTPUT_DIR)"
            )
        if competition not in ("comp3", "comp4"):
            raise ValueError(f"competition must be 'comp3' or 'comp4', got {competition!r}")
        # The AP metric is the server's (area under the curve for VOC2010+); nothing is scored here.
        super().__init__(dataset_name, distributed=distributed, metric="area")
        meta = MetadataCatalog.get(dataset_name)
        missing = [k for k in ("year", "split") if not hasattr(meta, k)]
        if missing:
            raise DataError(
                f"PascalVOCSubmissionWriter: dataset {dataset_name!r} has no metadata "
                f"{missing} (register it with register_pascal_voc_images)"
            )
        self._year, self._split = int(meta.year), str(meta.split)
        self._output_dir = output_dir
        self._competition = competition
        self._images = set()

    def reset(self) -> None:
        super().reset()
        self._images = set()

    def _add(self, image_id, boxes, scores, labels) -> None:
        # Every image goes through here, from a model's outputs (process) or a results file
        # (process_results), with or without boxes.
        super()._add(image_id, boxes, scores, labels)
        self._images.add(image_id)

    def results_files(self) -> List[str]:
        """The per-class file paths, relative to output_dir, in class order."""
        return [
            os.path.join(
                "results",
                f"VOC{self._year}",
                "Main",
                f"{self._competition}_det_{self._split}_{name}.txt",
            )
            for name in self._class_names
        ]

    def evaluate(self) -> OrderedDict[str, Dict[str, float]]:
        predictions = self._gathered_predictions()
        images = self._images
        if self._distributed:
            if get_world_size() > 1:
                images = set().union(*all_gather(images))
        if predictions is None:
            return OrderedDict()
        zip_path = submission_zip_path(self._output_dir, self._dataset_name)
        num = 0
        with (
            atomic_open(zip_path, "wb") as f,
            zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive,
        ):
            for label, rel in enumerate(self.results_files()):
                # Sorted by image, then by decreasing score: the file does not depend on how
                # the test set was split over processes.
                dets = sorted(predictions.get(label, []), key=lambda d: (str(d[0]), -d[1]))
                text = "".join(
                    f"{image_id} {score:.6f} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}\n"
                    for image_id, score, (x0, y0, x1, y1) in dets
                )
                num += len(dets)
                atomic_write_text(os.path.join(self._output_dir, rel), text)
                archive.writestr(zipfile.ZipInfo(rel.replace(os.sep, "/"), _ZIP_DATE), text)
        logger.info(
            "%s has no public annotations: wrote %d detections on %d images for the PASCAL VOC "
            "evaluation server to %s (one %s file per class under %s). Submit the zip at %s "
            "(an account is needed; VOC%d, detection, %s); the server reports the AP per class "
            "and the mAP (area under the curve).",
            self._dataset_name,
            num,
            len(images),
            zip_path,
            self._competition,
            os.path.join(self._output_dir, "results"),
            SERVER_URL,
            self._year,
            self._competition,
        )
        return OrderedDict(
            [("voc_submission", {"detections": float(num), "images": float(len(images))})]
        )
