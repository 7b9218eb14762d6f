"""Tiny models, loaders and a distributed worker for the engine tests (not a test module).

Importable by name (the tests put this folder on sys.path) because spawned processes must
unpickle ``ddp_worker`` by module name.
"""
import itertools
import os

import torch
from torch import nn

from resnet_det.config import get_cfg
from resnet_det.engine import DefaultTrainer, HookBase, comm


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
            yield x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]

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
    trainer = DefaultTrainer(cfg, model=LinearMSE(),
                             data_loader=loader_factory(batch_size, comm.get_rank(),
                                                        comm.get_world_size()))
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer


def ddp_worker(output_dir: str, max_iter: int, batch_size: int):
    trainer = train_linear(output_dir, max_iter, batch_size)
    model = trainer.model
    gathered = comm.all_gather(comm.get_rank())
    reduced = comm.reduce_dict({"a": torch.tensor(float(comm.get_rank()))})
    info = {"wrapped": type(model).__name__, "world": comm.get_world_size(),
            "gathered": gathered, "reduced_a": float(reduced["a"])}
    state = {k: v.detach().clone() for k, v in trainer.checkpointer.model.state_dict().items()}
    torch.save({"state": state, "info": info},
               os.path.join(output_dir, f"rank{comm.get_rank()}.pt"))
