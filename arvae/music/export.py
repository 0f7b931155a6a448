"""Token measures -> music files: a music21 score (notation, MusicXML), pretty_midi (MIDI, audio;
no music21 on that hot path), MIDI bytes and MusicXML text."""
from __future__ import annotations

import functools
import io
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from arvae.music.tokens import CONTINUATION, FIRST_PITCH_TOKEN, MEASURE_TICKS, MEASURE_TWELFTHS, PITCH_LOW, REST, \
    TICK_POSITIONS_TWELFTHS, as_measures


def _segments(measure: np.ndarray):
    """(start tick, end tick, token) of every note/rest of one measure; a leading continuation is a rest."""
    starts = [0] + [t for t in range(1, MEASURE_TICKS) if measure[t] != CONTINUATION]
    ends = starts[1:] + [MEASURE_TICKS]
    return [(s, e, int(measure[s]) if measure[s] != CONTINUATION else REST) for s, e in zip(starts, ends)]


def tokens_to_stream(tokens, tempo: float | None = None):
    """Measures ``(M, 24)`` -> a music21 ``Score`` with one part of M bars in 4/4, with a treble clef
    (the tokens span G3-C6) and the key signature music21's key analysis finds (C major when the key
    is unclear), so that engravings and MusicXML exports can be read."""
    from music21 import clef, key, meter, note, pitch, stream, tempo as m21tempo

    arr = as_measures(tokens)
    score = stream.Score()
    part = stream.Part()
    part.partName = "Melody"
    for i, measure in enumerate(arr):
        bar = stream.Measure(number=i + 1)
        if i == 0:
            bar.timeSignature = meter.TimeSignature("4/4")
            if tempo:
                bar.insert(0, m21tempo.MetronomeMark(number=float(tempo)))
        for s, e, token in _segments(measure):
            ql = Fraction(int(TICK_POSITIONS_TWELFTHS[e] - TICK_POSITIONS_TWELFTHS[s]), 12)
            if token >= FIRST_PITCH_TOKEN:
                element = note.Note(pitch.Pitch(midi=token - FIRST_PITCH_TOKEN + PITCH_LOW), quarterLength=ql)
            else:
                element = note.Rest(quarterLength=ql)
            bar.append(element)
        part.append(bar)
    first = part.getElementsByClass(stream.Measure).first()
    first.insert(0, clef.TrebleClef())
    first.insert(0, key.KeySignature(analysed_sharps(arr)))
    score.insert(0, part)
    return score


KEY_CONFIDENCE = 0.7  # below this correlation a measure or two has no clear key: C major, no signature

# music21's default key analysis (``Stream.analyze("key")``: analysis.discrete.AardenEssen), its weights
AARDEN_ESSEN = np.array([
    [17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122],
    [18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623],
])  # (major, minor) x 12 pitch classes above the tonic
# key signature of (mode, tonic pitch class) as music21 spells the tonic (Pitch(pc), then the valid enharmonic)
KEY_SHARPS = np.array([[0, 7, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5],      # C C# D E- E F F# G A- A B- B major
                       [-3, 4, -1, -6, 1, -4, 3, -2, 5, 0, -5, 2]])   # c c# d e- e f f# g g# a b- b minor
_ROTATED = AARDEN_ESSEN[:, (np.arange(12)[None, :] - np.arange(12)[:, None]) % 12]  # (2, tonic, pitch class)
_ROTATED_CENTRED = _ROTATED - _ROTATED.mean(axis=2, keepdims=True)


def pitch_class_durations(tokens) -> np.ndarray:
    """Measures ``(M, 24)`` -> ``(12,)`` total duration (twelfths of a quarter) of each pitch class."""
    arr = as_measures(tokens)
    segments = [(s, e, token) for measure in arr for s, e, token in _segments(measure) if token >= FIRST_PITCH_TOKEN]
    if not segments:
        return np.zeros(12)
    starts, ends, pitch_tokens = np.array(segments).T
    durations = TICK_POSITIONS_TWELFTHS[ends] - TICK_POSITIONS_TWELFTHS[starts]
    return np.bincount((pitch_tokens - FIRST_PITCH_TOKEN + PITCH_LOW) % 12, weights=durations, minlength=12)


