"""The music view of a tab: held-out measures, MIDI / MusicXML / ABC uploads, piano rolls, audio,
notation and downloads, and the traversals of Fig. 11. Tempo and upload reading come from the
registry (``spec.input``)."""
from __future__ import annotations

import json

import gradio as gr
import numpy as np

from arvae import workers
from arvae.explorer import MODEL_LABEL, SPAN, check_kind, format_z, parse_measures, parse_z, pretty, whole_number
from arvae.music.audio import synthesize
from arvae.music.export import midi_bytes, musicxml_string
from arvae.music.file_import import SUPPORTED_EXTENSIONS
from arvae.music.notation import notation_svg
from arvae.music.pianoroll import piano_roll_figure
from arvae.music.tokens import FIRST_PITCH_TOKEN, MEASURE_TICKS, PITCH_HIGH, PITCH_LOW
from arvae.ui.common import HEAVY, LIGHT, PRIVATE, QUIET, attribute_controls, output_file, payload_path, sound_file, \
    user_errors


FULL_RANGE = (PITCH_LOW, PITCH_HIGH)  # one pitch axis for every edit, so before and after compare


IMPORT_FAILED = ("⚠️ That file could not be imported (the error message says why); the measures shown are "
                 "the ones you had before.")


def warning(note: str) -> str:
    return f"⚠️ {note}" if note else ""


