"""Fixtures of the detectron2 plugin tests (only torch here: the file loads without detectron2)."""
import pytest
import torch
from torch import nn


def randomize_norms(model: nn.Module, seed: int = 0) -> None:
    """Give every (Frozen)BatchNorm random statistics and affine parameters, so that a wrong
    mapping of any norm shows in the features; the last norm of each residual branch is kept
    small so that the activations of a deep random net stay O(1) and 1e-4 is a meaningful
    tolerance."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if not all(hasattr(m, b) for b in ("weight", "bias", "running_mean", "running_var")):
                continue
            if not isinstance(m.running_mean, torch.Tensor):
                continue
            n = m.running_mean.numel()
            scale = (0.05, 0.2) if name.endswith("conv3.norm") else (0.5, 1.0)
            m.weight.copy_(torch.empty(n).uniform_(*scale, generator=g))
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g))


@pytest.fixture
def random_norms():
    """``randomize_norms`` as a fixture."""
    return randomize_norms
