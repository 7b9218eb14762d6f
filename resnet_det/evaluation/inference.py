"""Running a detector over a test set and evaluating its outputs (``inference_on_dataset``).

The evaluator protocol it drives is evaluator.py's; progress and timing are logged on rank 0.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Dict, Iterable, List, Mapping, Optional

import torch
from torch import nn

from ..utils.comm import get_world_size, is_main_process
from ..utils.progress import Progress
from .evaluator import DatasetEvaluator

__all__ = ["inference_on_dataset"]

logger = logging.getLogger(__name__)


@contextmanager
def _eval_mode(model: nn.Module):
    """Put the model in eval mode and restore its previous train/eval state afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def inference_on_dataset(
    model: nn.Module,
    data_loader: Iterable[List[Mapping[str, Any]]],
    evaluator: Optional[DatasetEvaluator],
) -> OrderedDict[str, Dict[str, float]]:
    """Run ``model`` on every batch of ``data_loader`` and evaluate the outputs.

    The model runs in eval mode under ``torch.no_grad`` and gets its previous mode back at
    the end. Progress (rate, ETA) is shown on rank 0 (a bar on a terminal, a log line every few
    seconds otherwise: resnet_det.utils.progress), and the total and per-image times are
    logged. In a distributed run each rank runs its shard; the evaluator gathers the
    predictions and rank 0 returns the metrics (other ranks get ``{}``).

    Args:
        model: a detector following docs/internals.md (eval mode: list of output dicts).
        data_loader: yields lists of input dicts (a batch).
        evaluator: the evaluator (or ``DatasetEvaluators``); None only runs inference.

    Returns:
        The evaluator's results ({task: {metric: value}}), ``{}`` without an evaluator.
    """
    num_batches = len(data_loader) if hasattr(data_loader, "__len__") else None
    num_images = 0
    num_done = 0
    if evaluator is not None:
        evaluator.reset()

    # The first batches are slower (allocator, cuDNN autotuning): time after a short warm-up.
    num_warmup = min(5, num_batches - 1) if num_batches else 0
    compute_time = 0.0
    start = time.perf_counter()
    # A bar on a terminal, a log line every few seconds in a log file (utils.progress).
    progress = Progress(
        num_batches, desc="Inference", unit="batch", logger=logger, enabled=is_main_process()
    )
    with _eval_mode(model), torch.no_grad(), progress:
        for idx, inputs in enumerate(data_loader):
            if idx == num_warmup:
                compute_time = 0.0
            t0 = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            compute_time += time.perf_counter() - t0
            if evaluator is not None:
                evaluator.process(inputs, outputs)
            num_images += len(inputs)
            num_done += 1
            progress.update(1)

    total_time = time.perf_counter() - start
    timed_batches = max(num_done - num_warmup, 1)
    logger.info(
        "Inference done on %d images (this rank; %d processes): total %s (%.4f s/image), "
        "pure compute %.4f s/batch over the last %d batches",
        num_images,
        get_world_size(),
        str(datetime.timedelta(seconds=int(total_time))),
        total_time / max(num_images, 1),
        compute_time / timed_batches,
        timed_batches,
    )
    if evaluator is None:
        return OrderedDict()
    results = evaluator.evaluate()
    # Ranks other than 0 get nothing back; keep the return type the same everywhere.
    return results if results is not None else OrderedDict()
