"""Names a package exports but imports on first use (PEP 562), so that importing the package
does not import what those names need (torch, for the packages that score a results file)."""

import importlib
from typing import Any, Callable, Dict, List, Mapping, Tuple

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: Dict[str, Any]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        table: {exported name: module it comes from}, absolute or relative to ``package``
            (a leading dot).
        namespace: the package's ``globals()``: a name, once imported, is kept there and
            ``__getattr__`` is not asked again.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
