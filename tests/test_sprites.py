"""2-d Sprites: procedural renderer, factor values, splits, npz path and image measurements."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from arvae.data import sprites as S
from arvae.data.base import AttributeDataset

SHAPE, SCALE, ORIENT, POS_X, POS_Y = range(5)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ARVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARVAE_OFFLINE", "1")
    monkeypatch.delenv("ARVAE_DSPRITES", raising=False)


def centroid(image):
    rows, cols = np.nonzero(image)
    return cols.mean(), rows.mean()


def second_moment_angle(image):
    rows, cols = np.nonzero(image)
    x, y = cols - cols.mean(), rows - rows.mean()
    return 0.5 * np.arctan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean())


def test_grid_and_values():
    assert S.ATTRIBUTE_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert S.NUM_IMAGES == 737_280 == 3 * 6 * 40 * 32 * 32
    factors = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31], [1, 2, 30, 16, 3]])
    values = S.factor_values(factors)
    assert values.dtype == np.float32 and values.shape == (3, 5)
    np.testing.assert_allclose(values[0], [0, 0.5, 0, 0, 0])
    # orientation is the visible one: the heart's θ = 2π is its θ = 0, the ellipse's θ modulo π
    np.testing.assert_allclose(values[1], [2, 1.0, 0.0, 1, 1], atol=1e-6)
    np.testing.assert_allclose(values[2], [1, 0.7, 30 * 2 * np.pi / 39 - np.pi, 16 / 31, 3 / 31], rtol=1e-6)
    grid = S.factors_to_grid(factors)
    np.testing.assert_array_equal(S.grid_to_factors(grid), factors)
    assert S.factors_to_grid([[2, 5, 39, 31, 31]])[0] == S.NUM_IMAGES - 1
    with pytest.raises(ValueError):
        S.render([[3, 0, 0, 0, 0]])


def test_orientation_values_are_what_the_picture_shows():
    """Two grid sprites that draw the same picture have the same orientation value, whatever
    dSprites' θ; within its symmetry period every shape's value is θ itself."""
    factors = S.grid_to_factors(np.arange(0, S.NUM_IMAGES, 997))
    values = S.factor_values(factors)
    period = S.SYMMETRY_PERIODS[factors[:, 0]]
    theta = S.ORIENTATIONS[factors[:, 2]]
    assert ((values[:, ORIENT] >= 0) & (values[:, ORIENT] < period + 1e-6)).all()
    np.testing.assert_allclose(np.mod(theta - values[:, ORIENT] + 1e-4, period), 1e-4, atol=1e-5)
    inside = theta < period
    np.testing.assert_allclose(values[inside, ORIENT], theta[inside], rtol=1e-6)
    # a square turned by a quarter, and a heart by a full turn, look and count the same
    same = S.draw([0, 2], [1, 1], [0.3, 0.3], [0.5, 0.5], [0.5, 0.5])
    turned = S.draw([0, 2], [1, 1], [0.3 + np.pi / 2, 0.3 + 2 * np.pi], [0.5, 0.5], [0.5, 0.5])
    assert (same != turned).sum() <= 4
    np.testing.assert_allclose(S.visible_orientation([0, 2], [0.3 + np.pi / 2, 0.3 + 2 * np.pi]), [0.3, 0.3])


def test_render_shape_dtype_determinism():
    rng = np.random.default_rng(0)
    factors = S.grid_to_factors(rng.choice(S.NUM_IMAGES, 300, replace=False))
    images = S.render(factors)
    assert images.shape == (300, 64, 64) and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 1}
    assert (images.sum(axis=(1, 2)) > 20).all()
    np.testing.assert_array_equal(images, S.render(factors))
    np.testing.assert_array_equal(images[7:9], S.render(factors[7:9]))  # independent of batching
    # shapes stay inside the frame at every extreme
    edges = images[:, [0, -1], :].any(axis=(1, 2)) | images[:, :, [0, -1]].any(axis=(1, 2))
    assert not edges.any()
    extremes = np.array([[s, 5, o, x, y] for s in range(3) for o in (0, 5, 10) for x in (0, 31) for y in (0, 31)])
    ext = S.render(extremes)
    assert not (ext[:, [0, -1], :].any() or ext[:, :, [0, -1]].any())


def test_scale_grows_area_monotonically():
    for shape in range(3):
        factors = np.array([[shape, s, 3, 16, 16] for s in range(6)])
        areas = S.render(factors).sum(axis=(1, 2))
        assert np.all(np.diff(areas) > 0), (shape, areas)
        assert 3.2 < areas[-1] / areas[0] < 4.8  # area ~ scale^2, scale 0.5 -> 1


def test_pos_x_moves_right_and_pos_y_moves_down():
    for shape in range(3):
        xs = [centroid(img) for img in S.render(np.array([[shape, 3, 0, x, 10] for x in range(32)]))]
        ys = [centroid(img) for img in S.render(np.array([[shape, 3, 0, 10, y] for y in range(32)]))]
        cx = np.array([c[0] for c in xs])
        cy = np.array([c[1] for c in ys])
        assert np.all(np.diff(cx) > 0) and np.ptp([c[1] for c in xs]) < 0.5  # right, same height
        assert np.all(np.diff(cy) > 0) and np.ptp([c[0] for c in ys]) < 0.5  # pos_y grows downwards (row index)
        assert cx[0] < 16 and cx[-1] > 48


def test_orientation_rotates():
    ellipse = S.render(np.array([[1, 5, o, 16, 16] for o in range(0, 10)]))
    angles = np.unwrap([second_moment_angle(img) for img in ellipse], period=np.pi)
    expected = S.ORIENTATIONS[:10]
    np.testing.assert_allclose(angles - angles[0], expected, atol=0.06)  # clockwise on screen = +angle with y down
    heart = S.render(np.array([[2, 5, o, 16, 16] for o in (0, 10, 20)]))
    assert not np.array_equal(heart[0], heart[1]) and not np.array_equal(heart[0], heart[2])
    # upright heart: point at the bottom, so the mass centre is above the bounding-box centre
    rows = np.nonzero(heart[0])[0]
    assert rows.mean() < (rows.min() + rows.max()) / 2
    # orientations 0 and 2π draw the same image, as in dSprites
    np.testing.assert_array_equal(S.render([[2, 5, 0, 16, 16]]), S.render([[2, 5, 39, 16, 16]]))


def test_measure_recovers_factors():
    rng = np.random.default_rng(1)
    factors = S.grid_to_factors(rng.choice(S.NUM_IMAGES, 3000, replace=False))
    truth = S.factor_values(factors)
    images = S.render(factors)
    for layout in (images.astype(np.float32), images[:, None] * np.uint8(255)):
        est = S.measure(layout)
        assert est.shape == (3000, 5) and est.dtype == np.float32
        for col in (SCALE, POS_X, POS_Y):
            assert spearmanr(truth[:, col], est[:, col]).statistic > 0.95
        np.testing.assert_allclose(est[:, POS_X], truth[:, POS_X], atol=0.03)
        np.testing.assert_allclose(est[:, POS_Y], truth[:, POS_Y], atol=0.03)
        assert np.abs(est[:, SCALE] - truth[:, SCALE]).mean() < 0.02
        assert (est[:, SHAPE] == truth[:, SHAPE]).mean() > 0.99
        # a sprite the moments misread is left unnamed (NaN), never given another shape
        assert ((est[:, SHAPE] == truth[:, SHAPE]) | np.isnan(est[:, SHAPE])).all()
        # orientation, modulo each shape's symmetry (π/2 square, π ellipse, 2π heart)
        period = np.array([np.pi / 2, np.pi, 2 * np.pi])[factors[:, 0]]
        right = est[:, SHAPE] == truth[:, SHAPE]
        err = np.mod(est[:, ORIENT] - truth[:, ORIENT] + period / 2, period) - period / 2
        assert np.median(np.abs(err[right])) < 0.05
        assert (est[:, ORIENT][right] < period[right] + 1e-6).all()


def test_measure_names_no_shape_for_blobs():
    """Round blobs and eggs, what a decoder that has not learnt the shapes draws, are none of the
    three shapes (the moments alone call a disc a square and an egg a heart); their size and
    position are still measured, their orientation is not."""
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    blobs = []
    # from the second-smallest sprites up (a disc 9 px wide and the smallest square, 8 px, differ by a few pixels)
    for radius, cx, cy in [(5.5, 20, 40), (6, 32, 32), (8, 44, 20), (10, 30, 36), (11.5, 36, 30)]:
        blobs.append((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)                                   # disc
        egg = ((xx - cx) / 1.1) ** 2 + (yy - cy) ** 2 <= radius**2                                   # egg:
        blobs.append(egg | ((xx - cx - 0.35 * radius) ** 2 + (yy - cy) ** 2 <= (0.8 * radius) ** 2))  # one fat end
    est = S.measure(np.stack(blobs).astype(np.float32))
    assert np.isnan(est[:, SHAPE]).all() and np.isnan(est[:, ORIENT]).all()
    assert np.isfinite(est[:, [SCALE, POS_X, POS_Y]]).all()


def test_draw_is_render_between_grid_values():
    factors = S.grid_to_factors(np.arange(0, S.NUM_IMAGES, 997))
    values = S.factor_values(factors)
    np.testing.assert_array_equal(S.draw(factors[:, 0], *values[:, 1:].T), S.render(factors))
    between = S.draw([0, 0], [0.75, 0.75], [0.30, 0.38], [0.5, 0.5], [0.5, 0.5])  # grid steps are 0.161 rad
    assert between[0].sum() > 0 and (between[0] != between[1]).any()


def test_measure_empty_is_nan():
    images = np.zeros((2, 64, 64), np.float32)
    images[1] = S.render([[0, 3, 0, 5, 5]])[0]
    est = S.measure(images)
    assert np.isnan(est[0]).all() and np.isfinite(est[1]).all()


def test_splits_deterministic_and_disjoint():
    test, val, train = S.split_indices("test"), S.split_indices("val"), S.split_indices("train")
    assert (len(test), len(val), len(train)) == (10_000, 10_000, 717_280)
    assert len(np.unique(np.concatenate([test, val, train]))) == S.NUM_IMAGES
    np.testing.assert_array_equal(test, S.split_indices("test"))
    with pytest.raises(ValueError):
        S.split_indices("dev")


def test_load_split_rendered_and_cached(tmp_path):
    ds = S.load_split("val", max_items=40)
    assert isinstance(ds, AttributeDataset) and len(ds) == 40
    assert ds.inputs.shape == (40, 1, 64, 64) and str(ds.inputs.dtype) == "torch.uint8"
    assert set(np.unique(ds.inputs.numpy())) == {0, 255}
    assert ds.attributes.shape == (40, 5) and str(ds.attributes.dtype) == "torch.float32"
    factors = S.grid_to_factors(S.split_indices("val")[:40])
    np.testing.assert_array_equal(ds.attributes.numpy(), S.factor_values(factors))
    np.testing.assert_array_equal(ds.inputs.numpy()[:, 0] // 255, S.render(factors))
    assert ds.source == "procedural renderer over the dSprites factor grid: 40 of 10,000 val images"
    assert ds.attribute_names == S.ATTRIBUTE_NAMES
    caches = list((tmp_path / "cache").glob("sprites_render*_val_40.npz"))
    assert len(caches) == 1
    again = S.load_split("val", max_items=40)  # from the cache
    assert (again.inputs == ds.inputs).all() and again.source == ds.source
    # a prefix of a larger request is the same digits
    small = S.load_split("val", max_items=10)
    assert (small.inputs == ds.inputs[:10]).all()


def _fake_npz(path, grid):
    factors = S.grid_to_factors(grid)
    classes = np.concatenate([np.zeros((len(grid), 1), np.int64), factors], axis=1)
    values = np.concatenate([np.ones((len(grid), 1)), S.factor_values(factors)], axis=1)
    values[:, 1] += 1  # DeepMind's shape values are 1, 2, 3
    imgs = S.render(factors)
    imgs[:, 0, 0] = 1  # mark them, so we can tell they were read from the file
    metadata = np.array([{"description": "needs pickle"}], dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    return imgs


def test_load_split_from_deepmind_npz(tmp_path, monkeypatch):
    test_order, train_order = S.split_indices("test"), S.split_indices("train")
    grid = np.concatenate([train_order[:7], test_order[:5], train_order[100:103]])[::-1].copy()  # any row order
    folder = tmp_path / "dsprites"
    folder.mkdir()
    imgs = _fake_npz(folder / S.NPZ_NAME, grid)
    ds = S.load_split("test", data_dir=folder)
    assert len(ds) == 5 and ds.source.startswith("DeepMind dSprites npz")
    row = {g: i for i, g in enumerate(grid)}
    expected = imgs[[row[g] for g in test_order[:5]]]
    np.testing.assert_array_equal(ds.inputs.numpy()[:, 0], expected * 255)
    np.testing.assert_array_equal(ds.attributes.numpy(), S.factor_values(S.grid_to_factors(test_order[:5])))
    train = S.load_split("train", data_dir=folder, max_items=4)
    np.testing.assert_array_equal(train.attributes.numpy(), S.factor_values(S.grid_to_factors(train_order[:4])))
    assert train.inputs[:, 0, 0, 0].eq(255).all()
    # the env var and a direct file path work too
    monkeypatch.setenv("ARVAE_DSPRITES", str(folder / S.NPZ_NAME))
    assert len(S.load_split("train")) == 10
    assert S.find_npz() == folder / S.NPZ_NAME


def test_streamed_rows_match(tmp_path):
    arr = np.arange(50 * 4 * 3, dtype=np.uint8).reshape(50, 4, 3)
    np.savez(tmp_path / "a.npz", imgs=arr)
    rows = np.array([0, 3, 4, 17, 49])
    np.testing.assert_array_equal(S._read_npy_rows(tmp_path / "a.npz", "imgs", rows), arr[rows])
