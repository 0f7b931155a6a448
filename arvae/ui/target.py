"""Set an attribute to a value (``/<key>_set_attribute``) and measure a code (``/<key>_measure``):
the search of :func:`arvae.control.set_attribute`, its report, and the decoded result."""
from __future__ import annotations

import gradio as gr

from arvae import control
from arvae.explorer import check_kind, format_z, parse_z, pretty
from arvae.ui.common import LIGHT, user_errors
from arvae.ui.features import decoded_components, show_decoded


def target_panel(t) -> None:
    explorer, key = t.explorer, t.key
    names = list(t.spec.attribute_names)
    with gr.Accordion("Set an attribute to a value", open=False, elem_id=f"{key}-target-panel"):
        gr.Markdown("Type the value the decoded output should measure; the attribute's dim is searched (bisection, "
                    "then a local check) from the current code. Tolerance empty: 5 % of the attribute's spread "
                    "over the held-out sample.")
        with gr.Row():
            attribute = gr.Dropdown([(pretty(n), n) for n in names], value=names[0], label="Attribute")
            target = gr.Number(label="Target value", elem_id=f"{key}-target-value")
            tolerance = gr.Number(label="Tolerance (empty: default)", value=None)
            button = gr.Button("Set", variant="secondary", elem_id=f"{key}-target-button")
        with gr.Row(equal_height=False):
            with gr.Column():
                report = gr.Markdown(elem_id=f"{key}-target-report")
                result = gr.JSON(label="Search result")
                code = gr.Textbox(label="Code found", max_lines=2)
            with gr.Column():
                shown = decoded_components(t, "Decoded at the code found")

    @user_errors("set the attribute")
    def set_attribute(model: str, z: str, attribute: str, target: float, tolerance: float | None = None):
        """Find a latent code whose decoding measures `target` for `attribute`: the attribute's dim of
        z is searched by bisection (AR-VAE makes it monotonic), then checked locally.

        Args:
            model: "arvae" or "beta-vae".
            z: the latent code to start from, a JSON list of numbers.
            attribute: the attribute to set (see the dataset's attribute names).
            target: the value the decoded output should measure.
            tolerance: how close is close enough; empty: 5 % of the attribute's spread over the held-out sample.
        Returns:
            A report, the search result (reached, value, target, tolerance, decodes, dim, reach: the
            values at z[dim] = -4 and +4), the code found and its decoding. A target outside what the
            model reaches from z is refused (reached false) with the range it reaches.
        """
        kind = check_kind(model)
        found = control.set_attribute(explorer, kind, z, attribute, target, tolerance)
        summary = {"reached": found.reached, "attribute": attribute, "value": found.value, "target": found.target,
                   "tolerance": found.tolerance, "decodes": found.decodes, "dim": found.dim,
                   "reach": list(found.reach), "message": found.message}
        report_text = ("✅ " if found.reached else "⚠️ Not reached: ") + found.message
        return [report_text, summary, format_z(found.code), *show_decoded(t, kind, found.code, explorer.decode(kind, found.code))]

    def measure(model: str, z: str) -> dict:
        """Decode a latent code and measure every attribute on the decoded output.

        Args:
            model: "arvae" or "beta-vae".
            z: the latent code, a JSON list of numbers.
        Returns:
            attribute name -> measured value (None where undefined, e.g. a blank digit).
        """
        try:
            kind, code = check_kind(model), parse_z(z, explorer.latent_dim)
            values = explorer.measure(explorer.decode(kind, code))[0]
        except ValueError as error:
            raise gr.Error(f"Could not measure the code: {error}", print_exception=False) from None
        return {name: (float(v) if v == v else None) for name, v in zip(names, values)}

    button.click(set_attribute, [t.model, t.z_box, attribute, target, tolerance], [report, result, code, *shown],
                 api_name=f"{key}_set_attribute", **LIGHT)
    gr.api(measure, api_name=f"{key}_measure", **LIGHT)
