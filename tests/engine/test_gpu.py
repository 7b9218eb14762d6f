"""CUDA-only paths of the trainer: AMP float16 (GradScaler) / bfloat16, channels_last, and
exact resume including the CUDA RNG. Deselected in CI (-m "not gpu")."""

import os
import sys

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

from resnet_det.engine import DefaultTrainer, HookBase, JSONWriter, SimpleTrainer  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 1)
        self.seen_dtype = None

    def forward(self, batch):
        x, y = batch
        h = self.conv(x.cuda())
        self.seen_dtype = h.dtype
        out = self.fc(nn.functional.dropout(h.mean((2, 3)), 0.2, self.training))
        return {"loss_mse": ((out.float() - y.cuda()) ** 2).mean()}


def _conv_loader(start_iter):
    it = start_iter
    while True:
        g = torch.Generator().manual_seed(it)
        x = torch.randn(4, 3, 8, 8, generator=g)
        yield x, x.mean((1, 2, 3)).unsqueeze(1)
        it += 1


@pytest.mark.parametrize("dtype,scaled", [("float16", True), ("bfloat16", False)])
def test_amp_on_cuda(dtype, scaled):
    torch.manual_seed(0)
    model = ConvNet().cuda()
    before = model.conv.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    t = SimpleTrainer(
        model,
        _conv_loader(0),
        opt,
        amp_enabled=True,
        amp_dtype=dtype,
        channels_last=True,
        grad_clip_type="norm",
        grad_clip_value=1.0,
    )
    assert (t.grad_scaler is not None) == scaled
    t.train(0, 5)
    assert model.seen_dtype == getattr(torch, dtype)  # autocast was on
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(model.conv.weight, before)
    assert torch.isfinite(model.conv.weight).all()
    if scaled:
        assert t.grad_scaler.get_scale() > 0


class _Crash(Exception):
    pass


class _CrashAt(HookBase):
    def before_step(self):
        if self.trainer.iter == 7:
            raise _Crash()


class _Trainer(DefaultTrainer):
    def build_writers(self):  # metrics.json only: GPU machines may lack tensorboard
        return [JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"))]


def _run(out, crash=False, resume=False, seed=0):
    torch.manual_seed(seed)
    cfg = toys.toy_cfg(str(out), max_iter=10)
    cfg.SOLVER.AMP.ENABLED = True
    cfg.MODEL.DEVICE = "cuda"
    t = _Trainer(cfg, model=ConvNet().cuda(), data_loader=_conv_loader)
    if crash:
        t.register_hooks([_CrashAt()])
    t.resume_or_load(resume=resume)
    t.train()
    return {k: v.detach().cpu().clone() for k, v in t.checkpointer.model.state_dict().items()}


def test_exact_resume_on_cuda_with_grad_scaler(tmp_path):
    ref = _run(tmp_path / "full")
    with pytest.raises(_Crash):
        _run(tmp_path / "r", crash=True)
    data = torch.load(tmp_path / "r" / "model_0000005.pth", weights_only=True)
    assert "cuda" in data["rng_states"][0] and "grad_scaler" in data
    got = _run(tmp_path / "r", resume=True, seed=99)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
