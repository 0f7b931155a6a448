"""What a music traversal shows besides its numbers -- the piano-roll figure, the audio, the MIDI
and MusicXML files and the notation of every attribute's traversal -- built in one pass, so that
the app runs it in a worker process (:mod:`arvae.workers`) and its own process stays free for
sliders. Each MusicXML is built once (the export's cache) and engraved from that text by verovio."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arvae.music.audio import synthesize
from arvae.music.export import midi_bytes, musicxml_string
from arvae.music.notation import notation_svg
from arvae.music.pianoroll import music_traversal_figure


@dataclass
class TraversalMedia:
    """Per attribute l: ``audio[l]`` (sample rate, int16 samples), ``midi[l]`` (bytes),
    ``musicxml[l]`` (text), ``svg[l]`` (notation); ``figure`` (Plotly) shows them all; ``note``
    says when the audio fell back to sine waves."""

    figure: object
    audio: list
    midi: list
    musicxml: list
    svg: list
    note: str


def render_traversal(explorer, decoded: np.ndarray, values, measured, dims, title: str) -> TraversalMedia:
    """The media of traversals ``decoded`` ``(L, S, 24)`` of ``explorer``'s dataset (its tempo and
    attribute names), measured ``(L, S)`` at ``values`` along ``dims``."""
    tempo = explorer.spec.input.tempo
    figure = music_traversal_figure(decoded, values, measured, explorer.spec.attribute_names, dims, title=title)
    sounds = [synthesize(measures, tempo=tempo) for measures in decoded]
    return TraversalMedia(figure=figure, audio=[audio for audio, _ in sounds],
                          midi=[midi_bytes(measures, tempo=tempo) for measures in decoded],
                          musicxml=[musicxml_string(measures) for measures in decoded],
                          svg=[notation_svg(measures) for measures in decoded],
                          note=next((note for _, note in sounds if note), ""))
