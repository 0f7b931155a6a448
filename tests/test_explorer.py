"""arvae.explorer: every function the app's tabs use, called directly (no Gradio, no server), on
the shipped checkpoints."""
import json
from pathlib import Path

import numpy as np
import pytest

from arvae import explorer as E
from arvae import hub, registry
from arvae.evaluate import metrics_markdown

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.fixture(scope="module")
def explorers():
    return E.explorers(ROOT)


@pytest.fixture(scope="module")
def mnist(explorers):
    return explorers["mnist"]


@pytest.fixture(scope="module")
def bach(explorers):
    return explorers["bach"]


# ----------------------------------------------------------------------------- checking input

@pytest.mark.parametrize("text, message", [
    (None, "no latent code yet"), ("  ", "no latent code yet"), ("[1, 2", "JSON list of 3 numbers"),
    ("[1, 2]", "3 finite numbers, got 2"), ("[1, NaN, 2]", "finite"), ('"abc"', "JSON list of 3 numbers"),
])
def test_parse_z_refuses_what_is_not_a_code(text, message):
    with pytest.raises(ValueError, match=message):
        E.parse_z(text, 3)


def test_parse_z_reads_text_and_lists_and_clips():
    assert E.parse_z("[1, -2, 3.5]", 3).tolist() == [1, -2, 3.5]
    assert E.parse_z([100, 0, -100], 3).tolist() == [50, 0, -50]
    assert json.loads(E.format_z(np.array([0.123456, 1.0]))) == [0.1235, 1.0]


@pytest.mark.parametrize("value, message", [
    (None, "missing"), ("abc", "whole number"), (float("nan"), "whole number"), (2.5, "whole number"),
    (99, "between 2 and 17"), (True, "missing"),
])
def test_whole_number_says_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message):
        E.whole_number(value, "steps", 2, 17)


def test_whole_number_and_steps_accept_integral_values():
    assert E.whole_number("7", "x") == 7 and E.whole_number(7.0, "x", 0, 9) == 7
    assert E.check_steps(None) == E.DEFAULT_STEPS
    with pytest.raises(ValueError, match="steps"):
        E.check_steps(1)


def test_check_kind_takes_values_and_labels():
    assert E.check_kind("arvae") == "arvae" and E.check_kind("β-VAE") == "beta-vae"
    with pytest.raises(ValueError, match="unknown model"):
        E.check_kind("gan")


def test_parse_measures():
    assert E.parse_measures(json.dumps([0] * 24)).shape == (1, 24)
    assert E.parse_measures([[1] + [0] * 23] * 3).shape == (3, 24)
    with pytest.raises(ValueError, match="no measure yet"):
        E.parse_measures("")
    with pytest.raises(ValueError, match="JSON list of 24 tokens"):
        E.parse_measures("[1, 2")
    with pytest.raises(ValueError):
        E.parse_measures("[1, 2, 3]")


def test_slider_value_is_within_the_span():
    assert E.slider_value(7.123) == 4.0 and E.slider_value(-0.1234) == -0.12


# ----------------------------------------------------------------------------- dims and sliders

def test_attribute_dims_of_both_models(mnist):
    dims, source = mnist.attribute_dims("arvae")
    assert dims == list(mnist.spec.regularized_dims) and "regularized" in source
    beta_dims, source = mnist.attribute_dims("beta-vae")
    assert len(beta_dims) == len(mnist.spec.attribute_names) and all(0 <= d < mnist.latent_dim for d in beta_dims)
    assert "mutual information" in source


def test_a_dim_shared_by_two_attributes_gets_one_slider(explorers, monkeypatch):
    sprites = explorers["sprites"]
    monkeypatch.setitem(sprites._dims, "beta-vae", ([7, 7, 3, 1, 9], "test"))
    assert sprites.slider_dims("beta-vae") == [7, None, 3, 1, 9]
    assert "follow the first attribute" in sprites.dims_note("beta-vae")
    z = sprites.compose("beta-vae", None, [1.0, 2.0, 0.5, None, -1.0])
    assert z[7] == 1.0 and z[3] == 0.5 and z[1] == 0.0 and z[9] == -1.0  # the follower's 2.0 is ignored


def test_compose_starts_from_the_code_then_dims_then_attributes(mnist):
    base = E.format_z(np.arange(mnist.latent_dim) / 10)
    z = mnist.compose("arvae", base, [3.0] + [None] * 5)
    assert z[0] == 3.0 and z[1] == pytest.approx(0.1) and z[15] == pytest.approx(1.5)
    dim_values = [-1.0] * mnist.latent_dim
    z = mnist.compose("arvae", base, [None] * 6, dim_values)
    assert np.all(z == -1.0)
    assert np.all(mnist.compose("arvae", None, [None] * 6) == 0)
    with pytest.raises(ValueError, match="16 finite numbers"):
        mnist.compose("arvae", "[1, 2]", [None] * 6)


# ----------------------------------------------------------------------------- codes, traversals, surfaces

