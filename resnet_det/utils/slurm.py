"""SLURM's side of a run: the node-list syntax, a task's place in its job step, the job's state.

Read from the environment srun gives each task (SLURM_PROCID, SLURM_STEP_NUM_TASKS, ...) and from
``scontrol``; nothing here starts processes or joins a process group (engine/launch.py does).
A task of a job step (``srun``) has SLURM_STEP_ID; a batch script (``sbatch``) has SLURM_JOB_ID
and SLURM_NTASKS but no SLURM_STEP_ID: it is one process, whatever the job's task count.
"""

import itertools
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import UsageError

__all__ = [
    "parse_nodelist",
    "expand_nodelist",
    "parse_tasks_per_node",
    "SlurmTask",
    "slurm_task",
    "master_port",
    "job_state",
    "requeue_job",
    "sbatch_script",
    "parse_time_minutes",
]

# A master port per job: 10000 .. 29999, below Linux's ephemeral range (32768 ..), so that an
# outgoing connection of another program rarely holds it. MASTER_PORT overrides it.
_PORT_BASE, _PORT_SPAN = 10000, 20000


def _expand_ranges(body: str, text: str) -> List[str]:
    """'01-04,07' -> ['01', '02', '03', '04', '07']: each number as wide as its range's first
    bound (SLURM's rule: n[8-11] is n8 .. n11, n[08-11] is n08 .. n11)."""
    out = []
    for part in body.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise ValueError(f"{text!r}: invalid range {part!r} in [{body}]")
        lo, hi = bounds[0], bounds[-1]
        if int(hi) < int(lo):
            raise ValueError(f"{text!r}: range {part!r} in [{body}] goes down")
        out += [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]
    return out


def _split_top_level(text: str) -> List[str]:
    """Split at the commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"{text!r}: nested '['")
        elif c == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{text!r}: ']' without '['")
        elif c == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"{text!r}: '[' without ']'")
    items.append(text[start:])
    return items


def parse_nodelist(text: str) -> List[str]:
    """Expand SLURM's compressed host list, as ``scontrol show hostnames`` does.

    ``gpu[01-04,07]`` -> gpu01 gpu02 gpu03 gpu04 gpu07; ``a,b[1-2]`` -> a b1 b2; several
    bracket groups in one name give every combination, the last group varying fastest
    (``r[1-2]-n[1-2]`` -> r1-n1 r1-n2 r2-n1 r2-n2). Order and repeats are kept.

    Raises:
        ValueError: the text is not a host list (unbalanced brackets, an empty or descending
            range, letters in a range, an empty name).
    """
    if not text or not text.strip():
        raise ValueError("empty host list")
    hosts: List[str] = []
    for item in _split_top_level(text.strip()):
        if not item:
            raise ValueError(f"{text!r}: empty host name")
        # Brackets are balanced here (_split_top_level): the item is literal text and groups.
        pieces = [
            _expand_ranges(m.group(1), text) if m.group(0).startswith("[") else [m.group(0)]
            for m in re.finditer(r"\[([^\[\]]*)\]|[^\[\]]+", item)
        ]
        hosts += ["".join(p) for p in itertools.product(*pieces)]
    return hosts


def expand_nodelist(text: str, *, variable: str = "SLURM_JOB_NODELIST") -> List[str]:
    """The hosts of a node list: :func:`parse_nodelist`, else ``scontrol show hostnames``.

    Raises:
        UsageError: neither can read it; the message names ``variable`` and its value.
    """
    try:
        return parse_nodelist(text)
    except ValueError as e:
        reason = str(e)
    scontrol = shutil.which("scontrol")
    if scontrol:
        try:
            proc = subprocess.run(
                [scontrol, "show", "hostnames", text],
                capture_output=True,
                text=True,
                timeout=30,
            )
            hosts = proc.stdout.split()
            # scontrol prints what it could not read as it was ("n[1-2" -> "n]"): refuse that.
            if proc.returncode == 0 and hosts and not re.search(r"[\[\],]", " ".join(hosts)):
                return hosts
            reason += f"; scontrol show hostnames: {(proc.stderr or proc.stdout).strip()!r}"
        except (OSError, subprocess.TimeoutExpired) as e:
            reason += f"; scontrol show hostnames failed: {e}"
    else:
        reason += "; scontrol is not installed here to ask"
    raise UsageError(
        f"{variable}={text!r} cannot be resolved to host names ({reason}); the first host "
        "is the rendezvous of the process group. Run under srun/sbatch, which set it, or set "
        "MASTER_ADDR to the first node's address"
    )


def parse_tasks_per_node(text: str) -> List[int]:
    """SLURM's task counts per node: ``2(x3),1`` -> [2, 2, 2, 1].

    Raises:
        ValueError: not that syntax.
    """
    out: List[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            raise ValueError(f"{text!r} is not a task count per node such as '2(x3),1'")
        out += [int(m.group(1))] * int(m.group(2) or 1)
    return out


@dataclass(frozen=True)
class SlurmTask:
    """This process as a task of a SLURM job step (srun).

    Attributes:
        job_id: SLURM_JOB_ID.
        step_id: SLURM_STEP_ID.
        rank: SLURM_PROCID, the task's index in the step.
        ntasks: tasks in the step (SLURM_STEP_NUM_TASKS, else SLURM_NTASKS).
        local_rank: SLURM_LOCALID, the task's index on its node.
        node_rank: SLURM_NODEID, the node's index in the step's node list.
        tasks_per_node: tasks on each node of the step (SLURM_STEP_TASKS_PER_NODE expanded).
        nodelist: the step's compressed node list (SLURM_STEP_NODELIST, else SLURM_JOB_NODELIST).
        nodelist_variable: which of the two it came from, for messages.
        node_name: SLURMD_NODENAME ("" if unset).
        cpus_per_task: SLURM_CPUS_PER_TASK (None if unset).
        gpus_on_node: SLURM_GPUS_ON_NODE (None if unset).
        restart_count: SLURM_RESTART_COUNT (0 on the first run of a job).
    """

    job_id: int
    step_id: int
    rank: int
    ntasks: int
    local_rank: int
    node_rank: int
    tasks_per_node: Tuple[int, ...]
    nodelist: str
    nodelist_variable: str
    node_name: str = ""
    cpus_per_task: Optional[int] = None
    gpus_on_node: Optional[int] = None
    restart_count: int = 0

    @property
    def num_nodes(self) -> int:
        return len(self.tasks_per_node)

    @property
    def local_size(self) -> int:
        """Tasks of the step on this task's node."""
        return self.tasks_per_node[self.node_rank]

    def describe(self) -> str:
        return (
            f"SLURM job {self.job_id} step {self.step_id}: task {self.rank} of {self.ntasks} "
            f"(SLURM_PROCID / SLURM_STEP_NUM_TASKS), {self.num_nodes} node(s) "
            f"{self.nodelist}, {self.local_size} task(s) on this node"
        )


