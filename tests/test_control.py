"""The library behind issue 14's panels, on the shipped checkpoints: the attribute pad
(arvae.control.pad), setting an attribute to a value, the controllability sweeps (against
arvae.evaluate's traversal monotonicity), whole melodies (arvae.melody) and shareable links
(arvae.share). Behaviour only: nothing here depends on the numbers of today's models."""
import json
from urllib.parse import parse_qsl

import numpy as np
import pytest

from arvae import control, evaluate, melody, registry, share, traversal
from arvae.explorer import explorers, format_z
from arvae.music.tokens import FIRST_PITCH_TOKEN, REST

MUSIC_KEYS = [k for k, s in registry.DATASETS.items() if s.domain == "music"]


@pytest.fixture(scope="module")
def by_key():
    return explorers()


def encoded(explorer, kind="arvae", index=3):
    return explorer.encode(kind, explorer.example(index))


@pytest.mark.parametrize("key", list(registry.DATASETS))
def test_pad_decodes_its_plane_and_maps_clicks_to_codes(by_key, key):
    ex = by_key[key]
    names = ex.spec.attribute_names
    z = encoded(ex)
    grid = control.pad(ex, "arvae", format_z(z), names[0], names[1], 5)
    assert grid.dims == tuple(ex.spec.regularized_dims[:2])
    assert grid.decoded.shape[:2] == (5, 5) and grid.measured.shape == (5, 5, 2)
    # row 0 is the top of the pad (y = +4), column 0 its left (x = -4)
    corner = control.pad_code(ex, "arvae", format_z(z), names[0], names[1], -4, 4)
    np.testing.assert_allclose(ex.decode("arvae", corner)[0], grid.decoded[0, 0], atol=1e-4)
    np.testing.assert_allclose(ex.measure(grid.decoded[0, :1])[0, [0, 1]], grid.measured[0, 0], atol=1e-4)
    # a click at the pixel of a latent position gives that position back
    cell = control.thumbnails(grid.decoded[:1, :1])[0, 0]
    for position in [(1.5, -2.0), (-4.0, 4.0), (0.0, 0.0)]:
        pixel = control.pad_pixel(grid, cell.shape, control.pad_scale(cell), position)
        np.testing.assert_allclose(control.pad_position(grid, pixel), position, atol=1e-6)
    picture = control.pad_picture(grid, (0.0, 0.0))
    assert picture.width >= 5 * cell.shape[1] and picture.height >= 5 * cell.shape[0]


def test_pad_refuses_attributes_sharing_a_dim_and_bad_positions(by_key):
    ex = by_key["mnist"]
    names = ex.spec.attribute_names
    with pytest.raises(ValueError, match="share the latent dim"):
        control.pad(ex, "arvae", format_z(encoded(ex)), names[0], names[0], 5)
    with pytest.raises(ValueError, match="resolution"):
        control.pad(ex, "arvae", format_z(encoded(ex)), names[0], names[1], 50)
    with pytest.raises(ValueError, match="x must be a finite number"):
        control.pad_code(ex, "arvae", format_z(encoded(ex)), names[0], names[1], float("nan"), 0)


def test_music_thumbnails_are_piano_rolls():
    measure = np.full(24, 0)
    measure[0], measure[6], measure[12] = FIRST_PITCH_TOKEN + 5, REST, FIRST_PITCH_TOKEN
    roll = control.thumbnails(measure[None])[0]
    rows = roll.shape[0] - 1 - np.array([5, 0])
    assert roll[rows[0], 0] == 1.0 and np.all(roll[rows[0], 1:6] == 0.6)  # onset, then held
    assert np.all(roll[:, 6:12] == 0)  # the rest is silent
    assert roll[rows[1], 12] == 1.0 and np.all(roll[rows[1], 13:] == 0.6)
    assert roll.sum() == pytest.approx(2 + 0.6 * (5 + 11))


@pytest.mark.parametrize("key", ["mnist", "folk"])
def test_set_attribute_reaches_a_target_inside_the_range_and_refuses_outside(by_key, key):
    ex = by_key[key]
    z = encoded(ex)
    name = ex.spec.attribute_names[2]  # thickness / note density
    dim = ex.spec.regularized_dims[2]
    ends = control.measure_along(ex, "arvae", z, dim, np.array([-4.0, 4.0], np.float32))[:, 2]
    target = float(ends.min() + 0.7 * (ends.max() - ends.min()))
    found = control.set_attribute(ex, "arvae", z, name, target)
    assert found.reached and abs(found.value - target) <= found.tolerance
    assert 2 <= found.decodes <= control.MAX_SET_DECODES
    np.testing.assert_array_equal(np.delete(found.code, dim), np.delete(z, dim))  # only the attribute's dim moved
    measured = ex.measure(ex.decode("arvae", found.code))[0, 2]
    assert measured == pytest.approx(found.value, abs=1e-5)  # the reported value is what the code decodes to
    outside = float(ends.max() + 10 * found.tolerance + 1)
    refused = control.set_attribute(ex, "arvae", format_z(z), name, outside)
    assert not refused.reached and "outside what the model reaches" in refused.message
    assert refused.decodes == 2


