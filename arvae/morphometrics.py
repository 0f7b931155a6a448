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
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology, transform

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
        up = transform.pyramid_expand(image, upscale=scale, order=3)  # uint8 -> float in [0, 1]
        return (255.0 * up).astype(np.uint8)
    image = np.clip(np.nan_to_num(image.astype(np.float64)), 0.0, 1.0)
    if scale == 1:
        return 255.0 * image
    return 255.0 * transform.pyramid_expand(image, upscale=scale, order=3, preserve_range=True)


def _medial_axis_tables():
    """The two 512-entry 3x3-pattern lookup tables of ``skimage.morphology.medial_axis``.

    scikit-image rebuilds them (1,024 ``ndimage.label`` calls) on every call, which is ~75 % of
    the cost of measuring a digit; they do not depend on the image, so build them once.
    """
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


try:  # scikit-image's compiled kernels (private API; fall back to the public function)
    from skimage.morphology._skeletonize import _skeletonize_loop, _table_lookup
    _KEEP_TABLE, _CORNER_TABLE = _medial_axis_tables()
except ImportError:  # pragma: no cover
    _skeletonize_loop = None


def medial_axis(binary: np.ndarray, rng: int = 0):
    """``skimage.morphology.medial_axis(binary, return_distance=True, rng=rng)``, with cached tables."""
    if _skeletonize_loop is None:  # pragma: no cover
        return morphology.medial_axis(binary, return_distance=True, rng=rng)
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
