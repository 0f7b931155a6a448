"""Tests for arvae.metrics: behaviour on synthetic codes and agreement with the
reference (ashispati/ar-vae utils/evaluation.py) / library formulas."""

import json

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mutual_info_score

from arvae import metrics as M

N = 5000
D = 8
PERM = [5, 1, 6]  # attribute j is encoded in latent dim PERM[j]
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def z():
    return np.random.default_rng(0).standard_normal((N, D))


@pytest.fixture(scope="module")
def perfect(z):
    """Each attribute is an affine (one decreasing) function of its own dim."""
    return np.column_stack([2.0 * z[:, 5] + 1.0, -0.5 * z[:, 1], 3.0 * z[:, 6] - 2.0])


# --------------------------------------------------------------------------
# behaviour on synthetic codes
# --------------------------------------------------------------------------
def test_perfect_code_scores_high(z, perfect):
    r = M.compute_all(z, perfect, NAMES)
    assert r["interpretability"] > 0.99
    assert r["mig"] > 0.9  # bias of the plug-in MI of the noise dims costs ~1%
    assert r["sap"] > 0.95
    assert r["scc"] > 0.99
    for j, name in enumerate(NAMES):
        pa = r["per_attribute"][name]
        assert pa["highest_mi_dim"] == PERM[j]
        assert pa["interpretability"] > 0.99
        assert pa["mig"] > 0.9
        assert pa["sap"] > 0.95
        assert pa["scc"] == pytest.approx(1.0)


def test_perfect_code_modularity(z, perfect):
    # Only the attribute-carrying dims: each depends on exactly one attribute.
    assert M.modularity(z[:, PERM], perfect) > 0.99
    # Uninformative dims (roughly equal small MI with every attribute) lower
    # the score, as in the reference which averages over all dims.
    assert M.modularity(z, perfect) < M.modularity(z[:, PERM], perfect)


def test_nonlinear_monotonic_code(z):
    attrs = np.column_stack([np.exp(z[:, 5]), z[:, 1] ** 3, np.tanh(z[:, 6])])
    r = M.compute_all(z, attrs, NAMES)
    assert [r["per_attribute"][n]["highest_mi_dim"] for n in NAMES] == PERM
    assert r["scc"] == pytest.approx(1.0)  # rank-based: invariant to monotonic maps
    assert r["mig"] > 0.5  # equal-width bins no longer align exactly
    # linear-fit based metrics drop for non-linear relations, but stay far from 0
    assert 0.4 < r["interpretability"] < 0.99
    assert 0.4 < r["sap"] < 0.99


def test_random_code_scores_low(z):
    attrs = np.random.default_rng(1).standard_normal((N, 3))
    r = M.compute_all(z, attrs, NAMES)
    for key in ("interpretability", "mig", "sap", "scc"):
        assert 0.0 <= r[key] < 0.1, key


def test_entangled_code(z):
    # each attribute depends equally on two dims
    attrs = np.column_stack([z[:, 0] + z[:, 1], z[:, 2] - z[:, 3]])
    r = M.compute_all(z, attrs, ["a", "b"])
    assert r["mig"] < 0.1
    assert r["sap"] < 0.1
    assert 0.6 < r["scc"] < 0.8  # Spearman of z0 with z0 + z1 is ~0.69
    assert r["interpretability"] == pytest.approx(0.5, abs=0.05)


def test_scc_uses_absolute_value(z, perfect):
    rho = M.spearman_matrix(z, perfect)
    assert rho[1, 1] == pytest.approx(-1.0)  # attribute b decreases with dim 1
    assert M.scc_per_attribute(z, perfect)[1] == pytest.approx(1.0)


def test_attribute_dims_by_mutual_information_finds_permutation():
    rng = np.random.default_rng(2)
    lat = rng.standard_normal((3000, 10))
    perm = [7, 2, 9, 0]
    attrs = np.column_stack(
        [np.sin(lat[:, 7]) + 0.1 * rng.standard_normal(3000),  # non-monotonic too
         lat[:, 2] ** 3,
         -lat[:, 9] + 0.2 * rng.standard_normal(3000),
         np.round(lat[:, 0])]  # discrete attribute
    )
    assert M.attribute_dims_by_mutual_information(lat, attrs) == perm


