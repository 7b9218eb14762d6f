"""Pre-emption: SIGTERM / SIGINT / SIGUSR1 / SIGUSR2 finish the iteration, write its checkpoint,
exit with status 3; --resume then continues bit-exactly; in a SLURM job, the job is requeued where
that continues the run (engine/signals.py)."""

import logging
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

from resnet_det.engine import EXIT_PREEMPTED, TrainingPreempted  # noqa: E402
from resnet_det.engine.signals import StopRequest, requeue_after_stop  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO_CONFIG = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")
N = 12


def _final(out):
    return torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]


def _tag(out):
    with open(os.path.join(out, "last_checkpoint")) as f:
        return f.read().strip()


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_stop_request_records_the_first_signal_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGTERM) is not before
        assert not stop.agreed()
        os.kill(os.getpid(), signal.SIGINT)  # handled: no KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)  # a repeat changes nothing
        assert stop.agreed() and stop.describe() == "SIGINT"
    assert signal.getsignal(signal.SIGTERM) is before
    with StopRequest(()) as none:  # no signals: nothing installed
        assert signal.getsignal(signal.SIGTERM) is before
        none.request()
        assert none.agreed() and none.describe() == "SIGTERM"


def _fork_sleeper():
    pid = os.fork()
    if pid == 0:
        time.sleep(3)
        os._exit(7)
    return pid


