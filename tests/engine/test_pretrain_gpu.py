"""Pretraining on CUDA: bf16 autocast and channels_last reach the classifier through the
generic engine, and the evaluation modes run on the GPU."""

import json
import math
import os

import pytest
import torch

pytestmark = pytest.mark.gpu

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_bf16_channels_last(tmp_path):
    from resnet_det.config import get_cfg
    from resnet_det.engine.pretrain import ClassificationTrainer
    from resnet_det.utils.seeding import seed_all_rng

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "digits", "resnet20.yaml"))
    cfg.merge_from_list(
        [
            "MODEL.DEVICE",
            "cuda",
            "SOLVER.AMP.ENABLED",
            "True",
            "SOLVER.AMP.DTYPE",
            "bfloat16",
            "SOLVER.CHANNELS_LAST",
            "True",
            "SOLVER.MAX_ITER",
            "20",
            "SOLVER.STEPS",
            "[15]",
            "TEST.EVAL_PERIOD",
            "0",
            "LOG_PERIOD",
            "5",
            "TEST.CLS_MODES",
            "['center', '10crop']",
            "INPUT.CLS.TEST_RESIZE",
            "18",
            "OUTPUT_DIR",
            str(tmp_path),
        ]
    )
    seed_all_rng(0)
    trainer = ClassificationTrainer(cfg)
    net = trainer.model.net
    dtypes = []
    h = net.linear.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    h.remove()
    assert torch.bfloat16 in dtypes  # autocast was on in training
    assert net.stem.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    recs = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    losses = [r["loss_cls"] for r in recs if "loss_cls" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    assert max(r.get("images_per_sec", 0) for r in recs) > 0
    assert set(results) == {"center", "10crop"} and results["10crop"]["num_images"] == 297
