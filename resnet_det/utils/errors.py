"""The project's error types, at the bottom of the package so that every layer can raise them.

- :class:`UserError` and its subclasses: what a user's input can cause, as opposed to a bug.
  Tools (resnet_det.utils.cli.run_tool) print these as one ``tool: error: ...`` line and exit
  with status 2; any other exception keeps its traceback, because it is a bug to report. Each
  subclass also derives from the builtin a caller would naturally catch (ValueError,
  FileNotFoundError, KeyError), so ``except ValueError`` keeps working.
- :class:`ConfigError` (a UserError) names a config key; :func:`reject_value` and
  :func:`require_one_of` raise it.
- :class:`ArgumentError`: a constructor's argument it does not accept, naming the argument. A
  model built from a config turns it into a ConfigError naming the key that gave the argument
  (resnet_det.modeling.registry.ModelDescription), so a rule on an argument is written once, in
  the module that takes it.
"""

from typing import Any, Iterable, NoReturn

__all__ = [
    "UserError",
    "DataError",
    "WeightsError",
    "MissingFileError",
    "UserKeyError",
    "UsageError",
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "ArgumentError",
    "reject_value",
    "require_one_of",
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


class ConfigError(UserError, ValueError):
    """A config key has an invalid value or an invalid combination with other keys."""


class ConfigKeyError(ConfigError, KeyError):
    """A key that the config does not define."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """A value whose type does not match the default's."""


def reject_value(key: str, value: Any, why: str) -> NoReturn:
    """Raise :class:`ConfigError` "config KEY=VALUE: WHY"."""
    raise ConfigError(f"config {key}={value!r}: {why}")


def require_one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` is in ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        reject_value(key, value, f"choose one of {allowed}")


class ArgumentError(ValueError):
    """A module's constructor was given a value it does not accept.

    Args:
        argument: the name of the keyword argument at fault (``"shortcut"``, ``"norm"``).
        message: what is wrong and what is accepted, naming the argument.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument
