"""Image classification data: transforms, datasets, loaders and dataset registration.

Classification dataset dicts (the counterpart of the detection dicts in docs/internals.md):

    {"image_id": int | str, "label": int (0-based),
     and either "file_name": str (decoded on use) or "image": uint8 ndarray [H, W, 3] (RGB)}

Training inputs follow the recipes of the paper: ImageNet (Sec. 3.4) scale augmentation with
the shorter side sampled in [256, 480], a 224 crop, horizontal flip, mean subtraction and
AlexNet's PCA colour augmentation; CIFAR-10 (Sec. 4.2) 4-pixel zero padding, a 32x32 crop and
a flip. A batch is ``{"image": float Tensor[B, 3, H, W], "label": int64 Tensor[B],
"image_id": list, "skipped": list of paths of images dropped under on_bad_image="skip"}``.

Every random draw of a training sample (which image, which crop, flip, colour shift) is a
function of (seed, position in the infinite stream) alone, so the stream does not depend on
the number of workers or processes and a run resumed at iteration k sees exactly the batches
an uninterrupted run sees (design.md, testing notes).
"""
import logging
import math
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ..utils.dist import get_dist_info
from ..utils.seeding import derive_seed

__all__ = [
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "BadImageError",
    "PCALighting",
    "build_classification_transform",
    "read_image",
    "ClassificationTrainDataset",
    "ClassificationTestDataset",
    "InfiniteBatchSampler",
    "collate_classification",
    "classification_train_loader",
    "classification_test_loader",
    "build_classification_train_loader",
    "build_classification_test_loader",
    "get_classification_dicts",
    "register_classification_reader",
    "register_all_classification",
]

logger = logging.getLogger(__name__)

# AlexNet's PCA of ImageNet RGB pixels (values in [0, 1]); the colour augmentation adds
# eigvec @ (alpha * eigval) with alpha ~ N(0, 0.1) per image (Krizhevsky et al. 2012, Sec. 4.1;
# the paper's Sec. 3.4 "standard color augmentation in [21]").
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

ON_BAD_IMAGE_CHOICES = ("stop", "skip")
TEST_MODES = ("center", "10crop", "multiscale")


