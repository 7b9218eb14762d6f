"""Pre-emption: SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 stop training after the current iteration,
with a checkpoint.

SLURM and Kubernetes send SIGTERM some time before they kill a job (SLURM's KillWait, the pod's
grace period); SLURM sends the signal of ``sbatch --signal`` (SIGUSR1 in tools/slurm_train.sbatch,
SIGUSR2 from submitit) some time before a job's time limit; a person at the keyboard sends
SIGINT (Ctrl-C). Dying at once would lose every iteration since the last periodic
checkpoint. Instead, while the training loop runs, :class:`StopRequest` records the signal;
the loop finishes the iteration in progress, the trainer writes ``model_<iter>.pth`` of that
last completed iteration and ``last_checkpoint``, and :class:`TrainingPreempted` ends the
process with :data:`EXIT_PREEMPTED` (3: distinct from a crash's 1, a user error's 2 and a
signal death's 128 + n). ``--resume`` then continues with no iteration lost.

In a SLURM batch job, global rank 0 then asks SLURM to requeue the job where that continues
the run (:func:`requeue_after_stop`): the job is still running (the warning signal, a pre-emption
notice) or has reached its time limit, and allows requeueing; a cancelled job, or one that SLURM
requeues itself, is left alone. The requeued job starts the same command again with
SLURM_RESTART_COUNT > 0, and the trainer resumes from OUTPUT_DIR by itself (engine/restarts.py).
The exit status is 3 in both cases; the log says whether the job was requeued.

With several processes (DDP), the signal may reach one rank or all of them at different
moments; every iteration the ranks add their stop flags (one small all-reduce, only when the
world size is > 1), so that all ranks stop after the same iteration.

Repeated signals do nothing more: SLURM signals every process of a job and ``launch``
forwards a signal to its children, so one event can arrive twice. To stop at once, send
SIGKILL (or SIGQUIT, Ctrl-\\).
"""

import logging
import os
import signal
import threading
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..utils import comm, slurm

__all__ = [
    "EXIT_PREEMPTED",
    "STOP_SIGNALS",
    "TrainingPreempted",
    "StopRequest",
    "signal_name",
    "requeue_after_stop",
]

logger = logging.getLogger(__name__)

# Exit status of a process that stopped on a signal after writing its checkpoint.
EXIT_PREEMPTED = 3
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)

# The signals of the StopRequest now active in this process (read by children after a fork).
_ACTIVE_SIGNALS: Tuple[int, ...] = ()
_AT_FORK_REGISTERED = False


