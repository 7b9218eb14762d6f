#!/usr/bin/env python
"""Submit a training run to SLURM: requeued before its time limit, resumed by itself.

    python tools/launch_slurm.py --nodes 2 --gpus-per-node 8 --partition gpu --time 24:00:00 \\
        tools/train_net.py --config-file configs/faster_rcnn_R101.yaml MODEL.WEIGHTS R-101.pkl
    python tools/launch_slurm.py --dry-run ... tools/train_net.py ...   # print the sbatch script
    python tools/launch_slurm.py --submitit ... tools/pretrain_net.py ... # through submitit

The sbatch script is tools/slurm_train.sbatch with the options below filled in: one srun task
per GPU (--gpus-per-node 0: --tasks-per-node CPU processes with gloo), --signal=B:USR1@DELAY
and --requeue, so that the run stops with a checkpoint DELAY seconds before the time limit,
requeues itself and resumes from OUTPUT_DIR (docs/cluster.md). With --submitit, submitit
(pip install 'resnet_det[slurm]') writes and submits the job instead, with the same resources,
SIGUSR2 as its warning signal, and --requeue. Prints the job id and where the logs go.
"""

import argparse
import os
import runpy
import shlex
import subprocess
import sys

from resnet_det.utils.errors import UsageError
from resnet_det.utils.slurm import parse_time_minutes, sbatch_script

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slurm_train.sbatch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--nodes", type=int, default=1, help="nodes (default 1)")
    parser.add_argument(
        "--gpus-per-node", type=int, default=8, help="GPUs per node (default 8; 0: CPU only)"
    )
    parser.add_argument(
        "--tasks-per-node",
        type=int,
        default=None,
        help="srun tasks (= processes) per node (default: --gpus-per-node, 1 without GPUs)",
    )
    parser.add_argument("--cpus-per-task", type=int, default=8, help="CPUs per task (default 8)")
    parser.add_argument(
        "--partition", default=None, help="SLURM partition (default: the cluster default)"
    )
    parser.add_argument(
        "--time", default="24:00:00", help="time limit, SLURM's syntax (default 24:00:00)"
    )
    parser.add_argument(
        "--signal-delay",
        type=int,
        default=120,
        help="seconds before the time limit that the run is told to stop and requeue "
        "(default 120: longer than an iteration plus a checkpoint write)",
    )
    parser.add_argument(
        "--no-requeue", action="store_true", help="do not let the job requeue itself"
    )
    parser.add_argument("--job-name", default="resnet_det", help="job name (default resnet_det)")
    parser.add_argument(
        "--log-dir",
        default="slurm_logs",
        help="folder of the SLURM logs and the script (default ./slurm_logs)",
    )
    parser.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="--KEY=VALUE",
        help="another sbatch option, e.g. --sbatch-arg=--account=proj (repeatable)",
    )
    parser.add_argument("--template", default=TEMPLATE, help="the sbatch template to fill in")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the sbatch script, submit nothing"
    )
    parser.add_argument(
        "--submitit", action="store_true", help="submit through submitit instead of sbatch"
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="the training script and its arguments, e.g. tools/train_net.py --config-file ...",
    )
    return parser


def _extra_options(args) -> dict:
    out = {}
    for item in args.sbatch_arg:
        if not item.startswith("--"):
            raise UsageError(f"--sbatch-arg {item!r}: give it as --KEY=VALUE or --FLAG")
        key, _, value = item[2:].partition("=")
        out[key] = value
    return out


def directives(args) -> dict:
    """The #SBATCH options of the run."""
    tasks = args.tasks_per_node or (args.gpus_per_node if args.gpus_per_node > 0 else 1)
    out = {
        "job-name": args.job_name,
        "nodes": str(args.nodes),
        "ntasks-per-node": str(tasks),
        "gpus-per-node": str(args.gpus_per_node) if args.gpus_per_node > 0 else None,
        "cpus-per-task": str(args.cpus_per_task),
        "time": args.time,
        "signal": f"B:USR1@{args.signal_delay}",
        "requeue": None if args.no_requeue else "",
        "output": os.path.join(os.path.abspath(args.log_dir), "%x-%j.out"),
        "chdir": os.getcwd(),
    }
    if args.partition:
        out["partition"] = args.partition
    out.update(_extra_options(args))
    return out


