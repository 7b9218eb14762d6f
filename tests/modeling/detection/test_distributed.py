"""Two CPU processes (gloo, DDP) with one image each train exactly as one process with both
images (docs/reproducibility.md): the per-image seeded fg/bg samplers give every image the
same draws wherever it runs, and FrozenBN does not depend on the per-process batch."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from resnet_det.modeling.build import build_model

from ._tiny import C4, synthetic_batch, tiny_cfg

STEPS = 3
OVERRIDES = C4 + ["MODEL.PIXEL_STD", "[57.0, 57.0, 57.0]", "SEED", "7"]


def _train(model, batch, steps):
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.002, momentum=0.9
    )
    history = []
    for _ in range(steps):
        losses = model(batch)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        history.append({k: v.detach() for k, v in losses.items()})
    return history


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = build_model(tiny_cfg(OVERRIDES)).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        batch = synthetic_batch(2, size=(128, 128))[rank : rank + 1]
        history = _train(ddp, batch, STEPS)
        torch.save(
            {"losses": history, "weights": model.state_dict()},
            os.path.join(out_dir, f"rank{rank}.pth"),
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_half_batch_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = build_model(tiny_cfg(OVERRIDES)).train()
    single = _train(model, synthetic_batch(2, size=(128, 128)), STEPS)
    ranks = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in range(2)]
    for step in range(STEPS):
        for name, value in single[step].items():
            # Each loss is a mean over equally many sampled anchors / RoIs per image, so the
            # one-process loss is the average of the two processes' losses.
            mean = (ranks[0]["losses"][step][name] + ranks[1]["losses"][step][name]) / 2
            torch.testing.assert_close(mean, value, rtol=1e-4, atol=1e-5, msg=f"step {step} {name}")
    # DDP averaged the gradients, so the final weights agree with the one-process run too.
    for key, value in model.state_dict().items():
        torch.testing.assert_close(ranks[0]["weights"][key], value, rtol=1e-4, atol=1e-5, msg=key)
        assert torch.equal(ranks[0]["weights"][key], ranks[1]["weights"][key]), key
