"""Start one process per GPU (or per CPU "device" for tests) and join the process group.

- ``launch(main, num_gpus_per_machine=8)`` spawns the processes with torch.multiprocessing
  and runs ``main(*args)`` in each after init_process_group (NCCL on CUDA, gloo on CPU).
- Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment) nothing is spawned:
  this process joins with env:// and runs ``main``.
- Under srun (a task of a SLURM job step: SLURM_STEP_ID, SLURM_PROCID, ...), the tasks form
  one process group: rank SLURM_PROCID of SLURM_STEP_NUM_TASKS, the rendezvous on the first
  host of the step's node list at a port derived from the job id (utils/slurm.py; MASTER_ADDR /
  MASTER_PORT override them). Two styles: one task per GPU (``srun --ntasks-per-node=8``, the
  default ``--num-gpus 1``: each task is one process) and one task per node that spawns
  ``--num-gpus`` processes (``srun --ntasks-per-node=1 ... --num-gpus 8``, machine rank
  SLURM_NODEID). A launch that cannot work stops before any process group exists, with a
  message naming the variable (:class:`~resnet_det.utils.errors.UsageError`).
- Without CUDA, ``device="cpu"`` (or RESNET_DET_LAUNCH_DEVICE=cpu) runs N CPU processes with
  gloo, which is how the distributed path is tested on machines without GPUs.

When a spawned process dies, the others would wait for it in their next collective until the
process-group timeout (RESNET_DET_DIST_TIMEOUT seconds, default 30 minutes). launch watches
its children instead: the first one to exit with an error is reported by rank, pid and exit
code or signal (:class:`RankFailedError`), the others are stopped (SIGTERM after a grace
period, then SIGKILL), and the run continues from its last checkpoint with ``--resume``. When
all children stopped on a signal with their checkpoint (exit status 3, engine/signals.py),
launch raises TrainingPreempted itself, so the tool exits with 3 too. The stop signals
(engine/signals.py) sent to the launching process are forwarded to the children (a scheduler
may signal only the parent). After such a stop in a SLURM job, global rank 0 asks SLURM to
requeue the job where that continues the run (signals.requeue_after_stop).
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
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm, slurm
from ..utils.errors import UsageError
from .signals import (
    EXIT_PREEMPTED,
    STOP_SIGNALS,
    TrainingPreempted,
    requeue_after_stop,
    signal_name,
)

__all__ = [
    "launch",
    "find_free_port",
    "DEFAULT_TIMEOUT",
    "RankFailedError",
    "dist_timeout",
    "planned_world_size",
    "check_batch_split",
]

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


def _under_torchrun(environ: Optional[Mapping[str, str]] = None) -> bool:
    env = os.environ if environ is None else environ
    return all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


def _check_no_partial_launcher_env(environ: Optional[Mapping[str, str]] = None) -> None:
    """WORLD_SIZE > 1 without torchrun's LOCAL_RANK: another launcher started this process as
    one of several (a Kubernetes PyTorchJob runs the command in every pod with RANK and
    WORLD_SIZE set, RANK counting pods). Each would train alone and write the same OUTPUT_DIR."""
    env = os.environ if environ is None else environ
    world = env.get("WORLD_SIZE", "").strip()
    if not world.isdigit() or int(world) < 2:
        return
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR") if k not in env]
    raise UsageError(
        f"WORLD_SIZE={world} is set but not {', '.join(missing)}: this process was started as "
        "one of several by a launcher other than torchrun (e.g. a Kubernetes PyTorchJob), and "
        "alone it would train a run of its own into the same OUTPUT_DIR. Start the tool with "
        "torchrun, which reads PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR "
        "and PET_MASTER_PORT (docs/cluster.md)"
    )


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
        TrainingPreempted: every spawned process stopped on a stop signal with its
            checkpoint (exit status 3).
        UsageError: under srun, a launch that cannot work (the message names the variable).
    """
    timeout = timeout if timeout is not None else dist_timeout()
    if _under_torchrun():
        return _run_under_torchrun(main_func, args, backend=backend, device=device, timeout=timeout)
    _check_no_partial_launcher_env()
    task = slurm.slurm_task()
    if task is not None:
        return _launch_under_srun(
            task,
            main_func,
            args,
            num_gpus_per_machine=num_gpus_per_machine,
            num_machines=num_machines,
            machine_rank=machine_rank,
            dist_url=dist_url,
            backend=backend,
            device=device,
            timeout=timeout,
        )
    world_size = num_machines * num_gpus_per_machine
    if num_gpus_per_machine < 1 or num_machines < 1:
        raise UsageError(
            f"launch: num_gpus_per_machine ({num_gpus_per_machine}) and "
            f"num_machines ({num_machines}) must be >= 1"
        )
    if not 0 <= machine_rank < num_machines:
        raise UsageError(f"launch: machine_rank {machine_rank} not in [0, {num_machines})")
    if world_size == 1:
        return _run_main(main_func, args)
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise UsageError(
                "launch: dist_url='auto' only works on one machine; pass "
                "--dist-url tcp://<host of machine 0>:<port>"
            )
        dist_url = f"tcp://127.0.0.1:{find_free_port()}"
    _spawn(
        main_func,
        args,
        num_gpus_per_machine=num_gpus_per_machine,
        num_machines=num_machines,
        machine_rank=machine_rank,
        dist_url=dist_url,
        backend=backend,
        device=device,
        timeout=timeout,
    )


