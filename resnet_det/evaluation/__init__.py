"""Evaluation: COCO (pycocotools) box and mask AP, PASCAL VOC (devkit) box AP, classification
top-1/top-5, running a model over a test set, and scoring results files.

This module owns the evaluator registry: a dataset's metadata ``evaluator_type`` ("coco", "voc",
"voc_submission" for VOC test sets scored by the PASCAL server, "classification") names the
evaluator :func:`build_evaluator` gives it. The modules of this package import none of this
one, so each evaluator stands on its own; what needs an evaluator chosen by dataset name (the
trainers, tools/evaluate.py) comes here.
"""

import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Union

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..utils.bulk import collector_paused
from ..utils.errors import DataError
from ..utils.file_io import atomic_write_json
from ..utils.lazy import lazy_attributes
from .coco_evaluation import COCOEvaluator, evaluate_coco_results
from .evaluator import (
    DatasetEvaluator,
    DatasetEvaluators,
    format_metrics_table,
    print_csv_format,
)
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator, voc_ap, voc_eval_class
from .results_file import (
    CheckedResults,
    flatten_results,
    load_results_file,
    read_results_file,
    score_results,
)
from .voc_submission import PascalVOCSubmissionWriter

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_on_dataset",
    "EVALUATORS",
    "register_evaluator",
    "build_evaluator",
    "check_error_analysis",
    "print_csv_format",
    "format_metrics_table",
    "COCOEvaluator",
    "evaluate_coco_results",
    "PascalVOCDetectionEvaluator",
    "voc_ap",
    "voc_eval_class",
    "PascalVOCSubmissionWriter",
    "ClassificationEvaluator",
    "evaluate_classifier",
    "evaluate_results",
    "evaluate_results_file",
    "load_results_file",
    "read_results_file",
    "score_results",
    "flatten_results",
]

# The names that need torch, by module, loaded on first use (PEP 562): scoring a results file
# (tools/evaluate.py) imports no torch.
_LAZY = {
    "ClassificationEvaluator": ".classification",
    "evaluate_classifier": ".classification",
    "inference_on_dataset": ".inference",
}

if TYPE_CHECKING:  # pragma: no cover
    from .classification import ClassificationEvaluator, evaluate_classifier
    from .inference import inference_on_dataset


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


# An evaluator factory: (dataset_name, *, output_dir, distributed, use_07_metric[, tasks]) ->
# evaluator; each takes the options that apply to it and ignores the rest (tasks is passed only
# when a caller names them, so a factory of a box-only evaluator need not accept it).
EvaluatorFactory = Callable[..., DatasetEvaluator]


def _coco(
    dataset_name: str,
    *,
    output_dir: Optional[str],
    distributed: bool,
    tasks: Optional[Sequence[str]] = None,
    error_analysis: bool = False,
    **_: Any,
) -> DatasetEvaluator:
    return COCOEvaluator(
        dataset_name,
        output_dir=output_dir,
        distributed=distributed,
        tasks=tasks,
        error_analysis=error_analysis,
    )


def _voc(
    dataset_name: str, *, distributed: bool, use_07_metric: Optional[bool], **_: Any
) -> DatasetEvaluator:
    return PascalVOCDetectionEvaluator(
        dataset_name, use_07_metric=use_07_metric, distributed=distributed
    )


def _voc_submission(
    dataset_name: str, *, output_dir: Optional[str], distributed: bool, **_: Any
) -> DatasetEvaluator:
    return PascalVOCSubmissionWriter(dataset_name, output_dir, distributed=distributed)


def _classification(dataset_name: str, *, distributed: bool, **_: Any) -> DatasetEvaluator:
    from .classification import ClassificationEvaluator  # torch, see _LAZY

    return ClassificationEvaluator(dataset_name, distributed=distributed)


EVALUATORS: Dict[str, EvaluatorFactory] = {
    "coco": _coco,
    "voc": _voc,
    "voc_submission": _voc_submission,
    "classification": _classification,
}


def register_evaluator(evaluator_type: str, factory: EvaluatorFactory) -> None:
    """Make ``build_evaluator`` give datasets of metadata ``evaluator_type`` the evaluator
    ``factory(dataset_name, *, output_dir, distributed, use_07_metric)`` returns.

    Registering a type twice raises: silently replacing an evaluator would change the metric a
    config reports.
    """
    if evaluator_type in EVALUATORS:
        raise ValueError(
            f"register_evaluator: evaluator_type {evaluator_type!r} is already registered"
        )
    EVALUATORS[evaluator_type] = factory


def check_error_analysis(dataset_name: str, key: str = "error_analysis") -> None:
    """Raise DataError (naming ``key``) unless the dataset is scored by the COCO evaluator,
    the one that runs the error analysis."""
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type is None and dataset_name not in DatasetCatalog:
        DatasetCatalog.get(dataset_name)  # raises the catalog's "not registered" error
    if evaluator_type != "coco":
        raise DataError(
            f"{key}: dataset {dataset_name!r} has evaluator_type={evaluator_type!r}; the error "
            "analysis (tools/evaluate.py --errors, TEST.ERROR_ANALYSIS) runs on COCO-format "
            "datasets (evaluator_type 'coco') only"
        )


