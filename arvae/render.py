"""Pure rendering for the app: images, traversal grids, Plotly figures, audio and notation.

Nothing here knows about Gradio or about models; every function takes arrays and returns an
image, a figure, audio samples or text, so it can be tested on its own.

* images: :func:`to_uint8`, :func:`image_to_pil`, :func:`png_bytes`, :func:`load_image`,
  :func:`prepare_image` (any uploaded picture -> a model input), :func:`traversal_grid` (Fig. 9/10);
* figures: :func:`attribute_lines_figure` (measured attribute along each traversal),
  :func:`surface_figure` (Fig. 12/13), :func:`piano_roll_figure` and
  :func:`music_traversal_figure` (Fig. 11);
* sound and notation: :func:`synthesize` (FluidSynth with a General MIDI soundfont, else
  pretty_midi's sine synthesis) and :func:`notation_svg` (verovio). Token conversion to MIDI and
  MusicXML is :mod:`arvae.music.io`'s.
"""
from __future__ import annotations

import functools
import io
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from arvae.music import io as music_io
from arvae.music.tokens import PITCH_HIGH, PITCH_LOW, as_measures, midi_name

# ----------------------------------------------------------------------------------------- images

MAX_IMAGE_PIXELS = 40_000_000  # larger uploads are refused (decompression bombs, huge photos)
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # the same as the app's upload limit (Gradio max_file_size "20mb")
MIN_IMAGE_SIDE = 4  # smaller pictures cannot hold a shape or a stroke
WORK_SIDE = 1024  # larger pictures are reduced to this (longer side) before anything else: bounded memory
LIMITS_TEXT = (f"the limits are {MAX_IMAGE_PIXELS // 1_000_000} megapixels and {MAX_IMAGE_BYTES // 2**20} MB "
               "per file")


class ImageInputError(ValueError):
    """An uploaded picture cannot be used; the message says why, in plain words."""


def to_uint8(image) -> np.ndarray:
    """``(H, W)`` float in [0, 1] (or ``(1, H, W)``) or integer 0-255 -> uint8 ``(H, W)``."""
    arr = np.asarray(image)
    if hasattr(image, "detach"):
        arr = image.detach().cpu().numpy()
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"expected a single-channel image (H, W), got shape {np.shape(image)}")
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def image_to_pil(image, scale: int = 1) -> Image.Image:
    """Grey-scale PIL image, enlarged ``scale`` times with nearest-neighbour (crisp pixels)."""
    pil = Image.fromarray(to_uint8(image), mode="L")
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
        if not path.is_file():
            raise ImageInputError(f"The image file {name} was not found.")
        size = path.stat().st_size
        if size == 0:
            raise ImageInputError(f"The uploaded file {name} is empty (0 bytes).")
        if size > MAX_IMAGE_BYTES:
            raise ImageInputError(f"The uploaded file {name} is too large ({size / 2**20:.1f} MB; {LIMITS_TEXT}).")
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


