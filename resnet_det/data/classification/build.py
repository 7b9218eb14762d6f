"""Classification loaders, and the builders that read the config (the one place they do).

The training stream is the detection one (resnet_det.data.samplers): position p of the
infinite stream holds an image of epoch p // N, shuffled by (seed, epoch), augmented with a
seed derived from (seed, p); rank r takes positions r, r + world_size, ... So the batches do
not depend on the number of workers or processes, and a run resumed at iteration k sees
exactly the batches an uninterrupted run sees (docs/reproducibility.md).
"""

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch

from ...config import ConfigError, check_batch_divisible
from ...utils.comm import get_world_size
from ...utils.errors import DataError
from ...utils.seeding import resolve_seed
from ..catalog import DatasetCatalog, common_thing_classes
from ..device_decode import DeviceDecodingLoader, resolve_decode_device
from ..io import check_on_bad_image
from ..samplers import (
    InferenceSampler,
    TrainBatchSampler,
    TrainingSampler,
    WorkerSeeder,
    loader_seeding,
    resolve_dist,
)
from ..serialized import SerializedDicts, concat
from ..skips import SkipCountingLoader, SkipCounts
from .dataset import (
    ClassificationBatchFinisher,
    ClassificationTestDataset,
    ClassificationTrainDataset,
    collate_classification,
)
from .transforms import TEST_MODES, build_classification_transform

__all__ = [
    "classification_train_loader",
    "classification_test_loader",
    "get_classification_dicts",
    "build_classification_train_loader",
    "build_classification_test_loader",
]

logger = logging.getLogger(__name__)


def classification_train_loader(
    dicts: List[Dict[str, Any]],
    *,
    transform: Callable,
    global_batch_size: int,
    seed: int,
    num_workers: int = 0,
    start_iter: int = 0,
    on_bad_image: str = "stop",
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    decode_device: Optional[torch.device] = None,
) -> Iterable:
    """An infinite loader of training batches; batch i on rank r is a function of (seed, i, r).

    With ``decode_device`` the workers read the files and draw each sample's augmentation,
    and the batches are decoded and augmented on that device in the main process
    (resnet_det.data.device_decode): a DeviceDecodingLoader over the DataLoader, whose batches
    are those of the decoded path, on the device.

    Args:
        dicts: classification dataset dicts.
        transform: the training transform (build_classification_transform(is_train=True)).
        global_batch_size: images per iteration summed over processes.
        seed: the run's resolved seed, identical on all ranks.
        num_workers: loader worker processes (0 = main process).
        start_iter: first iteration (resume): batches 0..start_iter-1 are skipped.
        on_bad_image: "stop" or "skip".
        rank, world_size: default from torch.distributed.
        decode_device: None (the workers decode) or the device to decode batches on.
    """
    rank, world_size = resolve_dist(rank, world_size)
    if global_batch_size <= 0 or global_batch_size % world_size:
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH ({global_batch_size}) must be a positive "
            f"multiple of the world size ({world_size})"
        )
    dataset = ClassificationTrainDataset(
        dicts, transform=transform, on_bad_image=on_bad_image, decode_device=decode_device
    )
    sampler = TrainingSampler(len(dicts), seed=seed, rank=rank, world_size=world_size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=TrainBatchSampler(
            sampler, global_batch_size // world_size, start_iter=start_iter
        ),
        num_workers=num_workers,
        collate_fn=collate_classification,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        # One thread per worker: decoding and resizing already run in parallel across
        # workers, more would oversubscribe the cores.
        **loader_seeding(seed, rank, num_threads=1),
    )
    if decode_device is None:
        return loader
    finish = ClassificationBatchFinisher(transform, on_bad_image)
    return DeviceDecodingLoader(loader, finish, device=decode_device)


def classification_test_loader(
    dicts: List[Dict[str, Any]],
    *,
    transform: Callable,
    batch_size: int = 1,
    num_workers: int = 0,
    on_bad_image: str = "stop",
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> torch.utils.data.DataLoader:
    """The dataset once, in order; with several processes each takes a contiguous shard
    (InferenceSampler)."""
    dataset = ClassificationTestDataset(dicts, transform=transform, on_bad_image=on_bad_image)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=InferenceSampler(len(dicts), rank=rank, world_size=world_size),
        num_workers=num_workers,
        collate_fn=collate_classification,
        worker_init_fn=WorkerSeeder(num_threads=1),
    )


def get_classification_dicts(
    names: Sequence[str], *, on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None
) -> Union[List[Dict[str, Any]], SerializedDicts]:
    """The concatenated dicts of registered classification datasets; ``on_bad_image`` and
    ``skip_counts`` go to the readers that take them (a folder scan skipping an unreadable
    class folder, counting it). Sets read as SerializedDicts stay one (views of their buffers,
    which the datasets index as they are)."""
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ConfigError("no dataset given (DATASETS.TRAIN / DATASETS.TEST is empty)")
    parts = []
    for name in names:
        dicts = DatasetCatalog.get(name, on_bad_image=on_bad_image, skip_counts=skip_counts)
        if not dicts:
            raise DataError(f"dataset {name!r} is empty")
        if "label" not in dicts[0]:
            raise DataError(
                f"dataset {name!r} is not a classification dataset (no 'label' in its dicts)"
            )
        parts.append(dicts)
    if all(isinstance(p, SerializedDicts) for p in parts):
        return concat(parts)
    return [d for p in parts for d in p]


def _check_labels(dicts: List[Dict[str, Any]], num_classes: int, names: Sequence[str]) -> None:
    top = max(int(d["label"]) for d in dicts)
    if top >= num_classes:
        raise ConfigError(
            f"datasets {list(names)} have label {top} but "
            f"MODEL.CLASSIFIER.NUM_CLASSES is {num_classes}"
        )


