"""2-d Sprites (dSprites, Matthey et al. 2017): DeepMind's npz when present, else a procedural renderer.

The factor grid is dSprites': shape {0 square, 1 ellipse, 2 heart} x scale (6 values in
[0.5, 1]) x orientation (40 values in [0, 2π]) x pos_x (32 values in [0, 1]) x pos_y (32), i.e.
737,280 binary 64x64 images. A *grid index* is the row-major index over those five factors, which
is also the row order of DeepMind's npz (its single colour value dropped).

Geometry of the procedural renderer (an approximation of dSprites; its exact pixel geometry is
not published):

* image coordinates are continuous pixel units, x to the right, y **downwards** (row index), the
  image spanning [0, 64] on both axes and pixel (row i, column j) sampled at its centre
  (j + 0.5, i + 0.5), as on a screen (dSprites was drawn with Love2D, which uses these axes);
* the shape's area centroid sits at ``MARGIN + SPAN * pos`` = 12 px + 40 px * pos on each axis:
  pos_x = 0 is the left and 1 the right; pos_y = 0 is the **top** and 1 the bottom. The margin
  keeps every shape, at every scale and orientation, inside the frame;
* at scale 1 one shape unit is ``BASE_PX`` = 16 px: the square is 1 x 1 unit (16 px side), the
  ellipse 1.3 x 0.65 units (major axis horizontal at orientation 0), the heart the classic
  parametric heart (the curve DeepMind pointed to) 1.2 units wide, upright (lobes at the top,
  point at the bottom) at orientation 0;
* orientation θ rotates the shape about its centroid by θ in image coordinates, which with y
  pointing down is *clockwise* on screen.
"""
from __future__ import annotations

import functools

import logging
import os
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from arvae.data.base import AttributeDataset, cache_dir, check_split, save_npz_atomic

log = logging.getLogger(__name__)

ATTRIBUTE_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
FACTOR_SIZES = (3, 6, 40, 32, 32)
NUM_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
IMAGE_SIZE = 64
SPLIT_SEED = 0
SPLIT_SIZES = {"test": 10_000, "val": 10_000}

NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
NPZ_URL = "https://github.com/google-deepmind/dsprites-dataset/raw/master/" + NPZ_NAME
DOWNLOAD_TIMEOUT_S = 10

# renderer geometry (pixels); see the module docstring
BASE_PX = 16.0
MARGIN = 12.0
SPAN = IMAGE_SIZE - 2 * MARGIN
ELLIPSE_AXES = (0.65, 0.325)  # semi-axes, shape units
HEART_WIDTH = 1.2
RENDER_VERSION = 1

_TABLE_SIZE = 512  # shape templates sampled on a 512x512 grid over [-R, R]^2 shape units
_TABLE_RADIUS = 0.75
_WINDOW_HALF = 13  # every shape fits within 12.0 px of its centroid


