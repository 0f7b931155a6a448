"""The checkpoints shipped in checkpoints/: trained by train.py, loadable, honestly described."""
import json
from pathlib import Path

import pytest
import torch

from arvae import checkpoint, registry
from arvae.classifier import load_classifier

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
CASES = [(key, kind) for key in registry.DATASETS for kind in registry.MODEL_KINDS]


@pytest.mark.parametrize("key,kind", CASES)
def test_shipped_model_loads_and_has_honest_metadata(key, kind):
    spec = registry.get(key)
    model, metadata = checkpoint.load_trained(spec, kind, ROOT)
    assert isinstance(model, spec.model_class) and not model.training
    assert metadata["dataset"] == key and metadata["model"] == kind and metadata["complete"]
    assert metadata["steps"] > 0 and metadata["hardware"] and metadata["data"]["source"]
    assert metadata["command"].startswith("python train.py") and f"--dataset {key}" in metadata["command"]
    gamma = spec.gamma_for(kind)  # one weight, or one per attribute (a JSON list)
    assert metadata["hyperparameters"]["gamma"] == (list(gamma) if isinstance(gamma, tuple) else gamma)
    assert metadata["hyperparameters"]["beta"] == spec.beta
    if kind == "arvae":  # δ shapes only the regularizer
        assert metadata["hyperparameters"]["delta"] == (list(spec.delta) if isinstance(spec.delta, tuple) else spec.delta)
    assert metadata["hyperparameters"].get("lr_schedule", "constant") == spec.lr_schedule  # the registry's recipe
    assert bool(metadata.get("selected")) == spec.select_best
    assert metadata["weights_dtype"] == "float16"
    with torch.no_grad():
        assert torch.isfinite(model.generate(torch.zeros(2, model.latent_dim)).float()).all()


@pytest.mark.parametrize("key", list(registry.DATASETS))
def test_shipped_metrics_cover_both_models(key):
    results = json.loads((ROOT / key / "metrics.json").read_text())
    assert results["evaluated_on"]["split"] == "test"
    for kind in registry.MODEL_KINDS:
        for metric in ("interpretability", "modularity", "mig", "sap", "scc", "reconstruction_accuracy",
                       "traversal_monotonicity"):
            assert metric in results[kind]
        assert set(results[kind]["per_attribute"]) == set(registry.get(key).attribute_names)
        sampled = results[kind]["sampled_latents"]  # the reference protocol, beside posterior means
        assert sampled["samples_per_input"] == 1 and sampled["num_samples"] > 0
        assert all(0 <= sampled[m] <= 1 for m in ("interpretability", "modularity", "mig", "sap", "scc"))
    assert set(results["evaluated_on"]["libraries"]) == {"numpy", "scipy", "scikit-learn", "torch"}
    if registry.get(key).content_classifier is not None:
        assert results["arvae"]["content_preservation"]["reconstructions"] >= 0


def test_digit_classifier_is_shipped_with_its_held_out_accuracy():
    classifier = load_classifier(ROOT)
    metadata = checkpoint.read_metadata(ROOT / "mnist" / "classifier")
    assert metadata["held_out_accuracy"] >= 0.97 and metadata["held_out_items"] == 10_000
    assert classifier.predict(torch.zeros(1, 28, 28)).shape == (1,)


def test_all_shipped_weights_fit_the_size_budget():
    total = sum(path.stat().st_size for path in ROOT.rglob("model.safetensors"))
    assert total < 40 * 2**20
