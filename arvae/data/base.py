"""What every data module returns, plus the cache and split helpers they share."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arvae.checkpoint import _replace_atomically as replace_atomically

SPLITS = ("train", "val", "test")


@dataclass
class AttributeDataset:
    """Model inputs with their attribute values, ready for ``torch.utils.data``.

    ``inputs``: uint8 images ``(N, 1, H, W)`` in 0-255 (models scale them), or int64 music tokens ``(N, 24)``.
    ``attributes``: float32 ``(N, L)``, columns in ``attribute_names`` order.
    ``source``: where the data came from (recorded in checkpoint metadata).
    ``labels``: optional class labels ``(N,)`` (MNIST digits), kept aligned by :meth:`subset`.
    """

    inputs: torch.Tensor
    attributes: torch.Tensor
    attribute_names: tuple[str, ...]
    source: str
    labels: torch.Tensor | None = None

    def __post_init__(self):
        if len(self.inputs) != len(self.attributes):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.attributes)} attribute rows")
        if self.attributes.shape[1] != len(self.attribute_names):
            raise ValueError("attribute columns do not match attribute_names")

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index):
        return self.inputs[index], self.attributes[index]

    def subset(self, indices) -> "AttributeDataset":
        indices = torch.as_tensor(indices, dtype=torch.long)
        labels = None if self.labels is None else self.labels[indices]
        return AttributeDataset(self.inputs[indices], self.attributes[indices], self.attribute_names, self.source,
                                labels)


def cache_dir() -> Path:
    """Where parsed datasets are cached (``$ARVAE_CACHE`` or ``~/.cache/arvae``)."""
    path = Path(os.environ.get("ARVAE_CACHE", Path.home() / ".cache" / "arvae"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def split_groups(group_ids, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministically split items into train/val/test *by group* (e.g. by piece).

    Every item of a group lands in the same split, so held-out items come from unseen groups.
    Returns, per split, the sorted item indices.
    """
    group_ids = np.asarray(group_ids)
    groups = np.unique(group_ids)
    order = np.random.default_rng(seed).permutation(len(groups))
    bounds = np.round(np.cumsum(fractions)[:-1] * len(groups)).astype(int)
    split_of_group = np.empty(len(groups), dtype=np.int64)
    for split_index, chunk in enumerate(np.split(order, bounds)):
        split_of_group[chunk] = split_index
    item_split = split_of_group[np.searchsorted(groups, group_ids)]
    return {name: np.flatnonzero(item_split == i) for i, name in enumerate(SPLITS)}


def save_npz_atomic(path: Path, **arrays) -> None:
    """Write an ``.npz`` file with the checkpoints' atomic replace (temporary, fsync, rename): a
    killed process never leaves half a file."""
    path = Path(path)

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    replace_atomically(path.parent, path.name, write)
