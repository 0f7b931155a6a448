"""Control through the attribute dims, beyond one slider at a time (issue 14), for any dataset:

* the **attribute pad**: a plane over the dims of two attributes, decoded as a grid of thumbnails
  and measured, so that a click picks a code by what it looks or sounds like;
* **set an attribute to a value**: bisection along the attribute's dim (AR-VAE makes it monotonic,
  Sect. 4 of the paper), then a local check, until the decoded output measures within a tolerance;
* the **controllability panel**: held-out inputs traversed along each attribute's dim, with the
  Spearman rho of every sweep (exactly ``arvae.evaluate``'s traversal monotonicity) and the share
  of sweeps that are monotonic -- is disentanglement enough for control?

Everything takes an :class:`arvae.explorer.Explorer` and plain arguments, and returns numpy arrays
and dataclasses (picklable, so a worker process can compute them). The beta-VAE uses its
highest-MI dims (``Explorer.attribute_dims``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import ImageDraw

from arvae import metrics, traversal
from arvae.explorer import SPAN, check_kind, parse_z, whole_number
from arvae.images import traversal_grid
from arvae.music.tokens import FIRST_PITCH_TOKEN, NUM_PITCHES, REST

PAD_RESOLUTIONS = (3, 11)
PAD_GAP = 2
CONTROL_INPUTS = (2, 300)
DEFAULT_CONTROL_INPUTS = 32
TOLERANCE_SHARE = 0.05  # default tolerance: 5 % of the attribute's spread over the held-out sample
MAX_SET_DECODES = 48


def attribute_index(explorer, attribute: str) -> int:
    names = list(explorer.spec.attribute_names)
    if attribute not in names:
        raise ValueError(f"unknown attribute {attribute!r}; expected one of {names}")
    return names.index(attribute)


def finite_number(value, name: str) -> float:
    """A real number from the UI or the API, or a clear ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def measure_along(explorer, kind: str, z: np.ndarray, dim: int, positions) -> np.ndarray:
    """All attributes ``(len(positions), L)`` measured on ``z`` decoded with ``z[dim]`` at each position."""
    codes = np.repeat(z[None].astype(np.float32), len(positions), axis=0)
    codes[:, dim] = positions
    return explorer.measure(explorer.decode(kind, codes))


# ============================================================================= the attribute pad

@dataclass(frozen=True)
class Pad:
    """A plane through a code over two attribute dims. ``values`` (R,) the positions on both axes
    (ascending); ``decoded`` (R, R, ...) and ``measured`` (R, R, 2) with row 0 at the *top* of the
    pad (y = +4) and column 0 at the left (x = -4); ``measured[..., 0]`` is the x attribute."""

    attributes: tuple[str, str]
    dims: tuple[int, int]
    values: np.ndarray
    decoded: np.ndarray
    measured: np.ndarray


def pad_dims(explorer, kind: str, attribute_x: str, attribute_y: str) -> tuple[int, int]:
    dims, _ = explorer.attribute_dims(check_kind(kind))
    ix, iy = attribute_index(explorer, attribute_x), attribute_index(explorer, attribute_y)
    if dims[ix] == dims[iy]:
        raise ValueError(f"{attribute_x} and {attribute_y} share the latent dim z[{dims[ix]}] in this model; "
                         "choose two attributes with different dims")
    return int(dims[ix]), int(dims[iy])


def pad(explorer, kind: str, z, attribute_x: str, attribute_y: str, resolution) -> Pad:
    """Decode and measure the R x R plane through ``z`` over the dims of the two attributes (one batch; cached)."""
    kind = check_kind(kind)
    z = parse_z(z, explorer.latent_dim)
    dim_x, dim_y = pad_dims(explorer, kind, attribute_x, attribute_y)
    resolution = whole_number(resolution, "the pad resolution", *PAD_RESOLUTIONS)
    ix, iy = attribute_index(explorer, attribute_x), attribute_index(explorer, attribute_y)

    def make():
        plane = traversal.surface_latents(torch.from_numpy(z), dim_x, dim_y, resolution).numpy()
        decoded = explorer.decode(kind, plane)
        measured = explorer.measure(decoded)[:, [ix, iy]]
        flip = lambda a: a.reshape(resolution, resolution, *a.shape[1:])[::-1]  # noqa: E731 (rows: +4 on top)
        return Pad((attribute_x, attribute_y), (dim_x, dim_y), traversal.traversal_values(resolution),
                   np.ascontiguousarray(flip(decoded)), np.ascontiguousarray(flip(measured)))

    return explorer.results.get(("pad", kind, z.round(4).tobytes(), ix, iy, resolution), make)


