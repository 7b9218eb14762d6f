"""Speed benchmarks, always measured against a peer in the same process on the same inputs.

Absolute times depend on the machine (and, on a shared machine, on what else runs), so every
row reports our time, the peer's time measured in the same process, interleaved repetition by
repetition (so that load changes and clock drift hit both alike), and their ratio
``ours / peer``: below 1.0 we are faster. The time of a row is the median over repetitions,
after untimed warm-up calls; on CUDA the device is synchronised before the clock is read.

This module holds the timing and the table; the rows live beside it: ``bench_detection``
(detectors against torchvision and detectron2), ``bench_data`` (data loaders),
``bench_coco`` (COCO evaluation against pycocotools) and ``bench_gpu`` (the GPU rows:
ResNet-50 training at scale, the JPEG pipeline, detectors with AMP).
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

__all__ = [
    "BenchOptions", "BenchRow", "sync", "time_interleaved", "compare", "skipped_row",
    "format_table", "rows_to_json", "autocast", "AMP_DTYPES",
    "time_training_steps", "classifier_rows", "prepare_classifier", "classifier_inputs",
]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class BenchOptions:
    """What every row takes (tools/benchmark.py's options).

    Attributes:
        device: "cpu" or "cuda".
        amp: "none", "bf16" or "fp16" (autocast on both sides).
        channels_last: NHWC memory format for both models.
        compile: torch.compile both models (the backbone of a detector).
        batch: images per step.
        size: image side (classifiers) or shorter side (detectors).
        repetitions: timed calls per side; the row reports the median.
        warmup: untimed calls per side first.
    """

    device: str = "cpu"
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    batch: int = 2
    size: int = 224
    repetitions: int = 5
    warmup: int = 1

    def __post_init__(self):
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"amp={self.amp!r}: expected one of {list(AMP_DTYPES)}")
        for name in ("batch", "size", "repetitions"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.warmup < 0:
            raise ValueError(f"warmup={self.warmup} must be >= 0")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def amp_dtype(self) -> Optional[torch.dtype]:
        return AMP_DTYPES[self.amp]


@dataclass
class BenchRow:
    """One line of the table.

    Attributes:
        row: short name ("R50-FPN train").
        unit: what ``ours`` and ``peer`` measure ("s/iter", "s/image", "s").
        ours, peer: median times (None when the row could not run).
        peer_name: what the peer is ("torchvision fasterrcnn_resnet50_fpn").
        ratio: ours / peer (below 1: we are faster).
        note: settings or why the row was skipped.
        extra: more numbers (images/s, TFLOP/s, peak memory, ...).
    """

    row: str
    unit: str
    ours: Optional[float]
    peer: Optional[float]
    peer_name: str
    ratio: Optional[float] = None
    note: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (the clock is read after this)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """Autocast to ``dtype`` on ``device``, or nothing when dtype is None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def time_interleaved(fns: Dict[str, Callable[[], Any]], *, repetitions: int, warmup: int,
                     device: torch.device) -> Dict[str, List[float]]:
    """Seconds of each call of each function, the functions taking turns.

    Args:
        fns: name -> a call to time (one step, one evaluation, ...).
        repetitions: timed calls of each.
        warmup: untimed calls of each first (allocator, autotuning, compilation).
        device: synchronised before and after each timed call.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions={repetitions} must be >= 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repetitions):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def compare(row: str, ours: Callable[[], Any], peer: Callable[[], Any], *, peer_name: str,
            opts: BenchOptions, unit: str = "s/iter", per: int = 1, note: str = "",
            extra: Optional[Dict[str, Any]] = None) -> BenchRow:
    """Time ``ours`` against ``peer`` interleaved; the row holds the medians divided by ``per``
    (e.g. the number of images, for s/image)."""
    times = time_interleaved({"ours": ours, "peer": peer}, repetitions=opts.repetitions,
                             warmup=opts.warmup, device=opts.torch_device)
    t_ours = statistics.median(times["ours"]) / per
    t_peer = statistics.median(times["peer"]) / per
    return BenchRow(row=row, unit=unit, ours=t_ours, peer=t_peer, peer_name=peer_name,
                    ratio=t_ours / t_peer, note=note, extra=dict(extra or {}))


def skipped_row(row: str, unit: str, peer_name: str, why: str) -> BenchRow:
    """A row that could not run here, with the reason as its note."""
    return BenchRow(row=row, unit=unit, ours=None, peer=None, peer_name=peer_name,
                    note=f"skipped: {why}")


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}"


TABLE_COLUMNS = ("row", "ours", "peer", "ratio", "unit", "peer is", "note")


def format_table(rows: Sequence[BenchRow]) -> str:
    """A Markdown table, one line per row, columns TABLE_COLUMNS."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
        cells = [r.row, _fmt(r.ours), _fmt(r.peer), ratio, r.unit, r.peer_name,
                 r.note.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_to_json(rows: Sequence[BenchRow], **header: Any) -> Dict[str, Any]:
    """{"rows": [...]} plus what describes the run (device, options, versions)."""
    return dict(header, rows=[asdict(r) for r in rows])


# ----------------------------------------------------------------------------- classifiers
def _training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opts: BenchOptions,
                   *, fused: bool = False) -> Callable[[], None]:
    """One SGD step of a classifier on (x, y) as a callable."""
    kwargs = {"fused": True} if fused else {}
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, **kwargs)
    scaler = torch.amp.GradScaler(opts.torch_device.type, enabled=opts.amp == "fp16")

    def step() -> None:
        with autocast(opts.torch_device, opts.amp_dtype):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def prepare_classifier(model: nn.Module, opts: BenchOptions) -> nn.Module:
    """The model on the device in train mode, NHWC and compiled as the options say."""
    model = model.to(opts.torch_device).train()
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if opts.compile:
        model = torch.compile(model)
    return model


