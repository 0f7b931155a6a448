"""The panels of issue 14 under a dataset's tab -- attribute pad, set an attribute, whole melodies
(music), controllability, shareable link -- and what they share: a decoded code shown the way the
tab's domain shows it (a picture, or a piano roll and audio). Each panel is a thin layer over
:mod:`arvae.control`, :mod:`arvae.melody` and :mod:`arvae.share`."""
from __future__ import annotations

import functools

import gradio as gr

from arvae.music.audio import synthesize
from arvae.music.pianoroll import piano_roll_figure


def decoded_components(t, label: str, autoplay: bool = False) -> list:
    """Components that show one decoded code (``label`` names them); for music the audio plays by itself when
    ``autoplay``."""
    if t.spec.domain == "image":
        return [gr.Image(label=label, format="png", interactive=False, height=200,
                         elem_classes=["pixelated", "fill-image"])]
    return [gr.Plot(label=label), gr.Audio(label=label, interactive=False, autoplay=autoplay)]


def show_decoded(t, kind: str, code, decoded) -> list:
    """The values of :func:`decoded_components` for ``code`` decoded as ``decoded`` ``(1, ...)``."""
    if t.spec.domain == "image":  # the picture exactly as the tab's decoding shows it
        return [t.view.show_decoded(t, kind, code, decoded)[0]]
    audio, _ = synthesize(decoded, tempo=t.spec.input.tempo)
    return [piano_roll_figure(decoded, height=240), audio]


def feature_panels(t) -> None:
    """Lay out and wire every panel of issue 14 in the tab ``t`` (called by ``build_tab``)."""
    from arvae.ui.controllability import controllability_panel
    from arvae.ui.melody import melody_panel
    from arvae.ui.pad import pad_panel
    from arvae.ui.share import share_panel
    from arvae.ui.target import target_panel

    pad_panel(t)
    target_panel(t)
    if t.spec.domain == "music":
        melody_panel(t)
    controllability_panel(t)
    share_panel(t)


ARGS = {"model": '"arvae" or "beta-vae" (the beta-VAE reads each attribute from its highest-MI dim).',
        "z": "the latent code, a JSON list of numbers (10 for sprites, 16 for MNIST, 32 for music).",
        "image": "an image file (any picture; it is converted to the model's input).",
        "tokens": "one measure: a JSON list of 24 tokens (0 continuation, 1 rest, 2 + MIDI - 55 a note, G3..C6).",
        "steps": "latent values per traversal, 2..17, from -4 to 4."}
TOOL_DOCS = {  # the MCP descriptions of the tab's own endpoints: action -> (what it does, its arguments)
    "encode": ("Encode an input into its latent code (the posterior mean); returns the code z, what it decodes "
               "to, and (images) the attributes measured on input and reconstruction.", ("image", "tokens", "model")),
    "decode": ("Decode a latent code z; returns the decoded image or measure and its measured attributes.",
               ("model", "z")),
    "traverse": ("Move each attribute's latent dim from -4 to 4 around z (all other dims fixed), decode every "
                 "step and measure the attribute on it (the paper's traversals, Figs. 9-11).", ("model", "z", "steps")),
}


def tool_doc(action: str) -> str:
    """A Google-style docstring (what Gradio's MCP server reads) for a tab endpoint without one."""
    what, args = TOOL_DOCS[action]
    return what + "\n\nArgs:\n" + "\n".join(f"    {name}: {ARGS[name]}" for name in args)


def name_tools_by_endpoint(demo) -> None:
    """Gradio's MCP server names each tool after its Python function (``decode``, ``decode_1``, ...)
    and describes it by its docstring: name every public endpoint's function after its ``api_name``
    (``mnist_decode``, ``folk_set_attribute``: the names of the README's API section) and describe
    encode, decode and traverse."""
    for block_fn in demo.fns.values():
        if block_fn.api_name and block_fn.api_visibility == "public" and block_fn.fn is not None:
            action = block_fn.api_name.split("_", 1)[-1]
            doc = block_fn.fn.__doc__ or (tool_doc(action) if action in TOOL_DOCS else None)
            block_fn.fn = named(block_fn.fn, block_fn.api_name, doc)  # a wrapper: a view's method serves several tabs


def named(fn, name: str, doc: str | None):
    """``fn`` under another ``__name__`` and docstring (same signature)."""
    @functools.wraps(fn)
    def tool(*args, **kwargs):
        return fn(*args, **kwargs)
    tool.__name__, tool.__doc__ = name, doc
    return tool
