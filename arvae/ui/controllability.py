"""The controllability panel (``/<key>_controllability``): is disentanglement enough for control?
Held-out inputs swept along each attribute's dim, AR-VAE beside the beta-VAE, with the Spearman
rho of the sweeps (``arvae.evaluate``'s traversal monotonicity) and the share of monotonic ones."""
from __future__ import annotations

import gradio as gr

from arvae import control, workers
from arvae.explorer import MODEL_LABEL, pretty
from arvae.figures import controllability_figure
from arvae.ui.common import HEAVY, user_errors


def controllability_panel(t) -> None:
    explorer, key = t.explorer, t.key
    n_max = min(control.CONTROL_INPUTS[1], len(explorer.samples)) if explorer.has_samples else control.CONTROL_INPUTS[0]
    with gr.Accordion("Controllability: every attribute swept on held-out inputs", open=False,
                      elem_id=f"{key}-controllability-panel"):
        gr.Markdown("Each held-out input is encoded and its attribute's dim set to each requested position from −4 to "
                    "4; the attribute is measured on every decoding. Thin lines: single inputs; bold: their median. "
                    "ρ: mean Spearman correlation of requested position and measured attribute (the evaluation's "
                    "traversal monotonicity); monotonic: the share of sweeps that never turn back.")
        with gr.Row():
            n_inputs = gr.Slider(control.CONTROL_INPUTS[0], n_max, value=min(control.DEFAULT_CONTROL_INPUTS, n_max),
                                 step=1, label="Held-out inputs")
            steps = gr.Slider(3, 17, value=9, step=1, label="Positions per sweep")
            button = gr.Button("Sweep", variant="secondary", interactive=explorer.has_samples,
                               elem_id=f"{key}-controllability-button")
        table = gr.Markdown(elem_id=f"{key}-controllability-table")
        summary = gr.JSON(label="Per model and attribute: dim, spearman, monotonic_share")
        plot = gr.Plot(label="Measured attribute vs requested position", elem_id=f"{key}-controllability")

    @user_errors("sweep the held-out inputs")
    def sweep(n_inputs: int = control.DEFAULT_CONTROL_INPUTS, steps: int = 9):
        """Sweep each attribute's latent dim from -4 to 4 on the first n_inputs held-out inputs, for
        every model, and measure the attribute on each decoding.

        Args:
            n_inputs: how many held-out inputs (default 32).
            steps: positions per sweep, 3..17 (default 9).
        Returns:
            A table, per model and attribute {"dim", "spearman", "monotonic_share"}, and the figure.
        """
        names = explorer.spec.attribute_names
        results = {MODEL_LABEL[kind]: workers.run(explorer, "arvae.control:controllability", kind, n_inputs, steps)
                   for kind in explorer.kinds}
        summaries = {label: result.summary(names) for label, result in results.items()}
        header = "| attribute | " + " | ".join(f"{m} dim | {m} ρ | {m} monotonic" for m in summaries) + " |"
        rows = [header, "|---|" + "---|---|---|" * len(summaries)]
        for name in names:
            rows.append(f"| {pretty(name)} | " + " | ".join(
                f"z[{s[name]['dim']}] | {s[name]['spearman']:+.3f} | {100 * s[name]['monotonic_share']:.0f} %"
                for s in summaries.values()) + " |")
        values = next(iter(results.values())).values
        figure = controllability_figure(values, {label: r.measured for label, r in results.items()}, summaries, names,
                                        title=f"{t.spec.display_name}: {len(next(iter(results.values())).rho[0])} "
                                              "held-out inputs")
        return "\n".join(rows), {label: summary for label, summary in summaries.items()}, figure

    button.click(sweep, [n_inputs, steps], [table, summary, plot], api_name=f"{key}_controllability", **HEAVY)
