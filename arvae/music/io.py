"""Conversion between token measures and music files.

Writing: :func:`tokens_to_stream` (music21, for notation and MusicXML), :func:`tokens_to_pretty_midi`,
:func:`write_midi` and :func:`midi_bytes` (pretty_midi only -- no music21 on that hot path) and
:func:`write_musicxml`.

Reading: :func:`import_file` turns a MIDI, MusicXML or ABC file into measures of tokens. The bar
conversion itself lives in one place, :func:`measures_from_events`; :func:`measures_from_stream`
(music21 scores: MusicXML, ABC, the corpora of :mod:`arvae.data.music`) and
:func:`measures_from_pretty_midi` (MIDI) only collect notes and bar windows for it.

Conversion rules: only bars in 4/4 (or 2/2, the same 4 quarter notes -- see :data:`ACCEPTED_METERS`)
are taken; a bar with a note starting or ending off the 24-tick grid is skipped (notated formats;
MIDI, being performance data, is snapped to the nearest tick instead); when several notes sound at
once the highest one is taken (the top line); a note tied over the bar line is re-articulated at
the start of the next bar; tied notes inside a bar are merged; grace notes, chord symbols and
unpitched (drum) notes are ignored; an incomplete first bar (pick-up) is padded with a rest at the
front, an incomplete last bar with a rest at the end, two incomplete bars that add up to a full bar
(a bar split by a repeat sign) are read as one, and other incomplete bars are skipped; bars without
any note are skipped.
"""
from __future__ import annotations

import functools
import io
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from arvae.music.tokens import (
    CONTINUATION,
    FIRST_PITCH_TOKEN,
    MEASURE_TICKS,
    MEASURE_TWELFTHS,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    TICK_POSITIONS_TWELFTHS,
    TICKS_PER_BEAT,
    as_measures,
    midi_name,
    positions_to_ticks,
)

ACCEPTED_METERS = ("4/4", "2/2")  # both are bars of 4 quarter notes; 2/2 (cut time) is common in folk reels
BAR_QUARTERS = 4.0
GRID_CONTINUATION = -1  # codes of the pitch grid (MIDI pitches elsewhere), see ExtractedMeasures
GRID_REST = -2
MIDI_EXTENSIONS = (".mid", ".midi")
MUSICXML_EXTENSIONS = (".xml", ".musicxml", ".mxl")
ABC_EXTENSIONS = (".abc",)
SUPPORTED_EXTENSIONS = MIDI_EXTENSIONS + MUSICXML_EXTENSIONS + ABC_EXTENSIONS
MAX_MUSIC_BYTES = 2 * 1024 * 1024  # larger files are refused: parsing them would hold a worker for minutes
MAX_MXL_UNPACKED_BYTES = 16 * 1024 * 1024  # compressed MusicXML: refuse zip bombs before unpacking
_EPS = 1e-4


class MusicImportError(ValueError):
    """A file could not be turned into measures; the message says why, in plain words."""


@dataclass
class ImportResult:
    tokens: np.ndarray  # int64 (M, 24)
    messages: list[str]
    bar_numbers: list = field(default_factory=list)  # the source bar of each measure


@dataclass
class ExtractedMeasures:
    """Bars of one piece, before fitting into the vocabulary's pitch range.

    ``grid``: int16 ``(M, 24)``, the MIDI pitch at note onsets, :data:`GRID_CONTINUATION` and
    :data:`GRID_REST` elsewhere. ``skipped``: reason -> number of bars (``"meter"``, ``"off_grid"``,
    ``"incomplete"``, ``"empty"``); ``skipped_meters``: meter -> number of bars skipped for it.
    """

    grid: np.ndarray
    bar_numbers: list
    total_bars: int
    skipped: Counter
    skipped_meters: Counter
    pitched_notes: int
    unpitched_notes: int
    parts_used: int = 1


# ----------------------------------------------------------------------------------------- writing

