"""Gradio pieces every tab uses: error handling, downloads, the model switch and the sliders."""
from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from arvae import hub, workers
from arvae.explorer import MODEL_CHOICES, SPAN, pretty, slider_value
from arvae.image_input import ImageInputError
from arvae.music.file_import import MusicImportError

log = logging.getLogger("arvae.app")
LIGHT = dict(concurrency_id="light", concurrency_limit=2)
HEAVY = dict(concurrency_id="heavy", concurrency_limit=max(1, workers.pool_size()))  # one per worker process
PRIVATE = dict(api_visibility="private", **LIGHT)
QUIET = dict(api_visibility="private", show_progress="hidden", **LIGHT)
USER_ERRORS = (ValueError, FileNotFoundError, hub.CheckpointError, ImageInputError, MusicImportError, KeyError,
               IndexError, workers.WorkerError)


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


def clear_value_errors(demo: gr.Blocks) -> None:
    """Number fields and sliders of ``demo`` answer a value they cannot read (NaN, text, a number
    of 400 digits sent to the API) with a message naming the field, instead of Gradio's technical
    wording and a logged traceback; the handlers check the rest (``arvae.explorer.whole_number``)."""
    for block in demo.blocks.values():
        if isinstance(block, (gr.Number, gr.Slider)):
            block.preprocess = _readable_number(block.preprocess, block.label or "the number")


def _readable_number(preprocess, label: str):
    @functools.wraps(preprocess)
    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except (TypeError, ValueError, OverflowError):
            shown = repr(payload) if len(repr(payload)) <= 40 else repr(payload)[:37] + "..."
            raise gr.Error(f"{label} must be a number, got {shown}", print_exception=False) from None
    return checked


def payload_path(payload) -> str | None:
    """File path of a component value: a str, a FileData-like dict/object, or None."""
    if payload is None or isinstance(payload, (str, Path)):
        return None if payload is None else str(payload)
    if isinstance(payload, dict):
        return payload.get("path") or None
    return getattr(payload, "path", None)


_OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="arvae-app-"))
atexit.register(shutil.rmtree, _OUTPUT_DIR, ignore_errors=True)


def output_file(name: str, data: bytes | str) -> str:
    """Write a download into the app's temporary folder (content-addressed; old files pruned)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    stem, _, ext = name.rpartition(".")
    path = _OUTPUT_DIR / hashlib.sha1(raw).hexdigest()[:10] / f"{stem}.{ext}"
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


def notice(text: str, visible: bool = True):
    return gr.Markdown(text, visible=visible, elem_classes=["arvae-notice"])


def model_radio(explorer):
    both = len(explorer.kinds) > 1
    info = ("β-VAE: each attribute uses the latent dim with the highest mutual information" if both else
            "only AR-VAE is available for this dataset")
    return gr.Radio(choices=MODEL_CHOICES, value="arvae", label="Model", info=info, interactive=both)


def latent_slider(label: str, **kwargs):
    return gr.Slider(-SPAN, SPAN, value=0.0, step=0.05, label=label, **kwargs)


def attribute_sliders(explorer):
    spec = explorer.spec
    return [latent_slider(f"{pretty(name)} · z[{dim}]", elem_id=f"{spec.key}-slider-{name}", min_width=200)
            for name, dim in zip(spec.attribute_names, spec.regularized_dims)]


def slider_updates(explorer, kind: str, z: np.ndarray, dim_count: int):
    """Updates setting the attribute sliders and ``dim_count`` dim sliders to code ``z``."""
    dims, _ = explorer.attribute_dims(kind)
    updates = []
    for name, dim, owner in zip(explorer.spec.attribute_names, dims, explorer.slider_dims(kind)):
        label = f"{pretty(name)} · z[{dim}]" + ("" if owner is not None else " (shared dim)")
        updates.append(gr.update(value=slider_value(z[dim]), label=label, interactive=owner is not None))
    return updates + [gr.update(value=slider_value(z[d]), visible=d not in set(dims)) for d in range(dim_count)]


def follower_updates(explorer, kind: str, z: np.ndarray):
    """The sliders of attributes that share a dim follow the slider that drives it."""
    dims, _ = explorer.attribute_dims(kind)
    return [gr.update(value=slider_value(z[d])) if owner is None else gr.skip()
            for d, owner in zip(dims, explorer.slider_dims(kind))]
