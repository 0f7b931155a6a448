"""The evaluation command end to end on tiny trained models, and its pieces."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arvae import registry, traversal
from arvae.data import sprites
from arvae.evaluate import dim_directions, reconstruction_accuracy, traversal_monotonicity
from arvae.models import MnistVAE
from helpers import write_tiny_mnist

ROOT = Path(__file__).resolve().parents[1]


def run(module_or_script, args, env):
    command = [sys.executable, *(["-m", module_or_script] if "." in module_or_script and not
                                  module_or_script.endswith(".py") else [str(ROOT / module_or_script)]), *args]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "ARVAE_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONPATH": str(ROOT)}


def test_evaluate_command_on_tiny_models(env, tmp_path):
    mnist_dir = write_tiny_mnist(tmp_path / "mnist")
    checkpoints = tmp_path / "checkpoints"
    for key, data_args in (("sprites", ["--max-items", "256"]), ("mnist", ["--data-dir", str(mnist_dir)])):
        run("train.py", ["--dataset", key, "--device", "cpu", "--max-steps", "2", "--batch-size", "16",
                         "--output-dir", str(checkpoints), *data_args], env)
    run("arvae.classifier", ["--data-dir", str(mnist_dir), "--epochs", "1", "--output-dir", str(checkpoints)], env)
    for key, data_args in (("sprites", []), ("mnist", ["--data-dir", str(mnist_dir)])):
        result = run("arvae.evaluate", ["--dataset", key, "--checkpoints", str(checkpoints), "--num-samples", "64",
                                        "--mi-estimator", "histogram", *data_args], env)
        spec = registry.get(key)
        assert spec.display_name in result.stdout and "traversal_monotonicity" in result.stdout
        results = json.loads((checkpoints / key / "metrics.json").read_text())
        assert set(results) == {"arvae", "beta-vae", "evaluated_on"}
        assert results["evaluated_on"]["split"] == "test"
        assert set(results["evaluated_on"]["libraries"]) == {"numpy", "scipy", "scikit-learn", "torch"}
        for kind in ("arvae", "beta-vae"):
            model_results = results[kind]
            for metric in ("interpretability", "modularity", "mig", "sap", "scc", "reconstruction_accuracy",
                           "traversal_monotonicity"):
                assert np.isfinite(model_results[metric]), (key, kind, metric)
            assert set(model_results["per_attribute"]) == set(spec.attribute_names)
            assert all(0 <= part["highest_mi_dim"] < spec.latent_dim for part in model_results["per_attribute"].values())
            assert all(0 <= part["traversal_measured_share"] <= 1 for part in model_results["per_attribute"].values())
            assert 0 <= model_results["traversal_measured_share"] <= 1
            sampled = model_results["sampled_latents"]  # the reference protocol: one z~ per input
            assert 0 < sampled["num_samples"] <= results["evaluated_on"]["num_samples"]
            assert sampled["samples_per_input"] == 1
            for metric in ("interpretability", "modularity", "mig", "sap", "scc"):
                assert np.isfinite(sampled[metric]) and sampled[metric] != model_results[metric], (key, kind, metric)
            assert 0.0 <= model_results["reconstruction_accuracy"] <= 1.0
        assert results["arvae"]["attribute_dims"] == dict(zip(spec.attribute_names, spec.regularized_dims))
        preservation = results["arvae"]["content_preservation"]
        assert set(preservation) == ({"inputs", "reconstructions", "traversals"} if key == "mnist"
                                     else {"inputs", "reconstructions"})
        assert all(0 <= share <= 1 for share in preservation.values())
        if key == "mnist":  # each attribute's traversals, of equal count, average to the overall share
            per_attribute = [results["arvae"]["per_attribute"][name]["content_preservation_traversals"]
                             for name in spec.attribute_names]
            assert np.mean(per_attribute) == pytest.approx(preservation["traversals"])
        if key == "sprites":  # the measured shape of the real test sprites is right (measure: 99.8 %)
            assert preservation["inputs"] > 0.95


def test_sprites_shape_preservation_scores_the_measured_shape_of_reconstructions():
    from arvae.data import sprites

    data = sprites.load_split("test", max_items=90)

    class Copy(torch.nn.Module):  # reconstructs perfectly, or draws every sprite as shape `forced`
        latent_dim = 1

        def __init__(self, forced=None):
            super().__init__()
            self.forced = forced

        def encode(self, x):
            return torch.arange(len(x), dtype=torch.float32)[:, None], torch.zeros(len(x), 1)

        def preprocess(self, inputs):
            return inputs.float() / 255

        def generate(self, z):
            factors = sprites.grid_to_factors(sprites.split_indices("test")[:90])[z[:, 0].long().numpy()]
            if self.forced is not None:
                factors[:, 0] = self.forced
            return torch.from_numpy(sprites.render(factors)).float()[:, None]

    class Blobs(Copy):  # draws every sprite as a disc of its area where it is: what an unfit decoder draws
        def generate(self, z):
            pictures = super().generate(z)[:, 0].numpy()
            area = pictures.sum(axis=(1, 2))
            yy, xx = np.mgrid[0:64, 0:64] + 0.5
            cx = (pictures * xx).sum(axis=(1, 2)) / area
            cy = (pictures * yy).sum(axis=(1, 2)) / area
            discs = (xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2 <= (area / np.pi)[:, None, None]
            return torch.from_numpy(discs.astype(np.float32))[:, None]

    assert sprites.shape_preservation(Copy(), data)["reconstructions"] > 0.95
    squares = (data.attributes[:, 0] == 0).float().mean().item()
    assert sprites.shape_preservation(Copy(forced=0), data)["reconstructions"] == pytest.approx(squares, abs=0.05)
    # a disc is no square: moments alone read round blobs as squares (so this scored the squares' share)
    assert sprites.shape_preservation(Blobs(), data)["reconstructions"] < 0.05


class GrowingSquare(torch.nn.Module):
    """A stand-in decoder: z0 sets the side of a centred square, z1 does nothing."""

    latent_dim = 2

    def eval(self):
        return self

    def generate(self, z):
        size = (z[:, 0].clamp(-4, 4) + 4) / 8 * 20 + 2  # side grows with z0
        canvas = torch.zeros(len(z), 1, 28, 28)
        for i, side in enumerate(size.round().int().tolist()):
            canvas[i, 0, 14 - side // 2: 14 + (side + 1) // 2, 14 - side // 2: 14 + (side + 1) // 2] = 1
        return canvas


def mnist_area_and_length():
    """A dataset spec reduced to what traversal monotonicity reads: MNIST's measure, two attributes."""
    return SimpleNamespace(measure=registry.get("mnist").measure, attribute_names=("area", "length"), periodic={})


