"""What the app tells a visitor: attribute definitions and quality badges from metrics.json, the
warning on attributes a model does not control, metric definitions with the paper's link and
BibTeX; and that an output file handed out is never rewritten while it may be served."""
import json
import os

from arvae import PAPER_URL, glossary, registry
from arvae.explorer import explorers
from arvae.ui import common


def write_metrics(root, per_attribute):
    (root / "sprites").mkdir(parents=True, exist_ok=True)
    (root / "sprites" / "metrics.json").write_text(json.dumps({"arvae": {"per_attribute": per_attribute}}))


def test_every_attribute_of_every_dataset_has_a_definition_with_its_unit():
    for spec in registry.DATASETS.values():
        assert all(glossary.ATTRIBUTE_HELP.get(name) for name in spec.attribute_names), spec.key


def test_quality_badges_follow_traversal_monotonicity(tmp_path):
    write_metrics(tmp_path, {"scale": {"traversal_monotonicity": 0.97}, "pos_x": {"traversal_monotonicity": -0.55},
                             "shape": {"traversal_monotonicity": 0.01}, "orientation": {}})
    badges = glossary.attribute_quality(tmp_path, "sprites", "arvae")
    assert {name: level for name, (level, _) in badges.items()} == {
        "scale": "good", "pos_x": "partial", "shape": "none", "orientation": "unknown"}
    assert "0.97" in badges["scale"][1] and "not controlled" in badges["shape"][1] and "decreasing" in badges["pos_x"][1]
    assert glossary.attribute_quality(tmp_path, "mnist", "arvae") == {}  # not evaluated: no badge, no error
    (tmp_path / "sprites" / "metrics.json").write_text("{broken")
    os.utime(tmp_path / "sprites" / "metrics.json", ns=(1, 1))  # a new version of the file is read again
    assert glossary.attribute_quality(tmp_path, "sprites", "arvae") == {}


def test_the_shipped_sprites_models_are_described_by_their_traversals():
    sprites = explorers()["sprites"]
    # AR-VAE moves every attribute along its dim (traversal ρ: shape 0.88, orientation 0.99)
    assert common.controls_note(sprites, "arvae") == ""
    assert "✓ controlled" in common.slider_info(sprites, "arvae", "shape", 0)
    assert "✓ controlled" in common.slider_info(sprites, "arvae", "orientation", 2)
    info = common.slider_info(sprites, "arvae", "scale", 1)
    assert info.startswith("z[1]") and "0.5 to 1" in info and "✓ controlled" in info
    # the β-VAE baseline has no dim that moves shape or orientation (traversal ρ 0.01 and -0.005)
    note = common.controls_note(sprites, "beta-vae")
    assert "does not control" in note and "Orientation" in note.title() and "Shape" in note.title()
    assert "Scale" not in note.title()
    assert common.controls_note(explorers()["folk"], "arvae") == ""  # it controls all four


def test_metric_help_defines_every_metric_links_the_paper_and_gives_bibtex():
    text = glossary.metrics_help_markdown()
    assert all(f"**{name}**" in text for name in ("Interpretability", "MIG", "SAP", "SCC", "Modularity"))
    assert f"]({PAPER_URL})" in text and "@article{" in text and "Pati, Ashis and Lerch, Alexander" in text


def test_an_output_file_is_written_once_and_never_truncated_while_served(tmp_path):
    first = common.output_file("x.png", b"picture")
    inode, size = os.stat(first).st_ino, os.path.getsize(first)
    os.utime(first, (0, 0))
    again = common.output_file("x.png", b"picture")
    assert again == first and os.stat(again).st_ino == inode and os.path.getsize(again) == size
    assert os.stat(again).st_mtime > 0  # handed out again: not pruned as old
    assert not [p for p in os.listdir(os.path.dirname(first)) if p.endswith(".tmp")]
