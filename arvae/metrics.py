"""Disentanglement / interpretability metrics of the AR-VAE paper (Sect. 5.1).

All public functions take numpy arrays ``latents`` (N, D) and ``attributes``
(N, L) and return plain Python floats / ints / lists / dicts, so results are
JSON-serializable. Every metric is the mean over attributes of a
per-attribute score, as in the paper.

Semantics follow the reference implementation (ashispati/ar-vae,
``utils/evaluation.py``), which follows the original papers. Where this
module differs from it, or where a choice had to be made:

* Mutual information (MI). The default estimator is a *discrete* one: each
  latent dim and each attribute is discretized into ``n_bins=20`` equal-width
  bins between its min and max (the ``_histogram_discretize`` of
  disentanglement_lib, which Chen et al.'s MIG and Ridgeway & Mozer's
  Modularity use), and MI is the plug-in estimate in nats (identical to
  ``sklearn.metrics.mutual_info_score`` on the bin labels; a test checks
  this). The attribute entropy used to normalize MIG is the plug-in entropy of
  the discretized attribute, so MIG lies in [0, 1].
  NOTE: the AR-VAE reference code itself uses the k-NN (KSG) estimator
  ``sklearn.feature_selection.mutual_info_regression`` for MI, and
  ``mutual_info_regression(y, y)`` as the "entropy" for MIG. That estimator is
  available with ``estimator="ksg"`` (slower; values are not comparable with
  the histogram ones).
  Equal-width bins align exactly only under an affine map, so a strongly
  non-linear (but monotonic) attribute gets a lower MI, and so a lower MIG,
  than a linear one.
* Interpretability (Adel et al. 2018): for each attribute, the latent dim
  with the highest MI; the score is the R^2 (on the same data, as in the
  reference) of a 1-D linear regression of the attribute on that dim. For
  1-D ordinary least squares with an intercept R^2 equals the squared Pearson
  correlation, which is what is computed (a test checks it against
  ``sklearn.linear_model.LinearRegression.score``).
* SAP (Kumar et al. 2017), continuous attributes: the score matrix is the
  R^2 of a 1-D linear regression per (dim, attribute), i.e. the squared
  Pearson correlation (same formula as the reference); the per-attribute SAP
  is the difference of the two highest entries. Constant dims/attributes get
  score 0.
* SCC: per (dim, attribute) the *absolute* Spearman rho, set to 0 when its
  two-sided p-value is > 0.05 (exactly as the reference). The per-attribute
  SCC is the max over dims. The absolute value is kept to match the
  reference and the published numbers; so a decreasing attribute scores like
  an increasing one, although AR-VAE's regularizer asks for an increasing
  relation. Use ``spearman_matrix`` for the signed coefficients.
* Modularity (Ridgeway & Mozer 2018): from the (D, L) MI matrix, per latent
  dim ``1 - sum_{j != argmax} m_j^2 / (max_j m_j^2 * (L - 1))``, 0 for dims
  whose MI with every attribute is 0, averaged over *all* latent dims (as
  the reference / disentanglement_lib). Consequently latent dims that carry no
  information (their small, roughly equal MI estimates) pull the score down.
  With a single attribute (L = 1, where the reference divides by zero) every
  informative dim scores 1.
* ``spearman_rows``: steps where x or y is NaN (an attribute that is undefined
  there) are left out of their row; rows where x or y is constant, or with
  fewer than 3 defined steps, get correlation 0.
* ``unwrap_rows`` (not in the paper or the reference): an angle known only
  modulo a period, unwrapped along each row before ``spearman_rows`` reads it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# scipy.stats is imported where it is used: it takes ~0.5 s, and importing the app (which imports
# this module) should not pay for it before anyone asks for a metric

__all__ = [
    "N_BINS",
    "SCC_P_THRESHOLD",
    "histogram_discretize",
    "mutual_information_matrix",
    "attribute_entropies",
    "r2_matrix",
    "spearman_matrix",
    "interpretability",
    "attribute_dims_by_mutual_information",
    "modularity",
    "mig",
    "mig_per_attribute",
    "sap",
    "sap_per_attribute",
    "scc",
    "scc_per_attribute",
    "compute_all",
    "spearman_rows",
    "unwrap_rows",
]

N_BINS = 20
SCC_P_THRESHOLD = 0.05
_ESTIMATORS = ("histogram", "ksg")


# --------------------------------------------------------------------------
# input handling and building blocks
# --------------------------------------------------------------------------
def _check_inputs(latents, attributes) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(latents, dtype=np.float64)
    a = np.asarray(attributes, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if z.ndim != 2 or a.ndim != 2:
        raise ValueError(f"latents must be (N, D) and attributes (N, L); got {z.shape}, {a.shape}")
    if z.shape[0] != a.shape[0]:
        raise ValueError(f"latents and attributes have different N: {z.shape[0]} != {a.shape[0]}")
    if z.shape[0] < 3 or z.shape[1] < 1 or a.shape[1] < 1:
        raise ValueError(f"need N >= 3, D >= 1, L >= 1; got latents {z.shape}, attributes {a.shape}")
    if not (np.isfinite(z).all() and np.isfinite(a).all()):
        raise ValueError("latents and attributes must be finite (no NaN / inf)")
    return z, a


def _check_estimator(estimator: str) -> None:
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, got {estimator!r}")


def histogram_discretize(x, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width binning of each column of ``x`` (N, K) into labels 0..n_bins-1.

    Bin edges span [min, max] of the column (as ``np.histogram(col, n_bins)``);
    the max falls into the last bin; a constant column maps to bin 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    lo = x.min(axis=0)
    span = x.max(axis=0) - lo
    scale = np.divide(n_bins, span, out=np.zeros_like(span), where=span > 0)
    labels = np.floor((x - lo) * scale).astype(np.int64)
    return np.clip(labels, 0, n_bins - 1)


def _xlogx_sum(p: np.ndarray, axis) -> np.ndarray:
    """sum p * log p over ``axis`` with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(p), 0.0)
    return t.sum(axis=axis)