def build_evaluator(
    dataset_name: str,
    output_dir: Optional[str] = None,
    *,
    distributed: bool = True,
    use_07_metric: Optional[bool] = None,
    tasks: Optional[Sequence[str]] = None,
    error_analysis: bool = False,
) -> DatasetEvaluator:
    """The evaluator for a registered dataset, chosen by its metadata's ``evaluator_type``.

    Args:
        dataset_name: a name registered in resnet_det.data's DatasetCatalog / MetadataCatalog.
        output_dir: where the COCO evaluator writes coco_instances_results.json (None: nowhere).
        distributed: gather predictions from all ranks before evaluating.
        use_07_metric: VOC only: True 11-point AP (VOC2007), False area under the curve,
            None decides by the dataset's year (2007 -> 11-point), as detectron2 does.
        tasks: COCO only: ("bbox",), ("bbox", "segm") for a model with masks
            (MODEL.MASK_ON) or ("segm",) for mask AP alone; None: "bbox", and "segm" too
            when the outputs carry masks. Other evaluators score boxes only (their
            ``scores_masks()`` is False).
        error_analysis: COCO only: also the error analyses (TIDE's dAP, cocoapi's analyze
            curves, pictures and report.html in ``output_dir``; error_analysis.py).
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type is None and dataset_name not in DatasetCatalog:
        DatasetCatalog.get(dataset_name)  # raises the catalog's "not registered" error
    factory = EVALUATORS.get(evaluator_type)
    if factory is None:
        raise DataError(
            f"Dataset {dataset_name!r} has metadata evaluator_type={evaluator_type!r}; "
            f"build_evaluator knows {', '.join(repr(t) for t in EVALUATORS)} (add one with "
            "resnet_det.evaluation.register_evaluator)"
        )
    options: Dict[str, Any] = dict(
        output_dir=output_dir, distributed=distributed, use_07_metric=use_07_metric
    )
    if tasks is not None:
        options["tasks"] = tuple(tasks)
    if error_analysis:
        check_error_analysis(dataset_name)
        options["error_analysis"] = True
    return factory(dataset_name, **options)


def evaluate_results(
    dataset_name: str,
    results: Union[Sequence[Mapping[str, Any]], CheckedResults],
    *,
    output_dir: Optional[str] = None,
    use_07_metric: Optional[bool] = None,
    source: str = "results",
    error_analysis: bool = False,
    tasks: Optional[Sequence[str]] = None,
) -> "OrderedDict[str, Dict[str, float]]":
    """Score COCO-format results entries (docs/results_files.md) against a registered dataset
    with the evaluator its metadata names.

    Args:
        dataset_name: registered dataset (metadata evaluator_type "coco" or "voc").
        results: COCO-format results entries with the dataset's ids, or the CheckedResults
            of ``read_results_file`` (checked once, not again).
        output_dir: where the COCO evaluator writes coco_instances_results.json (None: not).
        use_07_metric: VOC only, see PascalVOCDetectionEvaluator.
        source: how errors refer to the results (e.g. the file name); CheckedResults keep
            their own.
        error_analysis: COCO only: also the error analyses (see build_evaluator).
        tasks: COCO only: the metrics to compute, ("bbox",), ("segm",) or ("bbox", "segm");
            None: every one the results support (box AP, and mask AP when they have masks).
    """
    if tasks is not None:
        evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
        if evaluator_type is None and dataset_name not in DatasetCatalog:
            DatasetCatalog.get(dataset_name)  # raises the catalog's "not registered" error
        if evaluator_type != "coco" and tuple(tasks) != ("bbox",):
            raise DataError(
                f"tasks {tuple(tasks)!r}: dataset {dataset_name!r} has evaluator_type="
                f"{evaluator_type!r}, which scores boxes only (task 'bbox'); mask AP ('segm') "
                "is computed on COCO-format datasets"
            )
    evaluator = build_evaluator(
        dataset_name,
        output_dir,
        distributed=False,
        use_07_metric=use_07_metric,
        tasks=tasks,
        error_analysis=error_analysis,
    )
    return score_results(evaluator, dataset_name, results, source=source)


def evaluate_results_file(
    dataset_name: str,
    results_file: str,
    *,
    output_dir: Optional[str] = None,
    use_07_metric: Optional[bool] = None,
    error_analysis: bool = False,
    tasks: Optional[Sequence[str]] = None,
) -> "OrderedDict[str, Dict[str, float]]":
    """Score a COCO-format results file against a registered dataset.

    When ``output_dir`` is given, the flattened metrics ("bbox/AP", ...) are written there as
    metrics.json (one JSON object on one line, as in a training run's metrics.json).

    Args:
        dataset_name: registered dataset (metadata evaluator_type "coco" or "voc").
        results_file: path of the JSON results file.
        output_dir: folder for metrics.json (and coco_instances_results.json for COCO).
        use_07_metric: VOC only: True 11-point, False area under the curve, None by year.
        error_analysis: COCO only: also the error analyses: the dAP metrics (bbox/dAP/cls,
            ...) join metrics.json, the pictures and report.html go to ``output_dir``.
        tasks: COCO only: ("bbox",), ("segm",) or ("bbox", "segm"); None: every metric the
            results support (see evaluate_results).
    """
    # One pause of the cyclic collector around reading and scoring (the inner ones then leave
    # it off): it comes back on after the results' hundreds of thousands of objects are freed,
    # so that its first collection, due at once after so many allocations, does not walk them.
    with collector_paused():
        metrics = evaluate_results(
            dataset_name,
            read_results_file(results_file),
            output_dir=output_dir,
            use_07_metric=use_07_metric,
            error_analysis=error_analysis,
            tasks=tasks,
        )
    if output_dir:
        atomic_write_json(os.path.join(output_dir, "metrics.json"), flatten_results(metrics))
    return metrics
