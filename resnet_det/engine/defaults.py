"""What every training entry point shares: the argument parser, run set-up and a
task-agnostic trainer that detection and classification pretraining subclass."""

import argparse
import inspect
import logging
import os
from collections.abc import Mapping
from typing import Any, Callable, Iterable, List, Optional, Union

import torch
from torch import nn

from ..checkpoint import Checkpointer, adopt_weights_contract, unwrap_model
from ..config import CfgNode, ConfigError, save_config, validate_cfg
from ..modeling import ModelDescription
from ..solver import build_lr_scheduler as _build_lr_scheduler
from ..solver import build_optimizer as _build_optimizer
from ..utils import comm
from ..utils.env import collect_env_info
from ..utils.logger import setup_logger
from ..utils.seeding import resolve_seed, seed_all_rng
from . import hooks
from .events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from .preflight import (
    check_dataset_class_counts,
    check_dataset_files,
    check_datasets_registered,
    check_output_dir,
    check_weights_file,
    estimate_checkpoint_bytes,
    may_resume,
)
from .restarts import check_restarted_config, resume_on_restart
from .signals import STOP_SIGNALS, TrainingPreempted
from .train_loop import SimpleTrainer, TrainerBase

__all__ = ["default_argument_parser", "default_setup", "DefaultTrainer", "auto_scale_workers"]

logger = logging.getLogger(__name__)


def default_argument_parser(epilog: Optional[str] = None) -> argparse.ArgumentParser:
    """detectron2's flags: --config-file, --resume, --eval-only, --num-gpus, --num-machines,
    --machine-rank, --dist-url and trailing ``KEY VALUE`` config overrides."""
    parser = argparse.ArgumentParser(
        epilog=epilog
        or "Example: train_net.py --config-file cfg.yaml --num-gpus 8 "
        "SOLVER.IMS_PER_BATCH 16 MODEL.WEIGHTS /path/to/weights.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a YAML config")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from OUTPUT_DIR/last_checkpoint if present (else start from MODEL.WEIGHTS)",
    )
    parser.add_argument("--eval-only", action="store_true", help="evaluate, do not train")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine")
    parser.add_argument("--num-machines", type=int, default=1, help="machines in the job")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="this machine's rank (0 .. num-machines - 1)"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="rendezvous URL of the process group, e.g. tcp://host:port; "
        "'auto' picks a free local port (one machine only)",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. SOLVER.BASE_LR 0.01",
    )
    return parser


def default_setup(cfg: CfgNode, args: Optional[argparse.Namespace] = None) -> int:
    """Create OUTPUT_DIR, set up logging (OUTPUT_DIR/log.txt), log environment and config,
    check the config (incl. IMS_PER_BATCH divisible by the world size), save
    OUTPUT_DIR/config.yaml and seed every RNG. Call it in every process. Returns the seed
    used by this process (SEED + rank). SEED < 0 is replaced in ``cfg`` itself by a drawn seed
    (the same on every rank), logged and recorded."""
    output_dir = cfg.OUTPUT_DIR
    rank, world = comm.get_rank(), comm.get_world_size()
    if comm.is_main_process() and output_dir:
        check_output_dir(output_dir)  # creatable and writable, else ConfigError naming OUTPUT_DIR
    comm.synchronize()
    setup_logger(output_dir or None, distributed_rank=rank)
    logger.info("Rank of current process: %d. World size: %d", rank, world)
    logger.info("Environment info:\n%s", collect_env_info(engine=cfg.ENGINE))
    if args is not None:
        logger.info("Command line arguments: %s", args)
        if getattr(args, "config_file", ""):
            with open(args.config_file) as f:
                logger.info("Contents of config file %s:\n%s", args.config_file, f.read())
    validate_cfg(cfg, world_size=world)
    # Under MODEL.WEIGHTS_INPUT_CONTRACT "adopt", the weights' INPUT.FORMAT / MODEL.PIXEL_*
    # before the config is saved and anything is built; under "check" the weights loader
    # compares the contract of what it loads.
    adopt_weights_contract(cfg)
    check_restarted_config(cfg)  # a requeued / restarted run keeps its config (and drawn SEED)

    drawn = cfg.SEED < 0
    # Resolved in the running config itself (not only in the saved copy), so the loaders and
    # the detector's samplers derive their streams from the very seed config.yaml records.
    seed = resolve_seed(cfg)
    if drawn:
        logger.info("SEED < 0: drew seed %d (recorded in config.yaml)", seed)
    logger.info("Running with full config:\n%s", cfg.dump())
    if comm.is_main_process() and output_dir:
        save_config(cfg, os.path.join(output_dir, "config.yaml"))
    process_seed = seed + rank
    seed_all_rng(process_seed)
    logger.info(
        "Seeded python, numpy and torch with %d (SEED %d + rank %d)", process_seed, seed, rank
    )
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    # Once the lr is divided late in training, gradients and momentum buffers decay into
    # subnormal floats, which x86 CPUs process many times slower (docs/benchmarks.md,
    # "Subnormal floats on CPU"). Flushing them to zero costs nothing in accuracy; GPUs already
    # do this for the kernels that matter.
    torch.set_flush_denormal(True)
    return process_seed


