"""Morpho-MNIST morphometrics of digit images (Castro et al., JMLR 2019).

The definitions follow ``morphomnist/morpho.py`` and ``measure.py`` of dccastro/Morpho-MNIST:

* the 28x28 image is upsampled ``scale`` times (``skimage.transform.pyramid_expand``, cubic
  spline + Gaussian smoothing) and cast back to 0-255, then thresholded at half its intensity
  range (``img >= min + (max - min) / 2``);
* **area**: foreground pixel count / scale²;
* **length**: length of the medial-axis skeleton (``skimage.morphology.medial_axis``), counting
  straight neighbour steps as 1 and diagonal ones as √2, / scale;
* **thickness**: 2 × mean distance-transform value on the skeleton / scale;
* **slant**: ``arctan(-u11 / u02)`` from the central moments of the upsampled grey image
  (positive for digits leaning right, ``/``; image rows run downwards);
* **width**, **height**: sides of the slant-aligned bounding parallelogram that leaves out 1 % of
  the ink on each side (``bound_frac = 0.02``), / scale.

Differences from the reference, none of which change the definitions: the parallelogram's
cumulative sums are computed by sorting instead of a loop over columns; the medial axis uses a
fixed tie-breaking seed (``rng=0``; new scikit-image versions draw an unseeded one); constant
(blank) images, which the reference would measure as one big blob, give a row of NaN; float
images in [0, 1] are upsampled without the uint8 truncation that integer images get.

Two implementations of the same definitions:

* :func:`measure` is the reference: one image at a time, literally as above (~300-450 digits/s
  per core at scale 4); the training data's attributes are computed with it;
* :func:`measure_fast` is the batched path used on decoded images (the registry's ``measure`` for
  MNIST, hence the app and ``arvae.evaluate``): the upsampling is two matrix products per axis
  (the spline zoom and the Gaussian of ``pyramid_expand`` are linear maps, the clip between them
  is per image), moments and the bounding parallelogram are computed for the whole batch at
  once, and the medial axis runs per digit on the digit's bounding box (plus a one-pixel
  margin, which changes no distance) with the reference's tie-breaking, optionally in threads
  (the distance transform releases the GIL). It computes in float32 where the reference uses
  float64, so a handful of pixels right at the threshold may fall the other way; otherwise the
  results are the reference's (``tests/test_morphometrics_fast.py`` checks the agreement on
  real digits). ``python benchmarks/bench.py`` measures both.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

# scipy.ndimage and scikit-image are imported where they are used: importing them takes ~0.3 s,
# which importing the registry (and so starting the app) should not pay

ATTRIBUTE_NAMES = ("area", "length", "thickness", "slant", "width", "height")

_SKEL_LEN_MASK = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [np.sqrt(2.0), 1.0, np.sqrt(2.0)]])


def _as_batch(images) -> tuple[np.ndarray, bool]:
    """(N, H, W) array and whether it holds integer 0-255 data."""
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected (N, 1, H, W) images, got shape {images.shape}")
        images = images[:, 0]
    elif images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {images.shape}")
    return images, not np.issubdtype(images.dtype, np.floating)


def _upsample(image: np.ndarray, is_int: bool, scale: int) -> np.ndarray:
    """The high-resolution grey image on a 0-255 scale (uint8 for integer input, as the reference)."""
    if is_int:
        image = np.clip(image, 0, 255).astype(np.uint8)
        if scale == 1:
            return image
        from skimage import transform

        up = transform.pyramid_expand(image, upscale=scale, order=3)  # uint8 -> float in [0, 1]
        return (255.0 * up).astype(np.uint8)
    image = np.clip(np.nan_to_num(image.astype(np.float64)), 0.0, 1.0)
    if scale == 1:
        return 255.0 * image
    from skimage import transform

    return 255.0 * transform.pyramid_expand(image, upscale=scale, order=3, preserve_range=True)


def _medial_axis_tables():
    """The two 512-entry 3x3-pattern lookup tables of ``skimage.morphology.medial_axis``.

    scikit-image rebuilds them (1,024 ``ndimage.label`` calls) on every call, which is ~75 % of
    the cost of measuring a digit; they do not depend on the image, so build them once.
    """
    from scipy import ndimage

    index = np.arange(512)
    patterns = ((index[:, None] >> np.arange(9)[None, :]) & 1).astype(bool).reshape(512, 3, 3)
    eight = np.ones((3, 3), bool)
    without_centre = patterns.copy()
    without_centre[:, 1, 1] = False
    changes = np.array([ndimage.label(a, eight)[1] != ndimage.label(b, eight)[1]
                        for a, b in zip(patterns, without_centre)])
    keep = ((index & 16) > 0) & (changes | (patterns.sum(axis=(1, 2)) < 3))
    cornerness = 9 - patterns.sum(axis=(1, 2))
    return np.ascontiguousarray(keep, dtype=np.uint8), cornerness


@functools.lru_cache(maxsize=1)
def _skeleton_kernels():
    """``(skeletonize_loop, table_lookup, keep_table, corner_table)``: scikit-image's compiled
    medial-axis kernels (private API) and the cached tables; None where they cannot be imported
    (then the public ``skimage.morphology.medial_axis`` is used)."""
    try:
        from skimage.morphology._skeletonize import _skeletonize_loop, _table_lookup
    except ImportError:  # pragma: no cover
        return None
    return (_skeletonize_loop, _table_lookup, *_medial_axis_tables())


def medial_axis(binary: np.ndarray, rng: int = 0):
    """``skimage.morphology.medial_axis(binary, return_distance=True, rng=rng)``, with cached tables."""
    from scipy import ndimage

    kernels = _skeleton_kernels()
    if kernels is None:  # pragma: no cover
        from skimage import morphology

        return morphology.medial_axis(binary, return_distance=True, rng=rng)
    _skeletonize_loop, _table_lookup, _KEEP_TABLE, _CORNER_TABLE = kernels
    binary = np.asarray(binary, dtype=bool)
    distance = ndimage.distance_transform_edt(binary)
    corner_score = _table_lookup(binary, _CORNER_TABLE)
    ii, jj = np.nonzero(binary)  # row-major, the order of boolean indexing in scikit-image
    dist = distance[ii, jj]
    tiebreaker = np.random.default_rng(rng).permutation(np.arange(len(ii)))
    order = np.ascontiguousarray(np.lexsort((tiebreaker, corner_score[ii, jj], dist)), dtype=np.int32)
    result = np.ascontiguousarray(binary, dtype=np.uint8)
    _skeletonize_loop(result, np.ascontiguousarray(ii, dtype=np.intp), np.ascontiguousarray(jj, dtype=np.intp),
                      order, _KEEP_TABLE)
    return result.astype(bool), distance


def _moments(img: np.ndarray):
    img = img.astype(np.float64)
    y = np.arange(img.shape[0], dtype=np.float64)[:, None]
    x = np.arange(img.shape[1], dtype=np.float64)[None, :]
    m00 = img.sum()
    m10 = (x * img).sum() / m00
    m01 = (y * img).sum() / m00
    u20 = (x**2 * img).sum() / m00 - m10**2
    u11 = (x * y * img).sum() / m00 - m10 * m01
    u02 = (y**2 * img).sum() / m00 - m01**2
    return m00, m10, m01, u20, u11, u02


def _bounding_parallelogram(img: np.ndarray, frac: float, y_mid: float, shear: float):
    """(left, right, top, bottom) of Morpho-MNIST's bounding parallelogram."""
    height, width = img.shape
    img = img.astype(np.float64)
    total = img.sum()
    ys, xs = np.nonzero(img)
    weights = img[ys, xs]
    # horizontal cdf: ink with x + .5 < t + shear * (y - y_mid), for t = 0 .. width-1
    key = xs + 0.5 - shear * (ys - y_mid)
    order = np.argsort(key, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(weights[order])])
    locs = np.arange(width, dtype=np.float64)
    hcdf = cum[np.searchsorted(key[order], locs, side="left")] / total
    # vertical cdf: ink in rows y < t
    vcdf = np.concatenate([[0.0], np.cumsum(img.sum(axis=1))[:-1]]) / total
    half = frac / 2.0
    left, right = np.interp([half, 1.0 - half], hcdf, locs)
    top, bottom = np.interp([half, 1.0 - half], vcdf, np.arange(height, dtype=np.float64))
    return left, right, top, bottom


def measure_image(image: np.ndarray, threshold: float = 0.5, scale: int = 4, bound_frac: float = 0.02,
                  is_int: bool | None = None) -> np.ndarray:
    """The six morphometrics of one (H, W) image as float64 (6,); NaN where undefined."""
    if is_int is None:
        is_int = not np.issubdtype(np.asarray(image).dtype, np.floating)
    out = np.full(6, np.nan)
    hires = _upsample(np.asarray(image), is_int, int(scale))
    lo, hi = float(hires.min()), float(hires.max())
    if hi - lo < 1.0:  # blank / constant image: nothing to measure
        return out
    binary = hires >= lo + (hi - lo) * threshold
    skel, dist = medial_axis(binary)
    out[0] = binary.sum() / scale**2
    if skel.any():
        skel_f = skel.astype(np.float64)
        from scipy import ndimage

        conv = ndimage.correlate(skel_f, _SKEL_LEN_MASK, mode="constant")
        out[1] = np.einsum("ij,ij->", conv, skel_f) / scale
        out[2] = 2.0 * dist[skel].mean() / scale
    _, _, m01, _, u11, u02 = _moments(hires)
    with np.errstate(divide="ignore", invalid="ignore"):
        shear = u11 / u02
    if np.isfinite(shear):
        out[3] = np.arctan(-shear)
        left, right, top, bottom = _bounding_parallelogram(hires, bound_frac, m01, shear)
        out[4] = (right - left) / scale
        out[5] = (bottom - top) / scale
    return out


