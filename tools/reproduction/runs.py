"""One step of the chain through the library's own entry points.

- :func:`train_and_evaluate`: pretraining (ClassificationTrainer) or detection
  (DetectionTrainer), started with ``resnet_det.engine.launch`` exactly as
  tools/pretrain_net.py and tools/train_net.py start them, always with ``--resume`` semantics:
  a run with a checkpoint in its OUTPUT_DIR continues from it, a finished one only evaluates.
  The final evaluation is written to OUTPUT_DIR/final_results.json by the main process (spawned
  processes cannot hand their results back), and read from there.
- :func:`convert_pretrained`: a pretraining checkpoint to detector weights, as
  tools/convert_weights.py does (``convert_weights_file``).
"""

import json
import math
import os
from collections.abc import Mapping
from typing import Any, Dict

from resnet_det.checkpoint import convert_weights_file
from resnet_det.config import CfgNode
from resnet_det.engine import default_setup, launch
from resnet_det.engine.defaults import auto_scale_workers
from resnet_det.utils import comm
from resnet_det.utils.file_io import atomic_write_text

__all__ = ["RESULTS_FILE", "TRAINERS", "train_and_evaluate", "convert_pretrained", "read_results"]

RESULTS_FILE = "final_results.json"
TRAINERS = ("pretrain", "detect")


def _plain(results: Any) -> Any:
    """Nested results with Python floats (NaN as None, which JSON can hold)."""
    if isinstance(results, Mapping):
        return {str(k): _plain(v) for k, v in results.items()}
    value = float(results)
    return None if math.isnan(value) else value


def _trainer_class(kind: str):
    # Imported here: the detection trainer pulls in the evaluation stack, pretraining does not.
    if kind == "pretrain":
        from resnet_det.engine.pretrain import ClassificationTrainer

        return ClassificationTrainer
    if kind == "detect":
        from resnet_det.engine.detection import DetectionTrainer

        return DetectionTrainer
    raise ValueError(f"run kind must be one of {TRAINERS}, got {kind!r}")


def _main(kind: str, cfg: CfgNode) -> Any:
    """What every process of the run does (module level, so launch can pickle it)."""
    cfg = auto_scale_workers(cfg, comm.get_world_size())
    cfg.freeze()
    default_setup(cfg)
    trainer = _trainer_class(kind)(cfg)
    trainer.resume_or_load(resume=True)
    results = trainer.train()
    if comm.is_main_process():
        atomic_write_text(
            os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE),
            json.dumps(_plain(results or {}), indent=1) + "\n",
        )
    return results


def read_results(run_dir: str) -> Dict[str, Any]:
    """The final evaluation a run wrote, or {} when it has none (yet)."""
    path = os.path.join(run_dir, RESULTS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def train_and_evaluate(
    kind: str, cfg: CfgNode, *, num_gpus: int = 1, dist_url: str = "auto"
) -> Dict[str, Any]:
    """Train ``cfg`` from its OUTPUT_DIR's last checkpoint (or MODEL.WEIGHTS) to MAX_ITER and
    evaluate the final model.

    Args:
        kind: "pretrain" (classification) or "detect" (Faster R-CNN).
        cfg: the run's config (not frozen; rescaled here to the world size as the tools do).
        num_gpus: processes on this machine (``launch``; 1 runs in this process).
        dist_url: the process group's rendezvous ("auto": a free local port).
    Returns:
        the final evaluation, e.g. {"bbox": {"AP": .., "AP50": ..}} or {"center": {"top1_err": ..}}.
    """
    _trainer_class(kind)
    path = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE)
    if os.path.exists(path):
        os.remove(path)  # a previous attempt's: the results read below are this run's
    launch(_main, num_gpus, dist_url=dist_url, args=(kind, cfg))
    if not os.path.isfile(path):
        raise RuntimeError(
            f"the {kind} run in {cfg.OUTPUT_DIR} ended without writing {RESULTS_FILE}"
        )
    return read_results(cfg.OUTPUT_DIR)


def convert_pretrained(checkpoint: str, output: str) -> Dict[str, Any]:
    """Write the network weights of the pretraining checkpoint ``checkpoint`` (its model_final.pth)
    to ``output`` in our layout, as ``tools/convert_weights.py CHECKPOINT OUTPUT --to resnet_det``;
    returns {"entries": number of tensors written}."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    state_dict = convert_weights_file(checkpoint, output, to="resnet_det")
    return {"entries": len(state_dict)}
