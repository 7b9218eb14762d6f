"""Detection data loaders: dataset dicts + mapper + sampler -> torch DataLoader.

The cfg-reading builders (``build_detection_train_loader``, ``build_detection_test_loader``)
only turn config keys into the keyword arguments of ``build_train_loader`` /
``build_test_loader`` and check them. A batch is a list of mapped dicts (no collation: images
have different sizes; the detector pads them).
"""
import logging
import pickle
import random
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .catalog import DatasetCatalog, MetadataCatalog
from .mapper import DatasetMapper
from ..utils.dist import get_dist_info
from ..utils.seeding import derive_seed
from .samplers import (InferenceSampler, TrainBatchSampler, TrainingSampler, _resolve_dist)

__all__ = [
    "get_detection_dataset_dicts", "filter_images_without_annotations", "MapDataset",
    "trivial_batch_collator", "build_train_loader", "build_test_loader",
    "build_detection_train_loader", "build_detection_test_loader",
]

logger = logging.getLogger(__name__)


def filter_images_without_annotations(dataset_dicts: List[dict]) -> List[dict]:
    """Keep images with at least one non-crowd annotation (the others give no training
    signal to Faster R-CNN), logging how many were removed."""
    kept = [d for d in dataset_dicts
            if any(a.get("iscrowd", 0) == 0 for a in d.get("annotations", []))]
    removed = len(dataset_dicts) - len(kept)
    if removed:
        logger.info("Removed %d images without (non-crowd) annotations; %d left.", removed,
                    len(kept))
    return kept


def get_detection_dataset_dicts(names: Sequence[str], filter_empty: bool = True) -> List[dict]:
    """Concatenate the registered datasets ``names``.

    Raises:
        ValueError: no names; a dataset is empty; the datasets' thing_classes differ (their
            category ids would mean different things).
        KeyError: a name is not registered.
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ValueError("get_detection_dataset_dicts: no dataset names given "
                         "(DATASETS.TRAIN / DATASETS.TEST is empty)")
    all_dicts, classes = [], None
    for name in names:
        dicts = DatasetCatalog.get(name)
        if not dicts:
            raise ValueError(f"Dataset {name!r} is empty")
        this = MetadataCatalog.get(name).get("thing_classes")
        if this is not None:
            if classes is not None and list(this) != list(classes[1]):
                raise ValueError(f"Datasets {classes[0]!r} and {name!r} have different "
                                 f"thing_classes: {list(classes[1])} vs {list(this)}")
            classes = classes or (name, this)
        all_dicts.extend(dicts)
    if filter_empty:
        all_dicts = filter_images_without_annotations(all_dicts)
        if not all_dicts:
            raise ValueError(f"No image with annotations left in {list(names)}")
    return all_dicts


class _SerializedList:
    """The dataset dicts pickled into one numpy buffer.

    Python lists of dicts are copied page by page into every forked loader worker as their
    reference counts are touched; one flat buffer stays shared (detectron2 does the same).
    The pickles are our own, made in this process from parsed annotations.
    """

    def __init__(self, items: List[dict]) -> None:
        blobs = [np.frombuffer(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
                 for x in items]
        self._addr = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._addr)

    def __getitem__(self, idx: int) -> dict:
        start = 0 if idx == 0 else int(self._addr[idx - 1])
        return pickle.loads(memoryview(self._data[start:int(self._addr[idx])]))


class MapDataset(Dataset):
    """Applies ``mapper`` to dataset dicts on access.

    Items are either an index (test) or ``(index, seed)`` (training, from TrainBatchSampler);
    the seed drives the sample's augmentation. In training, when the mapper returns None (a
    skipped bad image) a replacement index from the same aspect group is drawn from the seed,
    so the result is still a function of the seed.

    Args:
        dataset: list of dataset dicts.
        mapper: callable(dict, seed=None) -> dict or None.
        group_ids: aspect group per index (replacements stay within the group), or None.
        serialize: keep the dicts in one pickled buffer (cheaper with forked workers).
        max_retries: replacements tried before giving up.
    """

    def __init__(self, dataset: List[dict], mapper: Callable, *,
                 group_ids: Optional[Sequence[int]] = None, serialize: bool = True,
                 max_retries: int = 50) -> None:
        self._dataset = _SerializedList(dataset) if serialize else list(dataset)
        self.mapper = mapper
        self.max_retries = max_retries
        self._groups = None
        if group_ids is not None:
            self._groups = {}
            for i, g in enumerate(group_ids):
                self._groups.setdefault(g, []).append(i)
            self._group_ids = list(group_ids)

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, item):
        if not isinstance(item, tuple):
            return self.mapper(self._dataset[item])
        index, seed = item
        first = index
        for attempt in range(self.max_retries + 1):
            out = self.mapper(self._dataset[index], seed=seed)
            if out is not None:
                return out
            rng = random.Random(derive_seed(seed, attempt))
            pool = (self._groups[self._group_ids[first]] if self._groups is not None
                    else range(len(self._dataset)))
            index = pool[rng.randrange(len(pool))]
            seed = derive_seed(seed, attempt, 1)
        raise RuntimeError(f"MapDataset: {self.max_retries + 1} images in a row could not be "
                           f"read (first: {self._dataset[first]['file_name']}); see the "
                           f"warnings above")


def trivial_batch_collator(batch: List) -> List:
    """A batch is the list of mapped dicts; test-time None entries (skipped images) removed."""
    return [x for x in batch if x is not None]


def _worker_init_fn(worker_id: int) -> None:
    # torch seeds each worker with (loader generator seed + worker_id); make random / numpy
    # follow, for any third-party randomness. Our augmentation uses per-sample seeds.
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


def _aspect_group_ids(dataset: List[dict]) -> List[int]:
    try:
        return [int(d["width"] > d["height"]) for d in dataset]
    except KeyError as e:
        raise ValueError(f"aspect-ratio grouping needs 'height' and 'width' in every dataset "
                         f"dict; missing {e}") from e


def build_train_loader(dataset: List[dict], *, mapper: Callable, total_batch_size: int,
                       seed: int, aspect_ratio_grouping: bool = True, num_workers: int = 0,
                       start_iter: int = 0, shuffle: bool = True,
                       rank: Optional[int] = None, world_size: Optional[int] = None
                       ) -> DataLoader:
    """Infinite training loader yielding lists of ``total_batch_size / world_size`` mapped
    dicts; batch i on rank r is a function of (seed, i, r) only.

    Args:
        dataset: dataset dicts (already filtered).
        mapper: callable(dict, seed) -> dict or None (e.g. a DatasetMapper).
        total_batch_size: images per iteration summed over ranks.
        seed: stream and augmentation seed, identical on all ranks.
        aspect_ratio_grouping: batch landscape and portrait images separately.
        num_workers: loader worker processes (0 = main process).
        start_iter: first iteration (resume): batches 0..start_iter-1 are skipped.
        shuffle: shuffle each epoch.
        rank, world_size: default from torch.distributed.
    """
    rank, world_size = _resolve_dist(rank, world_size)
    if total_batch_size <= 0 or total_batch_size % world_size:
        raise ValueError(f"total batch size {total_batch_size} must be a positive multiple of "
                         f"the number of processes {world_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    group_ids = _aspect_group_ids(dataset) if aspect_ratio_grouping else None
    sampler = TrainingSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank,
                              world_size=world_size)
    batch_sampler = TrainBatchSampler(sampler, total_batch_size // world_size,
                                      group_ids=group_ids, start_iter=start_iter)
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, rank, 0x3A7))
    return DataLoader(
        MapDataset(dataset, mapper, group_ids=group_ids),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=_worker_init_fn,
        generator=generator,
    )


class _TestLoader:
    """Wraps the test DataLoader to drop batches left empty by skipped images; len() is the
    number of batches before skipping."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.dataset = loader.dataset

    def __iter__(self):
        for batch in self.loader:
            if batch:
                yield batch

    def __len__(self) -> int:
        return len(self.loader)


