"""Morpho-MNIST: real MNIST digits with their Morpho-MNIST morphometrics as attributes.

Files are looked up in ``data_dir``, else ``$ARVAE_MNIST_DIR``, else ``cache_dir()/mnist``
(downloaded there from a public mirror if absent). A folder may hold the standard IDX files
(``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``) or the
offline subset ``train-5k-images-idx3-ubyte.gz`` / ``train-5k-labels-idx1-ubyte.gz``.

Splits: ``test`` is the t10k file in file order; the training file is split by a seeded
permutation into ``val`` (the first 10 %) and ``train`` (the rest), each in permutation order,
so ``max_items`` takes a random-looking, class-balanced prefix.

Attributes are :func:`arvae.morphometrics.measure` of the real digits. They are slow to compute
(a few ms per digit), so they are cached per images file (keyed by its content hash) in
``cache_dir()``, filled in for whatever digits a call needs.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arvae import morphometrics
from arvae.data.base import AttributeDataset, cache_dir, check_split, save_npz_atomic

log = logging.getLogger(__name__)

ATTRIBUTE_NAMES = morphometrics.ATTRIBUTE_NAMES
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
VAL_FRACTION = 0.1
SPLIT_SEED = 0
MORPHO_SCALE = 4  # Morpho-MNIST's upsampling factor

STANDARD_FILES = {  # name: md5 of the .gz (the published checksums)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT_S = 10
# (prefix, description) of the training files we recognise, best first
TRAIN_FILES = (("train", "full training file"), ("train-5k", "train-5k subset"))


def read_idx(path) -> np.ndarray:
    """Read an MNIST IDX file (raw or gzip): uint8 images (N, rows, cols) or labels (N,).

    Raises ``ValueError`` naming the file if it is not a well-formed images (magic 2051) or
    labels (magic 2049) file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: corrupt gzip data ({error})") from error
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise ValueError(
            f"{path}: bad IDX magic number {magic:#010x}; expected {IMAGES_MAGIC} (images) or "
            f"{LABELS_MAGIC} (labels). Not an MNIST IDX file, or a corrupted one")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says {dims} = {expected:,} bytes of data, file has {len(raw) - header:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


@dataclass(frozen=True)
class _Files:
    folder: Path
    display: str  # the folder as the user gave it
    train_images: Path | None
    train_labels: Path | None
    train_kind: str
    test_images: Path | None
    test_labels: Path | None


def _first(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _scan(folder, display: str | None = None) -> _Files | None:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return None
    train = (None, None, "")
    for prefix, kind in TRAIN_FILES:
        images, labels = _first(folder, f"{prefix}-images-idx3-ubyte"), _first(folder, f"{prefix}-labels-idx1-ubyte")
        if images and labels:
            train = (images, labels, kind)
            break
    test_images, test_labels = _first(folder, "t10k-images-idx3-ubyte"), _first(folder, "t10k-labels-idx1-ubyte")
    if not (test_images and test_labels):
        test_images = test_labels = None
    if train[0] is None and test_images is None:
        return None
    return _Files(folder, display or str(folder), *train, test_images, test_labels)


_NOT_FOUND = ("MNIST IDX files not found{where}. Pass --data-dir pointing at a folder with "
              "train-images-idx3-ubyte.gz / t10k-images-idx3-ubyte.gz (and labels) or the offline "
              "train-5k subset, or set $ARVAE_MNIST_DIR to such a folder.")


def _download(target: Path) -> bool:
    """Fetch the four standard files into ``target``; False if no mirror works."""
    if os.environ.get("ARVAE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    target.mkdir(parents=True, exist_ok=True)
    for mirror in MIRRORS:
        try:
            for name, md5 in STANDARD_FILES.items():
                if (target / name).is_file():
                    continue
                with urllib.request.urlopen(mirror + name, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    data = response.read()
                if hashlib.md5(data).hexdigest() != md5:
                    raise ValueError(f"checksum mismatch for {name}")
                tmp = target / f"{name}.part{os.getpid()}"
                tmp.write_bytes(data)
                os.replace(tmp, target / name)
            return True
        except Exception as error:
            log.warning("MNIST download from %s failed: %s", mirror, error)
    return False


def _locate(data_dir=None) -> _Files:
    if data_dir is not None:
        found = _scan(data_dir, str(data_dir))
        if found is None:
            raise FileNotFoundError(_NOT_FOUND.format(where=f" in {data_dir}"))
        return found
    env = os.environ.get("ARVAE_MNIST_DIR")
    if env:
        found = _scan(env, env)
        if found is None:
            raise FileNotFoundError(_NOT_FOUND.format(where=f" in $ARVAE_MNIST_DIR={env}"))
        return found
    target = cache_dir() / "mnist"
    found = _scan(target)
    if found is not None and found.train_kind == "full training file" and found.test_images is not None:
        return found
    if _download(target):
        return _scan(target)
    if found is not None:  # whatever an earlier download left
        return found
    raise FileNotFoundError(_NOT_FOUND.format(where=" (no --data-dir or $ARVAE_MNIST_DIR given, and the download failed)"))


def _split_rows(split: str, n_file: int) -> np.ndarray:
    if split == "test":
        return np.arange(n_file)
    perm = np.random.default_rng(SPLIT_SEED).permutation(n_file)
    n_val = int(round(VAL_FRACTION * n_file))
    return perm[:n_val] if split == "val" else perm[n_val:]


def _split_files(files: _Files, split: str):
    if split == "test":
        if files.test_images is None:
            raise FileNotFoundError(f"no t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte in {files.display}")
        return files.test_images, files.test_labels, "t10k test file"
    if files.train_images is None:
        raise FileNotFoundError(f"no training IDX files (train-images-idx3-ubyte or train-5k-...) in {files.display}")
    return files.train_images, files.train_labels, files.train_kind


def _read_split(split: str, data_dir, max_items):
    check_split(split)
    if max_items is not None and max_items < 0:
        raise ValueError("max_items must be >= 0")
    files = _locate(data_dir)
    images_path, labels_path, kind = _split_files(files, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"{images_path} / {labels_path}: expected images (N, H, W) and labels (N,)")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    rows = _split_rows(split, len(images))
    n_split = len(rows)
    if max_items is not None:
        rows = rows[:max_items]
    count = f"{len(rows):,} of {n_split:,}" if len(rows) < n_split else f"{n_split:,}"
    source = f"MNIST IDX from {files.display}: {kind}, {count} {split} digits"
    return images_path, images, labels, rows, source


def load_labels(split: str, data_dir=None, max_items: int | None = None) -> np.ndarray:
    """Digit classes (N,) int64 of the same digits, in the same order, as :func:`load_split`."""
    _, _, labels, rows, _ = _read_split(split, data_dir, max_items)
    return labels[rows].astype(np.int64)


def _morphometrics(images_path: Path, images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Morphometrics of ``images[rows]``, computing only what the per-file cache lacks."""
    digest = hashlib.sha1(images.tobytes()).hexdigest()[:16]
    cache = cache_dir() / f"mnist_morpho_{digest}_s{MORPHO_SCALE}.npz"
    values = np.full((len(images), len(ATTRIBUTE_NAMES)), np.nan, dtype=np.float32)
    done = np.zeros(len(images), dtype=bool)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as data:
                if data["values"].shape == values.shape:
                    values, done = data["values"].copy(), data["done"].copy()
        except Exception as error:
            log.warning("ignoring unreadable cache %s (%s)", cache, error)
    missing = np.sort(rows[~done[rows]])
    if len(missing):
        from tqdm import tqdm

        block = 2000
        with tqdm(total=len(missing), unit="digit", desc=f"morphometrics of {images_path.name}", mininterval=2.0) as bar:
            for start in range(0, len(missing), block):
                part = missing[start:start + block]
                values[part] = morphometrics.measure(images[part], scale=MORPHO_SCALE)
                done[part] = True
                save_npz_atomic(cache, values=values, done=done, source=np.array(str(images_path)))
                bar.update(len(part))
    return values[rows]


def load_split(split: str, data_dir=None, max_items: int | None = None) -> AttributeDataset:
    """One split of Morpho-MNIST: uint8 inputs (N, 1, 28, 28) in 0-255, float32 morphometrics (N, 6).

    The returned dataset also carries ``labels``, the digit classes (N,) as an int64 tensor
    (the same as :func:`load_labels`).
    """
    images_path, images, labels, rows, source = _read_split(split, data_dir, max_items)
    attributes = _morphometrics(images_path, images, rows)
    inputs = torch.from_numpy(np.ascontiguousarray(images[rows][:, None]))
    return AttributeDataset(inputs, torch.from_numpy(attributes), ATTRIBUTE_NAMES, source,
                            labels=torch.from_numpy(labels[rows].astype(np.int64)))
