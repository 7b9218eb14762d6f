"""Start one process per GPU (or per CPU "device" for tests) and join the process group.

- ``launch(main, num_gpus_per_machine=8)`` spawns the processes with torch.multiprocessing
  and runs ``main(*args)`` in each after init_process_group (NCCL on CUDA, gloo on CPU).
- Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment) nothing is spawned:
  this process joins with env:// and runs ``main``.
- Without CUDA, ``device="cpu"`` (or RESNET_DET_LAUNCH_DEVICE=cpu) runs N CPU processes with
  gloo, which is how the distributed path is tested on machines without GPUs.

When a spawned process dies, the others would wait for it in their next collective until the
process-group timeout (RESNET_DET_DIST_TIMEOUT seconds, default 30 minutes). launch watches
its children instead: the first one to exit with an error is reported by rank, pid and exit
code or signal (:class:`RankFailedError`), the others are stopped (SIGTERM after a grace
period, then SIGKILL), and the run continues from its last checkpoint with ``--resume``. When
all children stopped on a signal with their checkpoint (exit status 3, engine/signals.py),
launch raises TrainingPreempted itself, so the tool exits with 3 too. SIGTERM / SIGINT sent to
the launching process are forwarded to the children (a scheduler may signal only the parent).
"""

import datetime
import logging
import multiprocessing.connection
import os
import pickle
import signal
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import dist as comm
from ..utils.errors import UsageError
from .signals import EXIT_PREEMPTED, STOP_SIGNALS, TrainingPreempted, signal_name

__all__ = ["launch", "find_free_port", "DEFAULT_TIMEOUT", "RankFailedError", "dist_timeout"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
DEVICE_ENV = "RESNET_DET_LAUNCH_DEVICE"
TIMEOUT_ENV = "RESNET_DET_DIST_TIMEOUT"
# Seconds the other processes get to exit on their own after one failed, and again after
# SIGTERM, before SIGKILL.
SHUTDOWN_GRACE_S = 10.0


class RankFailedError(RuntimeError):
    """A process of a launched job exited with an error or was killed; the others were stopped.

    Attributes: rank (global), pid, exit_code (negative: -signal number), statuses (one line
    per rank).
    """

    def __init__(self, message: str, *, rank: int, pid: int, exit_code: int, statuses: List[str]):
        super().__init__(message)
        self.rank, self.pid, self.exit_code, self.statuses = rank, pid, exit_code, statuses


def dist_timeout(default: datetime.timedelta = DEFAULT_TIMEOUT) -> datetime.timedelta:
    """The process-group timeout: RESNET_DET_DIST_TIMEOUT (seconds) if set, else ``default``.
    A collective waiting longer than this for a lost peer raises instead of hanging."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(
            f"{TIMEOUT_ENV}={value!r}: give the process-group timeout in seconds (> 0)"
        )
    return datetime.timedelta(seconds=seconds)


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
                f"{num_gpus_per_machine} CPU processes with gloo"
            )
    if device not in ("cuda", "cpu"):
        raise UsageError(f"launch: device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("launch: device='cuda' but CUDA is not available")
        if torch.cuda.device_count() < num_gpus_per_machine:
            raise UsageError(
                f"launch: {num_gpus_per_machine} GPUs per machine requested, "
                f"{torch.cuda.device_count()} visible"
            )
    return device


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: Sequence[Any] = (),
    *,
    backend: Optional[str] = None,
    device: Optional[str] = None,
    timeout: Optional[datetime.timedelta] = None,
) -> Any:
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
        timeout: process-group timeout (default :func:`dist_timeout`: RESNET_DET_DIST_TIMEOUT
            seconds, else 30 minutes).

    Raises:
        RankFailedError: a spawned process failed (rank, pid, exit code or signal named).
        TrainingPreempted: every spawned process stopped on SIGTERM / SIGINT with its
            checkpoint (exit status 3).
    """
    timeout = timeout if timeout is not None else dist_timeout()
    if _under_torchrun():
        return _run_under_torchrun(main_func, args, backend=backend, device=device, timeout=timeout)
    world_size = num_machines * num_gpus_per_machine
    if num_gpus_per_machine < 1 or num_machines < 1:
        raise UsageError(
            f"launch: num_gpus_per_machine ({num_gpus_per_machine}) and "
            f"num_machines ({num_machines}) must be >= 1"
        )
    if not 0 <= machine_rank < num_machines:
        raise UsageError(f"launch: machine_rank {machine_rank} not in [0, {num_machines})")
    if world_size == 1:
        return main_func(*args)
    device = _resolve_device(device, num_gpus_per_machine)
    backend = backend or ("nccl" if device == "cuda" else "gloo")
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise UsageError(
                "launch: dist_url='auto' only works on one machine; pass "
                "--dist-url tcp://<host of machine 0>:<port>"
            )
        dist_url = f"tcp://127.0.0.1:{find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// rendezvous needs a file system shared by all machines")
    context = mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(
            main_func,
            world_size,
            num_gpus_per_machine,
            machine_rank,
            dist_url,
            tuple(args),
            backend,
            device,
            timeout,
        ),
        daemon=False,
        start_method="spawn",
        join=False,
    )
    _watch(
        context.processes,
        getattr(context, "error_files", None),
        first_rank=machine_rank * num_gpus_per_machine,
        world_size=world_size,
    )


