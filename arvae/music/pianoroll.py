"""Piano rolls of token measures and the music traversal figure (Fig. 11), in Plotly."""
from __future__ import annotations

import copy
import functools
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


def _figure(data: list, layout: dict):
    """A Plotly figure of plain trace and layout dicts, built without Plotly's per-property
    validation: validating made a traversal figure cost ~80 ms, nearly all of it in Plotly's
    setters. The dicts come from this module, whose tests check the figures they make."""
    go, _ = _go()
    title = layout.pop("title", None)
    if title:  # in the form validation gives it, so that a pickled copy (from a worker) is equal
        layout["title"] = title if isinstance(title, dict) else dict(text=title)
    return go.Figure(data=data, layout=layout, _validate=False)


@functools.lru_cache(maxsize=16)
def _subplot_grid(rows: int, cols: int, column_widths: tuple | None, horizontal_spacing: float,
                  vertical_spacing: float, shared_xaxes: bool) -> dict:
    """Axis domains, anchors and subplot-title annotations of ``make_subplots``, computed once per grid."""
    _, make_subplots = _go()
    fig = make_subplots(rows=rows, cols=cols, column_widths=list(column_widths) if column_widths else None,
                        horizontal_spacing=horizontal_spacing, vertical_spacing=vertical_spacing,
                        shared_xaxes=shared_xaxes, subplot_titles=[" "] * (rows * cols))
    return fig.layout.to_plotly_json()


def _grid_layout(rows, cols, titles, column_widths=None, horizontal_spacing=0.2, vertical_spacing=0.3,
                 shared_xaxes=False) -> dict:
    layout = copy.deepcopy(_subplot_grid(rows, cols, tuple(column_widths) if column_widths else None,
                                         horizontal_spacing, vertical_spacing, shared_xaxes))
    layout.pop("template", None)
    for annotation, text in zip(layout["annotations"], titles):
        annotation["text"] = text
    return layout


def _axis_suffix(axis_index: int) -> str:
    """Plotly's name ending of subplot axes ``axis_index`` (1-based): "", "2", "3", ..."""
    return "" if axis_index == 1 else str(axis_index)


def _piano_roll_parts(tokens, axis_index: int = 1, measure_labels=None, color=COLORS[0], name="notes",
                      max_labels: int = 8, pitch_range: tuple[int, int] | None = None):
    """The piano roll of measures on subplot axes ``axis_index``: its bar trace (one bar per note),
    its x and y axis layouts (note names, eighth-note grid) and its measure separators. The pitch
    axis fits the notes, or spans ``pitch_range`` (MIDI low, high) whatever the notes. A single
    measure is labelled by beats: it may be any bar of a piece."""
    arr = as_measures(tokens)
    notes = measure_notes(arr)
    n_measures = len(arr)
    suffix = _axis_suffix(axis_index)
    label_of = (lambda m: measure_labels[m]) if measure_labels is not None else (lambda m: f"measure {m + 1}")
    hover_measure = [label_of(m) if n_measures > 1 or measure_labels is not None else "this measure" for m, *_ in notes]
    pitches = [p for *_, p in notes]
    trace = dict(
        type="bar", x=[e - s for _, s, e, _ in notes], y=pitches, base=[s for _, s, _, _ in notes], orientation="h",
        width=0.85, name=name, xaxis=f"x{suffix}", yaxis=f"y{suffix}",
        marker=dict(color=color, line=dict(color="white", width=1.5)),
        customdata=[[midi_name(p), m + 1, (s - 4 * m) + 1, e - s, h] for (m, s, e, p), h in zip(notes, hover_measure)],
        hovertemplate="%{customdata[0]} (MIDI %{y})<br>%{customdata[4]}, beat %{customdata[2]:.2f}"
                      "<br>%{customdata[3]:.2f} quarter notes<extra></extra>",
        showlegend=False)
    lo = min(pitches) - 2 if pitches else 60
    hi = max(pitches) + 2 if pitches else 72
    if pitch_range is not None:
        lo, hi = pitch_range
    elif hi - lo < 12:
        pad = (12 - (hi - lo)) / 2
        lo, hi = int(math.floor(lo - pad)), int(math.ceil(hi + pad))
    lo, hi = max(lo, PITCH_LOW - 2), min(hi, PITCH_HIGH + 2)
    tickvals, ticktext = _pitch_ticks(lo, hi, max_labels=max(4, int(max_labels)))
    yaxis = dict(range=[lo - 0.5, hi + 0.5], tickvals=tickvals, ticktext=ticktext, title=dict(text="pitch"),
                 showgrid=True, gridcolor="rgba(0,0,0,0.06)", zeroline=False)
    single = n_measures == 1 and measure_labels is None
    xaxis = dict(range=[0, 4.0 * n_measures],
                 tickvals=[0.5, 1.5, 2.5, 3.5] if single else [4 * m + 2 for m in range(n_measures)],
                 ticktext=[f"beat {b}" for b in range(1, 5)] if single else [label_of(m) for m in range(n_measures)],
                 showgrid=False, zeroline=False,
                 minor=dict(tick0=0, dtick=0.5, showgrid=True, gridcolor="rgba(0,0,0,0.10)", gridwidth=1))
    separators = [dict(type="line", x0=4 * m, x1=4 * m, y0=0, y1=1, xref=f"x{suffix}", yref=f"y{suffix} domain",
                       line=dict(color="rgba(30,30,60,0.55)", width=1.5)) for m in range(n_measures + 1)]
    return trace, xaxis, yaxis, separators