def prepare_image(source, size: int, style: str = "mnist") -> np.ndarray:
    """Any picture -> a model input: float32 ``(size, size)`` in [0, 1], white content on black.

    Converted to grey scale, inverted when the background (the border) is light, then

    * ``style="mnist"``: cropped to its content, scaled so that the longer side is 20/28 of the
      frame, and centred by centre of mass, as MNIST digits are;
    * ``style="sprites"``: padded to a square (keeping the shape's position), resized to the
      frame, shrunk around its centre when the shape is larger than any 2-d sprite, binarized.

    Raises :class:`ImageInputError` for unreadable pictures and pictures without content.
    """
    image = load_image(source)
    if min(image.size) < MIN_IMAGE_SIDE:
        raise ImageInputError(f"The image is only {image.width} x {image.height} pixels: too small to hold a "
                              f"shape or a stroke (at least {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} is needed).")
    gray = _to_gray(_reduce(image))
    if gray.size == 0:
        raise ImageInputError("The image has no pixels.")
    if gray.shape == (size, size) and (_border_median(gray) < 0.5 or np.ptp(gray) < 0.1):
        # already a model input (the app's own "encoded input", a decoded sample): use it as it is
        return (gray >= 0.5).astype(np.float32) if style == "sprites" else np.clip(gray, 0.0, 1.0).astype(np.float32)
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
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1

    if style == "mnist":
        content = gray[top:bottom, left:right]
        box = round(size * 20 / 28)
        factor = box / max(content.shape)
        content = np.clip(_resize(content, round(content.shape[1] * factor), round(content.shape[0] * factor)), 0, 1)
        canvas = np.zeros((size, size), dtype=np.float32)
        mass = content.sum()
        cy, cx = ((np.indices(content.shape) * content).reshape(2, -1).sum(axis=1) / mass) if mass > 0 else \
            (content.shape[0] / 2, content.shape[1] / 2)
        _paste(canvas, content, int(round(size / 2 - cy)), int(round(size / 2 - cx)))
        return canvas
    if style != "sprites":
        raise ValueError(f"unknown image style {style!r}")

    # sprites: keep the position and size of the shape in the frame
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = gray
    top, bottom = top + (side - h) // 2, bottom + (side - h) // 2
    left, right = left + (side - w) // 2, right + (side - w) // 2
    factor = size / side
    max_extent = 0.4 * size  # the largest 2-d sprite spans ~22 of 64 pixels
    extent = max(bottom - top, right - left) * factor
    canvas = np.zeros((size, size), dtype=np.float32)
    if extent <= max_extent:
        canvas = np.clip(_resize(square, size, size), 0, 1)
    else:
        shrink = max_extent / extent
        content = square[top:bottom, left:right]
        new_h = max(1, round(content.shape[0] * factor * shrink))
        new_w = max(1, round(content.shape[1] * factor * shrink))
        content = np.clip(_resize(content, new_w, new_h), 0, 1)
        centre_y = (top + bottom) / 2 * factor
        centre_x = (left + right) / 2 * factor
        margin = 0.19 * size  # sprites' centres stay within 12..52 of 64 pixels
        centre_y = float(np.clip(centre_y, margin, size - margin))
        centre_x = float(np.clip(centre_x, margin, size - margin))
        _paste(canvas, content, int(round(centre_y - new_h / 2)), int(round(centre_x - new_w / 2)))
    binary = (canvas >= 0.5).astype(np.float32)
    if not binary.any():
        raise ImageInputError("The shape is too thin or faint to survive binarization at 64 x 64 pixels.")
    return binary


@functools.lru_cache(maxsize=4)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


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


# ---------------------------------------------------------------------------------------- figures

COLORS = ("#4C5BD4", "#E4572E", "#17A398", "#F3A712", "#A846A0", "#5D737E", "#2E86AB", "#C44536")
MODEL_STYLES = {"AR-VAE": dict(dash="solid"), "β-VAE": dict(dash="dash")}


def _go():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


def pretty_name(name: str) -> str:
    return name.replace("_", " ")


