"""Parameters, FLOPs and activations of a model (fvcore counters).

fvcore counts one fused multiply-add as one flop, which is what the paper calls FLOPs
("multiply-adds", Table 1). The paper counts convolutions and the fc layer; fvcore also counts
a few elementwise ops (batch norm, pooling), so rows give both: ``flops`` (fvcore's total)
and ``conv_fc_flops`` (convolutions + fully-connected only, the paper's count).
"""

import warnings
from collections import Counter
from numbers import Number
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .build import build_classifier, build_model
from .zoo import create_model, list_models

__all__ = [
    "model_statistics",
    "family_table",
    "format_table",
    "config_statistics",
    "PAPER_NUMBERS",
    "input_size_for",
]

# Operators fvcore names for convolutions and fully-connected layers.
_CONV_FC_OPS = ("conv", "linear", "addmm", "mm", "matmul", "bmm", "einsum")

# The paper's numbers (Table 1 FLOPs at 224x224; Table 6 CIFAR-10 params; VGG from Sec. 3.3).
PAPER_NUMBERS = {
    "resnet18": {"gflops": 1.8},
    "resnet34": {"gflops": 3.6},
    "resnet50": {"gflops": 3.8},
    "resnet101": {"gflops": 7.6},
    "resnet152": {"gflops": 11.3},
    "plain18": {"gflops": 1.8},
    "plain34": {"gflops": 3.6},
    "vgg16": {"gflops": 15.3},
    "vgg19": {"gflops": 19.6},
    "resnet20_cifar": {"params_m": 0.27},
    "resnet32_cifar": {"params_m": 0.46},
    "resnet44_cifar": {"params_m": 0.66},
    "resnet56_cifar": {"params_m": 0.85},
    "resnet110_cifar": {"params_m": 1.7},
    "resnet1202_cifar": {"params_m": 19.4},
    "plain20_cifar": {"params_m": 0.27},
    "plain32_cifar": {"params_m": 0.46},
    "plain44_cifar": {"params_m": 0.66},
    "plain56_cifar": {"params_m": 0.85},
    "plain110_cifar": {"params_m": 1.7},
    "preact_resnet110_cifar": {"params_m": 1.7},
    "preact_resnet1001_cifar": {"params_m": 10.2},
}


def input_size_for(name: str) -> int:
    """The standard input side: 32 for the CIFAR nets, 224 for ImageNet nets."""
    return 32 if name.endswith("_cifar") else 224


def _input_channels(model: nn.Module) -> int:
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int):
        return channels
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def _normalize_size(model: nn.Module, input_size) -> Tuple[int, int, int]:
    if isinstance(input_size, int):
        return (_input_channels(model), input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (_input_channels(model),) + size
    if len(size) == 3:
        return size
    raise ValueError(f"resnet_det: input_size={input_size!r} must be an int, (H, W) or (C, H, W)")


def model_statistics(model: nn.Module, input_size: Union[int, Sequence[int]] = 224) -> Dict:
    """Parameter count, FLOPs and activations of ``model`` for one image.

    Args:
        model: any module taking a (1, C, H, W) tensor.
        input_size: side (int), (H, W) or (C, H, W); C defaults to the model's input channels.
    Returns:
        {"params", "trainable_params", "flops" (fvcore total, multiply-adds),
         "conv_fc_flops" (conv + fc only, the paper's FLOPs), "activations",
         "flops_by_operator", "input_size" (C, H, W)}.
    """
    size = _normalize_size(model, input_size)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1,) + size, device=next(model.parameters()).device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore's import and the jit tracer warn
            by_op, activations = _count(model, x)
    finally:
        model.train(was_training)
    return {
        "params": params,
        "trainable_params": trainable,
        "flops": int(sum(by_op.values())),
        "conv_fc_flops": int(sum(v for k, v in by_op.items() if k in _CONV_FC_OPS)),
        "activations": int(activations),
        "flops_by_operator": {k: int(v) for k, v in by_op.items()},
        "input_size": size,
    }


def _as_counter(result, kind: str) -> Counter:
    if isinstance(result, Number):
        return Counter({kind.split("::")[-1]: result})
    return Counter(result)


