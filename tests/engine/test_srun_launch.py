"""launch() under srun, with srun's variables set by hand (runs without SLURM; test_slurm.py
runs both launch styles against a real cluster): the world size and where it comes from, the
mismatches that stop before any process group exists, and two processes joined from srun's
variables alone."""

import os
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import cluster_runs as cr  # noqa: E402
import engine_toys as toys  # noqa: E402

from resnet_det.engine import launch  # noqa: E402
from resnet_det.engine.launch import check_batch_split, find_free_port, planned_world_size  # noqa: E402
from resnet_det.utils.errors import UsageError  # noqa: E402


def srun_vars(ntasks=2, tasks_per_node="2", nodelist="localhost", rank=0, node=0, **over):
    env = {
        "SLURM_JOB_ID": "77",
        "SLURM_STEP_ID": "0",
        "SLURM_PROCID": str(rank),
        "SLURM_STEP_NUM_TASKS": str(ntasks),
        "SLURM_NTASKS": str(ntasks),
        "SLURM_LOCALID": str(rank),
        "SLURM_NODEID": str(node),
        "SLURM_STEP_TASKS_PER_NODE": tasks_per_node,
        "SLURM_STEP_NODELIST": nodelist,
        "SLURMD_NODENAME": "localhost",
    }
    env.update(over)
    return env


@pytest.fixture
def srun_env(monkeypatch):
    """Clear what launch reads, then return a setter for srun's variables."""
    for name in list(os.environ):
        if name.startswith("SLURM") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("MASTER_PORT", raising=False)

    def set_vars(**kw):
        for k, v in srun_vars(**kw).items():
            monkeypatch.setenv(k, v)

    return set_vars


def _never(*args):
    raise AssertionError("main ran although the launch cannot work")


def test_planned_world_size_names_its_source(srun_env, monkeypatch):
    assert planned_world_size(4, 2) == (8, "--num-gpus 4 x --num-machines 2")
    srun_env(ntasks=16, tasks_per_node="8(x2)", nodelist="gpu[01-02]")
    assert planned_world_size(1) == (16, "SLURM_STEP_NUM_TASKS=16 (srun, one process per task)")
    srun_env(ntasks=2, tasks_per_node="1(x2)", nodelist="gpu[01-02]")
    assert planned_world_size(8) == (
        16,
        "2 srun node(s) (SLURM_STEP_NODELIST=gpu[01-02]) x --num-gpus 8",
    )
    for k, v in {"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "0", "MASTER_ADDR": "h"}.items():
        monkeypatch.setenv(k, v)
    assert planned_world_size(1) == (4, "WORLD_SIZE=4 (torchrun)")  # torchrun wins


def test_a_batch_that_does_not_split_names_the_variable(srun_env):
    srun_env(ntasks=2)
    with pytest.raises(
        UsageError,
        match=r"SOLVER.IMS_PER_BATCH=3 cannot be split over 2 processes "
        r"\(SLURM_STEP_NUM_TASKS=2 \(srun, one process per task\)\)",
    ):
        check_batch_split(ims_per_batch=3)
    check_batch_split(ims_per_batch=4)
    check_batch_split(ims_per_batch=3, reference_world_size=1)  # rescaled to the world size


@pytest.mark.parametrize(
    "kw,args,message",
    [
        # Two tasks on the node and --num-gpus 2 would start four processes.
        ({}, dict(num_gpus_per_machine=2), r"srun started 2 tasks on this node "
         r"\(SLURM_STEP_TASKS_PER_NODE=2\)"),
        # One task per node, but SLURM gave the node 4 GPUs.
        (dict(ntasks=1, tasks_per_node="1", SLURM_GPUS_ON_NODE="4"),
         dict(num_gpus_per_machine=2), r"SLURM_GPUS_ON_NODE=4"),
        ({}, dict(num_gpus_per_machine=1, num_machines=3), r"--num-machines 3, but srun started "
         r"this step on 1 node\(s\) \(SLURM_STEP_NODELIST=localhost\)"),
        ({}, dict(num_gpus_per_machine=1, machine_rank=1), r"machine rank is SLURM_NODEID"),
        # Rank 0 is not on the first node, where the others look for it.
        (dict(nodelist="other,localhost", tasks_per_node="1(x2)"), dict(num_gpus_per_machine=1),
         r"rank 0 runs on localhost \(SLURMD_NODENAME\), not on other"),
    ],
)  # fmt: skip
def test_mismatches_stop_before_any_process_group(srun_env, kw, args, message):
    srun_env(**kw)
    with pytest.raises(UsageError, match=message):
        launch(_never, **args)
    assert not torch.distributed.is_initialized()


def test_a_pytorchjob_environment_without_torchrun_stops(srun_env, monkeypatch):
    # A Kubernetes PyTorchJob (training-operator v1) runs the command in each pod with these.
    for k, v in {"WORLD_SIZE": "16", "RANK": "1", "MASTER_ADDR": "job-master-0"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PET_NPROC_PER_NODE", "8")
    with pytest.raises(UsageError, match=r"WORLD_SIZE=16 is set but not LOCAL_RANK.*torchrun"):
        launch(_never, 1)
    with pytest.raises(UsageError, match=r"WORLD_SIZE=16 is set but not LOCAL_RANK"):
        planned_world_size(1)


def test_an_unresolvable_node_list_stops_naming_the_variable(srun_env, monkeypatch):
    srun_env(nodelist="gpu[01-")
    monkeypatch.setenv("PATH", "")  # no scontrol to ask
    with pytest.raises(UsageError, match=r"SLURM_STEP_NODELIST='gpu\[01-' cannot be resolved"):
        launch(_never, 1)
    assert not torch.distributed.is_initialized()


def _toy_command(out):
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import engine_toys; "
        "import resnet_det.engine as e; "
        f"e.launch(engine_toys.ddp_worker, int(sys.argv[1]), args=({str(out)!r}, 6, 8))"
    )
    return [sys.executable, "-c", code]


# Slow: where a SLURM cluster answers (CI), tests/engine/test_slurm.py runs the same per-task
# launch under a real srun.
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tasks_with_srun_variables_form_one_process_group(tmp_path):
    # What srun gives two tasks on one node; their process group is found from these alone.
    base = cr.run_env(tmp_path)
    base["MASTER_PORT"] = str(find_free_port())
    procs = [
        subprocess.Popen(
            _toy_command(tmp_path) + ["1"],
            env=dict(base, **srun_vars(rank=r)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in (0, 1)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "world size 2, one process per task, process group at tcp://localhost:" in outs[0]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["info"]["world"] == 2 and r0["info"]["gathered"] == [0, 1]
    single = toys.train_linear(str(tmp_path / "single"), 6, 8).checkpointer.model.state_dict()
    for k, v in single.items():
        assert torch.equal(r0["state"][k], r1["state"][k])
        assert torch.allclose(r0["state"][k], v, atol=1e-6), k
