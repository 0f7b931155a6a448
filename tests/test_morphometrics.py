"""Morpho-MNIST morphometrics on strokes of known geometry and on real MNIST test digits."""
from pathlib import Path

import numpy as np
import pytest
from skimage import morphology

from arvae import morphometrics as M

FIXTURE = Path(__file__).parent / "fixtures" / "mnist_digits.npz"
AREA, LENGTH, THICKNESS, SLANT, WIDTH, HEIGHT = range(6)


def capsule(p0, p1, thickness, size=28, supersample=8):
    """A pen stroke: all points within thickness/2 of the segment p0-p1 ((row, col) pixel units),
    anti-aliased by supersampling, as uint8 0-255."""
    c = (np.arange(size * supersample) + 0.5) / supersample
    y, x = np.meshgrid(c, c, indexing="ij")
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((y - p0[0]) * d[0] + (x - p0[1]) * d[1]) / (d @ d), 0, 1)
    dist = np.hypot(y - (p0[0] + t * d[0]), x - (p0[1] + t * d[1]))
    cover = (dist <= thickness / 2).reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return np.round(cover * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def digits():
    data = np.load(FIXTURE)
    return data["images"], data["labels"]


def test_names_and_shape(digits):
    images, _ = digits
    assert M.ATTRIBUTE_NAMES == ("area", "length", "thickness", "slant", "width", "height")
    out = M.measure(images[:3])
    assert out.shape == (3, 6) and out.dtype == np.float32


def test_vertical_bar_length_thickness_slant():
    length, thickness = 16.0, 3.0
    values = M.measure(capsule((6, 14), (6 + length, 14), thickness))[0]
    assert abs(values[THICKNESS] - thickness) < 0.3
    assert abs(values[LENGTH] - length) < 3.5  # medial-axis spurs at the round caps add ~1-2 px
    assert abs(values[SLANT]) < 0.02
    assert 17 < values[HEIGHT] < 21 and 3 < values[WIDTH] < 6


def test_length_grows_with_stroke_length():
    lengths = [M.measure(capsule((14 - L / 2, 14), (14 + L / 2, 14), 3))[0, LENGTH] for L in (8, 12, 16, 20)]
    assert np.all(np.diff(lengths) > 2)


@pytest.mark.parametrize("offset", [-4, -2, 3])
def test_sheared_bar_slant(offset):
    # top shifted right of the bottom by 2*offset over 16 rows: leaning right (/) for offset > 0
    values = M.measure(capsule((6, 14 + offset), (22, 14 - offset), 3))[0]
    expected = np.arctan(2 * offset / 16)
    assert np.sign(values[SLANT]) == np.sign(offset)
    assert abs(values[SLANT] - expected) < 0.04


def test_thicker_stroke_is_thicker_and_larger():
    strokes = np.stack([capsule((6, 14), (22, 14), t) for t in (2, 3, 4, 5)])
    values = M.measure(strokes)
    assert np.all(np.diff(values[:, THICKNESS]) > 0.5)
    assert np.all(np.diff(values[:, AREA]) > 10)
    np.testing.assert_allclose(values[:, THICKNESS], [2, 3, 4, 5], atol=0.3)


def test_real_digits_in_morpho_mnist_ranges(digits):
    images, _ = digits
    values = M.measure(images)
    assert np.isfinite(values).all()
    assert ((values[:, THICKNESS] > 1) & (values[:, THICKNESS] < 6)).all()
    assert ((values[:, LENGTH] > 10) & (values[:, LENGTH] < 80)).all()
    assert (np.abs(values[:, SLANT]) < 1).all()
    assert ((values[:, AREA] > 20) & (values[:, AREA] < 300)).all()
    assert ((values[:, WIDTH] > 1) & (values[:, WIDTH] < 28)).all()
    assert ((values[:, HEIGHT] > 8) & (values[:, HEIGHT] < 28)).all()
    # digit "1"s are thin strokes: shorter and narrower than the average digit
    _, labels = digits
    ones = labels == 1
    assert values[ones, WIDTH].mean() < values[~ones, WIDTH].mean()


def test_batch_equals_single_and_layouts(digits):
    images, _ = digits
    batch = M.measure(images[:6])
    singles = np.concatenate([M.measure(img[None]) for img in images[:6]])
    np.testing.assert_array_equal(batch, singles)
    np.testing.assert_array_equal(M.measure(images[:6, None]), batch)  # (N, 1, 28, 28)
    # float input in [0, 1] is scaled by 255: same measurements up to uint8 rounding
    as_float = M.measure(images[:6].astype(np.float32) / 255)
    np.testing.assert_allclose(as_float, batch, rtol=0.05, atol=0.3)


def test_workers_match_serial(digits):
    images, _ = digits
    serial = M.measure(images[:8], chunk_size=4)
    parallel = M.measure(images[:8], workers=2, chunk_size=4)
    np.testing.assert_array_equal(serial, parallel)


def test_blank_images_give_nan():
    images = np.zeros((3, 28, 28), np.uint8)
    images[1] = capsule((6, 14), (22, 14), 3)
    images[2] = 77  # constant: nothing to measure
    values = M.measure(images)
    assert np.isnan(values[0]).all() and np.isnan(values[2]).all()
    assert np.isfinite(values[1]).all()
    assert np.isnan(M.measure(np.zeros((1, 1, 28, 28), np.float32))).all()


def test_fast_medial_axis_matches_skimage(digits):
    images, _ = digits
    for img in images[:8]:
        binary = M._upsample(img, True, 4)
        binary = binary >= binary.min() + (binary.max() - binary.min()) / 2
        ref_skel, ref_dist = morphology.medial_axis(binary, return_distance=True, rng=0)
        skel, dist = M.medial_axis(binary)
        np.testing.assert_array_equal(skel, ref_skel)
        np.testing.assert_array_equal(dist, ref_dist)


def test_lower_upscale_is_close(digits):
    images, _ = digits
    fine, coarse = M.measure(images[:16]), M.measure(images[:16], scale=2)
    # same ordering of digits by area and thickness
    for col in (AREA, THICKNESS):
        assert np.corrcoef(fine[:, col], coarse[:, col])[0, 1] > 0.9
