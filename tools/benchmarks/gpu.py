"""GPU rows (meant for one CUDA card; every path also runs on CPU at tiny sizes for the tests).

- ResNet-50 training at scale: synthetic batch (256 on a GPU), model + optimizer step, with
  the options the run gives (torch.compile, bf16 autocast, channels_last) and fused SGD on
  CUDA (foreach on CPU), ours against torchvision's resnet50 under the same options; the
  row adds images/s, achieved TFLOP/s (3x the forward FLOPs per image: forward, and backward
  for activations and weights) and the fraction of the card's dense bf16 peak when known.
- The ImageNet-style JPEG pipeline: JPEG files in the official folder layout read as bytes by
  loader workers and decoded on the GPU in batches (TorchCodec's ``decode_jpeg`` with
  ``device="cuda"``), random-resized-cropped, flipped and normalised there, then the same
  training step; its iteration time against the model-only step.
- ResNet-50 pretraining fed by our loader: resnet_det's classification training loader with
  INPUT.DECODE_DEVICE "cuda" (the paper's scale augmentation [256, 480], 224 crop, flip, PCA
  lighting, normalisation; resnet_det.data.device_decode) and the same step, against the
  model-only step: the end-to-end images/s as a fraction of the model-only rate (the goal is
  >= 90 %, and >= 5,000 images/s on one H100 with bf16, channels_last and torch.compile).
- R101-C4 training at 16 images of shorter side 600 with AMP: time per iteration and peak
  memory (no peer in the process; detectron2's published 0.619 s/iter for 16 images on 8
  V100s is quoted in docs/benchmarks.md).

Nothing here needs fvcore, iopath or pycocotools except the R101-C4 row (our config system) and
the pretraining-loader row (resnet_det.data reads files through iopath).
"""

from __future__ import annotations

import os
import statistics
from typing import List, Optional

import torch
from torch import nn

from resnet_det.modeling.zoo import create_model

from .harness import (
    BenchOptions,
    BenchRow,
    autocast,
    classifier_inputs,
    compare,
    prepare_classifier,
    time_interleaved,
)

__all__ = [
    "BF16_PEAK_TFLOPS",
    "resnet50_rows",
    "jpeg_pipeline_row",
    "r101_c4_amp_row",
    "RESNET50_GFLOPS",
]

# Dense bf16 tensor-core peak (TFLOP/s, without sparsity) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "V100": 125.0,
}  # V100: fp16 (no bf16)
# ResNet-50 forward at 224x224: 4.1 G multiply-adds = 8.2 GFLOP (He et al., Table 1).
RESNET50_GFLOPS = 8.2


def peak_tflops(device: torch.device) -> Optional[float]:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def _train_step(model: nn.Module, opts: BenchOptions):
    """step(x, y): one SGD step (fused on CUDA, foreach on CPU; lr 0 so that the arithmetic
    runs but random data cannot make the weights diverge)."""
    cuda = opts.torch_device.type == "cuda"
    opt = torch.optim.SGD(
        model.parameters(),
        lr=0.0,
        momentum=0.9,
        weight_decay=5e-5,
        **({"fused": True} if cuda else {"foreach": True}),
    )
    scaler = torch.amp.GradScaler(opts.torch_device.type, enabled=opts.amp == "fp16")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(opts.torch_device, opts.amp_dtype):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def _throughput_extra(row: BenchRow, opts: BenchOptions, batch: int, size: int) -> None:
    gflop = 3 * RESNET50_GFLOPS * (size / 224) ** 2
    for side in ("ours", "peer"):
        rate = batch / getattr(row, side)
        row.extra[f"{side}_images_per_s"] = rate
        row.extra[f"{side}_tflops"] = rate * gflop / 1000
    peak = peak_tflops(opts.torch_device)
    if peak:
        row.extra["bf16_peak_tflops"] = peak
        row.extra["ours_fraction_of_peak"] = row.extra["ours_tflops"] / peak


