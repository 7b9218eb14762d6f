"""Layer responses (the paper's Fig. 7, Sec. 4.2): the standard deviation of the output of
each 3x3 convolution after its BN and before the addition / ReLU, per layer in network order
and sorted in descending order. Residual functions respond less than plain layers, and less
in deeper nets, which is the paper's evidence that they are closer to zero than
non-residual functions."""

from typing import Iterable, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.visualize import finish_figure
from .layers import Conv2dNorm

__all__ = ["response_layers", "layer_response_stds", "plot_layer_responses"]


def response_layers(net: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(name, module) of every 3x3 convolution in network order. For a Conv2dNorm the hook
    goes on the conv module, whose output already includes its norm (never the activation);
    a bare Conv2d followed by a separate norm is not this package's layout and raises."""
    layers = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3):
            if not isinstance(m, Conv2dNorm):
                raise ValueError(
                    f"layer {name}: expected a Conv2dNorm (conv + norm child), got "
                    f"{type(m).__name__}"
                )
            layers.append((name, m))
    if not layers:
        raise ValueError(f"{type(net).__name__} has no 3x3 convolution")
    return layers


@torch.no_grad()
def layer_response_stds(
    net: nn.Module, batches: Iterable[torch.Tensor], *, max_images: int = 0
) -> Tuple[List[str], np.ndarray]:
    """Std of each 3x3 layer's response over all positions, channels and images.

    Args:
        net: the classifier network (eval mode is set for the pass and restored after).
        batches: image tensors [B, 3, H, W] (already normalised, as the test loader gives).
        max_images: stop after this many images (0: all).

    Returns:
        (layer names, stds) in network order.
    """
    layers = response_layers(net)
    n = len(layers)
    s1 = np.zeros(n)
    s2 = np.zeros(n)
    count = np.zeros(n)

    def hook(i):
        def fn(module, inputs, out):
            o = out.detach().double()
            s1[i] += float(o.sum())
            s2[i] += float((o * o).sum())
            count[i] += o.numel()

        return fn

    handles = [m.register_forward_hook(hook(i)) for i, (_, m) in enumerate(layers)]
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    seen = 0
    try:
        for x in batches:
            if max_images and seen >= max_images:
                break
            if max_images:
                x = x[: max_images - seen]
            net(x.to(device))
            seen += x.shape[0]
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    if seen == 0:
        raise ValueError("layer_response_stds: no image given")
    mean = s1 / count
    var = np.maximum(s2 / count - mean * mean, 0.0)
    return [name for name, _ in layers], np.sqrt(var)


def plot_layer_responses(
    results: Sequence[Tuple[str, Sequence[float]]], output: str, *, title: str = ""
) -> str:
    """Fig. 7: top, std per layer in network order; bottom, sorted in descending order.

    Args:
        results: (label, stds) per network.
        output: the PNG path (written atomically).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_layer_responses: nothing to plot")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0))
    for label, stds in results:
        stds = np.asarray(stds, dtype=float)
        x = np.arange(1, len(stds) + 1)
        top.plot(x, stds, marker=".", linewidth=1, label=label)
        bottom.plot(x, np.sort(stds)[::-1], marker=".", linewidth=1, label=label)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return finish_figure(fig, top, title, output)