def test_set_attribute_checks_its_arguments(by_key):
    ex = by_key["folk"]
    z = format_z(encoded(ex))
    with pytest.raises(ValueError, match="unknown attribute"):
        control.set_attribute(ex, "arvae", z, "loudness", 1)
    with pytest.raises(ValueError, match="target value must be a number"):
        control.set_attribute(ex, "arvae", z, "note_density", "lots")
    with pytest.raises(ValueError, match="tolerance must be positive"):
        control.set_attribute(ex, "arvae", z, "note_density", 0.5, -1)


def test_monotonic_sweeps():
    sweeps = np.array([[0, 1, 1, 2], [3, 2, 2, 0], [0, 2, 1, 3], [1, 1, 1, 1], [0, np.nan, 1, 2]], float)
    assert control.monotonic_sweeps(sweeps).tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("key", ["sprites", "bach"])
@pytest.mark.parametrize("kind", ["arvae", "beta-vae"])
def test_controllability_equals_evaluates_traversal_monotonicity(by_key, key, kind):
    ex = by_key[key]
    result = control.controllability(ex, kind, 12, 9)
    assert result.measured.shape == (len(ex.spec.attribute_names), 12, 9)
    model = ex.model(kind)
    latents = traversal.encode(model, ex.samples.model_inputs(np.arange(12)))
    expected = evaluate.traversal_monotonicity(model, ex.spec, latents, result.dims,
                                               attributes=ex.samples.attributes[:12])["per_attribute"]
    summary = result.summary(ex.spec.attribute_names)
    for name, row in summary.items():
        assert row["spearman"] == pytest.approx(expected[name], abs=1e-9)
        assert 0 <= row["monotonic_share"] <= 1
    assert result.dims == ex.attribute_dims(kind)[0]
    with pytest.raises(ValueError, match="number of inputs"):
        control.controllability(ex, kind, 1)


@pytest.mark.parametrize("key", MUSIC_KEYS)
def test_melody_follows_its_curve(by_key, key):
    ex = by_key[key]
    measures = ex.samples.inputs[:16]
    edit = melody.edit_melody(ex, "arvae", json.dumps(measures.tolist()), '{"note_density": [-3, 3]}')
    assert edit.edited.shape == (16, 24)
    np.testing.assert_array_equal(edit.original, measures)
    density = edit.measured_after[:, list(ex.spec.attribute_names).index("note_density")]
    assert density[-4:].mean() > density[:4].mean()
    from arvae.metrics import spearman_rows

    assert spearman_rows(np.arange(16), density)[0] > 0.5
    dim = ex.spec.regularized_dims[2]
    np.testing.assert_allclose(edit.edited_codes[:, dim], np.linspace(-3, 3, 16), atol=1e-6)
    others = [d for d in range(ex.latent_dim) if d != dim]
    np.testing.assert_array_equal(edit.edited_codes[:, others], edit.codes[:, others])
    assert "ρ" in melody.curve_table(ex, edit)


def test_melody_curves_and_lengths_are_checked():
    names = ("note_density", "contour")
    np.testing.assert_allclose(melody.parse_curves('{"contour": [0, 1, 2]}', names, 3)["contour"], [0, 1, 2])
    np.testing.assert_allclose(melody.parse_curves({"contour": [-9, 9]}, names, 3)["contour"], [-4, 0, 4])
    assert melody.parse_curves("", names, 3) == {}
    for bad, message in [("{oops", "JSON object"), ("[1, 2]", "JSON object"), ('{"tempo": [0, 1]}', "unknown attribute"),
                         ('{"contour": [0, 1, 2, 3]}', "2 values"), ('{"contour": ["a", 1]}', "must be a number")]:
        with pytest.raises(ValueError, match=message):
            melody.parse_curves(bad, names, 3)
    with pytest.raises(ValueError, match="at most 32 measures"):
        melody.check_melody(np.ones((33, 24), int).tolist())


def test_share_links_round_trip_and_bad_links_are_named(by_key):
    z = np.linspace(-1, 1, 16).astype(np.float32)
    query = share.share_query("mnist", "beta-vae", z)
    key, kind, restored = share.parse_share_query(dict(parse_qsl(query[1:])), by_key)
    assert (key, kind) == ("mnist", "beta-vae")
    np.testing.assert_allclose(restored, z, atol=1e-4)
    assert share.parse_share_query({}, by_key) is None
    assert share.parse_share_query({"tab": "folk"}, by_key)[2] is None
    with pytest.raises(ValueError, match="unknown or unavailable tab"):
        share.parse_share_query({"tab": "nope"}, by_key)
    with pytest.raises(ValueError, match="unknown model"):
        share.parse_share_query({"tab": "mnist", "model": "gan"}, by_key)
    with pytest.raises(ValueError, match="16 finite numbers"):
        share.parse_share_query({"tab": "mnist", "z": "[1, 2]"}, by_key)