def build_test_loader(dataset: List[dict], *, mapper: Callable, batch_size: int = 1,
                      num_workers: int = 0, rank: Optional[int] = None,
                      world_size: Optional[int] = None) -> _TestLoader:
    """Finite loader over this rank's contiguous shard of ``dataset``, in order.

    Args:
        dataset: dataset dicts (not filtered: every image is evaluated).
        mapper: callable(dict) -> dict or None (None = skipped bad image, dropped).
        batch_size: images per batch on this rank.
        num_workers: loader worker processes.
        rank, world_size: default from torch.distributed.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sampler = InferenceSampler(len(dataset), rank=rank, world_size=world_size)
    loader = DataLoader(
        MapDataset(dataset, mapper),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=_worker_init_fn,
    )
    return _TestLoader(loader)


def _resolve_seed(seed: int) -> int:
    if seed >= 0:
        return seed
    _, world_size = get_dist_info()
    if world_size > 1:
        raise ValueError("SEED is negative with several processes: the engine must draw one "
                         "seed and set cfg.SEED on every rank before building the loader")
    seed = int(time.time() * 1e6) % (2 ** 31)
    logger.warning("SEED < 0: using seed %d for the training data order", seed)
    return seed


def build_detection_train_loader(cfg, start_iter: int = 0, *,
                                 mapper: Optional[Callable] = None) -> DataLoader:
    """Training loader for cfg.DATASETS.TRAIN (reads DATALOADER.*, SOLVER.IMS_PER_BATCH,
    SEED, INPUT.* through DatasetMapper.from_config)."""
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        raise ValueError(f"DATALOADER.SAMPLER_TRAIN={cfg.DATALOADER.SAMPLER_TRAIN!r} is not "
                         f"supported; use 'TrainingSampler'")
    _, world_size = get_dist_info()
    if cfg.SOLVER.IMS_PER_BATCH % world_size:
        raise ValueError(f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not divisible by "
                         f"the number of processes {world_size}")
    dataset = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    if mapper is None:
        mapper = DatasetMapper.from_config(cfg, is_train=True)
    return build_train_loader(
        dataset, mapper=mapper, total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
        seed=_resolve_seed(cfg.SEED),
        aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        num_workers=cfg.DATALOADER.NUM_WORKERS, start_iter=start_iter,
    )


def build_detection_test_loader(cfg, dataset_name: str, *,
                                mapper: Optional[Callable] = None) -> _TestLoader:
    """Test loader for one registered dataset (reads TEST.IMS_PER_BATCH, DATALOADER.NUM_WORKERS,
    INPUT.* through DatasetMapper.from_config)."""
    dataset = get_detection_dataset_dicts([dataset_name], filter_empty=False)
    if mapper is None:
        mapper = DatasetMapper.from_config(cfg, is_train=False)
    return build_test_loader(dataset, mapper=mapper, batch_size=cfg.TEST.IMS_PER_BATCH,
                             num_workers=cfg.DATALOADER.NUM_WORKERS)
