"""Whole melodies (``/<key>_melody``, music datasets): up to 32 measures from the held-out sample or
an upload, attribute curves over the bars, the edited melody as one piano roll before/after, one
audio file, MIDI and MusicXML."""
from __future__ import annotations

import json

import gradio as gr

from arvae import melody, workers
from arvae.explorer import MODEL_LABEL, check_kind, whole_number
from arvae.figures import melody_curves_figure
from arvae.music.audio import synthesize
from arvae.music.export import midi_bytes, musicxml_string
from arvae.music.file_import import SUPPORTED_EXTENSIONS
from arvae.music.pianoroll import before_after_figure
from arvae.ui.common import HEAVY, LIGHT, output_file, payload_path, user_errors

EXAMPLE_CURVES = '{"note_density": [-2, 2]}'


def melody_panel(t) -> None:
    explorer, key, tempo = t.explorer, t.key, t.spec.input.tempo
    n = len(explorer.samples) if explorer.has_samples else 0
    with gr.Accordion("Whole melodies: attribute curves over the bars", open=False, elem_id=f"{key}-melody-panel"):
        gr.Markdown(f"Up to {melody.MAX_MEASURES} measures are encoded one by one; a curve sets an attribute's dim "
                    "bar by bar: `{\"note_density\": [-2, 2]}` goes from −2 at the first bar to 2 at the last, a list "
                    "with one value per bar sets each; attributes without a curve keep their encoded values.")
        with gr.Row():
            start = gr.Number(label="First held-out measure #", value=0, precision=0, minimum=0,
                              maximum=max(n - 1, 0), interactive=bool(n))
            count = gr.Slider(1, melody.MAX_MEASURES, value=16, step=1, label="Measures")
            load = gr.Button("Load held-out melody", interactive=bool(n), elem_id=f"{key}-melody-load")
            upload = gr.File(label="…or upload MIDI / MusicXML / ABC", height=90, file_types=list(SUPPORTED_EXTENSIONS),
                             elem_id=f"{key}-melody-upload")
        messages = gr.Markdown()
        tokens = gr.Textbox(label="Melody (JSON, M × 24 tokens)", max_lines=3, elem_id=f"{key}-melody-tokens")
        curves = gr.Textbox(label="Attribute curves (JSON; positions on each attribute's dim, −4…4)",
                            value=EXAMPLE_CURVES, max_lines=3, elem_id=f"{key}-melody-curves")
        button = gr.Button("Decode the melody", variant="primary", elem_id=f"{key}-melody-button")
        report = gr.Markdown(elem_id=f"{key}-melody-report")
        roll = gr.Plot(label="Before / after", elem_id=f"{key}-melody-roll")
        with gr.Row(equal_height=False):
            audio = gr.Audio(label="The edited melody", interactive=False, elem_id=f"{key}-melody-audio")
            files = gr.File(label="Download (MIDI, MusicXML)", file_count="multiple", interactive=False)
        curves_plot = gr.Plot(label="Requested curve and measured attribute per bar", elem_id=f"{key}-melody-curves-plot")
        edited = gr.Textbox(label="Edited melody (JSON tokens)", max_lines=3, interactive=False)

    @user_errors("load the held-out melody")
    def example(first, count):
        first = whole_number(first, "the first measure", 0, n - 1)
        count = whole_number(count, "the number of measures", 1, melody.MAX_MEASURES)
        return json.dumps(explorer.samples.inputs[first:first + count].tolist())

    @user_errors("import the melody")
    def import_melody(file):
        result = workers.run(explorer, "prepare_upload", payload_path(file), budget=workers.IMPORT)
        kept = result.tokens[:melody.MAX_MEASURES]
        notes = result.messages + ([f"Kept the first {melody.MAX_MEASURES} of {len(result.tokens)} measures."]
                                   if len(result.tokens) > melody.MAX_MEASURES else [])
        return "\n".join(f"- {m}" for m in notes), json.dumps(kept.tolist())

    @user_errors("decode the melody")
    def edit(model: str, measures: str, curves: str):
        """Encode a melody measure by measure, set attribute curves over its bars, decode it.

        Args:
            model: "arvae" or "beta-vae".
            measures: the melody, a JSON list of up to 32 measures of 24 tokens.
            curves: JSON object attribute -> [start, end] or one position per bar, on the attribute's dim (-4..4).
        Returns:
            A table of requested and measured values, the before/after piano roll, one WAV of the edited
            melody, its MIDI and MusicXML files, the curves figure and the edited tokens.
        """
        kind = check_kind(model)
        result = workers.run(explorer, "arvae.melody:edit_melody", kind, measures, curves)
        sound, note = synthesize(result.edited, tempo=tempo)
        stem = f"{key}_{kind}_melody"
        downloads = [output_file(f"{stem}.mid", midi_bytes(result.edited, tempo=tempo)),
                     output_file(f"{stem}.musicxml", musicxml_string(result.edited))]
        title = f"{MODEL_LABEL[kind]}: {len(result.edited)} measures"
        return (melody.curve_table(explorer, result) + (f"\n\n⚠️ {note}" if note else ""),
                before_after_figure(result.original, result.edited, title=title), sound, downloads,
                melody_curves_figure(result, explorer.spec.attribute_names, title=title),
                json.dumps(result.edited.tolist()))

    load.click(example, [start, count], tokens, api_name=f"{key}_melody_example", **LIGHT)
    upload.upload(import_melody, upload, [messages, tokens], api_name=f"{key}_melody_import", **HEAVY)
    button.click(edit, [t.model, tokens, curves], [report, roll, audio, files, curves_plot, edited],
                 api_name=f"{key}_melody", **HEAVY)
