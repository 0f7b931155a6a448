"""The attribute pad (``/<key>_pad``): two attributes, a plane over their dims through the current
code drawn as thumbnails (pictures, or small piano rolls) beside heatmaps of both measured
attributes; a click on the pad decodes that point, shows it and (music) plays it."""
from __future__ import annotations

import gradio as gr

from arvae import control, workers
from arvae.explorer import MODEL_LABEL, check_kind, format_z, parse_z, pretty
from arvae.figures import pad_figure
from arvae.ui.common import HEAVY, user_errors
from arvae.ui.features import decoded_components, show_decoded


def pad_panel(t) -> None:
    explorer, key = t.explorer, t.key
    names = list(t.spec.attribute_names)
    with gr.Accordion("Attribute pad: two attributes at once", open=False, elem_id=f"{key}-pad-panel"):
        gr.Markdown("A plane over the dims of two attributes through the current code (x: the first, y: the "
                    "second, −4…4). Click the pad to decode that point; the red ring marks the code shown.")
        with gr.Row():
            attribute_x = gr.Dropdown([(pretty(n), n) for n in names], value=names[0], label="Attribute (x)")
            attribute_y = gr.Dropdown([(pretty(n), n) for n in names], value=names[1], label="Attribute (y)")
            resolution = gr.Slider(*control.PAD_RESOLUTIONS, value=7, step=1, label="Points per axis")
            draw = gr.Button("Draw the pad", variant="secondary", elem_id=f"{key}-pad-button")
        pad_x = gr.Number(label="x", visible=False)
        pad_y = gr.Number(label="y", visible=False)
        with gr.Row(equal_height=False):
            picture = gr.Image(label="Pad (click a point)", interactive=False, format="png", show_label=True,
                               elem_classes=["pixelated"], elem_id=f"{key}-pad")
            with gr.Column():
                shown = decoded_components(t, "Decoded at the clicked point", autoplay=True)
                table = gr.Markdown(elem_id=f"{key}-pad-info")
                code = gr.Textbox(label="Code of the clicked point", max_lines=2, elem_id=f"{key}-pad-z")
        heatmaps = gr.Plot(label="Measured attributes over the pad", elem_id=f"{key}-pad-heatmap")
    outputs = [picture, heatmaps, *shown, table, code, pad_x, pad_y]

    @user_errors("draw the attribute pad")
    def pad(model: str, z: str, attribute_x: str, attribute_y: str, x: float | None, y: float | None,
            resolution: int):
        """Decode the point (x, y) of the attribute pad: the current code z with the latent dims of
        attribute_x and attribute_y set to x and y.

        Args:
            model: "arvae" or "beta-vae" (the beta-VAE uses each attribute's highest-MI dim).
            z: the current latent code, a JSON list of numbers.
            attribute_x: the attribute on the pad's x axis.
            attribute_y: the attribute on the pad's y axis (its dim must differ from attribute_x's).
            x: position on attribute_x's dim, -4..4; empty: the value in z.
            y: position on attribute_y's dim, -4..4; empty: the value in z.
            resolution: points per pad axis, 3..11.
        Returns:
            The pad picture with the point marked, heatmaps of both measured attributes, the decoded
            point, its measured attributes, its code, and x, y.
        """
        kind, base = check_kind(model), parse_z(z, explorer.latent_dim)
        grid = workers.run(explorer, "arvae.control:pad", kind, base, attribute_x, attribute_y, resolution)
        dim_x, dim_y = grid.dims
        point = control.pad_code(explorer, kind, base, attribute_x, attribute_y,
                                 base[dim_x] if x is None else x, base[dim_y] if y is None else y)
        decoded = explorer.decode(kind, point)
        marker = (float(point[dim_x]), float(point[dim_y]))
        title = f"{MODEL_LABEL[kind]}: {pretty(attribute_x)} · z[{dim_x}] × {pretty(attribute_y)} · z[{dim_y}]"
        return [control.pad_picture(grid, marker), pad_figure(grid, marker, title=title), *show_decoded(t, kind, point, decoded),
                explorer.attribute_table({"decoded (measured)": explorer.measure(decoded)[0]}, kind),
                format_z(point), *marker]

    @user_errors("pick the point of the pad")
    def clicked(model, z, attribute_x, attribute_y, resolution, event: gr.SelectData):
        grid = control.pad(explorer, check_kind(model), z, attribute_x, attribute_y, resolution)
        x, y = control.pad_position(grid, event.index)
        return pad(model, z, attribute_x, attribute_y, x, y, resolution)

    inputs = [t.model, t.z_box, attribute_x, attribute_y, pad_x, pad_y, resolution]
    draw.click(lambda: (None, None), None, [pad_x, pad_y], api_visibility="private", queue=False).then(
        pad, inputs, outputs, api_name=f"{key}_pad", **HEAVY)
    picture.select(clicked, [t.model, t.z_box, attribute_x, attribute_y, resolution], outputs,
                   api_visibility="private", **HEAVY)
