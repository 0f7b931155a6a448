"""Pictures of model inputs and outputs: uint8 arrays, PIL images, PNG bytes and the traversal
grids of Figs. 9/10. Pure functions of arrays; nothing here knows about Gradio or models."""
from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] or integer 0-255 -> uint8 of the same shape (a channel axis of size 1,
    ``(N, 1, H, W)`` or ``(1, H, W)``, is dropped). Vectorized: one image or a batch."""
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.ndim >= 3 and arr.shape[-3] == 1:
        arr = arr.reshape(*arr.shape[:-3], *arr.shape[-2:])
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def image_to_pil(image, scale: int = 1) -> Image.Image:
    """Grey-scale PIL image of one ``(H, W)`` image, enlarged ``scale`` times with nearest-neighbour
    (crisp pixels)."""
    arr = to_uint8(image)
    if arr.ndim != 2:
        raise ValueError(f"expected a single-channel image (H, W), got shape {np.shape(image)}")
    pil = Image.fromarray(arr, mode="L")
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    return pil


def png_bytes(image, scale: int = 1) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else image_to_pil(image, scale)).save(buffer, format="PNG")
    return buffer.getvalue()


def display_scale(size: int, target: int = 256) -> int:
    """Integer enlargement that brings a ``size``-pixel image to about ``target`` pixels."""
    return max(1, int(round(target / max(size, 1))))


FONT_FILES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")  # with Greek letters (β); packages.txt has DejaVu


@functools.lru_cache(maxsize=4)
def _font(size: int):
    """A font that has the Greek letters of the titles (Pillow's built-in one draws β as □): the
    first of :data:`FONT_FILES` Pillow finds (it searches the system's font folders), else the built-in."""
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def traversal_grid(images, row_labels=None, column_labels=None, scale: int = 2, gap: int = 2,
                   title: str | None = None) -> Image.Image:
    """A grid of images ``(rows, columns, H, W)`` (Fig. 9/10: a row per attribute, a column per
    latent value), optional labels left of the rows and above the columns and a centred title
    line on top, light separators."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"expected images (rows, columns, H, W), got shape {arr.shape}")
    rows, cols, h, w = arr.shape
    cell_h, cell_w = h * scale, w * scale
    font = _font(13)
    label_w = 0
    if row_labels:
        label_w = 12 + max(int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(str(s), font=font))
                           for s in row_labels)
    title_h = 30 if title else 0
    header_h = title_h + (20 if column_labels else 0)
    width = label_w + cols * cell_w + (cols + 1) * gap
    height = header_h + rows * cell_h + (rows + 1) * gap
    canvas = Image.new("RGB", (width, height), (245, 245, 248))
    draw = ImageDraw.Draw(canvas)
    for r in range(rows):
        y = header_h + gap + r * (cell_h + gap)
        for c in range(cols):
            x = label_w + gap + c * (cell_w + gap)
            canvas.paste(image_to_pil(arr[r, c], scale).convert("RGB"), (x, y))
        if row_labels:
            draw.text((label_w - 6, y + cell_h / 2), str(row_labels[r]), fill=(40, 40, 60), font=font, anchor="rm")
    if title:
        draw.text((width / 2, title_h / 2 + 2), title, fill=(20, 20, 40), font=_font(15), anchor="mm")
    if column_labels:
        for c, text in enumerate(column_labels):
            x = label_w + gap + c * (cell_w + gap) + cell_w / 2
            draw.text((x, title_h + (header_h - title_h) / 2 + 1), str(text), fill=(40, 40, 60), font=font,
                      anchor="mm")
    return canvas


def side_by_side(images, gap: int = 16) -> Image.Image:
    """Several PIL images next to each other (model comparison)."""
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return canvas
