"""A small held-out sample of every dataset, shipped with the checkpoints, so the app never needs
the datasets themselves (no download, no corpus parsing at run time).

    python -m arvae.samples --dataset all [--data-dir DIR] [--num-samples 300] [--output-dir checkpoints]

writes ``<output-dir>/<dataset>/samples.npz``: ``num_samples`` items drawn (seeded) from the
dataset's **test** split -- never a training item -- with their attributes and, where the registry
says how to get them, class labels (MNIST digits) and the piece each item comes from (music).
:func:`load_samples` reads it back.
"""
from __future__ import annotations

import argparse
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES_FILE = "samples.npz"
DEFAULT_NUM_SAMPLES = 300
SPLIT = "test"
FORMAT_VERSION = 1


def checkpoints_root(root=None) -> Path:
    """``root``, else ``$ARVAE_CHECKPOINTS``, else ``checkpoints/`` next to this package."""
    if root is not None:
        return Path(root)
    env = os.environ.get("ARVAE_CHECKPOINTS", "").strip()
    return Path(env) if env else Path(__file__).resolve().parents[1] / "checkpoints"


def samples_path(key: str, root=None) -> Path:
    return checkpoints_root(root) / key / SAMPLES_FILE


@dataclass(frozen=True)
class Samples:
    """The held-out sample of one dataset.

    ``inputs``: uint8 images ``(N, H, W)`` in 0-255, or int64 tokens ``(N, 24)``;
    ``attributes``: float32 ``(N, L)`` (NaN where undefined); ``labels``: class labels (MNIST digits) or None;
    ``indices``: the items' positions in the test split; ``pieces``: piece of each measure (music).
    """

    key: str
    inputs: np.ndarray
    attributes: np.ndarray
    attribute_names: tuple[str, ...]
    indices: np.ndarray
    source: str
    split: str = SPLIT
    labels: np.ndarray | None = None
    pieces: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def is_image(self) -> bool:
        return self.inputs.ndim == 3

    def model_inputs(self, index=None):
        """Raw model inputs as a torch tensor, in the data modules' format (uint8 ``(N, 1, H, W)``
        images or int64 ``(N, 24)`` tokens); ``model.preprocess`` takes them as they are."""
        import torch

        data = self.inputs if index is None else self.inputs[np.atleast_1d(index)]
        if self.is_image:
            return torch.from_numpy(np.ascontiguousarray(data[:, None]))
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.int64))

    def describe(self, i: int, label_name: str = "label") -> str:
        """A short label of item ``i`` for menus ("#3 · digit 7", "#5 · airdsAirs/12#4")."""
        parts = [f"#{i}"]
        if self.labels is not None:
            parts.append(f"{label_name} {int(self.labels[i])}")
        if self.pieces is not None:
            parts.append(self.pieces[i])
        return " · ".join(parts)


def export(key: str, output_dir=None, data_dir=None, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0,
           max_items: int | None = None) -> Path:
    """Draw ``num_samples`` items of the test split of dataset ``key`` and write ``samples.npz``.

    ``max_items`` is passed to the data module's ``load_split`` (a quick, smaller test split)."""
    from arvae import registry
    from arvae.data.base import save_npz_atomic

    spec = registry.get(key)
    data = spec.load_split(SPLIT, data_dir=data_dir, max_items=max_items)
    if len(data) == 0:
        raise ValueError(f"the {SPLIT} split of {key} is empty (max_items={max_items}); nothing to export")
    n = min(int(num_samples), len(data))
    chosen = np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False))
    inputs = data.inputs.numpy()[chosen]
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "dataset": np.array(key),
        "split": np.array(SPLIT),
        "source": np.array(data.source),
        "attribute_names": np.array(list(data.attribute_names), dtype=str),
        "attributes": data.attributes.numpy()[chosen].astype(np.float32),
        "indices": chosen.astype(np.int64),
        "seed": np.array(seed),
        # uint8 images (N, H, W) as the data modules hold them, or tokens, which fit in int8
        "inputs": inputs[:, 0] if inputs.ndim == 4 else inputs.astype(np.int8),
    }
    if spec.load_labels is not None:
        arrays["labels"] = np.asarray(spec.load_labels(SPLIT, data_dir=data_dir, max_items=max_items), np.int64)[chosen]
    if spec.load_pieces is not None:
        pieces = spec.load_pieces(SPLIT, data_dir=data_dir, max_items=max_items)
        if len(pieces) == len(data):  # names are a nicety: left out when they do not line up
            arrays["pieces"] = np.array([pieces[i] for i in chosen], dtype=str)
    path = samples_path(key, output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(path, **arrays)
    load_samples.cache_clear()
    return path


@functools.lru_cache(maxsize=16)
def _load(path_str: str, mtime_ns: int, key: str) -> Samples:
    with np.load(path_str, allow_pickle=False) as data:
        if str(data["split"]) != SPLIT:
            raise ValueError(f"{path_str} holds {data['split']} items, expected {SPLIT}")
        inputs = data["inputs"]
        inputs = inputs.astype(np.uint8) if inputs.ndim == 3 else inputs.astype(np.int64)
        return Samples(
            key=key,
            inputs=inputs,
            attributes=data["attributes"].astype(np.float32),
            attribute_names=tuple(str(s) for s in data["attribute_names"]),
            indices=data["indices"].astype(np.int64),
            source=str(data["source"]),
            split=str(data["split"]),
            labels=data["labels"].astype(np.int64) if "labels" in data.files else None,
            pieces=tuple(str(s) for s in data["pieces"]) if "pieces" in data.files else None,
        )


def load_samples(key: str, root=None) -> Samples:
    """The held-out sample of dataset ``key`` from ``<root>/<key>/samples.npz`` (cached in memory;
    re-read when the file changes). Raises ``FileNotFoundError`` with the export command."""
    path = samples_path(key, root)
    if not path.is_file():
        raise FileNotFoundError(f"no held-out sample for {key} at {path}; export one with: "
                                f"python -m arvae.samples --dataset {key}")
    return _load(str(path.resolve()), path.stat().st_mtime_ns, key)


load_samples.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def main(argv=None) -> None:
    from arvae import registry

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=[*registry.DATASETS, "all"])
    parser.add_argument("--data-dir", help="dataset files, as for train.py")
    parser.add_argument("--output-dir", help="checkpoints folder (default: $ARVAE_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--num-samples", type=int, default=DEFAULT_NUM_SAMPLES)
    parser.add_argument("--max-items", type=int, help="cap what the data module loads (quick tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keys = list(registry.DATASETS) if args.dataset == "all" else [args.dataset]
    for key in keys:
        path = export(key, args.output_dir, args.data_dir, args.num_samples, args.seed, args.max_items)
        samples = load_samples(key, args.output_dir)
        print(f"{key}: {len(samples)} {SPLIT} items -> {path}")


if __name__ == "__main__":
    main()