def _heart_polygon(n: int = 4000) -> np.ndarray:
    """(n, 2) outline (x, y_down) of the upright heart, centroid at 0, width HEART_WIDTH."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    k = HEART_WIDTH / (x.max() - x.min())
    return np.stack([(x - cx) * k, (y - cy) * k], axis=1)


def _build_templates() -> np.ndarray:
    """(3, T, T) bool masks of the three shapes in shape units, indexed [shape, v, u]."""
    from skimage.draw import polygon2mask

    size, radius = _TABLE_SIZE, _TABLE_RADIUS
    c = (np.arange(size) + 0.5) * (2 * radius / size) - radius  # cell centres
    u, v = c[None, :], c[:, None]
    square = (np.abs(u) <= 0.5) & (np.abs(v) <= 0.5)
    a, b = ELLIPSE_AXES
    ellipse = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    heart_uv = _heart_polygon()
    rows = (heart_uv[:, 1] + radius) * (size / (2 * radius)) - 0.5
    cols = (heart_uv[:, 0] + radius) * (size / (2 * radius)) - 0.5
    heart = polygon2mask((size, size), np.stack([rows, cols], axis=1))
    templates = np.stack([square, ellipse, heart])
    assert not templates[:, [0, -1], :].any() and not templates[:, :, [0, -1]].any()
    return templates


@functools.cache
def _templates() -> np.ndarray:
    """The shape templates, built on first use (keeps importing this module fast)."""
    return _build_templates()


@functools.cache
def _unit_areas() -> np.ndarray:
    return np.array([1.0, np.pi * ELLIPSE_AXES[0] * ELLIPSE_AXES[1],
                     float(_templates()[2].mean()) * (2 * _TABLE_RADIUS) ** 2])
# exact areas at scale 1 (shape units²), used by measure() to turn area into scale


# the turn after which each shape looks the same again: square π/2, ellipse π, heart 2π
SYMMETRY_PERIODS = np.array([np.pi / 2, np.pi, 2 * np.pi])


def visible_orientation(shapes, orientations) -> np.ndarray:
    """dSprites' θ in the shape's fundamental range, ``θ mod`` :data:`SYMMETRY_PERIODS` (the
    convention :func:`measure` returns): the orientation a picture shows."""
    return np.mod(np.asarray(orientations, dtype=np.float64),
                  SYMMETRY_PERIODS[np.asarray(shapes, dtype=np.int64)])


def factor_values(factor_indices) -> np.ndarray:
    """Attribute values (N, 5) float32 of factor indices (N, 5): shape index, scale, orientation, x, y.

    Orientation is the *visible* orientation (:func:`visible_orientation`), not dSprites' θ in
    [0, 2π]: θ and θ + π/2 draw the same square, so ordering squares by θ asks the regularized dim
    for an order no picture carries, and the decoder, told nothing about how a square is turned,
    draws the average of its turns, a disc. A departure from the paper, which regularizes θ."""
    idx = _check_indices(factor_indices)
    return np.stack([
        idx[:, 0].astype(np.float64), SCALES[idx[:, 1]], visible_orientation(idx[:, 0], ORIENTATIONS[idx[:, 2]]),
        POSITIONS[idx[:, 3]], POSITIONS[idx[:, 4]],
    ], axis=1).astype(np.float32)


def grid_to_factors(grid_indices) -> np.ndarray:
    """Factor indices (N, 5) int64 of grid indices (N,)."""
    return np.stack(np.unravel_index(np.asarray(grid_indices, dtype=np.int64), FACTOR_SIZES), axis=1).astype(np.int64)


def factors_to_grid(factor_indices) -> np.ndarray:
    return np.ravel_multi_index(tuple(_check_indices(factor_indices).T), FACTOR_SIZES).astype(np.int64)


def _check_indices(factor_indices) -> np.ndarray:
    idx = np.asarray(factor_indices, dtype=np.int64).reshape(-1, 5)
    if len(idx) and ((idx < 0).any() or (idx >= np.array(FACTOR_SIZES)).any()):
        raise ValueError(f"factor indices out of range; sizes are {FACTOR_SIZES}")
    return idx


def render(factor_indices, chunk_size: int = 2048) -> np.ndarray:
    """Render sprites: factor indices (N, 5) -> uint8 (N, 64, 64) with values {0, 1}."""
    idx = _check_indices(factor_indices)
    return draw(idx[:, 0], SCALES[idx[:, 1]], ORIENTATIONS[idx[:, 2]], POSITIONS[idx[:, 3]], POSITIONS[idx[:, 4]],
                chunk_size)


def draw(shapes, scales, orientations, pos_x, pos_y, chunk_size: int = 2048) -> np.ndarray:
    """:func:`render` at any factor values, not only the grid's: shape indices (N,), scales in
    (0, 1], orientations in radians, positions in [0, 1] (N,) -> uint8 (N, 64, 64) in {0, 1}.
    Parts that fall outside the picture are cut off."""
    shapes = np.asarray(shapes, dtype=np.int64).reshape(-1)
    scales, orientations, pos_x, pos_y = (np.asarray(v, dtype=np.float64).reshape(-1)
                                          for v in (scales, orientations, pos_x, pos_y))
    n = len(shapes)
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    half = _WINDOW_HALF
    pad = half + 2 + int(np.ceil(SPAN / 2))  # room for centres up to half a span outside the picture
    offsets = np.arange(2 * half)
    cells = _TABLE_SIZE / (2 * _TABLE_RADIUS)
    for start in range(0, n, chunk_size):
        stop = start + chunk_size
        f_shape = shapes[start:stop]
        m = len(f_shape)
        size = (np.clip(scales[start:stop], 1e-3, 1.0) * BASE_PX).astype(np.float32)
        theta = orientations[start:stop]
        cos = (np.cos(theta) / size * cells).astype(np.float32)[:, None]
        sin = (np.sin(theta) / size * cells).astype(np.float32)[:, None]
        cx = MARGIN + SPAN * np.clip(pos_x[start:stop], -0.5, 1.5)
        cy = MARGIN + SPAN * np.clip(pos_y[start:stop], -0.5, 1.5)
        ox = np.floor(cx).astype(np.int64) - half  # window origin (pixel index)
        oy = np.floor(cy).astype(np.int64) - half
        dx = (ox[:, None] + offsets + 0.5 - cx[:, None]).astype(np.float32)  # (m, W)
        dy = (oy[:, None] + offsets + 0.5 - cy[:, None]).astype(np.float32)
        # inverse rotation into shape units, then to template cells: [m, row(y), col(x)]
        u = (cos * dx)[:, None, :] + (sin * dy)[:, :, None]
        v = (cos * dy)[:, :, None] - (sin * dx)[:, None, :]
        iu = np.clip((u + _TABLE_SIZE / 2).astype(np.int32), 0, _TABLE_SIZE - 1)
        iv = np.clip((v + _TABLE_SIZE / 2).astype(np.int32), 0, _TABLE_SIZE - 1)
        window = _templates()[f_shape[:, None, None], iv, iu]
        canvas = np.zeros((m, IMAGE_SIZE + 2 * pad, IMAGE_SIZE + 2 * pad), dtype=np.uint8)
        rows = (oy + pad)[:, None] + offsets
        cols = (ox + pad)[:, None] + offsets
        canvas[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]] = window
        out[start:start + m] = canvas[:, pad:pad + IMAGE_SIZE, pad:pad + IMAGE_SIZE]
    return out


# ----------------------------------------------------------------------------- measuring images


@functools.cache
def _heart_reference():
    """Phases of the heart's moments ``sum z^2`` and ``sum |z|^2 z`` at orientation 0."""
    heart = _templates()[2].astype(np.float64)
    c = (np.arange(_TABLE_SIZE) + 0.5) - _TABLE_SIZE / 2
    z = c[None, :] + 1j * c[:, None]
    z = z - (heart * z).sum() / heart.sum()
    return np.angle((heart * z**2).sum()), np.angle((heart * np.abs(z) ** 2 * z).sum())