def pad_code(explorer, kind: str, z, attribute_x: str, attribute_y: str, x, y) -> np.ndarray:
    """``z`` with the dims of the two attributes set to the pad position ``(x, y)`` (clipped to +-4)."""
    z = parse_z(z, explorer.latent_dim).copy()
    dim_x, dim_y = pad_dims(explorer, kind, attribute_x, attribute_y)
    z[dim_x] = np.clip(finite_number(x, "x"), -SPAN, SPAN)
    z[dim_y] = np.clip(finite_number(y, "y"), -SPAN, SPAN)
    return z


def thumbnails(decoded: np.ndarray) -> np.ndarray:
    """Pictures ``(..., H, W)`` in [0, 1] of decoded data: images as they are, measures ``(..., 24)``
    as small piano rolls (pitch up, one column per tick; a note's onset darker than its held part)."""
    arr = np.asarray(decoded)
    if arr.dtype.kind == "f":
        return arr
    tokens = arr.reshape(-1, arr.shape[-1])
    rolls = np.zeros((len(tokens), NUM_PITCHES, tokens.shape[1]), np.float32)
    pitch = np.full(len(tokens), -1)  # the sounding pitch (0 = G3), -1 silence
    for tick in range(tokens.shape[1]):
        onset = tokens[:, tick] >= FIRST_PITCH_TOKEN
        pitch = np.where(onset, tokens[:, tick] - FIRST_PITCH_TOKEN, np.where(tokens[:, tick] == REST, -1, pitch))
        held = np.flatnonzero(pitch >= 0)
        rolls[held, NUM_PITCHES - 1 - pitch[held], tick] = np.where(onset[held], 1.0, 0.6)
    return rolls.reshape(*arr.shape[:-1], NUM_PITCHES, tokens.shape[1])


def pad_scale(cell: np.ndarray) -> int:
    """Enlargement that makes a pad cell about 64 pixels high."""
    return max(1, round(64 / cell.shape[0]))


def pad_picture(p: Pad, marker=None):
    """The pad as one picture (rows: y from +4 at the top; columns: x from -4), with a red ring at
    ``marker`` = (x, y) latent values, the current code."""
    cells = thumbnails(p.decoded)
    scale = pad_scale(cells[0, 0])
    picture = traversal_grid(cells, scale=scale, gap=PAD_GAP)
    if marker is not None:
        px, py = pad_pixel(p, cells[0, 0].shape, scale, marker)
        ImageDraw.Draw(picture).ellipse([px - 9, py - 9, px + 9, py + 9], outline=(228, 40, 40), width=3)
    return picture


def _cell_centres(p: Pad, cell_shape, scale: int):
    """Pixel centres of the first and last cell on each axis: ``((x0, x1), (y0, y1))``."""
    n = len(p.values)
    h, w = cell_shape[0] * scale, cell_shape[1] * scale
    first = (PAD_GAP + w / 2, PAD_GAP + h / 2)
    return ((first[0], first[0] + (n - 1) * (w + PAD_GAP)), (first[1], first[1] + (n - 1) * (h + PAD_GAP)))


