"""Command-line entry points: user mistakes end with one clear line, not a traceback.

A wrong config key, a missing file or a bad annotation raises ValueError / KeyError /
FileNotFoundError (or our subclasses) with a message that names the key, file or id. At the
top of a tool that message is all the user needs, so it is printed as `tool: error: ...` and
the tool exits with status 2, argparse's convention for usage errors. Set
RESNET_DET_TRACEBACK=1 to get the traceback instead (for reporting a bug).
"""
import os
import sys
from typing import Callable, TypeVar

T = TypeVar("T")

# What a user's input can cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError)


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
        # KeyError's str() adds quotes around its message; show the message itself.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{prog}: error: {type(e).__name__}: {msg}", file=sys.stderr)
        print(f"{prog}: (set RESNET_DET_TRACEBACK=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
