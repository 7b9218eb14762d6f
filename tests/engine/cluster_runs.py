"""What the cluster tests share: a tiny detector run of tools/train_net.py, whether a SLURM
cluster answers here, and waiting for runs and jobs.

The run is the demo config with SEED 7 and 60 iterations made cheap: R18-FPN with GroupNorm
(its math does not depend on the per-process batch, docs/reproducibility.md), 64 px images, few
anchors and RoIs, no loader workers, no evaluation; a checkpoint every 10 iterations and a
metrics.json line every iteration. Two processes of gloo on CPU.

SLURM: the tests skip, saying why, where no cluster answers; with RESNET_DET_REQUIRE_SLURM=1
(set by .ci/run once .ci/start_slurm.sh has started one) they fail instead.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO_CONFIG = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")
TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")
LAUNCH_SLURM = os.path.join(ROOT, "tools", "launch_slurm.py")
REQUIRE_SLURM_ENV = "RESNET_DET_REQUIRE_SLURM"
# The states of a job that has ended (scontrol's JobState).
JOB_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")

MAX_ITER = 60
TINY_OPTS = [
    "SEED", "7",
    "SOLVER.MAX_ITER", str(MAX_ITER),
    "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.BASE_LR", "0.01",
    "SOLVER.WARMUP_ITERS", "2",
    "SOLVER.CHECKPOINT_PERIOD", "10",
    "MODEL.RESNETS.NORM", "GN",
    "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "32",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
    "INPUT.MIN_SIZE_TRAIN", "[64]",
    "INPUT.MAX_SIZE_TRAIN", "96",
    "DATALOADER.NUM_WORKERS", "0",
    "DATASETS.TEST", "[]",
    "LOG_PERIOD", "1",
]  # fmt: skip


def train_args(out, *extra):
    """tools/train_net.py's arguments for the tiny run into ``out``."""
    return [TRAIN_NET, "--config-file", DEMO_CONFIG, *extra, *TINY_OPTS, "OUTPUT_DIR", str(out)]


def run_env(datasets):
    """The environment of the runs: this checkout first on PYTHONPATH, the demo data in
    ``datasets`` (shared by all runs: generated once)."""
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("RESNET_DET_DATASETS", str(datasets))
    for name in list(env):  # a test started inside a job step must not look like its task
        if name.startswith("SLURM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            del env[name]
    return env


def run(cmd, env, timeout=900, **kw):
    """Run ``cmd``; returns the CompletedProcess with stdout and stderr merged."""
    return subprocess.run(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout, **kw,
    )  # fmt: skip


def final_weights(out):
    return torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]


def max_abs_diff(a, b) -> float:
    """max |a - b| over every tensor of two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def last_iteration(out) -> int:
    """The last iteration metrics.json holds (-1 before the first)."""
    path = os.path.join(out, "metrics.json")
    if not os.path.isfile(path):
        return -1
    its = []
    with open(path) as f:
        for line in f:
            try:
                its.append(json.loads(line)["iteration"])
            except (ValueError, KeyError):
                pass  # a line being written
    return max(its, default=-1)


def wait_until(predicate, what, timeout=600.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def slurm_missing(daemons: bool = True) -> str:
    """Why the SLURM tests cannot run here ("" when they can)."""
    for tool in ("scontrol", "srun", "sbatch", "sinfo"):
        if not shutil.which(tool):
            return f"SLURM is not installed ({tool} not found; .ci/start_slurm.sh installs it)"
    if not daemons:
        return ""
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    # A node busy with another job (allocated, completing) will take the tests' jobs when it
    # is free: srun and sbatch wait for it.
    usable = ("idle", "mixed", "allocated", "completing")
    states = [s.rstrip("*~#!%$@^-+") for s in proc.stdout.split()]
    if proc.returncode != 0 or not any(s in usable for s in states):
        return (
            "no SLURM cluster with a usable node answers here (sinfo: "
            f"{(proc.stdout + proc.stderr).strip()!r}; .ci/start_slurm.sh starts one as root)"
        )
    return ""


def require_slurm(daemons: bool = True) -> None:
    """Skip the test, saying why, where SLURM is missing; fail instead under
    RESNET_DET_REQUIRE_SLURM=1 (CI, where .ci/start_slurm.sh started a cluster)."""
    reason = slurm_missing(daemons)
    if not reason:
        return
    if os.environ.get(REQUIRE_SLURM_ENV, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_SLURM_ENV} is set but {reason}")
    pytest.skip(reason)


def job_fields(job_id) -> dict:
    proc = subprocess.run(
        ["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True, timeout=60
    )
    return dict(re.findall(r"(?:^|\s)(\w+)=(\S*)", proc.stdout))


def wait_job(job_id, what, predicate, timeout=600.0) -> dict:
    """Wait until ``predicate(fields)`` holds for the job's scontrol fields; returns them."""
    seen = {}

    def check():
        seen.update(job_fields(job_id))
        return predicate(seen)

    try:
        wait_until(check, f"job {job_id}: {what}", timeout=timeout, interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen JobState={seen.get('JobState')} "
                             f"Restarts={seen.get('Restarts')}") from None  # fmt: skip
    return dict(seen)


def start_requeued_job_now(job_id, restarts: int) -> None:
    """A requeued job waits about 2 minutes (its BeginTime) before it may start again: once it
    is pending with ``restarts`` restarts, let it start now."""
    wait_job(
        job_id,
        f"pending after restart {restarts}",
        lambda f: f.get("JobState") == "PENDING" and int(f.get("Restarts", 0)) == restarts,
    )
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
