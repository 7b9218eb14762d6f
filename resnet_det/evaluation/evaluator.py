"""Evaluator protocol and the results table (running a detector over a dataset: inference.py).

Which evaluator a dataset gets is the registry's business (resnet_det.evaluation.build_evaluator).

An evaluator sees the model's inputs and outputs batch by batch (``process``) and turns what it
collected into metrics (``evaluate``). Metrics are an ``OrderedDict`` task -> {metric: value},
e.g. ``{"bbox": {"AP": 37.1, "AP50": 58.0, ...}}``, with AP in percent as detectron2 reports it,
so that the trainer can flatten them to the ``bbox/AP`` keys of metrics.json.

In a distributed run every rank processes its shard of the test set; the evaluators gather all
ranks' predictions to rank 0, which alone computes the metrics (other ranks return ``{}``).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..utils.comm import is_main_process

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "print_csv_format",
    "format_metrics_table",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Evaluator protocol
# ---------------------------------------------------------------------------------------------
class DatasetEvaluator:
    """Base class: accumulate predictions with ``process``, compute metrics with ``evaluate``.

    ``inference_on_dataset`` calls ``reset()`` once, ``process(inputs, outputs)`` for every
    batch, and ``evaluate()`` at the end.
    """

    def reset(self) -> None:
        """Forget everything processed so far (called before a new evaluation)."""

    def process(
        self, inputs: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]]
    ) -> None:
        """Take one batch.

        Args:
            inputs: the model's inputs; each has "image_id", "height", "width".
            outputs: the model's outputs for those inputs, one dict per image with "boxes"
                (XYXY in original image coordinates), "scores" and "labels" (0-based); a
                Mask R-CNN's also "masks" (float [N, 1, H, W] probabilities in the original
                image, torchvision's convention). Outputs made from a results file carry
                "masks_rle" (COCO RLE dicts) instead of "masks".
        """

    def process_results(self, results: Any) -> None:
        """Take the detections of a results file, matched to the dataset (a
        ``resnet_det.evaluation.results_file.DatasetResults``), as ``process`` takes a
        model's. By default they come as the outputs a detector would have given
        (``results.model_io()``); an evaluator with a format of its own for detections takes
        them in that format instead (the COCO evaluator: COCO's results entries)."""
        for inp, out in results.model_io():
            self.process([inp], [out])

    def evaluate(self) -> OrderedDict[str, Dict[str, float]]:
        """Metrics {task: {name: value}}; ``{}`` on ranks other than 0 in a distributed run."""
        return OrderedDict()

    def results_category_ids(self) -> Optional[List[int]]:
        """For detection evaluators: the ``category_id`` a results file (docs/results_files.md)
        uses for each contiguous label, so that a results file is read back with the ids this
        evaluator writes. None: the evaluator does not score detection results files."""
        return None

    def scores_masks(self) -> bool:
        """Whether the masks of the outputs (instance segmentation) are scored too; False: only
        boxes are, and a results file's masks are ignored."""
        return False

    def scores_boxes(self) -> bool:
        """Whether the boxes of the outputs are read; False (a COCO evaluator of mask AP
        alone): a results file's entries without a "bbox" need not get their mask's box."""
        return True


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run as one; their results are merged (a task may appear only once)."""

    def __init__(self, evaluators: Iterable[DatasetEvaluator]):
        """
        Args:
            evaluators: the evaluators to call in turn.
        """
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs, outputs) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def process_results(self, results: Any) -> None:
        for evaluator in self._evaluators:
            evaluator.process_results(results)

    def scores_masks(self) -> bool:
        return any(evaluator.scores_masks() for evaluator in self._evaluators)

    def scores_boxes(self) -> bool:
        return any(evaluator.scores_boxes() for evaluator in self._evaluators)

    def evaluate(self) -> OrderedDict[str, Dict[str, float]]:
        results: OrderedDict[str, Dict[str, float]] = OrderedDict()
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            if not is_main_process() or result is None:
                continue
            for task, metrics in result.items():
                if task in results:
                    raise ValueError(
                        f"Two evaluators both report task {task!r} ({type(evaluator).__name__} "
                        "is the second); give them different datasets or tasks."
                    )
                results[task] = metrics
        return results


# ---------------------------------------------------------------------------------------------
# Printing results
# ---------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def print_csv_format(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Log the main metrics of each task as comma-separated lines (easy to paste in a sheet).

    Per-category entries (names containing "-") are left out, as in detectron2. Returns the
    logged text.
    """
    lines = []
    for task, metrics in results.items():
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"results[{task!r}] must be a dict of metrics, got {type(metrics).__name__}"
            )
        main = [(k, v) for k, v in metrics.items() if "-" not in k]
        lines.append(f"copypaste: Task: {task}")
        lines.append("copypaste: " + ",".join(k for k, _ in main))
        lines.append("copypaste: " + ",".join(_fmt(v) for _, v in main))
    text = "\n".join(lines)
    logger.info("\n%s", text)
    return text


def format_metrics_table(results: Mapping[str, Mapping[str, Any]], columns: int = 3) -> str:
    """A plain-text table: one block per task, main metrics first, then per-category metrics
    laid out in ``columns`` (name, value) column pairs."""
    blocks = []
    for task, metrics in results.items():
        main = [(k, v) for k, v in metrics.items() if "-" not in k]
        per_cat = [(k, v) for k, v in metrics.items() if "-" in k]
        widths = [max(len(k), len(_fmt(v))) for k, v in main]
        header = " | ".join(f"{k:>{w}}" for (k, _), w in zip(main, widths))
        values = " | ".join(f"{_fmt(v):>{w}}" for (_, v), w in zip(main, widths))
        block = [f"Task: {task}", header, "-" * len(header), values]
        if per_cat:
            width = max(len(k) for k, _ in per_cat)
            block.append("")
            rows = [per_cat[i : i + columns] for i in range(0, len(per_cat), columns)]
            for row in rows:
                block.append("   ".join(f"{k:<{width}} {_fmt(v):>8}" for k, v in row))
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)