def _segments(measure: np.ndarray):
    """(start tick, end tick, token) of every note/rest of one measure; a leading continuation is a rest."""
    starts = [0] + [t for t in range(1, MEASURE_TICKS) if measure[t] != CONTINUATION]
    ends = starts[1:] + [MEASURE_TICKS]
    return [(s, e, int(measure[s]) if measure[s] != CONTINUATION else REST) for s, e in zip(starts, ends)]


def tokens_to_stream(tokens, tempo: float | None = None):
    """Measures ``(M, 24)`` -> a music21 ``Score`` with one part of M bars in 4/4."""
    from music21 import meter, note, pitch, stream, tempo as m21tempo

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
    score.insert(0, part)
    return score


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


# ------------------------------------------------------------------------------ bars <-> the grid

@dataclass
class BarWindow:
    start: float  # offset (quarter notes) of the bar's tick 0
    number: object  # the source bar number, for messages
    skip: str | None = None  # reason to skip the bar, or None
    meter: str = "4/4"


def measures_from_events(starts, ends, pitches, windows: list[BarWindow], *, pitched_notes: int | None = None,
                         unpitched_notes: int = 0, parts_used: int = 1) -> ExtractedMeasures:
    """The bar conversion: notes (start/end in quarter notes, MIDI pitch; any polyphony) and the bars
    of a piece -> :class:`ExtractedMeasures` holding the top line of every usable bar. Bars with a
    note boundary off the tick grid are skipped (snap performance data first, see :func:`snap_to_grid`).
    """
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    pitches = np.asarray(pitches, dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts, ends, pitches = starts[order], ends[order], pitches[order]
    skipped: Counter = Counter()
    skipped_meters: Counter = Counter()
    rows, numbers = [], []
    ticks = np.arange(MEASURE_TICKS)
    for window in windows:
        if window.skip:
            skipped[window.skip] += 1
            if window.skip == "meter":
                skipped_meters[window.meter] += 1
            continue
        w0, w1 = window.start, window.start + BAR_QUARTERS
        lo = np.searchsorted(starts, w1 - _EPS, side="left")
        sel = np.flatnonzero(ends[:lo] > w0 + _EPS)
        row = np.full(MEASURE_TICKS, GRID_CONTINUATION, dtype=np.int16)
        if sel.size:
            rel_start = np.maximum(starts[sel] - w0, 0.0)
            rel_end = np.minimum(ends[sel] - w0, BAR_QUARTERS)
            twelfths = np.concatenate([rel_start, rel_end]) * 12.0
            rounded = np.round(twelfths)
            tick = positions_to_ticks(rounded.astype(np.int64))
            if np.any(np.abs(twelfths - rounded) > 1e-3) or np.any(tick < 0):
                skipped["off_grid"] += 1
                continue
            s_tick, e_tick, p = tick[:sel.size], tick[sel.size:], pitches[sel]
            keep = e_tick > s_tick
            s_tick, e_tick, p = s_tick[keep], e_tick[keep], p[keep]
        else:
            s_tick = e_tick = p = np.zeros(0, dtype=np.int64)
        if len(p) == 0:
            skipped["empty"] += 1
            continue
        # skyline: the highest sounding note; among equal pitches the latest onset
        active = (s_tick[:, None] <= ticks[None, :]) & (ticks[None, :] < e_tick[:, None])
        score = np.where(active, p[:, None] * 64 + s_tick[:, None], -1)
        best = score.max(axis=0)
        sounding = best >= 0
        changed = np.ones(MEASURE_TICKS, dtype=bool)
        changed[1:] = best[1:] != best[:-1]
        onset = sounding & changed
        rest_start = ~sounding & np.concatenate([[True], sounding[:-1]])
        row[onset] = best[onset] // 64
        row[rest_start] = GRID_REST
        rows.append(row)
        numbers.append(window.number)
    grid = np.stack(rows) if rows else np.zeros((0, MEASURE_TICKS), dtype=np.int16)
    return ExtractedMeasures(
        grid=grid,
        bar_numbers=numbers,
        total_bars=len(windows),
        skipped=skipped,
        skipped_meters=skipped_meters,
        pitched_notes=len(pitches) if pitched_notes is None else pitched_notes,
        unpitched_notes=unpitched_notes,
        parts_used=parts_used,
    )


def _bar_windows(bars, meters) -> list[BarWindow]:
    """bars: list of (offset, length, meter string, number) in order -> bar windows of 4 quarters."""
    windows = []
    i, n = 0, len(bars)
    while i < n:
        offset, length, meter_str, number = bars[i]
        if meter_str not in meters:
            windows.append(BarWindow(offset, number, "meter", meter_str))
        elif abs(length - BAR_QUARTERS) < _EPS:
            windows.append(BarWindow(offset, number))
        elif length < BAR_QUARTERS:
            nxt = bars[i + 1] if i + 1 < n else None
            if i == 0 and nxt is not None:  # pick-up: pad with a rest at the front
                windows.append(BarWindow(offset - (BAR_QUARTERS - length), number))
            elif nxt is not None and nxt[2] == meter_str and abs(length + nxt[1] - BAR_QUARTERS) < _EPS:
                windows.append(BarWindow(offset, number))  # a bar split in two (repeat sign)
                i += 1
            elif nxt is None:  # last bar: pad with a rest at the end
                windows.append(BarWindow(offset, number))
            else:
                windows.append(BarWindow(offset, number, "incomplete", meter_str))
        else:
            windows.append(BarWindow(offset, number, "incomplete", meter_str))
        i += 1
    return windows


def _stream_notes(part) -> tuple[list, int]:
    """(start, end, midi) of the pitched notes of a music21 part (chords -> top note, ties merged)."""
    from music21 import chord, harmony, note

    events: list[list] = []
    last_with_pitch: dict[int, int] = {}
    unpitched = 0
    flat = part.flatten()
    for element in flat.notes:
        if isinstance(element, harmony.ChordSymbol):
            continue
        if isinstance(element, note.Note):
            midi = element.pitch.midi
        elif isinstance(element, chord.Chord) and element.pitches:
            midi = max(p.midi for p in element.pitches)
        else:  # Unpitched, PercussionChord
            unpitched += 1
            continue
        duration = float(element.duration.quarterLength)
        if duration <= 0 or element.duration.isGrace:
            continue
        start = float(flat.elementOffset(element))
        end = start + duration
        tie = getattr(element, "tie", None)
        prev = last_with_pitch.get(midi)
        if tie is not None and tie.type in ("stop", "continue") and prev is not None and abs(events[prev][1] - start) < _EPS:
            events[prev][1] = end
            continue
        last_with_pitch[midi] = len(events)
        events.append([start, end, midi])
    return events, unpitched


def _stream_bars(part) -> list:
    """(offset, length, meter, number) of the bars of a music21 part."""
    from music21 import stream

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        part = part.makeMeasures()
        measures = list(part.getElementsByClass(stream.Measure))
    bars = []
    current = None
    offsets = [float(part.elementOffset(m)) for m in measures]
    for k, m in enumerate(measures):
        if k + 1 < len(measures):
            length = offsets[k + 1] - offsets[k]
        else:
            length = float(m.duration.quarterLength)
        ts = m.timeSignature
        following = measures[k + 1].timeSignature if k + 1 < len(measures) else None
        if (ts is not None and following is not None and length < BAR_QUARTERS - _EPS
                and (abs(float(ts.barDuration.quarterLength) - length) < _EPS
                     or ts.denominator & (ts.denominator - 1))):
            # music21's ABC reader gives a short bar (pick-up, split bar) a meter of its own length
            # (sometimes an impossible one such as 1/6) and restores the real meter on the next bar:
            # read the short bar in the restored meter
            meter_str = following.ratioString
        else:
            if ts is not None:
                current = ts
            meter_str = current.ratioString if current is not None else "4/4"
        bars.append((offsets[k], length, meter_str, m.number))
    return bars


def _parts_of(obj) -> list:
    from music21 import stream

    if isinstance(obj, stream.Opus):
        scores = list(obj.scores)
        if not scores:
            return []
        obj = scores[0]
    parts = list(obj.parts) if hasattr(obj, "parts") else []
    return parts or [obj]


def measures_from_stream(obj, part: int | None = None, meters=ACCEPTED_METERS) -> ExtractedMeasures:
    """A music21 Score/Part/Stream -> :class:`ExtractedMeasures`.

    ``part``: index of the part to take (e.g. 0, the soprano of a chorale); ``None`` takes the top
    line over all parts. Bars follow the first (or the chosen) part.
    """
    parts = _parts_of(obj)
    if not parts:
        return measures_from_events([], [], [], [], pitched_notes=0)
    if part is not None:
        parts = [parts[part]]
    events, unpitched = [], 0
    for p in parts:
        part_events, part_unpitched = _stream_notes(p)
        events.extend(part_events)
        unpitched += part_unpitched
    windows = _bar_windows(_stream_bars(parts[0]), meters)
    ev = np.array(events, dtype=np.float64).reshape(-1, 3)
    used = sum(1 for p in parts if len(p.flatten().notes))
    return measures_from_events(ev[:, 0], ev[:, 1], ev[:, 2].astype(np.int64), windows,
                                unpitched_notes=unpitched, parts_used=max(used, 1))


measure_from_stream = measures_from_stream  # alias


_BEAT_GRID_TWELFTHS = np.array(list(TICK_POSITIONS_TWELFTHS[:TICKS_PER_BEAT]) + [12], dtype=np.float64)


def snap_to_grid(quarters) -> np.ndarray:
    """Absolute positions in quarter notes -> the nearest position of the tick grid (every beat
    divided at :data:`~arvae.music.tokens.TICK_OFFSETS`)."""
    q = np.asarray(quarters, dtype=np.float64)
    beat = np.floor(q + 1e-9)
    frac = (q - beat) * 12.0
    nearest = _BEAT_GRID_TWELFTHS[np.abs(frac[..., None] - _BEAT_GRID_TWELFTHS).argmin(axis=-1)]
    return beat + nearest / 12.0


def _next_grid_position(quarters) -> np.ndarray:
    q = np.asarray(quarters, dtype=np.float64)
    beat = np.floor(q + 1e-9)
    frac = (q - beat) * 12.0
    later = np.where(_BEAT_GRID_TWELFTHS[None, :] > frac[:, None] + 1e-6, _BEAT_GRID_TWELFTHS[None, :], np.inf).min(axis=1)
    return beat + later / 12.0


def measures_from_pretty_midi(pm, meters=ACCEPTED_METERS) -> ExtractedMeasures:
    """A ``pretty_midi.PrettyMIDI`` -> :class:`ExtractedMeasures` (top line over all non-drum
    instruments, note boundaries snapped to the tick grid, bars from the time signature events)."""
    instruments = [inst for inst in pm.instruments if not inst.is_drum]
    unpitched = sum(len(inst.notes) for inst in pm.instruments if inst.is_drum)
    notes = [n for inst in instruments for n in inst.notes]
    resolution = float(pm.resolution)

    def quarters(seconds: float) -> float:
        return pm.time_to_tick(seconds) / resolution

    starts = snap_to_grid(np.array([quarters(n.start) for n in notes], dtype=np.float64))
    ends = snap_to_grid(np.array([quarters(n.end) for n in notes], dtype=np.float64))
    if len(ends):  # a very short note keeps at least one tick
        ends = np.where(ends > starts + _EPS, ends, _next_grid_position(starts))
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    end_of_music = float(ends.max()) if len(ends) else 0.0

    changes = sorted(pm.time_signature_changes, key=lambda ts: ts.time)
    segments = [(float(snap_to_grid(quarters(ts.time))), ts.numerator, ts.denominator) for ts in changes]
    if not segments or segments[0][0] > _EPS:
        segments.insert(0, (0.0, 4, 4))
    bars = []
    number = 1
    for k, (seg_start, num, den) in enumerate(segments):
        seg_end = segments[k + 1][0] if k + 1 < len(segments) else end_of_music
        bar_length = num * 4.0 / den
        position = seg_start
        while position < seg_end - _EPS:
            length = min(bar_length, seg_end - position) if k + 1 < len(segments) else bar_length
            bars.append((position, length, f"{num}/{den}", number))
            position += bar_length
            number += 1
    windows = _bar_windows(bars, meters)
    return measures_from_events(starts, ends, pitches, windows, unpitched_notes=unpitched,
                                parts_used=sum(1 for inst in instruments if inst.notes))


# ------------------------------------------------------------------------------------ pitch range

@dataclass
class RangeFit:
    grid: np.ndarray
    kept: np.ndarray  # bool per input bar
    piece_shift: int = 0  # octaves
    bars_shifted: int = 0
    notes_folded: int = 0
    bars_dropped: int = 0


def _best_octave_shift(pmin: int, pmax: int, low: int, high: int) -> int | None:
    k_lo = math.ceil((low - pmin) / 12)
    k_hi = math.floor((high - pmax) / 12)
    if k_lo > k_hi:
        return None
    return min(range(k_lo, k_hi + 1), key=abs)


def fit_pitch_range(grid: np.ndarray, low: int = PITCH_LOW, high: int = PITCH_HIGH, *,
                    drop_unfittable: bool = False) -> RangeFit:
    """Move the notes of a piece into ``low..high`` by octaves: the whole piece if it fits, else each
    bar that is out of range on its own; notes of a bar spanning more than the range are folded into
    it one by one, or the bar is dropped with ``drop_unfittable``."""
    grid = np.array(grid, dtype=np.int16, copy=True)
    kept = np.ones(len(grid), dtype=bool)
    fit = RangeFit(grid=grid, kept=kept)
    notes = grid >= 0
    if not notes.any():
        return fit
    values = grid[notes].astype(np.int64)
    if values.min() >= low and values.max() <= high:
        return fit
    shift = _best_octave_shift(int(values.min()), int(values.max()), low, high)
    if shift is None:  # the piece spans too much: minimize the notes left out of range
        shift = min(range(-10, 11), key=lambda k: (int(np.sum((values + 12 * k < low) | (values + 12 * k > high))), abs(k)))
    fit.piece_shift = shift
    grid[notes] += np.int16(12 * shift)
    for r in range(len(grid)):
        row_notes = grid[r] >= 0
        if not row_notes.any():
            continue
        rmin, rmax = int(grid[r][row_notes].min()), int(grid[r][row_notes].max())
        if rmin >= low and rmax <= high:
            continue
        k = _best_octave_shift(rmin, rmax, low, high)
        if k is not None:
            grid[r][row_notes] += np.int16(12 * k)
            fit.bars_shifted += 1
        elif drop_unfittable:
            kept[r] = False
            fit.bars_dropped += 1
        else:
            vals = grid[r][row_notes].astype(np.int64)
            out = (vals < low) | (vals > high)
            vals = np.where(vals < low, vals + 12 * np.ceil((low - vals) / 12).astype(np.int64), vals)
            vals = np.where(vals > high, vals - 12 * np.ceil((vals - high) / 12).astype(np.int64), vals)
            grid[r][row_notes] = vals.astype(np.int16)
            fit.notes_folded += int(out.sum())
    fit.grid = grid[kept]
    fit.kept = kept
    return fit


def grid_to_tokens(grid: np.ndarray) -> np.ndarray:
    """Pitch grid (see :class:`ExtractedMeasures`; pitches must be in range) -> tokens int64."""
    grid = np.asarray(grid)
    out = np.where(grid == GRID_REST, REST, CONTINUATION).astype(np.int64)
    notes = grid >= 0
    if notes.any():
        values = grid[notes].astype(np.int64)
        if values.min() < PITCH_LOW or values.max() > PITCH_HIGH:
            raise ValueError(f"pitches outside {PITCH_LOW}..{PITCH_HIGH}; call fit_pitch_range first")
        out[notes] = values - PITCH_LOW + FIRST_PITCH_TOKEN
    return out


# ------------------------------------------------------------------------------------------- ABC

_FIELD = re.compile(r"^[A-Za-z]:")


def split_abc_tunes(text: str) -> list[str]:
    """Split an ABC file (or a folk-rnn style text file) into tunes. Tunes are separated by blank
    lines (ABC standard); a leading block without a ``K:`` field is a file header and is prepended to
    every tune; tunes without an ``X:`` field get one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b.strip("\n") for b in re.split(r"\n[ \t]*\n", text)]
    header = ""
    tunes = []
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        has_key = any(ln.startswith("K:") for ln in lines)
        if not has_key:
            if not tunes and not header and any(_FIELD.match(ln) and not ln.startswith("X:") for ln in lines):
                header = "\n".join(ln for ln in lines if _FIELD.match(ln))
            continue
        body = "\n".join(lines)
        if not any(ln.startswith("X:") for ln in lines):
            body = "X:1\n" + body
        if header:
            # the X: line must come first; file header fields follow it
            first, _, rest = body.partition("\n")
            body = f"{first}\n{header}\n{rest}"
        tunes.append(body)
    return tunes


_METER_NAMES = {"C": "4/4", "C|": "2/2"}


def abc_meters(tune: str) -> set[str]:
    """Meters named by a tune's ``M:`` fields (header and inline ``[M:...]``), normalized (C -> 4/4)."""
    found = re.findall(r"^M:\s*([^\n%]*)", tune, flags=re.M) + re.findall(r"\[M:\s*([^\]]*)\]", tune)
    meters = set()
    for value in found:
        value = value.strip().replace(" ", "")
        meters.add(_METER_NAMES.get(value, value))
    return meters


def abc_title(tune: str) -> str:
    match = re.search(r"^T:\s*(.*)$", tune, flags=re.M)
    return match.group(1).strip() if match else ""


def parse_abc(tune: str):
    """One ABC tune (text) -> music21 Score."""
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.parse(tune, format="abc")


# ---------------------------------------------------------------------------------------- import

def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _describe_skips(ex: ExtractedMeasures) -> list[str]:
    messages = []
    if ex.skipped_meters:
        meters = ", ".join(f"{n} in {m}" for m, n in ex.skipped_meters.most_common())
        messages.append(f"Skipped {_plural(sum(ex.skipped_meters.values()), 'bar')} not in 4/4 ({meters}); "
                        "the model only knows bars of 4/4.")
    if ex.skipped.get("off_grid"):
        messages.append(f"Skipped {_plural(ex.skipped['off_grid'], 'bar')} with notes off the model's rhythm grid "
                        "(it only has sixteenths and eighth-note triplets).")
    if ex.skipped.get("incomplete"):
        messages.append(f"Skipped {_plural(ex.skipped['incomplete'], 'incomplete bar')}.")
    if ex.skipped.get("empty"):
        messages.append(f"Skipped {_plural(ex.skipped['empty'], 'bar')} without notes.")
    return messages


def _midi_measures(path: Path) -> ExtractedMeasures:
    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido/pretty_midi raise many types for broken files
        raise MusicImportError(f"'{path.name}' is not a readable MIDI file ({type(error).__name__}: {error}).") from None
    if not any(inst.notes for inst in pm.instruments):
        raise MusicImportError(f"'{path.name}' contains no notes.")
    if all(inst.is_drum for inst in pm.instruments if inst.notes):
        raise MusicImportError(f"'{path.name}' has no pitched notes: it contains only drum (percussion) notes, "
                               "and a melody is needed.")
    return measures_from_pretty_midi(pm)


def _check_mxl(path: Path) -> None:
    """A compressed MusicXML (.mxl) is a zip file: check it is one, and that it does not unpack to
    more than :data:`MAX_MXL_UNPACKED_BYTES` (a zip bomb), before music21 unpacks it."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise MusicImportError(f"'{path.name}' is not a readable compressed MusicXML (.mxl) file "
                               f"({type(error).__name__}: {error}).") from None
    if unpacked > MAX_MXL_UNPACKED_BYTES:
        raise MusicImportError(f"'{path.name}' unpacks to {unpacked / 2**20:.0f} MB; the limit is "
                               f"{MAX_MXL_UNPACKED_BYTES / 2**20:.0f} MB unpacked.")


def _music21_measures(path: Path, kind: str) -> ExtractedMeasures:
    from music21 import converter

    if path.suffix.lower() == ".mxl":
        _check_mxl(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = converter.parse(str(path), format="musicxml")
    except Exception as error:
        raise MusicImportError(f"'{path.name}' could not be read as {kind} ({type(error).__name__}: {error}).") from None
    return measures_from_stream(obj)


def _abc_measures(path: Path, messages: list[str]) -> ExtractedMeasures:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    tunes = split_abc_tunes(text)
    if not tunes:
        raise MusicImportError(f"'{path.name}' holds no ABC tune (no K: field found).")
    if len(tunes) > 1:
        title = abc_title(tunes[0])
        messages.append(f"The file holds {len(tunes)} tunes; imported the first" + (f" ('{title}')." if title else "."))
    try:
        obj = parse_abc(tunes[0])
    except Exception as error:
        raise MusicImportError(f"'{path.name}' could not be read as ABC: a syntax error or notation the ABC reader "
                               f"does not support ({type(error).__name__}: {error}).") from None
    return measures_from_stream(obj)


def import_file(path) -> ImportResult:
    """Read a ``.mid``/``.midi``, ``.xml``/``.musicxml``/``.mxl`` or ``.abc`` file into measures.

    Returns :class:`ImportResult` (tokens int64 ``(M, 24)`` and messages saying what was done);
    raises :class:`MusicImportError` with a readable message when nothing usable is in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MusicImportError(f"File not found: '{path}'.")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise MusicImportError(f"Unsupported file type '{ext or path.name}'; use MIDI (.mid), MusicXML (.xml, .musicxml, .mxl) or ABC (.abc).")
    size = path.stat().st_size
    if size == 0:
        raise MusicImportError(f"'{path.name}' is empty.")
    if size > MAX_MUSIC_BYTES:
        raise MusicImportError(f"'{path.name}' is too large ({size / 2**20:.1f} MB); music files are limited to "
                               f"{MAX_MUSIC_BYTES / 2**20:.0f} MB (a melody needs far less).")
    messages: list[str] = []
    try:
        if ext in MIDI_EXTENSIONS:
            extracted = _midi_measures(path)
        elif ext in MUSICXML_EXTENSIONS:
            extracted = _music21_measures(path, "MusicXML")
        else:
            extracted = _abc_measures(path, messages)
    except MusicImportError:
        raise
    except Exception as error:  # anything unexpected inside the converters
        raise MusicImportError(f"'{path.name}' could not be converted ({type(error).__name__}: {error}).") from None

    if extracted.pitched_notes == 0:
        if extracted.unpitched_notes:
            raise MusicImportError(f"'{path.name}' has no pitched notes: it contains only percussion (unpitched) "
                                   "notes, and a melody is needed.")
        raise MusicImportError(f"'{path.name}' contains no notes.")
    if extracted.parts_used > 1:
        messages.append(f"The music has {extracted.parts_used} parts; took the top line (highest note at each moment).")
    messages.extend(_describe_skips(extracted))
    if len(extracted.grid) == 0:
        reasons = " ".join(_describe_skips(extracted))
        raise MusicImportError(f"No usable 4/4 bar in '{path.name}'. {reasons}".strip())

    fit = fit_pitch_range(extracted.grid)
    if fit.piece_shift:
        direction = "up" if fit.piece_shift > 0 else "down"
        messages.append(f"Transposed {direction} {_plural(abs(fit.piece_shift), 'octave')} to fit the model's range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    if fit.bars_shifted:
        messages.append(f"Moved {_plural(fit.bars_shifted, 'bar')} by octaves to fit the range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    if fit.notes_folded:
        messages.append(f"Moved {_plural(fit.notes_folded, 'note')} by octaves into the range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    tokens = grid_to_tokens(fit.grid)
    numbers = [n for n, keep in zip(extracted.bar_numbers, fit.kept) if keep]
    messages.insert(0, f"Read {_plural(len(tokens), 'measure')} from '{path.name}' "
                       f"({extracted.total_bars} bars in the file).")
    return ImportResult(tokens=tokens, messages=messages, bar_numbers=numbers)
