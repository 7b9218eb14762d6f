"""Run a comparison's steps in order, resumably, and write its report.

The state of a comparison lives in OUTPUT_DIR/reproduction.json (written atomically after each
change): per step its config fingerprint, status, attempts, accumulated wall time, the load
average around it, its CPU time, the git commit it ran at and its final results. Run the same
command again and a finished step (status "done", its artifact on disk, the same config) is
skipped; an interrupted one resumes from its last checkpoint (the trainers' ``--resume``); a
step whose config changed since it ran stops the command instead of mixing two configs in one run.
"""

import hashlib
import json
import logging
import os
import subprocess
import time
from typing import Any, Dict, Mapping, Optional, Sequence

from resnet_det.checkpoint import LAST_CHECKPOINT
from resnet_det.utils.errors import UsageError
from resnet_det.utils.file_io import atomic_write_text
from resnet_det.utils.logger import setup_logger

from .paper import Comparison, repo_path
from .plan import Step, plan_steps
from .report import write_report
from .runs import convert_pretrained, train_and_evaluate

__all__ = ["STATE_FILE", "run_comparison", "load_state", "git_commit"]

# Under the package logger, which every run (and _log_to below) points at a log.txt.
logger = logging.getLogger("resnet_det.reproduction")

STATE_FILE = "reproduction.json"


