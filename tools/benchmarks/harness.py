"""Speed benchmarks, always measured against a peer in the same process on the same inputs.

Absolute times depend on the machine (and, on a shared machine, on what else runs), so every
row reports our time, the peer's time measured in the same process, interleaved repetition by
repetition (so that load changes and clock drift hit both alike), and their ratio
``ours / peer``: below 1.0 we are faster. The time of a row is the median over repetitions,
after untimed warm-up calls; on CUDA the device is synchronised before the clock is read.
The clock is the wall clock, or (``clock="process"``, CPU only) the CPU seconds the process
spent: on a machine shared with other jobs the wall clock also counts the time the process
waited for a core, the process clock only its own work; a row records the other clock's
medians too.

This module holds the timing, the table and the classifier rows; the other rows live beside
it: ``detection`` (detectors against torchvision and detectron2), ``data`` (data loaders),
``coco`` (COCO evaluation against pycocotools) and ``gpu`` (the GPU rows: ResNet-50 training at
scale, the JPEG pipeline, detectors with AMP); ``rows`` runs them by name.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

__all__ = [
    "BenchOptions",
    "BenchRow",
    "child_env",
    "CLOCKS",
    "sync",
    "time_interleaved",
    "time_both_clocks",
    "compare",
    "skipped_row",
    "format_table",
    "rows_to_json",
    "machine_header",
    "autocast",
    "AMP_DTYPES",
    "time_training_steps",
    "classifier_rows",
    "prepare_classifier",
    "classifier_inputs",
]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CLOCKS = ("wall", "process")


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
        clock: "wall" (time.perf_counter) or "process" (time.process_time: the CPU seconds of
            the process, all its threads; CPU only).
    """

    device: str = "cpu"
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    batch: int = 2
    size: int = 224
    repetitions: int = 5
    warmup: int = 1
    clock: str = "wall"

    def __post_init__(self):
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"amp={self.amp!r}: expected one of {list(AMP_DTYPES)}")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock={self.clock!r}: expected one of {list(CLOCKS)}")
        if self.clock == "process" and self.device != "cpu":
            raise ValueError("clock='process' measures CPU work; a GPU's work needs clock='wall'")
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


def _read(clock: str) -> float:
    # Looked up at each call (not bound once) so that a test can replace the clock.
    return time.perf_counter() if clock == "wall" else time.process_time()


def time_both_clocks(
    fns: Dict[str, Callable[[], Any]], *, repetitions: int, warmup: int, device: torch.device
) -> Dict[str, Dict[str, List[float]]]:
    """Seconds of each call of each function on both clocks, the functions taking turns.

    Args:
        fns: name -> a call to time (one step, one evaluation, ...).
        repetitions: timed calls of each.
        warmup: untimed calls of each first (allocator, autotuning, compilation).
        device: synchronised before and after each timed call.
    Returns:
        {"wall": {name: [seconds, ...]}, "process": {name: [...]}}.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions={repetitions} must be >= 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, Dict[str, List[float]]] = {c: {name: [] for name in fns} for c in CLOCKS}
    for _ in range(repetitions):
        for name, fn in fns.items():
            sync(device)
            w0, p0 = _read("wall"), _read("process")
            fn()
            sync(device)
            times["wall"][name].append(_read("wall") - w0)
            times["process"][name].append(_read("process") - p0)
    return times


def time_interleaved(
    fns: Dict[str, Callable[[], Any]],
    *,
    repetitions: int,
    warmup: int,
    device: torch.device,
    clock: str = "wall",
) -> Dict[str, List[float]]:
    """Seconds of each call of each function on ``clock``, the functions taking turns
    (arguments as :func:`time_both_clocks`)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}: expected one of {list(CLOCKS)}")
    return time_both_clocks(fns, repetitions=repetitions, warmup=warmup, device=device)[clock]


