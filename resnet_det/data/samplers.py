"""Samplers of every task: the training stream, its batches, the inference shards, and the
seeding of loader workers.

Reproducibility is the design constraint (docs/reproducibility.md): the training stream is a
pure function of (seed, position), so a run resumed at iteration k sees exactly the batches
an uninterrupted run would, on every rank, for any number of loader workers. Each sample also
carries a seed derived from (seed, position) for its random augmentation, instead of drawing
from per-worker random state. Detection and classification loaders both draw their training
batches from TrainBatchSampler over a TrainingSampler and shard evaluation with
InferenceSampler.
"""

import itertools
import random
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..utils.comm import get_dist_info
from ..utils.seeding import derive_seed

__all__ = [
    "TrainingSampler",
    "InferenceSampler",
    "TrainBatchSampler",
    "WorkerSeeder",
    "resolve_dist",
    "loader_seeding",
]


def resolve_dist(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """(rank, world_size): the given values, or torch.distributed's where None; checked."""
    d_rank, d_world = get_dist_info()
    rank = d_rank if rank is None else int(rank)
    world_size = d_world if world_size is None else int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank={rank} for world_size={world_size}")
    return rank, world_size


class TrainingSampler:
    """Infinite stream of dataset indices, shuffled anew each epoch, split across ranks.

    Global position p (counting all ranks' samples) holds ``perm_e[p % size]`` where
    ``e = p // size`` and ``perm_e`` is a permutation seeded by (seed, e). Rank r takes the
    positions r, r + world_size, r + 2 * world_size, ... (its share ``rank::world_size``).

    Args:
        size: dataset length.
        shuffle: shuffle each epoch (False: 0, 1, ..., size-1 repeated).
        seed: stream seed; must be the same on all ranks.
        rank, world_size: this process's share; default from torch.distributed.
        start: number of this rank's samples to skip (resume offset).
    """

    def __init__(
        self,
        size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        start: int = 0,
    ) -> None:
        if size <= 0:
            raise ValueError(f"TrainingSampler: dataset size must be positive, got {size}")
        if start < 0:
            raise ValueError(f"TrainingSampler: start must be >= 0, got {start}")
        self.size = int(size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank, self.world_size = resolve_dist(rank, world_size)
        self.start = int(start)

    def _epoch_order(self, epoch: int) -> List[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator()
        g.manual_seed(derive_seed(self.seed, 0x5A3B1E, epoch))
        return torch.randperm(self.size, generator=g).tolist()

    def sample_seed(self, position: int) -> int:
        """Augmentation seed of the sample at global ``position``."""
        return derive_seed(self.seed, 0xA06, position)

    def iter_positions(self, start: Optional[int] = None) -> Iterator[Tuple[int, int]]:
        """Yield (global position, dataset index) for this rank, skipping ``start`` of its
        samples (default: the constructor's ``start``)."""
        start = self.start if start is None else int(start)
        epoch, order = -1, None
        for k in itertools.count(start):
            position = self.rank + k * self.world_size
            e = position // self.size
            if e != epoch:
                epoch, order = e, self._epoch_order(e)
            yield position, order[position % self.size]

    def __iter__(self) -> Iterator[int]:
        for _, index in self.iter_positions():
            yield index


class InferenceSampler:
    """Each rank gets one contiguous shard of ``range(size)``, sizes differing by at most one,
    so that the shards are disjoint, cover the dataset, and keep the order of results.

    Args:
        size: dataset length.
        rank, world_size: this process's share; default from torch.distributed.
    """

    def __init__(
        self, size: int, *, rank: Optional[int] = None, world_size: Optional[int] = None
    ) -> None:
        if size < 0:
            raise ValueError(f"InferenceSampler: size must be >= 0, got {size}")
        self.size = int(size)
        self.rank, self.world_size = resolve_dist(rank, world_size)
        per, extra = divmod(self.size, self.world_size)
        self.begin = self.rank * per + min(self.rank, extra)
        self.end = self.begin + per + (1 if self.rank < extra else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.begin, self.end))

    def __len__(self) -> int:
        return self.end - self.begin


class TrainBatchSampler:
    """Batches of (dataset index, augmentation seed) for one rank, from a TrainingSampler.

    With ``group_ids`` (e.g. 1 for landscape, 0 for portrait images), samples wait in their
    group's bucket and a batch is emitted when a bucket is full, as detectron2's aspect-ratio
    grouping does, but on indices before loading, so the batches do not depend on the
    number of loader workers. Resuming at ``start_iter`` replays the (cheap) grouping of
    earlier indices and discards those batches.

    Args:
        sampler: the rank's TrainingSampler.
        batch_size: images per batch on this rank.
        group_ids: group of each dataset index, or None for plain consecutive batches.
        start_iter: number of batches to skip.
    """

    def __init__(
        self,
        sampler: TrainingSampler,
        batch_size: int,
        group_ids: Optional[Sequence[int]] = None,
        start_iter: int = 0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"TrainBatchSampler: batch_size must be positive, got {batch_size}")
        if start_iter < 0:
            raise ValueError(f"TrainBatchSampler: start_iter must be >= 0, got {start_iter}")
        if group_ids is not None and len(group_ids) != sampler.size:
            raise ValueError(
                f"TrainBatchSampler: {len(group_ids)} group ids for a dataset of {sampler.size}"
            )
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.group_ids = None if group_ids is None else list(group_ids)
        self.start_iter = int(start_iter)

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        if self.group_ids is None:
            # Batch i holds this rank's samples i*B .. i*B+B-1: jump straight to start_iter.
            stream = self.sampler.iter_positions(
                self.sampler.start + self.start_iter * self.batch_size
            )
            while True:
                batch = [
                    (i, self.sampler.sample_seed(p))
                    for p, i in itertools.islice(stream, self.batch_size)
                ]
                yield batch
        buckets = {}
        emitted = 0
        for position, index in self.sampler.iter_positions():
            bucket = buckets.setdefault(self.group_ids[index], [])
            bucket.append((index, position))
            if len(bucket) == self.batch_size:
                batch = list(bucket)
                bucket.clear()
                emitted += 1
                if emitted > self.start_iter:
                    yield [(i, self.sampler.sample_seed(p)) for i, p in batch]


class WorkerSeeder:
    """``worker_init_fn`` of a DataLoader: seeds python's ``random``, numpy and torch in each
    worker process.

    With a run seed, worker ``w`` of rank ``r`` gets ``derive_seed(seed, r, w)``: a function of
    the resolved SEED, whatever torch hands the worker. Without one (test loaders, which draw
    nothing), the seed torch gave the worker is spread to python and numpy. The training
    augmentation does not use these states (each sample carries its own seed); they cover
    third-party code that draws from the global generators.

    Args:
        seed: the run's resolved seed, or None.
        rank: this process's rank.
        num_threads: intra-op threads per worker (None leaves torch's default).
    """

    def __init__(
        self, seed: Optional[int] = None, rank: int = 0, num_threads: Optional[int] = None
    ) -> None:
        self.seed = None if seed is None else int(seed)
        self.rank = int(rank)
        self.num_threads = num_threads

    def __call__(self, worker_id: int) -> None:
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        if self.seed is None:
            seed = torch.initial_seed() % 2**32
        else:
            seed = derive_seed(self.seed, self.rank, worker_id)
            torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)


def loader_seeding(seed: int, rank: int, num_threads: Optional[int] = None) -> Dict[str, Any]:
    """The ``generator`` and ``worker_init_fn`` arguments of a training DataLoader.

    The generator is what torch draws the workers' base seed from on each ``iter(loader)``;
    seeded from (seed, rank) it keeps the loader off the process-wide torch stream.
    """
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, rank, 0x3A7))
    return {
        "generator": generator,
        "worker_init_fn": WorkerSeeder(seed, rank, num_threads=num_threads),
    }
