"""Training hooks: timing, lr schedule, periodic checkpoints, evaluation, metric writers.

DefaultTrainer registers them in this order (it matters: evaluation results reach a plateau
schedule and the same iteration's checkpoint; the writer runs last so it sees the lr, the
time and evaluation results of the same iteration):
IterationTimer, EvalHook, LRScheduler, PeriodicCheckpointer, PeriodicWriter.
"""

import datetime
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional

import torch

from ..checkpoint import checkpoint_files
from ..data.skips import SkipCountingLoader
from ..utils import comm
from ..utils.seeding import rng_preserved
from .events import EventWriter
from .train_loop import HookBase

__all__ = [
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "EvalHook",
    "PeriodicWriter",
    "DataSkipCounts",
    "flatten_results_dict",
]

logger = logging.getLogger(__name__)


class IterationTimer(HookBase):
    """Puts "time" (seconds of before_step .. after_step) for every iteration; logs totals."""

    def __init__(self, warmup_iter: int = 3) -> None:
        """
        Args:
            warmup_iter: first iterations left out of the reported average speed.
        """
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._train_start = 0.0
        self._total_step_time = 0.0
        self._timed_iters = 0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()

    def before_step(self) -> None:
        self._step_start = time.perf_counter()

    def after_step(self) -> None:
        dt = time.perf_counter() - self._step_start
        if self.trainer.iter - self.trainer.start_iter >= self._warmup_iter:
            self._total_step_time += dt
            self._timed_iters += 1
        self.trainer.storage.put_scalar("time", dt)

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        if self._timed_iters:
            per = self._total_step_time / self._timed_iters
            logger.info(
                "Overall training speed: %d iterations in %s (%.4f s / it)",
                self._timed_iters,
                datetime.timedelta(seconds=int(self._total_step_time)),
                per,
            )
        logger.info("Total training time: %s", datetime.timedelta(seconds=int(total)))


