"""The Hub's conventions: the Space's front matter (README.md) and the model cards push_to_hub writes."""
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load

from arvae import PAPER_URL, PROJECT_URL, hub, registry

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"


def test_space_front_matter_has_the_keys_the_hub_reads():
    meta = metadata_load(ROOT / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert 0 < len(meta["short_description"]) <= 60  # the Hub refuses longer ones
    assert meta["python_version"] == "3.11" and meta["license"] == "mit"
    assert {"ar-vae", "vae", "disentanglement", "arxiv:2004.05485"} <= set(meta["tags"])
    assert meta["models"] and all(model.count("/") == 1 for model in meta["models"])


@pytest.mark.parametrize("key,kind", [("mnist", "arvae"), ("bach", "beta-vae")])
def test_model_card_has_hub_metadata_and_the_models_evaluation(key, kind, tmp_path):
    spec = registry.get(key)
    model_dir = CHECKPOINTS / key / kind
    card = ModelCard(hub.model_card(model_dir, spec, kind, "someone/ar-vae"))
    data = card.data.to_dict()
    assert data["library_name"] == "arvae" and data["license"] == "mit" and data["pipeline_tag"]
    assert data["repo_url"] == PROJECT_URL and "github.com/ashispati" not in card.content
    assert data["paper_url"] == PAPER_URL == "https://arxiv.org/abs/2004.05485"
    assert {"ar-vae", key, kind} <= set(data["tags"])
    results = card.data.eval_results
    shipped = json.loads((CHECKPOINTS / key / "metrics.json").read_text())[kind]
    by_type = {result.metric_type: result.metric_value for result in results}
    assert by_type["interpretability"] == pytest.approx(shipped["interpretability"], abs=1e-4)
    assert all(result.dataset_type == key and result.dataset_split == "test" for result in results)
    assert "| Interpretability |" in card.text and "## Evaluation" in card.text


def test_model_card_of_an_unevaluated_model_says_so(tmp_path):
    model_dir = tmp_path / "sprites" / "arvae"
    model_dir.mkdir(parents=True)
    card = ModelCard(hub.model_card(model_dir, registry.get("sprites"), "arvae", "someone/ar-vae"))
    assert card.data.eval_results is None and "Not evaluated yet" in card.text
