"""Process-group helpers that also work without torch.distributed initialised (1 process).

The only home of rank / world-size / gather helpers in the package: data samplers, the
evaluators, the trainers and the tools all ask here.

Importing this module does not import torch: a process group exists only once
torch.distributed has been imported (by whoever started it), so a process that never imported
it is one process, and asking its rank or world size (tools/evaluate.py scoring a results file
through the evaluators) loads nothing. The collectives import torch where they run, always
after a process group was started.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "get_dist_info",
    "get_world_size",
    "get_rank",
    "get_local_rank",
    "get_local_size",
    "is_main_process",
    "synchronize",
    "all_gather",
    "all_reduce_sum",
    "reduce_dict",
    "set_local_info",
]

_LOCAL_RANK = None
_LOCAL_SIZE = None


def set_local_info(local_rank: int, local_size: int) -> None:
    """Recorded by launch() for the processes it spawns (torchrun sets LOCAL_RANK instead)."""
    global _LOCAL_RANK, _LOCAL_SIZE
    _LOCAL_RANK, _LOCAL_SIZE = local_rank, local_size


def _process_group() -> Optional[Any]:
    """torch.distributed when its default process group is initialised, else None."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def _initialized() -> bool:
    return _process_group() is not None


def get_world_size() -> int:
    dist = _process_group()
    return dist.get_world_size() if dist is not None else 1


def get_rank() -> int:
    dist = _process_group()
    return dist.get_rank() if dist is not None else 0


def get_dist_info() -> Tuple[int, int]:
    """(rank, world_size) of the default process group, or (0, 1) without one."""
    return get_rank(), get_world_size()


def get_local_rank() -> int:
    """Rank within the machine (selects the GPU)."""
    if not _initialized():
        return 0
    if _LOCAL_RANK is not None:
        return _LOCAL_RANK
    return int(os.environ.get("LOCAL_RANK", get_rank()))


def get_local_size() -> int:
    if not _initialized():
        return 1
    if _LOCAL_SIZE is not None:
        return _LOCAL_SIZE
    return int(os.environ.get("LOCAL_WORLD_SIZE", get_world_size()))


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op with one process)."""
    if get_world_size() > 1:
        import torch
        import torch.distributed as dist

        if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_gather(data: Any) -> List[Any]:
    """Gather any picklable object from every rank; returns a list indexed by rank.

    The objects come from our own processes (never from files), so pickling is safe here.
    """
    world = get_world_size()
    if world == 1:
        return [data]
    import torch.distributed as dist

    out: List[Any] = [None] * world
    dist.all_gather_object(out, data)
    return out


def all_reduce_sum(values: List[int]) -> List[int]:
    """Sum a list of integers (counts) over all processes; every rank gets the sums. Exact:
    summed as int64, unlike :func:`reduce_dict`'s floats."""
    if get_world_size() < 2:
        return list(values)
    import torch
    import torch.distributed as dist

    # gloo reduces CPU tensors, nccl CUDA tensors.
    nccl = dist.get_backend() == dist.Backend.NCCL
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    t = torch.tensor(list(values), dtype=torch.int64, device=device)
    dist.all_reduce(t)
    return [int(v) for v in t.tolist()]


def reduce_dict(
    input_dict: Dict[str, torch.Tensor], average: bool = True
) -> Dict[str, torch.Tensor]:
    """All-reduce a dict of scalar tensors (same keys on every rank); every rank gets the
    mean (or sum). Keys are sorted so that all ranks reduce in the same order."""
    world = get_world_size()
    if world < 2:
        return dict(input_dict)
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k].detach().float().reshape(()) for k in names])
        dist.all_reduce(values)
        if average:
            values /= world
        return {k: v for k, v in zip(names, values)}
