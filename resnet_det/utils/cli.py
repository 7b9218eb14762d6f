"""Command-line entry points: user mistakes end with one clear line, not a traceback.

A wrong config key, a missing file, a bad annotation, results or weights file raises one of the
project's user-error types (resnet_det.utils.errors.UserError and its subclasses, among them
resnet_det.config.ConfigError) with a message that names the key, file or id. At the top of a
tool that message is all the user needs, so it is printed as ``tool: error: ...`` and the tool
exits with status 2, argparse's convention for usage errors. Any other exception is a bug and
keeps its traceback. Set RESNET_DET_TRACEBACK=1 to get the traceback of a user error too (for
reporting a bug).
"""

import os
import sys
from typing import Callable, TypeVar

from .errors import UserError

__all__ = ["USER_ERRORS", "run_tool", "format_user_error"]

T = TypeVar("T")

# What a user's input can cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (UserError,)


def format_user_error(prog: str, error: BaseException) -> str:
    """``prog: error: <type>: <message>`` (a KeyError's message without the quotes str() adds)."""
    msg = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return f"{prog}: error: {type(error).__name__}: {msg}"


def run_tool(prog: str, func: Callable[..., T], *args, **kwargs) -> T:
    """Call ``func``; on a user error print ``prog: error: message`` and exit with status 2.

    Args:
        prog: the tool's name for the message (e.g. "train_net.py").
        func: the tool's main function.
        *args, **kwargs: passed to ``func``.
    """
    try:
        return func(*args, **kwargs)
    except USER_ERRORS as e:
        if os.environ.get("RESNET_DET_TRACEBACK", "") not in ("", "0"):
            raise
        print(format_user_error(prog, e), file=sys.stderr)
        print(f"{prog}: (set RESNET_DET_TRACEBACK=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
