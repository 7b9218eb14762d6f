"""EventStorage (scalars per iteration, and precision-recall curves for TensorBoard) and the
writers that drain it: metrics.json, TensorBoard and the console, with detectron2's key names."""

import datetime
import json
import logging
import os
import time
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from fvcore.common.history_buffer import HistoryBuffer

__all__ = [
    "EventStorage",
    "get_event_storage",
    "current_event_storage",
    "put_pr_curves",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
]

_CURRENT_STORAGE_STACK: List["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """The storage of the training loop currently running (inside ``with EventStorage()``)."""
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError(
            "get_event_storage() called outside of an EventStorage context: "
            "it is only available while a trainer runs"
        )
    return _CURRENT_STORAGE_STACK[-1]


def current_event_storage() -> Optional["EventStorage"]:
    """The storage of the training loop currently running, or None outside one."""
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class EventStorage:
    """Scalar histories keyed by name, each value tagged with the iteration it belongs to."""

    def __init__(self, start_iter: int = 0) -> None:
        """
        Args:
            start_iter: iteration the storage starts at (the resumed iteration).
        """
        self._history: Dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: Dict[str, bool] = {}
        self._latest_scalars: Dict[str, Tuple[float, int]] = {}
        self._pr_curves: List[Tuple[str, Dict[str, Any], int]] = []
        self.iter = start_iter

    def put_scalar(self, name: str, value, smoothing_hint: bool = True) -> None:
        """Record ``value`` under ``name`` at the current iteration.

        smoothing_hint: writers may report a windowed median (losses) instead of the latest
        value (lr, evaluation results).
        """
        value = float(value.detach().cpu().item() if isinstance(value, torch.Tensor) else value)
        self._history[name].update(value, self.iter)
        self._latest_scalars[name] = (value, self.iter)
        existing = self._smoothing_hints.get(name)
        if existing is not None and existing != smoothing_hint:
            raise ValueError(
                f"Scalar {name} was put with smoothing_hint={existing} before, now {smoothing_hint}"
            )
        self._smoothing_hints[name] = smoothing_hint

    def put_scalars(self, *, smoothing_hint: bool = True, **kwargs) -> None:
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint)

    def put_pr_curve(self, name: str, **counts) -> None:
        """Record a precision-recall curve at the current iteration for TensorBoard's PR-curve
        plugin (``SummaryWriter.add_pr_curve_raw``): counts are arrays over thresholds,
        ``true_positive_counts``, ``false_positive_counts``, ``true_negative_counts``,
        ``false_negative_counts``, ``precision``, ``recall``."""
        self._pr_curves.append((name, dict(counts), self.iter))

    def pr_curves(self, start: int = 0) -> List[Tuple[str, Dict[str, Any], int]]:
        """The curves put from the ``start``-th on: (name, counts, iteration)."""
        return self._pr_curves[start:]

    def history(self, name: str) -> HistoryBuffer:
        if name not in self._history:
            raise KeyError(
                f"No scalar named {name} in the EventStorage (have {sorted(self._history)})"
            )
        return self._history[name]

    def histories(self) -> Dict[str, HistoryBuffer]:
        return dict(self._history)

    def latest(self) -> Dict[str, Tuple[float, int]]:
        """name -> (latest value, iteration it was put at)."""
        return dict(self._latest_scalars)

    def latest_with_smoothing_hint(self, window_size: int = 20) -> Dict[str, Tuple[float, int]]:
        """Like :meth:`latest` but smoothed scalars are medians over the last ``window_size``
        values."""
        out = {}
        for k, (v, itr) in self._latest_scalars.items():
            out[k] = (self._history[k].median(window_size) if self._smoothing_hints[k] else v, itr)
        return out

    def step(self) -> None:
        self.iter += 1

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, *exc) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()


def put_pr_curves(dataset_name: str, analyses: Mapping[str, Any]) -> None:
    """Each category's PR curve at IoU 0.5 (from an evaluation's error analyses, task ->
    ErrorAnalysis) into the running trainer's storage, as "<dataset>/<task>/PR50/<category>";
    nothing outside a training loop."""
    storage = current_event_storage()
    if storage is None:
        return
    for task, analysis in analyses.items():
        for category, counts in analysis.pr_curves().items():
            storage.put_pr_curve(f"{dataset_name}/{task}/PR50/{category}", **counts)


class EventWriter:
    """Writes what is new in the current EventStorage."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Appends one JSON object a line to ``json_file``: {"iteration": i, name: value, ...}.

    Every scalar put since the last write is written under the iteration it was put at, so
    evaluation results land on their own iteration.
    """

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        """
        Args:
            json_file: path of metrics.json (appended to, so a resumed run continues it).
            window_size: median window for smoothed scalars.
        """
        os.makedirs(os.path.dirname(os.path.abspath(json_file)), exist_ok=True)
        self._file = open(json_file, "a")
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        by_iter: Dict[int, Dict[str, float]] = defaultdict(dict)
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                by_iter[itr][k] = v
        if not by_iter:
            return
        for itr in sorted(by_iter):
            self._file.write(json.dumps({"iteration": itr, **by_iter[itr]}, sort_keys=True) + "\n")
        self._file.flush()
        try:
            os.fsync(self._file.fileno())
        except OSError:
            pass
        self._last_write = max(by_iter)

    def close(self) -> None:
        self._file.close()


class TensorboardXWriter(EventWriter):
    """Scalars and precision-recall curves to TensorBoard event files in ``log_dir``
    (torch.utils.tensorboard)."""

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs) -> None:
        """
        Args:
            log_dir: folder for the event files (OUTPUT_DIR).
            window_size: median window for smoothed scalars.
            kwargs: passed to SummaryWriter.
        """
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir, **kwargs)
        self._window_size = window_size
        self._last_write = -1
        self._pr_written = 0

    def write(self) -> None:
        storage = get_event_storage()
        new_last = self._last_write
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                self._writer.add_scalar(k, v, itr)
                new_last = max(new_last, itr)
        self._last_write = new_last
        curves = storage.pr_curves(self._pr_written)
        for name, counts, itr in curves:
            num_thresholds = len(counts["precision"])
            self._writer.add_pr_curve_raw(
                name, **counts, global_step=itr, num_thresholds=num_thresholds
            )
        self._pr_written += len(curves)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Console/log line: ETA, iteration, losses, time, data_time, lr, max GPU memory.

    Also puts "eta_seconds" into the storage so metrics.json has it.
    """

    def __init__(
        self, max_iter: int, window_size: int = 20, logger: Optional[logging.Logger] = None
    ) -> None:
        """
        Args:
            max_iter: total iterations (for the ETA).
            window_size: median window for losses and times.
            logger: where to log (the package's engine logger by default).
        """
        self.logger = logger or logging.getLogger(__name__)
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: Optional[Tuple[int, float]] = None

    def _eta(self, storage: EventStorage) -> Optional[str]:
        if storage.iter >= self._max_iter:
            return None
        remaining = self._max_iter - storage.iter - 1
        try:
            eta = storage.history("time").median(1000) * remaining
            storage.put_scalar("eta_seconds", eta, smoothing_hint=False)
            return str(datetime.timedelta(seconds=int(eta)))
        except KeyError:
            # No "time" yet (the first iterations): estimate from wall time between writes.
            now = time.perf_counter()
            eta_string = None
            if self._last_write is not None:
                per_iter = (now - self._last_write[1]) / max(storage.iter - self._last_write[0], 1)
                eta_string = str(datetime.timedelta(seconds=int(per_iter * remaining)))
            self._last_write = (storage.iter, now)
            return eta_string

    def write(self) -> None:
        storage = get_event_storage()
        it = storage.iter
        if it >= self._max_iter:
            return  # after training: evaluation results are logged by the evaluator
        hist = storage.histories()

        def med(name: str) -> Optional[float]:
            return hist[name].median(self._window_size) if name in hist else None

        def avg(name: str) -> Optional[float]:
            return hist[name].avg(self._window_size) if name in hist else None

        eta = self._eta(storage)
        losses = "  ".join(
            f"{k}: {h.median(self._window_size):.4g}"
            for k, h in sorted(hist.items())
            if "loss" in k
        )
        parts = []
        if eta:
            parts.append(f"eta: {eta}")
        parts.append(f"iter: {it}")
        if losses:
            parts.append(losses)
        if "time" in hist:
            parts.append(f"time: {avg('time'):.4f}")
        if "data_time" in hist:
            parts.append(f"data_time: {med('data_time'):.4f}")
        if "lr" in hist:
            parts.append(f"lr: {hist['lr'].latest():.5g}")
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            parts.append(f"max_mem: {torch.cuda.max_memory_allocated() / 1024 / 1024:.0f}M")
        self.logger.info("  ".join(parts))