def _count(model: nn.Module, x: torch.Tensor) -> Tuple[Dict[str, float], float]:
    """(flops by operator, activations) with fvcore's default counters, from one trace.

    FlopCountAnalysis and ActivationCountAnalysis each trace the model; here their op handles
    are merged into one JitModelAnalysis, so the (slow on CPU) trace runs once.
    """
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
    from fvcore.nn.jit_analysis import JitModelAnalysis

    flop_handles = getattr(FlopCountAnalysis(model, x), "_op_handles", None)
    act_handles = getattr(ActivationCountAnalysis(model, x), "_op_handles", None)
    if flop_handles is None or act_handles is None:  # fvcore internals changed: two traces
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False)
        acts = ActivationCountAnalysis(model, x).unsupported_ops_warnings(False)
        return dict(flops.uncalled_modules_warnings(False).by_operator()), acts.total()

    def merged(kind):
        fh, ah = flop_handles.get(kind), act_handles.get(kind)

        def handle(inputs, outputs):
            out = Counter()
            for tag, h in (("flops", fh), ("acts", ah)):
                if h is not None:
                    for k, v in _as_counter(h(inputs, outputs), kind).items():
                        out[f"{tag}/{k}"] += v
            return out

        return handle

    analysis = JitModelAnalysis(model, x)
    analysis.set_op_handle(**{kind: merged(kind) for kind in set(flop_handles) | set(act_handles)})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    counts = analysis.by_operator()
    by_op = {k[len("flops/") :]: v for k, v in counts.items() if k.startswith("flops/")}
    activations = sum(v for k, v in counts.items() if k.startswith("acts/"))
    return by_op, activations


def family_table(names: Optional[Iterable[str]] = None, **overrides) -> List[Dict]:
    """One row per model (default: every name in ``list_models()``) at its standard input
    (224x224, 32x32 for CIFAR): params (M), GFLOPs (conv+fc and fvcore total), activations (M),
    and the paper's number where it gives one.

    Args:
        names: model names; default all.
        **overrides: passed to ``create_model`` for every model.
    """
    rows = []
    for name in names or list_models():
        model = create_model(name, **overrides)
        side = input_size_for(name)
        stats = model_statistics(model, side)
        paper = PAPER_NUMBERS.get(name, {})
        rows.append(
            {
                "model": name,
                "input": f"{side}x{side}",
                "params_m": stats["params"] / 1e6,
                "gflops": stats["conv_fc_flops"] / 1e9,
                "gflops_total": stats["flops"] / 1e9,
                "activations_m": stats["activations"] / 1e6,
                "paper_params_m": paper.get("params_m"),
                "paper_gflops": paper.get("gflops"),
            }
        )
        del model
    return rows


_COLUMNS = (
    ("model", "model", "{}"),
    ("input", "input", "{}"),
    ("params_m", "params (M)", "{:.2f}"),
    ("paper_params_m", "paper", "{:.2f}"),
    ("gflops", "GFLOPs conv+fc", "{:.3f}"),
    ("paper_gflops", "paper", "{:.1f}"),
    ("gflops_total", "GFLOPs fvcore", "{:.3f}"),
    ("activations_m", "acts (M)", "{:.2f}"),
)


def format_table(rows: List[Dict]) -> str:
    """A plain-text table of ``family_table``-style rows (missing values shown as "-")."""
    header = [title for _, title, _ in _COLUMNS]
    body = [
        [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in _COLUMNS]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header] + body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def config_statistics(cfg) -> Dict:
    """Statistics of the network a config builds, at the config's own input size.

    A classifier config (MODEL.META_ARCHITECTURE "ImageClassifier") is measured whole at
    INPUT.CLS.CROP_SIZE. For a detector, FLOPs depend on the number of proposals, so the
    convolutional backbone is measured at a square MIN_SIZE_TEST input (the part the paper's
    Table 1 counts) and the parameter count is the whole detector's.

    Args:
        cfg: a resolved config (resnet_det.config.get_cfg() plus merges).
    Returns:
        model_statistics()'s dict plus "what" (what was measured) and "model_params"
        (parameters of the whole model the config trains).
    """
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "ImageClassifier":
        model = build_classifier(cfg)
        stats = model_statistics(model.net, int(cfg.INPUT.CLS.CROP_SIZE))
        stats.update(what=f"classifier {cfg.MODEL.CLASSIFIER.ARCH}", model_params=stats["params"])
        return stats
    detector = build_model(cfg)
    detector_params = sum(p.numel() for p in detector.parameters())
    stats = model_statistics(detector.backbone, int(cfg.INPUT.MIN_SIZE_TEST))
    stats.update(what=f"backbone {cfg.MODEL.BACKBONE.NAME} of {arch}", model_params=detector_params)
    return stats
