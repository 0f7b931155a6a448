"""AR-VAE Explorer: see and hear the latent spaces of AR-VAE and the beta-VAE baseline.

    python app.py          # serves on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (127.0.0.1:7860)

One tab per dataset of the registry (images: 2-d Sprites, Morpho-MNIST; music: Bach chorales,
folk tunes) and an "About & metrics" tab. This module is the Gradio layer only: it wires
components to :mod:`arvae.traversal` (latent grids and surfaces), the registry's attribute
measures, :mod:`arvae.render` (figures, images, audio, notation), :mod:`arvae.samples` (the shipped
held-out sample) and :mod:`arvae.hub` (lazy, cached model loading, optionally from the Hub).

Nothing heavy happens at import or launch: models load on first use, per dataset and model.
Every action has a stable ``api_name`` (see README "## API"), e.g. ``/sprites_encode``.

Environment: ``ARVAE_CHECKPOINTS`` (checkpoint folder, default ``./checkpoints``),
``ARVAE_HUB_REPO`` (fetch models from the Hub first), ``ARVAE_SOUNDFONT`` (an .sf2 file),
``ARVAE_TORCH_THREADS`` (default 1), ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from arvae import hub, metrics, registry, render, traversal
from arvae import samples as samples_mod
from arvae.music import io as music_io
from arvae.music.tokens import FIRST_PITCH_TOKEN, MEASURE_TICKS, as_measures

log = logging.getLogger("arvae.app")

MODEL_CHOICES = [("AR-VAE", "arvae"), ("β-VAE", "beta-vae")]
MODEL_LABEL = dict((value, label) for label, value in MODEL_CHOICES)
SPAN = traversal.SPAN
DEFAULT_STEPS = 9
MAX_STEPS = 17
SURFACE_RESOLUTIONS = (8, 32)
MAX_FILE_SIZE = "20mb"
GALLERY_ITEMS = 30
IMAGE_INPUTS = {"sprites": (64, "sprites"), "mnist": (28, "mnist")}  # input size and render.prepare_image style
LIGHT = dict(concurrency_id="light", concurrency_limit=2)
HEAVY = dict(concurrency_id="heavy", concurrency_limit=1)
METRIC_LABELS = {"interpretability": "Interpretability", "mig": "MIG", "sap": "SAP", "scc": "SCC",
                 "modularity": "Modularity", "reconstruction_accuracy": "Reconstruction %",
                 "traversal_monotonicity": "Traversal monotonicity",
                 "content_preservation": "Content preservation (reconstructions / traversals)"}
CSS = """
.pixelated img { image-rendering: pixelated; }
.fill-image img { width: 100%; height: 100%; object-fit: contain; }
.arvae-notice { border-left: 4px solid #e4572e; padding: 6px 12px; background: rgba(228,87,46,0.08); }
.arvae-notation svg { max-width: 100%; height: auto; background: white; }
.arvae-notation h4 { margin: 8px 0 2px 0; }
"""

torch.set_num_threads(max(1, int(os.environ.get("ARVAE_TORCH_THREADS", "1"))))


# ============================================================================= helpers

class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int = 32):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = make()
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


USER_ERRORS = (ValueError, FileNotFoundError, hub.CheckpointError, render.ImageInputError, music_io.MusicImportError,
               KeyError, IndexError)


def user_errors(action: str):
    """Turn exceptions into ``gr.Error`` with a clear message; the app keeps serving."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except USER_ERRORS as error:
                message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
                raise gr.Error(f"Could not {action}: {message}", print_exception=False) from None
            except Exception as error:  # a bug: say what failed, log the traceback
                log.exception("unexpected error while trying to %s", action)
                raise gr.Error(f"Could not {action}: unexpected {type(error).__name__}: {error}") from None
        return wrapper
    return decorate


def payload_path(payload) -> str | None:
    """File path of a component value: a str, a FileData-like dict/object, or None."""
    if payload is None:
        return None
    if isinstance(payload, (str, Path)):
        return str(payload)
    if isinstance(payload, dict):
        return payload.get("path") or None
    return getattr(payload, "path", None)


def format_z(z) -> str:
    return json.dumps([round(float(v), 4) for v in np.asarray(z).reshape(-1)])


def parse_z(text, latent_dim: int) -> np.ndarray:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ValueError("no latent code yet: load an input first (upload, example, or sample from the prior)")
    try:
        values = json.loads(text) if isinstance(text, str) else text
        z = np.asarray(values, dtype=np.float32).reshape(-1)
    except Exception:
        raise ValueError(f"the latent code must be a JSON list of {latent_dim} numbers, got {str(text)[:80]!r}") from None
    if z.shape != (latent_dim,) or not np.all(np.isfinite(z)):
        raise ValueError(f"the latent code must be a list of {latent_dim} finite numbers, got {z.size}")
    return np.clip(z, -50, 50)


def parse_tokens(text) -> np.ndarray:
    """A measure (24 tokens) or measures ``(M, 24)`` from JSON text or a list."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ValueError("no measure yet: pick one from the held-out sample, upload a file, or sample from the prior")
    try:
        values = json.loads(text) if isinstance(text, str) else text
        arr = np.asarray(values)
    except Exception:
        raise ValueError(f"a measure must be a JSON list of {MEASURE_TICKS} tokens, got {str(text)[:80]!r}") from None
    return as_measures(arr)


def check_kind(kind: str) -> str:
    if kind in MODEL_LABEL:
        return kind
    by_label = {label: value for label, value in MODEL_CHOICES}
    if kind in by_label:
        return by_label[kind]
    raise ValueError(f"unknown model {kind!r}; use 'arvae' or 'beta-vae'")


def whole_number(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer argument from the UI or the API (int, integral float, numeric text), or a clear
    ``ValueError`` for a missing, non-numeric, NaN, infinite, fractional or out-of-range value."""
    if value is None or isinstance(value, bool):
        raise ValueError(f"{name} is missing: give a whole number" + (f" from {lo} to {hi}" if lo is not None else ""))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if not np.isfinite(number) or number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    number = int(number)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise ValueError(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def check_steps(steps) -> int:
    return whole_number(DEFAULT_STEPS if steps is None else steps, "steps", 2, MAX_STEPS)


def pretty(name: str) -> str:
    return name.replace("_", " ")


_OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="arvae-app-"))
atexit.register(shutil.rmtree, _OUTPUT_DIR, ignore_errors=True)


