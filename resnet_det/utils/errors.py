"""The project's user-error type: what a user's input can cause, as opposed to a bug.

Tools (resnet_det.utils.cli.run_tool) print these as one ``tool: error: ...`` line and exit
with status 2; any other exception keeps its traceback, because it is a bug to report. Each
subclass also derives from the builtin a caller would naturally catch (ValueError,
FileNotFoundError, KeyError), so ``except ValueError`` keeps working.
"""

__all__ = [
    "UserError",
    "DataError",
    "WeightsError",
    "MissingFileError",
    "UserKeyError",
    "UsageError",
]


class UserError(Exception):
    """Base of every error a user's config, data, weights or command line can cause.

    The message names the key, file or id at fault and, where there is one, the fix.
    """


class DataError(UserError, ValueError):
    """A dataset, annotation or image the user supplied is missing, malformed or inconsistent."""


class WeightsError(UserError, ValueError):
    """A weights file or checkpoint does not fit the model (layout, shapes, input contract)."""


class UsageError(UserError, ValueError):
    """A command-line option that cannot work as given (--num-gpus beyond the visible GPUs,
    --machine-rank outside the job, --dist-url auto on several machines ...)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder named by the user does not exist."""


class UserKeyError(UserError, KeyError):
    """An unknown name (dataset, model, evaluator) asked for by the user."""

    def __str__(self) -> str:  # KeyError's str() quotes the message; show it as written
        return str(self.args[0]) if self.args else ""