def _measure_chunk(args):
    images, is_int, threshold, scale, bound_frac = args
    return np.stack([measure_image(img, threshold, scale, bound_frac, is_int) for img in images])


def measure(images, threshold: float = 0.5, scale: int = 4, bound_frac: float = 0.02, workers: int = 1,
            progress: bool = False, chunk_size: int = 256) -> np.ndarray:
    """Morphometrics of a batch of digits.

    ``images``: (N, 28, 28) or (N, 1, 28, 28); uint8/integer 0-255, or float in [0, 1] (scaled
    by 255). Returns float32 (N, 6), columns in :data:`ATTRIBUTE_NAMES` order; blank images give
    NaN rows. ``scale`` is the upsampling factor (4 as in Morpho-MNIST; 2 or 1 is faster and
    coarser). ``workers > 1`` spreads chunks over a process pool; ``progress`` shows a tqdm bar.
    """
    batch, is_int = _as_batch(images)
    n = len(batch)
    result = np.full((n, 6), np.nan, dtype=np.float32)
    if n == 0:
        return result
    starts = range(0, n, chunk_size)
    tasks = ((batch[s:s + chunk_size], is_int, threshold, scale, bound_frac) for s in starts)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="img", desc="morphometrics", mininterval=2.0)
    pool = None
    try:
        if workers > 1 and n > chunk_size:
            import multiprocessing

            pool = multiprocessing.get_context("spawn" if _torch_threads_loaded() else None).Pool(workers)
            chunks = pool.imap(_measure_chunk, tasks)
        else:
            chunks = map(_measure_chunk, tasks)
        for start, values in zip(starts, chunks):
            result[start:start + len(values)] = values
            if bar is not None:
                bar.update(len(values))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    return result


def _torch_threads_loaded() -> bool:
    # forking a process that has started torch's thread pools can hang; spawn is safe
    import sys

    return "torch" in sys.modules


# ----------------------------------------------------------------------------------- fast path
#
# measure_fast(): the same definitions for a batch, fast. See the module docstring.

_SQRT2 = float(np.sqrt(2.0))
_ZOOM_MODE = "mirror"  # skimage's mode="reflect" for resize is scipy.ndimage's "mirror"
_GAUSS_MODE = "reflect"  # ... and skimage.filters.gaussian passes "reflect" to ndimage unchanged


@functools.lru_cache(maxsize=16)
def _expand_operators(size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``pyramid_expand(order=3, upscale=scale)`` along one axis of length ``size`` as two
    float32 matrices: the cubic-spline zoom ``A`` (size*scale x size) and the Gaussian ``G``
    (size*scale square). ``pyramid_expand(x) == G @ clip(A @ x @ A.T, x.min(), x.max()) @ G.T``."""
    from scipy import ndimage

    eye = np.eye(size)
    zoom = np.stack([ndimage.zoom(eye[:, j], scale, order=3, mode=_ZOOM_MODE, grid_mode=True)
                     for j in range(size)], axis=1)
    out = zoom.shape[0]
    eye = np.eye(out)
    gauss = np.stack([ndimage.gaussian_filter(eye[:, j], 2.0 * scale / 6.0, mode=_GAUSS_MODE, truncate=4.0)
                      for j in range(out)], axis=1)
    return np.ascontiguousarray(zoom, dtype=np.float32), np.ascontiguousarray(gauss, dtype=np.float32)


_UPSAMPLE_BLOCK = 32  # digits upsampled at a time: their 112x112 planes stay in cache (128 at a time: 1.6x slower)
_BAND_BLOCK = 16  # output rows per block of a banded product (one block of 112, the dense product, was 4x slower)


@functools.lru_cache(maxsize=16)
def _band_blocks(size: int, scale: int) -> tuple[tuple[int, int, int, int], ...]:
    """``(row_start, row_stop, col_start, col_stop)`` blocks covering the nonzero band of the
    Gaussian operator of :func:`_expand_operators`: 11 taps wide at scale 4, so a product with the
    blocks skips the ~90 % of a dense product that multiplies zeros (and gives the same sums)."""
    gauss = _expand_operators(size, scale)[1]
    blocks = []
    for start in range(0, len(gauss), _BAND_BLOCK):
        rows = gauss[start:start + _BAND_BLOCK]
        cols = np.flatnonzero(rows.any(axis=0))
        blocks.append((start, start + len(rows), int(cols[0]), int(cols[-1]) + 1))
    return tuple(blocks)


def _banded_product(y, operator, blocks):
    """``y @ operator.T`` over the last dim of ``y`` (..., K), computed block by block."""
    import torch

    out = torch.empty(y.shape[:-1] + (operator.shape[0],), dtype=y.dtype)
    for start, stop, lo, hi in blocks:
        out[..., start:stop] = y[..., lo:hi] @ operator[start:stop, lo:hi].T
    return out


def _upsample_batch(images: np.ndarray, is_int: bool, scale: int) -> np.ndarray:
    """:func:`_upsample` of a batch ``(N, H, W)`` as float32 ``(N, H*scale, W*scale)`` on a 0-255
    scale (whole numbers for integer input, as the reference's uint8). Matrix products in torch
    (MKL), which is ~1.5x faster here than numpy's; the Gaussian's only over its band."""
    import torch

    if is_int:
        x = np.clip(images, 0, 255).astype(np.float32) / np.float32(255.0)
    else:
        x = np.clip(np.nan_to_num(images.astype(np.float32)), 0.0, 1.0)
    n, h, w = x.shape
    if scale == 1:
        return np.floor(x * 255.0 + 0.5) if is_int else x * np.float32(255.0)
    zoom_h, gauss_h = (torch.from_numpy(m) for m in _expand_operators(h, scale))
    zoom_w, gauss_w = (torch.from_numpy(m) for m in _expand_operators(w, scale))
    bands_h, bands_w = _band_blocks(h, scale), _band_blocks(w, scale)
    hs, ws = zoom_h.shape[0], zoom_w.shape[0]
    out = torch.empty((n, hs, ws), dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, n, _UPSAMPLE_BLOCK):
            t = torch.from_numpy(x[start:start + _UPSAMPLE_BLOCK])
            m = len(t)
            lo = t.amin(dim=(1, 2), keepdim=True)
            hi = t.amax(dim=(1, 2), keepdim=True)
            y = (t.reshape(m * h, w) @ zoom_w.T).reshape(m, h, ws)                      # zoom along x
            y = (y.transpose(1, 2).reshape(m * ws, h) @ zoom_h.T).reshape(m, ws, hs)     # along y (transposed)
            y = torch.maximum(torch.minimum(y, hi), lo)                                  # resize(clip=True)
            y = _banded_product(y, gauss_h, bands_h)                                     # smooth along y
            y = _banded_product(y.transpose(1, 2), gauss_w, bands_w).mul_(255.0)         # smooth along x
            if is_int:
                y.floor_()  # the reference casts 255 * up to uint8 (truncation; up >= 0)
            out[start:start + m] = y
    return out.numpy()


_TIEBREAK = threading.local()


def _tiebreaker(n: int) -> np.ndarray:
    """``np.random.default_rng(0).permutation(np.arange(n))``, the reference's tie-breaking, without
    building a generator per digit (its state is reset instead)."""
    state = getattr(_TIEBREAK, "state", None)
    if state is None:
        _TIEBREAK.generator = np.random.default_rng(0)
        _TIEBREAK.state = state = _TIEBREAK.generator.bit_generator.state
    generator = _TIEBREAK.generator
    generator.bit_generator.state = state
    return generator.permutation(n)


def _medial_axis_order(d2: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """``np.lexsort((tiebreaker, corner, distance))`` of the reference, for whole-number squared
    distances: sort by the tiebreaker (a permutation, so by scattering), then a stable radix sort
    on one 16-bit key."""
    n = len(d2)
    tiebreak = _tiebreaker(n)
    by_tiebreak = np.empty(n, dtype=np.intp)
    by_tiebreak[tiebreak] = np.arange(n)
    primary = d2 * 16 + corner
    if n and primary.max() < 2**16:
        return by_tiebreak[np.argsort(primary[by_tiebreak].astype(np.uint16), kind="stable")].astype(np.int32)
    return np.lexsort((tiebreak, primary)).astype(np.int32)  # pragma: no cover (strokes > 60 px thick)


def _skeleton_length_thickness(crop: np.ndarray) -> tuple[float, float]:
    """Length and thickness (in high-resolution pixels) of the reference's :func:`medial_axis` of a
    binary crop: squared distances from the feature transform at foreground pixels only."""
    from scipy import ndimage

    kernels = _skeleton_kernels()
    if kernels is None:  # pragma: no cover
        skel, distance = medial_axis(crop)
        if not skel.any():
            return np.nan, np.nan
        on_skeleton = distance[skel]
    else:
        _skeletonize_loop, _table_lookup, _KEEP_TABLE, _CORNER_TABLE = kernels
        features = ndimage.distance_transform_edt(crop, return_distances=False, return_indices=True)
        ii, jj = np.nonzero(crop)
        d2 = (features[0][ii, jj] - ii) ** 2 + (features[1][ii, jj] - jj) ** 2
        corner = _table_lookup(crop, _CORNER_TABLE)[ii, jj]
        result = np.ascontiguousarray(crop, dtype=np.uint8)
        ii, jj = np.ascontiguousarray(ii, dtype=np.intp), np.ascontiguousarray(jj, dtype=np.intp)
        _skeletonize_loop(result, ii, jj, _medial_axis_order(d2, corner), _KEEP_TABLE)
        on_skeleton = result[ii, jj].view(bool)
        if not on_skeleton.any():
            return np.nan, np.nan
        on_skeleton = np.sqrt(d2[on_skeleton])
        skel = result.view(bool)
    straight = np.count_nonzero(skel[:, :-1] & skel[:, 1:]) + np.count_nonzero(skel[:-1] & skel[1:])
    diagonal = np.count_nonzero(skel[:-1, :-1] & skel[1:, 1:]) + np.count_nonzero(skel[:-1, 1:] & skel[1:, :-1])
    return straight + _SQRT2 * diagonal, 2.0 * float(on_skeleton.mean())


def _measure_fast_chunk(batch: np.ndarray, is_int: bool, threshold: float, scale: int, bound_frac: float,
                        pool, wanted: frozenset = frozenset(range(6))) -> np.ndarray:
    n = len(batch)
    out = np.full((n, 6), np.nan)
    hires = _upsample_batch(batch, is_int, scale)                     # (n, hs, ws) float32, 0-255
    _, hs, ws = hires.shape
    lo = hires.min(axis=(1, 2)).astype(np.float64)
    hi = hires.max(axis=(1, 2)).astype(np.float64)
    flat = batch.reshape(n, -1)
    # blank / constant images are not measured (float32 rounding can make a constant image's
    # upsampling straddle a whole number, which the reference's float64 does not)
    valid = (hi - lo >= 1.0) & (flat.min(axis=1) != flat.max(axis=1))
    # whole-number thresholds (integer input) are exact in float32
    binary = hires >= (lo + (hi - lo) * threshold).astype(np.float32)[:, None, None]
    binary[~valid] = False
    if 0 in wanted:
        out[valid, 0] = np.count_nonzero(binary.reshape(n, -1), axis=1)[valid] / scale**2
    if wanted & {3, 4, 5}:
        _slant_width_height(out, hires, valid, scale, bound_frac, wanted)
    if wanted & {1, 2}:
        _length_thickness(out, binary, valid, scale, pool)
    return out


def _slant_width_height(out, hires, valid, scale, bound_frac, wanted):
    n, hs, ws = hires.shape
    # moments of the grey image (whole-number sums are exact in float32 up to 2**24)
    xs = np.arange(ws, dtype=np.float64)
    ys = np.arange(hs, dtype=np.float64)
    rows = hires.sum(axis=2, dtype=np.float64)                         # (n, hs)
    cols = hires.sum(axis=1, dtype=np.float64)                         # (n, ws)
    x_weighted = np.dot(hires.reshape(n * hs, ws), xs.astype(np.float32)).reshape(n, hs).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m00 = rows.sum(axis=1)
        m10 = cols @ xs / m00
        m01 = rows @ ys / m00
        u11 = x_weighted @ ys / m00 - m10 * m01
        u02 = rows @ ys**2 / m00 - m01**2
        shear = u11 / u02
    sheared = valid & np.isfinite(shear)
    out[sheared, 3] = np.arctan(-shear[sheared])

    # bounding parallelogram. The reference's horizontal cdf at t counts the ink with
    # x + .5 - shear * (y - y_mid) < t; for whole x that is x + k_y <= t with
    # k_y = floor(.5 - shear * (y - y_mid)) + 1: a histogram over bins x + k_y, then a cumsum.
    idx = np.flatnonzero(sheared)
    if len(idx) and wanted & {4, 5}:
        m = len(idx)
        half = bound_frac / 2.0
        offsets = (np.floor(0.5 - shear[idx, None] * (ys[None, :] - m01[idx, None])) + 1).astype(np.int64)
        base = (np.arange(m, dtype=np.int64) * (ws + 1))[:, None, None]
        bins = (offsets[:, :, None] + base) + np.arange(ws, dtype=np.int64)
        np.clip(bins, base, base + ws, out=bins)
        hist = np.bincount(bins.ravel(), weights=hires[idx].ravel(), minlength=m * (ws + 1))
        hcdf = np.cumsum(hist.reshape(m, ws + 1), axis=1)[:, :ws] / m00[idx, None]
        vcdf = np.concatenate([np.zeros((m, 1)), np.cumsum(rows[idx], axis=1)[:, :-1]], axis=1) / m00[idx, None]
        quantiles = [half, 1.0 - half]
        for row, i in enumerate(idx):
            left, right = np.interp(quantiles, hcdf[row], xs)
            top, bottom = np.interp(quantiles, vcdf[row], ys)
            out[i, 4] = (right - left) / scale
            out[i, 5] = (bottom - top) / scale


def _length_thickness(out, binary, valid, scale, pool):
    """Medial axis per digit, on its bounding box plus a one-pixel margin (inside the image)."""
    n, hs, ws = binary.shape
    any_row = binary.any(axis=2)
    any_col = binary.any(axis=1)
    r0, c0 = any_row.argmax(axis=1), any_col.argmax(axis=1)
    r1, c1 = hs - any_row[:, ::-1].argmax(axis=1), ws - any_col[:, ::-1].argmax(axis=1)

    top, left = np.maximum(r0 - 1, 0).tolist(), np.maximum(c0 - 1, 0).tolist()
    bottom, right = np.minimum(r1 + 1, hs).tolist(), np.minimum(c1 + 1, ws).tolist()

    def skeletons(indices):
        for i in indices:
            length, thickness = _skeleton_length_thickness(binary[i, top[i]:bottom[i], left[i]:right[i]])
            out[i, 1] = length / scale
            out[i, 2] = thickness / scale

    todo = np.flatnonzero(valid).tolist()
    if pool is None or len(todo) < 2:
        skeletons(todo)
    else:  # one block of digits per thread (not a task per digit)
        executor, workers = pool
        list(executor.map(skeletons, [todo[k::workers] for k in range(workers)]))


_POOL_LOCK = threading.Lock()
_POOLS: dict = {}


def _thread_pool(workers: int):
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="morphometrics")
        return _POOLS[workers]


def measure_fast(images, threshold: float = 0.5, scale: int = 4, bound_frac: float = 0.02, workers: int = 1,
                 chunk_size: int = 128, attributes=None) -> np.ndarray:
    """Morphometrics of a batch of digits, batched: the definitions of :func:`measure` (same
    arguments and output: float32 ``(N, 6)``, NaN rows for blank images), several times faster.

    ``workers > 1`` runs the per-digit medial axes in that many threads (worth it with idle cores).
    ``attributes`` (names or column indices) limits the work to those columns; the others are NaN
    unless computed along the way: area needs only the threshold, slant the moments, width and
    height the moments and the parallelogram, length and thickness the medial axis (the costly part).
    """
    wanted = frozenset(range(6)) if attributes is None else frozenset(
        ATTRIBUTE_NAMES.index(a) if isinstance(a, str) else int(a) for a in attributes)
    if not wanted <= set(range(6)):
        raise ValueError(f"attributes must be names in {ATTRIBUTE_NAMES} or indices 0-5, got {attributes!r}")
    batch, is_int = _as_batch(images)
    n = len(batch)
    result = np.full((n, 6), np.nan, dtype=np.float32)
    scale = int(scale)
    pool = (_thread_pool(int(workers)), int(workers)) if workers and int(workers) > 1 and n > 1 else None
    with np.errstate(all="ignore"):
        for start in range(0, n, chunk_size):
            part = batch[start:start + chunk_size]
            result[start:start + len(part)] = _measure_fast_chunk(part, is_int, threshold, scale, bound_frac, pool,
                                                                  wanted)
    return result


def default_workers() -> int:
    """Threads for :func:`measure_decoded`: ``$ARVAE_MORPHOMETRICS_THREADS``, else up to 2."""
    import os

    try:
        return max(1, int(os.environ.get("ARVAE_MORPHOMETRICS_THREADS", "")))
    except ValueError:
        return max(1, min(2, os.cpu_count() or 1))


def measure_decoded(images, attributes=None) -> np.ndarray:
    """:func:`measure_fast` with the default settings and :func:`default_workers` threads: the
    registry's measure of decoded MNIST digits (app, evaluation, benchmark). ``attributes`` as
    for :func:`measure_fast` (an attribute surface asks for the one it shows)."""
    return measure_fast(images, workers=default_workers(), attributes=attributes)
