"""Small builders shared by tests: tiny on-disk datasets made from the shipped fixtures."""
import gzip
import struct
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX (gz) file: magic 2051 for images, 2049 for labels."""
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">II", magic, array.shape[0]) + b"".join(struct.pack(">I", d) for d in array.shape[1:])
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(directory: Path) -> Path:
    """A MNIST folder in the standard file names, built from the real digits in the fixture."""
    directory.mkdir(parents=True, exist_ok=True)
    fixture = np.load(FIXTURES / "mnist_digits.npz")
    images, labels = fixture["images"], fixture["labels"]
    write_idx(directory / "train-images-idx3-ubyte.gz", images)
    write_idx(directory / "train-labels-idx1-ubyte.gz", labels)
    write_idx(directory / "t10k-images-idx3-ubyte.gz", images[:16])
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", labels[:16])
    return directory
