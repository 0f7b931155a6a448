"""Gradio pieces every tab uses: error handling, downloads, the model switch and the sliders."""
from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np

from arvae import hub, workers
from arvae.explorer import MODEL_CHOICES, MODEL_LABEL, SPAN, pretty, slider_value
from arvae.glossary import ATTRIBUTE_HELP, PARTLY, attribute_quality
from arvae.image_input import ImageInputError
from arvae.images import png_bytes
from arvae.music.audio import wav_bytes
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
    """Every input of ``demo`` answers a value it cannot take (NaN, text or a number of 400 digits
    for a number, a model that is not offered, a file of another type) with a message naming the
    field, instead of Gradio's technical wording and a logged traceback; the handlers check the rest
    (``arvae.explorer.whole_number``, ``check_kind``, the upload checks)."""
    for block in demo.blocks.values():
        if isinstance(block, gr.components.Component):
            block.preprocess = _readable_value(block.preprocess, block.label or "the value",
                                               isinstance(block, (gr.Number, gr.Slider)))


def _readable_value(preprocess, label: str, numeric: bool):
    @functools.wraps(preprocess)
    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error as error:  # Gradio's own check, e.g. a choice that is not offered
            raise gr.Error(f"{label}: {error.message}", print_exception=False) from None
        except (TypeError, ValueError, OverflowError):
            if not numeric:
                raise
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
    """Write an output (a picture, a sound, a download) into the app's temporary folder and return
    its path. Content-addressed and written once, under a temporary name renamed into place: a file
    being served is never rewritten. (Gradio rewrites its cached copy of a returned PIL image or
    audio array in place whenever the same content comes back, so a browser still reading the first
    copy got a short file: "Too little data for declared Content-Length". Handlers return these
    paths instead, which Gradio copies atomically.) Files untouched for an hour are pruned."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    stem, _, ext = name.rpartition(".")
    path = _OUTPUT_DIR / hashlib.sha1(raw).hexdigest()[:10] / f"{stem}.{ext}"
    try:
        os.utime(path)  # handed out again: not old, whatever its first write
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        staging.write_bytes(raw)
        os.replace(staging, path)
    if np.random.default_rng().random() < 0.05:  # prune files older than an hour, now and then
        cutoff = time.time() - 3600
        for old in _OUTPUT_DIR.glob("*/*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
    return str(path)


def picture_file(name: str, image) -> str:
    """A PNG of an image array or PIL image, as :func:`output_file`."""
    return output_file(f"{name}.png", png_bytes(image))


def sound_file(name: str, audio) -> str:
    """A WAV of a :func:`arvae.music.audio.synthesize` pair, as :func:`output_file`."""
    return output_file(f"{name}.wav", wav_bytes(audio))


def notice(text: str, visible: bool = True):
    return gr.Markdown(text, visible=visible, elem_classes=["arvae-notice"])


def model_radio(explorer):
    both = len(explorer.kinds) > 1
    info = ("β-VAE: each attribute uses the latent dim with the highest mutual information" if both else
            "only AR-VAE is available for this dataset")
    return gr.Radio(choices=MODEL_CHOICES, value="arvae", label="Model", info=info, interactive=both)


def latent_slider(label: str, **kwargs):
    return gr.Slider(-SPAN, SPAN, value=0.0, step=0.05, label=label, **kwargs)


def slider_info(explorer, kind: str, name: str, dim: int, shared: bool = False) -> str:
    """What the slider of attribute ``name`` moves (its dim), what the attribute is, in which unit,
    and how well ``kind`` controls it (the badge of :func:`arvae.glossary.attribute_quality`)."""
    badge = attribute_quality(explorer.root, explorer.spec.key, kind).get(name, ("", ""))[1]
    moves = f"z[{dim}]" + (", shared with another attribute" if shared else "")
    return " · ".join(part for part in (moves, ATTRIBUTE_HELP.get(name, ""), badge) if part)


def controls_note(explorer, kind: str) -> str:
    """A warning naming the attributes this model does not control (empty when it controls all)."""
    quality = attribute_quality(explorer.root, explorer.spec.key, kind)
    names = [pretty(name) for name in explorer.spec.attribute_names if quality.get(name, ("",))[0] == "none"]
    if not names:
        return ""
    return (f"⚠️ **The shipped {MODEL_LABEL[kind]} does not control {' and '.join(names)}**: "
            f"{'its slider moves it' if len(names) == 1 else 'their sliders move them'} little or not in one "
            f"direction (traversal monotonicity under {PARTLY:g}: see the slider's badge and *About & metrics*).")


def controls_note_update(explorer, kind: str):
    """The update showing :func:`controls_note` of ``kind``, hidden when there is nothing to warn of."""
    note = controls_note(explorer, kind)
    return gr.update(value=note, visible=bool(note))


def attribute_controls(t, heading: str) -> None:
    """The attribute sliders with their explanations, the warning on attributes the model does not
    control and the reset button, laid out where the view puts them: beside or under the output
    they change."""
    explorer, key = t.explorer, t.key
    gr.Markdown(heading, elem_classes=["arvae-heading"])
    note = controls_note(explorer, "arvae") if explorer.available else ""
    t.controls_note = gr.Markdown(note, visible=bool(note), elem_id=f"{key}-controls-note", elem_classes=["arvae-notice"])
    with gr.Column(elem_classes=["arvae-sliders"]):  # one per line: room for its explanation
        t.attr_sliders = [latent_slider(pretty(name), info=slider_info(explorer, "arvae", name, dim),
                                        elem_id=f"{key}-slider-{name}")
                          for name, dim in zip(explorer.spec.attribute_names, explorer.spec.regularized_dims)]
    t.reset = gr.Button("Reset sliders to the encoded input", size="sm", elem_id=f"{key}-reset")


def slider_updates(explorer, kind: str, z: np.ndarray, dim_count: int):
    """Updates setting the attribute sliders and ``dim_count`` dim sliders to code ``z``."""
    dims, _ = explorer.attribute_dims(kind)
    updates = []
    for name, dim, owner in zip(explorer.spec.attribute_names, dims, explorer.slider_dims(kind)):
        updates.append(gr.update(value=slider_value(z[dim]), info=slider_info(explorer, kind, name, dim, owner is None),
                                 interactive=owner is not None))
    return updates + [gr.update(value=slider_value(z[d]), visible=d not in set(dims)) for d in range(dim_count)]


def follower_updates(explorer, kind: str, z: np.ndarray):
    """The sliders of attributes that share a dim follow the slider that drives it."""
    dims, _ = explorer.attribute_dims(kind)
    return [gr.update(value=slider_value(z[d])) if owner is None else gr.skip()
            for d, owner in zip(dims, explorer.slider_dims(kind))]