def _discrete_entropy(labels: np.ndarray, n_bins: int) -> np.ndarray:
    """Plug-in entropy (nats) of each column of integer labels (N, K) -> (K,)."""
    n, k = labels.shape
    counts = np.bincount((labels + n_bins * np.arange(k)).ravel(), minlength=k * n_bins)
    return -_xlogx_sum(counts.reshape(k, n_bins) / n, axis=1)


def _discrete_mi(zl: np.ndarray, al: np.ndarray, n_bins: int) -> np.ndarray:
    """Plug-in MI (nats) between every column of zl (N, D) and al (N, L) -> (D, L).

    Uses I(Z; A) = H(Z) + H(A) - H(Z, A) with joint histograms built by one
    bincount per attribute.
    """
    n, d = zl.shape
    h_z = _discrete_entropy(zl, n_bins)
    h_a = _discrete_entropy(al, n_bins)
    base = (zl + n_bins * np.arange(d)) * n_bins  # joint index prefix per dim
    mi = np.empty((d, al.shape[1]))
    for j in range(al.shape[1]):
        joint = np.bincount((base + al[:, j : j + 1]).ravel(), minlength=d * n_bins * n_bins)
        h_joint = -_xlogx_sum(joint.reshape(d, n_bins * n_bins) / n, axis=1)
        mi[:, j] = h_z + h_a[j] - h_joint
    return np.maximum(mi, 0.0)  # remove -1e-16 round-off


def mutual_information_matrix(
    latents, attributes, estimator: str = "histogram", n_bins: int = N_BINS, random_state: int = 0
) -> np.ndarray:
    """MI (nats) between each latent dim and each attribute, shape (D, L).

    ``estimator="histogram"``: plug-in MI of the 20-bin discretized values.
    ``estimator="ksg"``: ``mutual_info_regression`` (k-NN) as in the AR-VAE code.
    """
    z, a = _check_inputs(latents, attributes)
    return _mi_matrix(z, a, estimator, n_bins, random_state)