def git_commit() -> str:
    """This checkout's commit (12 hex digits, "+dirty" with uncommitted changes to tracked
    files), or "unknown" outside a git checkout."""
    root = repo_path("")
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def load_state(output_dir: str) -> Dict[str, Any]:
    """OUTPUT_DIR/reproduction.json, or {} when the comparison has not run there yet."""
    path = os.path.join(output_dir, STATE_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _save_state(output_dir: str, state: Mapping[str, Any]) -> None:
    atomic_write_text(os.path.join(output_dir, STATE_FILE), json.dumps(state, indent=1) + "\n")


def _fingerprint(step: Step, world_size: int) -> str:
    if step.kind == "convert":
        # Redone whenever the pretraining checkpoint it read is replaced.
        st = os.stat(step.source) if os.path.isfile(step.source) else None
        return f"{step.source}:{st.st_size}:{st.st_mtime_ns}" if st else ""
    # The merged config before the run resolves anything, and the number of processes (the
    # linear scaling rule rescales a VOC schedule to it).
    text = f"{step.cfg.dump()}\nworld_size: {world_size}\n"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _changed(step: Step, record: Mapping[str, Any]) -> UsageError:
    return UsageError(
        f"step {step.name} in {os.path.dirname(step.run_dir)} ran with another config "
        f"(then: {record.get('config_file')} {' '.join(record.get('overrides', []))}; now: "
        f"{step.config_file} {' '.join(step.overrides)}; or the YAML file or the number of GPUs "
        f"changed). Use another --output-dir, or delete {step.run_dir} to run the step again"
    )


def _loadavg() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (spawned runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _run_step(step: Step, num_gpus: int, dist_url: str) -> Dict[str, Any]:
    if step.kind == "convert":
        return convert_pretrained(step.source, step.artifact)
    return train_and_evaluate(step.kind, step.cfg, num_gpus=num_gpus, dist_url=dist_url)


def _log_to(output_dir: str) -> None:
    # Every run's default_setup points the package logger at its own folder; between runs
    # the comparison logs to OUTPUT_DIR/log.txt.
    setup_logger(os.path.join(output_dir, "log.txt"))


def run_comparison(
    comparison: Comparison,
    *,
    output_dir: str,
    num_gpus: int = 1,
    pretrain: bool = False,
    weights: Optional[Mapping[str, Optional[str]]] = None,
    opts: Sequence[str] = (),
    pretrain_opts: Sequence[str] = (),
    dist_url: str = "auto",
    server_map: Optional[Mapping[str, float]] = None,
    command: str = "",
    dry_run: bool = False,
) -> Dict[str, str]:
    """Pretrain and convert (``pretrain``, and always for the demo), train and evaluate both
    backbones of ``comparison``, skipping what a previous call finished, and write
    OUTPUT_DIR/reproduction.md and reproduction.png.

    Args:
        comparison: paper.COMPARISONS[key] or demo.DEMO.
        output_dir: the comparison's folder (every run goes in a subfolder).
        num_gpus: processes per run (``engine.launch``).
        pretrain: run our own pretraining of both backbones first.
        weights: {slug: detector weights} when not pretraining (default: the configs').
        opts, pretrain_opts: ``KEY VALUE`` overrides of the detection / pretraining runs.
        dist_url: the process group's rendezvous for num_gpus > 1.
        server_map: {slug: mAP} from the PASCAL VOC server (comparisons with ``server``).
        command: the command line, for the report.
        dry_run: print the steps and their commands; run nothing.
    Returns:
        {"markdown": path, "figure": path, "state": path} ({} for a dry run).
    """
    output_dir = os.path.abspath(output_dir)
    steps = plan_steps(
        comparison,
        output_dir=output_dir,
        pretrain=pretrain,
        weights=weights,
        opts=opts,
        pretrain_opts=pretrain_opts,
        check_files=not dry_run,
    )
    server_map = dict(server_map or {})
    if server_map and not comparison.server:
        raise UsageError(f"--server-map: table {comparison.key} is evaluated here, not by a server")
    unknown = set(server_map) - {b.slug for b in comparison.backbones}
    if unknown:
        raise UsageError(
            f"--server-map: unknown backbone(s) {sorted(unknown)}; use "
            f"{[b.slug for b in comparison.backbones]}"
        )
    if dry_run:
        for step in steps:
            print(f"{step.name}: {step.command(num_gpus)}")
        return {}
    os.makedirs(output_dir, exist_ok=True)
    state = load_state(output_dir)
    if state and state.get("comparison") != comparison.key:
        raise UsageError(
            f"--output-dir {output_dir} holds the runs of table {state.get('comparison')!r}, "
            f"not {comparison.key!r}: use another --output-dir"
        )
    state.setdefault("comparison", comparison.key)
    state.setdefault("steps", {})
    state.setdefault("server_map", {}).update(server_map)
    state.setdefault("invocations", []).append(
        {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "num_gpus": num_gpus}
    )
    _log_to(output_dir)
    _save_state(output_dir, state)
    try:
        for step in steps:
            _advance(step, state, output_dir, num_gpus, dist_url)
    finally:
        _log_to(output_dir)
        paths = write_report(comparison, steps, state, output_dir, num_gpus=num_gpus)
        _save_state(output_dir, state)
    logger.info("Wrote %s and %s", paths["markdown"], paths["figure"])
    return dict(paths, state=os.path.join(output_dir, STATE_FILE))


def _advance(
    step: Step, state: Dict[str, Any], output_dir: str, num_gpus: int, dist_url: str
) -> None:
    """Skip ``step`` if it is finished, else run (or resume) it, keeping its record."""
    record = state["steps"].setdefault(step.name, {"attempts": 0, "skipped": 0, "wall_s": 0.0})
    fingerprint = _fingerprint(step, num_gpus)
    done = record.get("status") == "done" and os.path.isfile(step.artifact)
    if done and record.get("fingerprint") == fingerprint:
        record["skipped"] += 1
        logger.info("%s: finished in an earlier call (%s), skipped", step.name, step.artifact)
        return
    started_before = step.kind != "convert" and os.path.isfile(
        os.path.join(step.run_dir, LAST_CHECKPOINT)
    )
    if record.get("fingerprint") not in (None, fingerprint) and (done or started_before):
        if step.kind != "convert":
            raise _changed(step, record)
    logger.info(
        "%s: %s %s", step.name, "resuming" if started_before else "starting", step.command(num_gpus)
    )
    record.update(
        kind=step.kind,
        backbone=step.backbone.slug,
        config_file=step.config_file,
        overrides=list(step.overrides),
        run_dir=step.run_dir,
        artifact=step.artifact,
        fingerprint=fingerprint,
        status="running",
        commit=git_commit(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
        load_start=_loadavg(),
    )
    record["attempts"] += 1
    _save_state(output_dir, state)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    try:
        results = _run_step(step, num_gpus, dist_url)
    except BaseException as e:
        record["cpu_s"] = record.get("cpu_s", 0.0) + _cpu_seconds() - cpu0
        # Ctrl-C, or a trainer stopped by a signal after writing its checkpoint (a SystemExit).
        stopped = isinstance(e, (KeyboardInterrupt, SystemExit))
        record.update(
            status="interrupted" if stopped else "failed",
            wall_s=record["wall_s"] + time.perf_counter() - t0,
            error=f"{type(e).__name__}: {e}"[:500],
        )
        _save_state(output_dir, state)
        raise
    record.pop("error", None)
    record["cpu_s"] = record.get("cpu_s", 0.0) + _cpu_seconds() - cpu0
    record.update(
        status="done",
        wall_s=record["wall_s"] + time.perf_counter() - t0,
        results=results,
        finished=time.strftime("%Y-%m-%d %H:%M:%S"),
        load_end=_loadavg(),
        fingerprint=fingerprint,
    )
    _save_state(output_dir, state)
    logger.info("%s: done in %.0f s: %s", step.name, record["wall_s"], results)
