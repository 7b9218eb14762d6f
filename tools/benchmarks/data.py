"""Data-loader rows: images/s of our training loaders in one process (one "worker"), against
torchvision's own reading of the same JPEG files.

- Classification: an ImageNet-style folder (``train/<wnid>/*.JPEG``, generated) read by our
  loader (``load_image_folder``, the paper's scale augmentation [256, 480] + 224 crop + flip,
  Sec. 3.4) against ``torchvision.datasets.ImageFolder`` with the reference recipe
  (RandomResizedCrop 224 + flip). Both decode every JPEG; the augmentations differ as the two
  recipes do.
- Detection: COCO-like images with boxes through our DatasetMapper (resize to the shorter
  side, flip, boxes along) against torchvision's ``read_image`` + ``transforms.v2`` resize and
  flip of the image and its ``BoundingBoxes``.

``num_workers=0``: the loader runs in the timing process, so the rate is one worker's.
The rows import resnet_det.data when they run (it needs fvcore and pycocotools):
``write_jpeg_folder``, which the GPU pipeline row also uses, needs neither.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict, List

import torch

from .harness import BenchOptions, BenchRow, compare

__all__ = ["write_jpeg_folder", "write_detection_images", "loader_rows"]


def _smooth_image(g: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A uint8 [3, H, W] image of blurry colour blobs: compresses like a photo, not like noise."""
    small = torch.rand(1, 3, max(2, height // 32), max(2, width // 32), generator=g)
    big = torch.nn.functional.interpolate(
        small, size=(height, width), mode="bicubic", align_corners=False
    )
    return (big[0].clamp(0, 1) * 255).to(torch.uint8)


def _write_jpeg(path: str, image: torch.Tensor) -> None:
    from torchcodec.encoders import JpegEncoder

    os.makedirs(os.path.dirname(path), exist_ok=True)
    JpegEncoder(image).to_file(path, quality=90)


def write_jpeg_folder(
    root: str,
    *,
    num_classes: int = 4,
    per_class: int = 8,
    height: int = 375,
    width: int = 500,
    seed: int = 0,
) -> str:
    """ImageNet's folder layout under ``root``: ``train/n0000000k/..._k.JPEG``; returns train/."""
    g = torch.Generator().manual_seed(seed)
    train = os.path.join(root, "train")
    for c in range(num_classes):
        wnid = f"n{c:08d}"
        for i in range(per_class):
            _write_jpeg(
                os.path.join(train, wnid, f"{wnid}_{i}.JPEG"), _smooth_image(g, height, width)
            )
    return train


def write_detection_images(
    root: str,
    *,
    num_images: int = 8,
    height: int = 480,
    width: int = 640,
    boxes_per_image: int = 6,
    seed: int = 0,
) -> List[Dict[str, Any]]:
    """JPEGs under ``root`` and their detection dataset dicts (docs/internals.md)."""
    g = torch.Generator().manual_seed(seed)
    dicts = []
    for i in range(num_images):
        path = os.path.join(root, f"{i:06d}.jpg")
        _write_jpeg(path, _smooth_image(g, height, width))
        xy = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([width * 0.7, height * 0.7])
        wh = (0.1 + 0.2 * torch.rand(boxes_per_image, 2, generator=g)) * torch.tensor(
            [width, height]
        )
        boxes = torch.cat([xy, xy + wh], dim=1).tolist()
        dicts.append(
            {
                "file_name": path,
                "image_id": i,
                "height": height,
                "width": width,
                "annotations": [
                    {"bbox": b, "category_id": k % 3, "iscrowd": 0} for k, b in enumerate(boxes)
                ],
            }
        )
    return dicts


def _batches(loader, count: int):
    it = iter(loader)

    def take() -> None:
        for _ in range(count):
            next(it)

    return take


def classification_row(folder: str, opts: BenchOptions, batches: int) -> BenchRow:
    import torchvision
    from torchvision import transforms as T

    from resnet_det.data.classification.build import classification_train_loader
    from resnet_det.data.classification.transforms import build_classification_transform
    from resnet_det.data.datasets.imagenet import load_image_folder

    dicts = load_image_folder(folder)
    transform = build_classification_transform(
        is_train=True,
        crop_size=224,
        scale_range=(256, 480),
        pixel_mean=(123.675, 116.28, 103.53),
        pixel_std=(58.395, 57.12, 57.375),
    )
    ours = classification_train_loader(
        dicts,
        transform=transform,
        global_batch_size=opts.batch,
        seed=0,
        num_workers=0,
        rank=0,
        world_size=1,
    )
    peer_set = torchvision.datasets.ImageFolder(
        folder,
        transform=T.Compose(
            [
                T.RandomResizedCrop(224),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        ),
    )
    # An endless stream like ours (which is infinite), so that every call has batches to take.
    sampler = torch.utils.data.RandomSampler(
        peer_set, replacement=True, num_samples=10**9, generator=torch.Generator().manual_seed(0)
    )
    peer = torch.utils.data.DataLoader(
        peer_set, batch_size=opts.batch, sampler=sampler, num_workers=0
    )
    n = opts.batch * batches
    row = compare(
        "classification loader",
        _batches(ours, batches),
        _batches(peer, batches),
        peer_name="torchvision ImageFolder + RandomResizedCrop",
        opts=opts,
        unit="s/image",
        per=n,
        note=f"1 worker, {len(dicts)} JPEGs 500x375, batch {opts.batch}",
    )
    row.extra.update(ours_images_per_s=1 / row.ours, peer_images_per_s=1 / row.peer)
    return row


def _torchvision_detection_reader(dicts: List[Dict[str, Any]], size: int, max_size: int):
    from torchvision import tv_tensors
    from torchvision.io import read_image
    from torchvision.transforms import v2

    # The peer is torchvision's own reader (torchvision.io.read_image), the baseline users
    # know; torchvision 0.29 deprecates it in TorchCodec's favour and warns at every call.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io")

    transform = v2.Compose(
        [v2.Resize(size, max_size=max_size, antialias=True), v2.RandomHorizontalFlip()]
    )

    class _Set(torch.utils.data.Dataset):
        def __len__(self):
            return len(dicts)

        def __getitem__(self, i):
            d = dicts[i]
            img = read_image(d["file_name"])
            boxes = tv_tensors.BoundingBoxes(
                [a["bbox"] for a in d["annotations"]],
                format="XYXY",
                canvas_size=(d["height"], d["width"]),
            )
            return transform(img, boxes)

    return _Set()


def detection_row(dicts: List[Dict[str, Any]], opts: BenchOptions, batches: int) -> BenchRow:
    from resnet_det.data.detection.build import build_train_loader
    from resnet_det.data.detection.mapper import DatasetMapper

    max_size = int(opts.size * 1333 / 800)
    mapper = DatasetMapper(is_train=True, min_size_train=(opts.size,), max_size_train=max_size)
    ours = build_train_loader(
        dicts,
        mapper=mapper,
        total_batch_size=opts.batch,
        seed=0,
        num_workers=0,
        rank=0,
        world_size=1,
    )
    peer = torch.utils.data.DataLoader(
        _torchvision_detection_reader(dicts, opts.size, max_size),
        batch_size=opts.batch,
        num_workers=0,
        collate_fn=list,
        sampler=torch.utils.data.RandomSampler(
            range(len(dicts)),
            replacement=True,
            num_samples=10**9,
            generator=torch.Generator().manual_seed(0),
        ),
    )
    n = opts.batch * batches
    row = compare(
        "detection loader",
        _batches(ours, batches),
        _batches(peer, batches),
        peer_name="torchvision read_image + v2 Resize/Flip",
        opts=opts,
        unit="s/image",
        per=n,
        note=f"1 worker, {len(dicts)} JPEGs 640x480 to shorter side {opts.size}, "
        f"batch {opts.batch}",
    )
    row.extra.update(ours_images_per_s=1 / row.ours, peer_images_per_s=1 / row.peer)
    return row


def loader_rows(
    folder: str, opts: BenchOptions, *, batches: int = 4, num_images: int = 32
) -> List[BenchRow]:
    """Both loader rows on files generated under ``folder`` (made if missing)."""
    classes = 4
    train = write_jpeg_folder(
        os.path.join(folder, "imagenet"),
        num_classes=classes,
        per_class=max(1, num_images // classes),
    )
    dicts = write_detection_images(os.path.join(folder, "detection"), num_images=num_images)
    return [classification_row(train, opts, batches), detection_row(dicts, opts, batches)]