def signal_name(signum: int) -> str:
    """ "SIGTERM" for 15, etc. (the number as text for an unknown signal)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class TrainingPreempted(SystemExit):
    """Training stopped on a signal after a completed iteration, its checkpoint written.

    A SystemExit with code :data:`EXIT_PREEMPTED`: a tool that does not catch it exits with
    that status without a traceback (the trainer has logged what happened), and ``except
    Exception`` in user code does not swallow it.

    Attributes:
        iteration: the last completed iteration (the checkpoint's).
        checkpoint: path of the checkpoint a ``--resume`` continues from ("" if none was
            written, e.g. by a bare TrainerBase).
        signal_name: the signal that asked for the stop ("SIGTERM", "SIGINT", or "another
            rank's signal").
    """

    def __init__(
        self, message: str, *, iteration: int = -1, checkpoint: str = "", signal_name: str = ""
    ) -> None:
        super().__init__(EXIT_PREEMPTED)
        self.message = message
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.signal_name = signal_name

    def __str__(self) -> str:
        return self.message


class StopRequest:
    """Context manager: while active, the given signals request a stop instead of killing.

    Handlers are installed only in the main thread (Python delivers signals there); with no
    signals, or outside the main thread, nothing is installed and only :meth:`request` can
    ask for a stop. The previous handlers are restored on exit. Children forked meanwhile
    (DataLoader workers, the Linux default start method) leave a SIGTERM from anyone but
    their parent to the main process (:func:`_after_fork_in_child`).

    Args:
        signals: the signals to catch (default :data:`STOP_SIGNALS`); empty = none.
    """

    def __init__(self, signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: Optional[int] = None  # first signal number received in this process
        self._previous: Dict[int, Any] = {}
        self._outer_active: Optional[Tuple[int, ...]] = None

    def _handle(self, signum: int, frame) -> None:
        # Only record: logging or saving here could interrupt the very code it would need.
        if self.received is None:
            self.received = signum

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop as if ``signum`` had arrived (for tests and embedding code)."""
        self._handle(signum, None)

    def __enter__(self) -> "StopRequest":
        global _ACTIVE_SIGNALS, _AT_FORK_REGISTERED
        if self.signals and threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
            if hasattr(os, "register_at_fork") and hasattr(signal, "sigwaitinfo"):
                if not _AT_FORK_REGISTERED:
                    os.register_at_fork(after_in_child=_after_fork_in_child)
                    _AT_FORK_REGISTERED = True
                self._outer_active = _ACTIVE_SIGNALS
                _ACTIVE_SIGNALS = self.signals
        elif self.signals:
            logger.debug(
                "Not in the main thread: %s will not stop training gracefully",
                [signal_name(s) for s in self.signals],
            )
        return self

    def __exit__(self, *exc) -> None:
        global _ACTIVE_SIGNALS
        for s, previous in self._previous.items():
            signal.signal(s, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._outer_active is not None:
            _ACTIVE_SIGNALS, self._outer_active = self._outer_active, None

    def agreed(self) -> bool:
        """True when any rank received a stop signal. A collective call with several
        processes (every rank calls it once per iteration), a plain flag test with one."""
        local = self.received is not None
        if not self.signals or comm.get_world_size() < 2:
            return local
        return comm.all_reduce_sum([int(local)])[0] > 0

    def describe(self) -> str:
        """The signal that asked for the stop, as the log and the exception name it."""
        return signal_name(self.received) if self.received is not None else "another rank's signal"


def requeue_after_stop(environ: Optional[Mapping[str, str]] = None) -> str:
    """In a SLURM job, after a stop on a signal with the checkpoint written (call it on global
    rank 0 once every rank has stopped): ask SLURM to requeue the job where that continues the
    run. Returns the line to log; "" outside a SLURM job.

    Requeued (``scontrol requeue``) when the job allows it (``Requeue=1``: ``sbatch --requeue``
    or the cluster's JobRequeue default; a batch job, not ``srun``/``salloc`` alone) and is
    still running (the signal of ``sbatch --signal``, a pre-emption notice) or ends at its time
    limit. Not requeued when SLURM already did (its restart count is above this run's) or the
    job ends for another reason (``scancel``): the line says so.
    """
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID", "").strip()
    if not job.isdigit():
        return ""
    own_restarts = int(env.get("SLURM_RESTART_COUNT", "0") or 0)
    state = slurm.job_state(int(job))
    if not state:
        return f"SLURM job {job}: scontrol cannot tell the job's state here; not requeued"
    job_state, reason = state.get("JobState", "?"), state.get("Reason", "?")
    seen = f"JobState={job_state} Reason={reason} Restarts={state.get('Restarts', '?')}"
    if state.get("BatchFlag") != "1":
        return (
            f"SLURM job {job} is not a batch job (srun or salloc without sbatch); not requeued. "
            "Submit it with sbatch --requeue (tools/launch_slurm.py) to continue by itself"
        )
    if state.get("Requeue") != "1":
        return (
            f"SLURM job {job} does not allow requeueing (Requeue=0); not requeued. Submit it "
            "with sbatch --requeue (tools/launch_slurm.py does) to continue by itself"
        )
    if int(state.get("Restarts", "0") or 0) > own_restarts:
        return f"SLURM job {job} is being requeued by SLURM ({seen}); it resumes when it restarts"
    if job_state == "RUNNING" or (job_state == "COMPLETING" and reason == "TimeLimit"):
        ok, why = slurm.requeue_job(int(job))
        if ok:
            return (
                f"Requeued SLURM job {job} (scontrol requeue; {seen}): it resumes from this "
                "checkpoint when it starts again"
            )
        return f"SLURM job {job}: scontrol requeue failed ({why}); not requeued"
    return (
        f"SLURM job {job} is ending ({seen}: cancelled, or stopped by SLURM); not requeued. "
        "Submit it again with --resume to continue"
    )


def _exit_on_parent_sigterm(parent: int) -> None:
    """In a forked child, with SIGTERM blocked: a SIGTERM from the parent (a DataLoader
    shutting its workers down, multiprocessing at exit) ends the child, as torch's own worker
    handler does; one from anyone else (a scheduler signalling every process of the job) is
    dropped: the main process finishes its iteration and then stops its workers itself."""
    while True:
        info = signal.sigwaitinfo({signal.SIGTERM})
        if info.si_pid == parent or os.getppid() != parent:
            os._exit(0)


def _after_fork_in_child() -> None:
    """os.register_at_fork hook: a child forked while the training loop runs (a DataLoader
    worker of the training or of a periodic evaluation) leaves a SIGTERM sent to the whole
    job to the main process. Without this, torch's worker handler dies of it, and the main
    process fails on the lost worker instead of finishing its iteration. SIGINT needs
    nothing: the child inherited the recording handler, so Ctrl-C does not stop it either."""
    if signal.SIGTERM in _ACTIVE_SIGNALS:
        # Blocked from the first instant (torch installs its handler later; a blocked signal
        # never reaches it) and waited for by a thread that tells who sent it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(
            target=_exit_on_parent_sigterm,
            args=(os.getppid(),),
            name="sigterm-from-parent",
            daemon=True,
        ).start()
