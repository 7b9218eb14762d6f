"""A restarted run continues from OUTPUT_DIR by itself, and only with the config it started with.

A SLURM job that was requeued (after a pre-emption or a time limit, engine/signals.py) and a
torchrun worker group restarted by ``--max-restarts`` run the very command they started with:
nobody is there to add ``--resume``. Such a restart is seen in the environment
(SLURM_RESTART_COUNT, TORCHELASTIC_RESTART_COUNT > 0) and agreed over the process group: a
node that torchrun started afresh beside restarted ones has a count of 0, and every rank must
resume from the same checkpoint. Then:

- :func:`check_restarted_config` (default_setup, before OUTPUT_DIR/config.yaml is rewritten)
  compares the config with the one the run saved when it started. A config file edited in
  between stops the job with the differing keys named, instead of training on with a mix of
  two configs. A SEED < 0 takes the seed the run drew the first time, so that its data order
  continues.
- :func:`restarted_run` makes DefaultTrainer.resume_or_load resume without ``--resume``.
"""

import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from ..config import ConfigError
from ..utils import comm

__all__ = [
    "RESTART_VARIABLES",
    "restart_count",
    "restarted_run",
    "check_restarted_config",
    "resume_on_restart",
]

logger = logging.getLogger(__name__)

# Set by SLURM in a requeued job and by torchrun in a restarted worker group.
RESTART_VARIABLES = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")


def restart_count(environ: Optional[Mapping[str, str]] = None) -> Tuple[int, str]:
    """This process's restart count and the variable it comes from: (0, "") when none is
    above 0."""
    env = os.environ if environ is None else environ
    for name in RESTART_VARIABLES:
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value), f"{name}={value}"
    return 0, ""


def restarted_run() -> str:
    """Whether any rank of the run is a restart: its variable (e.g. "SLURM_RESTART_COUNT=1")
    as this rank or the first restarted rank sees it, "" otherwise. A collective call with
    several processes: call it on every rank."""
    count, source = restart_count()
    if comm.get_world_size() < 2:
        return source
    sources = comm.all_gather(source if count else "")
    return next((s for s in sources if s), "")


def _flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(tree, Mapping):
        out: Dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _config_differences(saved: Mapping, current: Mapping) -> List[str]:
    """'KEY: saved -> current' for each key whose value differs (or exists on one side)."""
    a, b = _flatten(saved), _flatten(current)
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            shown_old = "(absent)" if old is missing else repr(old)
            shown_new = "(absent)" if new is missing else repr(new)
            out.append(f"{key}: {shown_old} -> {shown_new}")
    return out


def check_restarted_config(cfg) -> None:
    """In a restarted run (:func:`restarted_run`), compare ``cfg`` with OUTPUT_DIR/config.yaml,
    which the run wrote when it started; call it before that file is written again. A SEED < 0
    in ``cfg`` is replaced by the saved seed. A collective call with several processes.

    Raises:
        ConfigError: the config differs; the message names each differing key with both values.
    """
    source = restarted_run()
    path = os.path.join(cfg.OUTPUT_DIR, "config.yaml") if cfg.OUTPUT_DIR else ""
    if not source:
        return
    differences: List[str] = []
    saved_seed: Optional[int] = None
    compared = comm.is_main_process() and path and os.path.isfile(path)
    if compared:
        with open(path) as f:
            saved = yaml.safe_load(f) or {}
        # The same YAML round trip save_config gives, so tuples compare with lists.
        current = yaml.safe_load(cfg.dump())
        if int(current.get("SEED", 0)) < 0 and isinstance(saved.get("SEED"), int):
            saved_seed = saved["SEED"]
            current["SEED"] = saved_seed
        differences = _config_differences(saved, current)
    differences, saved_seed = comm.all_gather((differences, saved_seed))[0]
    if differences:
        shown = "; ".join(differences[:20]) + ("; ..." if len(differences) > 20 else "")
        raise ConfigError(
            f"This run was restarted ({source}) and resumes from OUTPUT_DIR={cfg.OUTPUT_DIR}, "
            f"but its config differs from {path}, which it saved when it started, in "
            f"{len(differences)} key(s): {shown}. Training on would mix two configs in one "
            "run. Restore the config the run started with, or train the new one in another "
            "OUTPUT_DIR (or cancel the job and start it again with --resume to continue on "
            "purpose with the new config)"
        )
    if saved_seed is not None:
        frozen = cfg.is_frozen()
        cfg.defrost()
        cfg.SEED = saved_seed
        if frozen:
            cfg.freeze()
        logger.info("SEED < 0 in a restarted run: continuing with the seed it drew, %d", saved_seed)
    if compared:
        logger.info("Restarted run (%s): the config is the one %s holds", source, path)


def resume_on_restart(resume: bool) -> bool:
    """``resume``, or True in a restarted run (logged). A collective call with several
    processes."""
    source = restarted_run()
    if source and not resume:
        logger.info("Restarted run (%s): resuming from OUTPUT_DIR without --resume", source)
    return resume or bool(source)