def test_public_functions_agree_with_compute_all(z, perfect):
    r = M.compute_all(z, perfect, NAMES)
    interp = M.interpretability(z, perfect, NAMES)
    assert set(interp) == set(NAMES) | {"mean"}
    assert interp["mean"] == pytest.approx(r["interpretability"])
    assert M.modularity(z, perfect) == pytest.approx(r["modularity"])
    assert M.mig(z, perfect) == pytest.approx(r["mig"])
    assert M.sap(z, perfect) == pytest.approx(r["sap"])
    assert M.scc(z, perfect) == pytest.approx(r["scc"])
    for j, name in enumerate(NAMES):
        assert interp[name] == pytest.approx(r["per_attribute"][name]["interpretability"])
        assert M.mig_per_attribute(z, perfect)[j] == pytest.approx(r["per_attribute"][name]["mig"])
        assert M.sap_per_attribute(z, perfect)[j] == pytest.approx(r["per_attribute"][name]["sap"])
        assert M.scc_per_attribute(z, perfect)[j] == pytest.approx(r["per_attribute"][name]["scc"])
    assert M.attribute_dims_by_mutual_information(z, perfect) == [
        r["per_attribute"][n]["highest_mi_dim"] for n in NAMES
    ]


def test_compute_all_is_json_serializable(z, perfect):
    r = M.compute_all(z, perfect, NAMES)
    back = json.loads(json.dumps(r, allow_nan=False))
    assert back == r
    assert set(r) == {"interpretability", "modularity", "mig", "sap", "scc", "per_attribute"}
    for key in ("interpretability", "modularity", "mig", "sap", "scc"):
        assert type(r[key]) is float
    for pa in r["per_attribute"].values():
        assert set(pa) == {"interpretability", "mig", "sap", "scc", "highest_mi_dim"}
        assert type(pa["highest_mi_dim"]) is int


def test_degenerate_inputs_give_finite_zero_scores(z):
    attrs = np.column_stack([np.full(N, 3.0), z[:, 0]])  # constant attribute
    lat = z.copy()
    lat[:, 1] = 0.0  # collapsed latent dim
    r = M.compute_all(lat, attrs, ["const", "x"])
    json.dumps(r, allow_nan=False)
    pa = r["per_attribute"]["const"]
    assert pa["interpretability"] == pa["mig"] == pa["sap"] == pa["scc"] == 0.0
    assert r["per_attribute"]["x"]["mig"] > 0.9


def test_input_validation(z, perfect):
    with pytest.raises(ValueError):
        M.compute_all(z[:-1], perfect, NAMES)  # different N
    with pytest.raises(ValueError):
        M.compute_all(z, perfect, NAMES[:2])  # wrong number of names
    with pytest.raises(ValueError):
        M.interpretability(z, perfect, ["a", "b", "mean"])
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        M.mig(bad, perfect)
    with pytest.raises(ValueError):
        M.mig(z, perfect, estimator="kde")


def test_ksg_estimator_option():
    rng = np.random.default_rng(4)
    lat = rng.standard_normal((1000, 4))
    attrs = np.column_stack([lat[:, 2], -lat[:, 0]])
    r = M.compute_all(lat, attrs, ["a", "b"], estimator="ksg")
    assert [r["per_attribute"][n]["highest_mi_dim"] for n in ("a", "b")] == [2, 0]
    assert r["mig"] > 0.8 and r["interpretability"] > 0.99


# --------------------------------------------------------------------------
# agreement with reference formulas / library implementations
# --------------------------------------------------------------------------
def test_histogram_discretize_matches_np_histogram():
    x = np.random.default_rng(5).standard_normal((2000, 4)) * [1, 10, 0.1, 3]
    labels = M.histogram_discretize(x, 20)
    for k in range(x.shape[1]):
        edges = np.histogram(x[:, k], 20)[1]
        expected = np.digitize(x[:, k], edges[:-1]) - 1  # disentanglement_lib
        np.testing.assert_array_equal(labels[:, k], expected)
    assert labels.min() == 0 and labels.max() == 19
    np.testing.assert_array_equal(M.histogram_discretize(np.ones((5, 1))), 0)


