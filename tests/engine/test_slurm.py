"""Against a real SLURM cluster (.ci/start_slurm.sh starts a one-node one): srun's tasks form one
run equal bit for bit to torchrun's; an sbatch job requeued mid-run, by SLURM and by itself on
SIGUSR1, ends with the same weights without --resume; mismatches stop before iteration 0."""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster_runs as cr  # noqa: E402


@pytest.fixture(autouse=True)
def _slurm():
    cr.require_slurm()


@pytest.mark.timeout(1200)
def test_srun_two_tasks_train_one_run_equal_to_torchrun(tmp_path, cluster_datasets, tiny_reference):
    out = tmp_path / "srun"
    proc = cr.run(
        ["srun", "-n", "2", sys.executable, "-u"] + cr.train_args(out),
        cr.run_env(cluster_datasets),
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    # One run of world size 2, not two runs of world size 1 writing the same OUTPUT_DIR:
    # rank 0 writes log.txt, rank 1 its own log.
    assert "world size 2, one process per task" in proc.stdout
    log = (out / "log.txt").read_text()
    assert "Rank of current process: 0. World size: 2" in log
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert log.count("Starting training from iteration 0") == 1
    diff = cr.max_abs_diff(cr.final_weights(out), tiny_reference)
    print(f"srun -n 2 vs torchrun --nproc-per-node 2: max |diff| = {diff} over "
          f"{len(tiny_reference)} tensors")  # fmt: skip
    assert diff == 0


@pytest.mark.timeout(1200)
def test_srun_one_task_per_node_spawning_two_processes_equals_torchrun(
    tmp_path, cluster_datasets, tiny_reference
):
    # detectron2's style: one task per node, --num-gpus processes each (gloo on CPU here).
    out = tmp_path / "per_node"
    env = dict(cr.run_env(cluster_datasets), RESNET_DET_LAUNCH_DEVICE="cpu")
    proc = cr.run(
        ["srun", "-n", "1", "-c", "2", sys.executable, "-u"]
        + cr.train_args(out, "--num-gpus", "2"),
        env,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "world size 2, 2 processes per node (--num-gpus)" in proc.stdout
    diff = cr.max_abs_diff(cr.final_weights(out), tiny_reference)
    print(f"srun -n 1 --num-gpus 2 vs torchrun: max |diff| = {diff}")
    assert diff == 0


@pytest.mark.timeout(600)
def test_a_batch_that_does_not_split_over_srun_tasks_stops_before_iteration_0(
    tmp_path, cluster_datasets
):
    env = cr.run_env(cluster_datasets)
    out = tmp_path / "odd_batch"
    args = cr.train_args(out)
    args[args.index("SOLVER.IMS_PER_BATCH") + 1] = "3"
    proc = cr.run(["srun", "-n", "2", sys.executable, "-u"] + args, env, timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert (
        "config SOLVER.IMS_PER_BATCH=3 cannot be split over 2 processes "
        "(SLURM_STEP_NUM_TASKS=2 (srun, one process per task))" in proc.stdout
    ), proc.stdout[-3000:]
    assert not (out / "log.txt").exists()  # nothing started
    assert "Starting training" not in proc.stdout


def _stops(log):
    return [
        (m.group(1), int(m.group(2)))
        for m in re.finditer(r"Stopped by (\w+) after iteration (\d+) \(of 60\)", log)
    ]


@pytest.mark.timeout(1800)
def test_sbatch_job_requeued_by_slurm_then_by_itself_ends_with_the_uninterrupted_weights(
    tmp_path, cluster_datasets, tiny_reference
):
    out, logs = tmp_path / "run", tmp_path / "logs"
    env = cr.run_env(cluster_datasets)
    submit = cr.run(
        [sys.executable, cr.LAUNCH_SLURM, "--gpus-per-node", "0", "--tasks-per-node", "2"]
        + ["--cpus-per-task", "1", "--time", "30", "--signal-delay", "60"]
        + ["--job-name", "rdt-requeue", "--log-dir", str(logs)]
        + cr.train_args(out),
        env,
        timeout=300,
    )
    assert submit.returncode == 0, submit.stdout
    job = re.search(r"Submitted SLURM job (\d+)", submit.stdout).group(1)
    slurm_log = logs / f"rdt-requeue-{job}.out"
    assert f"SLURM log:     {slurm_log}" in submit.stdout
    assert f"training log:  {out / 'log.txt'}" in submit.stdout
    try:
        # 1. Past iteration 20, scontrol requeue (what a pre-emption in REQUEUE mode does):
        #    SLURM sends SIGTERM to every task and requeues the job itself.
        cr.wait_until(lambda: cr.last_iteration(out) >= 20, "iteration 20", timeout=900)
        subprocess.run(["scontrol", "requeue", job], check=True)
        cr.start_requeued_job_now(job, restarts=1)
        # 2. Past iteration 35 of the second run, SIGUSR1 to the batch script, as
        #    --signal=B:USR1@60 sends it 60 s before the time limit: the run stops with its
        #    checkpoint and requeues the job itself.
        cr.wait_until(
            lambda: (
                (out / "log.txt").read_text().count("Starting training") == 2
                and cr.last_iteration(out) >= 35
            ),
            "iteration 35 after the first restart",
            timeout=900,
        )
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
        cr.start_requeued_job_now(job, restarts=2)
        fields = cr.wait_job(job, "its end", lambda f: f.get("JobState") in cr.JOB_ENDED)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    text = slurm_log.read_text()
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", (fields, text[-5000:])
    # Each start runs the command it was submitted with: nobody added --resume.
    starts = re.findall(r"^SLURM job \d+ on \S+, restart (\d+): (.*)$", text, re.M)
    assert [r for r, _ in starts] == ["0", "1", "2"], text[-5000:]
    assert all("--resume" not in command for _, command in starts)
    stops = _stops(text)
    assert [s for s, _ in stops] == ["SIGTERM", "SIGUSR1"], text[-5000:]
    (_, first), (_, second) = stops
    assert 20 <= first < second < 59, stops
    assert f"SLURM job {job} is being requeued by SLURM" in text
    assert f"Requeued SLURM job {job} (scontrol requeue; JobState=RUNNING" in text
    for restart, stop in ((1, first), (2, second)):
        assert f"Restarted run (SLURM_RESTART_COUNT={restart}): resuming from OUTPUT_DIR" in text
        assert f"Resumed from {out / f'model_{stop:07d}.pth'}" in text
        assert f"Starting training from iteration {stop + 1}" in text
    diff = cr.max_abs_diff(cr.final_weights(out), tiny_reference)
    print(
        f"sbatch job {job} stopped at iterations {first} (scontrol requeue) and {second} "
        f"(SIGUSR1, requeued itself) vs torchrun: max |diff| = {diff}"
    )
    assert diff == 0