# decision thresholds on the moment descriptors (set on rendered sprites, see tests)
_ELLIPSE_ELONGATION = 0.45  # ellipse >= 0.52, heart <= 0.36, square <= 0.18
_HEART_SKEW_WEIGHT, _HEART_THRESHOLD = 1.3, 0.19  # heart: elongation + 1.3 * skew > 0.19


def _moment_features(images: np.ndarray):
    """Per image: area, centroid (x, y), central complex moments c2, c4, c21 and normalised descriptors."""
    b = images.astype(np.float32)
    n = len(b)
    coords = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5
    col_sums = b.sum(axis=1, dtype=np.float64)  # (n, W) over rows
    row_sums = b.sum(axis=2, dtype=np.float64)  # (n, H)
    area = col_sums.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cx = col_sums @ coords / area
        cy = row_sums @ coords / area
    ok = area > 0
    cx_s, cy_s = np.where(ok, cx, 0.0), np.where(ok, cy, 0.0)
    dx = (coords[None, :] - cx_s[:, None]).astype(np.float32)
    dy = (coords[None, :] - cy_s[:, None]).astype(np.float32)
    powers = np.arange(5)
    px = dx[:, :, None] ** powers  # (n, W, 5)
    py = dy[:, :, None] ** powers  # (n, H, 5)
    bx = np.matmul(b, px)  # (n, H, 5): sum over columns of b * dx^p
    mu = np.einsum("nhq,nhp->npq", py.astype(np.float64), bx.astype(np.float64))  # mu[n, p, q] = sum dx^p dy^q
    c2 = mu[:, 2, 0] - mu[:, 0, 2] + 2j * mu[:, 1, 1]
    c4 = mu[:, 4, 0] - 6 * mu[:, 2, 2] + mu[:, 0, 4] + 1j * (4 * mu[:, 3, 1] - 4 * mu[:, 1, 3])
    c21 = mu[:, 3, 0] + mu[:, 1, 2] + 1j * (mu[:, 2, 1] + mu[:, 0, 3])
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = mu[:, 2, 0] + mu[:, 0, 2]  # sum |z|^2
        elongation = np.abs(c2) / spread
        skew = np.abs(c21) / (area * (spread / area) ** 1.5)
    return area, cx, cy, c2, c4, c21, elongation, skew, n


