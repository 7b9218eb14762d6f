"""tools/launch_slurm.py: the sbatch script it writes (--dry-run), its checks, and a submission
through submitit to a real SLURM cluster (the sbatch submission and its requeues are in
tests/engine/test_slurm.py)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "engine"))
import cluster_runs as cr  # noqa: E402


def _tool():
    spec = importlib.util.spec_from_file_location(
        "launch_slurm", os.path.join(ROOT, "tools", "launch_slurm.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _dry_run(capsys, *argv):
    assert _tool().main(["--dry-run", *argv]) == ""
    return capsys.readouterr().out


def _directives(script):
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, re.M))


def test_dry_run_prints_the_gpu_script(capsys, in_root, tmp_path):
    script = _dry_run(
        capsys,
        "--nodes", "2", "--gpus-per-node", "8", "--partition", "gpu", "--time", "2-00:00:00",
        "--log-dir", str(tmp_path), "--sbatch-arg=--account=det",
        "tools/train_net.py", "--config-file", "configs/faster_rcnn_R101.yaml",
        "MODEL.WEIGHTS", "R-101.pkl",
    )  # fmt: skip
    d = _directives(script)
    assert d["nodes"] == "2" and d["ntasks-per-node"] == "8" and d["gpus-per-node"] == "8"
    assert d["partition"] == "gpu" and d["time"] == "2-00:00:00" and d["account"] == "det"
    assert d["signal"] == "B:USR1@120" and d["requeue"] == ""
    assert d["output"] == os.path.join(str(tmp_path), "%x-%j.out") and d["chdir"] == ROOT
    assert (
        f"set -- {sys.executable} -u tools/train_net.py --config-file "
        "configs/faster_rcnn_R101.yaml MODEL.WEIGHTS R-101.pkl" in script.splitlines()
    )
    assert 'srun "$@" &' in script and "trap 'kill -USR1" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_dry_run_cpu_script_without_requeue(capsys, in_root):
    script = _dry_run(
        capsys,
        "--gpus-per-node", "0", "--tasks-per-node", "2", "--cpus-per-task", "1",
        "--no-requeue", "--signal-delay", "300", "tools/pretrain_net.py",
    )  # fmt: skip
    d = _directives(script)
    assert "gpus-per-node" not in d and "requeue" not in d and "partition" not in d
    assert d["ntasks-per-node"] == "2" and d["cpus-per-task"] == "1"
    assert d["signal"] == "B:USR1@300"


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "give the training script"),
        (["tools/nope.py"], "'tools/nope.py': the command starts with a training script"),
        (["--time", "1", "tools/train_net.py"], "--signal-delay 120 s is not shorter than"),
        (["--time", "1h", "tools/train_net.py"], "--time: '1h' is not a SLURM time limit"),
        (["--sbatch-arg", "account=x", "tools/train_net.py"], "give it as --KEY=VALUE"),
        (["--submitit", "tools/train_net.py"], "--dry-run prints the sbatch script"),
    ],
)
def test_bad_arguments_are_named(in_root, argv, message):
    from resnet_det.utils.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(message)):
        _tool().main(["--dry-run", *argv])


@pytest.mark.timeout(900)
def test_submitit_submission_runs_two_tasks_as_one_run(tmp_path):
    cr.require_slurm()
    pytest.importorskip("submitit", reason="the slurm extra: pip install 'resnet_det[slurm]'")
    out, logs = tmp_path / "run", tmp_path / "logs"
    args = cr.train_args(out)
    args[args.index("SOLVER.MAX_ITER") + 1] = "4"
    proc = cr.run(
        [sys.executable, cr.LAUNCH_SLURM, "--submitit", "--gpus-per-node", "0"]
        + ["--tasks-per-node", "2", "--cpus-per-task", "1", "--time", "20"]
        + ["--job-name", "rdt-submitit", "--log-dir", str(logs)]
        + args,
        cr.run_env(tmp_path / "datasets"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout
    job = re.search(r"Submitted SLURM job (\d+) \(submitit", proc.stdout).group(1)
    stdout_log = logs / job / f"{job}_0_log.out"
    assert f"SLURM log:     {stdout_log}" in proc.stdout
    try:
        fields = cr.wait_job(job, "its end", lambda f: f.get("JobState") in cr.JOB_ENDED)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    text = stdout_log.read_text()
    assert fields["JobState"] == "COMPLETED", (fields, text[-3000:])
    # submitit's srun started two tasks; they trained one run of world size 2.
    assert "world size 2, one process per task" in text
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert (out / "model_final.pth").is_file()
