"""Environment information for the log (seeding and RNG state live in utils/seeding.py)."""

import sys
from typing import Optional

import numpy as np
import torch

__all__ = ["collect_env_info"]


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
