"""arvae.samples: the held-out sample shipped with the checkpoints (test split only)."""
import numpy as np
import pytest

from arvae import registry, samples
from helpers import write_tiny_mnist


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ARVAE_CACHE", str(tmp_path_factory.getbasetemp() / "samples-cache"))
    monkeypatch.setenv("ARVAE_OFFLINE", "1")
    monkeypatch.delenv("ARVAE_CHECKPOINTS", raising=False)


def test_sprites_sample_is_drawn_from_the_test_split(tmp_path):
    path = samples.export("sprites", tmp_path, num_samples=20, max_items=64)
    assert path == tmp_path / "sprites" / "samples.npz"
    s = samples.load_samples("sprites", tmp_path)
    assert len(s) == 20 and s.split == "test" and s.is_image
    assert s.inputs.shape == (20, 64, 64) and s.inputs.dtype == np.uint8 and set(np.unique(s.inputs)) <= {0, 255}
    assert np.all(np.diff(s.indices) > 0) and s.indices.max() < 64
    test = registry.get("sprites").load_split("test", max_items=64)
    assert np.array_equal(s.inputs, test.inputs.numpy()[s.indices, 0])
    assert np.allclose(s.attributes, test.attributes.numpy()[s.indices])
    assert s.attribute_names == registry.get("sprites").attribute_names
    tensor = s.model_inputs([0, 1])
    assert tuple(tensor.shape) == (2, 1, 64, 64) and str(tensor.dtype) == "torch.uint8"


def test_sprites_test_items_are_never_training_items():
    from arvae.data import sprites

    assert not np.intersect1d(sprites.split_indices("test"), sprites.split_indices("train")).size


def test_mnist_sample_keeps_digit_labels(tmp_path):
    mnist_dir = write_tiny_mnist(tmp_path / "mnist")
    samples.main(["--dataset", "mnist", "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path / "ck"),
                  "--num-samples", "10"])
    s = samples.load_samples("mnist", tmp_path / "ck")
    assert len(s) == 10 and s.inputs.shape == (10, 28, 28)
    assert s.labels is not None and s.labels.shape == (10,)
    from helpers import FIXTURES

    digits = np.load(FIXTURES / "mnist_digits.npz")
    # write_tiny_mnist's test file holds the first 16 fixture digits
    assert np.array_equal(s.inputs, digits["images"][:16][s.indices])
    assert np.array_equal(s.labels, digits["labels"][:16][s.indices])
    assert "digit 7" in s.describe(0, registry.get("mnist").label_name)


def test_music_sample_has_tokens_and_pieces(tmp_path):
    samples.export("bach", tmp_path, num_samples=300, max_items=10)
    s = samples.load_samples("bach", tmp_path)
    test = registry.get("bach").load_split("test", max_items=10)
    assert len(s) == len(test) > 0  # fewer test measures than asked: all of them
    assert s.inputs.dtype == np.int64 and s.inputs.shape[1] == 24 and not s.is_image
    assert np.array_equal(s.inputs, test.inputs.numpy()[s.indices])
    assert s.pieces is not None and len(s.pieces) == len(s) and all("bwv" in p for p in s.pieces)
    assert s.pieces[0] in s.describe(0)


def test_missing_sample_says_how_to_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m arvae.samples --dataset folk"):
        samples.load_samples("folk", tmp_path)


def test_checkpoints_root_follows_the_environment(tmp_path, monkeypatch):
    assert samples.checkpoints_root().name == "checkpoints"
    monkeypatch.setenv("ARVAE_CHECKPOINTS", str(tmp_path))
    assert samples.checkpoints_root() == tmp_path
    assert samples.samples_path("mnist") == tmp_path / "mnist" / "samples.npz"
