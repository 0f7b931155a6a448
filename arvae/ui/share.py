"""Shareable state: a "copy link" button per tab (``/<key>_link``) and, on page load, the view a
link describes (``?tab=mnist&model=arvae&z=[...]``: the tab selected, the model set, the code
decoded and the sliders moved to it)."""
from __future__ import annotations

import gradio as gr

from arvae.explorer import check_kind, format_z, parse_z
from arvae.share import parse_share_query, share_query
from arvae.ui.common import LIGHT, QUIET, user_errors

COPY_JS = "(link) => { if (link && navigator.clipboard) navigator.clipboard.writeText(link).catch(() => {}); }"


def page_url(request: gr.Request | None) -> str:
    """The app's address as the visitor sees it (without a query): the page that sent the request, else its host."""
    headers = getattr(request, "headers", None) or {}
    referer = headers.get("referer") or ""
    if referer:
        return referer.split("?", 1)[0].split("#", 1)[0]
    return f"http://{headers.get('host', '127.0.0.1:7860')}/"


def share_panel(t) -> None:
    explorer, key = t.explorer, t.key
    with gr.Row():
        button = gr.Button("🔗 Copy link to this view", size="sm", elem_id=f"{key}-copy-link")
        link = gr.Textbox(label="Link to this view (dataset, model, code)", max_lines=1, buttons=["copy"],
                          elem_id=f"{key}-link")

    @user_errors("make the link")
    def make_link(model: str, z: str, request: gr.Request = None) -> str:
        """The URL that reopens this dataset's tab with this model and latent code.

        Args:
            model: "arvae" or "beta-vae".
            z: the latent code, a JSON list of numbers.
        """
        return page_url(request) + share_query(key, check_kind(model), parse_z(z, explorer.latent_dim))

    button.click(make_link, [t.model, t.z_box], link, api_name=f"{key}_link", **LIGHT).success(
        None, link, None, js=COPY_JS, queue=False)


def linked(request: gr.Request | None, by_key: dict):
    """``(key, kind, z)`` of the link the page was opened with, or None."""
    params = getattr(request, "query_params", None)
    return parse_share_query(dict(params), by_key) if params else None


def unless_linked(first_visit, key: str, by_key: dict):
    """``first_visit`` (what fills tab ``key`` when it opens empty), skipped when the page was opened
    with a link to a code of this tab (selecting the tab for the link opens it too)."""
    def fill(value, request: gr.Request):
        try:
            view = linked(request, by_key)
        except ValueError:
            view = None
        return gr.skip() if view is not None and view[0] == key and view[2] is not None else first_visit(value)
    return fill


def wire_restore(demo, tabs, built: dict) -> None:
    """On page load, open the view of a shared link: select its tab; in that tab set the model, the
    code, the sliders and the decoding. ``built``: key -> the :class:`arvae.ui.tab.Tab` of each
    available dataset."""
    by_key = {key: t.explorer for key, t in built.items()}

    @user_errors("open the shared link")
    def select_tab(request: gr.Request):
        view = linked(request, by_key)
        return gr.skip() if view is None else gr.Tabs(selected=view[0])

    demo.load(select_tab, None, tabs, **QUIET)
    for t in built.values():  # the tab's own decode and slider sync follow the restored code
        demo.load(restorer(t, by_key), None, [t.model, t.z_box], **QUIET).success(
            t.decode, [t.model, t.z_box], t.decoded_outputs, **QUIET).success(
            t.sync, [t.model, t.z_box], t.sync_outputs, **QUIET)


def restorer(t, by_key: dict):
    def restore(request: gr.Request):
        """Model and code of the link when it opens this tab; otherwise nothing changes (an error
        stops the chain, so nothing is decoded)."""
        try:
            view = linked(request, by_key)
        except ValueError:
            view = None  # select_tab says what is wrong
        if view is None or view[0] != t.key or view[2] is None:
            raise gr.Error("no shared code for this tab", visible=False, print_exception=False)
        return view[1], format_z(view[2])
    return restore