def _spawn(
    main_func,
    args,
    *,
    num_gpus_per_machine: int,
    num_machines: int,
    machine_rank: int,
    dist_url: str,
    backend: Optional[str],
    device: Optional[str],
    timeout,
) -> None:
    """Spawn this machine's processes, run main_func in each, watch them (:func:`_watch`)."""
    world_size = num_machines * num_gpus_per_machine
    device = _resolve_device(device, num_gpus_per_machine)
    backend = backend or ("nccl" if device == "cuda" else "gloo")
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


# ---------------------------------------------------------------------------------------- srun


def planned_world_size(
    num_gpus_per_machine: int = 1,
    num_machines: int = 1,
    environ: Optional[Mapping[str, str]] = None,
) -> Tuple[int, str]:
    """The world size :func:`launch` will give the run, and where it comes from (for
    messages): torchrun's WORLD_SIZE, srun's task count (times ``num_gpus_per_machine`` in the
    one-task-per-node style), else ``num_gpus_per_machine * num_machines``."""
    env = os.environ if environ is None else environ
    if _under_torchrun(env):
        return int(env["WORLD_SIZE"]), f"WORLD_SIZE={env['WORLD_SIZE']} (torchrun)"
    _check_no_partial_launcher_env(env)
    task = slurm.slurm_task(env)
    if task is not None:
        if num_gpus_per_machine == 1:
            return task.ntasks, f"SLURM_STEP_NUM_TASKS={task.ntasks} (srun, one process per task)"
        return (
            task.num_nodes * num_gpus_per_machine,
            f"{task.num_nodes} srun node(s) ({task.nodelist_variable}={task.nodelist}) x "
            f"--num-gpus {num_gpus_per_machine}",
        )
    world = num_gpus_per_machine * num_machines
    return world, f"--num-gpus {num_gpus_per_machine} x --num-machines {num_machines}"


def check_batch_split(
    *,
    ims_per_batch: int,
    reference_world_size: int = 0,
    num_gpus_per_machine: int = 1,
    num_machines: int = 1,
    key: str = "SOLVER.IMS_PER_BATCH",
) -> None:
    """Before any process starts: the total batch ``ims_per_batch`` (config ``key``) splits
    evenly over the world size the launch will have (:func:`planned_world_size`). With
    SOLVER.REFERENCE_WORLD_SIZE (``reference_world_size`` > 0) the batch is rescaled to the
    world size and always splits.

    Raises:
        UsageError: naming ``key`` and the variable the world size comes from.
    """
    world, source = planned_world_size(num_gpus_per_machine, num_machines)
    if reference_world_size > 0 or world < 1 or ims_per_batch % world == 0:
        return
    raise UsageError(
        f"config {key}={ims_per_batch} cannot be split over {world} processes ({source}): "
        f"each process takes {key} / world size images. Set {key} to a multiple of {world}, "
        "or start another number of processes"
    )