def _heart_orientation(c2, c21):
    """The heart's axis from its second moments (precise, but only mod π), turned towards the
    direction given by the third-order moment (coarse, but over the full circle)."""
    phase2, phase21 = _heart_reference()
    coarse = np.angle(c21) - phase21
    axis = (np.angle(c2) - phase2) / 2
    flip = np.cos(axis - coarse) < 0
    return np.mod(axis + np.pi * flip, 2 * np.pi)


def measure(images) -> np.ndarray:
    """Estimate the five factors from images (N, 64, 64) or (N, 1, 64, 64): float32 (N, 5).

    Float images are taken in [0, 1] and integer ones in 0-255 (or 0-1 if their maximum is 1);
    all are binarised at half intensity. Estimates come from image moments of the binary shape (vectorised over the batch):

    * **pos_x, pos_y**: centroid mapped back through the renderer's ``MARGIN + SPAN * pos``;
    * **shape**: ellipse if the second moments are strongly elongated (``|sum z^2| / sum |z|^2``
      > 0.45), else heart if mildly elongated and/or skewed (third-order moment ``sum |z|^2 z``),
      else square; returned as 0 / 1 / 2 (99.8 % right on rendered sprites, the errors at the
      smallest scale). Moments alone would call any round blob a square and any egg a heart, so
      the shape is NaN unless the picture *is* that shape: drawn at the measured factors
      (:func:`draw`), the shape must cover the picture with an IoU of at least 0.9
      (:func:`_recognised`);
    * **scale**: ``sqrt(area / area at scale 1 of the estimated shape)``;
    * **orientation**: only defined up to each shape's symmetry, so the value is returned in the
      shape's fundamental range: the heart's full angle in [0, 2π) (axis from the phase of
      ``sum z^2``, direction from the phase of ``sum |z|^2 z``), the ellipse's in [0, π) (major axis, half the phase of ``sum z^2``), the
      square's in [0, π/2) (a quarter of the phase of ``sum z^4``). dSprites' own labels carry the
      same ambiguity (θ and θ + π/2 draw the same square). NaN where the shape is NaN (a blob has
      no orientation).

    Calibrated on this module's renderer; on DeepMind's images the mapping is approximate but
    monotonic. Empty images give a NaN row.
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    if images.ndim == 2:
        images = images[None]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images (N, 64, 64) or (N, 1, 64, 64), got {images.shape}")
    if np.issubdtype(images.dtype, np.floating):
        threshold = 0.5
    else:  # 0-255, or the renderer's / DeepMind's 0-1 integer images
        threshold = 127.5 if images.size and images.max() > 1 else 0.5
    binary = images >= threshold
    area, cx, cy, c2, c4, c21, elongation, skew, n = _moment_features(binary)
    heart = elongation + _HEART_SKEW_WEIGHT * skew > _HEART_THRESHOLD
    shape = np.where(elongation > _ELLIPSE_ELONGATION, 1, np.where(heart, 2, 0))
    scale = np.sqrt(area / (_unit_areas()[shape] * BASE_PX**2))
    orientation = visible_orientation(shape, np.select(
        [shape == 0, shape == 1], [(np.angle(c4) - np.pi) / 4, np.angle(c2) / 2], _heart_orientation(c2, c21)))
    out = np.stack([shape.astype(np.float64), scale, orientation, (cx - MARGIN) / SPAN, (cy - MARGIN) / SPAN], axis=1)
    out[area == 0] = np.nan
    unrecognised = (area > 0) & ~_recognised(binary, out)
    out[unrecognised, 0] = out[unrecognised, 2] = np.nan
    return out.astype(np.float32)


# IoU with the drawn shape from which a picture counts as that shape. On the rendered grid the
# shape drawn at the measured factors reaches 0.9 for every correctly classified sprite (squares
# >= 0.925, ellipses >= 0.907; hearts, whose measured orientation is the least precise, with the
# best of three nearby orientations); the shipped models' blobs drawn as squares, and their eggs
# drawn as hearts, reach 0.78-0.90 (5th-99th percentile; tests/test_sprites.py checks both sides).
_RECOGNISED_IOU = 0.9
_HEART_ORIENTATION_TRIES = (-0.1, 0.1)  # radians, tried besides the measured orientation of a heart


def _recognised(binary: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Whether each binary picture (N, 64, 64) is the shape of its measured ``factors`` (N, 5):
    the IoU of the picture and the shape drawn at those factors is at least ``_RECOGNISED_IOU``."""
    rows = np.flatnonzero(np.isfinite(factors).all(axis=1))
    best = np.zeros(len(binary))
    f, pictures = factors[rows], binary[rows]
    shape = f[:, 0].astype(np.int64)
    area = pictures.sum(axis=(1, 2))

    def iou(subset, turn):
        drawn = draw(shape[subset], f[subset, 1], f[subset, 2] + turn, f[subset, 3], f[subset, 4]).astype(bool)
        overlap = (drawn & pictures[subset]).sum(axis=(1, 2))
        return overlap / (area[subset] + drawn.sum(axis=(1, 2)) - overlap)

    if len(rows):
        scores = iou(np.arange(len(rows)), 0.0)
        hearts = np.flatnonzero((shape == 2) & (scores < _RECOGNISED_IOU))
        for turn in _HEART_ORIENTATION_TRIES:
            if len(hearts):
                scores[hearts] = np.maximum(scores[hearts], iou(hearts, turn))
        best[rows] = scores
    return best >= _RECOGNISED_IOU