def test_mutual_information_matches_sklearn():
    rng = np.random.default_rng(6)
    lat = rng.standard_normal((1500, 5))
    attrs = np.column_stack([lat[:, 0] + rng.standard_normal(1500), np.round(lat[:, 3])])
    mi = M.mutual_information_matrix(lat, attrs)
    zl, al = M.histogram_discretize(lat), M.histogram_discretize(attrs)
    expected = np.array([[mutual_info_score(al[:, j], zl[:, i]) for j in range(2)] for i in range(5)])
    np.testing.assert_allclose(mi, expected, atol=1e-12)
    h = M.attribute_entropies(attrs)
    np.testing.assert_allclose(h, [mutual_info_score(al[:, j], al[:, j]) for j in range(2)], atol=1e-12)


def _reference_like_data():
    rng = np.random.default_rng(7)
    lat = rng.standard_normal((400, 6))
    attrs = np.column_stack(
        [lat[:, 0] + 0.5 * lat[:, 1], 0.1 * lat[:, 2] + rng.standard_normal(400),
         rng.standard_normal(400), np.round(2 * lat[:, 4])]
    )
    return lat, attrs


def test_r2_and_interpretability_match_linear_regression():
    lat, attrs = _reference_like_data()
    r2 = M.r2_matrix(lat, attrs)
    for i in range(lat.shape[1]):
        for j in range(attrs.shape[1]):
            x = lat[:, i : i + 1]
            assert r2[i, j] == pytest.approx(LinearRegression().fit(x, attrs[:, j]).score(x, attrs[:, j]))
    names = ["w", "x", "y", "v"]
    interp = M.interpretability(lat, attrs, names)
    dims = M.attribute_dims_by_mutual_information(lat, attrs)
    for j, name in enumerate(names):
        x = lat[:, dims[j] : dims[j] + 1]
        assert interp[name] == pytest.approx(LinearRegression().fit(x, attrs[:, j]).score(x, attrs[:, j]))


def test_sap_matches_reference_formula():
    lat, attrs = _reference_like_data()
    score = np.zeros((lat.shape[1], attrs.shape[1]))
    for i in range(lat.shape[1]):
        for j in range(attrs.shape[1]):
            c = np.cov(lat[:, i], attrs[:, j], ddof=1)
            score[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1])
    s = np.sort(score, axis=0)
    np.testing.assert_allclose(M.sap_per_attribute(lat, attrs), s[-1] - s[-2], atol=1e-12)


def test_scc_matches_reference_spearmanr_with_p_gate():
    lat, attrs = _reference_like_data()
    score = np.zeros((lat.shape[1], attrs.shape[1]))
    gated = 0
    for i in range(lat.shape[1]):
        for j in range(attrs.shape[1]):
            rho, p = stats.spearmanr(lat[:, i], attrs[:, j])
            score[i, j] = abs(rho) if p <= 0.05 else 0.0
            gated += p > 0.05
    assert gated > 0  # the p-value gate is exercised
    np.testing.assert_allclose(M.scc_per_attribute(lat, attrs), score.max(axis=0), atol=1e-12)
    rho_ref = np.array([[stats.spearmanr(lat[:, i], attrs[:, j])[0] for j in range(4)] for i in range(6)])
    np.testing.assert_allclose(M.spearman_matrix(lat, attrs), rho_ref, atol=1e-12)


def test_modularity_formula_on_known_mi_matrix():
    mi = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0]])
    # per dim: 1, 0, 0 (no information), 1 - 1/4
    assert M._modularity_from_mi(mi) == pytest.approx((1 + 0 + 0 + 0.75) / 4)
    assert M._modularity_from_mi(np.array([[0.5], [0.0]])) == pytest.approx(0.5)  # L = 1


