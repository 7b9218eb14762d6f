"""Detection data loaders: dataset dicts + mapper + sampler -> torch DataLoader.

The cfg-reading builders (``build_detection_train_loader``, ``build_detection_test_loader``)
only turn config keys into the keyword arguments of ``build_train_loader`` /
``build_test_loader`` and check them. A batch is a list of mapped dicts (no collation: images
have different sizes; the detector pads them).
"""

import logging
from typing import Callable, Iterable, List, Optional, Sequence, Union

import numpy as np
from torch.utils.data import DataLoader

from ...config import ConfigError, check_batch_divisible
from ...utils.comm import get_world_size
from ...utils.errors import DataError
from ...utils.seeding import resolve_seed
from ..catalog import DatasetCatalog, MetadataCatalog, common_thing_classes
from ..device_decode import DeviceDecodingLoader
from ..io import check_on_bad_image
from ..samplers import (
    InferenceSampler,
    TrainBatchSampler,
    TrainingSampler,
    WorkerSeeder,
    loader_seeding,
    resolve_dist,
)
from ..serialized import SerializedDicts, concat, is_object
from ..skips import FaultPolicy, SkipCountingLoader, SkipCounts, SkippedImage
from .dataset import MapDataset
from .mapper import DatasetMapper

__all__ = [
    "get_detection_dataset_dicts",
    "filter_images_without_annotations",
    "require_masks",
    "TestLoader",
    "MappedBatch",
    "trivial_batch_collator",
    "build_train_loader",
    "build_test_loader",
    "build_detection_train_loader",
    "build_detection_test_loader",
]

logger = logging.getLogger(__name__)


Dicts = Union[List[dict], SerializedDicts]


def _keep(dataset_dicts: Dicts, keep: Sequence[bool]) -> Dicts:
    """The dicts where ``keep`` is True: a view sharing the buffer for a SerializedDicts."""
    if isinstance(dataset_dicts, SerializedDicts):
        return dataset_dicts.subset(np.flatnonzero(np.asarray(keep, dtype=bool)))
    return [d for d, k in zip(dataset_dicts, keep) if k]


def _objects_per_image(dataset_dicts: Dicts) -> np.ndarray:
    """The number of objects (non-crowd annotations) of each image."""
    if isinstance(dataset_dicts, SerializedDicts):
        return dataset_dicts.column("num_objects")
    return np.array(
        [sum(map(is_object, d.get("annotations", ()))) for d in dataset_dicts], dtype=np.int64
    )


def filter_images_without_annotations(dataset_dicts: Dicts) -> Dicts:
    """Keep images with at least one non-crowd annotation (the others give no training
    signal to Faster R-CNN), logging how many were removed. A SerializedDicts is filtered
    by its columns, without parsing its records, into a view of the same buffer."""
    kept = _keep(dataset_dicts, _objects_per_image(dataset_dicts) > 0)
    removed = len(dataset_dicts) - len(kept)
    if removed:
        logger.info(
            "Removed %d images without (non-crowd) annotations; %d left.", removed, len(kept)
        )
    return kept