def compare(
    row: str,
    ours: Callable[[], Any],
    peer: Callable[[], Any],
    *,
    peer_name: str,
    opts: BenchOptions,
    unit: str = "s/iter",
    per: int = 1,
    note: str = "",
    extra: Optional[Dict[str, Any]] = None,
) -> BenchRow:
    """Time ``ours`` against ``peer`` interleaved; the row holds the medians on ``opts.clock``
    divided by ``per`` (e.g. the number of images, for s/image), ``extra`` those of the other
    clock ("ours_wall_s", "peer_wall_s" or "ours_process_s", "peer_process_s")."""
    both = time_both_clocks(
        {"ours": ours, "peer": peer},
        repetitions=opts.repetitions,
        warmup=opts.warmup,
        device=opts.torch_device,
    )
    med = {c: {side: statistics.median(v) / per for side, v in t.items()} for c, t in both.items()}
    t_ours, t_peer = med[opts.clock]["ours"], med[opts.clock]["peer"]
    other = "process" if opts.clock == "wall" else "wall"
    return BenchRow(
        row=row,
        unit=unit,
        ours=t_ours,
        peer=t_peer,
        peer_name=peer_name,
        ratio=t_ours / t_peer,
        note=note,
        extra={
            f"ours_{other}_s": med[other]["ours"],
            f"peer_{other}_s": med[other]["peer"],
            **(extra or {}),
        },
    )


def skipped_row(row: str, unit: str, peer_name: str, why: str) -> BenchRow:
    """A row that could not run here, with the reason as its note."""
    return BenchRow(
        row=row, unit=unit, ours=None, peer=None, peer_name=peer_name, note=f"skipped: {why}"
    )


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
        cells = [
            r.row,
            _fmt(r.ours),
            _fmt(r.peer),
            ratio,
            r.unit,
            r.peer_name,
            r.note.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_header(device: str) -> Dict[str, Any]:
    """What the rows were measured on: the device's name, torch's threads, the machine's CPUs
    and its load average (1, 5, 15 minutes; the other jobs of a shared machine)."""
    import os
    import platform

    name = (
        torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return dict(
        device=name,
        threads=torch.get_num_threads(),
        cpus=os.cpu_count(),
        torch=torch.__version__,
        load_average=load,
    )


def rows_to_json(rows: Sequence[BenchRow], **header: Any) -> Dict[str, Any]:
    """{"rows": [...]} plus what describes the run (device, options, versions)."""
    return dict(header, rows=[asdict(r) for r in rows])


# ----------------------------------------------------------------------------- classifiers
def _training_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, opts: BenchOptions, *, fused: bool = False
) -> Callable[[], None]:
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


def time_training_steps(
    model: nn.Module, opts: BenchOptions, *, num_classes: int
) -> Dict[str, float]:
    """Median seconds of one SGD training step of a classifier on random data (no peer).

    Returns:
        {"s_per_step", "images_per_s"}.
    """
    model = prepare_classifier(model, opts)
    x, y = classifier_inputs(opts, num_classes)
    times = time_interleaved(
        {"m": _training_step(model, x, y, opts)},
        repetitions=opts.repetitions,
        warmup=opts.warmup,
        device=opts.torch_device,
        clock=opts.clock,
    )["m"]
    dt = statistics.median(times)
    return {"s_per_step": dt, "images_per_s": opts.batch / dt}


def classifier_rows(
    names: Sequence[str],
    opts: BenchOptions,
    *,
    ours: Callable[[str], nn.Module],
    peer: Callable[[str], nn.Module],
    peer_label: str = "torchvision",
    num_classes: int = 1000,
) -> List[BenchRow]:
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
        row = compare(
            f"{name} train step",
            _training_step(m_ours, x, y, opts),
            _training_step(m_peer, x, y, opts),
            peer_name=f"{peer_label} {name}",
            opts=opts,
            note=f"batch {opts.batch}, {opts.size}px",
        )
        row.extra["ours_images_per_s"] = opts.batch / row.ours
        row.extra["peer_images_per_s"] = opts.batch / row.peer
        rows.append(row)
    return rows


def child_env(**extra: str) -> Dict[str, str]:
    """The environment of a row's child process: the resnet_det imported here first on its
    path (so that the child reads this checkout, installed or not), and ``extra``."""
    import resnet_det

    root = os.path.dirname(os.path.dirname(os.path.abspath(resnet_det.__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
