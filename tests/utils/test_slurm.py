"""utils/slurm.py: SLURM's node-list syntax (checked against scontrol itself where SLURM is
installed), a task's variables, the sbatch script from the template."""

import os
import shutil
import subprocess
import sys

import pytest

from resnet_det.utils.errors import UsageError
from resnet_det.utils.slurm import (
    expand_nodelist,
    master_port,
    parse_nodelist,
    parse_tasks_per_node,
    parse_time_minutes,
    sbatch_script,
    slurm_task,
)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "engine"))
from cluster_runs import require_slurm  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

LISTS = {
    "gpu[01-04,07]": ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07"],
    "n[8-11]": ["n8", "n9", "n10", "n11"],  # width from the first bound
    "n[08-11]": ["n08", "n09", "n10", "n11"],
    "n[098-101]": ["n098", "n099", "n100", "n101"],
    "n[01-3]": ["n01", "n02", "n03"],
    "x,y[1-2],z": ["x", "y1", "y2", "z"],
    "r[1-2]-n[01-02]": ["r1-n01", "r1-n02", "r2-n01", "r2-n02"],
    "a[1-2]b[3-4]": ["a1b3", "a1b4", "a2b3", "a2b4"],
    "n[1-3],n[2-4]": ["n1", "n2", "n3", "n2", "n3", "n4"],  # order and repeats kept
    "node7": ["node7"],
    "gpu-a100-[1-2,5]": ["gpu-a100-1", "gpu-a100-2", "gpu-a100-5"],
}
BAD = ["", "gpu[01-", "n1-2]", "gpu[04-01]", "a[]", "n[1,,2]", "n[a-b]", "n[1-3-5]", "a,,b"]


@pytest.mark.parametrize("text", sorted(LISTS))
def test_compressed_node_lists(text):
    assert parse_nodelist(text) == LISTS[text]


@pytest.mark.parametrize("text", BAD)
def test_malformed_node_lists_are_refused(text):
    with pytest.raises(ValueError):
        parse_nodelist(text)


def test_node_lists_expand_as_scontrol_does():
    require_slurm(daemons=False)
    for text, hosts in LISTS.items():
        out = subprocess.run(
            ["scontrol", "show", "hostnames", text], capture_output=True, text=True, check=True
        ).stdout.split()
        assert out == hosts == parse_nodelist(text), text


def test_an_unresolvable_node_list_names_the_variable(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no scontrol to ask either
    with pytest.raises(UsageError, match=r"SLURM_STEP_NODELIST='gpu\[01-'.*MASTER_ADDR"):
        expand_nodelist("gpu[01-", variable="SLURM_STEP_NODELIST")
    assert expand_nodelist("gpu[1-2]") == ["gpu1", "gpu2"]


def test_tasks_per_node():
    assert parse_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert parse_tasks_per_node("4") == [4]
    with pytest.raises(ValueError):
        parse_tasks_per_node("2(3)")


def srun_env(**over):
    """The variables srun gives task 1 of ``srun -N 2 -n 4`` on gpu[01-02]."""
    env = {
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_PROCID": "1",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_NTASKS": "4",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "0",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "SLURM_STEP_NODELIST": "gpu[01-02]",
        "SLURM_JOB_NODELIST": "gpu[01-02,05]",
        "SLURMD_NODENAME": "gpu01",
    }
    for key, value in over.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_a_task_of_a_job_step():
    task = slurm_task(srun_env(SLURM_CPUS_PER_TASK="6", SLURM_RESTART_COUNT="2"))
    assert (task.job_id, task.rank, task.ntasks, task.local_rank, task.node_rank) == (
        4242,
        1,
        4,
        1,
        0,
    )
    assert task.tasks_per_node == (2, 2) and task.num_nodes == 2 and task.local_size == 2
    # The step's nodes, not the job's: a step may run on part of the allocation.
    assert (task.nodelist, task.nodelist_variable) == ("gpu[01-02]", "SLURM_STEP_NODELIST")
    assert task.cpus_per_task == 6 and task.restart_count == 2


def test_a_batch_script_is_not_a_task():
    # sbatch's own shell: SLURM_NTASKS=4 and SLURM_PROCID=0, but no step: one process.
    env = srun_env(SLURM_STEP_ID=None, SLURM_PROCID="0")
    assert slurm_task(env) is None
    assert slurm_task({}) is None


@pytest.mark.parametrize(
    "over,message",
    [
        ({"SLURM_PROCID": "4"}, r"SLURM_PROCID=4 is not in \[0, SLURM_STEP_NUM_TASKS=4\)"),
        ({"SLURM_STEP_TASKS_PER_NODE": "3,2"}, r"SLURM_STEP_TASKS_PER_NODE='3,2' adds up to 5"),
        ({"SLURM_LOCALID": None}, "SLURM_LOCALID is not set"),
        ({"SLURM_NODEID": "x"}, "SLURM_NODEID='x': expected a whole number"),
    ],
)
def test_contradicting_variables_are_named(over, message):
    with pytest.raises(UsageError, match=message):
        slurm_task(srun_env(**over))


def test_master_port_from_the_job_id():
    assert master_port(4242, {}) == 10000 + 4242
    assert master_port(20000 + 7, {}) == 10007
    assert master_port(4242, {"MASTER_PORT": "29500"}) == 29500
    with pytest.raises(UsageError, match="MASTER_PORT='http'"):
        master_port(1, {"MASTER_PORT": "http"})


def test_time_limits():
    assert parse_time_minutes("90") == 90
    assert parse_time_minutes("1:30:00") == 90
    assert parse_time_minutes("45:30") == 46  # minutes:seconds, rounded up
    assert parse_time_minutes("2-00:00:00") == 2880
    assert parse_time_minutes("2-12") == 2 * 1440 + 12 * 60
    with pytest.raises(ValueError):
        parse_time_minutes("1h")


def test_sbatch_script_fills_the_template():
    with open(os.path.join(ROOT, "tools", "slurm_train.sbatch")) as f:
        template = f.read()
    script = sbatch_script(
        template,
        directives={"nodes": "4", "gpus-per-node": None, "requeue": "", "partition": "gpu"},
        command=["python", "tools/train_net.py", "SOLVER.STEPS", "(10, 20)"],
    )
    lines = script.splitlines()
    assert "#SBATCH --nodes=4" in lines and "#SBATCH --requeue" in lines
    assert not any(line.startswith("#SBATCH --gpus-per-node") for line in lines)
    # An option the template lacks comes after its last #SBATCH line.
    last = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    assert lines[last] == "#SBATCH --partition=gpu"
    # The command, quoted for the shell, right after `set -u`; the template's own lines stay.
    i = lines.index("set -u")
    assert lines[i + 1] == "set -- python tools/train_net.py SOLVER.STEPS '(10, 20)'"
    assert script.replace(lines[i + 1] + "\n", "").count("\n") == script.count("\n") - 1
    assert 'srun "$@" &' in lines
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    with pytest.raises(ValueError, match="no 'set -u' line"):
        sbatch_script("#SBATCH --nodes=1\n", directives={}, command=["x"])