@pytest.mark.skipif(
    not hasattr(os, "register_at_fork") or not hasattr(signal, "sigwaitinfo"),
    reason="POSIX fork hooks",
)
def test_children_forked_while_training_leave_a_foreign_sigterm_to_the_main_process():
    # What a DataLoader worker (training or periodic evaluation) does when SLURM signals the
    # whole job: it keeps working, so that the main process can finish its iteration.
    with StopRequest():
        child = _fork_sleeper()
    time.sleep(0.5)  # its hook has run by now
    subprocess.run(["kill", "-TERM", str(child)], check=True)  # sent by another process
    time.sleep(0.5)
    assert os.waitpid(child, os.WNOHANG) == (0, 0)  # still running
    os.kill(child, signal.SIGTERM)  # from its parent: it ends at once
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # Control: forked outside the training loop, the same foreign SIGTERM kills it.
    other = _fork_sleeper()
    time.sleep(0.5)
    subprocess.run(["kill", "-TERM", str(other)], check=True)
    _, status = os.waitpid(other, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


@pytest.mark.parametrize(
    "signum,stop_at",
    [(signal.SIGTERM, 4), (signal.SIGINT, 6), (signal.SIGUSR1, 5), (signal.SIGUSR2, 3)],
)
def test_signal_stops_after_the_iteration_with_its_checkpoint_and_resume_is_exact(
    tmp_path, signum, stop_at
):
    ref = _final(toys.run_noisy(str(tmp_path / "ref"), N, period=3).cfg.OUTPUT_DIR)
    out = str(tmp_path / "run")
    with pytest.raises(TrainingPreempted) as e:
        toys.run_noisy(out, N, period=3, extra_hooks=[toys.SignalAt(stop_at, signum)])
    assert e.value.code == EXIT_PREEMPTED == 3
    assert e.value.iteration == stop_at and e.value.signal_name == signal.Signals(signum).name
    assert e.value.checkpoint == os.path.join(out, f"model_{stop_at:07d}.pth")
    assert _tag(out) == f"model_{stop_at:07d}.pth"
    assert torch.load(e.value.checkpoint, weights_only=True)["iteration"] == stop_at
    assert not os.path.exists(os.path.join(out, "model_final.pth"))
    # The handlers are gone once training stopped: the test process is as before.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    resumed = toys.run_noisy(out, N, period=3, resume=True)
    assert resumed.start_iter == stop_at + 1  # no iteration lost, none repeated
    _assert_same(_final(out), ref)


FAKE_SCONTROL = """#!/bin/sh
# scontrol as a SLURM job sees it: `show job` prints $FAKE_JOB, `requeue` is recorded.
case "$1" in
  show) echo "JobId=$4 JobName=train $FAKE_JOB"; exit 0 ;;
  requeue) echo "$2" >> "$FAKE_REQUEUED"; exit "${FAKE_REQUEUE_RC:-0}" ;;
esac
exit 1
"""


@pytest.mark.parametrize(
    "job,restarts,requeued,line",
    [
        # Still running: the warning signal of sbatch --signal (or a pre-emption notice).
        ("JobState=RUNNING Reason=None Restarts=0 Requeue=1 BatchFlag=1", "", True,
         "Requeued SLURM job 42 (scontrol requeue; JobState=RUNNING Reason=None Restarts=0)"),
        # SIGTERM at the time limit.
        ("JobState=COMPLETING Reason=TimeLimit Restarts=1 Requeue=1 BatchFlag=1", "1", True,
         "Requeued SLURM job 42"),
        # SIGTERM of `scontrol requeue` or a pre-emption in REQUEUE mode: SLURM requeues it.
        ("JobState=COMPLETING Reason=None Restarts=1 Requeue=1 BatchFlag=1", "", False,
         "SLURM job 42 is being requeued by SLURM"),
        # scancel: the job ends.
        ("JobState=COMPLETING Reason=None Restarts=0 Requeue=1 BatchFlag=1", "", False,
         "SLURM job 42 is ending (JobState=COMPLETING Reason=None Restarts=0: cancelled"),
        ("JobState=RUNNING Reason=None Restarts=0 Requeue=0 BatchFlag=1", "", False,
         "does not allow requeueing (Requeue=0)"),
        ("JobState=RUNNING Reason=None Restarts=0 Requeue=1 BatchFlag=0", "", False,
         "is not a batch job"),
    ],
)  # fmt: skip
def test_a_stopped_slurm_job_is_requeued_where_that_continues_the_run(
    tmp_path, monkeypatch, job, restarts, requeued, line
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(FAKE_SCONTROL)
    (bin_dir / "scontrol").chmod(0o755)
    record = tmp_path / "requeued.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_JOB", job)
    monkeypatch.setenv("FAKE_REQUEUED", str(record))
    env = {"SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": restarts}
    assert line in requeue_after_stop(env)
    assert record.exists() == requeued
    if requeued:
        assert record.read_text() == "42\n"
    assert requeue_after_stop({}) == ""  # not a SLURM job: nothing to do
    monkeypatch.setenv("FAKE_REQUEUE_RC", "1")
    if requeued:
        assert "scontrol requeue failed" in requeue_after_stop(env)


def test_stop_on_a_periodic_checkpoint_iteration_writes_it_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resnet_det")
    out = str(tmp_path / "run")
    with pytest.raises(TrainingPreempted) as e:
        toys.run_noisy(out, N, period=3, extra_hooks=[toys.SignalAt(5, signal.SIGTERM)])
    assert e.value.iteration == 5 and _tag(out) == "model_0000005.pth"
    assert [r.getMessage() for r in caplog.records].count(
        f"Saved checkpoint to {os.path.join(out, 'model_0000005.pth')}"
    ) == 1


RANDOM_N = 60  # toy iterations, 0.05 s of sleep each: a signal within 0.4 s lands mid-run
RANDOM_SIGNALS_CI = 3  # SIGTERMs at random moments in CI
RANDOM_SIGNALS_SOAK = 10  # SIGTERM / SIGINT alternating, in the slow soak


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


def _toy_cmd(out, resume):
    return [
        sys.executable,
        "-u",
        os.path.join(ROOT, "tests", "engine", "engine_toys.py"),
        out,
        "--max-iter",
        str(RANDOM_N),
        "--sleep",
        "0.05",
        "--workers",
        "1",
    ] + (["--resume"] if resume else [])


def _interrupt_then_resume(cmd, out, signals, rng, *, ready, delay, env):
    """Start ``cmd(resume)`` once per signal and send that signal to its process group at a
    random moment after the line ``ready``; then resume to the end. Returns the iterations
    each stop's checkpoint holds."""
    stops = []
    for attempt, signum in enumerate(signals):
        # Its own session: the signal goes to the process group, as SLURM (every process of
        # the job) and Ctrl-C (the terminal's foreground group) deliver it, loader workers too.
        proc = subprocess.Popen(
            cmd(attempt > 0),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines = []
        for line in proc.stdout:  # wait until the loop runs
            lines.append(line)
            if ready in line:
                break
        time.sleep(rng.uniform(0.0, delay))
        os.killpg(proc.pid, signum)
        rest, _ = proc.communicate(timeout=600)
        log = "".join(lines) + rest
        name = signal.Signals(signum).name
        assert proc.returncode == EXIT_PREEMPTED, f"attempt {attempt} ({name}):\n{log}"
        assert f"Stopped by {name} after iteration" in log and "DataLoader worker" not in log, log
        stops.append(int(_tag(out)[len("model_") : -len(".pth")]))
    proc = subprocess.run(
        cmd(True),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout
    return stops


def _seeded_rng():
    seed = int(os.environ.get("RESNET_DET_TEST_SEED", random.randrange(10**6)))
    print(f"RESNET_DET_TEST_SEED={seed}")  # shown on failure, to repeat the same moments
    return random.Random(seed)


def _random_signals(tmp_path, signals):
    rng = _seeded_rng()
    # The reference runs as a process too: the same process state (threads, flush-denormal
    # mode, which earlier tests in this process may have changed) as the runs it is compared to.
    ref = str(tmp_path / "ref")
    subprocess.run(
        _toy_cmd(ref, False),
        cwd=ROOT,
        env=_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    ref_state = _final(ref)
    out = str(tmp_path / "run")
    stops = _interrupt_then_resume(
        lambda resume: _toy_cmd(out, resume),
        out,
        signals,
        rng,
        ready="TRAINING",
        delay=0.4,
        env=_env(),
    )
    assert stops == sorted(set(stops)) and stops[-1] < RANDOM_N - 1, stops
    _assert_same(_final(out), ref_state)


@pytest.mark.timeout(600)
def test_sigterm_at_random_moments_three_times_then_resume_equals_an_uninterrupted_run(tmp_path):
    _random_signals(tmp_path, [signal.SIGTERM] * RANDOM_SIGNALS_CI)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_signal_soak(tmp_path):
    _random_signals(tmp_path, [signal.SIGTERM, signal.SIGINT] * (RANDOM_SIGNALS_SOAK // 2))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_detector_run_interrupted_twice_by_train_net_then_resumed_is_exact(tmp_path):
    """The same on tools/train_net.py with a tiny detector on the demo shapes."""
    env = _env()
    env.setdefault("RESNET_DET_DATASETS", str(tmp_path / "datasets"))
    # R18-FPN with GroupNorm on 64 px images: a few CPU iterations a second.
    opts = [
        "MODEL.RESNETS.NORM",
        "GN",
        "MODEL.FPN.OUT_CHANNELS",
        "64",
        "MODEL.ROI_BOX_HEAD.FC_DIM",
        "64",
        "INPUT.MIN_SIZE_TRAIN",
        "[64]",
        "INPUT.MAX_SIZE_TRAIN",
        "96",
        "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
        "32",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN",
        "32",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        "16",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "SOLVER.BASE_LR",
        "0.01",
        "SOLVER.WARMUP_ITERS",
        "2",
        "SOLVER.STEPS",
        "[30]",
        "SOLVER.MAX_ITER",
        "40",
        "SOLVER.CHECKPOINT_PERIOD",
        "1000",
        "DATALOADER.NUM_WORKERS",
        "1",
        "DATASETS.TEST",
        "[]",
    ]

    def cmd(out):
        return lambda resume: (
            [
                sys.executable,
                "-u",
                os.path.join(ROOT, "tools", "train_net.py"),
                "--config-file",
                DEMO_CONFIG,
            ]
            + (["--resume"] if resume else [])
            + opts
            + ["OUTPUT_DIR", out]
        )

    ref = str(tmp_path / "ref")
    subprocess.run(
        cmd(ref)(False), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800
    )
    out = str(tmp_path / "run")
    stops = _interrupt_then_resume(
        cmd(out),
        out,
        [signal.SIGTERM, signal.SIGINT],
        _seeded_rng(),
        ready="Starting training",
        delay=5.0,
        env=env,
    )
    assert stops == sorted(set(stops)), stops
    _assert_same(_final(out), _final(ref))


def test_reliability_doc_states_these_counts():
    doc = open(os.path.join(ROOT, "docs", "reliability.md")).read()
    assert f"| signals at random moments in CI | {RANDOM_SIGNALS_CI} SIGTERMs" in doc
    assert (
        f"| signals at random moments in the slow soak | {RANDOM_SIGNALS_SOAK} (SIGTERM and SIGINT"
        in doc
    )
    table = doc.split("## Fault table\n", 1)[1].split("\n## ", 1)[0]
    ours = [
        line
        for line in table.splitlines()
        if "`tests/engine/" in line or "test_checkpointer_faults" in line
    ]
    count = int(doc.split("| training and cluster faults | ", 1)[1].split(" rows", 1)[0])
    assert len(ours) == count
