"""Any uploaded picture -> a model input: decoding with clear refusals (:func:`load_image`) and
the preparation of :func:`prepare_image`, whose last step, the *fit* into the model's frame, is the
dataset's (the registry's ``ImageInput.fit``): :func:`fit_centred` (MNIST-like digits) or
:func:`fit_in_place` (2-d sprites: position and size are attributes)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from arvae.images import to_uint8
from arvae.uploads import IMAGE_LIMITS_TEXT as LIMITS_TEXT
from arvae.uploads import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE, WORK_SIDE, check_file


class ImageInputError(ValueError):
    """An uploaded picture cannot be used; the message says why, in plain words."""


def load_image(source) -> Image.Image:
    """Open an uploaded picture (path, bytes, PIL image or array), fully decoded, EXIF-rotated,
    first frame of an animation. Raises :class:`ImageInputError` with a clear message."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or source.size == 0:
            raise ImageInputError(f"Expected an image array (H, W) or (H, W, C), got shape {source.shape}.")
        return Image.fromarray(source if source.dtype == np.uint8 else to_uint8(source) if source.ndim == 2
                               else np.clip(source, 0, 255).astype(np.uint8))
    name = "the upload"
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = f"'{path.name}'"
        check_file(path, MAX_IMAGE_BYTES, LIMITS_TEXT, ImageInputError)
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if not data:
            raise ImageInputError("The uploaded file is empty (0 bytes).")
    else:
        raise ImageInputError(f"Cannot read an image from {type(source).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            pixels = image.width * image.height
            if pixels > MAX_IMAGE_PIXELS:
                raise ImageInputError(f"The image {name} is too large ({image.width} x {image.height} pixels; "
                                      f"{LIMITS_TEXT}).")
            image.seek(0)  # the first frame of an animation
            if image.format == "JPEG" and max(image.size) > 2 * WORK_SIDE:
                image.draft(image.mode, (WORK_SIDE, WORK_SIDE))  # let libjpeg decode at a reduced scale
            image.load()
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        if isinstance(error, UnidentifiedImageError):
            raise ImageInputError(f"{name[0].upper() + name[1:]} is not an image that can be read "
                                  "(use PNG, JPEG, GIF, BMP, TIFF or WebP).") from None
        raise ImageInputError(f"The image {name} is too large to decode safely: it declares more pixels than "
                              f"allowed, a decompression bomb ({LIMITS_TEXT}).") from None
    except Exception as error:  # truncated or corrupt data
        raise ImageInputError(f"The image {name} is damaged and cannot be decoded ({error}).") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:
        pass
    if image.width == 0 or image.height == 0:
        raise ImageInputError(f"The image {name} has no pixels.")
    return image


def _reduce(image: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """``image`` with its longer side reduced to ``side`` pixels (area averaging), if it is longer."""
    if max(image.size) <= side:
        return image
    if image.mode in ("1", "P", "PA"):  # palette indices cannot be averaged: expand them first
        image = image.convert("RGBA" if image.mode != "1" and (image.mode == "PA" or "transparency" in image.info)
                              else "L")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    factor = max(image.size) / side
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    try:
        return image.resize(size, Image.BOX)
    except (ValueError, OSError):  # a mode Pillow cannot resample
        return image.convert("RGBA" if "A" in image.getbands() else "L").resize(size, Image.BOX)


def _to_gray(image: Image.Image) -> np.ndarray:
    """Grey-scale float [0, 1]; transparency is composited over a background that contrasts with
    the opaque pixels (dark strokes on transparent -> white background, light strokes -> black)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        return np.zeros(arr.shape, np.float32) if hi <= lo else ((arr - lo) / (hi - lo)).astype(np.float32)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if alpha.min() < 0.99:
            opaque = alpha > 0.5
            background = 0.0 if opaque.any() and luminance[opaque].mean() > 0.5 else 1.0
            return luminance * alpha + background * (1.0 - alpha)
        return luminance
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _border_median(gray: np.ndarray) -> float:
    return float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    pil = Image.fromarray(gray.astype(np.float32), mode="F")
    return np.asarray(pil.resize((max(1, width), max(1, height)), Image.LANCZOS if min(width, height) > 1 else Image.BOX),
                      dtype=np.float32)


def _paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    h, w = patch.shape
    top = int(np.clip(top, 0, canvas.shape[0] - h))
    left = int(np.clip(left, 0, canvas.shape[1] - w))
    canvas[top:top + h, left:left + w] = np.maximum(canvas[top:top + h, left:left + w], patch)


def prepare_image(source, size: int, fit, binary: bool = False) -> np.ndarray:
    """Any picture -> a model input: float32 ``(size, size)`` in [0, 1], white content on black.

    Converted to grey scale, inverted when the background (the border) is light, cleaned of
    background noise, then placed into the frame by ``fit(gray, size, box)`` (``box``: the content's
    top, bottom, left and right); ``binary`` thresholds the result at 0.5 (binary datasets). A
    picture that already is a model input (the app's "encoded input", a decoded sample) is used as
    it is. Raises :class:`ImageInputError` for unreadable pictures and pictures without content.
    """
    image = load_image(source)
    if min(image.size) < MIN_IMAGE_SIDE:
        raise ImageInputError(f"The image is only {image.width} x {image.height} pixels: too small to hold a "
                              f"shape or a stroke (at least {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} is needed).")
    gray = _to_gray(_reduce(image))
    if gray.size == 0:
        raise ImageInputError("The image has no pixels.")
    if not (gray.shape == (size, size) and (_border_median(gray) < 0.5 or np.ptp(gray) < 0.1)):
        if _border_median(gray) > 0.5:
            gray = 1.0 - gray
        gray = gray - min(float(np.percentile(gray, 1)), _border_median(gray))
        peak = float(gray.max())
        if peak < 0.1:
            raise ImageInputError("The image looks empty: no shape or stroke stands out from the background.")
        gray = np.clip(gray / peak, 0.0, 1.0)
        gray[gray < 0.15] = 0.0  # background noise (JPEG artefacts, paper texture)
        rows, cols = np.flatnonzero(gray.max(axis=1) > 0.3), np.flatnonzero(gray.max(axis=0) > 0.3)
        if rows.size == 0:
            raise ImageInputError("The image looks empty: no shape or stroke stands out from the background.")
        gray = fit(gray, size, (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1))
    if not binary:
        return np.clip(gray, 0.0, 1.0).astype(np.float32)
    mask = (gray >= 0.5).astype(np.float32)
    if not mask.any():
        raise ImageInputError(f"The shape is too thin or faint to survive binarization at {size} x {size} pixels.")
    return mask


def fit_centred(gray: np.ndarray, size: int, box) -> np.ndarray:
    """MNIST's layout: the content cropped, scaled so that its longer side is 20/28 of the frame,
    and centred by its centre of mass."""
    top, bottom, left, right = box
    content = gray[top:bottom, left:right]
    factor = round(size * 20 / 28) / max(content.shape)
    content = np.clip(_resize(content, round(content.shape[1] * factor), round(content.shape[0] * factor)), 0, 1)
    canvas = np.zeros((size, size), dtype=np.float32)
    mass = content.sum()
    cy, cx = ((np.indices(content.shape) * content).reshape(2, -1).sum(axis=1) / mass) if mass > 0 else \
        (content.shape[0] / 2, content.shape[1] / 2)
    _paste(canvas, content, int(round(size / 2 - cy)), int(round(size / 2 - cx)))
    return canvas


def fit_in_place(gray: np.ndarray, size: int, box) -> np.ndarray:
    """The 2-d sprites' layout, where position and size are attributes: padded to a square keeping
    the shape's position and resized to the frame; shrunk around its centre only when larger than
    any sprite (the largest spans ~22 of 64 pixels; centres stay within 12..52 of 64)."""
    top, bottom, left, right = box
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = gray
    top, bottom = top + (side - h) // 2, bottom + (side - h) // 2
    left, right = left + (side - w) // 2, right + (side - w) // 2
    factor = size / side
    max_extent = 0.4 * size
    extent = max(bottom - top, right - left) * factor
    if extent <= max_extent:
        return np.clip(_resize(square, size, size), 0, 1)
    content = square[top:bottom, left:right]
    new_h = max(1, round(content.shape[0] * factor * max_extent / extent))
    new_w = max(1, round(content.shape[1] * factor * max_extent / extent))
    content = np.clip(_resize(content, new_w, new_h), 0, 1)
    margin = 0.19 * size
    centre_y = float(np.clip((top + bottom) / 2 * factor, margin, size - margin))
    centre_x = float(np.clip((left + right) / 2 * factor, margin, size - margin))
    canvas = np.zeros((size, size), dtype=np.float32)
    _paste(canvas, content, int(round(centre_y - new_h / 2)), int(round(centre_x - new_w / 2)))
    return canvas
