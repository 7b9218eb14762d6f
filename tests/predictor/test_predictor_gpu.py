"""Predictor speed options on a GPU: fp16 / bf16 autocast, channels_last, torch.compile."""

import pytest
import torch

from resnet_det.predictor import Predictor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_gpu_predictions_match_cpu_and_reduced_precision_runs(demo):
    _, files, _, make_cfg = demo
    cpu = Predictor(make_cfg(), device="cpu")(files[0])
    gpu = Predictor(make_cfg(), device="cuda")(files[0])
    assert gpu["boxes"].device.type == "cpu"  # results come back on the CPU
    torch.testing.assert_close(gpu["boxes"], cpu["boxes"], rtol=0, atol=1e-2)
    torch.testing.assert_close(gpu["scores"], cpu["scores"], rtol=0, atol=1e-3)
    for precision in ("fp16", "bf16"):
        out = Predictor(make_cfg(), device="cuda", precision=precision)(files[0])
        assert out["boxes"].dtype == torch.float32 and out["boxes"].shape[0] > 0
        assert torch.isfinite(out["boxes"]).all() and torch.isfinite(out["scores"]).all()
        h, w = out["image_size"]
        assert out["boxes"][:, 2].max() <= w and out["boxes"][:, 3].max() <= h
    fast = Predictor(make_cfg(), device="cuda", channels_last=True, fuse=True, compile=True)(
        files[0]
    )
    torch.testing.assert_close(fast["boxes"], gpu["boxes"], rtol=0, atol=1e-2)
