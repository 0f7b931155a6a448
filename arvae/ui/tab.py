"""The one tab builder of every dataset: the skeleton an image and a music tab share (model switch,
attribute sliders, latent code, prior seed, reset, traversals, attribute surface) and its wiring;
the domain's view (:mod:`arvae.ui.image`, :mod:`arvae.ui.music`) adds its inputs and outputs and
says how to show a decoding and a traversal. Every handler is a few lines around
:class:`arvae.explorer.Explorer`. Each action has a stable ``api_name``: ``<key>_<action>``."""
from __future__ import annotations

import gradio as gr

from arvae import workers
from arvae.explorer import DEFAULT_STEPS, MAX_STEPS, MODEL_LABEL, SURFACE_RESOLUTIONS, check_kind, format_z, \
    parse_z, pretty
from arvae.figures import surface_figure
from arvae.traversal import traversal_values
from arvae.ui.features import feature_panels
from arvae.ui.common import HEAVY, LIGHT, PRIVATE, QUIET, controls_note_update, follower_updates, latent_slider, \
    model_radio, notice, slider_updates, user_errors


class Tab:
    """The components of one dataset's tab, built by :func:`build_tab`; the view fills in its own."""

    def __init__(self, explorer, view):
        self.explorer, self.view, self.spec, self.key = explorer, view, explorer.spec, explorer.spec.key


def build_tab(explorer, view) -> Tab:
    """Lay out and wire the tab of ``explorer``'s dataset with the domain ``view``."""
    t = Tab(explorer, view)
    spec, key, D = t.spec, t.key, explorer.latent_dim
    notes = explorer.availability_notes()
    notice(notes, visible=bool(notes))
    gr.Markdown(view.intro(spec))
    with gr.Row():
        t.model = model_radio(explorer)
    # the views place the attribute controls (common.attribute_controls) beside the output they change
    view.input_panel(t)  # sets t.source (the input the code is encoded from) and its controls
    view.edit_panel(t)  # sets t.decoded_outputs
    with gr.Accordion(view.advanced_label, open=False):
        with gr.Row():
            t.dim_sliders = [latent_slider(f"z[{d}]", min_width=150, visible=d not in spec.regularized_dims,
                                           elem_id=f"{key}-dim-{d}") for d in range(D)] if view.dim_sliders else []
        t.z_box = gr.Textbox(label=f"Latent code z ({D} numbers; edit and press Enter to decode)",
                             elem_id=f"{key}-z", max_lines=3)
        view.advanced_panel(t)
        t.seed = gr.Number(label="Seed for “Sample from prior” (−1: random)", value=-1, precision=0)
    t.z0 = gr.State(None)
    gr.Markdown(view.traversal_heading(spec))
    with gr.Row():
        t.steps = gr.Slider(3, MAX_STEPS, value=DEFAULT_STEPS, step=1, label=view.steps_label)
        traverse_btn = gr.Button("Traverse", variant="primary", elem_id=f"{key}-traverse-button")
    view.traversal_panel(t)  # sets t.traversal_outputs
    figure = spec.paper_figures.get("surface")
    gr.Markdown(f"### Attribute surface{f' (Fig. {figure})' if figure else ''}\nThe attribute measured over a "
                "plane of the latent space: x is the attribute's dim, y another dim, all other dims fixed at the "
                "current code, which the × marks. Along x the colour should change steadily when the model controls "
                "the attribute; along y it should stay the same.")
    surface_panel(t)
    feature_panels(t)  # pad, set an attribute, melodies, controllability, link (issue 14)

    # ------------------------------------------------------------------ handlers
    sliders = [*t.attr_sliders, *t.dim_sliders]
    L = len(t.attr_sliders)

    def sync(model, z):
        kind = check_kind(model)
        return [*slider_updates(explorer, kind, parse_z(z, D), len(t.dim_sliders)),
                controls_note_update(explorer, kind)]

    @user_errors("decode the latent code")
    def decode(model, z):
        kind, code = check_kind(model), parse_z(z, D)
        return view.show_decoded(t, kind, code, explorer.decode(kind, code))

    @user_errors("apply the sliders")
    def edit(model, z, *values):
        kind = check_kind(model)
        code = explorer.compose(kind, z if z else None, values[:L], values[L:] or None)
        return [format_z(code), *decode(model, format_z(code)), *follower_updates(explorer, kind, code)]

    @user_errors("traverse the latent space")
    def traverse(model, z, steps):
        kind = check_kind(model)
        return view.show_traversal(t, kind, workers.run(explorer, "traverse", kind, parse_z(z, D), steps))

    def reset_code(z0):
        if z0 is None:
            raise gr.Error(f"Nothing to reset yet: load {view.input_noun} first.")
        return format_z(z0)

    # ------------------------------------------------------------------ wiring
    view.wire_inputs(t)
    sync_outputs = [*sliders, t.controls_note]
    encoded = gr.on([t.source.change, t.model.input], view.encode, [t.source, t.model], [*view.encode_outputs(t), t.z0],
                    api_name=f"{key}_encode", trigger_mode="always_last", preprocess=view.preprocess_source,
                    show_progress_on=[*view.encode_outputs(t), *t.traversal_outputs],  # a cold start loads models
                    **LIGHT).success(sync, [t.model, t.z_box], sync_outputs, **QUIET)
    if view.decode_after_encode:
        encoded = encoded.success(decode, [t.model, t.z_box], t.decoded_outputs, **PRIVATE)
    t.traversed = [encoded.success(traverse, [t.model, t.z_box, t.steps], t.traversal_outputs,
                                   api_visibility="private", **view.traverse_queue)]
    t.z_box.submit(decode, [t.model, t.z_box], t.decoded_outputs, api_name=f"{key}_decode", **LIGHT).success(
        sync, [t.model, t.z_box], sync_outputs, **QUIET)
    gr.on([s.input for s in sliders], edit, [t.model, t.z_box, *sliders], [t.z_box, *t.decoded_outputs, *t.attr_sliders],
          api_visibility="private", trigger_mode="always_last", show_progress="hidden", **LIGHT)
    t.reset.click(reset_code, t.z0, t.z_box, **PRIVATE).success(sync, [t.model, t.z_box], sync_outputs, **QUIET).success(
        decode, [t.model, t.z_box], t.decoded_outputs, **PRIVATE)
    t.traversed.append(gr.on([traverse_btn.click, t.steps.release], traverse, [t.model, t.z_box, t.steps],
                             t.traversal_outputs, api_name=f"{key}_traverse", **view.traverse_queue))
    view.wire_extras(t)
    t.decode, t.sync, t.sync_outputs = decode, sync, sync_outputs  # for a shared link (ui/share.py)
    return t


