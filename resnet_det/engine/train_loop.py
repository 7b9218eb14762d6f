"""The training loop: TrainerBase (iterations + hooks) and SimpleTrainer (one SGD step).

Contract (docs/internals.md): ``model(batch)`` in train mode returns a dict of scalar
losses; the step sums them, back-propagates, optionally clips and steps the optimizer.
"""

import logging
import math
import time
import warnings
import weakref
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from ..utils import comm
from .events import EventStorage
from .signals import StopRequest, TrainingPreempted

__all__ = ["HookBase", "TrainerBase", "SimpleTrainer", "batch_image_ids"]

logger = logging.getLogger(__name__)


class HookBase:
    """Called around training; ``self.trainer`` is set (as a weak proxy) when registered.

    Order of calls: before_train, then for each iteration before_step, run_step, after_step,
    then after_train (also after an exception, so writers flush).
    """

    trainer: "TrainerBase"

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}


class TrainerBase:
    """Iterates ``run_step`` from ``start_iter`` to ``max_iter - 1`` and calls the hooks.

    Attributes: iter (current iteration), start_iter, max_iter, storage (EventStorage).

    ``stop_signals`` (class attribute, empty here) are the signals that, while the loop runs,
    end training after the iteration in progress (engine/signals.py) instead of killing the
    process; DefaultTrainer catches SIGTERM and SIGINT and writes a checkpoint first.
    """

    stop_signals: Tuple[int, ...] = ()

    def __init__(self) -> None:
        self._hooks: List[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.storage: Optional[EventStorage] = None

    def register_hooks(self, hooks: Iterable[Optional[HookBase]]) -> None:
        """Append hooks (None entries are skipped); they run in registration order."""
        for h in hooks:
            if h is None:
                continue
            if not isinstance(h, HookBase):
                raise TypeError(f"register_hooks: expected HookBase, got {type(h).__name__}")
            # A weak proxy avoids a trainer <-> hook reference cycle.
            h.trainer = weakref.proxy(self)
            self._hooks.append(h)

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1``."""
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                # Handlers only until the last iteration: during the final evaluation a signal
                # acts as usual (the final checkpoint is written by then).
                with StopRequest(self.stop_signals) as stop:
                    logger.info("Starting training from iteration %d", start_iter)
                    self.before_train()
                    for self.iter in range(start_iter, max_iter):
                        self.before_step()
                        self.run_step()
                        self.after_step()
                        if stop.agreed():  # one collective per iteration when world > 1
                            self.stop_after_iteration(stop.describe())
                # iter == max_iter tells after_train that training completed normally
                # (also when a resumed run had nothing left to do).
                self.iter = max(max_iter, start_iter)
            except Exception:
                logger.exception("Exception during training at iteration %d:", self.iter)
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def stop_after_iteration(self, reason: str) -> None:
        """A stop signal (``reason``, e.g. "SIGTERM") asked to end training; iteration
        ``self.iter`` is complete. Raises :class:`TrainingPreempted` (after_train hooks still
        run). DefaultTrainer overrides this to write the checkpoint of that iteration first."""
        msg = (
            f"Stopped by {reason} after iteration {self.iter}; this trainer writes no "
            "checkpoint, so nothing is kept to resume from"
        )
        logger.warning(msg)
        raise TrainingPreempted(msg, iteration=self.iter, signal_name=reason)


def batch_image_ids(batch: Any) -> List[Any]:
    """The image ids of a batch, for error messages: a detection batch (list of dicts with
    "image_id") or a classification batch (dict with an "image_id" list); [] for batches
    without ids (e.g. tensors)."""
    if isinstance(batch, dict):
        ids = batch.get("image_id")
        return list(ids) if isinstance(ids, (list, tuple)) else ([] if ids is None else [ids])
    if isinstance(batch, (list, tuple)) and batch and all(isinstance(d, dict) for d in batch):
        return [d.get("image_id", d.get("file_name")) for d in batch]
    return []


_AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


class SimpleTrainer(TrainerBase):
    """One optimizer step per iteration on ``next(data_loader_iterator)``.

    On CUDA, ``amp_enabled`` runs the forward under autocast (float16 with a GradScaler, or
    bfloat16 which needs no scaling). On CPU AMP and channels_last are ignored with one
    warning: the CPU runs are for tests and demos, where full precision is wanted.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Optional[Iterable],
        optimizer: torch.optim.Optimizer,
        *,
        amp_enabled: bool = False,
        amp_dtype: str = "float16",
        grad_clip_type: Optional[str] = None,
        grad_clip_value: float = 1.0,
        grad_clip_norm_type: float = 2.0,
        channels_last: bool = False,
        grad_scaler=None,
        max_nonfinite_skips: int = 0,
    ) -> None:
        """
        Args:
            model: in train mode returns a dict of scalar losses (may be DDP-wrapped).
            data_loader: an iterable of batches (infinite for training); may be set later
                through the ``data_loader`` attribute before ``train``.
            optimizer: the optimizer.
            amp_enabled: mixed precision on CUDA.
            amp_dtype: "float16" or "bfloat16".
            grad_clip_type: None (no clipping), "value" or "norm".
            grad_clip_value: clip threshold.
            grad_clip_norm_type: p of the L-p norm for "norm" clipping.
            channels_last: convert the model to channels_last memory format (CUDA only).
            grad_scaler: a torch.amp.GradScaler to use (one is made for float16 on CUDA).
            max_nonfinite_skips: iterations whose loss is NaN or infinite that are skipped
                (no weight update, counted as "nonfinite_skipped") before one stops training;
                0 stops at the first. Counted from the start of this process's run.
        """
        super().__init__()
        if amp_dtype not in _AMP_DTYPES:
            raise ValueError(
                f"SimpleTrainer: amp_dtype must be one of {list(_AMP_DTYPES)}, got {amp_dtype!r}"
            )
        if grad_clip_type not in (None, "value", "norm"):
            raise ValueError(
                f"SimpleTrainer: grad_clip_type must be None, 'value' or 'norm', "
                f"got {grad_clip_type!r}"
            )
        if grad_clip_type is not None and grad_clip_value <= 0:
            raise ValueError(f"SimpleTrainer: grad_clip_value must be > 0, got {grad_clip_value}")
        if max_nonfinite_skips < 0:
            raise ValueError(
                f"SimpleTrainer: max_nonfinite_skips must be >= 0, got {max_nonfinite_skips}"
            )
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter = None
        self.optimizer = optimizer
        self.grad_clip_type = grad_clip_type
        self.grad_clip_value = grad_clip_value
        self.grad_clip_norm_type = grad_clip_norm_type
        self.max_nonfinite_skips = max_nonfinite_skips
        self.num_nonfinite_skipped = 0

        device = _model_device(model)
        on_cuda = device.type == "cuda"
        if (amp_enabled or channels_last) and not on_cuda:
            warnings.warn(
                f"SimpleTrainer: the model is on {device}; "
                f"{'AMP ' if amp_enabled else ''}"
                f"{'channels_last ' if channels_last else ''}"
                "apply to CUDA only and are ignored (full precision on CPU)",
                stacklevel=2,
            )
        self.amp_enabled = amp_enabled and on_cuda
        self.amp_dtype = _AMP_DTYPES[amp_dtype]
        if channels_last and on_cuda:
            model.to(memory_format=torch.channels_last)
        if grad_scaler is None and self.amp_enabled and self.amp_dtype == torch.float16:
            grad_scaler = torch.amp.GradScaler("cuda")
        self.grad_scaler = grad_scaler

    def reset_data_loader(self, data_loader: Iterable) -> None:
        self.data_loader = data_loader
        self._data_loader_iter = None

    def _next_batch(self):
        if self._data_loader_iter is None:
            if self.data_loader is None:
                raise RuntimeError("SimpleTrainer: no data_loader set")
            self._data_loader_iter = iter(self.data_loader)
        try:
            return next(self._data_loader_iter)
        except StopIteration:
            raise RuntimeError(
                f"The training data loader ended at iteration {self.iter}; it "
                "must be infinite (use a TrainingSampler)"
            ) from None

    def run_step(self) -> None:
        if not self.model.training:
            raise RuntimeError(
                f"SimpleTrainer: model was switched to eval mode (iteration "
                f"{self.iter}); evaluation must restore train mode"
            )
        start = time.perf_counter()
        batch = self._next_batch()
        data_time = time.perf_counter() - start

        with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_enabled):
            loss_dict = self.model(batch)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        if not isinstance(loss_dict, dict) or not loss_dict:
            raise TypeError(
                f"model(batch) must return a non-empty dict of losses in train "
                f"mode, got {type(loss_dict).__name__} at iteration {self.iter}"
            )
        losses = sum(v.float() for v in loss_dict.values())

        # Check before backward so non-finite values never reach the weights. Every rank
        # checks the same all-reduced numbers and so raises (or skips) together: no hang in DDP.
        if not self._write_metrics(loss_dict, data_time, batch):
            return

        self.optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
            if self.grad_clip_type is not None:
                self.grad_scaler.unscale_(self.optimizer)
                self._clip()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            losses.backward()
            if self.grad_clip_type is not None:
                self._clip()
            self.optimizer.step()

    def _clip(self) -> None:
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.grad_clip_type == "value":
            torch.nn.utils.clip_grad_value_(params, self.grad_clip_value)
        else:
            torch.nn.utils.clip_grad_norm_(
                params, self.grad_clip_value, norm_type=self.grad_clip_norm_type
            )

    def _write_metrics(
        self, loss_dict: Dict[str, torch.Tensor], data_time: float, batch: Any = None
    ) -> bool:
        """Put the losses and data time; returns False when the iteration is to be skipped
        (non-finite loss within max_nonfinite_skips). Raises FloatingPointError beyond."""
        reduced = comm.reduce_dict({k: v.detach().float() for k, v in loss_dict.items()})
        values = {k: float(v) for k, v in reduced.items()}
        total = sum(values.values())
        if not math.isfinite(total):
            msg = self._nonfinite_message(total, values, loss_dict, batch)
            if self.num_nonfinite_skipped >= self.max_nonfinite_skips:
                raise FloatingPointError(msg)
            self.num_nonfinite_skipped += 1
            logger.warning(
                "%s\nSkipped (no weight update): %d of at most %d non-finite "
                "iterations (SOLVER.SKIP_NONFINITE_ITERS)",
                msg,
                self.num_nonfinite_skipped,
                self.max_nonfinite_skips,
            )
            self.storage.put_scalar(
                "nonfinite_skipped", self.num_nonfinite_skipped, smoothing_hint=False
            )
            return False
        dt = comm.all_gather(data_time) if comm.get_world_size() > 1 else [data_time]
        # The slowest rank's data time is the one that stalls the step.
        self.storage.put_scalar("data_time", max(dt))
        self.storage.put_scalar("total_loss", total)
        if len(values) > 1 or "total_loss" not in values:
            self.storage.put_scalars(**values)
        return True

    def _nonfinite_message(
        self, total: float, values: Dict[str, float], loss_dict: Dict[str, torch.Tensor], batch: Any
    ) -> str:
        """Names the iteration, every loss term (averaged over ranks, and this rank's own
        where they differ) and the image ids of the batch on every rank. Collective with
        several processes; every rank gets here together (same reduced total)."""
        local = {k: float(v.detach().float()) for k, v in loss_dict.items()}
        per_rank = comm.all_gather((batch_image_ids(batch), local))
        terms = ", ".join(f"{k} = {v}" for k, v in values.items())
        lines = [
            f"Loss became infinite or NaN at iteration {self.iter}: total_loss = {total}; {terms}"
        ]
        for rank, (ids, own) in enumerate(per_rank):
            where = f"rank {rank} " if len(per_rank) > 1 else ""
            bad = [k for k, v in own.items() if not math.isfinite(v)]
            lines.append(
                f"  {where}batch image ids: {ids if ids else '(the batch has no image ids)'}"
                + (
                    f"; non-finite there: {', '.join(f'{k} = {own[k]}' for k in bad)}"
                    if len(per_rank) > 1 and bad
                    else ""
                )
            )
        lines.append(
            "The weights were not updated with this loss, and the checkpoints written "
            "so far are untouched. Fix: lower SOLVER.BASE_LR, lengthen "
            "SOLVER.WARMUP_ITERS, enable SOLVER.CLIP_GRADIENTS, check the annotations "
            "of those images, or let SOLVER.SKIP_NONFINITE_ITERS skip a few such "
            "iterations."
        )
        return "\n".join(lines)

    def state_dict(self) -> dict:
        return {}


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")