class BadImageError(RuntimeError):
    """An image or class folder that cannot be read; the message names its path."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path


class PCALighting(torch.nn.Module):
    """AlexNet-style PCA colour augmentation on a float RGB image in 0-255.

    Args:
        alphastd: std of the per-image Gaussian weights of the principal components
            (0.1 in AlexNet and the paper's recipe); 0 leaves the image unchanged.
        eigval: eigenvalues of the RGB covariance, for pixels in [0, 1].
        eigvec: eigenvectors as the columns of a 3x3 matrix (RGB rows).
        pixel_scale: range of the pixels the eigenvalues refer to, relative to the input
            (255: the image is in 0-255, the PCA was computed in 0-1).
    """

    def __init__(
        self,
        *,
        alphastd: float = 0.1,
        eigval: Sequence[float] = IMAGENET_PCA_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_PCA_EIGVEC,
        pixel_scale: float = 255.0,
    ):
        super().__init__()
        if alphastd < 0:
            raise ValueError(f"PCALighting: alphastd must be >= 0, got {alphastd}")
        self.alphastd = float(alphastd)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32))
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32))
        self.pixel_scale = float(pixel_scale)

    def rgb_shift(self, alpha: torch.Tensor) -> torch.Tensor:
        """The per-channel offset added for component weights ``alpha`` (shape [3])."""
        return self.eigvec @ (alpha * self.eigval) * self.pixel_scale

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.alphastd == 0:
            return img
        if img.shape[-3] != 3:
            raise ValueError(f"PCALighting expects 3 RGB channels, got shape {tuple(img.shape)}")
        alpha = torch.randn(3) * self.alphastd
        return img + self.rgb_shift(alpha).view(3, 1, 1).to(img.dtype)


class _Normalize(torch.nn.Module):
    """uint8 -> float, minus mean, divided by std (per channel, RGB, 0-255 units)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return TF.normalize(img.float(), self.mean, self.std)


class _TenCrop(torch.nn.Module):
    """Resize, then the ten standard views (4 corners + centre, and their flips) stacked."""

    def __init__(self, resize: int, crop: int):
        super().__init__()
        self.resize, self.crop = resize, crop

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        img = TF.resize(img, [self.resize], antialias=True)
        return torch.stack(TF.ten_crop(img, [self.crop, self.crop]))


class _MultiScale(torch.nn.Module):
    """The whole image at each shorter side in ``sizes`` (the paper's fully-convolutional
    test, Sec. 3.4); returns a list of images of different sizes."""

    def __init__(self, sizes: Sequence[int], normalize: torch.nn.Module):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.normalize = normalize

    def forward(self, img: torch.Tensor) -> List[torch.Tensor]:
        return [self.normalize(TF.resize(img, [s], antialias=True)) for s in self.sizes]


def build_classification_transform(
    *,
    is_train: bool,
    crop_size: int,
    scale_range: Sequence[int] = (),
    pad: int = 0,
    flip_prob: float = 0.5,
    pca_lighting: float = 0.0,
    test_resize: int = 0,
    pixel_mean: Sequence[float] = (0.0, 0.0, 0.0),
    pixel_std: Sequence[float] = (1.0, 1.0, 1.0),
    test_mode: str = "center",
    multiscale_sizes: Sequence[int] = (224, 256, 384, 480, 640),
) -> Callable[[torch.Tensor], Any]:
    """The transform from a uint8 RGB Tensor[3, H, W] to the model's input.

    Args:
        is_train: training augmentation (True) or a test view (False).
        crop_size: side of the square crop (224 ImageNet, 32 CIFAR).
        scale_range: (min, max): the shorter side is sampled uniformly in [min, max] before
            the crop (Sec. 3.4: [256, 480]); empty keeps the image size.
        pad: zero padding on every side before the random crop (CIFAR: 4, Sec. 4.2).
        flip_prob: probability of a horizontal flip in training.
        pca_lighting: std of AlexNet's PCA colour augmentation (0 disables).
        test_resize: shorter side before the test crops (0 keeps the image size).
        pixel_mean, pixel_std: per-channel RGB mean and std in 0-255 units.
        test_mode: "center" (Tensor[3, c, c]), "10crop" (Tensor[10, 3, c, c]) or
            "multiscale" (list of Tensor[3, h_s, w_s], one per size).
        multiscale_sizes: shorter sides of the multi-scale test.
    """
    if len(pixel_mean) != 3 or len(pixel_std) != 3:
        raise ValueError(f"pixel_mean/pixel_std need 3 values, got {pixel_mean} / {pixel_std}")
    normalize = _Normalize(pixel_mean, pixel_std)
    if is_train:
        ops: List[torch.nn.Module] = []
        if scale_range:
            if len(scale_range) != 2 or scale_range[0] > scale_range[1]:
                raise ValueError(f"scale_range must be [min, max], got {list(scale_range)}")
            # RandomResize draws the shorter side from [min_size, max_size).
            ops.append(T.RandomResize(int(scale_range[0]), int(scale_range[1]) + 1, antialias=True))
        ops.append(T.RandomCrop(crop_size, padding=pad if pad > 0 else None, pad_if_needed=True))
        if flip_prob > 0:
            ops.append(T.RandomHorizontalFlip(flip_prob))
        ops.append(T.ToDtype(torch.float32, scale=False))
        if pca_lighting > 0:
            ops.append(PCALighting(alphastd=pca_lighting))
        ops.append(T.Normalize([float(m) for m in pixel_mean], [float(s) for s in pixel_std]))
        return T.Compose(ops)
    if test_mode == "center":
        ops = [T.Resize(test_resize, antialias=True)] if test_resize else []
        return T.Compose(ops + [T.CenterCrop(crop_size), normalize])
    if test_mode == "10crop":
        return T.Compose([_TenCrop(test_resize or crop_size, crop_size), normalize])
    if test_mode == "multiscale":
        return _MultiScale(multiscale_sizes, normalize)
    raise ValueError(f"test_mode must be one of {TEST_MODES}, got {test_mode!r}")


def read_image(d: Dict[str, Any]) -> torch.Tensor:
    """The dict's image as a uint8 RGB Tensor[3, H, W]; BadImageError names the file."""
    if "image" in d:
        arr = np.asarray(d["image"])
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise BadImageError(
                str(d.get("image_id")), f"in-memory image must be uint8 HxWx3, got {arr.dtype} {arr.shape}"
            )
        # A copy: in-memory sets are shared, read-only arrays.
        return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)
    path = d["file_name"]
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            # convert() forces a full decode, so truncated/corrupt files fail here, by path.
            img = img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e
    return TF.pil_to_tensor(img)