def shape_preservation(model, data, dims=None, root=None) -> dict:
    """Sprites' content preservation: the share of held-out inputs, and of their reconstructions,
    whose shape as classified by :func:`measure` is the true shape. The paper scores content only
    for MNIST (a digit classifier, Sect. 5.3); for sprites the shape is the content a decoder that
    draws blobs loses. Same signature as the digit classifier's score (``dims``/``root`` unused)."""
    from arvae import traversal

    column = ATTRIBUTE_NAMES.index("shape")
    true_shape = data.attributes[:, column].numpy()
    reconstructions = traversal.decode(model, traversal.encode(model, data.inputs))
    return {"inputs": float((measure(data.inputs.numpy())[:, column] == true_shape).mean()),
            "reconstructions": float((measure(reconstructions)[:, column] == true_shape).mean())}


# ----------------------------------------------------------------------------- splits and loading


def split_indices(split: str) -> np.ndarray:
    """Grid indices of a split, in the split's (seeded, shuffled) order."""
    check_split(split)
    perm = np.random.default_rng(SPLIT_SEED).permutation(NUM_IMAGES)
    n_test, n_val = SPLIT_SIZES["test"], SPLIT_SIZES["val"]
    if split == "test":
        return perm[:n_test]
    if split == "val":
        return perm[n_test:n_test + n_val]
    return perm[n_test + n_val:]


