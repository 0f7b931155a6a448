"""MNIST IDX reading and the Morpho-MNIST split loader, on tiny IDX folders written to tmp_path."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from arvae import morphometrics
from arvae.data import mnist
from arvae.data.base import AttributeDataset

FIXTURE = Path(__file__).parent / "fixtures" / "mnist_digits.npz"


def write_idx(path, array, magic, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def digits():
    data = np.load(FIXTURE)
    return data["images"], data["labels"]


@pytest.fixture
def idx_dir(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("ARVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARVAE_OFFLINE", "1")
    monkeypatch.delenv("ARVAE_MNIST_DIR", raising=False)
    images, labels = digits
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-5k-images-idx3-ubyte.gz", images[:20], 2051)
    write_idx(folder / "train-5k-labels-idx1-ubyte.gz", labels[:20], 2049)
    write_idx(folder / "t10k-images-idx3-ubyte", images[20:], 2051, compress=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[20:], 2049, compress=False)
    return folder


def test_fixture_is_real_mnist(digits):
    images, labels = digits
    assert images.shape == (32, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (32,) and set(labels) <= set(range(10))
    assert images.max() == 255 and (images == 0).mean() > 0.6


def test_read_idx_roundtrip(tmp_path, digits):
    images, labels = digits
    for compress in (True, False):
        write_idx(tmp_path / "i", images[:5], 2051, compress)
        write_idx(tmp_path / "l", labels[:5], 2049, compress)
        np.testing.assert_array_equal(mnist.read_idx(tmp_path / "i"), images[:5])
        np.testing.assert_array_equal(mnist.read_idx(tmp_path / "l"), labels[:5])


def test_read_idx_rejects_bad_files(tmp_path, digits):
    images, _ = digits
    bad_magic = tmp_path / "bad_magic"
    write_idx(bad_magic, images[:2], 1234)
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(bad_magic)
    truncated = tmp_path / "truncated"
    write_idx(truncated, images[:2], 2051, compress=False)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(ValueError, match="header says"):
        mnist.read_idx(truncated)
    corrupt_gz = tmp_path / "corrupt.gz"
    write_idx(corrupt_gz, images[:2], 2051)
    corrupt_gz.write_bytes(corrupt_gz.read_bytes()[:30])
    with pytest.raises(ValueError, match="corrupt gzip"):
        mnist.read_idx(corrupt_gz)
    html = tmp_path / "html"
    html.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ValueError, match=str(html.name)):
        mnist.read_idx(html)


def test_load_split(idx_dir, digits, tmp_path):
    images, labels = digits
    train, val, test = (mnist.load_split(s, data_dir=idx_dir) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 2, 12)
    for ds in (train, val, test):
        assert isinstance(ds, AttributeDataset) and ds.attribute_names == mnist.ATTRIBUTE_NAMES
        assert ds.inputs.shape[1:] == (1, 28, 28) and str(ds.inputs.dtype) == "torch.uint8"
        assert ds.attributes.shape[1] == 6 and str(ds.attributes.dtype) == "torch.float32"
    # test = the t10k file in order; train/val = a permutation of the training file
    np.testing.assert_array_equal(test.inputs.numpy()[:, 0], images[20:])
    seen = np.concatenate([train.inputs.numpy(), val.inputs.numpy()])[:, 0]
    assert sorted(map(bytes, seen)) == sorted(map(bytes, images[:20]))
    # attributes are the morphometrics of the real digits
    np.testing.assert_allclose(test.attributes.numpy(), morphometrics.measure(images[20:]))
    np.testing.assert_allclose(train.attributes.numpy(), morphometrics.measure(train.inputs.numpy()))
    # labels line up with the images
    train_labels = mnist.load_labels("train", data_dir=idx_dir)
    assert train_labels.dtype == np.int64
    for image, label in zip(train.inputs.numpy()[:, 0], train_labels):
        match = np.flatnonzero((images[:20] == image).all(axis=(1, 2)))
        assert label in labels[match]
    np.testing.assert_array_equal(mnist.load_labels("test", data_dir=idx_dir), labels[20:])
    np.testing.assert_array_equal(train.labels.numpy(), train_labels)  # also carried on the dataset
    np.testing.assert_array_equal(test.labels.numpy(), labels[20:])
    assert test.source == f"MNIST IDX from {idx_dir}: t10k test file, 12 test digits"
    assert train.source == f"MNIST IDX from {idx_dir}: train-5k subset, 18 train digits"
    assert list((tmp_path / "cache").glob("mnist_morpho_*.npz"))


def test_max_items_and_cache(idx_dir, monkeypatch):
    full = mnist.load_split("train", data_dir=idx_dir)
    part = mnist.load_split("train", data_dir=idx_dir, max_items=5)
    assert len(part) == 5 and (part.inputs == full.inputs[:5]).all()
    assert "5 of 18 train digits" in part.source
    np.testing.assert_array_equal(mnist.load_labels("train", data_dir=idx_dir, max_items=5),
                                  mnist.load_labels("train", data_dir=idx_dir)[:5])

    monkeypatch.setenv("ARVAE_MNIST_DIR", str(idx_dir))  # the env var is the fallback for data_dir
    assert len(mnist.load_split("val")) == 2

    def fail(*args, **kwargs):
        raise AssertionError("morphometrics should come from the cache")

    monkeypatch.setattr(morphometrics, "measure", fail)
    again = mnist.load_split("train", data_dir=idx_dir)
    np.testing.assert_array_equal(again.attributes.numpy(), full.attributes.numpy())
    assert len(mnist.load_split("val")) == 2


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ARVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARVAE_OFFLINE", "1")
    monkeypatch.delenv("ARVAE_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        mnist.load_split("train")
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        mnist.load_split("train", data_dir=tmp_path)
    with pytest.raises(ValueError):
        mnist.load_split("dev", data_dir=tmp_path)