def output_file(name: str, data: bytes | str) -> str:
    """Write a download into the app's temporary folder (content-addressed; old files pruned)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    digest = hashlib.sha1(raw).hexdigest()[:10]
    stem, _, ext = name.rpartition(".")
    path = _OUTPUT_DIR / digest / f"{stem}.{ext}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    if np.random.default_rng().random() < 0.05:  # prune files older than an hour, now and then
        cutoff = time.time() - 3600
        for old in _OUTPUT_DIR.glob("*/*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
    return str(path)


# ============================================================================= per-dataset logic

class DatasetContext:
    """Everything the tab of one dataset computes: lazily loaded models, the held-out sample,
    attribute dims and small caches. Pure computation; the Gradio wiring is in the tab builders."""

    def __init__(self, spec, store: hub.ModelStore, root: Path):
        self.spec, self.store, self.root = spec, store, root
        self.latent_dim = int(spec.model_kwargs.get("latent_dim"))
        self.status = {kind: store.status(spec.key, kind) for kind in registry.MODEL_KINDS}
        self.encodings = LRU(128)
        self.results = LRU(32)
        self._dims: dict = {}
        self._dims_lock = threading.Lock()
        try:
            self._samples = samples_mod.load_samples(spec.key, root)
            self.samples_error = ""
        except Exception as error:
            self._samples, self.samples_error = None, str(error)

    # ----- availability
    @property
    def available(self) -> bool:
        return self.status["arvae"][0]

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in registry.MODEL_KINDS if self.status[kind][0]]

    def model(self, kind: str):
        kind = check_kind(kind)
        if not self.status[kind][0]:
            raise hub.CheckpointError(f"no usable {MODEL_LABEL[kind]} checkpoint for {self.spec.display_name} "
                                      f"({self.status[kind][1]})")
        return self.store.get(self.spec, kind).model

    @property
    def samples(self):
        if self._samples is None:
            raise FileNotFoundError(self.samples_error or f"no held-out sample for {self.spec.key}")
        return self._samples

    # ----- latent code
    def encode(self, kind: str, raw_input) -> np.ndarray:
        """Posterior mean of one raw input (uint8/float image (H, W) or tokens (24,)), cached."""
        arr = np.ascontiguousarray(raw_input)
        key = (kind, arr.dtype.str, arr.shape, hashlib.sha1(arr.tobytes()).hexdigest())

        def make():
            model = self.model(kind)
            if self.spec.domain == "image":
                tensor = torch.from_numpy(np.asarray(arr, dtype=np.float32)[None, None])
                if arr.dtype == np.uint8:
                    tensor = tensor / 255.0
            else:
                tensor = torch.from_numpy(np.asarray(arr, dtype=np.int64)[None])
            return traversal.encode(model, tensor)[0].numpy().astype(np.float32)

        return self.encodings.get(key, make)

    def decode(self, kind: str, z) -> np.ndarray:
        z = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        return traversal.decode(self.model(kind), z)

    def measure(self, decoded) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self.spec.measure(decoded), dtype=np.float64)

    def attribute_dims(self, kind: str) -> tuple[list[int], str]:
        """Latent dim of each attribute and where that choice comes from."""
        kind = check_kind(kind)
        if kind == "arvae":
            return list(self.spec.regularized_dims), "regularized dims (AR-VAE)"
        with self._dims_lock:
            if kind not in self._dims:
                self._dims[kind] = self._mi_dims(kind)
            return self._dims[kind]

    def _mi_dims(self, kind: str) -> tuple[list[int], str]:
        names = list(self.spec.attribute_names)
        path = self.root / self.spec.key / "metrics.json"
        try:
            chosen = json.loads(path.read_text())[kind]["attribute_dims"]
            return [int(chosen[name]) for name in names], "highest mutual information, from metrics.json"
        except Exception:
            pass
        if self._samples is not None:
            z = traversal.encode(self.model(kind), self._samples.model_inputs()).numpy()
            attributes = self._samples.attributes.astype(np.float64)
            source = f"highest mutual information on the {len(z)} held-out items"
        else:  # no sample shipped: measure decoded prior samples instead
            z = np.random.default_rng(0).standard_normal((256, self.latent_dim)).astype(np.float32)
            attributes = self.measure(self.decode(kind, z))
            source = "highest mutual information on 256 prior samples"
        finite = np.isfinite(attributes).all(axis=1)
        if finite.sum() < 8:
            return list(self.spec.regularized_dims), "too little data for mutual information; showing dims 0..L-1"
        dims = metrics.attribute_dims_by_mutual_information(z[finite], attributes[finite])
        return [int(d) for d in dims], source

    def slider_dims(self, kind: str) -> list[int | None]:
        """The dim each attribute slider drives; None for an attribute whose dim an earlier
        attribute already drives (beta-VAE: one dim can be the best for two attributes)."""
        dims, _ = self.attribute_dims(kind)
        seen, out = set(), []
        for d in dims:
            out.append(None if d in seen else d)
            seen.add(d)
        return out

    def compose(self, kind: str, base, attribute_values, dim_values=None) -> np.ndarray:
        """A latent code from the sliders: ``base`` (current code), every dim from ``dim_values``
        (Advanced sliders) when given, then the attribute dims from the attribute sliders."""
        z = np.zeros(self.latent_dim, np.float32) if base is None else parse_z(base, self.latent_dim).copy()
        if dim_values is not None and len(dim_values) == self.latent_dim:
            z = np.asarray([float(v) if v is not None else z[i] for i, v in enumerate(dim_values)], np.float32)
        for dim, value in zip(self.slider_dims(kind), attribute_values):
            if dim is not None and value is not None:
                z[dim] = float(value)
        return z

    # ----- traversals and surfaces
    def traverse(self, kind: str, z: np.ndarray, steps: int):
        """Decode, for every attribute, ``z`` with its dim swept from -4 to 4 (one batch) and measure.
        Returns (values (S,), decoded (L, S, ...), measured (L, S), dims)."""
        dims, _ = self.attribute_dims(kind)
        key = ("traverse", kind, z.round(4).tobytes(), steps, tuple(dims))

        def make():
            values = traversal.traversal_values(steps)
            base = torch.from_numpy(z[None])
            latents = torch.stack([traversal.traversal_latents(base, d, values)[0] for d in dims])  # (L, S, D)
            decoded = self.decode(kind, latents.reshape(-1, self.latent_dim).numpy())
            attrs = self.measure(decoded).reshape(len(dims), steps, -1)
            measured = np.stack([attrs[l, :, l] for l in range(len(dims))])
            return values, decoded.reshape(len(dims), steps, *decoded.shape[1:]), measured, dims

        return self.results.get(key, make)

    def surface(self, kind: str, z: np.ndarray, attribute: str, other_dim: int, resolution: int):
        names = list(self.spec.attribute_names)
        if attribute not in names:
            raise ValueError(f"unknown attribute {attribute!r}; expected one of {names}")
        index = names.index(attribute)
        dims, _ = self.attribute_dims(kind)
        dim_x = int(dims[index])
        dim_y = whole_number(other_dim, "the other dim", 0, self.latent_dim - 1)
        if dim_y == dim_x:
            raise ValueError(f"the other dim must differ from the attribute's dim z[{dim_x}]")
        resolution = whole_number(resolution, "resolution", *SURFACE_RESOLUTIONS)
        key = ("surface", kind, z.round(4).tobytes(), index, dim_y, resolution)

        def make():
            with np.errstate(all="ignore"):
                return traversal.attribute_surface(self.model(kind), self.spec.measure, torch.from_numpy(z), dim_x,
                                                   dim_y, index, resolution)

        return self.results.get(key, make), dim_x, dim_y

    def prior_code(self, seed) -> np.ndarray:
        seed = None if seed is None else whole_number(seed, "the seed")
        seed = None if seed is None or seed < 0 else seed
        return np.random.default_rng(seed).standard_normal(self.latent_dim).astype(np.float32)

    # ----- text
    def format_value(self, name: str, value: float) -> str:
        if value is None or not np.isfinite(value):
            return "—"
        if self.spec.key == "sprites" and name == "shape":
            from arvae.data.sprites import SHAPE_NAMES

            return SHAPE_NAMES[int(np.clip(round(value), 0, len(SHAPE_NAMES) - 1))]
        return f"{value:.3f}"

    def attribute_table(self, columns: dict, kind: str) -> str:
        dims, _ = self.attribute_dims(kind)
        header = "| attribute | dim | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns) + "\n"
        rows = []
        for l, name in enumerate(self.spec.attribute_names):
            cells = [self.format_value(name, float(col[l])) if col is not None else "—" for col in columns.values()]
            rows.append(f"| {pretty(name)} | z[{dims[l]}] | " + " | ".join(cells) + " |")
        return header + "\n".join(rows)

    def dims_note(self, kind: str) -> str:
        dims, source = self.attribute_dims(kind)
        pairs = ", ".join(f"{pretty(n)} → z[{d}]" for n, d in zip(self.spec.attribute_names, dims))
        shared = [n for n, d in zip(self.spec.attribute_names, self.slider_dims(kind)) if d is None]
        note = f"**{MODEL_LABEL[kind]}** attribute dims ({source}): {pairs}."
        if shared:
            note += (" One dim carries several attributes here, so the sliders of " + ", ".join(map(pretty, shared))
                     + " follow the first attribute with the same dim.")
        return note

    def y_choices(self, kind: str, attribute: str):
        dims, _ = self.attribute_dims(kind)
        names = list(self.spec.attribute_names)
        dim_x = dims[names.index(attribute)] if attribute in names else dims[0]
        owners = {}
        for name, d in zip(names, dims):
            owners.setdefault(d, name)
        choices = [(f"z[{d}]" + (f" ({pretty(owners[d])})" if d in owners else ""), d)
                   for d in range(self.latent_dim) if d != dim_x]
        default = next((d for _, d in choices if d not in owners), choices[0][1])
        return choices, default


# ============================================================================= shared UI pieces

def notice(text: str, visible: bool = True):
    return gr.Markdown(text, visible=visible, elem_classes=["arvae-notice"])


def model_radio(ctx: DatasetContext):
    both = len(ctx.kinds) > 1
    info = ("β-VAE: each attribute uses the latent dim with the highest mutual information" if both else
            "only AR-VAE is available for this dataset")
    return gr.Radio(choices=MODEL_CHOICES, value="arvae", label="Model", info=info, interactive=both)


def attribute_sliders(ctx: DatasetContext):
    sliders = []
    for name, dim in zip(ctx.spec.attribute_names, ctx.spec.regularized_dims):
        sliders.append(gr.Slider(-SPAN, SPAN, value=0.0, step=0.05, label=f"{pretty(name)} · z[{dim}]",
                                 elem_id=f"{ctx.spec.key}-slider-{name}", min_width=200))
    return sliders


def slider_updates(ctx: DatasetContext, kind: str, z: np.ndarray, attr_sliders, dim_sliders):
    """Updates setting the sliders to code ``z`` for model ``kind``."""
    kind = check_kind(kind)
    dims, _ = ctx.attribute_dims(kind)
    owners = ctx.slider_dims(kind)
    updates = []
    for name, dim, owner in zip(ctx.spec.attribute_names, dims, owners):
        label = f"{pretty(name)} · z[{dim}]" + ("" if owner is not None else " (shared dim)")
        updates.append(gr.update(value=slider_value(z[dim]), label=label, interactive=owner is not None))
    attr_dims = set(dims)
    for d in range(len(dim_sliders)):
        updates.append(gr.update(value=slider_value(z[d]), visible=d not in attr_dims))
    return updates


def slider_value(value) -> float:
    """A latent value as a slider shows it: within -4..4, two decimals."""
    return round(float(np.clip(value, -SPAN, SPAN)), 2)


def surface_controls(ctx: DatasetContext):
    names = list(ctx.spec.attribute_names)
    choices, default = ctx.y_choices("arvae", names[0])
    with gr.Row():
        attribute = gr.Dropdown([(pretty(n), n) for n in names], value=names[0], label="Attribute (x: its dim)")
        # custom values: API calls may name any dim (the choices follow the attribute in the UI)
        other = gr.Dropdown(choices, value=default, label="Other dim (y)", allow_custom_value=True)
        resolution = gr.Slider(SURFACE_RESOLUTIONS[0], SURFACE_RESOLUTIONS[1], value=16, step=1,
                               label="Resolution (points per axis)")
    button = gr.Button("Compute attribute surface", variant="secondary", elem_id=f"{ctx.spec.key}-surface-button")
    plot = gr.Plot(label="Attribute surface", elem_id=f"{ctx.spec.key}-surface")
    return attribute, other, resolution, button, plot


def wire_surface(ctx: DatasetContext, model, z_box, attribute, other, resolution, button, plot):
    @user_errors("compute the attribute surface")
    def surface(model, z, attribute, other_dim, resolution):
        kind = check_kind(model)
        code = parse_z(z, ctx.latent_dim)
        values, dim_x, dim_y = ctx.surface(kind, code, attribute, other_dim, resolution)
        grid = traversal.traversal_values(len(values))
        return render.surface_figure(values, grid, attribute, dim_x, dim_y, current=(code[dim_x], code[dim_y]),
                                     title=f"{MODEL_LABEL[kind]}: {pretty(attribute)} over z[{dim_x}] × z[{dim_y}]")

    button.click(surface, [model, z_box, attribute, other, resolution], plot, api_name=f"{ctx.spec.key}_surface",
                 **HEAVY)

    def y_update(model, attribute):
        choices, default = ctx.y_choices(check_kind(model), attribute)
        return gr.update(choices=choices, value=default)

    gr.on([attribute.input, model.change], y_update, [model, attribute], other, api_visibility="private",
          show_progress="hidden", **LIGHT)


def unavailable_tab(spec, ctx: DatasetContext):
    reason = ctx.status["arvae"][1]
    notice(f"### {spec.display_name} is not available\nThe AR-VAE checkpoint could not be used: {reason}.\n\n"
           f"Train it with `python train.py --dataset {spec.key}` (or point `ARVAE_CHECKPOINTS` / `ARVAE_HUB_REPO` "
           "at trained models). The other tabs are not affected.")


def availability_notes(ctx: DatasetContext) -> str:
    notes = []
    if not ctx.status["beta-vae"][0]:
        notes.append(f"The β-VAE checkpoint is not available ({ctx.status['beta-vae'][1]}); only AR-VAE is shown.")
    if ctx._samples is None:
        notes.append(f"No held-out sample is shipped ({ctx.samples_error}); examples are disabled, "
                     "use an upload or a sample from the prior.")
    return "\n\n".join(notes)


# ============================================================================= image tabs

def build_image_tab(ctx: DatasetContext):
    """The tab of an image dataset (2-d Sprites, Morpho-MNIST); everything keyed by ``spec.key``."""
    spec, key = ctx.spec, ctx.spec.key
    size, style = IMAGE_INPUTS.get(key, (ctx._samples.inputs.shape[-1] if ctx._samples is not None else 28, "mnist"))
    L, D = len(spec.attribute_names), ctx.latent_dim
    has_samples = ctx._samples is not None
    scale = render.display_scale(size, 84)

    notes = availability_notes(ctx)
    notice(notes, visible=bool(notes))
    gr.Markdown(f"Encode an image, move its attributes with the sliders, and see every attribute traversed "
                f"from −{SPAN:g} to {SPAN:g} along its latent dim (paper Fig. {9 if key == 'sprites' else 10}).")
    with gr.Row():
        model = model_radio(ctx)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            upload = gr.File(label="Upload an image (PNG, JPEG, GIF, BMP, WebP…)", file_types=["image"],
                             height=110, elem_id=f"{key}-upload")
            with gr.Row():
                index = gr.Number(label="Held-out item #", value=0, precision=0, minimum=0,
                                  maximum=max(len(ctx._samples) - 1, 0) if has_samples else 0,
                                  interactive=has_samples, min_width=90, elem_id=f"{key}-index")
                load = gr.Button("Load", interactive=has_samples, min_width=60, elem_id=f"{key}-load")
            with gr.Row():
                random_btn = gr.Button("Random from dataset", interactive=has_samples, min_width=120)
                prior_btn = gr.Button("Sample from prior", min_width=120)
        with gr.Column(scale=1, min_width=200):
            input_img = gr.Image(label="Encoded input", type="filepath", format="png", interactive=False,
                                 height=260, elem_classes=["pixelated", "fill-image"], elem_id=f"{key}-input")
        with gr.Column(scale=1, min_width=200):
            output_img = gr.Image(label="Decoded (edit with the sliders)", format="png", interactive=False,
                                  height=260, elem_classes=["pixelated", "fill-image"], elem_id=f"{key}-output")
    examples = gr.Dataset(
        components=[gr.Image(render=False)], type="index", layout="gallery", samples_per_page=GALLERY_ITEMS,
        samples=[[output_file(f"{key}_heldout_{i}.png", render.png_bytes(ctx._samples.inputs[i], 2))]
                 for i in range(min(GALLERY_ITEMS, len(ctx._samples)))] if has_samples else [],
        label="Held-out examples (click one)", visible=has_samples, elem_classes=["pixelated"],
        elem_id=f"{key}-examples")
    info = gr.Markdown(label="Measured attributes", elem_id=f"{key}-info")
    dims_md = gr.Markdown(ctx.dims_note("arvae") if ctx.available else "")
    gr.Markdown("#### Attributes")
    with gr.Row():
        attr_sliders = attribute_sliders(ctx)
    with gr.Accordion("Advanced: the other latent dims, the latent code, the prior seed", open=False):
        with gr.Row():
            dim_sliders = [gr.Slider(-SPAN, SPAN, value=0.0, step=0.05, label=f"z[{d}]", min_width=150,
                                     visible=d not in spec.regularized_dims, elem_id=f"{key}-dim-{d}")
                           for d in range(D)]
        z_box = gr.Textbox(label=f"Latent code z ({D} numbers; edit and press Enter to decode)",
                           elem_id=f"{key}-z", max_lines=3)
        seed = gr.Number(label="Seed for “Sample from prior” (−1: random)", value=-1, precision=0)
    reset = gr.Button("Reset sliders to the encoded input", size="sm")
    z0 = gr.State(None)

    gr.Markdown("### Traversals\nEach row moves one attribute's dim from −4 to 4, all other dims fixed; the plot "
                "shows the attribute **measured** on each decoded image.")
    with gr.Row():
        steps = gr.Slider(3, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Steps per row")
        traverse_btn = gr.Button("Traverse", variant="primary", elem_id=f"{key}-traverse-button")
    with gr.Row(equal_height=False):
        grid_img = gr.Image(label="Traversal grid", show_label=False, format="png", interactive=False,
                            elem_id=f"{key}-grid")
        lines_plot = gr.Plot(label="Measured attribute along each traversal", elem_id=f"{key}-lines")
    with gr.Accordion("Compare AR-VAE and β-VAE on this input", open=False):
        compare_btn = gr.Button("Compare both models", interactive=len(ctx.kinds) > 1, elem_id=f"{key}-compare-button")
        compare_img = gr.Image(label="Traversals: AR-VAE (left) and β-VAE (right)", show_label=False, format="png",
                               interactive=False, elem_id=f"{key}-compare")
        compare_plot = gr.Plot(label="Measured attributes, both models")
    gr.Markdown("### Attribute surface (Fig. 12)\nThe attribute measured over a plane of the latent space: x is the "
                "attribute's dim, y another dim, all other dims fixed at the current code.")
    s_attr, s_other, s_res, s_btn, s_plot = surface_controls(ctx)

    # ------------------------------------------------------------------ functions
    def image_for(array) -> "render.Image.Image":
        return render.image_to_pil(array)

    @user_errors("read the uploaded image")
    def prepare(image):
        path = payload_path(image)
        if path is None:
            raise ValueError("no file was uploaded")
        return image_for(render.prepare_image(path, size, style))

    @user_errors("load the held-out example")
    def example(index):
        data = ctx.samples
        index = whole_number(index, "the held-out item", 0, len(data) - 1)
        return image_for(data.inputs[index])

    @user_errors("sample from the prior")
    def prior(model, seed):
        kind = check_kind(model)
        decoded = ctx.decode(kind, ctx.prior_code(seed))[0]
        return image_for((decoded >= 0.5).astype(np.float32) if style == "sprites" else decoded)

    @user_errors("encode the image")
    def encode(image, model):
        kind = check_kind(model)
        path = payload_path(image)
        if path is None:
            raise ValueError("no input image yet: upload one, pick an example, or sample from the prior")
        array = render.prepare_image(path, size, style)
        z = ctx.encode(kind, array)
        decoded = ctx.decode(kind, z)[0]
        table = ctx.attribute_table({"input (measured)": ctx.measure(array[None])[0],
                                     "reconstruction (measured)": ctx.measure(decoded[None])[0]}, kind)
        return image_for(decoded), format_z(z), table, z

    def sync(model, z):
        kind = check_kind(model)
        code = parse_z(z, D)
        return [*slider_updates(ctx, kind, code, attr_sliders, dim_sliders), ctx.dims_note(kind)]

    @user_errors("decode the latent code")
    def decode(model, z):
        kind = check_kind(model)
        code = parse_z(z, D)
        decoded = ctx.decode(kind, code)[0]
        return image_for(decoded), ctx.attribute_table({"decoded (measured)": ctx.measure(decoded[None])[0]}, kind)

    @user_errors("apply the sliders")
    def edit(model, z, *values):
        kind = check_kind(model)
        code = ctx.compose(kind, z if z else None, values[:L], values[L:])
        image, table = decode(model, format_z(code))
        owners = ctx.slider_dims(kind)
        dims, _ = ctx.attribute_dims(kind)
        followers = [gr.update(value=slider_value(code[d])) if owner is None else gr.skip()
                     for d, owner in zip(dims, owners)]
        return [format_z(code), image, table, *followers]

    @user_errors("traverse the latent space")
    def traverse(model, z, steps):
        kind = check_kind(model)
        steps = check_steps(steps)
        code = parse_z(z, D)
        values, decoded, measured, dims = ctx.traverse(kind, code, steps)
        labels = [f"{pretty(n)} · z[{d}]" for n, d in zip(spec.attribute_names, dims)]
        grid = render.traversal_grid(decoded, row_labels=labels, column_labels=[f"{v:+.1f}" for v in values],
                                     scale=scale, title=f"{MODEL_LABEL[kind]}: each row sweeps one dim")
        figure = render.attribute_lines_figure(values, measured, spec.attribute_names, dims,
                                               title=f"{MODEL_LABEL[kind]}: measured attribute along each row")
        return grid, figure

    @user_errors("compare the models")
    def compare(image, steps):
        steps = check_steps(steps)
        path = payload_path(image)
        if path is None:
            raise ValueError("no input image yet")
        array = render.prepare_image(path, size, style)
        grids, measured, dims_of = [], {}, {}
        for kind in registry.MODEL_KINDS:
            code = ctx.encode(kind, array)
            values, decoded, meas, dims = ctx.traverse(kind, code, steps)
            labels = [f"{pretty(n)} · z[{d}]" for n, d in zip(spec.attribute_names, dims)]
            grids.append(render.traversal_grid(decoded, row_labels=labels,
                                               column_labels=[f"{v:+.1f}" for v in values], scale=scale,
                                               title=MODEL_LABEL[kind]))
            measured[MODEL_LABEL[kind]], dims_of[MODEL_LABEL[kind]] = meas, dims
        figure = render.attribute_lines_figure(values, measured, spec.attribute_names, dims_of,
                                               title="AR-VAE (solid) vs β-VAE (dashed)")
        return render.side_by_side(grids), figure

    def reset_code(z0):
        if z0 is None:
            raise gr.Error("Nothing to reset yet: load an input first.")
        return format_z(z0)

    def random_index():
        return int(np.random.default_rng().integers(len(ctx.samples)))

    def pick(index):
        return int(index)

    def first_visit(image):
        """Load something to look at when the tab opens empty."""
        if image is not None:
            return gr.skip()
        return example(0) if has_samples else prior("arvae", 0)

    # ------------------------------------------------------------------ wiring
    sync_outputs = [*attr_sliders, *dim_sliders, dims_md]
    upload.upload(prepare, upload, input_img, api_name=f"{key}_prepare", **LIGHT)
    gr.on([load.click, index.submit], example, index, input_img, api_name=f"{key}_example", **LIGHT)
    random_btn.click(random_index, None, index, api_visibility="private", **LIGHT).success(
        example, index, input_img, api_visibility="private", **LIGHT)
    examples.click(pick, examples, index, api_visibility="private", **LIGHT).success(
        example, index, input_img, api_visibility="private", **LIGHT)
    prior_btn.click(prior, [model, seed], input_img, api_name=f"{key}_prior", **LIGHT)

    # preprocess=False: the image is read by render.prepare_image, which gives clear errors
    gr.on([input_img.change, model.input], encode, [input_img, model], [output_img, z_box, info, z0],
          api_name=f"{key}_encode", preprocess=False, trigger_mode="always_last", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT).success(
        traverse, [model, z_box, steps], [grid_img, lines_plot], api_visibility="private", **LIGHT)

    z_box.submit(decode, [model, z_box], [output_img, info], api_name=f"{key}_decode", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT)
    gr.on([s.input for s in attr_sliders + dim_sliders], edit, [model, z_box, *attr_sliders, *dim_sliders],
          [z_box, output_img, info, *attr_sliders], api_visibility="private", trigger_mode="always_last",
          show_progress="hidden", **LIGHT)
    reset.click(reset_code, z0, z_box, api_visibility="private", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT).success(
        decode, [model, z_box], [output_img, info], api_visibility="private", **LIGHT)
    gr.on([traverse_btn.click, steps.release], traverse, [model, z_box, steps], [grid_img, lines_plot],
          api_name=f"{key}_traverse", **LIGHT)
    compare_btn.click(compare, [input_img, steps], [compare_img, compare_plot], api_name=f"{key}_compare",
                      preprocess=False, **HEAVY)
    wire_surface(ctx, model, z_box, s_attr, s_other, s_res, s_btn, s_plot)
    return dict(first_visit=(first_visit, input_img, input_img))


# ============================================================================= music tabs

def build_music_tab(ctx: DatasetContext):
    """The tab of a music dataset (Bach chorales, folk tunes); everything keyed by ``spec.key``."""
    spec, key = ctx.spec, ctx.spec.key
    L, D = len(spec.attribute_names), ctx.latent_dim
    has_samples = ctx._samples is not None
    tempo = 120

    notes = availability_notes(ctx)
    notice(notes, visible=bool(notes))
    gr.Markdown("Pick a measure, hear it, and change its rhythmic complexity, pitch range, note density and "
                "contour with the sliders; every attribute is traversed along its latent dim (paper Fig. 11).")
    with gr.Row():
        model = model_radio(ctx)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            choices = [(ctx._samples.describe(i), i) for i in range(len(ctx._samples))] if has_samples else []
            sample_dd = gr.Dropdown(choices, value=None, label="Held-out measure", interactive=has_samples,
                                    elem_id=f"{key}-sample")
            with gr.Row():
                random_btn = gr.Button("Random measure", interactive=has_samples, min_width=100)
                prior_btn = gr.Button("Sample from prior", min_width=100)
            upload = gr.File(label="…or upload MIDI / MusicXML / ABC", height=120, elem_id=f"{key}-upload",
                             file_types=list(music_io.SUPPORTED_EXTENSIONS))
            import_md = gr.Markdown(label="Import messages", elem_id=f"{key}-import-messages")
            measure_dd = gr.Dropdown([], label="Measure of the uploaded file", interactive=True, visible=True)
            imported = gr.Textbox(label="Imported measures (JSON, M x 24 tokens)", visible=False)
        with gr.Column(scale=2, min_width=380):
            input_plot = gr.Plot(label="Input measure", elem_id=f"{key}-input-roll")
            input_audio = gr.Audio(label="Input measure", interactive=False, elem_id=f"{key}-input-audio")
    tokens_box = gr.Textbox(label="Input measure tokens (24 per measure; see README)", interactive=False,
                            max_lines=2, elem_id=f"{key}-tokens")
    dims_md = gr.Markdown(ctx.dims_note("arvae") if ctx.available else "")

    gr.Markdown("### Edit the measure")
    with gr.Row():
        attr_sliders = attribute_sliders(ctx)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            edit_plot = gr.Plot(label="Decoded measure", elem_id=f"{key}-edit-roll")
        with gr.Column(scale=2):
            edit_audio = gr.Audio(label="Decoded measure", interactive=False, elem_id=f"{key}-edit-audio")
            edit_info = gr.Markdown(label="Measured attributes")
            edit_files = gr.File(label="Download (MIDI, MusicXML)", file_count="multiple", interactive=False)
    edit_notation = gr.HTML(label="Notation (SVG)", elem_classes=["arvae-notation"], elem_id=f"{key}-edit-notation")
    with gr.Accordion("Advanced: the latent code, the decoded tokens, the prior seed", open=False):
        z_box = gr.Textbox(label=f"Latent code z ({D} numbers; edit and press Enter to decode)", max_lines=3,
                           elem_id=f"{key}-z")
        decoded_tokens = gr.Textbox(label="Decoded measure tokens", interactive=False, max_lines=2)
        seed = gr.Number(label="Seed for “Sample from prior” (−1: random)", value=-1, precision=0)
    reset = gr.Button("Reset sliders to the encoded input", size="sm")
    z0 = gr.State(None)

    gr.Markdown("### Traversals (Fig. 11)\nFor each attribute, measures decoded as its dim goes from −4 to 4 "
                "(others fixed), and the attribute measured on each.")
    with gr.Row():
        steps = gr.Slider(3, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Measures per traversal")
        traverse_btn = gr.Button("Traverse", variant="primary")
    roll_plot = gr.Plot(label="Piano rolls and measured attributes", elem_id=f"{key}-traversal")
    with gr.Row():
        audios = [gr.Audio(label=f"Play: {pretty(n)} traversal", interactive=False,
                           elem_id=f"{key}-audio-{n}") for n in spec.attribute_names]
    traverse_info = gr.Markdown(label="Notes")
    with gr.Accordion("Notation and downloads of the traversals", open=False):
        traverse_files = gr.File(label="MIDI and MusicXML of every traversal", file_count="multiple",
                                 interactive=False)
        traverse_notation = gr.HTML(label="Notation of the traversals (SVG)", elem_classes=["arvae-notation"],
                                    elem_id=f"{key}-traversal-notation")
    gr.Markdown("### Attribute surface (Fig. 13)\nThe attribute measured over a plane of the latent space: x is the "
                "attribute's dim, y another dim, all other dims fixed at the current code.")
    s_attr, s_other, s_res, s_btn, s_plot = surface_controls(ctx)

    # ------------------------------------------------------------------ functions
    def audio_of(tokens):
        (rate, samples), note = render.synthesize(tokens, tempo=tempo)
        return (rate, samples), note

    def note_md(note: str) -> str:
        return f"⚠️ {note}" if note else ""

    @user_errors("load the held-out measure")
    def example(index):
        if index is None and has_samples:  # the menu was cleared (an upload took over)
            return gr.skip()
        data = ctx.samples
        index = whole_number(index, "the held-out measure", 0, len(data) - 1)
        return json.dumps(data.inputs[index].tolist())

    @user_errors("sample from the prior")
    def prior(model, seed):
        kind = check_kind(model)
        return json.dumps(ctx.decode(kind, ctx.prior_code(seed))[0].tolist())

    @user_errors("import the music file")
    def import_music(file):
        path = payload_path(file)
        if path is None:
            raise ValueError("no file was uploaded")
        result = music_io.import_file(path)
        bars = result.bar_numbers or list(range(1, len(result.tokens) + 1))
        choices = [(f"measure {i + 1} (bar {bar})", i) for i, bar in enumerate(bars)]
        messages = "\n".join(f"- {m}" for m in result.messages)
        return messages, json.dumps(result.tokens.tolist()), gr.update(choices=choices, value=0)

    @user_errors("pick the measure")
    def pick_imported(measures, index):
        arr = parse_tokens(measures)
        index = 0 if index is None else whole_number(index, "the measure index", 0, len(arr) - 1)
        return json.dumps(arr[index].tolist())

    @user_errors("encode the measure")
    def encode(tokens, model):
        kind = check_kind(model)
        measure = parse_tokens(tokens)
        if len(measure) != 1:
            raise ValueError(f"encode takes one measure of {MEASURE_TICKS} tokens, got {len(measure)} measures")
        measure = measure[0]
        z = ctx.encode(kind, measure)
        audio, note = audio_of(measure[None])
        title = "Input measure: " + ", ".join(f"{pretty(n)} {v:.2f}" for n, v in
                                              zip(spec.attribute_names, ctx.measure(measure[None])[0]))
        return format_z(z), render.piano_roll_figure(measure[None], title=title, height=260), audio, z

    def sync(model, z):
        kind = check_kind(model)
        code = parse_z(z, D)
        return [*slider_updates(ctx, kind, code, attr_sliders, []), ctx.dims_note(kind)]

    @user_errors("decode the latent code")
    def decode(model, z):
        kind = check_kind(model)
        code = parse_z(z, D)
        measure = ctx.decode(kind, code)
        audio, note = audio_of(measure)
        measured = ctx.measure(measure)[0]
        dims, _ = ctx.attribute_dims(kind)
        table = ctx.attribute_table({"slider (z)": np.array([code[d] for d in dims]), "measured": measured}, kind)
        files = [output_file(f"{key}_{kind}_measure.mid", music_io.midi_bytes(measure, tempo=tempo)),
                 output_file(f"{key}_{kind}_measure.musicxml", music_io.musicxml_string(measure))]
        svg = render.notation_svg(measure)
        return (json.dumps(measure[0].tolist()), render.piano_roll_figure(measure, height=240),
                audio, f'<div>{svg}</div>', files, table + ("\n\n" + note_md(note) if note else ""))

    @user_errors("apply the sliders")
    def edit(model, z, *values):
        kind = check_kind(model)
        code = ctx.compose(kind, z if z else None, values[:L])
        tokens, figure, audio, notation, files, table = decode(model, format_z(code))
        owners = ctx.slider_dims(kind)
        dims, _ = ctx.attribute_dims(kind)
        followers = [gr.update(value=slider_value(code[d])) if owner is None else gr.skip()
                     for d, owner in zip(dims, owners)]
        return [format_z(code), tokens, figure, audio, notation, files, table, *followers]

    @user_errors("traverse the latent space")
    def traverse(model, z, steps):
        kind = check_kind(model)
        steps = check_steps(steps)
        code = parse_z(z, D)
        values, decoded, measured, dims = ctx.traverse(kind, code, steps)
        figure = render.music_traversal_figure(decoded, values, measured, spec.attribute_names, dims,
                                               title=f"{MODEL_LABEL[kind]} traversals")
        audios_out, files, sections, note = [], [], [], ""
        for l, name in enumerate(spec.attribute_names):
            audio, note = audio_of(decoded[l])
            audios_out.append(audio)
            stem = f"{key}_{kind}_traversal_{name}_z{dims[l]}"
            files.append(output_file(stem + ".mid", music_io.midi_bytes(decoded[l], tempo=tempo)))
            files.append(output_file(stem + ".musicxml", music_io.musicxml_string(decoded[l])))
            sections.append(f"<h4>{pretty(name)}: z[{dims[l]}] from {values[0]:+.1f} to {values[-1]:+.1f}</h4>"
                            + render.notation_svg(decoded[l]))
        info = note_md(note)
        return [figure, *audios_out, files, "".join(sections), info]

    def reset_code(z0):
        if z0 is None:
            raise gr.Error("Nothing to reset yet: load a measure first.")
        return format_z(z0)

    def random_other(current):
        n = len(ctx.samples)
        pick = int(np.random.default_rng().integers(n))
        return (pick + 1) % n if n > 1 and current is not None and pick == int(current) else pick

    def first_visit(tokens):
        """Open the tab on a representative held-out measure (one with a few notes)."""
        if tokens or not has_samples:
            return gr.skip()
        notes = (ctx.samples.inputs >= FIRST_PITCH_TOKEN).sum(axis=1)
        return int(np.argmax(notes >= 4)) if (notes >= 4).any() else 0

    # ------------------------------------------------------------------ wiring
    sync_outputs = [*attr_sliders, dims_md]
    edit_outputs = [decoded_tokens, edit_plot, edit_audio, edit_notation, edit_files, edit_info]
    traverse_outputs = [roll_plot, *audios, traverse_files, traverse_notation, traverse_info]
    sample_dd.change(example, sample_dd, tokens_box, api_name=f"{key}_example", **LIGHT)
    random_btn.click(random_other, sample_dd, sample_dd, api_visibility="private", **LIGHT)
    prior_btn.click(prior, [model, seed], tokens_box, api_name=f"{key}_prior", **LIGHT)
    upload.upload(import_music, upload, [import_md, imported, measure_dd], api_name=f"{key}_import",
                  **HEAVY).success(pick_imported, [imported, measure_dd], tokens_box, api_visibility="private", **LIGHT
                                   ).success(lambda: None, None, sample_dd, api_visibility="private", **LIGHT)
    measure_dd.input(pick_imported, [imported, measure_dd], tokens_box, api_visibility="private", **LIGHT)

    gr.on([tokens_box.change, model.input], encode, [tokens_box, model], [z_box, input_plot, input_audio, z0],
          api_name=f"{key}_encode", trigger_mode="always_last", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT).success(
        decode, [model, z_box], edit_outputs, api_visibility="private", **LIGHT).success(
        traverse, [model, z_box, steps], traverse_outputs, api_visibility="private", **HEAVY)
    z_box.submit(decode, [model, z_box], edit_outputs, api_name=f"{key}_decode", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT)
    gr.on([s.input for s in attr_sliders], edit, [model, z_box, *attr_sliders],
          [z_box, *edit_outputs, *attr_sliders], api_visibility="private", trigger_mode="always_last",
          show_progress="hidden", **LIGHT)
    reset.click(reset_code, z0, z_box, api_visibility="private", **LIGHT).success(
        sync, [model, z_box], sync_outputs, api_visibility="private", show_progress="hidden", **LIGHT).success(
        decode, [model, z_box], edit_outputs, api_visibility="private", **LIGHT)
    gr.on([traverse_btn.click, steps.release], traverse, [model, z_box, steps], traverse_outputs,
          api_name=f"{key}_traverse", **HEAVY)
    wire_surface(ctx, model, z_box, s_attr, s_other, s_res, s_btn, s_plot)
    return dict(first_visit=(first_visit, tokens_box, sample_dd))


# ============================================================================= about & metrics

ABOUT = r"""
### AR-VAE in a few sentences
An **attribute-regularized VAE** (Pati & Lerch, *Neural Computing and Applications* 2020) is a VAE whose
latent space is trained so that chosen attributes of the data (a digit's thickness, a melody's note
density, ...) each increase **monotonically along one latent dimension** -- the *regularized dim*.
For a mini-batch, an attribute $a$ and its dim $r$, with $D_r$ and $D_a$ the matrices of pairwise
differences of $z_r$ and of $a$, the regularizer is

