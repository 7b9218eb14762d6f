"""Two CPU processes (gloo, via launch) with half the batch each == one process, full batch;
a signal at one rank stops both; a dead rank is reported and the run resumes."""

import datetime
import os
import signal
import sys
import time

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # spawned children import engine_toys by name
import engine_toys as toys  # noqa: E402

from resnet_det.engine import EXIT_PREEMPTED, RankFailedError, TrainingPreempted, launch  # noqa: E402
from resnet_det.engine.launch import dist_timeout  # noqa: E402
from resnet_det.utils.errors import UsageError  # noqa: E402

ITERS, BATCH = 6, 8


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir()
    launch(toys.ddp_worker, 2, args=(str(ddp_dir), ITERS, BATCH), backend="gloo", device="cpu")
    r0 = torch.load(ddp_dir / "rank0.pt", weights_only=True)
    r1 = torch.load(ddp_dir / "rank1.pt", weights_only=True)
    assert r0["info"]["wrapped"] == "DistributedDataParallel"
    assert r0["info"]["world"] == 2 and r0["info"]["gathered"] == [0, 1]
    assert r0["info"]["reduced_a"] == pytest.approx(0.5) == r1["info"]["reduced_a"]

    single = toys.train_linear(str(single_dir), ITERS, BATCH)
    ref = single.checkpointer.model.state_dict()
    torch.manual_seed(123)  # the initial weights train_linear starts from
    init = toys.LinearMSE().state_dict()
    for k, v in ref.items():
        assert not torch.allclose(v, init[k])  # training moved the weights
        assert torch.allclose(r0["state"][k], v, atol=1e-6), k
        assert torch.equal(r0["state"][k], r1["state"][k])  # ranks stay in sync
    # Only rank 0 writes the run's files; its checkpoint holds both ranks' RNG states.
    final = torch.load(ddp_dir / "model_final.pth", weights_only=True)
    assert len(final["rng_states"]) == 2
    assert not os.path.exists(ddp_dir / "log.txt.rank1")


FAULT_ITERS = 8


@pytest.fixture(scope="module")
def ddp_reference(tmp_path_factory):
    """Final weights of an uninterrupted two-process run of ddp_fault_worker."""
    out = tmp_path_factory.mktemp("ddp_ref")
    launch(
        toys.ddp_fault_worker,
        2,
        args=(str(out), FAULT_ITERS, BATCH, False),
        backend="gloo",
        device="cpu",
    )
    return torch.load(out / "rank0.pt", weights_only=True)


def _assert_same_weights(out, ref):
    for rank in (0, 1):
        got = torch.load(out / f"rank{rank}.pt", weights_only=True)
        assert got.keys() == ref.keys()
        for k in ref:
            assert torch.equal(got[k], ref[k]), (rank, k)


@pytest.mark.timeout(300)
def test_a_signal_at_one_rank_stops_every_rank_after_the_same_iteration(
    tmp_path, ddp_reference, monkeypatch
):
    monkeypatch.setenv("RESNET_DET_DIST_TIMEOUT", "120")  # a bug here fails instead of hanging
    with pytest.raises(TrainingPreempted) as e:
        launch(
            toys.ddp_fault_worker,
            2,
            args=(str(tmp_path), FAULT_ITERS, BATCH, False, ("term", 1, 2)),
            backend="gloo",
            device="cpu",
        )
    assert e.value.code == EXIT_PREEMPTED
    # Only rank 1 got the signal; both stopped after iteration 2, rank 0 wrote its checkpoint.
    assert [(tmp_path / f"stopped{r}.txt").read_text() for r in (0, 1)] == ["2", "2"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert len(torch.load(tmp_path / "model_0000002.pth", weights_only=True)["rng_states"]) == 2
    launch(
        toys.ddp_fault_worker,
        2,
        args=(str(tmp_path), FAULT_ITERS, BATCH, True),
        backend="gloo",
        device="cpu",
    )
    _assert_same_weights(tmp_path, ddp_reference)


@pytest.mark.timeout(300)
def test_a_dead_rank_is_reported_by_rank_and_signal_then_resume(
    tmp_path, ddp_reference, monkeypatch
):
    monkeypatch.setenv("RESNET_DET_DIST_TIMEOUT", "120")
    start = time.monotonic()
    with pytest.raises(RankFailedError) as e:
        launch(
            toys.ddp_fault_worker,
            2,
            args=(str(tmp_path), FAULT_ITERS, BATCH, False, ("kill", 1, 4)),
            backend="gloo",
            device="cpu",
        )
    elapsed = time.monotonic() - start
    msg = str(e.value)
    assert e.value.rank == 1 and e.value.exit_code == -signal.SIGKILL
    assert msg.startswith("rank 1 of 2 (pid ") and "killed by SIGKILL" in msg and "--resume" in msg
    assert "rank 0 (pid" in msg  # what happened to the other rank
    assert elapsed < 120, elapsed  # reported, not hung until a timeout
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    launch(
        toys.ddp_fault_worker,
        2,
        args=(str(tmp_path), FAULT_ITERS, BATCH, True),
        backend="gloo",
        device="cpu",
    )
    _assert_same_weights(tmp_path, ddp_reference)


def test_dist_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("RESNET_DET_DIST_TIMEOUT", "90")
    assert dist_timeout() == datetime.timedelta(seconds=90)
    monkeypatch.setenv("RESNET_DET_DIST_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="RESNET_DET_DIST_TIMEOUT='soon'"):
        dist_timeout()
    monkeypatch.delenv("RESNET_DET_DIST_TIMEOUT")
    assert dist_timeout() == datetime.timedelta(minutes=30)


@pytest.mark.timeout(300)
def test_ranks_that_would_resume_from_different_checkpoints_stop(tmp_path):
    from resnet_det.checkpoint import Checkpointer

    own = [tmp_path / "rank0", tmp_path / "rank1"]
    Checkpointer(toys.LinearMSE(), str(own[0])).save("model_0000003", iteration=3)
    with pytest.raises(
        RankFailedError, match="would resume from different checkpoints.*model_0000003.pth"
    ):
        launch(
            toys.resume_from_own_folder,
            2,
            args=([str(p) for p in own],),
            backend="gloo",
            device="cpu",
        )