def attribute_lines_figure(values, measured, attribute_names, dims=None, title: str | None = None):
    """Measured attribute along each traversal: one small plot per attribute, x = the latent value
    of its dim, y = the attribute measured on what was decoded.

    ``measured``: ``(L, S)`` for one model, or a dict ``model name -> (L, S)`` to overlay models
    (``dims`` then a dict ``model name -> dims``). NaN (nothing measurable) leaves a gap.
    """
    go, make_subplots = _go()
    series = measured if isinstance(measured, dict) else {"": measured}
    dims_of = dims if isinstance(dims, dict) else {name: dims for name in series}
    names = list(attribute_names)
    n = len(names)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[pretty_name(a) for a in names],
                        horizontal_spacing=0.09, vertical_spacing=0.2 if rows > 1 else 0.1)
    values = np.asarray(values, dtype=float)
    for m, (model, data) in enumerate(series.items()):
        data = np.asarray(data, dtype=float)
        if data.shape != (n, len(values)):
            raise ValueError(f"measured has shape {data.shape}, expected {(n, len(values))}")
        model_dims = dims_of.get(model)
        for l, attr in enumerate(names):
            dim = None if model_dims is None else int(model_dims[l])
            x_name = f"z[{dim}]" if dim is not None else "latent value"
            label = (f"{model}: " if model else "") + pretty_name(attr)
            fig.add_trace(go.Scatter(
                x=values, y=data[l], mode="lines+markers", name=label, legendgroup=model or attr,
                showlegend=bool(model) and l == 0,
                line=dict(color=COLORS[m % len(COLORS)] if model else COLORS[l % len(COLORS)], width=2,
                          **MODEL_STYLES.get(model, {})),
                marker=dict(size=6),
                hovertemplate=f"{label}<br>{x_name} = %{{x:.2f}}<br>measured = %{{y:.3f}}<extra></extra>",
            ), row=l // cols + 1, col=l % cols + 1)
    for l, attr in enumerate(names):
        if len(series) == 1 and next(iter(dims_of.values())) is not None:
            dim = int(next(iter(dims_of.values()))[l])
            x_title = f"z[{dim}]"
        else:
            x_title = "latent value"
        fig.update_xaxes(title_text=x_title, row=l // cols + 1, col=l % cols + 1, zeroline=False)
        fig.update_yaxes(title_text="measured", row=l // cols + 1, col=l % cols + 1)
    fig.update_layout(title=title, height=max(300, 250 * rows + 60), margin=dict(l=50, r=20, t=70 if title else 50, b=40),
                      template="plotly_white", showlegend=len(series) > 1,
                      legend=dict(orientation="h", y=1.12, x=0.0))
    return fig


def surface_figure(surface, values, attribute: str, dim_x: int, dim_y: int, current=None, title: str | None = None,
                   x_values=None):
    """Attribute surface (Fig. 12/13): heatmap of the attribute measured over a latent plane,
    x = ``dim_x`` (the attribute's dim), y = ``dim_y``; hovering shows both latent values and the
    attribute. ``current``: ``(x, y)`` of the current code, marked with a cross."""
    go, _ = _go()
    z = np.asarray(surface, dtype=float)
    ys = np.asarray(values, dtype=float)
    xs = ys if x_values is None else np.asarray(x_values, dtype=float)
    if z.shape != (len(ys), len(xs)):
        raise ValueError(f"surface has shape {z.shape}, expected {(len(ys), len(xs))}")
    name = pretty_name(attribute)
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, colorscale="Viridis", colorbar=dict(title=dict(text=name, side="right")),
        hovertemplate=f"z[{dim_x}] = %{{x:.2f}}<br>z[{dim_y}] = %{{y:.2f}}<br>{name} = %{{z:.3f}}<extra></extra>",
        hoverongaps=False, name=name,
    ))
    if current is not None:
        cx, cy = (float(v) for v in current)
        fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", name="current code",
                                 marker=dict(symbol="x-thin", size=14, line=dict(width=3, color="white")),
                                 hovertemplate=f"current code<br>z[{dim_x}] = %{{x:.2f}}<br>z[{dim_y}] = %{{y:.2f}}"
                                               "<extra></extra>", showlegend=False))
    fig.update_layout(
        title=title or f"{name} over the plane z[{dim_x}] × z[{dim_y}]",
        xaxis=dict(title=f"z[{dim_x}] (the dim of {name})"),
        yaxis=dict(title=f"z[{dim_y}]"),
        height=520, margin=dict(l=60, r=20, t=60, b=50), template="plotly_white",
    )
    return fig


