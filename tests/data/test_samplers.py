"""The training stream (seeded, epoch-wise, split across ranks, resumable), its batches, the
inference shards and the seeding of loader workers."""

import itertools
import random

import numpy as np
import pytest
import torch

from resnet_det.data.samplers import (
    InferenceSampler,
    TrainBatchSampler,
    TrainingSampler,
    WorkerSeeder,
    loader_seeding,
)
from resnet_det.utils.seeding import derive_seed


def _take(it, n):
    return list(itertools.islice(it, n))


def test_training_stream_is_seeded_and_epochwise_permuted():
    a = _take(TrainingSampler(10, seed=1), 30)
    assert a == _take(TrainingSampler(10, seed=1), 30)
    assert a != _take(TrainingSampler(10, seed=2), 30)
    for e in range(3):
        assert sorted(a[10 * e : 10 * e + 10]) == list(range(10))
    assert a[:10] != a[10:20]  # reshuffled each epoch
    assert _take(TrainingSampler(4, shuffle=False), 6) == [0, 1, 2, 3, 0, 1]


def test_resume_offset_continues_the_same_stream():
    full = _take(TrainingSampler(7, seed=3), 40)
    assert _take(TrainingSampler(7, seed=3, start=13), 27) == full[13:]
    s = TrainingSampler(7, seed=3)
    assert [i for _, i in _take(s.iter_positions(start=5), 10)] == full[5:15]


def test_ranks_split_the_global_stream():
    world = 3
    full = _take(TrainingSampler(11, seed=0, rank=0, world_size=1), 60)
    shares = [
        _take(TrainingSampler(11, seed=0, rank=r, world_size=world), 20) for r in range(world)
    ]
    for r in range(world):
        assert shares[r] == full[r::world]
    # One epoch's positions (0..10) are covered exactly once across ranks.
    epoch = [
        (p, i)
        for r in range(world)
        for p, i in _take(TrainingSampler(11, seed=0, rank=r, world_size=world).iter_positions(), 4)
        if p < 11
    ]
    assert sorted(p for p, _ in epoch) == list(range(11))
    assert sorted(i for _, i in epoch) == list(range(11))


@pytest.mark.parametrize("size,world", [(10, 3), (2, 3), (9, 1), (0, 2)])
def test_inference_shards_disjoint_contiguous_covering(size, world):
    shards = [list(InferenceSampler(size, rank=r, world_size=world)) for r in range(world)]
    assert sum(shards, []) == list(range(size))
    lengths = [len(s) for s in shards]
    assert max(lengths) - min(lengths) <= 1
    assert [len(InferenceSampler(size, rank=r, world_size=world)) for r in range(world)] == lengths


def test_invalid_rank():
    with pytest.raises(ValueError, match="rank=3"):
        TrainingSampler(5, rank=3, world_size=2)


def test_aspect_grouped_batches_and_resume():
    groups = [0, 1, 1, 0, 1, 0, 0, 1, 1]
    sampler = TrainingSampler(len(groups), seed=4)
    batches = _take(iter(TrainBatchSampler(sampler, 2, group_ids=groups)), 12)
    for batch in batches:
        assert len(batch) == 2 and len({groups[i] for i, _ in batch}) == 1
    # Each sample's seed is tied to its stream position: all distinct.
    seeds = [s for b in batches for _, s in b]
    assert len(set(seeds)) == len(seeds)
    resumed = _take(iter(TrainBatchSampler(sampler, 2, group_ids=groups, start_iter=5)), 7)
    assert resumed == batches[5:]


def test_plain_batches_and_resume():
    sampler = TrainingSampler(5, seed=0)
    batches = _take(iter(TrainBatchSampler(sampler, 3)), 6)
    assert [i for b in batches for i, _ in b] == _take(TrainingSampler(5, seed=0), 18)
    assert _take(iter(TrainBatchSampler(sampler, 3, start_iter=4)), 2) == batches[4:]


class _Draws(torch.utils.data.Dataset):
    """What a worker's process-wide generators give: python, numpy, torch."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return (
            torch.utils.data.get_worker_info().id,
            random.random(),
            float(np.random.rand()),
            float(torch.rand(1)),
        )


def _worker_draws(seeder, generator_seed):
    loader = torch.utils.data.DataLoader(
        _Draws(),
        batch_size=None,
        num_workers=2,
        worker_init_fn=seeder,
        generator=torch.Generator().manual_seed(generator_seed),
    )
    return list(loader)  # in order: items 0, 2 from worker 0, items 1, 3 from worker 1


def test_worker_seeds_come_from_the_run_seed():
    # The base seed torch hands the workers (from the loader's generator) does not matter:
    # worker w of rank r is seeded by derive_seed(seed, r, w).
    a = _worker_draws(WorkerSeeder(5, rank=0), generator_seed=1)
    assert a == _worker_draws(WorkerSeeder(5, rank=0), generator_seed=2)
    assert a != _worker_draws(WorkerSeeder(6, rank=0), generator_seed=1)
    assert a != _worker_draws(WorkerSeeder(5, rank=1), generator_seed=1)
    assert [w for w, *_ in a] == [0, 1, 0, 1] and a[0][1:] != a[1][1:]
    random.seed(derive_seed(5, 0, 1))
    assert a[1][1] == random.random()


def test_loader_seeding_keeps_off_the_process_stream():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    kw = loader_seeding(seed=3, rank=0)
    iter(torch.utils.data.DataLoader(list(range(4)), **kw))  # draws the workers' base seed
    assert torch.equal(torch.rand(1), expected)
