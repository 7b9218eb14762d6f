"""Throughput benchmarks, always measured against a peer in the same run.

Absolute images/s depend on the machine, so a benchmark here reports our model's speed as a
ratio to torchvision's implementation of the same network, timed in the same process on the
same device with the same settings (batch, AMP, memory format).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

__all__ = ["time_training_steps", "compare_classifier_throughput"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_steps(
    model: nn.Module,
    *,
    batch_size: int,
    image_size: int,
    num_classes: int,
    device: torch.device,
    steps: int = 20,
    warmup: int = 5,
    amp_dtype: Optional[torch.dtype] = None,
    channels_last: bool = False,
) -> Dict[str, float]:
    """Time SGD training steps of a classifier on random data.

    Args:
        model: classifier returning logits of shape (N, num_classes).
        batch_size: images per step.
        image_size: side of the square input.
        num_classes: number of logits (for the random targets).
        device: where to run.
        steps: timed steps.
        warmup: untimed steps first (cuDNN autotuning, allocator warm-up).
        amp_dtype: autocast dtype (torch.bfloat16 / torch.float16) or None for fp32.
        channels_last: use the NHWC memory format for model and input.

    Returns:
        {"images_per_s", "s_per_step"}.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    model = model.to(device).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    def autocast():
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def step() -> None:
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    return {"images_per_s": batch_size / dt, "s_per_step": dt}


def compare_classifier_throughput(
    pairs: Dict[str, Callable[[], nn.Module]],
    peers: Dict[str, Callable[[], nn.Module]],
    *,
    repeats: int = 2,
    **kwargs,
) -> List[Dict[str, float]]:
    """Time each of our models against its peer, interleaved, and report the ratio.

    Args:
        pairs: name -> factory of our model.
        peers: name -> factory of the peer model (same keys as ``pairs``).
        repeats: alternate ours/peer this many times and keep each one's best.
        **kwargs: passed to :func:`time_training_steps`.

    Returns:
        one row per name: {"model", "ours_img_s", "peer_img_s", "ratio"} where ratio is
        ours / peer (1.0 = as fast as the peer).
    """
    missing = set(pairs) ^ set(peers)
    if missing:
        raise ValueError(f"pairs and peers must name the same models; differ on {sorted(missing)}")
    rows = []
    for name in pairs:
        ours_m, peer_m = pairs[name](), peers[name]()
        best_ours = best_peer = 0.0
        # Interleave so that clock changes and thermal drift hit both equally.
        for _ in range(repeats):
            best_ours = max(best_ours, time_training_steps(ours_m, **kwargs)["images_per_s"])
            best_peer = max(best_peer, time_training_steps(peer_m, **kwargs)["images_per_s"])
        rows.append(
            {"model": name, "ours_img_s": best_ours, "peer_img_s": best_peer,
             "ratio": best_ours / best_peer}
        )
    return rows
