"""The config's error types, and the helpers that raise them naming the key.

``ConfigError`` is a :class:`resnet_det.utils.errors.UserError` (the tools print it as one line)
and a ValueError. The model builders import this module, not the ``resnet_det.config``
package, because config validation asks the model registry (resnet_det.modeling.registry)
whether the settings fit together: the registry stays importable while the package loads.
"""

from typing import Any, Callable, Iterable, NoReturn

from ..utils.errors import UserError

__all__ = [
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "reject_value",
    "require_one_of",
    "require_valid",
]


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


def require_valid(key: str, value: Any, check: Callable[[Any], None]) -> None:
    """Run a builder's own check of one argument (e.g. ``check_norm``) on ``value``; its
    ValueError becomes a :class:`ConfigError` naming ``key``, so the accepted values are
    written once, next to the code that uses them."""
    try:
        check(value)
    except ValueError as e:
        reject_value(key, value, str(e))
