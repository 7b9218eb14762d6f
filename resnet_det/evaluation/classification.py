"""Classification evaluation: top-1 / top-5 error under the paper's three test protocols.

- "center": one centre crop of the resized image.
- "10crop": the four corner crops, the centre crop and their horizontal flips; the class
  probabilities (softmax) of the ten views are averaged (the paper's Table 3/4 "10-crop
  testing", following AlexNet).
- "multiscale": the paper's fully-convolutional test (Sec. 3.4, following VGG/OverFeat): the
  whole image at shorter sides {224, 256, 384, 480, 640}; the final fc layer is applied at every
  position of the last feature map (as a 1x1 convolution), and the softmax scores are averaged
  over positions and then over scales.

:class:`ClassificationEvaluator` counts the top-k hits of scored batches (the evaluator that
``resnet_det.evaluation.build_evaluator`` gives a classification dataset);
:func:`evaluate_classifier` runs a classifier over a loader under one protocol and feeds it.
"""

import logging
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.comm import all_reduce_sum
from ..utils.errors import DataError
from .evaluator import DatasetEvaluator

__all__ = [
    "TEST_MODES",
    "ClassificationEvaluator",
    "supports_multiscale",
    "unwrap_classifier",
    "topk_correct",
    "ten_crop_probs",
    "fully_convolutional_scores",
    "multiscale_probs",
    "predict_probs",
    "evaluate_classifier",
]

logger = logging.getLogger(__name__)

# The paper's three test protocols (TEST.CLS_MODES), see the module docstring.
TEST_MODES = ("center", "10crop", "multiscale")


def unwrap_classifier(model: nn.Module) -> nn.Module:
    """The network mapping images to logits, out of DDP and the ImageClassifier wrapper."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "net") and isinstance(model.net, nn.Module):
            model = model.net
        else:
            return model


def topk_correct(
    scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> Dict[int, int]:
    """{k: number of rows whose label is among the k highest scores}; k above the number of
    classes counts every row correct."""
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be [N, C] and labels [N], got {tuple(scores.shape)} / "
            f"{tuple(labels.shape)}"
        )
    maxk = min(max(ks), scores.shape[1])
    top = scores.topk(maxk, dim=1).indices
    hit = top == labels.view(-1, 1)
    return {k: int(hit[:, : min(k, maxk)].any(dim=1).sum()) for k in ks}


@torch.no_grad()
def ten_crop_probs(net: nn.Module, views: torch.Tensor) -> torch.Tensor:
    """Mean softmax over views: views [B, V, 3, h, w] -> probabilities [B, C]."""
    if views.dim() != 5:
        raise ValueError(f"10-crop input must be [B, V, 3, h, w], got {tuple(views.shape)}")
    b, v = views.shape[:2]
    probs = F.softmax(net(views.flatten(0, 1)).float(), dim=1)
    return probs.view(b, v, -1).mean(dim=1)


def supports_multiscale(net: nn.Module) -> bool:
    """Whether the fully-convolutional multi-scale test applies: the network (unwrapped, see
    :func:`unwrap_classifier`) ends in global average pooling ('avgpool') + one fc ('linear')."""
    pool, linear = getattr(net, "avgpool", None), getattr(net, "linear", None)
    return (
        isinstance(pool, nn.AdaptiveAvgPool2d)
        and isinstance(linear, nn.Linear)
        and pool.output_size in (1, (1, 1))
    )


def _global_pool_linear(net: nn.Module):
    if not supports_multiscale(net):
        raise ValueError(
            f"the multi-scale (fully-convolutional) test needs a network ending in global average "
            f"pooling ('avgpool') + one fc layer ('linear'); {type(net).__name__} is not one "
            "(VGG's "
            f"fc6/fc7 are not supported)"
        )
    return net.avgpool, net.linear


@torch.no_grad()
def fully_convolutional_scores(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The fc layer applied at every position of the last feature map: [B, 3, H, W] ->
    logits [B, C, h, w]. Averaged over positions they equal ``net(images)`` (pooling and fc are
    both linear), which the tests check."""
    pool, linear = _global_pool_linear(net)
    captured: List[torch.Tensor] = []
    handle = pool.register_forward_pre_hook(lambda m, inp: captured.append(inp[0]))
    try:
        net(images)
    finally:
        handle.remove()
    feat = captured[-1]
    return torch.einsum(
        "bchw,kc->bkhw", feat.float(), linear.weight.float()
    ) + linear.bias.float().view(1, -1, 1, 1)