def _launch_under_srun(
    task: "slurm.SlurmTask",
    main_func,
    args,
    *,
    num_gpus_per_machine: int,
    num_machines: int,
    machine_rank: int,
    dist_url: Optional[str],
    backend: Optional[str],
    device: Optional[str],
    timeout,
) -> Any:
    """One process group of the step's tasks (see the module docstring for the two styles)."""
    if num_machines not in (1, task.num_nodes):
        raise UsageError(
            f"--num-machines {num_machines}, but srun started this step on {task.num_nodes} "
            f"node(s) ({task.nodelist_variable}={task.nodelist}); under srun the machines are "
            "the step's nodes: leave --num-machines out"
        )
    if machine_rank != 0:
        raise UsageError(
            f"--machine-rank {machine_rank}: under srun the machine rank is SLURM_NODEID "
            f"({task.node_rank} here); leave --machine-rank out"
        )
    if num_gpus_per_machine < 1:
        raise UsageError(f"--num-gpus {num_gpus_per_machine}: must be >= 1")
    if num_gpus_per_machine > 1:
        return _srun_one_task_per_node(
            task,
            main_func,
            args,
            num_gpus_per_machine=num_gpus_per_machine,
            dist_url=dist_url,
            backend=backend,
            device=device,
            timeout=timeout,
        )
    if task.ntasks == 1:
        return _run_main(main_func, args)
    device = device or os.environ.get(DEVICE_ENV) or None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and task.gpus_on_node is not None and task.local_size > task.gpus_on_node:
        raise UsageError(
            f"srun started {task.local_size} tasks on this node (SLURM_STEP_TASKS_PER_NODE) "
            f"but SLURM gave it {task.gpus_on_node} GPU(s) (SLURM_GPUS_ON_NODE): one task per "
            "GPU needs srun --ntasks-per-node equal to --gpus-per-node"
        )
    url = dist_url if dist_url not in (None, "auto") else _srun_rendezvous(task, task.rank == 0)
    if task.local_size > 1:
        _set_threads(task.cpus_per_task or 1)  # each task has its own CPUs
    if task.rank == 0:
        print(
            f"launch: {task.describe()}; world size {task.ntasks}, one process per task, "
            f"process group at {url}",
            flush=True,
        )
    return _join(
        main_func,
        args,
        rank=task.rank,
        world_size=task.ntasks,
        local_rank=task.local_rank,
        local_size=task.local_size,
        init_method=url,
        backend=backend,
        device=device,
        timeout=timeout,
    )


