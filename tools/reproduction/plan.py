"""The steps that reproduce one comparison, with their configs, before anything runs.

For each backbone (the baseline first): optionally ``pretrain_<slug>`` (its ImageNet config, or
the demo's) and ``convert_<slug>`` (model_final.pth -> OUTPUT_DIR/weights/<slug>.pth), then
``detect_<slug>`` (the paper config, MODEL.WEIGHTS set to the converted or the given weights).
Every config is merged here, so a wrong key or value stops the command before the first
step starts. Each step's folder is under the comparison's OUTPUT_DIR.
"""

import os
import shlex
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

from resnet_det.config import CfgNode, get_cfg
from resnet_det.utils.errors import MissingFileError, UsageError

from .paper import ComparedBackbone, Comparison, repo_path

__all__ = ["Step", "plan_steps", "input_contract_overrides"]


@dataclass
class Step:
    """One step of the chain.

    Args:
        name: "pretrain_<slug>", "convert_<slug>" or "detect_<slug>".
        kind: "pretrain", "convert" or "detect".
        backbone: the comparison's backbone it belongs to.
        run_dir: the run's OUTPUT_DIR (for "convert", the folder of the weights file).
        artifact: what a finished step leaves: model_final.pth, or the converted weights.
        config_file: the YAML the run starts from (relative to the checkout), if any.
        overrides: ``KEY VALUE`` pairs applied on top of it, in order.
        cfg: the merged config of a training run.
        source: for "convert", the pretraining checkpoint it reads.
    """

    name: str
    kind: str
    backbone: ComparedBackbone
    run_dir: str
    artifact: str
    config_file: Optional[str] = None
    overrides: Tuple[str, ...] = ()
    cfg: Optional[CfgNode] = None
    source: Optional[str] = None

    def command(self, num_gpus: int = 1) -> str:
        """The equivalent command of the project's tools (what a user would type)."""
        if self.kind == "convert":
            return shlex.join(
                [
                    "python3",
                    "tools/convert_weights.py",
                    self.source,
                    self.artifact,
                    "--to",
                    "resnet_det",
                ]
            )
        tool = "tools/pretrain_net.py" if self.kind == "pretrain" else "tools/train_net.py"
        return shlex.join(
            [
                "python3",
                tool,
                "--config-file",
                self.config_file,
                "--num-gpus",
                str(num_gpus),
                "--resume",
                *self.overrides,
            ]
        )


def input_contract_overrides(pretrain_cfg: CfgNode) -> List[str]:
    """The detector keys that make it read images as the pretraining did: channel order, and
    the mean and std the classifier was normalised with (docs/reproduction.md, "what each
    backbone needs": the weights' input contract)."""
    cls = pretrain_cfg.INPUT.CLS
    return [
        "INPUT.FORMAT",
        pretrain_cfg.INPUT.FORMAT,
        "MODEL.PIXEL_MEAN",
        str([float(v) for v in cls.PIXEL_MEAN]),
        "MODEL.PIXEL_STD",
        str([float(v) for v in cls.PIXEL_STD]),
    ]


def _merged(config_file: str, overrides: Sequence[str]) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_file(repo_path(config_file))
    cfg.merge_from_list(list(overrides))
    return cfg


def _check_opts(opts: Sequence[str], flag: str) -> None:
    if len(opts) % 2:
        raise UsageError(f"{flag}: config overrides come in KEY VALUE pairs, got {list(opts)}")
    for key in opts[::2]:
        if key in ("OUTPUT_DIR", "MODEL.WEIGHTS"):
            raise UsageError(
                f"{flag}: {key} is set by the command for each run; use --output-dir "
                "and the --weights-* flags instead"
            )


def plan_steps(
    comparison: Comparison,
    *,
    output_dir: str,
    pretrain: bool,
    weights: Optional[Mapping[str, Optional[str]]] = None,
    opts: Sequence[str] = (),
    pretrain_opts: Sequence[str] = (),
    check_files: bool = True,
) -> List[Step]:
    """The steps of ``comparison``, in the order they run.

    Args:
        comparison: one of paper.COMPARISONS, or demo.DEMO.
        output_dir: the folder that holds every run of the comparison.
        pretrain: pretrain and convert both backbones first (always true for the demo, whose
            backbones have no weights flag).
        weights: {backbone slug: detector weights file} without ``pretrain``; a missing or None
            entry keeps the config's MODEL.WEIGHTS.
        opts: ``KEY VALUE`` overrides for both detection runs.
        pretrain_opts: ``KEY VALUE`` overrides for both pretraining runs.
        check_files: raise MissingFileError for a weights file that does not exist.
    """
    _check_opts(opts, "detection overrides")
    _check_opts(pretrain_opts, "pretraining overrides")
    weights = dict(weights or {})
    steps: List[Step] = []
    for b in comparison.backbones:
        pretrain_b = pretrain or b.weights_flag is None
        det_overrides: List[str] = ["OUTPUT_DIR", os.path.join(output_dir, f"detect_{b.slug}")]
        if pretrain_b:
            if weights.get(b.slug):
                raise UsageError(
                    f"{b.weights_flag}: the weights come from our own pretraining here "
                    "(--pretrain); give either, not both"
                )
            run_dir = os.path.join(output_dir, f"pretrain_{b.slug}")
            p_overrides = ("OUTPUT_DIR", run_dir, *pretrain_opts)
            p_cfg = _merged(b.pretrain_config, p_overrides)
            final = os.path.join(run_dir, "model_final.pth")
            steps.append(
                Step(
                    f"pretrain_{b.slug}",
                    "pretrain",
                    b,
                    run_dir,
                    final,
                    b.pretrain_config,
                    p_overrides,
                    p_cfg,
                )
            )
            converted = os.path.join(output_dir, "weights", f"{b.slug}.pth")
            steps.append(
                Step(
                    f"convert_{b.slug}",
                    "convert",
                    b,
                    os.path.dirname(converted),
                    converted,
                    source=final,
                )
            )
            det_overrides += ["MODEL.WEIGHTS", converted, *input_contract_overrides(p_cfg)]
        elif weights.get(b.slug):
            det_overrides += ["MODEL.WEIGHTS", weights[b.slug]]
        det_overrides += list(opts)
        cfg = _merged(b.detection_config, det_overrides)
        if check_files and not pretrain_b and not os.path.isfile(cfg.MODEL.WEIGHTS):
            raise MissingFileError(
                f"{b.weights_flag}: the {b.name} weights file {cfg.MODEL.WEIGHTS!r} does not exist "
                f"(the default is {b.detection_config}'s MODEL.WEIGHTS); name the file with "
                f"{b.weights_flag} PATH, or pass --pretrain to pretrain {b.name} ourselves"
            )
        steps.append(
            Step(
                f"detect_{b.slug}",
                "detect",
                b,
                cfg.OUTPUT_DIR,
                os.path.join(cfg.OUTPUT_DIR, "model_final.pth"),
                b.detection_config,
                tuple(det_overrides),
                cfg,
            )
        )
    return steps
