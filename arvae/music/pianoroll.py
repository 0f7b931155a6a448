"""Piano rolls of token measures and the music traversal figure (Fig. 11), in Plotly."""
from __future__ import annotations

import math

import numpy as np

from arvae.figures import COLORS, _go, pretty_name
from arvae.music.export import tokens_to_pretty_midi
from arvae.music.tokens import PITCH_HIGH, PITCH_LOW, as_measures, midi_name


def measure_notes(tokens) -> list[tuple[int, float, float, int]]:
    """Notes of measures ``(M, 24)``: ``(measure, start, end, midi)``, times in quarter notes from
    the start of the first measure (via :func:`arvae.music.export.tokens_to_pretty_midi` at 60 bpm,
    where a second is a quarter note)."""
    arr = as_measures(tokens)
    pm = tokens_to_pretty_midi(arr, tempo=60.0)
    notes = pm.instruments[0].notes if pm.instruments else []
    out = []
    for note in notes:
        start, end = round(note.start * 12) / 12, round(note.end * 12) / 12
        out.append((int(start // 4), start, end, int(note.pitch)))
    return out


def _pitch_ticks(lo: int, hi: int, max_labels: int = 8) -> tuple[list[int], list[str]]:
    """Note-name ticks, at most ``max_labels`` of them, on whole steps from a C when sparse."""
    step = max(1, math.ceil((hi - lo + 1) / max_labels))
    start = lo if step == 1 else lo + (-lo) % step  # multiples of step: C (60) for steps 2, 3, 4, 6, 12
    ticks = list(range(start, hi + 1, step))
    return ticks, [midi_name(p) for p in ticks]


def _add_piano_roll(fig, go, tokens, row=None, col=None, measure_labels=None, color=COLORS[0], name="notes",
                    max_labels: int = 8, shapes: list | None = None, pitch_range: tuple[int, int] | None = None):
    """Piano-roll traces (one bar per note) and eighth-note/measure lines into ``fig`` (a subplot).
    The measure lines go into ``shapes`` when given (the caller adds them all at once: faster). The
    pitch axis fits the notes, or spans ``pitch_range`` (MIDI low, high) whatever the notes. A single
    measure is labelled by beats: it may be any bar of a piece."""
    arr = as_measures(tokens)
    notes = measure_notes(arr)
    where = {} if row is None else dict(row=row, col=col)
    n_measures = len(arr)
    starts = [s for _, s, _, _ in notes]
    durations = [e - s for _, s, e, _ in notes]
    pitches = [p for *_, p in notes]
    custom = [[midi_name(p), m + 1, (s - 4 * m) + 1, e - s] for (m, s, e, p) in notes]
    label_of = (lambda m: measure_labels[m]) if measure_labels is not None else (lambda m: f"measure {m + 1}")
    hover_measure = [label_of(m) if n_measures > 1 or measure_labels is not None else "this measure" for m, *_ in notes]
    fig.add_trace(go.Bar(
        x=durations, y=pitches, base=starts, orientation="h", width=0.85, name=name,
        marker=dict(color=color, line=dict(color="white", width=1.5)),
        customdata=[c + [h] for c, h in zip(custom, hover_measure)],
        hovertemplate="%{customdata[0]} (MIDI %{y})<br>%{customdata[4]}, beat %{customdata[2]:.2f}"
                      "<br>%{customdata[3]:.2f} quarter notes<extra></extra>",
        showlegend=False,
    ), **where)
    lo = min(pitches) - 2 if pitches else 60
    hi = max(pitches) + 2 if pitches else 72
    if pitch_range is not None:
        lo, hi = pitch_range
    elif hi - lo < 12:
        pad = (12 - (hi - lo)) / 2
        lo, hi = int(math.floor(lo - pad)), int(math.ceil(hi + pad))
    lo, hi = max(lo, PITCH_LOW - 2), min(hi, PITCH_HIGH + 2)
    tickvals, ticktext = _pitch_ticks(lo, hi, max_labels=max(4, int(max_labels)))
    total = 4.0 * n_measures
    fig.update_yaxes(range=[lo - 0.5, hi + 0.5], tickvals=tickvals, ticktext=ticktext, title_text="pitch",
                     showgrid=True, gridcolor="rgba(0,0,0,0.06)", zeroline=False, **where)
    single = n_measures == 1 and measure_labels is None
    fig.update_xaxes(
        range=[0, total], tickvals=[0.5, 1.5, 2.5, 3.5] if single else [4 * m + 2 for m in range(n_measures)],
        ticktext=[f"beat {b}" for b in range(1, 5)] if single else [label_of(m) for m in range(n_measures)],
        showgrid=False, zeroline=False,
        minor=dict(tick0=0, dtick=0.5, showgrid=True, gridcolor="rgba(0,0,0,0.10)", gridwidth=1), **where)
    # measure separators, added in one go (plotly's add_vline per line takes ~70 ms each)
    if row is None:
        xref, yref = "x", "paper"
    else:
        subplot = fig.get_subplot(row, col)
        xref = subplot.xaxis.plotly_name.replace("axis", "")
        yref = subplot.yaxis.plotly_name.replace("axis", "") + " domain"
    separators = [dict(type="line", x0=4 * m, x1=4 * m, y0=0, y1=1, xref=xref, yref=yref,
                       line=dict(color="rgba(30,30,60,0.55)", width=1.5)) for m in range(n_measures + 1)]
    if shapes is None:
        fig.update_layout(shapes=[*fig.layout.shapes, *separators])
    else:
        shapes.extend(separators)
    return notes


def piano_roll_figure(tokens, title: str | None = None, measure_labels=None, height: int = 300,
                      pitch_range: tuple[int, int] | None = None):
    """Piano roll of measures ``(M, 24)`` (or one ``(24,)``): a bar per note, pitch on y in
    semitones with note names, light lines at every eighth note, darker lines between measures."""
    go, _ = _go()
    fig = go.Figure()
    _add_piano_roll(fig, go, tokens, measure_labels=measure_labels, max_labels=(height - 80) // 22,
                    pitch_range=pitch_range)
    fig.update_layout(title=title, height=height, bargap=0, template="plotly_white",
                      margin=dict(l=55, r=15, t=45 if title else 15, b=35))
    return fig


def music_traversal_figure(tokens, values, measured, attribute_names, dims, title: str | None = None):
    """Fig. 11: for every attribute a row with the piano roll of the measures decoded along its dim
    (``tokens`` ``(L, S, 24)``) and, beside it, the attribute measured on each (``measured`` ``(L, S)``)."""
    go, make_subplots = _go()
    arr = np.asarray(tokens)
    n, steps = arr.shape[:2]
    values = np.asarray(values, dtype=float)
    measured = np.asarray(measured, dtype=float)
    titles = []
    for l, attr in enumerate(attribute_names):
        titles += [f"{pretty_name(attr)}: traversal of z[{int(dims[l])}]", f"measured {pretty_name(attr)}"]
    fig = make_subplots(rows=n, cols=2, column_widths=[0.8, 0.2], horizontal_spacing=0.06,
                        vertical_spacing=0.32 / max(n, 1), subplot_titles=titles)
    labels = [f"{v:+.1f}" for v in values]
    separators: list = []
    for l in range(n):
        _add_piano_roll(fig, go, arr[l], row=l + 1, col=1, measure_labels=labels, color=COLORS[l % len(COLORS)],
                        name=attribute_names[l], shapes=separators)
        fig.add_trace(go.Scatter(
            x=values, y=measured[l], mode="lines+markers", line=dict(color=COLORS[l % len(COLORS)], width=2),
            name=f"measured {attribute_names[l]}", showlegend=False,
            hovertemplate=f"z[{int(dims[l])}] = %{{x:.2f}}<br>{pretty_name(attribute_names[l])} = %{{y:.3f}}<extra></extra>",
        ), row=l + 1, col=2)
        fig.update_xaxes(title_text=f"z[{int(dims[l])}]", row=l + 1, col=2)
        fig.update_xaxes(title_text=f"z[{int(dims[l])}] →", title_standoff=2, row=l + 1, col=1)
    fig.update_layout(title=title, height=250 * n + 60, bargap=0, template="plotly_white",
                      margin=dict(l=55, r=15, t=60 if title else 40, b=30), shapes=separators)
    return fig


def before_after_figure(before, after, title: str | None = None):
    """A melody before (top) and after (bottom) an edit, as two piano rolls on one time axis."""
    go, make_subplots = _go()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=["before", "after"])
    separators: list = []
    for row, (tokens, color) in enumerate(((before, "#9AA0B4"), (after, COLORS[0])), start=1):
        _add_piano_roll(fig, go, tokens, row=row, col=1, color=color, name=("before", "after")[row - 1],
                        measure_labels=[str(m + 1) for m in range(len(as_measures(tokens)))], shapes=separators)
    fig.update_layout(title=title, height=520, bargap=0, template="plotly_white", shapes=separators,
                      margin=dict(l=55, r=15, t=70 if title else 40, b=35))
    return fig