def require_masks(
    dataset_dicts: Dicts,
    name: str,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> Dicts:
    """The images of dataset ``name`` whose every non-crowd object has a "segmentation",
    for Mask R-CNN training (MODEL.MASK_ON; crowd regions are not trained on).

    An object without a mask stops under on_bad_image "stop" (DataError naming the dataset's
    file, the image id and the annotation id); under "skip" its image is left out and counted
    as "missing mask" (the object left as background would teach the box and mask heads that
    it is not one). A dataset with no mask at all always stops: its reader gives none (VOC xml
    has no instance masks).
    """
    meta = MetadataCatalog.get(name)
    source = meta.get("json_file") or meta.get("dirname") or f"dataset {name!r}"
    if isinstance(dataset_dicts, SerializedDicts):
        num_objects = dataset_dicts.column("num_objects")
        num_unmasked = dataset_dicts.column("num_unmasked")
    else:
        num_objects = _objects_per_image(dataset_dicts)
        num_unmasked = np.array(
            [
                sum(
                    is_object(a) and a.get("segmentation") is None for a in d.get("annotations", ())
                )
                for d in dataset_dicts
            ],
            dtype=np.int64,
        )
    if num_objects.sum() and num_unmasked.sum() == num_objects.sum():
        raise DataError(
            f"{source}: dataset {name!r} has no instance masks (no annotation has "
            f"a 'segmentation'), but MODEL.MASK_ON trains masks; train Mask R-CNN "
            f"on a set with masks (COCO json polygons or RLE: docs/datasets.md), or "
            f"set MODEL.MASK_ON False"
        )
    policy = FaultPolicy(source, on_bad_image, skip_counts)
    for k in np.flatnonzero(num_unmasked > 0).tolist():
        d = dataset_dicts[k]
        i, a = next(
            (i, a)
            for i, a in enumerate(d.get("annotations", ()))
            if is_object(a) and a.get("segmentation") is None
        )
        what = f"annotation id {a['id']}" if "id" in a else f"annotation {i} (bbox {a['bbox']})"
        policy.image(
            "missing mask",
            f"{what} of image id {d.get('image_id')} "
            f"({d.get('file_name')}) has no 'segmentation', which MODEL.MASK_ON "
            f"needs for every non-crowd object",
            image_id=d.get("image_id"),
            fix="add its mask or remove the annotation",
        )
    kept = _keep(dataset_dicts, num_unmasked == 0)
    policy.finish(len(kept))
    return kept


def get_detection_dataset_dicts(
    names: Sequence[str],
    filter_empty: bool = True,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
    mask_on: bool = False,
) -> Dicts:
    """Concatenate the registered datasets ``names``; a SerializedDicts if every one is
    (views of their buffers, shared between the processes that map them), else a list.

    Args:
        names: registered dataset names.
        filter_empty: drop images without (non-crowd) annotations.
        on_bad_image: passed to the readers that take it (the built-in ones do).
        skip_counts: what the readers left out is added here (readers that take it).
        mask_on: keep only images whose objects all have masks (:func:`require_masks`).

    Raises:
        ConfigError: no names (DATASETS.TRAIN / DATASETS.TEST is empty).
        DataError: a dataset is empty; the datasets' thing_classes differ (their category ids
            would mean different things).
        UserKeyError: a name is not registered.
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ConfigError(
            "get_detection_dataset_dicts: no dataset names given "
            "(DATASETS.TRAIN / DATASETS.TEST is empty)"
        )
    parts = []
    for name in names:
        dicts = DatasetCatalog.get(name, on_bad_image=on_bad_image, skip_counts=skip_counts)
        if not dicts:
            raise DataError(f"Dataset {name!r} is empty")
        if mask_on:
            dicts = require_masks(dicts, name, on_bad_image=on_bad_image, skip_counts=skip_counts)
        parts.append(dicts)
    if all(isinstance(p, SerializedDicts) for p in parts):
        all_dicts: Dicts = concat(parts)
    else:
        all_dicts = [d for p in parts for d in p]
    # After loading: a COCO json records its classes in the metadata when it is read.
    common_thing_classes(names)
    if filter_empty:
        all_dicts = filter_images_without_annotations(all_dicts)
        if not all_dicts:
            raise DataError(f"No image with annotations left in {list(names)}")
    return all_dicts


class MappedBatch(list):
    """A batch: the list of mapped dicts, with ``skipped``, the SkippedImage entries of the
    bad images left out while it was made (a list subclass: it pickles with its attribute
    from loader workers, and the detector takes it as the list it is)."""

    def __init__(self, items: Iterable = (), skipped: Iterable[SkippedImage] = ()) -> None:
        super().__init__(items)
        self.skipped: List[SkippedImage] = list(skipped)


def trivial_batch_collator(batch: List) -> MappedBatch:
    """The mapped dicts as a MappedBatch; skipped images (test time: SkippedImage or None in
    place of a dict; training: the "skipped" list of a replacement) go to ``skipped``."""
    kept, skipped = [], []
    for x in batch:
        if x is None:
            skipped.append(SkippedImage("other", ""))
        elif isinstance(x, SkippedImage):
            skipped.append(x)
        else:
            skipped.extend(x.pop("skipped", ()))
            kept.append(x)
    return MappedBatch(kept, skipped)


def _aspect_group_ids(dataset: Dicts) -> List[int]:
    if isinstance(dataset, SerializedDicts):
        height, width = dataset.column("height"), dataset.column("width")
        if (height < 0).any() or (width < 0).any():
            missing = "'height'" if (height < 0).any() else "'width'"
            raise DataError(
                f"aspect-ratio grouping needs 'height' and 'width' in every dataset dict; "
                f"missing {missing}"
            )
        return (width > height).astype(int).tolist()
    try:
        return [int(d["width"] > d["height"]) for d in dataset]
    except KeyError as e:
        raise DataError(
            f"aspect-ratio grouping needs 'height' and 'width' in every dataset dict; missing {e}"
        ) from e


def build_train_loader(
    dataset: List[dict],
    *,
    mapper: Callable,
    total_batch_size: int,
    seed: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    start_iter: int = 0,
    shuffle: bool = True,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> Iterable:
    """Infinite training loader yielding lists of ``total_batch_size / world_size`` mapped
    dicts; batch i on rank r is a function of (seed, i, r) only. A DataLoader, or with a
    mapper that decodes on a device (DatasetMapper's decode_device) a DeviceDecodingLoader
    over one.

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
    rank, world_size = resolve_dist(rank, world_size)
    if total_batch_size <= 0 or total_batch_size % world_size:
        raise ValueError(
            f"total batch size {total_batch_size} must be a positive multiple of "
            f"the number of processes {world_size}"
        )
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    group_ids = _aspect_group_ids(dataset) if aspect_ratio_grouping else None
    sampler = TrainingSampler(
        len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
    )
    batch_sampler = TrainBatchSampler(
        sampler, total_batch_size // world_size, group_ids=group_ids, start_iter=start_iter
    )
    loader = DataLoader(
        MapDataset(dataset, mapper, group_ids=group_ids),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        **loader_seeding(seed, rank),
    )
    return _on_device(loader, mapper)


def _on_device(loader: DataLoader, mapper: Callable):
    """``loader`` itself, or, for a mapper that leaves decoding to a device (DatasetMapper with
    decode_device), a DeviceDecodingLoader finishing its batches there."""
    finisher = getattr(mapper, "batch_finisher", lambda: None)()
    if finisher is None:
        return loader
    return DeviceDecodingLoader(loader, finisher, device=mapper.decode_device)


class TestLoader:
    """Wraps the test DataLoader to drop batches left empty by skipped images; len() is the
    number of batches before skipping. After each pass over the data, ``skip_counts`` holds
    the images this process left out, and one line logs them.

    Args:
        loader: the DataLoader.
        name: the dataset's name, for the log line.
    """

    def __init__(self, loader: DataLoader, name: str = "the test set") -> None:
        self.loader = loader
        self.dataset = loader.dataset
        self.name = name
        self.skip_counts = SkipCounts()

    def __iter__(self):
        counts = SkipCounts()
        for batch in self.loader:
            for s in getattr(batch, "skipped", ()):
                counts.add_image(s.reason)
            if batch:
                yield batch
        self.skip_counts = counts
        if counts:
            logger.warning(
                "Evaluating %s: %s (DATALOADER.ON_BAD_IMAGE=skip)", self.name, counts.summary()
            )

    def __len__(self) -> int:
        return len(self.loader)


def build_test_loader(
    dataset: List[dict],
    *,
    mapper: Callable,
    batch_size: int = 1,
    num_workers: int = 0,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    name: str = "the test set",
) -> "TestLoader":
    """Finite loader over this rank's contiguous shard of ``dataset``, in order.

    Args:
        dataset: dataset dicts (not filtered: every image is evaluated).
        mapper: callable(dict) -> dict, or a SkippedImage / None for a bad image left out.
        batch_size: images per batch on this rank.
        num_workers: loader worker processes.
        rank, world_size: default from torch.distributed.
        name: the dataset's name, for the log line of skipped images.
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
        # No run seed: evaluation has no random augmentation, and it runs under rng_preserved
        # (docs/reproducibility.md), so what it draws from process-wide streams (the workers'
        # base seed) does not reach training.
        worker_init_fn=WorkerSeeder(),
    )
    return TestLoader(_on_device(loader, mapper), name)


def build_detection_train_loader(
    cfg, start_iter: int = 0, *, mapper: Optional[Callable] = None
) -> SkipCountingLoader:
    """Training loader for cfg.DATASETS.TRAIN (reads DATALOADER.*, SOLVER.IMS_PER_BATCH,
    SEED, INPUT.* through DatasetMapper.from_config); with MODEL.MASK_ON only images whose
    objects all have masks (require_masks), and the mapper adds them.

    The data order and augmentation derive from the resolved SEED: in a run, default_setup has
    already replaced SEED < 0 by a drawn seed; called directly with SEED < 0, the seed is
    drawn here and recorded in ``cfg.SEED`` (docs/reproducibility.md). The DataLoader comes
    wrapped in a SkipCountingLoader holding what DATALOADER.ON_BAD_IMAGE left out.
    """
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        raise ConfigError(
            f"DATALOADER.SAMPLER_TRAIN={cfg.DATALOADER.SAMPLER_TRAIN!r} is not "
            f"supported; use 'TrainingSampler'"
        )
    on_bad_image = check_on_bad_image(
        cfg.DATALOADER.ON_BAD_IMAGE, "DATALOADER.ON_BAD_IMAGE", ConfigError
    )
    check_batch_divisible(cfg, get_world_size())
    read_counts = SkipCounts()
    dataset = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        on_bad_image=on_bad_image,
        skip_counts=read_counts,
        mask_on=cfg.MODEL.MASK_ON,
    )
    if mapper is None:
        mapper = DatasetMapper.from_config(cfg, is_train=True)
    drawn = cfg.SEED < 0
    seed = resolve_seed(cfg)
    if drawn:
        logger.warning("SEED < 0: drew seed %d for the training data (now in cfg.SEED)", seed)
    return SkipCountingLoader(
        build_train_loader(
            dataset,
            mapper=mapper,
            total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
            seed=seed,
            aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
            start_iter=start_iter,
        ),
        read_counts,
    )


def build_detection_test_loader(
    cfg, dataset_name: str, *, mapper: Optional[Callable] = None
) -> "TestLoader":
    """Test loader for one registered dataset (reads TEST.IMS_PER_BATCH, DATALOADER.NUM_WORKERS,
    INPUT.* through DatasetMapper.from_config)."""
    on_bad_image = check_on_bad_image(
        cfg.DATALOADER.ON_BAD_IMAGE, "DATALOADER.ON_BAD_IMAGE", ConfigError
    )
    dataset = get_detection_dataset_dicts(
        [dataset_name], filter_empty=False, on_bad_image=on_bad_image
    )
    if mapper is None:
        mapper = DatasetMapper.from_config(cfg, is_train=False)
    return build_test_loader(
        dataset,
        mapper=mapper,
        batch_size=cfg.TEST.IMS_PER_BATCH,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        name=dataset_name,
    )