def _merge_axes(layout: dict, axis_index: int, xaxis: dict, yaxis: dict) -> None:
    suffix = _axis_suffix(axis_index)
    layout.setdefault(f"xaxis{suffix}", {}).update(xaxis)
    layout.setdefault(f"yaxis{suffix}", {}).update(yaxis)


def piano_roll_figure(tokens, title: str | None = None, measure_labels=None, height: int = 300,
                      pitch_range: tuple[int, int] | None = None):
    """Piano roll of measures ``(M, 24)`` (or one ``(24,)``): a bar per note, pitch on y in
    semitones with note names, light lines at every eighth note, darker lines between measures."""
    trace, xaxis, yaxis, separators = _piano_roll_parts(tokens, measure_labels=measure_labels,
                                                        max_labels=(height - 80) // 22, pitch_range=pitch_range)
    layout = dict(title=title, height=height, bargap=0, template=_template(), shapes=separators,
                  margin=dict(l=55, r=15, t=45 if title else 15, b=35), xaxis=xaxis, yaxis=yaxis)
    return _figure([trace], layout)


def music_traversal_figure(tokens, values, measured, attribute_names, dims, title: str | None = None):
    """Fig. 11: for every attribute a row with the piano roll of the measures decoded along its dim
    (``tokens`` ``(L, S, 24)``) and, beside it, the attribute measured on each (``measured`` ``(L, S)``)."""
    arr = np.asarray(tokens)
    n = arr.shape[0]
    values = np.asarray(values, dtype=float)
    measured = np.asarray(measured, dtype=float)
    titles = []
    for l, attr in enumerate(attribute_names):
        titles += [f"{pretty_name(attr)}: traversal of z[{int(dims[l])}]", f"measured {pretty_name(attr)}"]
    layout = _grid_layout(n, 2, titles, column_widths=[0.8, 0.2], horizontal_spacing=0.06,
                          vertical_spacing=0.32 / max(n, 1))
    labels = [f"{v:+.1f}" for v in values]
    data, separators = [], []
    for l in range(n):
        color, roll_axis, line_axis = COLORS[l % len(COLORS)], 2 * l + 1, 2 * l + 2
        trace, xaxis, yaxis, lines = _piano_roll_parts(arr[l], roll_axis, measure_labels=labels, color=color,
                                                       name=attribute_names[l])
        xaxis["title"] = dict(text=f"z[{int(dims[l])}] →", standoff=2)
        _merge_axes(layout, roll_axis, xaxis, yaxis)
        _merge_axes(layout, line_axis, dict(title=dict(text=f"z[{int(dims[l])}]")), {})
        data.append(trace)
        separators += lines
        data.append(dict(
            type="scatter", x=values.tolist(), y=measured[l].tolist(), mode="lines+markers",
            xaxis=f"x{line_axis}", yaxis=f"y{line_axis}", line=dict(color=color, width=2),
            name=f"measured {attribute_names[l]}", showlegend=False,
            hovertemplate=f"z[{int(dims[l])}] = %{{x:.2f}}<br>{pretty_name(attribute_names[l])} = %{{y:.3f}}<extra></extra>"))
    layout.update(title=title, height=250 * n + 60, bargap=0, template=_template(), shapes=separators,
                  margin=dict(l=55, r=15, t=60 if title else 40, b=30))
    return _figure(data, layout)


def before_after_figure(before, after, title: str | None = None):
    """A melody before (top) and after (bottom) an edit, as two piano rolls on one time axis."""
    layout = _grid_layout(2, 1, ["before", "after"], vertical_spacing=0.12, shared_xaxes=True)
    data, separators = [], []
    for row, (tokens, color) in enumerate(((before, "#9AA0B4"), (after, COLORS[0])), start=1):
        trace, xaxis, yaxis, lines = _piano_roll_parts(
            tokens, row, color=color, name=("before", "after")[row - 1],
            measure_labels=[str(m + 1) for m in range(len(as_measures(tokens)))])
        _merge_axes(layout, row, xaxis, yaxis)
        data.append(trace)
        separators += lines
    layout.update(title=title, height=520, bargap=0, template=_template(), shapes=separators,
                  margin=dict(l=55, r=15, t=70 if title else 40, b=35))
    return _figure(data, layout)


@functools.lru_cache(maxsize=1)
def _template() -> dict:
    """The "plotly_white" template as a dict (looked up once: Plotly builds it on first use)."""
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()
