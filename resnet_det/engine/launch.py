"""Start one process per GPU (or per CPU "device" for tests) and join the process group.

- ``launch(main, num_gpus_per_machine=8)`` spawns the processes with torch.multiprocessing
  and runs ``main(*args)`` in each after init_process_group (NCCL on CUDA, gloo on CPU).
- Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment) nothing is spawned:
  this process joins with env:// and runs ``main``.
- Without CUDA, ``device="cpu"`` (or RESNET_DET_LAUNCH_DEVICE=cpu) runs N CPU processes with
  gloo, which is how the distributed path is tested on machines without GPUs.
"""
import datetime
import logging
import os
import socket
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import dist as comm
from ..utils.errors import UsageError

__all__ = ["launch", "find_free_port", "DEFAULT_TIMEOUT"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
DEVICE_ENV = "RESNET_DET_LAUNCH_DEVICE"


def find_free_port() -> int:
    """A TCP port free on this machine right now (the OS picks it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _under_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


def _resolve_device(device: Optional[str], num_gpus_per_machine: int) -> str:
    device = device or os.environ.get(DEVICE_ENV) or None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" and num_gpus_per_machine > 1:
            raise UsageError(
                f"launch: {num_gpus_per_machine} GPUs per machine requested (--num-gpus) but "
                f"CUDA is not available; pass device='cpu' or set {DEVICE_ENV}=cpu to run "
                f"{num_gpus_per_machine} CPU processes with gloo")
    if device not in ("cuda", "cpu"):
        raise UsageError(f"launch: device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("launch: device='cuda' but CUDA is not available")
        if torch.cuda.device_count() < num_gpus_per_machine:
            raise UsageError(f"launch: {num_gpus_per_machine} GPUs per machine requested, "
                               f"{torch.cuda.device_count()} visible")
    return device


def launch(main_func: Callable[..., Any], num_gpus_per_machine: int, num_machines: int = 1,
           machine_rank: int = 0, dist_url: Optional[str] = None, args: Sequence[Any] = (),
           *, backend: Optional[str] = None, device: Optional[str] = None,
           timeout: datetime.timedelta = DEFAULT_TIMEOUT) -> Any:
    """Run ``main_func(*args)`` in every process of a (possibly multi-machine) job.

    Returns main_func's result where it ran in this process (one process, or under torchrun);
    None where it ran in spawned processes.

    Args:
        main_func: a module-level function (it is pickled to the spawned processes).
        num_gpus_per_machine: processes per machine.
        num_machines: machines in the job.
        machine_rank: this machine's index.
        dist_url: rendezvous URL, e.g. "tcp://10.0.0.1:29500"; "auto" (or None) picks a free
            local port, single machine only.
        args: arguments of main_func.
        backend: "nccl" or "gloo" (default: nccl on CUDA, gloo on CPU).
        device: "cuda" or "cpu" (default: cuda when available; see the module docstring).
        timeout: process-group timeout.
    """
    if _under_torchrun():
        return _run_under_torchrun(main_func, args, backend=backend, device=device, timeout=timeout)
    world_size = num_machines * num_gpus_per_machine
    if num_gpus_per_machine < 1 or num_machines < 1:
        raise UsageError(f"launch: num_gpus_per_machine ({num_gpus_per_machine}) and "
                         f"num_machines ({num_machines}) must be >= 1")
    if not 0 <= machine_rank < num_machines:
        raise UsageError(f"launch: machine_rank {machine_rank} not in [0, {num_machines})")
    if world_size == 1:
        return main_func(*args)
    device = _resolve_device(device, num_gpus_per_machine)
    backend = backend or ("nccl" if device == "cuda" else "gloo")
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise UsageError("launch: dist_url='auto' only works on one machine; pass "
                             "--dist-url tcp://<host of machine 0>:<port>")
        dist_url = f"tcp://127.0.0.1:{find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// rendezvous needs a file system shared by all machines")
    mp.start_processes(
        _distributed_worker, nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args),
              backend, device, timeout),
        daemon=False, start_method="spawn")


def _distributed_worker(local_rank: int, main_func, world_size: int, num_gpus_per_machine: int,
                        machine_rank: int, dist_url: str, args, backend: str, device: str,
                        timeout) -> None:
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, init_method=dist_url, world_size=world_size,
                                rank=global_rank, timeout=timeout)
    except Exception as e:
        raise RuntimeError(f"Process group initialisation failed at {dist_url} (rank "
                           f"{global_rank} of {world_size}): {e}") from e
    comm.set_local_info(local_rank, num_gpus_per_machine)
    try:
        comm.synchronize()
        return main_func(*args)
    finally:
        dist.destroy_process_group()


def _run_under_torchrun(main_func, args, *, backend, device, timeout) -> Any:
    local_rank = int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    if device is None:
        device = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = backend or ("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", timeout=timeout)
    comm.set_local_info(local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))
    try:
        comm.synchronize()
        return main_func(*args)
    finally:
        dist.destroy_process_group()
