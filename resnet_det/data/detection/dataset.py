"""The detection training/test dataset: dataset dicts kept in one pickled buffer, mapped on
access, with a seeded replacement for an image skipped as unreadable."""

import pickle
import random
from typing import Callable, List, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from ...utils.errors import DataError
from ...utils.seeding import derive_seed
from ..serialized import SerializedDicts
from ..skips import SkippedImage

__all__ = ["SerializedList", "MapDataset"]


class SerializedList:
    """The dataset dicts pickled into one numpy buffer.

    Python lists of dicts are copied page by page into every forked loader worker as their
    reference counts are touched; one flat buffer stays shared (detectron2 does the same).
    The pickles are our own, made in this process from parsed annotations.
    """

    def __init__(self, items: List[dict]) -> None:
        blobs = [
            np.frombuffer(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
            for x in items
        ]
        self._addr = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._addr)

    def __getitem__(self, idx: int) -> dict:
        start = 0 if idx == 0 else int(self._addr[idx - 1])
        return pickle.loads(memoryview(self._data[start : int(self._addr[idx])]))


class MapDataset(Dataset):
    """Applies ``mapper`` to dataset dicts on access.

    Items are either an index (test) or ``(index, seed)`` (training, from TrainBatchSampler);
    the seed drives the sample's augmentation. In training, when the mapper returns a
    SkippedImage or None (a bad image left out) a replacement index from the same aspect group
    is drawn from the seed, so the result is still a function of the seed; the replaced
    images ride along under the sample's "skipped" key, which trivial_batch_collator moves to
    the batch (so the trainer can count them).

    Args:
        dataset: list of dataset dicts, or a SerializedDicts (kept as it is: its buffer, a
            mapped file for a cached set, is already shared by the workers and processes).
        mapper: callable(dict, seed=None) -> dict or None.
        group_ids: aspect group per index (replacements stay within the group), or None.
        serialize: keep a list's dicts in one pickled buffer (cheaper with forked workers).
        max_retries: replacements tried before giving up.
    """

    def __init__(
        self,
        dataset: List[dict],
        mapper: Callable,
        *,
        group_ids: Optional[Sequence[int]] = None,
        serialize: bool = True,
        max_retries: int = 50,
    ) -> None:
        if isinstance(dataset, SerializedDicts):
            self._dataset = dataset
        else:
            self._dataset = SerializedList(dataset) if serialize else list(dataset)
        self.mapper = mapper
        self.max_retries = max_retries
        self._groups = None
        if group_ids is not None:
            self._groups = {}
            for i, g in enumerate(group_ids):
                self._groups.setdefault(g, []).append(i)
            self._group_ids = list(group_ids)

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, item):
        if not isinstance(item, tuple):
            return self.mapper(self._dataset[item])
        index, seed = item
        first = index
        skipped: List[SkippedImage] = []
        for attempt in range(self.max_retries + 1):
            d = self._dataset[index]
            out = self.mapper(d, seed=seed)
            if out is not None and not isinstance(out, SkippedImage):
                if skipped:
                    out["skipped"] = skipped
                return out
            skipped.append(
                out
                if out is not None
                else SkippedImage("other", d.get("file_name", ""), d.get("image_id"))
            )
            rng = random.Random(derive_seed(seed, attempt))
            pool = (
                self._groups[self._group_ids[first]]
                if self._groups is not None
                else range(len(self._dataset))
            )
            index = pool[rng.randrange(len(pool))]
            seed = derive_seed(seed, attempt, 1)
        raise DataError(
            f"MapDataset: {self.max_retries + 1} images in a row could not be "
            f"read (first: {self._dataset[first]['file_name']}); see the "
            f"warnings above"
        )
