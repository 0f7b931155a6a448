"""Notes and bars of a piece -> 24-tick measures: the one bar conversion of the project.

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

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from arvae.music.tokens import CONTINUATION, FIRST_PITCH_TOKEN, MEASURE_TICKS, PITCH_HIGH, PITCH_LOW, REST, \
    TICK_POSITIONS_TWELFTHS, TICKS_PER_BEAT, positions_to_ticks

ACCEPTED_METERS = ("4/4", "2/2")  # both are bars of 4 quarter notes; 2/2 (cut time) is common in folk reels
MAX_BARS = 100_000  # more bars than any piece has: a file needing more is degenerate (far-future note, tiny meter)
MAX_METER_DENOMINATOR = 64
BAR_QUARTERS = 4.0
GRID_CONTINUATION = -1  # codes of the pitch grid (MIDI pitches elsewhere), see ExtractedMeasures
GRID_REST = -2
_EPS = 1e-4


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


def check_meter(numerator: int, denominator: int) -> None:
    """A ``ValueError`` for a time signature no music has: a numerator under 1, or a denominator
    that is not a power of two up to :data:`MAX_METER_DENOMINATOR` (a MIDI file can declare 2**255)."""
    if numerator < 1 or denominator < 1 or denominator > MAX_METER_DENOMINATOR or denominator & (denominator - 1):
        shown = denominator if denominator < 10**6 else format(denominator, ".3g")
        raise ValueError(f"invalid time signature {numerator}/{shown} (the denominator must be "
                         f"a power of two up to {MAX_METER_DENOMINATOR}, the numerator at least 1)")


def bar_count(length_quarters: float, numerator: int, denominator: int) -> int:
    """How many bars of ``numerator/denominator`` a stretch of ``length_quarters`` holds (checking
    the meter), computed before any bar is built."""
    check_meter(numerator, denominator)
    return max(0, math.ceil(length_quarters * denominator / (4.0 * numerator) - _EPS))


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
    for k, (seg_start, num, den) in enumerate(segments):
        seg_end = segments[k + 1][0] if k + 1 < len(segments) else end_of_music
        bar_length = num * 4.0 / den
        if len(bars) + bar_count(seg_end - seg_start, num, den) > MAX_BARS:  # a far-future note, a tiny meter
            raise ValueError(f"the music would last more than {MAX_BARS:,} bars")
        position = seg_start
        while position < seg_end - _EPS:
            length = min(bar_length, seg_end - position) if k + 1 < len(segments) else bar_length
            bars.append((position, length, f"{num}/{den}", len(bars) + 1))
            position += bar_length
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