def _srun_one_task_per_node(
    task, main_func, args, *, num_gpus_per_machine, dist_url, backend, device, timeout
) -> Any:
    """detectron2's style: one srun task per node spawns ``num_gpus_per_machine`` processes."""
    per_node = ",".join(str(n) for n in task.tasks_per_node)
    if any(n != 1 for n in task.tasks_per_node):
        raise UsageError(
            f"--num-gpus {num_gpus_per_machine} makes each srun task start "
            f"{num_gpus_per_machine} processes, but srun started {task.local_size} tasks on "
            f"this node (SLURM_STEP_TASKS_PER_NODE={per_node}). Either one task per node "
            f"(srun --ntasks-per-node=1 ... --num-gpus {num_gpus_per_machine}) or one task "
            "per GPU (srun --ntasks-per-node=<GPUs per node> ... without --num-gpus)"
        )
    if task.gpus_on_node is not None and task.gpus_on_node != num_gpus_per_machine:
        raise UsageError(
            f"--num-gpus {num_gpus_per_machine}, but SLURM gave this node "
            f"{task.gpus_on_node} GPU(s) (SLURM_GPUS_ON_NODE={task.gpus_on_node}); pass "
            f"--num-gpus {task.gpus_on_node} or ask for --gpus-per-node={num_gpus_per_machine}"
        )
    world = task.num_nodes * num_gpus_per_machine
    if dist_url not in (None, "auto"):
        url = dist_url
    elif task.num_nodes == 1 and not os.environ.get("MASTER_ADDR"):
        url = f"tcp://127.0.0.1:{find_free_port()}"
    else:
        url = _srun_rendezvous(task, task.node_rank == 0)
    # The task's CPUs are shared by the processes it starts.
    _set_threads(max(1, (task.cpus_per_task or num_gpus_per_machine) // num_gpus_per_machine))
    if task.node_rank == 0:
        print(
            f"launch: {task.describe()}; world size {world}, {num_gpus_per_machine} processes "
            f"per node (--num-gpus), process group at {url}",
            flush=True,
        )
    _spawn(
        main_func,
        args,
        num_gpus_per_machine=num_gpus_per_machine,
        num_machines=task.num_nodes,
        machine_rank=task.node_rank,
        dist_url=url,
        backend=backend,
        device=device,
        timeout=timeout,
    )


def _srun_rendezvous(task, hosts_rank_0: bool) -> str:
    """tcp://<first host of the step's nodes>:<port of the job> (MASTER_ADDR / MASTER_PORT
    override them). The task that hosts rank 0 checks that it runs on that host."""
    addr = os.environ.get("MASTER_ADDR", "").strip()
    if not addr:
        if not task.nodelist:
            raise UsageError(
                f"{task.nodelist_variable} is not set: the first node of the step is the "
                "rendezvous of the process group; set MASTER_ADDR instead"
            )
        addr = slurm.expand_nodelist(task.nodelist, variable=task.nodelist_variable)[0]
        if hosts_rank_0 and task.node_name and task.node_name != addr:
            raise UsageError(
                f"rank 0 runs on {task.node_name} (SLURMD_NODENAME), not on {addr}, the first "
                f"node of {task.nodelist_variable}={task.nodelist} where the other tasks look "
                "for it: use srun's default block distribution, or set MASTER_ADDR"
            )
    return f"tcp://{addr}:{slurm.master_port(task.job_id)}"


def _set_threads(threads: int) -> None:
    """torchrun's rule for CPU threads, under srun with several processes on a node: unless
    OMP_NUM_THREADS says otherwise, each process takes its share of SLURM_CPUS_PER_TASK (1
    when unset) instead of every core of the node. The same thread count as torchrun gives the
    same float rounding on CPU."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by spawned processes
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------- in each process


def _run_main(main_func, args) -> Any:
    """``main_func(*args)``; after a stop on a signal (TrainingPreempted), the ranks wait for
    each other and global rank 0 asks SLURM to requeue the job where that continues the run."""
    try:
        return main_func(*args)
    except TrainingPreempted:
        if os.environ.get("SLURM_JOB_ID"):
            # SLURM signals every process of the job again when it requeues or ends it: the
            # stop is done, the checkpoint written, so let the processes finish exiting.
            if threading.current_thread() is threading.main_thread():
                for s in STOP_SIGNALS:
                    signal.signal(s, signal.SIG_IGN)
            comm.synchronize()
            if comm.is_main_process():
                line = requeue_after_stop()
                if line:
                    logger.warning(line)
        raise


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
    """While the children run, the stop signals to this process are passed on to them (each
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
        return _run_main(main_func, args)
    finally:
        dist.destroy_process_group()


def _run_under_torchrun(main_func, args, *, backend, device, timeout) -> Any:
    world_size = int(os.environ["WORLD_SIZE"])
    return _join(
        main_func,
        args,
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ["LOCAL_RANK"]),
        local_size=int(os.environ.get("LOCAL_WORLD_SIZE", world_size)),
        init_method="env://",
        backend=backend,
        device=device,
        timeout=timeout,
    )


def _cuda_index(local_rank: int, local_size: int) -> int:
    """The GPU of a process: its local rank when every process sees all of the node's GPUs,
    0 when SLURM binds one GPU to each task (CUDA_VISIBLE_DEVICES of one device)."""
    count = torch.cuda.device_count()
    if count >= local_size:
        return local_rank
    if count == 1:
        return 0
    raise UsageError(
        f"{local_size} processes on this node but {count} GPUs visible "
        f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}): give each "
        "process one GPU, or every process all of them"
    )


def _join(
    main_func,
    args,
    *,
    rank: int,
    world_size: int,
    local_rank: int,
    local_size: int,
    init_method: str,
    backend: Optional[str],
    device: Optional[str],
    timeout,
) -> Any:
    """Join the process group as ``rank`` of ``world_size`` (torchrun, srun) and run main."""
    if device is None:
        device = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = backend or ("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(_cuda_index(local_rank, local_size))
    if not dist.is_initialized():
        where = {} if init_method == "env://" else {"rank": rank, "world_size": world_size}
        try:
            dist.init_process_group(
                backend=backend, init_method=init_method, timeout=timeout, **where
            )
        except Exception as e:
            raise RuntimeError(
                f"Process group initialisation failed at {init_method} (rank {rank} of "
                f"{world_size}): {e}"
            ) from e
    comm.set_local_info(local_rank, local_size)
    try:
        comm.synchronize()
        return _run_main(main_func, args)
    finally:
        dist.destroy_process_group()
