"""Generic training engine shared by detection and classification pretraining: the loop and
its hooks, checkpointing with exact resume, metric writers, distributed launch, set-up."""

from ..checkpoint import Checkpointer, unwrap_model  # re-exported: the engine's checkpointer
from .defaults import (
    DefaultTrainer,
    auto_scale_workers,
    default_argument_parser,
    default_setup,
    simple_trainer_kwargs,
)
from .events import (
    CommonMetricPrinter,
    EventStorage,
    EventWriter,
    JSONWriter,
    TensorboardXWriter,
    get_event_storage,
)
from .hooks import (
    EvalHook,
    IterationTimer,
    LRScheduler,
    PeriodicCheckpointer,
    PeriodicWriter,
    flatten_results_dict,
)
from .launch import RankFailedError, launch
from .signals import EXIT_PREEMPTED, TrainingPreempted
from .train_loop import HookBase, SimpleTrainer, TrainerBase

__all__ = [
    "Checkpointer",
    "unwrap_model",
    "DefaultTrainer",
    "auto_scale_workers",
    "default_argument_parser",
    "default_setup",
    "simple_trainer_kwargs",
    "CommonMetricPrinter",
    "EventStorage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "get_event_storage",
    "EvalHook",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "flatten_results_dict",
    "launch",
    "RankFailedError",
    "EXIT_PREEMPTED",
    "TrainingPreempted",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
]
