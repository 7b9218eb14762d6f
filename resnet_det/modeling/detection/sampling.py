"""Fg/bg sampling of anchors (RPN) and proposals (RoI heads) that can be seeded per image.

torchvision's BalancedPositiveNegativeSampler draws from the process-wide RNG, so an image's
draws depend on which images came before it in the same process. Exact equality between a
one-process run and a multi-process run with the batch split across processes (and an exact
resume) needs each image's draws to depend only on (seed, iteration, image), which is what
``SeededBalancedSampler`` gives when the detector hands it per-image seeds.
"""

from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from ...utils.seeding import derive_seed

__all__ = ["SeededBalancedSampler", "image_seed"]


def image_seed(seed: int, iteration: int, image_id, salt: str) -> int:
    """A 63-bit seed that depends only on (seed, iteration, image_id, salt): the package's one
    seed mixer (``resnet_det.utils.seeding.derive_seed``), which hashes string ids stably."""
    return derive_seed(
        seed, iteration, image_id if isinstance(image_id, (int, str)) else repr(image_id), salt
    )


class SeededBalancedSampler(BalancedPositiveNegativeSampler):
    """torchvision's balanced sampler; with ``image_seeds`` set, each image draws from its own
    generator instead of the global RNG.

    Args:
        batch_size_per_image: number of elements sampled per image.
        positive_fraction: fraction of them that are foreground (at most).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        super().__init__(batch_size_per_image, positive_fraction)
        # Set by the detector just before each training forward; None = global RNG.
        self.image_seeds: Optional[Sequence[int]] = None

    def __call__(self, matched_idxs: List[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        seeds = self.image_seeds
        if seeds is None:
            return super().__call__(matched_idxs)
        if len(seeds) != len(matched_idxs):
            raise ValueError(
                f"SeededBalancedSampler: {len(seeds)} image seeds for {len(matched_idxs)} images"
            )
        pos_idx, neg_idx = [], []
        for labels, seed in zip(matched_idxs, seeds):
            positive = torch.where(labels >= 1)[0]
            negative = torch.where(labels == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            # A CPU generator whatever the device: the draws are then identical on CPU and GPU.
            gen = torch.Generator().manual_seed(int(seed))
            perm_pos = torch.randperm(positive.numel(), generator=gen)[:num_pos].to(labels.device)
            perm_neg = torch.randperm(negative.numel(), generator=gen)[:num_neg].to(labels.device)
            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[positive[perm_pos]] = 1
            neg_mask[negative[perm_neg]] = 1
            pos_idx.append(pos_mask)
            neg_idx.append(neg_mask)
        return pos_idx, neg_idx