def surface_panel(t: Tab) -> None:
    """The attribute surface (Figs. 12/13): controls, plot and wiring (``<key>_surface``)."""
    explorer, key = t.explorer, t.key
    names = list(t.spec.attribute_names)
    choices, default = explorer.y_choices("arvae", names[0])
    with gr.Row():
        attribute = gr.Dropdown([(pretty(n), n) for n in names], value=names[0], label="Attribute (x: its dim)")
        # custom values: API calls may name any dim (the choices follow the attribute in the UI)
        other = gr.Dropdown(choices, value=default, label="Other dim (y)", allow_custom_value=True)
        resolution = gr.Slider(SURFACE_RESOLUTIONS[0], SURFACE_RESOLUTIONS[1], value=16, step=1,
                               label="Resolution (points per axis)")
    button = gr.Button("Compute attribute surface", variant="secondary", elem_id=f"{key}-surface-button")
    plot = gr.Plot(label="Attribute surface", elem_id=f"{key}-surface")

    @user_errors("compute the attribute surface")
    def surface(model, z, attribute, other_dim, resolution):
        kind, code = check_kind(model), parse_z(z, explorer.latent_dim)
        values, dim_x, dim_y = workers.run(explorer, "surface", kind, code, attribute, other_dim, resolution)
        return surface_figure(values, traversal_values(len(values)), attribute, dim_x, dim_y,
                              current=(code[dim_x], code[dim_y]),
                              title=f"{MODEL_LABEL[kind]}: {pretty(attribute)} over z[{dim_x}] × z[{dim_y}]")

    def y_update(model, attribute):
        choices, default = explorer.y_choices(check_kind(model), attribute)
        return gr.update(choices=choices, value=default)

    button.click(surface, [t.model, t.z_box, attribute, other, resolution], plot, api_name=f"{key}_surface", **HEAVY)
    gr.on([attribute.input, t.model.change], y_update, [t.model, attribute], other, **QUIET)


def unavailable_tab(explorer) -> None:
    spec = explorer.spec
    notice(f"### {spec.display_name} is not available\nThe AR-VAE checkpoint could not be used: "
           f"{explorer.status['arvae'][1]}.\n\nTrain it with `python train.py --dataset {spec.key}` (or point "
           "`ARVAE_CHECKPOINTS` / `ARVAE_HUB_REPO` at trained models). The other tabs are not affected.")