def analysed_sharps(tokens) -> int:
    """Sharps (negative: flats) of the key that music21's ``analyze("key")`` finds for these measures,
    when it is confident (:data:`KEY_CONFIDENCE`); 0 without notes or a clear key.

    The Krumhansl-Schmuckler method with Aarden-Essen weights, as music21 computes it: the Pearson
    correlation of the duration-weighted pitch-class histogram with each of the 24 rotated key
    profiles, the best key winning. In numpy: music21 builds a ``Key`` object for every candidate
    (~45 ms a measure, two thirds of a MusicXML export). Kept equal to music21 by a test."""
    histogram = pitch_class_durations(tokens)
    centred = histogram - histogram.mean()
    spread = np.sqrt((_ROTATED_CENTRED ** 2).sum(axis=2) * (centred ** 2).sum())   # (2, 12)
    if not spread.all():
        return 0
    correlation = (_ROTATED_CENTRED @ centred) / spread                          # (2, 12): mode x tonic
    mode, tonic = np.unravel_index(np.argmax(correlation), correlation.shape)
    return int(KEY_SHARPS[mode, tonic]) if correlation[mode, tonic] >= KEY_CONFIDENCE else 0


def tokens_to_pretty_midi(tokens, tempo: float = 120.0, program: int = 0, velocity: int = 90):
    """Measures ``(M, 24)`` -> ``pretty_midi.PrettyMIDI`` (one instrument, 4/4, constant tempo)."""
    import pretty_midi

    arr = as_measures(tokens)
    flat = arr.reshape(-1)
    n = flat.size
    index = np.arange(n)
    # twelfths of a quarter note from the start, for every tick and for the very end
    position = np.append((index // MEASURE_TICKS) * MEASURE_TWELFTHS + TICK_POSITIONS_TWELFTHS[index % MEASURE_TICKS],
                         (n // MEASURE_TICKS) * MEASURE_TWELFTHS)
    boundary = np.flatnonzero((flat != CONTINUATION) | (index % MEASURE_TICKS == 0))
    ends = np.append(boundary[1:], n)
    is_note = flat[boundary] >= FIRST_PITCH_TOKEN
    seconds_per_twelfth = 60.0 / float(tempo) / 12.0
    starts_s = position[boundary[is_note]] * seconds_per_twelfth
    ends_s = position[ends[is_note]] * seconds_per_twelfth
    pitches = flat[boundary[is_note]] - FIRST_PITCH_TOKEN + PITCH_LOW

    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    instrument = pretty_midi.Instrument(program=int(program), name="Melody")
    instrument.notes = [
        pretty_midi.Note(velocity=int(velocity), pitch=int(p), start=float(s), end=float(e))
        for p, s, e in zip(pitches.tolist(), starts_s.tolist(), ends_s.tolist())
    ]
    pm.instruments.append(instrument)
    return pm


def midi_bytes(tokens, tempo: float = 120.0, program: int = 0) -> bytes:
    """The standard MIDI file of :func:`tokens_to_pretty_midi`, as bytes."""
    buffer = io.BytesIO()
    tokens_to_pretty_midi(tokens, tempo=tempo, program=program).write(buffer)
    return buffer.getvalue()


def write_midi(tokens, path, tempo: float = 120.0, program: int = 0) -> Path:
    path = Path(path)
    path.write_bytes(midi_bytes(tokens, tempo=tempo, program=program))
    return path


def musicxml_string(tokens) -> str:
    """MusicXML text of :func:`tokens_to_stream` (cached: music21's export takes ~0.1 s, and the app
    asks for the same measures twice, for the download and for the notation)."""
    arr = as_measures(tokens)
    return _musicxml_cached(arr.astype(np.int64).tobytes(), arr.shape)


@functools.lru_cache(maxsize=64)
def _musicxml_cached(data: bytes, shape: tuple) -> str:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    tokens = np.frombuffer(data, dtype=np.int64).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xml = GeneralObjectExporter(tokens_to_stream(tokens)).parse()
    return xml.decode("utf-8")


def write_musicxml(tokens, path) -> Path:
    path = Path(path)
    path.write_text(musicxml_string(tokens), encoding="utf-8")
    return path
