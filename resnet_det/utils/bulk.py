"""Bulk work on many small objects: the cyclic garbage collector paused meanwhile.

Reading, matching and scoring a results file makes hundreds of thousands of small dicts,
lists and floats, none of them in a reference cycle (reference counting frees them). Python's
cyclic collector, triggered by allocations, would walk all of them again and again while they
are made, a cost that grows with the number of objects alive (docs/benchmarks.md, "End to
end").
"""

import contextlib
import gc
from typing import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block; its previous state is restored
    afterwards (nested blocks leave it as the outermost found it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