@torch.no_grad()
def multiscale_probs(net: nn.Module, scales: Sequence[torch.Tensor]) -> torch.Tensor:
    """One image at several scales (each [3, H_s, W_s] or [1, 3, H_s, W_s]) -> [C]: softmax at
    every position, averaged over positions, then over scales."""
    per_scale = []
    for x in scales:
        x = x if x.dim() == 4 else x.unsqueeze(0)
        probs = F.softmax(fully_convolutional_scores(net, x), dim=1)
        per_scale.append(probs.mean(dim=(2, 3))[0])
    return torch.stack(per_scale).mean(dim=0)


@torch.no_grad()
def predict_probs(net: nn.Module, images, mode: str, device: torch.device) -> torch.Tensor:
    """Class probabilities [B, C] for a test batch's "image" under ``mode``."""
    if mode == "center":
        return F.softmax(net(images.to(device)).float(), dim=1)
    if mode == "10crop":
        return ten_crop_probs(net, images.to(device))
    if mode == "multiscale":
        return torch.stack(
            [multiscale_probs(net, [s.to(device) for s in scales]) for scales in images]
        )
    raise ValueError(f"unknown classification test mode {mode!r}; choose one of {list(TEST_MODES)}")


class ClassificationEvaluator(DatasetEvaluator):
    """Top-k accuracy (and error) of scored classification batches.

    ``process(inputs, outputs)`` takes one batch of resnet_det.data.classification (a dict
    with "label" [B] and "skipped", the images it could not read) and the class scores [B, C]
    for it (None when the batch holds no image). ``evaluate()`` returns
    ``{"classification": {"top1", "top1_err", "top5", "top5_err" (percent), "num_images",
    "num_skipped"}}``, summed over processes when distributed (every rank gets them).
    """

    def __init__(
        self,
        dataset_name: Optional[str] = None,
        *,
        topk: Sequence[int] = (1, 5),
        distributed: bool = True,
    ):
        """
        Args:
            dataset_name: the dataset evaluated (for messages only).
            topk: the k of the top-k metrics.
            distributed: sum the counts over the processes of torch.distributed, if initialised.
        """
        self.dataset_name = dataset_name
        self.topk = tuple(topk)
        self.distributed = distributed
        self.reset()

    def reset(self) -> None:
        self._correct = {k: 0 for k in self.topk}
        self._num_images = 0
        self._num_skipped = 0

    def process(self, inputs: Mapping[str, Any], outputs: Optional[torch.Tensor]) -> None:
        self._num_skipped += len(inputs.get("skipped", []))
        labels = inputs["label"]
        if labels.numel() == 0:
            return
        for k, c in topk_correct(outputs, labels, self.topk).items():
            self._correct[k] += c
        self._num_images += labels.numel()

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        totals = [self._num_images, self._num_skipped] + [self._correct[k] for k in self.topk]
        if self.distributed:
            totals = all_reduce_sum(totals)
        n, skipped, hits = totals[0], totals[1], totals[2:]
        if n == 0:
            where = f" {self.dataset_name!r}" if self.dataset_name else ""
            raise DataError(f"classification evaluation saw no image (empty test set{where}?)")
        results: Dict[str, float] = OrderedDict()
        for k, h in zip(self.topk, hits):
            results[f"top{k}"] = 100.0 * h / n
            results[f"top{k}_err"] = 100.0 - results[f"top{k}"]
        results["num_images"] = n
        results["num_skipped"] = skipped
        return OrderedDict([("classification", results)])


def evaluate_classifier(
    model: nn.Module, data_loader: Iterable, *, mode: str = "center", topk: Sequence[int] = (1, 5)
) -> Dict[str, float]:
    """Runs the model over the loader (batches of resnet_det.data.classification) and returns
    {"top1_err", "top5_err", "top1", "top5" (percent), "num_images", "num_skipped"}, summed over
    processes when torch.distributed is initialized. The model's train/eval mode is restored."""
    net = unwrap_classifier(model)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    evaluator = ClassificationEvaluator(topk=topk)
    start = time.perf_counter()
    try:
        for batch in data_loader:
            scores = None
            if batch["label"].numel() > 0:
                scores = predict_probs(net, batch["image"], mode, device).cpu()
            evaluator.process(batch, scores)
    finally:
        net.train(was_training)
    results = evaluator.evaluate()["classification"]
    n = results["num_images"]
    logger.info(
        "Classification (%s) on %d images in %.1f s: %s",
        mode,
        n,
        time.perf_counter() - start,
        ", ".join(f"top-{k} error {results[f'top{k}_err']:.2f}%" for k in topk),
    )
    return results