def _check_on_bad_image(on_bad_image: str) -> None:
    if on_bad_image not in ON_BAD_IMAGE_CHOICES:
        raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE_CHOICES}, got {on_bad_image!r}")


def _read_image_or_skip(d: Dict[str, Any], on_bad_image: str) -> Union[torch.Tensor, Dict[str, Any]]:
    """read_image(d); under on_bad_image="skip" an unreadable image is logged and the item a
    dataset returns in its place, ``{"skipped": path}``, comes back instead."""
    try:
        return read_image(d)
    except BadImageError as e:
        if on_bad_image == "stop":
            raise
        logger.warning("Skipping unreadable image (DATALOADER.ON_BAD_IMAGE=skip): %s", e)
        return {"skipped": e.path}


class ClassificationTrainDataset(torch.utils.data.Dataset):
    """Indexed by the position in an infinite, epoch-wise shuffled stream of samples.

    Position p belongs to epoch p // N; epoch e visits the images in a permutation seeded by
    (seed, e); the augmentation of position p is seeded by (seed, p).

    Args:
        dicts: classification dataset dicts.
        transform: uint8 Tensor[3, H, W] -> model input.
        seed: the run's seed.
        on_bad_image: "stop" raises BadImageError; "skip" logs it and returns None.
    """

    def __init__(self, dicts: List[Dict[str, Any]], *, transform: Callable, seed: int, on_bad_image: str = "stop"):
        if not dicts:
            raise ValueError("ClassificationTrainDataset: the dataset is empty")
        _check_on_bad_image(on_bad_image)
        self.dicts = dicts
        self.transform = transform
        self.seed = int(seed)
        self.on_bad_image = on_bad_image
        self._perm_epoch = -1
        self._perm: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return len(self.dicts)

    def index_at(self, position: int) -> int:
        """Index into ``dicts`` of the stream's sample at ``position``."""
        n = len(self.dicts)
        epoch = position // n
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, -1 - epoch))
            self._perm = torch.randperm(n, generator=g)
            self._perm_epoch = epoch
        return int(self._perm[position % n])

    def __getitem__(self, position: int) -> Optional[Dict[str, Any]]:
        d = self.dicts[self.index_at(position)]
        img = _read_image_or_skip(d, self.on_bad_image)
        if isinstance(img, dict):
            return img
        # Fork the global RNG: torchvision's random transforms draw from it, and forking keeps
        # the draws of this sample independent of what ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, position))
            x = self.transform(img)
        return {"image": x, "label": int(d["label"]), "image_id": d.get("image_id")}


class ClassificationTestDataset(torch.utils.data.Dataset):
    """The dataset in its order, one test view per item (see build_classification_transform)."""

    def __init__(self, dicts: List[Dict[str, Any]], *, transform: Callable, on_bad_image: str = "stop"):
        _check_on_bad_image(on_bad_image)
        self.dicts = dicts
        self.transform = transform
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        d = self.dicts[idx]
        img = _read_image_or_skip(d, self.on_bad_image)
        if isinstance(img, dict):
            return img
        return {"image": self.transform(img), "label": int(d["label"]), "image_id": d.get("image_id")}


