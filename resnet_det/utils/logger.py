"""Logging set-up: console on the main process, OUTPUT_DIR/log.txt (log.txt.rank<k> elsewhere)."""

import logging
import os
import sys
from typing import Optional

__all__ = ["setup_logger"]

_FORMAT = "[%(asctime)s %(name)s %(levelname)s]: %(message)s"


def setup_logger(
    output: Optional[str] = None,
    distributed_rank: int = 0,
    *,
    name: str = "resnet_det",
    level: int = logging.INFO,
) -> logging.Logger:
    """Configure the ``name`` logger (idempotent: handlers are replaced, not stacked).

    Args:
        output: a folder (log goes to ``output/log.txt``) or a file name ending in .txt/.log;
            None logs to the console only.
        distributed_rank: only rank 0 prints to the console; other ranks log to
            ``log.txt.rank<k>`` so their messages are not lost.
        name: logger name (the package logger by default).
        level: logging level.
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    logger.propagate = False
    for h in list(logger.handlers):
        if getattr(h, "_resnet_det", False):
            logger.removeHandler(h)
            h.close()
    fmt = logging.Formatter(_FORMAT, datefmt="%m/%d %H:%M:%S")
    if distributed_rank == 0:
        ch = logging.StreamHandler(stream=sys.stdout)
        ch.setFormatter(fmt)
        ch._resnet_det = True
        logger.addHandler(ch)
    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        fh = logging.FileHandler(filename, mode="a")
        fh.setFormatter(fmt)
        fh._resnet_det = True
        logger.addHandler(fh)
    return logger