def classifier_inputs(opts: BenchOptions, num_classes: int, seed: int = 0):
    """Random images [batch, 3, size, size] and labels, the same for both sides."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(opts.batch, 3, opts.size, opts.size, generator=g).to(opts.torch_device)
    if opts.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (opts.batch,), generator=g).to(opts.torch_device)
    return x, y


def time_training_steps(model: nn.Module, opts: BenchOptions, *, num_classes: int) -> Dict[str, float]:
    """Median seconds of one SGD training step of a classifier on random data (no peer).

    Returns:
        {"s_per_step", "images_per_s"}.
    """
    model = prepare_classifier(model, opts)
    x, y = classifier_inputs(opts, num_classes)
    times = time_interleaved({"m": _training_step(model, x, y, opts)}, repetitions=opts.repetitions,
                             warmup=opts.warmup, device=opts.torch_device)["m"]
    dt = statistics.median(times)
    return {"s_per_step": dt, "images_per_s": opts.batch / dt}


def classifier_rows(names: Sequence[str], opts: BenchOptions, *,
                    ours: Callable[[str], nn.Module], peer: Callable[[str], nn.Module],
                    peer_label: str = "torchvision", num_classes: int = 1000) -> List[BenchRow]:
    """Training step of each named classifier against the peer's network of that name.

    Args:
        names: network names (e.g. "resnet50").
        opts: the run's options.
        ours, peer: name -> a fresh model (ours, the peer's).
        peer_label: how the table names the peer.
        num_classes: logits of both models.
    """
    rows = []
    for name in names:
        m_ours, m_peer = prepare_classifier(ours(name), opts), prepare_classifier(peer(name), opts)
        x, y = classifier_inputs(opts, num_classes)
        row = compare(f"{name} train step", _training_step(m_ours, x, y, opts),
                      _training_step(m_peer, x, y, opts), peer_name=f"{peer_label} {name}",
                      opts=opts, note=f"batch {opts.batch}, {opts.size}px")
        row.extra["ours_images_per_s"] = opts.batch / row.ours
        row.extra["peer_images_per_s"] = opts.batch / row.peer
        rows.append(row)
    return rows