def _mi_matrix(z, a, estimator, n_bins, random_state=0) -> np.ndarray:
    _check_estimator(estimator)
    if estimator == "histogram":
        return _discrete_mi(histogram_discretize(z, n_bins), histogram_discretize(a, n_bins), n_bins)
    from sklearn.feature_selection import mutual_info_regression

    return np.column_stack(
        [mutual_info_regression(z, a[:, j], random_state=random_state) for j in range(a.shape[1])]
    )


def attribute_entropies(
    attributes, estimator: str = "histogram", n_bins: int = N_BINS, random_state: int = 0
) -> np.ndarray:
    """Entropy (nats) of each attribute, the MIG normalizer, shape (L,)."""
    a = np.asarray(attributes, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    return _entropies(a, estimator, n_bins, random_state)


def _entropies(a, estimator, n_bins, random_state=0) -> np.ndarray:
    _check_estimator(estimator)
    if estimator == "histogram":
        return _discrete_entropy(histogram_discretize(a, n_bins), n_bins)
    from sklearn.feature_selection import mutual_info_regression

    return np.array(
        [
            mutual_info_regression(a[:, j : j + 1], a[:, j], random_state=random_state)[0]
            for j in range(a.shape[1])
        ]
    )


def _pearson_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation between columns of x (N, D) and y (N, L); 0 for constant columns."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    nx = np.sqrt((xc * xc).sum(axis=0))
    ny = np.sqrt((yc * yc).sum(axis=0))
    const_x = np.ptp(x, axis=0) == 0
    const_y = np.ptp(y, axis=0) == 0
    denom = np.outer(nx, ny)
    ok = ~const_x[:, None] & ~const_y[None, :] & (denom > 0)
    r = np.divide(xc.T @ yc, denom, out=np.zeros_like(denom), where=ok)
    return np.clip(r, -1.0, 1.0)


def r2_matrix(latents, attributes) -> np.ndarray:
    """R^2 of a 1-D linear regression of each attribute on each latent dim, (D, L)."""
    z, a = _check_inputs(latents, attributes)
    return _pearson_matrix(z, a) ** 2


def _spearman_and_p(z: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    rho = _pearson_matrix(stats.rankdata(z, axis=0), stats.rankdata(a, axis=0))
    dof = z.shape[0] - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt(dof / ((1.0 + rho) * (1.0 - rho)))
    p = 2.0 * stats.t.sf(np.abs(t), dof)  # |t| = inf -> p = 0
    return rho, p


def spearman_matrix(latents, attributes) -> np.ndarray:
    """Signed Spearman rho between each latent dim and each attribute, (D, L)."""
    z, a = _check_inputs(latents, attributes)
    return _spearman_and_p(z, a)[0]


def _top_two_gap(matrix: np.ndarray) -> np.ndarray:
    """Per column: largest minus second-largest entry (second = 0 if only one row)."""
    if matrix.shape[0] == 1:
        return matrix[0].copy()
    s = np.sort(matrix, axis=0)
    return s[-1] - s[-2]


def _modularity_from_mi(mi: np.ndarray) -> float:
    """Ridgeway & Mozer modularity from an MI matrix (D, L), averaged over dims."""
    sq = np.square(mi)
    max_sq = sq.max(axis=1)
    n_attr = sq.shape[1]
    if n_attr == 1:
        delta = np.zeros_like(max_sq)
    else:
        delta = np.divide(
            sq.sum(axis=1) - max_sq,
            max_sq * (n_attr - 1.0),
            out=np.zeros_like(max_sq),
            where=max_sq > 0,
        )
    score = np.where(max_sq > 0, 1.0 - delta, 0.0)
    return float(score.mean())


# --------------------------------------------------------------------------
# per-attribute score arrays (shared by the public functions and compute_all)
# --------------------------------------------------------------------------
def _interp_parts(z, a, mi) -> tuple[np.ndarray, np.ndarray]:
    dims = np.argmax(mi, axis=0)
    r2 = _pearson_matrix(z[:, dims], a).diagonal() ** 2
    return dims, r2


def _mig_parts(mi, entropy) -> np.ndarray:
    gap = _top_two_gap(mi)
    return np.divide(gap, entropy, out=np.zeros_like(gap), where=entropy > 0)


def _scc_parts(z, a) -> np.ndarray:
    rho, p = _spearman_and_p(z, a)
    score = np.where(p <= SCC_P_THRESHOLD, np.abs(rho), 0.0)
    return score.max(axis=0)


def _floats(x) -> list[float]:
    return [float(v) for v in np.asarray(x).ravel()]


# --------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------
def attribute_dims_by_mutual_information(
    latents, attributes, estimator: str = "histogram", n_bins: int = N_BINS
) -> list[int]:
    """For each attribute, the latent dim sharing the highest MI with it.

    Used to pick the "attribute dims" of an unsupervised (beta-VAE) model.
    Two attributes may map to the same dim.
    """
    z, a = _check_inputs(latents, attributes)
    return [int(d) for d in np.argmax(_mi_matrix(z, a, estimator, n_bins), axis=0)]


def interpretability(latents, attributes, attribute_names: Sequence[str], estimator: str = "histogram",
                     n_bins: int = N_BINS) -> dict:
    """Interpretability (Adel et al. 2018): ``{name: R^2, ..., "mean": mean R^2}``.

    Per attribute: R^2 of a 1-D linear regression of the attribute on the
    latent dim with the highest MI (see ``attribute_dims_by_mutual_information``).
    """
    z, a = _check_inputs(latents, attributes)
    names = _check_names(attribute_names, a.shape[1])
    _, r2 = _interp_parts(z, a, _mi_matrix(z, a, estimator, n_bins))
    out = {name: float(v) for name, v in zip(names, r2)}
    out["mean"] = float(r2.mean())
    return out


def modularity(latents, attributes, estimator: str = "histogram", n_bins: int = N_BINS) -> float:
    """Modularity (Ridgeway & Mozer 2018), mean over latent dims (see module doc)."""
    z, a = _check_inputs(latents, attributes)
    return _modularity_from_mi(_mi_matrix(z, a, estimator, n_bins))


def mig_per_attribute(latents, attributes, estimator: str = "histogram", n_bins: int = N_BINS) -> list[float]:
    """MIG per attribute: (top MI - second MI over latent dims) / H(attribute)."""
    z, a = _check_inputs(latents, attributes)
    return _floats(_mig_parts(_mi_matrix(z, a, estimator, n_bins), _entropies(a, estimator, n_bins)))


def mig(latents, attributes, estimator: str = "histogram", n_bins: int = N_BINS) -> float:
    """Mutual Information Gap (Chen et al. 2018), mean over attributes."""
    return float(np.mean(mig_per_attribute(latents, attributes, estimator, n_bins)))


def sap_per_attribute(latents, attributes) -> list[float]:
    """SAP per attribute: gap between the two highest per-dim linear-regression R^2."""
    z, a = _check_inputs(latents, attributes)
    return _floats(_top_two_gap(_pearson_matrix(z, a) ** 2))


def sap(latents, attributes) -> float:
    """Separated Attribute Predictability (Kumar et al. 2017), mean over attributes."""
    return float(np.mean(sap_per_attribute(latents, attributes)))


def scc_per_attribute(latents, attributes) -> list[float]:
    """Per attribute: max over dims of |Spearman rho| (0 where p > 0.05)."""
    z, a = _check_inputs(latents, attributes)
    return _floats(_scc_parts(z, a))


def scc(latents, attributes) -> float:
    """Spearman Correlation Coefficient score, mean over attributes."""
    return float(np.mean(scc_per_attribute(latents, attributes)))


def _check_names(attribute_names: Sequence[str], n_attr: int) -> list[str]:
    names = [str(n) for n in attribute_names]
    if len(names) != n_attr:
        raise ValueError(f"{len(names)} attribute names for {n_attr} attributes")
    if len(set(names)) != len(names) or "mean" in names:
        raise ValueError("attribute names must be unique and must not be 'mean'")
    return names


def compute_all(latents, attributes, attribute_names: Sequence[str], estimator: str = "histogram",
                n_bins: int = N_BINS) -> dict:
    """All five metrics plus per-attribute details, JSON-serializable.

    Returns ``{"interpretability", "modularity", "mig", "sap", "scc": float,
    "per_attribute": {name: {"interpretability", "mig", "sap", "scc": float,
    "highest_mi_dim": int}}}``: the latent dim of highest MI with the attribute, the dim
    Interpretability regresses on (not necessarily the dim AR-VAE regularizes for it).
    The MI matrix, R^2 matrix and Spearman ranks are computed once.
    """
    z, a = _check_inputs(latents, attributes)
    names = _check_names(attribute_names, a.shape[1])
    mi = _mi_matrix(z, a, estimator, n_bins)
    dims, interp = _interp_parts(z, a, mi)
    mig_v = _mig_parts(mi, _entropies(a, estimator, n_bins))
    sap_v = _top_two_gap(_pearson_matrix(z, a) ** 2)
    scc_v = _scc_parts(z, a)
    per_attribute = {
        name: {
            "interpretability": float(interp[j]),
            "mig": float(mig_v[j]),
            "sap": float(sap_v[j]),
            "scc": float(scc_v[j]),
            "highest_mi_dim": int(dims[j]),
        }
        for j, name in enumerate(names)
    }
    return {
        "interpretability": float(interp.mean()),
        "modularity": _modularity_from_mi(mi),
        "mig": float(mig_v.mean()),
        "sap": float(sap_v.mean()),
        "scc": float(scc_v.mean()),
        "per_attribute": per_attribute,
    }


# --------------------------------------------------------------------------
# traversal monotonicity
# --------------------------------------------------------------------------
SPEARMAN_MIN_STEPS = 3  # defined steps a row needs for a correlation


def spearman_rows(x, y) -> np.ndarray:
    """Spearman rho between ``x[i]`` and ``y[i]`` for each row i, shape (M,).

    ``x`` and ``y`` are (M, K) (a 1-D ``x`` of length K, e.g. the traversal
    grid shared by all rows, is broadcast). Ties get average ranks. Steps where
    x or y is NaN are left out of their row (along a traversal: outputs whose
    attribute is undefined, such as a blank digit or a sprite that is none of
    the shapes). A row that is constant in x or y, or that has fewer than
    ``SPEARMAN_MIN_STEPS`` defined steps, gets 0.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    x, y = np.broadcast_arrays(x, y)
    if x.ndim != 2:
        raise ValueError(f"expected (M, K) arrays, got {x.shape}")
    undefined = np.isnan(x) | np.isnan(y)
    partial = undefined.any(axis=1)
    rho = _spearman_defined_rows(np.where(partial[:, None], 0.0, x), np.where(partial[:, None], 0.0, y))
    for i in np.flatnonzero(partial):
        keep = ~undefined[i]
        rho[i] = _spearman_defined_rows(x[i, keep][None], y[i, keep][None])[0] if keep.sum() >= SPEARMAN_MIN_STEPS else 0.0
    return rho


def unwrap_rows(values, period) -> np.ndarray:
    """Each row of ``values`` (M, K), an angle known only modulo ``period`` (a scalar or (M,)),
    unwrapped along K as :func:`numpy.unwrap` does: a step between two defined neighbours takes the
    smaller turn either way, so a step across the end of the period continues from the last value
    instead of jumping back by a period (a square turned on past a quarter turn looks turned by a
    little again). NaN steps stay NaN, and a step across them, whose turn is unknown, is kept as
    measured."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    period = np.broadcast_to(np.asarray(period, dtype=np.float64), values.shape[:1])[:, None]
    steps = np.diff(values, axis=1)  # NaN beside an undefined step: no correction there
    correction = np.nan_to_num(-period * np.round(steps / period))
    return values + np.concatenate([np.zeros((len(values), 1)), np.cumsum(correction, axis=1)], axis=1)


def _spearman_defined_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`spearman_rows` of rows without NaN, vectorized."""
    from scipy import stats

    if x.shape[1] < SPEARMAN_MIN_STEPS:
        return np.zeros(len(x))
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    num = (rx * ry).sum(axis=1)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    rho = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(rho, -1.0, 1.0)