def test_mig_formula():
    lat, attrs = _reference_like_data()
    mi = M.mutual_information_matrix(lat, attrs)
    s = np.sort(mi, axis=0)
    expected = (s[-1] - s[-2]) / M.attribute_entropies(attrs)
    np.testing.assert_allclose(M.mig_per_attribute(lat, attrs), expected, atol=1e-12)


# --------------------------------------------------------------------------
# spearman_rows
# --------------------------------------------------------------------------
def test_spearman_rows_matches_scipy_row_by_row():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((50, 12))
    y = 0.5 * x + rng.standard_normal((50, 12))
    y[::3] = np.round(y[::3])  # ties
    x[1] = np.round(x[1])
    got = M.spearman_rows(x, y)
    assert got.shape == (50,)
    expected = [stats.spearmanr(x[i], y[i])[0] for i in range(50)]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_spearman_rows_broadcast_and_edge_cases():
    grid = np.linspace(-4, 4, 10)
    y = np.vstack([grid**3, -np.exp(grid), np.full(10, 2.0), grid, grid, grid])
    y[4, 3] = np.nan                      # one undefined step: left out, the rest is monotonic
    y[5, 2:] = np.nan                     # two defined steps: too few for a correlation
    got = M.spearman_rows(grid, y)  # 1-D x shared by all rows
    np.testing.assert_allclose(got, [1.0, -1.0, 0.0, 1.0, 1.0, 0.0])  # constant -> 0
    y[4, [0, 5]] = [9.0, np.nan]          # what is left of row 4 is scored as scipy scores it
    keep = np.isfinite(y[4])
    assert M.spearman_rows(grid, y)[4] == pytest.approx(stats.spearmanr(grid[keep], y[4, keep])[0])
    assert M.spearman_rows(np.ones((2, 5)), np.arange(10.0).reshape(2, 5)).tolist() == [0.0, 0.0]


def test_unwrap_rows_continues_an_angle_across_its_period_and_steps_over_undefined_steps():
    quarter, turn = np.pi / 2, 2 * np.pi
    square = np.array([0.1, 0.4, 0.7, 1.0, 1.3, 0.03, 0.33])  # turns on by 0.3 a step, past a quarter turn
    heart = np.array([5.5, 5.8, 6.1, 0.12, 0.42, 0.72, 1.02])  # the same, past a full turn
    gap = np.array([np.nan, 0.4, 0.7, np.nan, 1.3, 0.03, np.nan])  # 0.7 -> 1.3: across a gap, as measured
    got = M.unwrap_rows(np.vstack([square, heart, gap, np.full(7, np.nan)]), [quarter, turn, quarter, quarter])
    np.testing.assert_allclose(got[0], 0.1 + 0.3 * np.arange(7), atol=0.01)
    np.testing.assert_allclose(np.diff(got[1]), 0.3, atol=0.01)
    np.testing.assert_array_equal(np.isnan(got[2]), np.isnan(gap))  # undefined steps stay undefined
    np.testing.assert_allclose(got[2, [1, 2, 4, 5]], [0.4, 0.7, 1.3, 0.03 + quarter])
    assert np.isnan(got[3]).all()
    assert M.spearman_rows(np.arange(7), got[:3]).tolist() == pytest.approx([1.0, 1.0, 1.0])
    # within a period nothing moves; a turn back by less than half a period stays a turn back
    back = np.array([[1.2, 0.9, 0.6, 0.3, 0.0, 1.4]])
    np.testing.assert_allclose(M.unwrap_rows(back, quarter), [[1.2, 0.9, 0.6, 0.3, 0.0, 1.4 - quarter]])
    np.testing.assert_array_equal(M.unwrap_rows(square[:5], quarter)[0], square[:5])
    # an ellipse (period π) undefined for a step while it turns by more than half a period
    ellipse = np.array([[0.01, 0.27, 0.63, 0.96, np.nan, 2.57, 2.91]])
    np.testing.assert_array_equal(M.unwrap_rows(ellipse, np.pi), ellipse)