class LRScheduler(HookBase):
    """Puts "lr" (of the largest param group) and steps the scheduler after every iteration.

    For a plateau schedule (one with ``report`` and ``metric``), each new evaluation value of
    ``scheduler.metric`` found in the storage is reported once.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler) -> None:
        """
        Args:
            optimizer: the optimizer whose lr is recorded.
            scheduler: a torch LRScheduler stepped once per iteration.
        """
        self._optimizer = optimizer
        self.scheduler = scheduler
        sizes = [sum(p.numel() for p in g["params"]) for g in optimizer.param_groups]
        self._best_group = max(range(len(sizes)), key=lambda i: sizes[i])

    def after_step(self) -> None:
        storage = self.trainer.storage
        storage.put_scalar(
            "lr", self._optimizer.param_groups[self._best_group]["lr"], smoothing_hint=False
        )
        self.scheduler.step()
        self._report_plateau_metric()

    def _report_plateau_metric(self) -> None:
        sched = self.scheduler
        if not hasattr(sched, "report"):
            return
        latest = self.trainer.storage.latest()
        if sched.metric in latest:
            value, itr = latest[sched.metric]
            if itr > sched.last_report_iter:
                sched.report(value, iteration=itr)
                logger.info(
                    "Plateau schedule: %s = %.4g at iteration %d; lr multiplier now %.3g",
                    sched.metric,
                    value,
                    itr,
                    sched.gamma**sched.num_reductions,
                )

    def after_train(self) -> None:
        # An evaluation run in after_train still counts for a resumed run's schedule.
        self._report_plateau_metric()


class PeriodicCheckpointer(HookBase):
    """Saves model_{iter:07d}.pth after iterations where (iter + 1) % period == 0, and
    model_final.pth after the last iteration (detectron2's convention). With ``keep_last``,
    only the newest ``keep_last`` numbered checkpoints stay (model_final.pth and the one
    last_checkpoint names are never removed)."""

    def __init__(
        self,
        checkpointer,
        period: int,
        max_iter: Optional[int] = None,
        file_prefix: str = "model",
        keep_last: int = 0,
    ) -> None:
        """
        Args:
            checkpointer: a :class:`~resnet_det.checkpoint.Checkpointer`.
            period: iterations between checkpoints.
            max_iter: total iterations (defaults to the trainer's).
            file_prefix: file name prefix.
            keep_last: numbered checkpoints kept (SOLVER.CHECKPOINT_KEEP_LAST); 0 keeps all.
                Keep 2 or more so that a damaged newest one leaves one to resume from.
        """
        if period < 1:
            raise ValueError(f"PeriodicCheckpointer: period must be >= 1, got {period}")
        if keep_last < 0:
            raise ValueError(f"PeriodicCheckpointer: keep_last must be >= 0, got {keep_last}")
        self.checkpointer = checkpointer
        self.period = period
        self.max_iter = max_iter
        self.file_prefix = file_prefix
        self.keep_last = keep_last
        self.last_saved_iter: Optional[int] = None

    def before_train(self) -> None:
        if self.max_iter is None:
            self.max_iter = self.trainer.max_iter

    def after_step(self) -> None:
        it = self.trainer.iter
        if (it + 1) % self.period == 0:
            self.save(it)
        if it >= self.max_iter - 1:
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=it)
            self.last_saved_iter = it

    def save(self, it: int) -> None:
        """Save ``{prefix}_{it:07d}`` (the state after iteration ``it``) unless this
        iteration is saved already; then remove checkpoints beyond ``keep_last``. A
        collective call with several processes."""
        if self.last_saved_iter == it:
            return
        self.checkpointer.save(f"{self.file_prefix}_{it:07d}", iteration=it)
        self.last_saved_iter = it
        if self.keep_last > 0 and self.checkpointer.save_to_disk:
            self._remove_old()

    def _remove_old(self) -> None:
        folder = self.checkpointer.save_dir
        named = self.checkpointer.get_checkpoint_file()
        numbered = [
            n for n in checkpoint_files(folder, self.file_prefix) if not n.endswith("_final.pth")
        ]
        for name in numbered[self.keep_last :]:
            path = os.path.join(folder, name)
            if os.path.abspath(path) != os.path.abspath(named):
                os.remove(path)
                logger.info("Removed %s (SOLVER.CHECKPOINT_KEEP_LAST = %d)", path, self.keep_last)


def flatten_results_dict(results: Mapping, prefix: str = "") -> Dict[str, float]:
    """{"bbox": {"AP": 40.1}} -> {"bbox/AP": 40.1}; every leaf must be a number."""
    out: Dict[str, float] = {}
    for k, v in results.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_results_dict(v, key + "/"))
        else:
            try:
                out[key] = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"Evaluation result {key} = {v!r} is not a number") from None
    return out


class EvalHook(HookBase):
    """Runs ``eval_function()`` every ``eval_period`` iterations and after training; its
    (nested) dict of results goes to the storage flattened with "/" (e.g. "bbox/AP")."""

    def __init__(
        self,
        eval_period: int,
        eval_function: Callable[[], Optional[Mapping]],
        eval_after_train: bool = True,
    ) -> None:
        """
        Args:
            eval_period: iterations between evaluations; 0 evaluates only after training.
            eval_function: returns a (nested) dict of numbers, or None/{} for nothing.
            eval_after_train: also evaluate once training completes.
        """
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train
        self.last_results: Optional[Mapping] = None

    def _do_eval(self) -> None:
        # The evaluation runs only in some runs (not in a run resumed after that point), so
        # it must leave the RNG streams as it found them for resumed runs to match.
        model = getattr(self.trainer, "model", None)
        was_training = model.training if model is not None else None
        with rng_preserved():
            results = self._func()
        if model is not None:
            model.train(was_training)  # evaluation switches to eval mode; training goes on
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(f"eval_function must return a dict, got {type(results).__name__}")
            flat = flatten_results_dict(results)
            for k, v in flat.items():
                if not math.isfinite(v):
                    logger.warning("Evaluation result %s is %s", k, v)
            self.trainer.storage.put_scalars(**flat, smoothing_hint=False)
        self.last_results = results
        # Evaluation may take different times on different ranks.
        comm.synchronize()

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if (
            self._period > 0
            and next_iter % self._period == 0
            and next_iter != self.trainer.max_iter
        ):
            self._do_eval()

    def after_train(self) -> None:
        # Only after a completed run (iter == max_iter), not after a crash.
        if self._eval_after_train and self.trainer.iter >= self.trainer.max_iter:
            self._do_eval()


class PeriodicWriter(HookBase):
    """Calls every writer's ``write`` each ``period`` iterations, at the last iteration and
    after training (then closes them)."""

    def __init__(self, writers: List[EventWriter], period: int = 20) -> None:
        """
        Args:
            writers: EventWriters (JSONWriter, TensorboardXWriter, CommonMetricPrinter).
            period: iterations between writes (LOG_PERIOD).
        """
        for w in writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter: {type(w).__name__} is not an EventWriter")
        self._writers = writers
        self._period = period

    def after_step(self) -> None:
        it = self.trainer.iter
        if (it + 1) % self._period == 0 or it == self.trainer.max_iter - 1:
            for w in self._writers:
                w.write()

    def after_train(self) -> None:
        for w in self._writers:
            # Writes what after_train hooks (e.g. the final evaluation) added.
            w.write()
            w.close()


class DataSkipCounts(HookBase):
    """Puts what DATALOADER.ON_BAD_IMAGE left out of the training data into the storage, so
    that metrics.json has it (resnet_det.data.skips): "data/skipped_images",
    "data/dropped_annotations" and per reason ".../<reason>"; after the first iteration, then
    whenever a count changes. Logs the totals after training. The counts are those of a
    SkipCountingLoader (what the built-in loader builders return); images skipped while
    loading are this process's.

    Args:
        get_loader: returns the training loader (known once training starts).
    """

    def __init__(self, get_loader: Callable[[], Any]) -> None:
        self._get_loader = get_loader
        self._last: Optional[Dict[str, int]] = None

    def _counts(self):
        loader = self._get_loader()
        return loader.counts() if isinstance(loader, SkipCountingLoader) else None

    def after_step(self) -> None:
        counts = self._counts()
        if counts is None:
            return
        scalars = counts.scalars()
        if scalars != self._last:
            self.trainer.storage.put_scalars(smoothing_hint=False, **scalars)
            self._last = scalars

    def after_train(self) -> None:
        counts = self._counts()
        if counts:
            logger.warning(
                "Training data: %s (DATALOADER.ON_BAD_IMAGE; counts in metrics.json under data/)",
                counts.summary(),
            )