class InfiniteBatchSampler:
    """Yields, for iteration it = start_iter, start_iter + 1, ..., this rank's share of the
    global batch: positions it * B + rank * b .. it * B + (rank + 1) * b - 1, with B the global
    batch and b = B / world_size. Stateless, so resuming only needs start_iter."""

    def __init__(self, *, global_batch_size: int, rank: int = 0, world_size: int = 1, start_iter: int = 0):
        if global_batch_size % world_size:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH ({global_batch_size}) must be divisible by the world size ({world_size})"
            )
        self.global_batch_size = global_batch_size
        self.batch_size = global_batch_size // world_size
        self.rank = rank
        self.start_iter = start_iter

    def __iter__(self) -> Iterator[List[int]]:
        it = self.start_iter
        while True:
            first = it * self.global_batch_size + self.rank * self.batch_size
            yield list(range(first, first + self.batch_size))
            it += 1


def collate_classification(items: List[Optional[Dict[str, Any]]]) -> Dict[str, Any]:
    """Stacks images and labels; items skipped as unreadable are listed under "skipped".
    Images of different sizes (the multi-scale test) stay a list."""
    kept = [it for it in items if "skipped" not in it]
    batch: Dict[str, Any] = {"skipped": [it["skipped"] for it in items if "skipped" in it]}
    images = [it["image"] for it in kept]
    if images and all(isinstance(im, torch.Tensor) and im.shape == images[0].shape for im in images):
        batch["image"] = torch.stack(images)
    else:
        batch["image"] = images
    batch["label"] = torch.tensor([it["label"] for it in kept], dtype=torch.int64)
    batch["image_id"] = [it["image_id"] for it in kept]
    return batch


def _worker_init(worker_id: int) -> None:
    # Decoding and resizing already run in parallel across workers; one thread each avoids
    # oversubscribing the cores.
    torch.set_num_threads(1)


def classification_train_loader(
    dicts: List[Dict[str, Any]],
    *,
    transform: Callable,
    global_batch_size: int,
    seed: int,
    num_workers: int = 0,
    start_iter: int = 0,
    on_bad_image: str = "stop",
    rank: int = 0,
    world_size: int = 1,
) -> torch.utils.data.DataLoader:
    """An infinite loader of training batches, deterministic in (seed, iteration, rank)."""
    dataset = ClassificationTrainDataset(dicts, transform=transform, seed=seed, on_bad_image=on_bad_image)
    sampler = InfiniteBatchSampler(
        global_batch_size=global_batch_size, rank=rank, world_size=world_size, start_iter=start_iter
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_classification,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def classification_test_loader(
    dicts: List[Dict[str, Any]],
    *,
    transform: Callable,
    batch_size: int = 1,
    num_workers: int = 0,
    on_bad_image: str = "stop",
    rank: int = 0,
    world_size: int = 1,
) -> torch.utils.data.DataLoader:
    """The dataset once, in order; with several processes each takes a contiguous shard."""
    n = len(dicts)
    per = int(math.ceil(n / world_size))
    shard = list(range(min(n, rank * per), min(n, (rank + 1) * per)))
    dataset = ClassificationTestDataset(dicts, transform=transform, on_bad_image=on_bad_image)
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, shard),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_classification,
        worker_init_fn=_worker_init if num_workers > 0 else None,
    )


# ---------------------------------------------------------------------------------------------
# Dataset registration
# ---------------------------------------------------------------------------------------------
# name -> reader(on_bad_image=...) -> dicts. The catalog's functions take no argument, so the
# loaders below call these readers directly to pass DATALOADER.ON_BAD_IMAGE to the folder
# scan (an unreadable class folder is skipped or raised like a bad image).
_READERS: Dict[str, Callable[..., List[Dict[str, Any]]]] = {}


def datasets_root() -> str:
    """$RESNET_DET_DATASETS, read at call time (default ./datasets)."""
    return os.environ.get("RESNET_DET_DATASETS", "./datasets")