class MusicView:
    sliders_heading = "### Edit the measure"
    advanced_label = "Advanced: the latent code, the decoded tokens, the prior seed"
    steps_label = "Measures per traversal"
    input_noun = "a measure"
    dim_sliders = False
    decode_after_encode = True
    preprocess_source = True
    traverse_queue = HEAVY

    def __init__(self, explorer):
        self.explorer = explorer
        self.tempo = explorer.spec.input.tempo

    def intro(self, spec) -> str:
        names = [pretty(n) for n in spec.attribute_names]
        figure = spec.paper_figures.get("traversal")
        return (f"**Start here:** a held-out measure is already loaded; press ▶ to hear it. Drag the sliders beside "
                f"*Decoded measure* to change its {', '.join(names[:-1])} and {names[-1]}, then listen again. Pick "
                f"another measure or upload a MIDI / MusicXML / ABC file. Below, every attribute is traversed along "
                f"its latent dim{f' (paper Fig. {figure})' if figure else ''}.")

    def traversal_heading(self, spec) -> str:
        figure = spec.paper_figures.get("traversal")
        return (f"### Traversals{f' (Fig. {figure})' if figure else ''}\nFor each attribute, measures decoded as "
                f"its dim goes from −{SPAN:g} to {SPAN:g} (others fixed), and the attribute measured on each.")

    # ------------------------------------------------------------------ layout
    def input_panel(self, t) -> None:
        ex, key = self.explorer, t.key
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                choices = [(ex.describe(i), i) for i in range(len(ex.samples))] if ex.has_samples else []
                t.sample = gr.Dropdown(choices, value=None, label="Held-out measure", interactive=ex.has_samples,
                                       elem_id=f"{key}-sample")
                with gr.Row():
                    t.random = gr.Button("Random measure", interactive=ex.has_samples, min_width=100)
                    t.prior = gr.Button("Sample from prior", min_width=100)
                t.upload = gr.File(label="…or upload MIDI / MusicXML / ABC", height=130, elem_id=f"{key}-upload",
                                   file_types=list(SUPPORTED_EXTENSIONS))
                t.import_md = gr.Markdown(label="Import messages", elem_id=f"{key}-import-messages")
                t.measure = gr.Dropdown([], label="Measure of the uploaded file", interactive=True, visible=True)
                t.imported = gr.Textbox(label="Imported measures (JSON, M x 24 tokens)", visible=False)
            with gr.Column(scale=2, min_width=320):
                t.input_plot = gr.Plot(label="Input measure", elem_id=f"{key}-input-roll")
                t.input_audio = gr.Audio(label="Input measure", interactive=False, elem_id=f"{key}-input-audio")
        t.source = gr.Textbox(label="Input measure tokens (24 per measure; see README)", interactive=False,
                              max_lines=2, elem_id=f"{key}-tokens", render=False)

    def edit_panel(self, t) -> None:
        with gr.Row(equal_height=False, elem_classes=["arvae-edit-row"]):
            with gr.Column(scale=3, min_width=320, elem_id=f"{t.key}-edit"):
                plot = gr.Plot(label="Decoded measure", elem_id=f"{t.key}-edit-roll",
                               elem_classes=["arvae-sticky"])  # on phones, stays over the sliders
                audio = gr.Audio(label="Decoded measure", interactive=False, elem_id=f"{t.key}-edit-audio")
                notation = gr.HTML(label="Notation (SVG)", elem_classes=["arvae-notation"],
                                   elem_id=f"{t.key}-edit-notation")
            with gr.Column(scale=2, min_width=300, elem_classes=["arvae-controls"]):
                attribute_controls(t, self.sliders_heading)
                info = gr.Markdown(label="Measured attributes")
                files = gr.File(label="Download (MIDI, MusicXML)", file_count="multiple", interactive=False)
        t.decoded_tokens = gr.Textbox(label="Decoded measure tokens", interactive=False, max_lines=2, render=False)
        t.decoded_outputs = [t.decoded_tokens, plot, audio, notation, files, info]

    def advanced_panel(self, t) -> None:
        t.source.render()
        t.decoded_tokens.render()

    def traversal_panel(self, t) -> None:
        roll = gr.Plot(label="Piano rolls and measured attributes", elem_id=f"{t.key}-traversal")
        with gr.Row():
            audios = [gr.Audio(label=f"Play: {pretty(n)} traversal", interactive=False, min_width=260,
                               elem_id=f"{t.key}-audio-{n}") for n in t.spec.attribute_names]
        info = gr.Markdown(label="Notes")
        # notation and files cost more than the rest of a traversal: made when this panel is open
        with gr.Accordion("Notation and downloads of the traversals", open=False,
                          elem_id=f"{t.key}-scores-panel") as t.scores_panel:
            files = gr.File(label="MIDI and MusicXML of every traversal", file_count="multiple", interactive=False)
            notation = gr.HTML(label="Notation of the traversals (SVG)", elem_classes=["arvae-notation"],
                               elem_id=f"{t.key}-traversal-notation")
        t.scores_outputs = [files, notation]
        t.scores_open = gr.State(False)
        t.traversed_z = gr.Textbox(label="Latent code of the traversal", visible=False)
        t.traversal_outputs = [roll, *audios, info, t.traversed_z]

    # ------------------------------------------------------------------ showing results
    def encode_outputs(self, t):
        return [t.z_box, t.input_plot, t.input_audio]

    def files(self, stem: str, measures) -> list[str]:
        return [output_file(f"{stem}.mid", midi_bytes(measures, tempo=self.tempo)),
                output_file(f"{stem}.musicxml", musicxml_string(measures))]

    @user_errors("encode the measure")
    def encode(self, tokens, model):
        ex, kind = self.explorer, check_kind(model)
        measure = parse_measures(tokens)
        if len(measure) != 1:
            raise ValueError(f"encode takes one measure of {MEASURE_TICKS} tokens, got {len(measure)} measures")
        z = ex.encode(kind, measure[0])
        audio, _ = synthesize(measure, tempo=self.tempo)
        values = [f"{pretty(n)} {v:.2f}" for n, v in zip(ex.spec.attribute_names, ex.measure(measure)[0])]
        title = dict(text=" · ".join(values[:2]) + "<br>" + " · ".join(values[2:]), font=dict(size=12))
        return (format_z(z), piano_roll_figure(measure, title=title, height=260, pitch_range=FULL_RANGE),
                sound_file(f"{ex.spec.key}_input", audio), z)

    def show_decoded(self, t, kind, code, measure):
        ex = self.explorer
        audio, note = synthesize(measure, tempo=self.tempo)
        dims, _ = ex.attribute_dims(kind)
        table = ex.attribute_table({"slider (z)": code[dims], "measured": ex.measure(measure)[0]}, kind)
        return (json.dumps(measure[0].tolist()), piano_roll_figure(measure, height=260, pitch_range=FULL_RANGE),
                sound_file(f"{t.key}_{kind}_decoded", audio),
                f"<div>{notation_svg(measure)}</div>", self.files(f"{t.key}_{kind}_measure", measure),
                table + ("\n\n" + warning(note) if note else ""))

    def show_traversal(self, t, kind, traversal):
        media = workers.run(self.explorer, "arvae.music.media:render_traversal", traversal.decoded, traversal.values,
                            traversal.measured, traversal.dims, f"{MODEL_LABEL[kind]} traversals")  # in a worker
        audios = [sound_file(f"{t.key}_{kind}_traversal_{name}", media.audio[l])
                  for l, name in enumerate(t.spec.attribute_names)]
        return [media.figure, *audios, warning(media.note), format_z(traversal.code)]

    def show_scores(self, t, kind, z, steps):
        """The MIDI and MusicXML files and the notation of the traversal around ``z``."""
        scores = workers.run(self.explorer, "arvae.music.media:traversal_scores", kind, z, steps)
        values, files, sections = scores.values, [], []
        for l, name in enumerate(t.spec.attribute_names):
            stem = f"{t.key}_{kind}_traversal_{name}_z{scores.dims[l]}"
            files += [output_file(f"{stem}.mid", scores.midi[l]), output_file(f"{stem}.musicxml", scores.musicxml[l])]
            sections.append(f"<h4>{pretty(name)}: z[{scores.dims[l]}] from {values[0]:+.1f} to {values[-1]:+.1f}</h4>"
                            + scores.svg[l])
        return files, "".join(sections)

    # ------------------------------------------------------------------ wiring
    def wire_inputs(self, t) -> None:
        ex, key = self.explorer, t.key

        @user_errors("load the held-out measure")
        def example(index):
            if index is None and ex.has_samples:  # the menu was cleared (an upload took over)
                return gr.skip()
            return json.dumps(ex.example(index).tolist())

        @user_errors("sample from the prior")
        def prior(model, seed):
            kind = check_kind(model)
            return json.dumps(ex.decode(kind, ex.prior_code(seed))[0].tolist())

        @user_errors("import the music file")
        def import_music(file):
            result = workers.run(ex, "prepare_upload", payload_path(file), budget=workers.IMPORT)
            bars = result.bar_numbers or list(range(1, len(result.tokens) + 1))
            choices = [(f"measure {i + 1} (bar {bar})", i) for i, bar in enumerate(bars)]
            messages = "\n".join(f"- {m}" for m in result.messages)
            return messages, json.dumps(result.tokens.tolist()), gr.update(choices=choices, value=0)

        @user_errors("pick the measure")
        def pick_imported(measures, index):
            arr = parse_measures(measures)
            index = 0 if index is None else whole_number(index, "the measure index", 0, len(arr) - 1)
            return json.dumps(arr[index].tolist())

        def random_other(current):
            n = len(ex.samples)
            pick = int(np.random.default_rng().integers(n))
            return (pick + 1) % n if n > 1 and current is not None and pick == int(current) else pick

        def first_visit(tokens):
            """Open the tab on a representative held-out measure (one with a few notes)."""
            if tokens or not ex.has_samples:
                return gr.skip()
            notes = (ex.samples.inputs >= FIRST_PITCH_TOKEN).sum(axis=1)
            return int(np.argmax(notes >= 4)) if (notes >= 4).any() else 0

        t.sample.change(example, t.sample, t.source, api_name=f"{key}_example", **LIGHT)
        t.random.click(random_other, t.sample, t.sample, **PRIVATE)
        t.prior.click(prior, [t.model, t.seed], t.source, api_name=f"{key}_prior", **LIGHT)
        # a bad file leaves the previous measures as they were (no "Error" over them), says why in a
        # toast and here, and empties the upload box
        imported = t.upload.upload(lambda: "Reading the file…", None, t.import_md, **QUIET).then(
            import_music, t.upload, [t.import_md, t.imported, t.measure], api_name=f"{key}_import",
            show_progress="hidden", **HEAVY)
        imported.success(pick_imported, [t.imported, t.measure], t.source, **PRIVATE).success(
            lambda: None, None, t.sample, **PRIVATE)
        imported.failure(lambda: (None, IMPORT_FAILED, gr.update()), None, [t.upload, t.import_md, t.measure],
                         **PRIVATE)  # answering the menu too clears Gradio's "Error" from it
        t.measure.input(pick_imported, [t.imported, t.measure], t.source, **PRIVATE)
        t.first_visit = (first_visit, t.source, t.sample)

    def wire_extras(self, t) -> None:
        D = self.explorer.latent_dim

        @user_errors("write the notation and files of the traversals")
        def scores(model, z, steps):
            if not z:
                raise ValueError("there is no traversal yet: load a measure or press Traverse")
            return self.show_scores(t, check_kind(model), parse_z(z, D), steps)

        def scores_if_open(is_open, model, z, steps):
            return scores(model, z, steps) if is_open else (gr.skip(), gr.skip())

        inputs = [t.model, t.traversed_z, t.steps]
        t.scores_panel.expand(lambda: True, None, t.scores_open, **QUIET).then(
            scores, inputs, t.scores_outputs, api_name=f"{t.key}_traversal_scores", **HEAVY)
        t.scores_panel.collapse(lambda: False, None, t.scores_open, **QUIET)
        for traversed in t.traversed:
            traversed.success(scores_if_open, [t.scores_open, *inputs], t.scores_outputs, api_visibility="private",
                              **HEAVY)