def test_encode_decode_measure_shapes_and_cache(mnist):
    image = mnist.example(0)
    z = mnist.encode("arvae", image)
    assert z.shape == (16,) and z.dtype == np.float32
    assert mnist.encode("arvae", image) is z  # cached
    assert np.allclose(mnist.encode("arvae", image.astype(np.float32) / 255), z, atol=1e-5)
    decoded = mnist.decode("arvae", z)
    assert decoded.shape == (1, 28, 28) and 0 <= decoded.min() and decoded.max() <= 1
    assert mnist.measure(decoded).shape == (1, 6)
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\)"):
        mnist.encode("arvae", np.zeros((64, 64)))


def test_example_and_prior_checks(mnist):
    with pytest.raises(ValueError, match="between 0 and"):
        mnist.example(10_000)
    assert np.array_equal(mnist.prior_code(3), mnist.prior_code(3)) and mnist.prior_code(-1).shape == (16,)
    with pytest.raises(ValueError, match="seed"):
        mnist.prior_code("x")


def test_traverse_shapes_and_values(mnist):
    z = mnist.encode("arvae", mnist.example(1))
    tr = mnist.traverse("arvae", z, 5)
    assert tr.values.tolist() == [-4, -2, 0, 2, 4]
    assert tr.decoded.shape == (6, 5, 28, 28) and tr.measured.shape == (6, 5) and tr.dims == [0, 1, 2, 3, 4, 5]
    # row l sweeps dim l: its middle image is the decoding of z with z[l] = 0
    middle = z.copy()
    middle[2] = 0.0
    assert np.allclose(tr.decoded[2, 2], mnist.decode("arvae", middle)[0], atol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        mnist.traverse("arvae", z, 40)


def test_surface_shape_and_refusals(mnist):
    z = mnist.encode("arvae", mnist.example(2))
    surface, dim_x, dim_y = mnist.surface("arvae", z, "thickness", 9, 8)
    assert surface.shape == (8, 8) and dim_x == mnist.spec.attribute_names.index("thickness") and dim_y == 9
    with pytest.raises(ValueError, match="unknown attribute"):
        mnist.surface("arvae", z, "colour", 9, 8)
    with pytest.raises(ValueError, match="must differ"):
        mnist.surface("arvae", z, "thickness", dim_x, 8)
    with pytest.raises(ValueError, match="resolution must be between 8 and 32"):
        mnist.surface("arvae", z, "thickness", 9, 64)
    with pytest.raises(ValueError, match="the other dim"):
        mnist.surface("arvae", z, "thickness", 99, 8)


def test_compare_traverses_the_input_with_both_models(mnist):
    traversals = mnist.compare(mnist.example(3), 3)
    assert list(traversals) == list(registry.MODEL_KINDS)
    assert all(tr.decoded.shape == (6, 3, 28, 28) for tr in traversals.values())
    assert traversals["beta-vae"].dims == mnist.attribute_dims("beta-vae")[0]


def test_music_explorer_serves_tokens(bach):
    measure = bach.example(0)
    assert measure.shape == (24,)
    z = bach.encode("arvae", measure)
    decoded = bach.decode("arvae", z)
    assert decoded.shape == (1, 24) and decoded.dtype.kind == "i"
    tr = bach.traverse("arvae", z, 4)
    assert tr.decoded.shape == (4, 4, 24) and tr.measured.shape == (4, 4)
    surface, _, _ = bach.surface("arvae", z, "note_density", 10, 8)
    assert surface.shape == (8, 8)
    assert bach.describe(0).startswith("#0")


# ----------------------------------------------------------------------------- what the tab says

def test_tables_notes_and_choices(explorers):
    sprites = explorers["sprites"]
    assert sprites.format_value("shape", 1.2) == "ellipse" and sprites.format_value("scale", 0.5) == "0.500"
    assert sprites.format_value("scale", float("nan")) == "—"
    assert sprites.format_value("shape", float("nan")) == "none"  # a blob is none of the shapes
    table = sprites.attribute_table({"a": np.zeros(5), "b": None}, "arvae")
    assert table.count("\n") == 1 + 5 and "| shape | z[0] | square | — |" in table
    choices, default = sprites.y_choices("arvae", "scale")
    assert 1 not in [d for _, d in choices] and default == 5 and len(choices) == 9


def test_an_unavailable_model_is_a_clear_error(mnist, monkeypatch):
    monkeypatch.setitem(mnist.status, "beta-vae", (False, "missing model.safetensors"))
    with pytest.raises(hub.CheckpointError, match="no usable β-VAE checkpoint for Morpho-MNIST"):
        mnist.model("beta-vae")
    assert "β-VAE checkpoint is not available" in mnist.availability_notes()


def test_metrics_markdown_lists_every_dataset_beside_the_paper(tmp_path):
    text = metrics_markdown(tmp_path)  # nothing evaluated there
    for spec in registry.DATASETS.values():
        assert f"#### {spec.display_name}" in text
    assert "Not evaluated yet" in text and "| Interpretability | not evaluated yet | not evaluated yet | 0.850 |" in text
    shipped = metrics_markdown(ROOT)
    assert "Evaluated on" in shipped