def check_args(args) -> None:
    if not args.command:
        raise UsageError("give the training script and its arguments, e.g. tools/train_net.py ...")
    if args.command[0] == "--":
        args.command = args.command[1:]
    script = args.command[0] if args.command else ""
    if not script.endswith(".py") or not os.path.isfile(script):
        raise UsageError(
            f"{script!r}: the command starts with a training script that exists "
            "(tools/train_net.py or tools/pretrain_net.py)"
        )
    for name in ("nodes", "cpus_per_task", "signal_delay"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.gpus_per_node < 0 or (args.tasks_per_node is not None and args.tasks_per_node < 1):
        raise UsageError("--gpus-per-node must be >= 0 and --tasks-per-node >= 1")
    try:
        limit = parse_time_minutes(args.time)
    except ValueError as e:
        raise UsageError(f"--time: {e}") from e
    if args.signal_delay >= limit * 60:
        raise UsageError(
            f"--signal-delay {args.signal_delay} s is not shorter than --time {args.time}"
        )


def output_dir(command) -> str:
    """The run's OUTPUT_DIR as the command's config gives it, or "" if it cannot be read."""
    try:
        from resnet_det.config import get_cfg
        from resnet_det.engine import default_argument_parser

        parsed, _ = default_argument_parser().parse_known_args(command[1:])
        cfg = get_cfg()
        if parsed.config_file:
            cfg.merge_from_file(parsed.config_file)
        cfg.merge_from_list(parsed.opts or [])
        return os.path.abspath(cfg.OUTPUT_DIR)
    except Exception:  # noqa: BLE001 - only for the printout; the job reports config errors
        return ""


def submit_sbatch(args, script: str) -> str:
    os.makedirs(args.log_dir, exist_ok=True)
    path = os.path.join(os.path.abspath(args.log_dir), f"{args.job_name}.sbatch")
    with open(path, "w") as f:
        f.write(script)
    proc = subprocess.run(["sbatch", "--parsable", path], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"sbatch {path} failed: {(proc.stderr or proc.stdout).strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    print(f"Submitted SLURM job {job_id} (sbatch {path})")
    log = os.path.join(os.path.abspath(args.log_dir), f"{args.job_name}-{job_id}.out")
    print(f"  SLURM log:     {log}")
    return job_id


class ToolRun:
    """What each submitit task runs: the training script, in this process, as __main__."""

    def __init__(self, command, cwd: str) -> None:
        self.command, self.cwd = list(command), cwd

    def __call__(self) -> None:
        os.chdir(self.cwd)
        sys.argv = list(self.command)
        runpy.run_path(self.command[0], run_name="__main__")

    def checkpoint(self):
        """submitit's warning signal outside the training loop (set-up, final evaluation):
        requeue the same command; the run resumes from OUTPUT_DIR's last checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(ToolRun(self.command, self.cwd))


def submit_submitit(args) -> str:
    try:
        import submitit
    except ImportError as e:
        raise UsageError(
            "--submitit needs submitit: pip install 'resnet_det[slurm]' (or pip install "
            f"submitit), or leave --submitit out to submit with sbatch ({e})"
        ) from e
    folder = os.path.join(os.path.abspath(args.log_dir), "%j")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    extra = _extra_options(args)
    if not args.no_requeue:
        extra["requeue"] = True
    tasks = args.tasks_per_node or (args.gpus_per_node if args.gpus_per_node > 0 else 1)
    params = dict(
        name=args.job_name,
        nodes=args.nodes,
        tasks_per_node=tasks,
        cpus_per_task=args.cpus_per_task,
        timeout_min=parse_time_minutes(args.time),
        slurm_signal_delay_s=args.signal_delay,
        slurm_additional_parameters=extra,
    )
    if args.gpus_per_node > 0:
        params["gpus_per_node"] = args.gpus_per_node
    if args.partition:
        params["slurm_partition"] = args.partition
    executor.update_parameters(**params)
    job = executor.submit(ToolRun(args.command, os.getcwd()))
    print(f"Submitted SLURM job {job.job_id} (submitit, folder {folder.replace('%j', job.job_id)})")
    print(f"  SLURM log:     {str(job.paths.stdout).replace('%t', '0')} (task 0)")
    return job.job_id


def main(argv=None) -> str:
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.dry_run and args.submitit:
        raise UsageError("--dry-run prints the sbatch script; submitit writes its own")
    if args.submitit:
        job_id = submit_submitit(args)
    else:
        with open(args.template) as f:
            template = f.read()
        command = [sys.executable, "-u"] + args.command
        script = sbatch_script(template, directives=directives(args), command=command)
        if args.dry_run:
            print(script, end="")
            return ""
        job_id = submit_sbatch(args, script)
    out = output_dir(args.command)
    if out:
        print(f"  training log:  {os.path.join(out, 'log.txt')} (OUTPUT_DIR: checkpoints, metrics)")
    print(f"  follow:        squeue -j {job_id};  cancel: scancel {job_id}")
    print(f"  command:       {shlex.join(args.command)}")
    return job_id


if __name__ == "__main__":
    from resnet_det.utils.cli import run_tool

    run_tool("launch_slurm.py", main)
