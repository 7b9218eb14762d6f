"""Pre-emption: SIGTERM / SIGINT finish the iteration, write its checkpoint, exit with status 3;
--resume then continues bit-exactly (engine/signals.py)."""
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
from resnet_det.engine.signals import StopRequest  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
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
        os.kill(os.getpid(), signal.SIGINT)    # handled: no KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)   # a repeat changes nothing
        assert stop.agreed() and stop.describe() == "SIGINT"
    assert signal.getsignal(signal.SIGTERM) is before
    with StopRequest(()) as none:               # no signals: nothing installed
        assert signal.getsignal(signal.SIGTERM) is before
        none.request()
        assert none.agreed() and none.describe() == "SIGTERM"


@pytest.mark.parametrize("signum,stop_at", [(signal.SIGTERM, 4), (signal.SIGINT, 6)])
def test_signal_stops_after_the_iteration_with_its_checkpoint_and_resume_is_exact(tmp_path, signum, stop_at):
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
    assert resumed.start_iter == stop_at + 1          # no iteration lost, none repeated
    _assert_same(_final(out), ref)


def test_stop_on_a_periodic_checkpoint_iteration_writes_it_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resnet_det")
    out = str(tmp_path / "run")
    with pytest.raises(TrainingPreempted) as e:
        toys.run_noisy(out, N, period=3, extra_hooks=[toys.SignalAt(5, signal.SIGTERM)])
    assert e.value.iteration == 5 and _tag(out) == "model_0000005.pth"
    assert [r.getMessage() for r in caplog.records].count(
        f"Saved checkpoint to {os.path.join(out, 'model_0000005.pth')}") == 1


def _start(out, *, resume, workers):
    cmd = [sys.executable, "-u", os.path.join(ROOT, "tests", "engine", "engine_toys.py"), out,
           "--max-iter", str(RANDOM_N), "--sleep", "0.05", "--workers", str(workers)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    # Its own session: signals go to the process group, as SLURM (every process of the job)
    # and Ctrl-C (the terminal's foreground group) deliver them, DataLoader worker included.
    return subprocess.Popen(cmd + (["--resume"] if resume else []), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


RANDOM_N = 60  # x 0.05 s of sleep: a signal within 0.4 s of the first step lands mid-run


@pytest.mark.timeout(600)
def test_sigterm_at_random_moments_three_times_then_resume_equals_an_uninterrupted_run(tmp_path):
    seed = int(os.environ.get("RESNET_DET_TEST_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    ref = toys.run_noisy(str(tmp_path / "ref"), RANDOM_N, workers=1)
    ref_state = {k: v.clone() for k, v in ref.checkpointer.model.state_dict().items()}
    out = str(tmp_path / "run")
    stops = []
    for attempt in range(3):
        proc = _start(out, resume=attempt > 0, workers=1)
        lines = []
        for line in proc.stdout:              # wait until the loop runs
            lines.append(line)
            if line.strip() == "TRAINING":
                break
        time.sleep(rng.uniform(0.0, 0.4))
        os.killpg(proc.pid, signal.SIGTERM)
        rest, _ = proc.communicate(timeout=300)
        log = "".join(lines) + rest
        assert proc.returncode == EXIT_PREEMPTED, f"seed {seed}, attempt {attempt}:\n{log}"
        assert "Stopped by SIGTERM after iteration" in log and "DataLoader worker" not in log, log
        stops.append(int(_tag(out)[len("model_"):-len(".pth")]))
    assert stops == sorted(set(stops)) and stops[-1] < RANDOM_N - 1, (seed, stops)
    proc = _start(out, resume=True, workers=1)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    _assert_same(_final(out), ref_state)