def _transform_kwargs(cfg) -> Dict[str, Any]:
    c = cfg.INPUT.CLS
    if c.CROP_SIZE < 1:
        raise ConfigError(f"INPUT.CLS.CROP_SIZE must be >= 1, got {c.CROP_SIZE}")
    if len(c.SCALE_RANGE) not in (0, 2) or (
        c.SCALE_RANGE and not 0 < c.SCALE_RANGE[0] <= c.SCALE_RANGE[1]
    ):
        raise ConfigError(
            f"INPUT.CLS.SCALE_RANGE must be [] or [min, max] with "
            f"0 < min <= max, got {list(c.SCALE_RANGE)}"
        )
    if c.PAD < 0 or c.PCA_LIGHTING < 0 or c.TEST_RESIZE < 0:
        raise ConfigError(
            f"INPUT.CLS.PAD ({c.PAD}), PCA_LIGHTING ({c.PCA_LIGHTING}) and "
            f"TEST_RESIZE ({c.TEST_RESIZE}) must be >= 0"
        )
    if c.TEST_RESIZE and c.TEST_RESIZE < c.CROP_SIZE:
        raise ConfigError(
            f"INPUT.CLS.TEST_RESIZE ({c.TEST_RESIZE}) is smaller than "
            f"INPUT.CLS.CROP_SIZE ({c.CROP_SIZE})"
        )
    if len(c.PIXEL_MEAN) != 3 or len(c.PIXEL_STD) != 3 or any(x <= 0 for x in c.PIXEL_STD):
        raise ConfigError(
            f"INPUT.CLS.PIXEL_MEAN / PIXEL_STD need 3 values, std > 0; got "
            f"{list(c.PIXEL_MEAN)} / {list(c.PIXEL_STD)}"
        )
    bad = [m for m in cfg.TEST.CLS_MODES if m not in TEST_MODES]
    if bad:
        raise ConfigError(f"TEST.CLS_MODES: unknown mode(s) {bad}; choose from {TEST_MODES}")
    sizes = list(cfg.TEST.CLS_MULTISCALE_SIZES)
    if not sizes or any(x < 1 for x in sizes):
        raise ConfigError(f"TEST.CLS_MULTISCALE_SIZES must be positive sides, got {sizes}")
    return dict(
        crop_size=c.CROP_SIZE,
        scale_range=list(c.SCALE_RANGE),
        pad=c.PAD,
        flip_prob=cfg.INPUT.RANDOM_FLIP_PROB,
        pca_lighting=c.PCA_LIGHTING,
        test_resize=c.TEST_RESIZE,
        pixel_mean=list(c.PIXEL_MEAN),
        pixel_std=list(c.PIXEL_STD),
        multiscale_sizes=sizes,
    )


def build_classification_train_loader(cfg, start_iter: int = 0) -> SkipCountingLoader:
    """Training loader of DATASETS.TRAIN with the INPUT.CLS recipe (decoded on
    INPUT.DECODE_DEVICE when set), wrapped in a SkipCountingLoader holding what
    DATALOADER.ON_BAD_IMAGE left out.

    The data order and augmentation derive from the resolved SEED (SEED < 0 is drawn and
    recorded in ``cfg.SEED``, as build_detection_train_loader does).
    """
    on_bad_image = check_on_bad_image(
        cfg.DATALOADER.ON_BAD_IMAGE, "DATALOADER.ON_BAD_IMAGE", ConfigError
    )
    names = list(cfg.DATASETS.TRAIN)
    read_counts = SkipCounts()
    dicts = get_classification_dicts(names, on_bad_image=on_bad_image, skip_counts=read_counts)
    _check_labels(dicts, cfg.MODEL.CLASSIFIER.NUM_CLASSES, names)
    check_batch_divisible(cfg, get_world_size())
    drawn = cfg.SEED < 0
    seed = resolve_seed(cfg)
    if drawn:
        logger.warning("SEED < 0: drew seed %d for the training data (now in cfg.SEED)", seed)
    return SkipCountingLoader(
        classification_train_loader(
            dicts,
            transform=build_classification_transform(is_train=True, **_transform_kwargs(cfg)),
            global_batch_size=cfg.SOLVER.IMS_PER_BATCH,
            seed=seed,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
            start_iter=start_iter,
            on_bad_image=on_bad_image,
            decode_device=resolve_decode_device(cfg.INPUT.DECODE_DEVICE),
        ),
        read_counts,
    )


def build_classification_test_loader(
    cfg, dataset_name: str, mode: str = "center"
) -> torch.utils.data.DataLoader:
    """Test loader of one dataset for a TEST.CLS_MODES mode."""
    if mode not in TEST_MODES:
        raise ConfigError(f"TEST.CLS_MODES: unknown mode {mode!r}; choose from {TEST_MODES}")
    on_bad_image = check_on_bad_image(
        cfg.DATALOADER.ON_BAD_IMAGE, "DATALOADER.ON_BAD_IMAGE", ConfigError
    )
    dicts = get_classification_dicts([dataset_name], on_bad_image=on_bad_image)
    _check_labels(dicts, cfg.MODEL.CLASSIFIER.NUM_CLASSES, [dataset_name])
    if cfg.DATASETS.TRAIN:
        common_thing_classes(list(cfg.DATASETS.TRAIN) + [dataset_name])
    # Multi-scale images differ in size, so they go one at a time.
    batch_size = 1 if mode == "multiscale" else cfg.TEST.IMS_PER_BATCH
    return classification_test_loader(
        dicts,
        transform=build_classification_transform(
            is_train=False, test_mode=mode, **_transform_kwargs(cfg)
        ),
        batch_size=batch_size,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        on_bad_image=on_bad_image,
    )