def _int(env: Mapping[str, str], *names: str) -> Tuple[Optional[int], str]:
    """The first of ``names`` set in ``env`` as an int, and its name. UsageError naming it if
    it is not a number."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            # SLURM_CPUS_PER_TASK / SLURM_GPUS_ON_NODE are plain numbers; a job id may carry an
            # array or heterogeneous suffix elsewhere, never in SLURM_JOB_ID.
            if not value.isdigit():
                raise UsageError(f"{name}={value!r}: expected a whole number")
            return int(value), name
    return None, names[0]


def slurm_task(environ: Optional[Mapping[str, str]] = None) -> Optional[SlurmTask]:
    """This process's place in its SLURM job step, or None outside one (no SLURM_STEP_ID:
    not started by srun, e.g. a batch script's own shell or a login node).

    Raises:
        UsageError: the step's variables contradict each other (the message names them).
    """
    env = os.environ if environ is None else environ
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID", "")).strip()
    if not step.isdigit():  # unset, or the "batch" / "extern" steps
        return None
    job_id, _ = _int(env, "SLURM_JOB_ID", "SLURM_JOBID")
    rank, rank_var = _int(env, "SLURM_PROCID")
    ntasks, ntasks_var = _int(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")
    local_rank, _ = _int(env, "SLURM_LOCALID")
    node_rank, node_var = _int(env, "SLURM_NODEID")
    missing = [
        name
        for name, value in (
            ("SLURM_JOB_ID", job_id),
            ("SLURM_PROCID", rank),
            ("SLURM_STEP_NUM_TASKS / SLURM_NTASKS", ntasks),
            ("SLURM_LOCALID", local_rank),
            ("SLURM_NODEID", node_rank),
        )
        if value is None
    ]
    if missing:
        raise UsageError(
            f"SLURM_STEP_ID={step} says this is a task of a SLURM job step, but "
            f"{', '.join(missing)} is not set; start the tasks with srun"
        )
    tpn_var = "SLURM_STEP_TASKS_PER_NODE" if "SLURM_STEP_TASKS_PER_NODE" in env else None
    tpn_var = tpn_var or "SLURM_TASKS_PER_NODE"
    tpn_text = env.get(tpn_var, "")
    try:
        tasks_per_node = tuple(parse_tasks_per_node(tpn_text)) if tpn_text else (ntasks,)
    except ValueError as e:
        raise UsageError(f"{tpn_var}: {e}") from e
    if sum(tasks_per_node) != ntasks:
        raise UsageError(
            f"{tpn_var}={tpn_text!r} adds up to {sum(tasks_per_node)} tasks but "
            f"{ntasks_var}={ntasks}"
        )
    if not 0 <= rank < ntasks:
        raise UsageError(f"{rank_var}={rank} is not in [0, {ntasks_var}={ntasks})")
    if not 0 <= node_rank < len(tasks_per_node):
        raise UsageError(
            f"{node_var}={node_rank} is not in [0, {len(tasks_per_node)}) (the nodes of "
            f"{tpn_var}={tpn_text!r})"
        )
    nodelist_var = "SLURM_STEP_NODELIST" if env.get("SLURM_STEP_NODELIST") else "SLURM_JOB_NODELIST"
    cpus, _ = _int(env, "SLURM_CPUS_PER_TASK")
    gpus, _ = _int(env, "SLURM_GPUS_ON_NODE")
    restarts, _ = _int(env, "SLURM_RESTART_COUNT")
    return SlurmTask(
        job_id=job_id,
        step_id=int(step),
        rank=rank,
        ntasks=ntasks,
        local_rank=local_rank,
        node_rank=node_rank,
        tasks_per_node=tasks_per_node,
        nodelist=env.get(nodelist_var, ""),
        nodelist_variable=nodelist_var,
        node_name=env.get("SLURMD_NODENAME", ""),
        cpus_per_task=cpus,
        gpus_on_node=gpus,
        restart_count=restarts or 0,
    )


def master_port(job_id: int, environ: Optional[Mapping[str, str]] = None) -> int:
    """MASTER_PORT if set, else a port derived from the job id (the same in every task, and
    different for jobs whose ids are close, which are the ones likely to share a node)."""
    env = os.environ if environ is None else environ
    value = env.get("MASTER_PORT", "").strip()
    if value:
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise UsageError(f"MASTER_PORT={value!r}: expected a TCP port number")
        return int(value)
    return _PORT_BASE + job_id % _PORT_SPAN


def job_state(job_id: int) -> Dict[str, str]:
    """``scontrol show job -o``'s fields of ``job_id`` (JobState, Reason, Restarts, Requeue,
    BatchFlag, ...); {} if scontrol is missing or fails."""
    scontrol = shutil.which("scontrol")
    if not scontrol:
        return {}
    try:
        proc = subprocess.run(
            [scontrol, "show", "job", "-o", str(job_id)], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    # One line of Key=Value pairs; only the keys read here matter, and their values hold no
    # spaces.
    return dict(re.findall(r"(?:^|\s)(\w+)=(\S*)", proc.stdout))


def requeue_job(job_id: int) -> Tuple[bool, str]:
    """``scontrol requeue job_id``: (True, "") when SLURM accepted it, else (False, why)."""
    scontrol = shutil.which("scontrol")
    if not scontrol:
        return False, "scontrol is not installed on this node"
    try:
        proc = subprocess.run(
            [scontrol, "requeue", str(job_id)], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"scontrol requeue failed: {e}"
    if proc.returncode != 0:
        return False, (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
    return True, ""


_DIRECTIVE = re.compile(r"^#SBATCH\s+--(?P<key>[\w-]+)(?:=(?P<value>.*))?\s*$")


def sbatch_script(
    template: str, *, directives: Mapping[str, Optional[str]], command: Sequence[str]
) -> str:
    """An sbatch script from ``template`` (tools/slurm_train.sbatch): its ``#SBATCH --key=value``
    lines set from ``directives`` and the command it runs written into it.

    Args:
        template: the script's text; it must have ``#SBATCH`` lines and a ``set -u`` line.
        directives: option -> value; "" writes a flag without value (``--requeue``), None
            removes the option; an option the template lacks is added after its last one.
        command: the program and its arguments, run by the template's ``srun "$@"``; written
            as ``set -- ...`` after ``set -u``, so the script holds everything it runs (a
            requeued job runs it again as it is).

    Raises:
        ValueError: the template has no ``#SBATCH`` line or no ``set -u`` line.
    """
    lines = template.splitlines()
    todo = dict(directives)
    out: List[str] = []
    last_directive = -1
    for line in lines:
        m = _DIRECTIVE.match(line)
        if m and m.group("key") in todo:
            value = todo.pop(m.group("key"))
            if value is None:
                continue
            line = f"#SBATCH --{m.group('key')}" + (f"={value}" if value != "" else "")
        if line.startswith("#SBATCH"):
            last_directive = len(out)
        out.append(line)
        if line.strip() == "set -u":
            out.append(f"set -- {shlex.join(command)}")
    if last_directive < 0:
        raise ValueError("the sbatch template has no #SBATCH line")
    if not any(line.startswith("set -- ") for line in out):
        raise ValueError("the sbatch template has no 'set -u' line to put the command after")
    added = [
        f"#SBATCH --{key}" + (f"={value}" if value != "" else "")
        for key, value in todo.items()
        if value is not None
    ]
    out[last_directive + 1 : last_directive + 1] = added
    return "\n".join(out) + "\n"


def parse_time_minutes(text: str) -> int:
    """SLURM's time-limit syntax in whole minutes (rounded up): "90", "1:30:00", "2-00:00:00",
    "2-12", "45:30" (minutes:seconds).

    Raises:
        ValueError: not that syntax.
    """
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a SLURM time limit (minutes, H:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(g) if g is not None else None for g in m.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = a, b or 0, c or 0
        total = days * 1440 + hours * 60 + minutes
    elif c is not None:  # H:M:S
        total, seconds = a * 60 + b, c
    elif b is not None:  # M:S
        total, seconds = a, b
    else:  # M
        total, seconds = a, 0
    return total + (1 if seconds else 0)
