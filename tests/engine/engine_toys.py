"""Tiny models, loaders and a distributed worker for the engine tests (not a test module).

Importable by name (the tests put this folder on sys.path) because spawned processes must
unpickle ``ddp_worker`` by module name.
"""

import itertools
import os
import signal
import time

import torch
from torch import nn

from resnet_det.config import get_cfg
from resnet_det.engine import DefaultTrainer, HookBase
from resnet_det.utils import comm


class NoisyRegressor(nn.Module):
    """Linear regression with dropout and additive noise: every step draws random numbers,
    so a resume that did not restore the RNG streams would diverge."""

    def __init__(self, dim: int = 4, dropout: float = 0.3, noise: float = 0.1):
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.noise = noise

    def forward(self, batch):
        x, y = batch
        pred = self.linear(self.dropout(self.norm(x)))
        pred = pred + self.noise * torch.randn_like(pred)
        return {"loss_mse": ((pred - y) ** 2).mean(), "loss_l1": 0.1 * (pred - y).abs().mean()}


class Crash(Exception):
    """Raised by ``CrashAt``: a simulated failure in the middle of training."""


class CrashAt(HookBase):
    """Raises ``Crash`` before the step of iteration ``it``."""

    def __init__(self, it):
        self.it = it

    def before_step(self):
        if self.trainer.iter == self.it:
            raise Crash(f"simulated crash at {self.it}")


def batch_at(iteration: int, batch_size: int, dim: int = 4, seed: int = 0):
    """The full batch of an iteration: a function of (seed, iteration) only."""
    g = torch.Generator().manual_seed(seed * 100003 + iteration)
    x = torch.randn(batch_size, dim, generator=g)
    w = torch.arange(1, dim + 1, dtype=torch.float32)
    return x, (x @ w).unsqueeze(1) + 0.5


def loader_factory(batch_size: int, rank: int = 0, world_size: int = 1):
    """f(start_iter) -> infinite iterator; rank r gets rows r*B/W .. (r+1)*B/W of the batch."""
    per = batch_size // world_size

    def make(start_iter: int):
        for it in itertools.count(start_iter):
            x, y = batch_at(it, batch_size)
            yield x[rank * per : (rank + 1) * per], y[rank * per : (rank + 1) * per]

    return make