def register_classification_reader(
    name: str, reader: Callable[..., List[Dict[str, Any]]], **metadata: Any
) -> None:
    """Registers ``name`` in DatasetCatalog (with on_bad_image="stop") and here, where the
    loaders pass the configured on_bad_image. ``metadata`` goes to MetadataCatalog, with
    evaluator_type "classification"."""
    from .catalog import DatasetCatalog, MetadataCatalog

    _READERS[name] = reader
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: reader(on_bad_image="stop"))
    meta = {"evaluator_type": "classification", **metadata}
    MetadataCatalog.get(name).set(**meta)


def get_classification_dicts(names: Sequence[str], *, on_bad_image: str = "stop") -> List[Dict[str, Any]]:
    """The concatenated dicts of registered classification datasets."""
    from .catalog import DatasetCatalog

    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("no dataset given (DATASETS.TRAIN / DATASETS.TEST is empty)")
    out: List[Dict[str, Any]] = []
    for name in names:
        if name in _READERS:
            dicts = _READERS[name](on_bad_image=on_bad_image)
        else:
            dicts = DatasetCatalog.get(name)
        if not dicts:
            raise ValueError(f"dataset {name!r} is empty")
        if "label" not in dicts[0]:
            raise ValueError(f"dataset {name!r} is not a classification dataset (no 'label' in its dicts)")
        out.extend(dicts)
    return out


def register_all_classification() -> None:
    """Registers imagenet_train/val, cifar10_train/val/test and digits_train/test (idempotent;
    the folders are looked up under $RESNET_DET_DATASETS when the data is first read)."""
    from . import cifar, digits, imagenet

    imagenet.register_imagenet()
    cifar.register_cifar10()
    digits.register_digits()


# ---------------------------------------------------------------------------------------------
# Builders: the one place the config is read
# ---------------------------------------------------------------------------------------------
def _classes_of(names: Sequence[str]) -> Optional[List[str]]:
    from .catalog import MetadataCatalog

    classes = None
    for name in names:
        c = getattr(MetadataCatalog.get(name), "thing_classes", None)
        if c is None:
            continue
        if classes is not None and list(c) != list(classes):
            raise ValueError(f"datasets {list(names)} have different class lists")
        classes = list(c)
    return classes


def _transform_kwargs(cfg) -> Dict[str, Any]:
    c = cfg.INPUT.CLS
    if c.CROP_SIZE < 1:
        raise ValueError(f"INPUT.CLS.CROP_SIZE must be >= 1, got {c.CROP_SIZE}")
    if len(c.SCALE_RANGE) not in (0, 2) or (c.SCALE_RANGE and not 0 < c.SCALE_RANGE[0] <= c.SCALE_RANGE[1]):
        raise ValueError(f"INPUT.CLS.SCALE_RANGE must be [] or [min, max] with 0 < min <= max, got {list(c.SCALE_RANGE)}")
    if c.PAD < 0 or c.PCA_LIGHTING < 0 or c.TEST_RESIZE < 0:
        raise ValueError(
            f"INPUT.CLS.PAD ({c.PAD}), PCA_LIGHTING ({c.PCA_LIGHTING}) and TEST_RESIZE ({c.TEST_RESIZE}) must be >= 0"
        )
    if c.TEST_RESIZE and c.TEST_RESIZE < c.CROP_SIZE:
        raise ValueError(f"INPUT.CLS.TEST_RESIZE ({c.TEST_RESIZE}) is smaller than INPUT.CLS.CROP_SIZE ({c.CROP_SIZE})")
    if len(c.PIXEL_MEAN) != 3 or len(c.PIXEL_STD) != 3 or any(x <= 0 for x in c.PIXEL_STD):
        raise ValueError(f"INPUT.CLS.PIXEL_MEAN / PIXEL_STD need 3 values, std > 0; got {list(c.PIXEL_MEAN)} / {list(c.PIXEL_STD)}")
    bad = [m for m in cfg.TEST.CLS_MODES if m not in TEST_MODES]
    if bad:
        raise ValueError(f"TEST.CLS_MODES: unknown mode(s) {bad}; choose from {TEST_MODES}")
    if not cfg.TEST.CLS_MULTISCALE_SIZES or any(x < 1 for x in cfg.TEST.CLS_MULTISCALE_SIZES):
        raise ValueError(f"TEST.CLS_MULTISCALE_SIZES must be positive sides, got {list(cfg.TEST.CLS_MULTISCALE_SIZES)}")
    return dict(
        crop_size=c.CROP_SIZE,
        scale_range=list(c.SCALE_RANGE),
        pad=c.PAD,
        flip_prob=cfg.INPUT.RANDOM_FLIP_PROB,
        pca_lighting=c.PCA_LIGHTING,
        test_resize=c.TEST_RESIZE,
        pixel_mean=list(c.PIXEL_MEAN),
        pixel_std=list(c.PIXEL_STD),
        multiscale_sizes=list(cfg.TEST.CLS_MULTISCALE_SIZES),
    )