$$L_{r,a} = \mathrm{MAE}\big(\tanh(\delta D_r) - \mathrm{sgn}(D_a)\big)$$

and the training loss is $\;\mathcal{L} = \mathcal{L}_{recon} + \beta\,\mathcal{L}_{KLD} + \gamma \sum_l L_{r_l, a_l}$.
Moving $z_r$ then changes the attribute, and little else. The **β-VAE** baseline is the same model with
$\gamma = 0$; for it, each attribute is read from the latent dim sharing the most mutual information with it.

Hyperparameters (paper): β = 4, γ = 10, δ = 1 for images; β = 0.001, γ = 1, δ = 10 for music.
"""


def paper_median(spec, metric: str):
    """(AR-VAE, beta-VAE) medians of the paper from the registry, reconstruction in %; None if unknown."""
    pair = spec.paper_medians.get(metric)
    if pair is None:
        return None
    return tuple(100 * v for v in pair) if metric == "reconstruction_accuracy" else tuple(pair)


def metrics_markdown(root: Path) -> str:
    """The metrics table: this project's checkpoints (``<root>/<key>/metrics.json``) next to the paper's medians."""
    parts = []
    for spec in registry.DATASETS.values():
        path = root / spec.key / "metrics.json"
        data, error = None, ""
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except Exception as exc:
                error = f" (unreadable metrics.json: {exc})"
        parts.append(f"#### {spec.display_name}")
        if data is None:
            parts.append(f"*Not evaluated yet*{error} -- run `python -m arvae.evaluate --dataset {spec.key}`. "
                         "Paper medians shown for reference.")
        rows = ["| metric | AR-VAE (here) | β-VAE (here) | AR-VAE (paper) | β-VAE (paper) |", "|---|---|---|---|---|"]
        for metric, label in METRIC_LABELS.items():
            paper = paper_median(spec, metric)
            here = []
            for kind in registry.MODEL_KINDS:
                value = ((data or {}).get(kind) or {}).get(metric)
                if isinstance(value, dict):  # content preservation: accuracy on reconstructions / traversals
                    pair = [value.get(k) for k in ("reconstructions", "traversals")]
                    value = " / ".join(f"{v:.3f}" for v in pair if isinstance(v, (int, float))) or None
                elif isinstance(value, (int, float)):
                    value = f"{100 * value:.2f}" if metric == "reconstruction_accuracy" else f"{value:.3f}"
                here.append(value if value is not None else ("not evaluated yet" if data is None else "—"))
            if paper is None and all(h in ("—", "not evaluated yet") for h in here):
                continue
            paper_cells = [f"{p:.4g}" for p in paper] if paper else ["—", "—"]
            rows.append(f"| {label} | " + " | ".join(here + paper_cells) + " |")
        parts.append("\n".join(rows))
        if data is not None:
            evaluated = data.get("evaluated_on", {})
            checkpoints = []
            for kind in registry.MODEL_KINDS:
                meta = (data.get(kind) or {}).get("checkpoint") or {}
                if meta:
                    checkpoints.append(f"{MODEL_LABEL[kind]}: {meta.get('steps')} steps ({meta.get('epochs')} epochs) "
                                       f"on {meta.get('hardware')}")
            if evaluated:
                parts.append(f"<sub>Evaluated on {evaluated.get('num_samples')} {evaluated.get('split')} items, "
                             f"MI estimator {evaluated.get('mi_estimator')}. {'; '.join(checkpoints)}.</sub>")
    parts.append("<sub>Paper values are medians over ten seeds read off Fig. 3 and Fig. 5 of the paper "
                 "(reconstruction in %).</sub>")
    return "\n\n".join(parts)


# ============================================================================= the app

def build_demo(root=None) -> gr.Blocks:
    """The whole app. Cheap: reads checkpoint headers and the small held-out samples, loads no model."""
    root = samples_mod.checkpoints_root(root)
    store = hub.ModelStore(root)
    contexts = {key: DatasetContext(spec, store, root) for key, spec in registry.DATASETS.items()}
    with gr.Blocks(title="AR-VAE Explorer", delete_cache=(3600, 7200)) as demo:
        gr.Markdown("# AR-VAE Explorer\nLatent spaces where one dimension controls one attribute "
                    "(Pati & Lerch, *Attribute-based regularization of latent spaces for VAEs*). "
                    "Pick a dataset tab; the scripting API is described in the README.")
        first_visits = []
        with gr.Tabs():
            for key, ctx in contexts.items():
                with gr.Tab(ctx.spec.display_name, id=key, elem_id=f"tab-{key}") as tab:
                    if not ctx.available:
                        unavailable_tab(ctx.spec, ctx)
                        continue
                    built = (build_image_tab if ctx.spec.domain == "image" else build_music_tab)(ctx)
                    fn, inputs, outputs = built["first_visit"]
                    tab.select(fn, inputs, outputs, api_visibility="private", **LIGHT)
                    first_visits.append((fn, inputs, outputs))
            with gr.Tab("About & metrics", id="about", elem_id="tab-about"):
                gr.Markdown(ABOUT, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                     {"left": "$", "right": "$", "display": False}])
                gr.Markdown("### Metrics")
                table = gr.Markdown(metrics_markdown(root), label="Metrics table", elem_id="metrics-table")
                refresh = gr.Button("Refresh metrics", size="sm")

                def about_metrics():
                    return metrics_markdown(root)

                refresh.click(about_metrics, None, table, api_name="about_metrics", **LIGHT)
                demo.load(about_metrics, None, table, api_visibility="private", **LIGHT)
        if first_visits:  # the first tab is shown without a select event: fill it on page load
            fn, inputs, outputs = first_visits[0]
            demo.load(fn, inputs, outputs, api_visibility="private", **LIGHT)
    demo.contexts = contexts
    return demo


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every worker thread that contends for malloc an arena of its own (up to 8 per
    core) and keeps what each one freed: under many concurrent visitors the app's RSS grew ~10 % per
    hundred requests without bound. Two arenas keep it flat (benchmarks/load.py). ``MALLOC_ARENA_MAX``
    in the environment wins; other platforms are left alone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not os.environ.get("MALLOC_ARENA_MAX"):
            libc.mallopt(-8, int(arenas))  # M_ARENA_MAX
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return

    def trim_now_and_then():  # hand memory freed after a burst of requests back to the system
        while True:
            time.sleep(10)
            trim(0)

    threading.Thread(target=trim_now_and_then, name="malloc-trim", daemon=True).start()


def stop_on_sigterm(signum, frame):
    """SIGTERM (a Space restart, ``kill``, a test fixture) stops the server like Ctrl-C: Gradio closes
    cleanly and the atexit cleanup of the app's temporary folder runs."""
    raise KeyboardInterrupt


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    limit_malloc_arenas()
    demo = build_demo()
    demo.queue(default_concurrency_limit=2, max_size=64)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
        css=CSS,
        theme=gr.themes.Soft(primary_hue="indigo"),
        footer_links=["api", "gradio"],
    )


if __name__ == "__main__":
    main()
