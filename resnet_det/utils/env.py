"""Seeding, RNG state capture/restore and environment information."""
import contextlib
import os
import random
import sys
import time
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch

__all__ = ["seed_all_rng", "draw_seed", "get_rng_states", "set_rng_states", "rng_preserved",
           "collect_env_info"]


def draw_seed() -> int:
    """A fresh seed from the OS entropy pool, pid and clock (used when SEED < 0)."""
    return (os.getpid() + int(time.time() * 1e6) + int.from_bytes(os.urandom(2), "big")) % (2**31)


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
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
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


def collect_env_info(engine: Optional[str] = None) -> str:
    """One line per item: python, torch, torchvision, CUDA/cuDNN, devices, engine."""
    import torchvision

    lines = [
        f"sys.platform: {sys.platform}",
        f"Python: {sys.version.split()[0]}",
        f"numpy: {np.__version__}",
        f"torch: {torch.__version__}",
        f"torchvision: {torchvision.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
        f"torch built with CUDA: {torch.version.cuda}",
    ]
    if torch.cuda.is_available():
        lines.append(f"cuDNN: {torch.backends.cudnn.version()}")
        for i in range(torch.cuda.device_count()):
            lines.append(f"GPU {i}: {torch.cuda.get_device_name(i)}")
    lines.append(f"CPU threads: {torch.get_num_threads()}")
    if engine is not None:
        lines.append(f"engine: {engine}")
    return "\n".join(lines)