def data_seed(cfg) -> int:
    """The seed of the data stream: SEED, or (SEED < 0, one process) the seed this process
    was seeded with at setup."""
    if cfg.SEED >= 0:
        return int(cfg.SEED)
    if get_dist_info()[1] > 1:
        # Each process is seeded differently, but all must agree on the order of the stream.
        raise ValueError("SEED < 0 with several processes: set SEED >= 0 so every process draws the same data stream")
    return int(torch.initial_seed() % (2**31))


def build_classification_train_loader(cfg, start_iter: int = 0) -> torch.utils.data.DataLoader:
    """Training loader of DATASETS.TRAIN with the INPUT.CLS recipe."""
    if cfg.DATALOADER.ON_BAD_IMAGE not in ON_BAD_IMAGE_CHOICES:
        raise ValueError(f"DATALOADER.ON_BAD_IMAGE must be one of {ON_BAD_IMAGE_CHOICES}, got {cfg.DATALOADER.ON_BAD_IMAGE!r}")
    register_all_classification()
    names = list(cfg.DATASETS.TRAIN)
    dicts = get_classification_dicts(names, on_bad_image=cfg.DATALOADER.ON_BAD_IMAGE)
    _check_labels(dicts, cfg.MODEL.CLASSIFIER.NUM_CLASSES, names)
    rank, world = get_dist_info()
    return classification_train_loader(
        dicts,
        transform=build_classification_transform(is_train=True, **_transform_kwargs(cfg)),
        global_batch_size=cfg.SOLVER.IMS_PER_BATCH,
        seed=data_seed(cfg),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        start_iter=start_iter,
        on_bad_image=cfg.DATALOADER.ON_BAD_IMAGE,
        rank=rank,
        world_size=world,
    )


def build_classification_test_loader(cfg, dataset_name: str, mode: str = "center") -> torch.utils.data.DataLoader:
    """Test loader of one dataset for a TEST.CLS_MODES mode."""
    if mode not in TEST_MODES:
        raise ValueError(f"TEST.CLS_MODES: unknown mode {mode!r}; choose from {TEST_MODES}")
    register_all_classification()
    dicts = get_classification_dicts([dataset_name], on_bad_image=cfg.DATALOADER.ON_BAD_IMAGE)
    _check_labels(dicts, cfg.MODEL.CLASSIFIER.NUM_CLASSES, [dataset_name])
    if cfg.DATASETS.TRAIN:
        _classes_of(list(cfg.DATASETS.TRAIN) + [dataset_name])
    rank, world = get_dist_info()
    # Multi-scale images differ in size, so they go one at a time.
    batch_size = 1 if mode == "multiscale" else cfg.TEST.IMS_PER_BATCH
    return classification_test_loader(
        dicts,
        transform=build_classification_transform(is_train=False, test_mode=mode, **_transform_kwargs(cfg)),
        batch_size=batch_size,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        on_bad_image=cfg.DATALOADER.ON_BAD_IMAGE,
        rank=rank,
        world_size=world,
    )


def _check_labels(dicts: List[Dict[str, Any]], num_classes: int, names: Sequence[str]) -> None:
    top = max(int(d["label"]) for d in dicts)
    if top >= num_classes:
        raise ValueError(
            f"datasets {list(names)} have label {top} but MODEL.CLASSIFIER.NUM_CLASSES is {num_classes}"
        )