def resnet50_rows(opts: BenchOptions) -> List[BenchRow]:
    """ResNet-50 training step, ours against torchvision's (module doc)."""
    import torchvision

    # torchvision's layout puts the stride in the 3x3 conv ("v1.5"): compare like with like.
    ours = prepare_classifier(create_model("resnet50", stride_in_1x1=False), opts)
    peer = prepare_classifier(torchvision.models.resnet50(), opts)
    x, y = classifier_inputs(opts, 1000)
    optim = "fused SGD" if opts.torch_device.type == "cuda" else "foreach SGD"
    step_ours, step_peer = _train_step(ours, opts), _train_step(peer, opts)
    row = compare(
        "ResNet-50 train step",
        lambda: step_ours(x, y),
        lambda: step_peer(x, y),
        peer_name="torchvision resnet50",
        opts=opts,
        note=f"batch {opts.batch}, {opts.size}px, amp {opts.amp}, channels_last "
        f"{opts.channels_last}, compile {opts.compile}, {optim}",
    )
    _throughput_extra(row, opts, opts.batch, opts.size)
    return [row]


class _JpegBytes(torch.utils.data.Dataset):
    """(encoded JPEG bytes as a uint8 tensor, label): the workers only read files."""

    def __init__(self, files: List[str], labels: List[int]):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        return data, self.labels[i]


def _collate_bytes(items):
    return [d for d, _ in items], torch.tensor([lab for _, lab in items])


def _list_folder(train: str):
    classes = sorted(c for c in os.listdir(train) if os.path.isdir(os.path.join(train, c)))
    files, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(train, c))):
            files.append(os.path.join(train, c, f))
            labels.append(k)
    if not files:
        raise FileNotFoundError(f"no images under {train} (expected train/<class>/<image>.JPEG)")
    return files, labels


def gpu_augment(images: List[torch.Tensor], size: int, generator: torch.Generator) -> torch.Tensor:
    """Random-resized crop (scale 0.08-1, ratio 3/4-4/3, torchvision's reference recipe),
    flip and normalise decoded uint8 [3, H, W] images on their device; a float
    [N, 3, size, size] batch."""
    from torchvision.transforms import RandomResizedCrop
    from torchvision.transforms.v2 import functional as F

    device = images[0].device
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255
    crops = []
    for img in images:
        top, left, h, w = RandomResizedCrop.get_params(img, scale=[0.08, 1.0], ratio=[3 / 4, 4 / 3])
        crop = F.resized_crop(img, top, left, h, w, [size, size], antialias=True)
        crops.append(crop.flip(-1) if torch.rand((), generator=generator) < 0.5 else crop)
    return (torch.stack(crops).float() - mean) / std


