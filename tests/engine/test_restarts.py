"""A restarted run (requeued SLURM job, restarted torchrun) resumes by itself, only with the
config it started with (engine/restarts.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster_runs as cr  # noqa: E402

from resnet_det.config import ConfigError, get_cfg, save_config  # noqa: E402
from resnet_det.engine.restarts import (  # noqa: E402
    check_restarted_config,
    restart_count,
    resume_on_restart,
)


@pytest.fixture
def no_restart(monkeypatch):
    for name in ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)


def test_restart_count_from_slurm_or_torchrun():
    assert restart_count({}) == (0, "")
    assert restart_count({"SLURM_RESTART_COUNT": "0"}) == (0, "")
    assert restart_count({"SLURM_RESTART_COUNT": "2"}) == (2, "SLURM_RESTART_COUNT=2")
    assert restart_count({"TORCHELASTIC_RESTART_COUNT": "1"}) == (
        1,
        "TORCHELASTIC_RESTART_COUNT=1",
    )


def test_resume_on_restart(monkeypatch, no_restart):
    assert resume_on_restart(False) is False and resume_on_restart(True) is True
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resume_on_restart(False) is True


def _cfg(out, **solver):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(out)
    for k, v in solver.items():
        cfg.SOLVER[k] = v
    return cfg


def test_a_config_changed_before_the_restart_stops_naming_the_keys(
    tmp_path, monkeypatch, no_restart
):
    save_config(_cfg(tmp_path, BASE_LR=0.01), str(tmp_path / "config.yaml"))
    changed = _cfg(tmp_path, BASE_LR=0.02, STEPS=(5, 9))
    check_restarted_config(changed)  # not a restart: --resume may continue a changed config
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with pytest.raises(ConfigError) as e:
        check_restarted_config(changed)
    msg = str(e.value)
    assert "restarted (SLURM_RESTART_COUNT=1)" in msg and "in 2 key(s)" in msg
    assert "SOLVER.BASE_LR: 0.01 -> 0.02" in msg
    assert "SOLVER.STEPS: " in msg and "-> [5, 9]" in msg
    check_restarted_config(_cfg(tmp_path, BASE_LR=0.01))  # the same config goes on


def test_a_drawn_seed_is_kept_across_restarts(tmp_path, monkeypatch, no_restart):
    saved = _cfg(tmp_path)
    saved.SEED = 1234  # what SEED -1 drew the first time, recorded in config.yaml
    save_config(saved, str(tmp_path / "config.yaml"))
    cfg = _cfg(tmp_path)
    cfg.SEED = -1
    cfg.freeze()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    check_restarted_config(cfg)
    assert cfg.SEED == 1234 and cfg.is_frozen()


@pytest.mark.timeout(600)
def test_train_net_restarted_with_a_changed_config_stops_before_iteration_0(tmp_path):
    """tools/train_net.py started again as a requeued SLURM job starts it (the same command,
    no --resume, SLURM_RESTART_COUNT set) after its config changed: it stops before iteration 0
    naming the key. (Resuming by itself is shown on a real cluster in test_slurm.py and with
    torchrun in test_elastic.py.)"""
    out = tmp_path / "run"
    env = cr.run_env(tmp_path / "datasets")
    args = cr.train_args(out)
    args[args.index("SOLVER.MAX_ITER") + 1] = "3"
    first = cr.run([sys.executable, "-u"] + args, env)
    assert first.returncode == 0, first.stdout[-3000:]
    args[args.index("SOLVER.BASE_LR") + 1] = "0.02"
    changed = cr.run([sys.executable, "-u"] + args, dict(env, SLURM_RESTART_COUNT="1"))
    assert changed.returncode == 2, changed.stdout[-3000:]
    assert "restarted (SLURM_RESTART_COUNT=1)" in changed.stdout
    assert "SOLVER.BASE_LR: 0.01 -> 0.02" in changed.stdout
    assert (out / "log.txt").read_text().count("Starting training") == 1  # no second start
