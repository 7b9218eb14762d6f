"""Seeds: the one seed mixer, the resolution of SEED < 0, and process-wide RNG state.

Reproducibility contract (docs/reproducibility.md): every random draw of a run is a function
of the resolved SEED. ``resolve_seed`` is called once at setup, so the running config holds
the very seed that OUTPUT_DIR/config.yaml records; the data order, the augmentation of each
sample and the detector's per-image RPN/RoI sampling are then derived from it with
``derive_seed``, never from a clock or from per-worker random state.
"""

import contextlib
import os
import random
import time
import zlib
from typing import Any, Dict, Iterator, Union

import numpy as np
import torch

from .comm import all_gather

__all__ = [
    "derive_seed",
    "draw_seed",
    "resolve_seed",
    "seed_all_rng",
    "get_rng_states",
    "set_rng_states",
    "rng_preserved",
]

SeedPart = Union[int, str]


def _as_int(value: SeedPart) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value) & 0xFFFFFFFFFFFFFFFF
    # Strings (image ids such as VOC's "000005", salts): crc32 of the text, not hash(), so
    # every process and every Python run (whatever PYTHONHASHSEED is) gets the same number.
    text = value if isinstance(value, str) else repr(value)
    data = text.encode()
    return (zlib.crc32(data[::-1]) << 32) | zlib.crc32(data)


def derive_seed(*values: SeedPart) -> int:
    """A 63-bit seed that is a fixed function of the given integers and strings.

    numpy's SeedSequence hashing (stable across platforms and versions), so neighbouring
    inputs (positions 0, 1, 2 ...) give unrelated streams.
    """
    state = np.random.SeedSequence([_as_int(v) for v in values])
    lo, hi = state.generate_state(2, dtype=np.uint32)
    return (int(hi) << 31) ^ int(lo)


def draw_seed() -> int:
    """A fresh seed from the OS entropy pool, pid and clock (used when SEED < 0)."""
    return (os.getpid() + int(time.time() * 1e6) + int.from_bytes(os.urandom(2), "big")) % (2**31)


def resolve_seed(cfg) -> int:
    """Replace SEED < 0 in ``cfg`` by a drawn seed, the same on every process (rank 0's).

    Call once at setup, before the config is saved and before any loader or model reads it:
    afterwards ``cfg.SEED`` is the seed that reproduces the run. Returns the resolved seed.
    ``cfg`` may be frozen; it is unfrozen for the assignment and left as it was.
    """
    seed = int(cfg.SEED)
    if seed < 0:
        seed = int(all_gather(draw_seed())[0])
        frozen = cfg.is_frozen() if hasattr(cfg, "is_frozen") else False
        if frozen:
            cfg.defrost()
        cfg.SEED = seed
        if frozen:
            cfg.freeze()
    return seed


def seed_all_rng(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and all CUDA devices)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed_all_rng: seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def get_rng_states() -> Dict[str, Any]:
    """Every process-wide RNG state, as tensors and plain python types only.

    Plain types matter: checkpoints are read back with ``torch.load(weights_only=True)``,
    which refuses arbitrary objects (numpy arrays included).
    """
    np_state = np.random.get_state()
    states: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _to_tuple(x):
    # torch.load gives lists back for tuples in some versions; random.setstate needs tuples.
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned."""
    for key in ("python", "numpy", "torch"):
        if key not in states:
            raise KeyError(f"set_rng_states: RNG state '{key}' missing (have {sorted(states)})")
    random.setstate(_to_tuple(states["python"]))
    npst = states["numpy"]
    np.random.set_state(
        (
            npst["name"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextlib.contextmanager
def rng_preserved() -> Iterator[None]:
    """Run a block (e.g. an evaluation) without moving the training RNG streams.

    Periodic evaluation happens only in some runs (an uninterrupted one, not a resumed one);
    if it consumed random numbers the two runs would diverge after it.
    """
    states = get_rng_states()
    try:
        yield
    finally:
        set_rng_states(states)
