"""What a music traversal shows besides its numbers, built in worker processes
(:mod:`arvae.workers`) so that the app's own process stays free for sliders: the piano-roll figure
and the audio of every attribute's traversal (:func:`render_traversal`, each time), and their MIDI,
MusicXML and notation (:func:`traversal_scores`, only when a visitor opens that panel: engraving
and MusicXML cost more than the rest together). Each MusicXML is built once (the export's cache)
and engraved from that text by verovio."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arvae.music.audio import synthesize
from arvae.music.export import midi_bytes, musicxml_string
from arvae.music.notation import notation_svg
from arvae.music.pianoroll import music_traversal_figure


@dataclass
class TraversalMedia:
    """Per attribute l: ``audio[l]`` (sample rate, int16 samples); ``figure`` (Plotly) shows every
    traversal; ``note`` says when the audio fell back to sine waves."""

    figure: object
    audio: list
    note: str


@dataclass
class TraversalScores:
    """Per attribute l of the traversal at ``values`` along ``dims``: ``midi[l]`` (bytes),
    ``musicxml[l]`` (text), ``svg[l]`` (notation)."""

    values: np.ndarray
    dims: list
    midi: list
    musicxml: list
    svg: list


def render_traversal(explorer, decoded: np.ndarray, values, measured, dims, title: str) -> TraversalMedia:
    """The figure and audio of traversals ``decoded`` ``(L, S, 24)`` of ``explorer``'s dataset (its
    tempo and attribute names), measured ``(L, S)`` at ``values`` along ``dims``."""
    tempo = explorer.spec.input.tempo
    figure = music_traversal_figure(decoded, values, measured, explorer.spec.attribute_names, dims, title=title)
    sounds = [synthesize(measures, tempo=tempo) for measures in decoded]
    return TraversalMedia(figure=figure, audio=[audio for audio, _ in sounds],
                          note=next((note for _, note in sounds if note), ""))


def traversal_scores(explorer, kind: str, z: np.ndarray, steps: int) -> TraversalScores:
    """MIDI, MusicXML and notation of ``explorer``'s traversal of model ``kind`` around ``z``."""
    traversal = explorer.traverse(kind, z, steps)
    tempo = explorer.spec.input.tempo
    return TraversalScores(values=traversal.values, dims=traversal.dims,
                           midi=[midi_bytes(measures, tempo=tempo) for measures in traversal.decoded],
                           musicxml=[musicxml_string(measures) for measures in traversal.decoded],
                           svg=[notation_svg(measures) for measures in traversal.decoded])
