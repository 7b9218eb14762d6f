"""Two CPU processes (gloo, via launch) with half the batch each == one process, full batch."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # spawned children import engine_toys by name
import engine_toys as toys  # noqa: E402

from resnet_det.engine import launch  # noqa: E402

ITERS, BATCH = 6, 8


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir()
    launch(toys.ddp_worker, 2, args=(str(ddp_dir), ITERS, BATCH), backend="gloo",
           device="cpu")
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
        assert not torch.allclose(v, init[k])              # training moved the weights
        assert torch.allclose(r0["state"][k], v, atol=1e-6), k
        assert torch.equal(r0["state"][k], r1["state"][k])  # ranks stay in sync
    # Only rank 0 writes the run's files; its checkpoint holds both ranks' RNG states.
    final = torch.load(ddp_dir / "model_final.pth", weights_only=True)
    assert len(final["rng_states"]) == 2
    assert not os.path.exists(ddp_dir / "log.txt.rank1")