def pad_pixel(p: Pad, cell_shape, scale: int, position) -> tuple[float, float]:
    """Latent ``(x, y)`` -> pixel of the pad picture."""
    (x0, x1), (y0, y1) = _cell_centres(p, cell_shape, scale)
    fx, fy = (np.clip(np.asarray(position, float), -SPAN, SPAN) + SPAN) / (2 * SPAN)
    return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def pad_position(p: Pad, pixel) -> tuple[float, float]:
    """Pixel ``(column, row)`` of the pad picture (a click) -> latent ``(x, y)`` within +-4."""
    cells = thumbnails(p.decoded[:1, :1])[0, 0]
    (x0, x1), (y0, y1) = _cell_centres(p, cells.shape, pad_scale(cells))
    px, py = (finite_number(v, "the clicked pixel") for v in pixel)
    x = -SPAN + 2 * SPAN * (px - x0) / (x1 - x0)
    y = SPAN - 2 * SPAN * (py - y0) / (y1 - y0)
    return float(np.clip(x, -SPAN, SPAN)), float(np.clip(y, -SPAN, SPAN))


# ============================================================================= set an attribute to a value

@dataclass(frozen=True)
class TargetResult:
    """The outcome of :func:`set_attribute`: ``reached`` says whether ``value`` (measured on the
    decoded ``code``) is within ``tolerance`` of ``target``; ``decodes`` counts the decodings."""

    attribute: str
    dim: int
    target: float
    tolerance: float
    reached: bool
    value: float
    code: np.ndarray
    decodes: int
    reach: tuple[float, float]  # what the attribute measures at z[dim] = -4 and +4
    message: str


def default_tolerance(explorer, attribute: str) -> float:
    """5 % of the attribute's spread (1st to 99th percentile) over the held-out sample, and at least
    half its smallest step: a discrete attribute (note density counts notes, in steps of 1/24)
    cannot measure values between its steps. 1e-3 without a sample."""
    if not explorer.has_samples:
        return 1e-3
    values = explorer.samples.attributes[:, attribute_index(explorer, attribute)].astype(np.float64)
    values = values[np.isfinite(values)]
    if len(np.unique(values)) < 2:
        return 1e-3
    spread = float(np.percentile(values, 99) - np.percentile(values, 1))
    steps = np.diff(np.unique(values))
    return max(TOLERANCE_SHARE * spread, 0.5 * float(steps[steps > 1e-6].min(initial=0.0)), 1e-3)


def set_attribute(explorer, kind: str, z, attribute: str, target, tolerance=None) -> TargetResult:
    """Move ``z`` along ``attribute``'s dim until the decoded output measures within ``tolerance`` of
    ``target``: measure both ends (+-4); refuse a target outside what they reach; bisect (the dim is
    monotonic in the attribute for AR-VAE); if that stalls (a non-monotonic dim, a discrete
    attribute), check 9 positions around the best one. At most ``MAX_SET_DECODES`` decodings."""
    kind = check_kind(kind)
    z = parse_z(z, explorer.latent_dim)
    index = attribute_index(explorer, attribute)
    dim = int(explorer.attribute_dims(kind)[0][index])
    target = finite_number(target, "the target value")
    tolerance = default_tolerance(explorer, attribute) if tolerance in (None, "") else \
        finite_number(tolerance, "the tolerance")
    if tolerance <= 0:
        raise ValueError(f"the tolerance must be positive, got {tolerance}")
    tried: list[tuple[float, float]] = []  # (position, measured)

    def at(positions) -> np.ndarray:
        measured = measure_along(explorer, kind, z, dim, np.asarray(positions, np.float32))[:, index]
        tried.extend(zip(map(float, positions), map(float, measured)))
        return measured

    def best() -> tuple[float, float]:
        return min(tried, key=lambda pv: abs(pv[1] - target) if np.isfinite(pv[1]) else np.inf)

    def result(message: str) -> TargetResult:
        position, value = best()
        code = z.copy()
        code[dim] = position
        reached = bool(np.isfinite(value) and abs(value - target) <= tolerance)
        return TargetResult(attribute, dim, target, tolerance, reached, value, code, len(tried), reach, message)

    low, high = (float(v) for v in at([-SPAN, SPAN]))
    reach = (low, high)
    ends = np.array([low, high])
    if not np.all(np.isfinite(ends)) or not ends.min() - tolerance <= target <= ends.max() + tolerance:
        def shown(value):  # undefined: a blank output, or a sprite that is none of the shapes
            return f"{value:.3f}" if np.isfinite(value) else "undefined"

        return result(f"{target:g} is outside what the model reaches from this code: along z[{dim}] from "
                      f"{-SPAN:g} to {SPAN:g}, {attribute} measures {shown(low)} … {shown(high)}")
    increasing, lo, hi = high >= low, -SPAN, SPAN
    while abs(best()[1] - target) > tolerance and hi - lo > 1e-3 and len(tried) < MAX_SET_DECODES - 9:
        mid = (lo + hi) / 2
        value = at([mid])[0]
        if not np.isfinite(value):
            break
        lo, hi = (mid, hi) if (value < target) == increasing else (lo, mid)
    if abs(best()[1] - target) > tolerance:  # the local check
        centre = best()[0]
        at(np.clip(np.linspace(centre - 0.5, centre + 0.5, 9), -SPAN, SPAN))
    position, value = best()
    if abs(value - target) <= tolerance:
        return result(f"{attribute} = {value:.3f} (target {target:g} ± {tolerance:.3g}) at z[{dim}] = "
                      f"{position:+.3f}, after {len(tried)} decodes")
    return result(f"no position of z[{dim}] decodes to {attribute} within {tolerance:.3g} of {target:g}; the "
                  f"closest is {value:.3f} at z[{dim}] = {position:+.3f} ({len(tried)} decodes)")