_download_failed = False


def _offline() -> bool:
    return os.environ.get("ARVAE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _npz_in(location) -> Path | None:
    if not location:
        return None
    path = Path(location).expanduser()
    if path.is_file():
        return path
    if (path / NPZ_NAME).is_file():
        return path / NPZ_NAME
    return None


def find_npz(data_dir=None, download: bool = True) -> Path | None:
    """DeepMind's dSprites npz: in data_dir, $ARVAE_DSPRITES, the cache, or downloaded; else None."""
    global _download_failed
    for location in (data_dir, os.environ.get("ARVAE_DSPRITES"), cache_dir() / "dsprites"):
        found = _npz_in(location)
        if found is not None:
            return found
    if not download or _offline() or _download_failed:
        return None
    target = cache_dir() / "dsprites" / NPZ_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part{os.getpid()}")
    try:
        with urllib.request.urlopen(NPZ_URL, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
        with np.load(tmp, allow_pickle=False) as data:
            if data["latents_classes"].shape != (NUM_IMAGES, 6):
                raise ValueError("unexpected latents_classes shape")
        os.replace(tmp, target)
        log.info("downloaded dSprites to %s", target)
        return target
    except Exception as error:  # offline, blocked, or a bad file: render instead
        _download_failed = True
        tmp.unlink(missing_ok=True)
        log.warning("could not download dSprites from %s (%s); rendering the factor grid procedurally", NPZ_URL, error)
        return None


def _read_npy_rows(path: Path, key: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, unique) of array ``key`` in an npz, streamed so the whole array
    (3 GB for dSprites' images) never sits in memory."""
    with zipfile.ZipFile(path) as archive, archive.open(key + ".npy") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        if fortran or dtype.hasobject:
            raise ValueError(f"{path}: {key} is not a plain C-ordered array")
        row_shape = shape[1:]
        row_bytes = int(np.prod(row_shape)) * dtype.itemsize
        out = np.empty((len(rows),) + tuple(row_shape), dtype=dtype)
        block = max(1, (64 << 20) // max(row_bytes, 1))
        position, k = 0, 0
        while k < len(rows):
            start = int(rows[k]) // block * block
            if start > position:  # skip ahead (zip members are read sequentially anyway)
                _skip(handle, (start - position) * row_bytes)
                position = start
            count = min(block, shape[0] - position)
            data = np.frombuffer(_read_exact(handle, count * row_bytes), dtype=dtype).reshape((count,) + tuple(row_shape))
            stop = np.searchsorted(rows, position + count, side="left")
            out[k:stop] = data[rows[k:stop] - position]
            k, position = stop, position + count
    return out


def _read_exact(handle, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("npz member ended early")
    return data


def _skip(handle, size: int) -> None:
    while size > 0:
        size -= len(_read_exact(handle, min(size, 64 << 20)))


def _source_text(kind: str, n: int, n_split: int, split: str) -> str:
    count = f"{n:,} of {n_split:,}" if n < n_split else f"{n:,}"
    if kind == "render":
        return f"procedural renderer over the dSprites factor grid: {count} {split} images"
    return f"DeepMind dSprites npz {kind}: {count} {split} images"


def _dataset(images01: np.ndarray, factors: np.ndarray, source: str) -> AttributeDataset:
    images = np.ascontiguousarray(images01, dtype=np.uint8)
    np.multiply(images, np.uint8(255), out=images)  # in place: the full train split is 2.9 GB
    inputs = torch.from_numpy(images[:, None])
    return AttributeDataset(inputs, torch.from_numpy(factor_values(factors)), ATTRIBUTE_NAMES, source)


def load_split(split: str, data_dir=None, max_items: int | None = None) -> AttributeDataset:
    """One split of 2-d Sprites: uint8 inputs (N, 1, 64, 64) in {0, 255}, float32 factor values (N, 5).

    Uses DeepMind's npz if ``data_dir`` or ``$ARVAE_DSPRITES`` (a folder or the file) holds it,
    or it is in / can be downloaded to the cache; otherwise renders the same grid procedurally.
    The split is a seeded permutation of the grid (test 10,000, val 10,000, train the rest);
    ``max_items`` keeps the first ``max_items`` of that order. Results are cached as npz.
    """
    check_split(split)
    order = split_indices(split)
    if max_items is not None and max_items < 0:
        raise ValueError("max_items must be >= 0")
    npz = find_npz(data_dir)
    tag = "all" if max_items is None else str(int(max_items))
    if npz is not None:
        return _load_npz_split(npz, split, order, max_items, tag)

    wanted = order if max_items is None else order[:max_items]
    source = _source_text("render", len(wanted), len(order), split)
    cache = cache_dir() / f"sprites_render{RENDER_VERSION}_{split}_{tag}.npz"
    images = _read_cache(cache, wanted)
    if images is None:
        images = render(grid_to_factors(wanted))
        save_npz_atomic(cache, grid=wanted, bits=np.packbits(images, axis=-1), source=np.array(source))
    return _dataset(images, grid_to_factors(wanted), source)


def _read_cache(path: Path, grid: np.ndarray):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if not np.array_equal(data["grid"], grid):
                return None
            return np.unpackbits(data["bits"], axis=-1, count=IMAGE_SIZE)
    except Exception as error:  # a damaged cache is rebuilt
        log.warning("ignoring unreadable cache %s (%s)", path, error)
        return None


def _load_npz_split(npz: Path, split: str, order: np.ndarray, max_items, tag: str) -> AttributeDataset:
    with np.load(npz, allow_pickle=False) as data:  # never touch the pickled 'metadata'
        classes = np.asarray(data["latents_classes"])
    if classes.ndim != 2 or classes.shape[1] not in (5, 6):
        raise ValueError(f"{npz}: latents_classes has shape {classes.shape}, expected (N, 6)")
    factors_of_row = classes[:, -5:].astype(np.int64)
    row_of_grid = np.full(NUM_IMAGES, -1, dtype=np.int64)
    row_of_grid[factors_to_grid(factors_of_row)] = np.arange(len(classes))
    rows = row_of_grid[order]
    rows = rows[rows >= 0]  # a partial npz holds part of the grid
    n_split = len(rows)
    if max_items is not None:
        rows = rows[:max_items]
    grid = factors_to_grid(factors_of_row[rows])
    stat = npz.stat()
    source = _source_text(f"{npz}", len(rows), n_split, split)
    cache = cache_dir() / f"sprites_npz{stat.st_size}_{split}_{tag}.npz"
    images = _read_cache(cache, grid)
    if images is None:
        sorted_rows, inverse = np.unique(rows, return_inverse=True)
        images = _read_npy_rows(npz, "imgs", sorted_rows)[inverse]
        if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{npz}: imgs rows have shape {images.shape[1:]}, expected (64, 64)")
        images = (images > 0).astype(np.uint8)
        save_npz_atomic(cache, grid=grid, bits=np.packbits(images, axis=-1), source=np.array(source))
    return _dataset(images, factors_of_row[rows], source)