def measure_notes(tokens) -> list[tuple[int, float, float, int]]:
    """Notes of measures ``(M, 24)``: ``(measure, start, end, midi)``, times in quarter notes from
    the start of the first measure (via :func:`arvae.music.io.tokens_to_pretty_midi` at 60 bpm,
    where a second is a quarter note)."""
    arr = as_measures(tokens)
    pm = music_io.tokens_to_pretty_midi(arr, tempo=60.0)
    notes = pm.instruments[0].notes if pm.instruments else []
    out = []
    for note in notes:
        start, end = round(note.start * 12) / 12, round(note.end * 12) / 12
        out.append((int(start // 4), start, end, int(note.pitch)))
    return out


def _pitch_ticks(lo: int, hi: int, max_labels: int = 8) -> tuple[list[int], list[str]]:
    """Note-name ticks, at most ``max_labels`` of them, on whole steps from a C when sparse."""
    step = max(1, math.ceil((hi - lo + 1) / max_labels))
    start = lo if step == 1 else lo + (-lo) % step  # multiples of step: C (60) for steps 2, 3, 4, 6, 12
    ticks = list(range(start, hi + 1, step))
    return ticks, [midi_name(p) for p in ticks]


def _add_piano_roll(fig, go, tokens, row=None, col=None, measure_labels=None, color=COLORS[0], name="notes",
                    max_labels: int = 8, shapes: list | None = None):
    """Piano-roll traces (one bar per note) and eighth-note/measure lines into ``fig`` (a subplot).
    The measure lines go into ``shapes`` when given (the caller adds them all at once: faster)."""
    arr = as_measures(tokens)
    notes = measure_notes(arr)
    where = {} if row is None else dict(row=row, col=col)
    n_measures = len(arr)
    starts = [s for _, s, _, _ in notes]
    durations = [e - s for _, s, e, _ in notes]
    pitches = [p for *_, p in notes]
    custom = [[midi_name(p), m + 1, (s - 4 * m) + 1, e - s] for (m, s, e, p) in notes]
    label_of = (lambda m: measure_labels[m]) if measure_labels is not None else (lambda m: f"measure {m + 1}")
    hover_measure = [label_of(m) for m, *_ in notes]
    fig.add_trace(go.Bar(
        x=durations, y=pitches, base=starts, orientation="h", width=0.85, name=name,
        marker=dict(color=color, line=dict(color="white", width=1.5)),
        customdata=[c + [h] for c, h in zip(custom, hover_measure)],
        hovertemplate="%{customdata[0]} (MIDI %{y})<br>%{customdata[4]}, beat %{customdata[2]:.2f}"
                      "<br>%{customdata[3]:.2f} quarter notes<extra></extra>",
        showlegend=False,
    ), **where)
    lo = min(pitches) - 2 if pitches else 60
    hi = max(pitches) + 2 if pitches else 72
    if hi - lo < 12:
        pad = (12 - (hi - lo)) / 2
        lo, hi = int(math.floor(lo - pad)), int(math.ceil(hi + pad))
    lo, hi = max(lo, PITCH_LOW - 2), min(hi, PITCH_HIGH + 2)
    tickvals, ticktext = _pitch_ticks(lo, hi, max_labels=max(4, int(max_labels)))
    total = 4.0 * n_measures
    fig.update_yaxes(range=[lo - 0.5, hi + 0.5], tickvals=tickvals, ticktext=ticktext, title_text="pitch",
                     showgrid=True, gridcolor="rgba(0,0,0,0.06)", zeroline=False, **where)
    fig.update_xaxes(
        range=[0, total], tickvals=[4 * m + 2 for m in range(n_measures)],
        ticktext=[label_of(m) for m in range(n_measures)], showgrid=False, zeroline=False,
        minor=dict(tick0=0, dtick=0.5, showgrid=True, gridcolor="rgba(0,0,0,0.10)", gridwidth=1), **where)
    # measure separators, added in one go (plotly's add_vline per line takes ~70 ms each)
    if row is None:
        xref, yref = "x", "paper"
    else:
        subplot = fig.get_subplot(row, col)
        xref = subplot.xaxis.plotly_name.replace("axis", "")
        yref = subplot.yaxis.plotly_name.replace("axis", "") + " domain"
    separators = [dict(type="line", x0=4 * m, x1=4 * m, y0=0, y1=1, xref=xref, yref=yref,
                       line=dict(color="rgba(30,30,60,0.55)", width=1.5)) for m in range(n_measures + 1)]
    if shapes is None:
        fig.update_layout(shapes=[*fig.layout.shapes, *separators])
    else:
        shapes.extend(separators)
    return notes


def piano_roll_figure(tokens, title: str | None = None, measure_labels=None, height: int = 300):
    """Piano roll of measures ``(M, 24)`` (or one ``(24,)``): a bar per note, pitch on y in
    semitones with note names, light lines at every eighth note, darker lines between measures."""
    go, _ = _go()
    fig = go.Figure()
    _add_piano_roll(fig, go, tokens, measure_labels=measure_labels, max_labels=(height - 80) // 22)
    fig.update_layout(title=title, height=height, bargap=0, template="plotly_white",
                      margin=dict(l=55, r=15, t=45 if title else 15, b=35))
    return fig


def music_traversal_figure(tokens, values, measured, attribute_names, dims, title: str | None = None):
    """Fig. 11: for every attribute a row with the piano roll of the measures decoded along its dim
    (``tokens`` ``(L, S, 24)``) and, beside it, the attribute measured on each (``measured`` ``(L, S)``)."""
    go, make_subplots = _go()
    arr = np.asarray(tokens)
    n, steps = arr.shape[:2]
    values = np.asarray(values, dtype=float)
    measured = np.asarray(measured, dtype=float)
    titles = []
    for l, attr in enumerate(attribute_names):
        titles += [f"{pretty_name(attr)}: traversal of z[{int(dims[l])}]", f"measured {pretty_name(attr)}"]
    fig = make_subplots(rows=n, cols=2, column_widths=[0.8, 0.2], horizontal_spacing=0.06,
                        vertical_spacing=0.32 / max(n, 1), subplot_titles=titles)
    labels = [f"{v:+.1f}" for v in values]
    separators: list = []
    for l in range(n):
        _add_piano_roll(fig, go, arr[l], row=l + 1, col=1, measure_labels=labels, color=COLORS[l % len(COLORS)],
                        name=attribute_names[l], shapes=separators)
        fig.add_trace(go.Scatter(
            x=values, y=measured[l], mode="lines+markers", line=dict(color=COLORS[l % len(COLORS)], width=2),
            name=f"measured {attribute_names[l]}", showlegend=False,
            hovertemplate=f"z[{int(dims[l])}] = %{{x:.2f}}<br>{pretty_name(attribute_names[l])} = %{{y:.3f}}<extra></extra>",
        ), row=l + 1, col=2)
        fig.update_xaxes(title_text=f"z[{int(dims[l])}]", row=l + 1, col=2)
        fig.update_xaxes(title_text=f"z[{int(dims[l])}] →", title_standoff=2, row=l + 1, col=1)
    fig.update_layout(title=title, height=250 * n + 60, bargap=0, template="plotly_white",
                      margin=dict(l=55, r=15, t=60 if title else 40, b=30), shapes=separators)
    return fig


# ------------------------------------------------------------------------------------------ audio

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts", "/usr/share/sounds/sf3")
PREFERRED_SOUNDFONTS = ("FluidR3_GM.sf2", "default-GM.sf2", "TimGM6mb.sf2", "GeneralUser GS.sf2")
RELEASE_S = 0.5  # audio runs this long past the last measure, for the notes' release
FALLBACK_NOTE = ("FluidSynth or a General MIDI soundfont is not available here, so this is a plain "
                 "sine-wave rendering (pretty_midi.synthesize). Install `fluidsynth` and `fluid-soundfont-gm` "
                 "(or set ARVAE_SOUNDFONT to an .sf2 file) for piano sound.")


def find_soundfont() -> Path | None:
    """``$ARVAE_SOUNDFONT`` if it names a file, else a General MIDI soundfont in the usual places."""
    override = os.environ.get("ARVAE_SOUNDFONT", "").strip()
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() else None
    for folder in SOUNDFONT_DIRS:
        for name in PREFERRED_SOUNDFONTS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    for folder in SOUNDFONT_DIRS:
        found = sorted(Path(folder).glob("*.sf2")) if Path(folder).is_dir() else []
        if found:
            return found[0]
    return None


def fluidsynth_available() -> bool:
    """Whether pyfluidsynth and its shared library load."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; raises ImportError/OSError without libfluidsynth)

        return hasattr(fluidsynth, "Synth")
    except Exception:
        return False


_SYNTH_LOCK = threading.Lock()
_SYNTHS: dict = {}


def _synthesizer(sf2: Path, sample_rate: int):
    """A cached ``fluidsynth.Synth`` with the soundfont loaded (loading an sf2 takes a while)."""
    key = (str(sf2), int(sample_rate))
    if key not in _SYNTHS:
        import fluidsynth

        synth = fluidsynth.Synth(samplerate=float(sample_rate))
        sfid = synth.sfload(str(sf2))
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the soundfont {sf2}")
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def _fit_length(audio: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)[:length]
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    fade = min(length, int(0.05 * sample_rate))
    if fade:
        audio[length - fade:] *= np.linspace(1.0, 0.0, fade)
    return audio


def audio_length(n_measures: int, tempo: float, sample_rate: int) -> int:
    """Samples of the audio of ``n_measures`` measures of 4/4 at ``tempo``, plus the release."""
    return int(round((n_measures * 4 * 60.0 / float(tempo) + RELEASE_S) * sample_rate))


def synthesize(tokens, tempo: float = 120, sample_rate: int = 22050, program: int = 0):
    """Measures ``(M, 24)`` -> ``((sample_rate, int16 samples), note)``.

    FluidSynth with a General MIDI soundfont (:func:`find_soundfont`) when both are available;
    otherwise pretty_midi's sine synthesis, with ``note`` saying so (``note`` is ``""`` otherwise).
    The audio lasts the measures (4 beats each) plus :data:`RELEASE_S`, peak-normalized.
    """
    arr = as_measures(tokens)
    if not 20 <= float(tempo) <= 400:
        raise ValueError(f"tempo {tempo} is outside 20..400 bpm")
    pm = music_io.tokens_to_pretty_midi(arr, tempo=float(tempo), program=program)
    length = audio_length(len(arr), tempo, sample_rate)
    note = ""
    audio = None
    sf2 = find_soundfont()
    if sf2 is not None and fluidsynth_available():
        try:
            with _SYNTH_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                synth, sfid = _synthesizer(sf2, sample_rate)
                audio = pm.fluidsynth(fs=sample_rate, synthesizer=synth, sfid=sfid)
                synth.system_reset()
        except Exception as error:  # a broken library or soundfont: fall back, and say so
            audio = None
            note = f"FluidSynth failed ({error}); " + FALLBACK_NOTE[0].lower() + FALLBACK_NOTE[1:]
    if audio is None:
        note = note or FALLBACK_NOTE
        audio = pm.synthesize(fs=sample_rate) if any(i.notes for i in pm.instruments) else np.zeros(0)
    audio = _fit_length(audio, length, sample_rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak * 0.89
    return (int(sample_rate), (audio * 32767).astype(np.int16)), note


# ---------------------------------------------------------------------------------------- notation

_VEROVIO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _verovio_toolkit():
    import verovio

    if hasattr(verovio, "enableLog") and hasattr(verovio, "LOG_OFF"):
        verovio.enableLog(verovio.LOG_OFF)
    return verovio.toolkit()


def notation_svg(tokens, width: int | None = None, scale: int | None = None) -> str:
    """Notation of measures ``(M, 24)`` as SVG, engraved by verovio from
    :func:`arvae.music.io.musicxml_string`. Long sequences wrap onto several systems (one SVG)."""
    arr = as_measures(tokens)
    scale = scale or (60 if len(arr) <= 2 else 45)
    width = width or min(2400, 420 + 380 * len(arr))
    xml = music_io.musicxml_string(arr)
    with _VEROVIO_LOCK:
        tk = _verovio_toolkit()
        tk.setOptions({
            "pageWidth": int(width), "scale": int(scale), "adjustPageHeight": True, "adjustPageWidth": True, "breaks": "auto",
            "pageMarginTop": 20, "pageMarginBottom": 20, "pageMarginLeft": 20, "pageMarginRight": 20,
            "header": "none", "footer": "none", "svgRemoveXlink": True,
        })
        if not tk.loadData(xml):
            raise ValueError("verovio could not read the MusicXML of these measures")
        pages = [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]
    return pages[0] if len(pages) == 1 else "".join(f'<div class="arvae-page">{p}</div>' for p in pages)


__all__ = [
    "ImageInputError", "to_uint8", "image_to_pil", "png_bytes", "display_scale", "load_image", "prepare_image",
    "traversal_grid", "side_by_side", "attribute_lines_figure", "surface_figure", "measure_notes",
    "piano_roll_figure", "music_traversal_figure", "find_soundfont", "fluidsynth_available", "synthesize",
    "audio_length", "notation_svg",
]