# ============================================================================= controllability

@dataclass(frozen=True)
class Controllability:
    """Sweeps of ``n`` held-out inputs along each attribute's dim: ``values`` (S,) the requested
    positions, ``measured`` (L, N, S), ``rho`` (L, N) each sweep's Spearman rho, ``monotonic``
    (L, N) whether the sweep never turns back (and moves); ``rho`` and ``monotonic`` read angles
    unwrapped along the sweep (:func:`traversal.unwrap_angles`), ``measured`` as measured."""

    kind: str
    dims: list
    values: np.ndarray
    measured: np.ndarray
    rho: np.ndarray
    monotonic: np.ndarray

    def summary(self, attribute_names) -> dict:
        """attribute -> ``{"dim", "spearman" (mean rho, = arvae.evaluate's traversal monotonicity),
        "monotonic_share"}``."""
        return {name: {"dim": int(self.dims[l]), "spearman": float(self.rho[l].mean()),
                       "monotonic_share": float(self.monotonic[l].mean())}
                for l, name in enumerate(attribute_names)}


def monotonic_sweeps(measured: np.ndarray) -> np.ndarray:
    """``(..., S)`` -> whether each sweep is non-decreasing or non-increasing, not constant, and finite."""
    steps = np.diff(measured, axis=-1)
    with np.errstate(invalid="ignore"):
        one_way = np.all(steps >= 0, axis=-1) | np.all(steps <= 0, axis=-1)
    return one_way & np.any(steps != 0, axis=-1) & np.all(np.isfinite(measured), axis=-1)


def controllability(explorer, kind: str, n_inputs=DEFAULT_CONTROL_INPUTS, steps=9) -> Controllability:
    """The first ``n_inputs`` held-out inputs, encoded (posterior means) and swept from -4 to 4 along
    each attribute's dim as ``arvae.evaluate.traversal_monotonicity`` does; cached."""
    kind = check_kind(kind)
    n = whole_number(n_inputs, "the number of inputs", CONTROL_INPUTS[0], min(CONTROL_INPUTS[1], len(explorer.samples)))
    steps = whole_number(steps, "steps", 3, 17)
    dims, _ = explorer.attribute_dims(kind)

    def make():
        model = explorer.model(kind)
        latents = traversal.encode(model, explorer.samples.model_inputs(np.arange(n)))
        values, measured = traversal.traverse_and_measure(model, explorer.measure, latents, dims, steps)
        unwrapped = traversal.unwrap_angles(explorer.spec, measured, explorer.samples.attributes[:n])
        rho = np.stack([metrics.spearman_rows(values, unwrapped[l]) for l in range(len(dims))])
        return Controllability(kind, list(dims), values, measured, rho, monotonic_sweeps(unwrapped))

    return explorer.results.get(("controllability", kind, n, steps, tuple(dims)), make)