def auto_scale_workers(cfg: CfgNode, num_workers: int) -> CfgNode:
    """Return a copy of ``cfg`` rescaled from SOLVER.REFERENCE_WORLD_SIZE to ``num_workers``
    processes (linear scaling rule, Goyal et al.): IMS_PER_BATCH and BASE_LR times k,
    MAX_ITER, STEPS, WARMUP_ITERS, CHECKPOINT_PERIOD and TEST.EVAL_PERIOD divided by k."""
    ref = cfg.SOLVER.REFERENCE_WORLD_SIZE
    if ref == 0 or ref == num_workers:
        return cfg
    cfg = cfg.clone()
    frozen = cfg.is_frozen()
    cfg.defrost()
    if cfg.SOLVER.IMS_PER_BATCH % ref != 0:
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH = {cfg.SOLVER.IMS_PER_BATCH} is not divisible "
            f"by SOLVER.REFERENCE_WORLD_SIZE = {ref}"
        )
    scale = num_workers / ref
    s = cfg.SOLVER
    s.IMS_PER_BATCH = int(round(s.IMS_PER_BATCH * scale))
    s.BASE_LR = s.BASE_LR * scale
    s.MAX_ITER = int(round(s.MAX_ITER / scale))
    s.WARMUP_ITERS = int(round(s.WARMUP_ITERS / scale))
    s.STEPS = tuple(int(round(x / scale)) for x in s.STEPS)
    s.CHECKPOINT_PERIOD = max(int(round(s.CHECKPOINT_PERIOD / scale)), 1)
    cfg.TEST.EVAL_PERIOD = int(round(cfg.TEST.EVAL_PERIOD / scale))
    s.REFERENCE_WORLD_SIZE = num_workers
    logger.info(
        "Auto-scaled the config from %d to %d workers: IMS_PER_BATCH=%d, BASE_LR=%g, "
        "MAX_ITER=%d, STEPS=%s",
        ref,
        num_workers,
        s.IMS_PER_BATCH,
        s.BASE_LR,
        s.MAX_ITER,
        s.STEPS,
    )
    if frozen:
        cfg.freeze()
    return cfg


def simple_trainer_kwargs(cfg: CfgNode) -> dict:
    """cfg.SOLVER.AMP / CLIP_GRADIENTS / CHANNELS_LAST / SKIP_NONFINITE_ITERS -> SimpleTrainer
    keyword arguments."""
    s = cfg.SOLVER
    clip = s.CLIP_GRADIENTS
    return dict(
        amp_enabled=s.AMP.ENABLED,
        amp_dtype=s.AMP.DTYPE,
        grad_clip_type=clip.CLIP_TYPE if clip.ENABLED else None,
        grad_clip_value=clip.CLIP_VALUE,
        grad_clip_norm_type=clip.NORM_TYPE,
        channels_last=s.CHANNELS_LAST,
        max_nonfinite_skips=s.SKIP_NONFINITE_ITERS,
    )


