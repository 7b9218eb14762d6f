"""Detection evaluation: COCO (pycocotools) and PASCAL VOC (devkit) box AP, running a model
over a test set, and scoring results files. Classification metrics live in
resnet_det.evaluation.classification."""
from .coco_evaluation import COCOEvaluator, evaluate_coco_results
from .evaluator import (
    DatasetEvaluator,
    DatasetEvaluators,
    build_evaluator,
    format_metrics_table,
    inference_on_dataset,
    print_csv_format,
)
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator, voc_ap, voc_eval_class
from .results_file import (
    evaluate_results,
    evaluate_results_file,
    flatten_results,
    load_results_file,
    write_json_atomic,
)

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_on_dataset",
    "build_evaluator",
    "print_csv_format",
    "format_metrics_table",
    "COCOEvaluator",
    "evaluate_coco_results",
    "PascalVOCDetectionEvaluator",
    "voc_ap",
    "voc_eval_class",
    "evaluate_results",
    "evaluate_results_file",
    "load_results_file",
    "flatten_results",
    "write_json_atomic",
]