def _status(code: Optional[int]) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    if code == EXIT_PREEMPTED:
        return f"stopped on a signal with its checkpoint (exit code {EXIT_PREEMPTED})"
    return f"exit code {code}"


def _raised(error_files, index: int) -> str:
    """The traceback a spawned process left (torch's error file), or ""."""
    path = error_files[index] if error_files else None
    if not path or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return ""
    try:
        with open(path, "rb") as f:
            return str(pickle.load(f))  # written by torch.multiprocessing in our own child
    except Exception:  # noqa: BLE001 - the report must not fail on a half-written file
        return ""


class _ForwardSignals:
    """While the children run, SIGTERM / SIGINT to this process are passed on to them (each
    child stops once, so a signal that reached the whole process group does no harm)."""

    def __init__(self, processes) -> None:
        self.processes = processes
        self._previous: Dict[int, Any] = {}

    def _forward(self, signum, frame) -> None:
        for p in self.processes:
            if p.is_alive():
                try:
                    os.kill(p.pid, signum)
                except ProcessLookupError:
                    pass

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._forward)
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous if previous is not None else signal.SIG_DFL)


def _watch(
    processes, error_files, *, first_rank: int, world_size: int, grace: float = SHUTDOWN_GRACE_S
) -> None:
    """Wait for the children; on the first failure stop the others and report it."""
    failed: Optional[int] = None
    deadline = 0.0
    stage = 0  # 0: waiting; 1: SIGTERM sent to the rest; 2: SIGKILL sent
    with _ForwardSignals(processes):
        alive = {p.sentinel: i for i, p in enumerate(processes)}
        while alive:
            ready = multiprocessing.connection.wait(list(alive), timeout=1.0)
            done = [alive.pop(s) for s in ready]
            for i in done:
                processes[i].join()
            # Of processes seen exiting together, one killed by a signal is the likelier cause
            # (the others then fail in their next collective).
            for i in sorted(done, key=lambda i: processes[i].exitcode >= 0):
                if processes[i].exitcode != 0 and failed is None:
                    failed, deadline = i, time.monotonic() + grace
            if failed is None or not alive or time.monotonic() < deadline or stage == 2:
                continue
            for i in alive.values():
                if stage == 0:
                    logger.warning(
                        "Stopping rank %d (pid %d): rank %d failed",
                        first_rank + i,
                        processes[i].pid,
                        first_rank + failed,
                    )
                    processes[i].terminate()
                else:
                    processes[i].kill()
            stage, deadline = stage + 1, time.monotonic() + grace
    if failed is None:
        return
    codes = [p.exitcode for p in processes]
    if all(c == EXIT_PREEMPTED for c in codes):
        raise TrainingPreempted(
            f"All {len(codes)} processes stopped on a signal with their "
            "checkpoint; run the same command with --resume to continue",
            signal_name="SIGTERM/SIGINT",
        )
    p = processes[failed]
    rank = first_rank + failed
    statuses = [
        f"rank {first_rank + i} (pid {q.pid}): {_status(q.exitcode)}"
        for i, q in enumerate(processes)
    ]
    trace = _raised(error_files, failed)
    raise RankFailedError(
        f"rank {rank} of {world_size} (pid {p.pid}) failed first: {_status(p.exitcode)}; the other "
        f"processes were stopped ({'; '.join(s for i, s in enumerate(statuses) if i != failed)}). "
        "What was trained after the last checkpoint is lost: run the same command with --resume "
        "to continue from OUTPUT_DIR/last_checkpoint."
        + (f"\n\n-- rank {rank} raised:\n{trace}" if trace else ""),
        rank=rank,
        pid=p.pid,
        exit_code=p.exitcode,
        statuses=statuses,
    )


def _distributed_worker(
    local_rank: int,
    main_func,
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args,
    backend: str,
    device: str,
    timeout,
) -> None:
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(
            backend=backend,
            init_method=dist_url,
            world_size=world_size,
            rank=global_rank,
            timeout=timeout,
        )
    except Exception as e:
        raise RuntimeError(
            f"Process group initialisation failed at {dist_url} (rank "
            f"{global_rank} of {world_size}): {e}"
        ) from e
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
