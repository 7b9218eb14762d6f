"""Where the datasets live: ``datasets_root()``, under which every built-in dataset name finds
its files (docs/datasets.md)."""

import os

__all__ = ["datasets_root"]


def datasets_root() -> str:
    """The datasets folder: $RESNET_DET_DATASETS (``~`` expanded), default ./datasets.

    Read at each call rather than at import, so the variable can be set after
    ``import resnet_det``; the layouts under it are in docs/datasets.md.
    """
    return os.path.expanduser(os.environ.get("RESNET_DET_DATASETS", "./datasets"))