class DefaultTrainer(TrainerBase):
    """Task-agnostic trainer: SimpleTrainer + Checkpointer + the standard hooks.

    Either pass the parts, or subclass and override the ``build_*`` classmethods and
    :meth:`test`. The training loader is built by ``build_train_loader(cfg, start_iter)``
    after :meth:`resume_or_load`, so a resumed run continues the same data stream.

    Typical use::

        trainer = MyTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()

    Before the model is built, :meth:`preflight` checks what can be known then (datasets,
    class counts, MODEL.WEIGHTS, OUTPUT_DIR; engine/preflight.py). While training, SIGTERM and
    SIGINT end the run after the current iteration with its checkpoint written
    (engine/signals.py: TrainingPreempted, exit status 3).
    """

    stop_signals = STOP_SIGNALS

    def __init__(
        self,
        cfg: CfgNode,
        model: Optional[nn.Module] = None,
        data_loader: Union[None, Iterable, Callable[[int], Iterable]] = None,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Any = None,
        evaluate_fn: Optional[Callable[[nn.Module], Optional[Mapping]]] = None,
        weights_loader: Optional[Callable[[nn.Module, str], Any]] = None,
    ) -> None:
        """
        Args:
            cfg: the run's config (SOLVER, TEST.EVAL_PERIOD, LOG_PERIOD, OUTPUT_DIR, ...).
            model: the model (default ``build_model(cfg)``); moved nowhere, wrapped in DDP
                when the world size is > 1.
            data_loader: an infinite iterable of batches, or ``f(start_iter)`` returning one
                (default ``build_train_loader(cfg, start_iter)``). A plain iterable must
                itself be positioned for the iteration training starts from.
            optimizer: default ``build_optimizer(cfg, model)``.
            scheduler: default ``build_lr_scheduler(cfg, optimizer)``.
            evaluate_fn: ``f(model) -> results dict`` (default: ``test(cfg, model)`` if a
                subclass overrides it; otherwise no evaluation).
            weights_loader: ``f(model, path)`` for MODEL.WEIGHTS (default
                ``build_weights_loader(cfg)``, i.e. resnet_det.load_weights).
        """
        super().__init__()
        # Rescale SOLVER values written for SOLVER.REFERENCE_WORLD_SIZE processes (no-op at 0).
        cfg = auto_scale_workers(cfg, comm.get_world_size())
        self.cfg = cfg
        overrides_test = type(self).test.__func__ is not DefaultTrainer.test.__func__
        # Before anything is built or read: a wrong class count, dataset name or weights path
        # stops here, within seconds, not at the evaluation after the training. The model's
        # description, resolved from the config once, is what the checks and the build read.
        description = self.preflight(
            cfg, train=data_loader is None, test=evaluate_fn is None and overrides_test
        )
        model = model if model is not None else self.build_model(cfg, description)
        optimizer = optimizer if optimizer is not None else self.build_optimizer(cfg, model)
        scheduler = scheduler if scheduler is not None else self.build_lr_scheduler(cfg, optimizer)
        if comm.is_main_process():
            s = cfg.SOLVER
            kept = s.CHECKPOINT_KEEP_LAST or s.MAX_ITER // max(s.CHECKPOINT_PERIOD, 1)
            check_output_dir(
                cfg.OUTPUT_DIR,
                needed_bytes=estimate_checkpoint_bytes(model, optimizer),
                num_checkpoints=kept + 1,
            )  # + model_final.pth
        self._raw_model = model
        if comm.get_world_size() > 1:
            device_ids = None
            if next(model.parameters()).device.type == "cuda":
                device_ids = [torch.cuda.current_device()]  # one GPU per task under srun too
            # find_unused_parameters=False: every parameter gets a gradient each step (frozen
            # ones have requires_grad False); True would cost an extra graph traversal.
            # Buffers (BN statistics) stay per process during training, as in detectron2.
            ddp = nn.parallel.DistributedDataParallel
            sync = (
                {"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
                else {"broadcast_buffers": False}
            )
            model = ddp(model, device_ids=device_ids, find_unused_parameters=False, **sync)
        self._data_loader_spec = data_loader
        self._trainer = SimpleTrainer(model, None, optimizer, **simple_trainer_kwargs(cfg))
        self.optimizer = optimizer
        self.scheduler = scheduler
        if evaluate_fn is None and overrides_test:
            evaluate_fn = lambda m: type(self).test(self.cfg, m)  # noqa: E731
        self.evaluate_fn = evaluate_fn
        self.checkpointer = Checkpointer(
            unwrap_model(model),
            cfg.OUTPUT_DIR,
            optimizer=optimizer,
            scheduler=scheduler,
            grad_scaler=self._trainer.grad_scaler,
            weights_loader=weights_loader or self.build_weights_loader(cfg),
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self._last_eval_results: Optional[Mapping] = None
        self.register_hooks(self.build_hooks())

    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    # ------------------------------------------------------------------ checks
    @classmethod
    def preflight(
        cls,
        cfg: CfgNode,
        *,
        train: bool = True,
        test: bool = True,
        resume: Optional[bool] = None,
        description: Optional[ModelDescription] = None,
    ) -> Optional[ModelDescription]:
        """Check, before any model is built or image read, what would otherwise fail later:
        the model's settings (:meth:`describe_model`, unless ``description`` is given), the
        DATASETS.TRAIN (``train``) and DATASETS.TEST (``test``) names are registered, the
        head's class count (:meth:`head_classes`) matches theirs, their annotation files and
        folders exist, MODEL.WEIGHTS is a readable file when it will be loaded (not when
        ``resume`` - None: not known yet - and OUTPUT_DIR has a checkpoint to resume from),
        SOLVER's fault-handling keys are valid. Subclasses add their own checks. Raises the
        project's user errors naming the key and the fix. Returns the model's description,
        which :meth:`build_model` takes."""
        if description is None:
            description = cls.describe_model(cfg)
        s = cfg.SOLVER
        for key in ("CHECKPOINT_KEEP_LAST", "SKIP_NONFINITE_ITERS"):
            if s[key] < 0:
                raise ConfigError(
                    f"config SOLVER.{key}={s[key]}: must be >= 0 (0 = "
                    f"{'keep all' if key == 'CHECKPOINT_KEEP_LAST' else 'stop at the first'})"
                )
        train_sets = list(cfg.DATASETS.TRAIN) if train else []
        test_sets = list(cfg.DATASETS.TEST) if test else []
        check_datasets_registered("DATASETS.TRAIN", train_sets)
        check_datasets_registered("DATASETS.TEST", test_sets)
        head = cls.head_classes(description) if description is not None else None
        if head is not None:
            check_dataset_class_counts(head[0], head[1], train_sets, test_sets)
        check_dataset_files("DATASETS.TRAIN", train_sets)
        check_dataset_files("DATASETS.TEST", test_sets)
        if not (resume is not False and may_resume(cfg.OUTPUT_DIR)):
            check_weights_file(cfg.MODEL.WEIGHTS)  # else resume_or_load checks it if it is used
        return description

    @classmethod
    def describe_model(cls, cfg: CfgNode) -> Optional[ModelDescription]:
        """The description of the model :meth:`build_model` builds, resolved from the config
        once per run (resnet_det.modeling.describe_model); None: the trainer has none."""
        return None

    @classmethod
    def head_classes(cls, description: ModelDescription):
        """(config key, value) of the model's class count, checked against the datasets'
        classes by :meth:`preflight`; None: nothing to check."""
        return None

    # ------------------------------------------------------------------ overridables
    @classmethod
    def build_model(cls, cfg: CfgNode, description: Optional[ModelDescription] = None) -> nn.Module:
        """The model ``description`` (default: :meth:`describe_model`'s) describes."""
        description = description if description is not None else cls.describe_model(cfg)
        if description is None:
            raise NotImplementedError(f"{cls.__name__}.build_model: pass model= or override it")
        return description.build()

    @classmethod
    def build_train_loader(cls, cfg: CfgNode, start_iter: int = 0) -> Iterable:
        raise NotImplementedError(
            f"{cls.__name__}.build_train_loader: pass data_loader= or "
            "override it (build with start_iter so resume continues "
            "the same data stream)"
        )

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        return _build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer):
        return _build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_weights_loader(cls, cfg: CfgNode) -> Optional[Callable[[nn.Module, str], Any]]:
        """``f(model, path)`` loading MODEL.WEIGHTS; None = resnet_det.load_weights."""
        return None

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module) -> Optional[Mapping]:
        """Evaluate ``model``; returns a (nested) dict of numbers. Subclasses override."""
        raise NotImplementedError(f"{cls.__name__}.test is not implemented")

    def build_writers(self) -> List:
        out = self.cfg.OUTPUT_DIR
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(os.path.join(out, "metrics.json")),
            TensorboardXWriter(out),
        ]

    def build_hooks(self) -> List[hooks.HookBase]:
        cfg = self.cfg
        ret: List[Optional[hooks.HookBase]] = [hooks.IterationTimer()]
        # Evaluation before the lr hook and the checkpointer: a plateau schedule hears of the
        # result at once, and a checkpoint taken at the same iteration includes that state,
        # so a run resumed from it continues exactly.
        if self.evaluate_fn is not None:
            ret.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, self._evaluate))
        else:
            logger.info(
                "No evaluation configured (no evaluate_fn and %s.test not overridden)",
                type(self).__name__,
            )
        ret += [
            hooks.LRScheduler(self.optimizer, self.scheduler),
            # On every rank: saving gathers each rank's RNG state (only rank 0 writes).
            hooks.PeriodicCheckpointer(
                self.checkpointer,
                cfg.SOLVER.CHECKPOINT_PERIOD,
                keep_last=cfg.SOLVER.CHECKPOINT_KEEP_LAST,
            ),
        ]
        # Before the writers: the counts of skipped data reach metrics.json with the step.
        ret.append(hooks.DataSkipCounts(lambda: self._trainer.data_loader))
        if comm.is_main_process():
            # After the evaluation hook so the final results reach the writers.
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=cfg.LOG_PERIOD))
        return ret

    # ------------------------------------------------------------------ running
    def _evaluate(self) -> Optional[Mapping]:
        self._last_eval_results = self.evaluate_fn(unwrap_model(self.model))
        return self._last_eval_results

    def resume_or_load(self, resume: bool = True) -> int:
        """Resume from OUTPUT_DIR/last_checkpoint (``resume`` and one exists) or load
        MODEL.WEIGHTS; sets and returns the start iteration. A requeued SLURM job or a restarted
        torchrun resumes without ``resume`` (engine/restarts.py)."""
        resume = resume_on_restart(resume)
        if not (resume and self.checkpointer.has_checkpoint()):
            check_weights_file(self.cfg.MODEL.WEIGHTS)
        self.start_iter = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        return self.start_iter

    def _make_loader(self, start_iter: int) -> Iterable:
        spec = self._data_loader_spec
        if spec is None:
            return self.build_train_loader(self.cfg, start_iter=start_iter)
        if callable(spec) and not hasattr(spec, "__iter__"):
            return spec(start_iter)
        if start_iter:
            logger.info(
                "Training from iteration %d with a data loader given as an iterable: "
                "it must already be positioned there",
                start_iter,
            )
        return spec

    def train(self) -> Optional[Mapping]:
        """Train from ``start_iter`` to SOLVER.MAX_ITER; returns the last evaluation results."""
        self._trainer.reset_data_loader(self._make_loader(self.start_iter))
        super().train(self.start_iter, self.max_iter)
        return self._last_eval_results

    def stop_after_iteration(self, reason: str) -> None:
        """Write the checkpoint of the completed iteration ``self.iter`` (unless the periodic
        checkpointer just did) and last_checkpoint, then raise TrainingPreempted."""
        periodic = next((h for h in self._hooks if isinstance(h, hooks.PeriodicCheckpointer)), None)
        if periodic is not None:
            periodic.save(self.iter)
        else:
            self.checkpointer.save(f"model_{self.iter:07d}", iteration=self.iter)
        comm.synchronize()  # no rank exits before rank 0 has written the file
        path = self.checkpointer.get_checkpoint_file() if self.checkpointer.save_to_disk else ""
        msg = (
            f"Stopped by {reason} after iteration {self.iter} (of {self.max_iter}); "
            f"checkpoint {path or 'written by rank 0'}. Run the same command with --resume "
            "to continue from there"
        )
        logger.warning(msg)
        raise TrainingPreempted(msg, iteration=self.iter, checkpoint=path, signal_name=reason)

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.storage = self.storage
        self._trainer.run_step()