def test_traversal_monotonicity_detects_an_attribute_that_follows_its_dim():
    spec = registry.get("mnist")
    z = torch.zeros(4, 2)
    values, measured = traversal.traverse_and_measure(GrowingSquare(), spec.measure, z, dims=[0, 1], steps=9)
    area = measured[0]  # attribute 0 (area) along dim 0
    assert (np.diff(area, axis=1) > 0).all()
    two_attributes = mnist_area_and_length()
    result = traversal_monotonicity(GrowingSquare(), two_attributes, z, [0, 1])
    assert result["per_attribute"]["area"] > 0.99
    assert result["per_attribute"]["length"] == pytest.approx(0.0)  # dim 1 changes nothing


def test_traversal_steps_without_the_attribute_are_left_out_and_counted():
    class VanishingSquare(GrowingSquare):  # grows with z0, and draws nothing at the last two steps
        def generate(self, z):
            canvas = super().generate(z)
            canvas[z[:, 0] > 2.5] = 0
            return canvas

    two_attributes = mnist_area_and_length()
    result = traversal_monotonicity(VanishingSquare(), two_attributes, torch.zeros(3, 2), [0, 1])
    assert result["per_attribute"]["area"] > 0.99  # monotonic over the 7 steps that show a square
    assert result["measured_share"]["area"] == pytest.approx(7 / 9)
    assert result["measured_share"]["length"] == pytest.approx(1.0)  # dim 1: the square stays