def jpeg_pipeline_row(
    train_folder: str, opts: BenchOptions, *, workers: int = 8, iterations: int = 10
) -> BenchRow:
    """End-to-end ResNet-50 training iterations reading JPEGs (decoded on the GPU) against
    the model-only step on a fixed batch (module doc)."""
    from torchcodec.decoders import decode_jpeg

    files, labels = _list_folder(train_folder)
    device = opts.torch_device
    loader = torch.utils.data.DataLoader(
        _JpegBytes(files, labels),
        batch_size=opts.batch,
        num_workers=workers,
        collate_fn=_collate_bytes,
        sampler=torch.utils.data.RandomSampler(files, replacement=True, num_samples=10**9),
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    batches = iter(loader)
    model = prepare_classifier(create_model("resnet50", stride_in_1x1=False), opts)
    x, y = classifier_inputs(opts, 1000)
    step = _train_step(model, opts)
    g = torch.Generator().manual_seed(0)

    def pipeline() -> None:
        for _ in range(iterations):
            data, lab = next(batches)
            xb = gpu_augment(decode_jpeg(data, mode="RGB", device=device), opts.size, g)
            if opts.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            step(xb, lab.to(device, non_blocking=True))

    def model_only() -> None:
        for _ in range(iterations):
            step(x, y)

    row = compare(
        "JPEG pipeline + ResNet-50 step",
        pipeline,
        model_only,
        opts=opts,
        peer_name="model-only step (same model, fixed batch)",
        unit="s/iter",
        per=iterations,
        note=f"{workers} workers read bytes, decode_jpeg on {device.type}, batch {opts.batch}",
    )
    row.extra["pipeline_fraction_of_model_rate"] = row.peer / row.ours
    return row


def pretraining_loader_row(
    train_folder: str, opts: BenchOptions, *, workers: int = 8, iterations: int = 10
) -> BenchRow:
    """ResNet-50 training iterations fed by our classification training loader decoding on
    ``opts.device`` (INPUT.DECODE_DEVICE) against the model-only step (module doc)."""
    # Imported here: resnet_det.data needs iopath and fvcore, which the other GPU rows do not.
    from resnet_det.data.classification.build import classification_train_loader
    from resnet_det.data.classification.transforms import build_classification_transform
    from resnet_det.data.datasets.imagenet import load_image_folder

    device = opts.torch_device
    dicts = load_image_folder(train_folder)
    # The paper's recipe (Sec. 3.4), configs/imagenet's INPUT.CLS.
    transform = build_classification_transform(
        is_train=True,
        crop_size=opts.size,
        scale_range=(int(opts.size * 256 / 224), int(opts.size * 480 / 224)),
        pca_lighting=0.1,
        pixel_mean=(123.675, 116.28, 103.53),
        pixel_std=(58.395, 57.12, 57.375),
    )
    loader = classification_train_loader(
        dicts,
        transform=transform,
        global_batch_size=opts.batch,
        seed=0,
        num_workers=workers,
        rank=0,
        world_size=1,
        decode_device=device,
    )
    batches = iter(loader)
    model = prepare_classifier(create_model("resnet50", stride_in_1x1=False), opts)
    x, y = classifier_inputs(opts, 1000)
    step = _train_step(model, opts)

    def pipeline() -> None:
        for _ in range(iterations):
            batch = next(batches)
            xb = batch["image"]
            if opts.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            step(xb, batch["label"].to(device, non_blocking=True))

    def model_only() -> None:
        for _ in range(iterations):
            step(x, y)

    row = compare(
        "ResNet-50 pretraining, our loader on the device",
        pipeline,
        model_only,
        opts=opts,
        peer_name="model-only step (same model, fixed batch)",
        unit="s/iter",
        per=iterations,
        note=f"{workers} workers, INPUT.DECODE_DEVICE {device.type}, scale aug + crop "
        f"{opts.size} + flip + PCA, batch {opts.batch}",
    )
    row.extra["ours_images_per_s"] = opts.batch / row.ours
    row.extra["peer_images_per_s"] = opts.batch / row.peer
    row.extra["pipeline_fraction_of_model_rate"] = row.peer / row.ours
    return row


def r101_c4_amp_row(opts: BenchOptions, *, roi_batch: int = 512) -> BenchRow:
    """Our R101-C4 training iteration (16 images, shorter side 600 on a GPU) and peak memory."""
    # Imported here: the detector rows need resnet_det's config (fvcore), the other GPU rows
    # do not (module docstring).
    from .detection import (
        build_ours,
        detection_inputs,
        neutral_torchvision_rpn,
        prepare_detector,
        training_step,
    )

    device = opts.torch_device
    model = prepare_detector(
        neutral_torchvision_rpn(
            build_ours(
                "modern/faster_rcnn_R101_C4_3x.yaml",
                opts,
                ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", str(roi_batch)],
            )
        ),
        opts,
    ).train()
    inputs = [
        {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in x.items()}
        for x in detection_inputs(opts)
    ]
    step = training_step(model, lambda: model(inputs), opts)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = time_interleaved(
        {"ours": step},
        repetitions=opts.repetitions,
        warmup=opts.warmup,
        device=device,
        clock=opts.clock,
    )
    t = statistics.median(times["ours"])
    row = BenchRow(
        row="R101-C4 train iter (AMP)",
        unit="s/iter",
        ours=t,
        peer=None,
        peer_name="detectron2 R101-C4: 0.619 s/iter, 16 images on 8 V100 (published)",
        note=f"{opts.batch} images, shorter side {opts.size}, amp {opts.amp}, "
        f"{roi_batch} RoIs/image",
    )
    if device.type == "cuda":
        row.extra["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return row
