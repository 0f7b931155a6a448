"""scikit-image's medial axis of one binary image, compiled with numba and free of the GIL.

:func:`morphometrics.measure_fast` measures length and thickness on the medial axis of every
decoded digit. Done with scipy's distance transform and scikit-image's kernels, each digit costs
~0.3 ms, most of it in Python between the compiled calls, which holds the GIL, so two threads
measured barely faster than one. Here the whole medial axis of a digit is one compiled call
that releases the GIL.

The steps are those of ``skimage.morphology.medial_axis`` (scikit-image 0.26): the squared
Euclidean distance of each foreground pixel to the nearest background pixel of the image
(exact integers, by Felzenszwalb & Huttenlocher's lower envelope, where scipy computes a
feature transform), the 3x3 "cornerness" of each pixel, the pixels visited in order of
distance, then cornerness, then the caller's tie-breaking permutation (``_skeletonize_loop``'s
order), and the same 3x3 keep-table pass. ``tests/test_morphometrics_fast.py`` keeps the
skeletons and distances equal to :func:`morphometrics.medial_axis`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_NONE = np.int64(1) << 40  # "no background pixel in this column"


@njit(nogil=True, cache=True)
def squared_distances(image):
    """Squared Euclidean distance of every pixel of ``image`` (h, w) uint8 to its nearest 0 pixel
    (int64; 0 on background; ``_NONE`` everywhere when the image has no 0 pixel, where scipy's
    values are arbitrary: the medial axis then orders by cornerness alone and measures NaN)."""
    h, w = image.shape
    column = np.empty((h, w), np.int64)                 # distance to the nearest 0 in the column
    for j in range(w):
        d = _NONE
        for i in range(h):
            d = 0 if image[i, j] == 0 else (d + 1 if d < _NONE else d)
            column[i, j] = d
        d = _NONE
        for i in range(h - 1, -1, -1):
            d = 0 if image[i, j] == 0 else (d + 1 if d < _NONE else d)
            if d < column[i, j]:
                column[i, j] = d
    out = np.full((h, w), _NONE, np.int64)
    sites = np.empty(w, np.int64)                       # parabolas of the lower envelope
    bounds = np.empty(w + 1, np.float64)
    for i in range(h):
        k = -1
        for q in range(w):
            if column[i, q] >= _NONE:
                continue
            fq = column[i, q] * column[i, q] + q * q
            if k < 0:
                k = 0
                sites[0] = q
                bounds[0] = -np.inf
                bounds[1] = np.inf
                continue
            while True:
                p = sites[k]
                s = (fq - (column[i, p] * column[i, p] + p * p)) / (2.0 * (q - p))
                if s > bounds[k]:
                    break
                k -= 1
            k += 1
            sites[k] = q
            bounds[k] = s
            bounds[k + 1] = np.inf
        if k < 0:
            continue
        k = 0
        for q in range(w):
            while bounds[k + 1] < q:
                k += 1
            p = sites[k]
            out[i, q] = (q - p) * (q - p) + column[i, p] * column[i, p]
    return out


@njit(nogil=True, cache=True)
def medial_axis(image, tiebreak, keep_table, corner_table):
    """Medial axis of ``image`` (h, w) uint8 0/1: ``(skeleton (h, w) uint8, squared distances)``.

    ``tiebreak`` is the permutation scikit-image draws over the foreground pixels in row-major
    order (``np.random.default_rng(rng).permutation(n)``); the tables are
    :func:`morphometrics._medial_axis_tables`'."""
    h, w = image.shape
    d2 = squared_distances(image)
    n = 0
    for i in range(h):
        for j in range(w):
            n += image[i, j] != 0
    rows = np.empty(n, np.int64)
    cols = np.empty(n, np.int64)
    key = np.empty(n, np.int64)                         # distance, then cornerness (< 16)
    t = 0
    for i in range(h):
        for j in range(w):
            if image[i, j] == 0:
                continue
            pattern = 0
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    ii, jj = i + di, j + dj
                    if 0 <= ii < h and 0 <= jj < w and image[ii, jj] != 0:
                        pattern += 1 << ((di + 1) * 3 + dj + 1)
            rows[t], cols[t] = i, j
            key[t] = (d2[i, j] if d2[i, j] < _NONE else 0) * 16 + corner_table[pattern]
            t += 1
    by_tiebreak = np.empty(n, np.int64)                 # pixels in tie-breaking order
    for t in range(n):
        by_tiebreak[tiebreak[t]] = t
    start = np.zeros(key.max() + 2 if n else 1, np.int64)  # stable counting sort by key
    for t in range(n):
        start[key[t] + 1] += 1
    for k in range(1, len(start)):
        start[k] += start[k - 1]
    order = np.empty(n, np.int64)
    for t in by_tiebreak:
        order[start[key[t]]] = t
        start[key[t]] += 1
    result = image.copy()
    for index in range(n):                              # scikit-image's _skeletonize_loop
        t = order[index]
        i, j = rows[t], cols[t]
        pattern = 16
        if i > 0:
            if j > 0 and result[i - 1, j - 1]:
                pattern += 1
            if result[i - 1, j]:
                pattern += 2
            if j < w - 1 and result[i - 1, j + 1]:
                pattern += 4
        if j > 0 and result[i, j - 1]:
            pattern += 8
        if j < w - 1 and result[i, j + 1]:
            pattern += 32
        if i < h - 1:
            if j > 0 and result[i + 1, j - 1]:
                pattern += 64
            if result[i + 1, j]:
                pattern += 128
            if j < w - 1 and result[i + 1, j + 1]:
                pattern += 256
        result[i, j] = keep_table[pattern]
    return result, d2


@njit(nogil=True, cache=True)
def length_and_thickness(image, tiebreak, keep_table, corner_table):
    """Morpho-MNIST's length (neighbour steps along the medial axis: 1 straight, √2 diagonal) and
    thickness (2 x mean distance on it) of ``image``, in its pixels; NaN for an empty axis."""
    skeleton, d2 = medial_axis(image, tiebreak, keep_table, corner_table)
    h, w = skeleton.shape
    straight = diagonal = 0
    total = 0.0
    count = 0
    for i in range(h):
        for j in range(w):
            if not skeleton[i, j]:
                continue
            if d2[i, j] >= _NONE:  # no background pixel: no distance to measure
                return np.nan, np.nan
            total += np.sqrt(d2[i, j])
            count += 1
            if j + 1 < w and skeleton[i, j + 1]:
                straight += 1
            if i + 1 < h:
                if skeleton[i + 1, j]:
                    straight += 1
                if j + 1 < w and skeleton[i + 1, j + 1]:
                    diagonal += 1
                if j > 0 and skeleton[i + 1, j - 1]:
                    diagonal += 1
    if count == 0:
        return np.nan, np.nan
    return straight + np.sqrt(2.0) * diagonal, 2.0 * total / count