def test_a_dim_that_encodes_its_attribute_in_reverse_is_read_the_way_the_data_orders_it():
    spec = registry.get("mnist")
    two_attributes = mnist_area_and_length()
    rng = np.random.default_rng(0)
    area = rng.random(200)
    latents = np.stack([-3 * area + 0.01 * rng.standard_normal(200), rng.standard_normal(200)], axis=1)
    directions = dim_directions(latents, np.stack([area, rng.random(200)], axis=1), [0, 1])
    assert directions[0] == -1  # dim 0 falls as area grows

    class ShrinkingSquare(GrowingSquare):
        def generate(self, z):
            return super().generate(-z)

    z = torch.zeros(4, 2)
    signed = traversal_monotonicity(ShrinkingSquare(), two_attributes, z, [0, 1])
    oriented = traversal_monotonicity(ShrinkingSquare(), two_attributes, z, [0, 1], directions=directions)
    assert signed["per_attribute"]["area"] < -0.99 and oriented["per_attribute"]["area"] > 0.99


def test_traversal_monotonicity_is_also_reported_per_label_of_a_categorical_attribute():
    class GrowsOnlyForLabelZero(GrowingSquare):  # inputs with z1 > 0 (label 1) keep one size
        def generate(self, z):
            return super().generate(torch.where(z[:, 1:] > 0, torch.zeros_like(z), z))

    two_attributes = mnist_area_and_length()
    z = torch.tensor([[0.0, -1.0], [1.0, -2.0], [0.0, 1.0], [0.5, 2.0]])
    labels = np.array([0, 0, 1, 1])
    result = traversal_monotonicity(GrowsOnlyForLabelZero(), two_attributes, z, [0, 1],
                                    groups={"area": (labels, ("grower", "keeper"))})
    by_label = result["by_label"]["area"]
    assert by_label["grower"] > 0.99 and by_label["keeper"] == pytest.approx(0.0)
    assert result["per_attribute"]["area"] == pytest.approx((by_label["grower"] + by_label["keeper"]) / 2)


class TurningSquare(torch.nn.Module):
    """A stand-in sprites decoder: z2 turns a large centred square by 0 to 2.2 rad, past the quarter
    turn after which a square looks turned by a little again; the other dims do nothing."""

    latent_dim = 5

    def eval(self):
        return self

    def generate(self, z):
        turn = ((z[:, 2].clamp(-4, 4) + 4) / 8 * 14).round().numpy()  # dSprites' orientation index, of 40
        factors = np.stack([np.zeros(len(z)), np.full(len(z), 5), turn, np.full(len(z), 16), np.full(len(z), 16)], 1)
        return torch.from_numpy(sprites.render(factors.astype(np.int64))).float()[:, None]


def test_an_angle_is_unwrapped_along_its_traversal():
    spec = registry.get("sprites")
    orientation = spec.attribute_names.index("orientation")
    z, dims = torch.zeros(2, 5), [0, 1, 2, 3, 4]
    values, measured = traversal.traverse_and_measure(TurningSquare(), spec.measure, z, dims)
    assert (np.diff(measured[orientation], axis=1) < 0).any()  # as measured, it jumps back past π/2
    squares = np.zeros((2, len(spec.attribute_names)))  # shape 0: both inputs are squares
    result = traversal_monotonicity(TurningSquare(), spec, z, dims, attributes=squares)
    assert result["per_attribute"]["orientation"] > 0.99  # unwrapped: it turns on, as it does on screen
    with pytest.raises(ValueError, match="attributes"):
        traversal_monotonicity(TurningSquare(), spec, z, dims)


def test_reconstruction_accuracy_is_pixel_accuracy():
    model = MnistVAE().eval()
    images = (torch.rand(8, 1, 28, 28) > 0.5).to(torch.uint8) * 255
    accuracy = reconstruction_accuracy(model, images)
    x = model.preprocess(images)
    expected = ((model(x)[0] > 0) == (x > 0.5)).float().mean().item()
    assert accuracy == pytest.approx(expected)