def toy_cfg(output_dir: str, max_iter: int = 8, **solver):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = output_dir
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.STEPS = (max_iter // 2,)
    cfg.SOLVER.WARMUP_ITERS = 2
    cfg.SOLVER.WARMUP_FACTOR = 0.1
    cfg.SOLVER.BASE_LR = 0.05
    cfg.SOLVER.CHECKPOINT_PERIOD = 3
    cfg.SOLVER.IMS_PER_BATCH = 8
    cfg.LOG_PERIOD = 2
    for k, v in solver.items():
        cfg.SOLVER[k] = v
    return cfg


class LinearMSE(nn.Module):
    """Deterministic model for the distributed test: mean squared error of a linear map."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, batch):
        x, y = batch
        return {"loss_mse": ((self.linear(x) - y) ** 2).mean()}


def train_linear(output_dir: str, max_iter: int, batch_size: int):
    """Train LinearMSE on this process's share of each batch; returns the trainer."""
    torch.manual_seed(123)  # the same initial weights everywhere (DDP also broadcasts them)
    cfg = toy_cfg(output_dir, max_iter=max_iter, IMS_PER_BATCH=batch_size, MOMENTUM=0.9)
    cfg.SOLVER.CHECKPOINT_PERIOD = 1000
    trainer = DefaultTrainer(
        cfg,
        model=LinearMSE(),
        data_loader=loader_factory(batch_size, comm.get_rank(), comm.get_world_size()),
    )
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer


def ddp_worker(output_dir: str, max_iter: int, batch_size: int):
    trainer = train_linear(output_dir, max_iter, batch_size)
    model = trainer.model
    gathered = comm.all_gather(comm.get_rank())
    reduced = comm.reduce_dict({"a": torch.tensor(float(comm.get_rank()))})
    info = {
        "wrapped": type(model).__name__,
        "world": comm.get_world_size(),
        "gathered": gathered,
        "reduced_a": float(reduced["a"]),
    }
    state = {k: v.detach().clone() for k, v in trainer.checkpointer.model.state_dict().items()}
    torch.save(
        {"state": state, "info": info}, os.path.join(output_dir, f"rank{comm.get_rank()}.pt")
    )


# ---------------------------------------------------------------- faults (pre-emption, deaths)
class SignalAt(HookBase):
    """Sends ``signum`` to this process after the step of iteration ``it`` (on ``rank`` only,
    if given): a scheduler's SIGTERM or a Ctrl-C arriving mid-run, deterministically."""

    def __init__(self, it, signum, rank=None):
        self.it, self.signum, self.rank = it, signum, rank

    def after_step(self):
        if self.trainer.iter == self.it and self.rank in (None, comm.get_rank()):
            os.kill(os.getpid(), self.signum)


class SlowSteps(HookBase):
    """Prints TRAINING (flushed) when the first step starts and sleeps after every step: a
    wider window for a signal sent from outside to land anywhere in the loop."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.announced = False

    def before_step(self):
        if not self.announced:
            print("TRAINING", flush=True)
            self.announced = True

    def after_step(self):
        time.sleep(self.seconds)


class IterationDataset(torch.utils.data.Dataset):
    """Item i is the batch of iteration i (batch_at): a map-style set for a DataLoader with
    worker processes, positioned by its sampler."""

    def __init__(self, batch_size):
        self.batch_size = batch_size

    def __len__(self):
        return 10**9

    def __getitem__(self, i):
        return batch_at(i, self.batch_size)


def worker_loader_factory(batch_size: int, num_workers: int = 1):
    """f(start_iter) -> a torch DataLoader with worker processes yielding batch_at(it)."""

    def make(start_iter: int):
        # Its own generator, as the project's loaders have: iter(loader) draws the workers'
        # base seed from it, not from the process-wide stream the model's dropout uses.
        return torch.utils.data.DataLoader(
            IterationDataset(batch_size),
            batch_size=None,
            sampler=range(start_iter, 10**9),
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(0),
        )

    return make


def run_noisy(
    output_dir: str,
    max_iter: int,
    *,
    resume: bool = False,
    sleep: float = 0.0,
    workers: int = 0,
    period: int = 1000,
    extra_hooks=(),
    **solver,
):
    """Train NoisyRegressor (dropout + noise: exact resume needs the RNG streams) without
    evaluation; checkpoints every ``period``; ``solver``: more SOLVER keys. Returns the trainer."""
    torch.manual_seed(0)
    solver.setdefault("BASE_LR", 0.01)  # 0.05 diverges by iteration 20
    cfg = toy_cfg(output_dir, max_iter=max_iter, **solver)
    cfg.SOLVER.CHECKPOINT_PERIOD = period
    loader = worker_loader_factory(8, workers) if workers else loader_factory(8)
    trainer = DefaultTrainer(cfg, model=NoisyRegressor(), data_loader=loader)
    trainer.register_hooks([SlowSteps(sleep)] if sleep else [])
    trainer.register_hooks(extra_hooks)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    return trainer


def ddp_fault_worker(output_dir: str, max_iter: int, batch_size: int, resume: bool, fault=None):
    """LinearMSE under DDP with checkpoints every 2 iterations; ``fault`` = (kind, rank, it):
    "term" sends SIGTERM to that rank after iteration it, "kill" SIGKILLs it there. Writes
    rank<r>.pt (final weights) or stopped<r>.txt (the iteration a stop happened after)."""
    from resnet_det.engine import TrainingPreempted

    torch.manual_seed(123)
    cfg = toy_cfg(output_dir, max_iter=max_iter, IMS_PER_BATCH=batch_size, MOMENTUM=0.9)
    cfg.SOLVER.CHECKPOINT_PERIOD = 2
    trainer = DefaultTrainer(
        cfg,
        model=LinearMSE(),
        data_loader=loader_factory(batch_size, comm.get_rank(), comm.get_world_size()),
    )
    if fault is not None:
        kind, rank, it = fault
        trainer.register_hooks(
            [SignalAt(it, signal.SIGTERM if kind == "term" else signal.SIGKILL, rank)]
        )
    trainer.resume_or_load(resume=resume)
    try:
        trainer.train()
    except TrainingPreempted as e:
        with open(os.path.join(output_dir, f"stopped{comm.get_rank()}.txt"), "w") as f:
            f.write(str(e.iteration))
        raise
    state = {k: v.detach().clone() for k, v in trainer.checkpointer.model.state_dict().items()}
    torch.save(state, os.path.join(output_dir, f"rank{comm.get_rank()}.pt"))


def resume_from_own_folder(folders):
    """Rank r resumes a LinearMSE from folders[r] (a collective: the ranks compare choices)."""
    from resnet_det.checkpoint import Checkpointer

    Checkpointer(LinearMSE(), folders[comm.get_rank()]).resume_or_load("", resume=True)


if __name__ == "__main__":
    # The pre-emption tests run this file as a process and signal it.
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--max-iter", type=int, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=0)
    a = parser.parse_args()
    run_noisy(a.output_dir, a.max_iter, resume=a.resume, sleep=a.sleep, workers=a.workers)
