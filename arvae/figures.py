"""Plotly figures of traversals and surfaces: the attribute measured along each traversal and
over a latent plane (Figs. 12/13). Pure functions of arrays."""
from __future__ import annotations

import math
import warnings

import numpy as np


COLORS = ("#4C5BD4", "#E4572E", "#17A398", "#F3A712", "#A846A0", "#5D737E", "#2E86AB", "#C44536")
MODEL_STYLES = {"AR-VAE": dict(dash="solid"), "β-VAE": dict(dash="dash")}


def _go():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


def pretty_name(name: str) -> str:
    return name.replace("_", " ")


def attribute_lines_figure(values, measured, attribute_names, dims=None, title: str | None = None):
    """Measured attribute along each traversal: one small plot per attribute, x = the latent value
    of its dim, y = the attribute measured on what was decoded.

    ``measured``: ``(L, S)`` for one model, or a dict ``model name -> (L, S)`` to overlay models
    (``dims`` then a dict ``model name -> dims``). NaN (nothing measurable) leaves a gap.
    """
    go, make_subplots = _go()
    series = measured if isinstance(measured, dict) else {"": measured}
    dims_of = dims if isinstance(dims, dict) else {name: dims for name in series}
    names = list(attribute_names)
    n = len(names)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[pretty_name(a) for a in names],
                        horizontal_spacing=0.09, vertical_spacing=0.2 if rows > 1 else 0.1)
    values = np.asarray(values, dtype=float)
    for m, (model, data) in enumerate(series.items()):
        data = np.asarray(data, dtype=float)
        if data.shape != (n, len(values)):
            raise ValueError(f"measured has shape {data.shape}, expected {(n, len(values))}")
        model_dims = dims_of.get(model)
        for l, attr in enumerate(names):
            dim = None if model_dims is None else int(model_dims[l])
            x_name = f"z[{dim}]" if dim is not None else "latent value"
            label = (f"{model}: " if model else "") + pretty_name(attr)
            fig.add_trace(go.Scatter(
                x=values, y=data[l], mode="lines+markers", name=label, legendgroup=model or attr,
                showlegend=bool(model) and l == 0,
                line=dict(color=COLORS[m % len(COLORS)] if model else COLORS[l % len(COLORS)], width=2,
                          **MODEL_STYLES.get(model, {})),
                marker=dict(size=6),
                hovertemplate=f"{label}<br>{x_name} = %{{x:.2f}}<br>measured = %{{y:.3f}}<extra></extra>",
            ), row=l // cols + 1, col=l % cols + 1)
    for l, attr in enumerate(names):
        if len(series) == 1 and next(iter(dims_of.values())) is not None:
            dim = int(next(iter(dims_of.values()))[l])
            x_title = f"z[{dim}]"
        else:
            x_title = "latent value"
        fig.update_xaxes(title_text=x_title, row=l // cols + 1, col=l % cols + 1, zeroline=False)
        # the y title only left of each row: on a phone the plots are narrow and it would cover the neighbour's ticks
        fig.update_yaxes(title_text="measured" if l % cols == 0 else None, row=l // cols + 1, col=l % cols + 1)
    fig.update_layout(title=dict(text=title, font=dict(size=13)) if title else None, height=max(300, 250 * rows + 60),
                      margin=dict(l=50, r=20, t=70 if title else 50, b=40),
                      template="plotly_white", showlegend=len(series) > 1,
                      legend=dict(orientation="h", y=1.12, x=0.0))
    return fig


def surface_figure(surface, values, attribute: str, dim_x: int, dim_y: int, current=None, title: str | None = None,
                   x_values=None):
    """Attribute surface (Fig. 12/13): heatmap of the attribute measured over a latent plane,
    x = ``dim_x`` (the attribute's dim), y = ``dim_y``; hovering shows both latent values and the
    attribute. ``current``: ``(x, y)`` of the current code, marked with a cross."""
    go, _ = _go()
    z = np.asarray(surface, dtype=float)
    ys = np.asarray(values, dtype=float)
    xs = ys if x_values is None else np.asarray(x_values, dtype=float)
    if z.shape != (len(ys), len(xs)):
        raise ValueError(f"surface has shape {z.shape}, expected {(len(ys), len(xs))}")
    name = pretty_name(attribute)
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, colorscale="Viridis", colorbar=dict(title=dict(text=name, side="right")),
        hovertemplate=f"z[{dim_x}] = %{{x:.2f}}<br>z[{dim_y}] = %{{y:.2f}}<br>{name} = %{{z:.3f}}<extra></extra>",
        hoverongaps=False, name=name,
    ))
    if current is not None:
        cx, cy = (float(v) for v in current)
        fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", name="current code",
                                 marker=dict(symbol="x-thin", size=14, line=dict(width=3, color="white")),
                                 hovertemplate=f"current code<br>z[{dim_x}] = %{{x:.2f}}<br>z[{dim_y}] = %{{y:.2f}}"
                                               "<extra></extra>", showlegend=False))
    fig.update_layout(
        title=title or f"{name} over the plane z[{dim_x}] × z[{dim_y}]",
        xaxis=dict(title=f"z[{dim_x}] (the dim of {name})"),
        yaxis=dict(title=f"z[{dim_y}]"),
        height=520, margin=dict(l=60, r=20, t=60, b=50), template="plotly_white",
    )
    return fig


def controllability_figure(values, measured_by_model: dict, summaries: dict, attribute_names, title=None):
    """The controllability panel: a row per attribute, a column per model; every held-out sweep as
    a thin line (x = the requested position on the attribute's dim, y = the attribute measured on
    the decoding), their median bold; subplot titles give the mean Spearman rho and the share of
    monotonic sweeps. ``measured_by_model``: model label -> ``(L, N, S)``; ``summaries``: model
    label -> :meth:`arvae.control.Controllability.summary`."""
    go, make_subplots = _go()
    models, names = list(measured_by_model), list(attribute_names)
    titles = [f"{model}: {pretty_name(a)} · z[{summaries[model][a]['dim']}]<br>ρ = {summaries[model][a]['spearman']:+.2f},"
              f" monotonic {100 * summaries[model][a]['monotonic_share']:.0f} %" for a in names for model in models]
    fig = make_subplots(rows=len(names), cols=len(models), subplot_titles=titles, horizontal_spacing=0.1,
                        vertical_spacing=0.5 / max(len(names), 1))
    values = np.asarray(values, dtype=float)
    for m, model in enumerate(models):
        measured = np.asarray(measured_by_model[model], dtype=float)
        for l, attr in enumerate(names):
            where = dict(row=l + 1, col=m + 1)
            sweeps = measured[l]
            xs = np.concatenate([np.append(values, np.nan)] * len(sweeps))
            ys = np.concatenate([np.append(s, np.nan) for s in sweeps])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=COLORS[l % len(COLORS)], width=1),
                                     opacity=0.25, hoverinfo="skip", showlegend=False, name=f"{model} {attr} sweeps"),
                          **where)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(sweeps, axis=0)
            fig.add_trace(go.Scatter(x=values, y=median, mode="lines+markers", showlegend=False,
                                     line=dict(color=COLORS[l % len(COLORS)], width=3, **MODEL_STYLES.get(model, {})),
                                     name=f"{model} {attr} median",
                                     hovertemplate=f"{model}<br>z = %{{x:.2f}}<br>median {pretty_name(attr)} = "
                                                   "%{y:.3f}<extra></extra>"), **where)
            fig.update_xaxes(title_text=f"requested z[{summaries[model][attr]['dim']}]", title_standoff=2, **where)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=title, height=230 * len(names) + 80, template="plotly_white",
                      margin=dict(l=50, r=20, t=90 if title else 60, b=40))
    return fig


def pad_figure(pad, current=None, title=None):
    """The attribute pad's measurements: a heatmap per attribute over the pad's plane (x = the first
    attribute's dim, y = the second's), the current code marked with a cross."""
    go, make_subplots = _go()
    (ax, ay), (dx, dy) = pad.attributes, pad.dims
    values = np.asarray(pad.values, dtype=float)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=[f"measured {pretty_name(ax)}", f"measured {pretty_name(ay)}"])
    for i, (name, colorbar_x) in enumerate(((ax, 0.42), (ay, 1.0))):
        fig.add_trace(go.Heatmap(
            z=np.asarray(pad.measured[::-1, :, i], dtype=float), x=values, y=values, colorscale="Viridis",
            colorbar=dict(x=colorbar_x, len=0.9, thickness=12), name=pretty_name(name),
            hovertemplate=f"z[{dx}] = %{{x:.2f}}<br>z[{dy}] = %{{y:.2f}}<br>{pretty_name(name)} = %{{z:.3f}}<extra></extra>",
        ), row=1, col=i + 1)
        if current is not None:
            fig.add_trace(go.Scatter(x=[float(current[0])], y=[float(current[1])], mode="markers", showlegend=False,
                                     name="current code", marker=dict(symbol="x-thin", size=14,
                                                                      line=dict(width=3, color="#E42828"))),
                          row=1, col=i + 1)
        fig.update_xaxes(title_text=f"z[{dx}] ({pretty_name(ax)})", row=1, col=i + 1)
        fig.update_yaxes(title_text=f"z[{dy}] ({pretty_name(ay)})", row=1, col=i + 1)
    fig.update_layout(title=title, height=380, template="plotly_white", margin=dict(l=60, r=20, t=70, b=50))
    return fig


def melody_curves_figure(edit, attribute_names, title=None):
    """Per attribute with a curve: the requested position on its dim over the bars (right axis) and
    the attribute measured on every bar before and after the edit."""
    go, make_subplots = _go()
    names = [n for n in attribute_names if n in edit.curves]
    if not names:
        names = list(attribute_names)
    index = list(attribute_names)
    bars = np.arange(1, len(edit.edited) + 1)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[pretty_name(n) for n in names],
                        specs=[[{"secondary_y": True}] * len(names)], horizontal_spacing=0.12)
    for c, name in enumerate(names):
        l = index.index(name)
        where = dict(row=1, col=c + 1)
        fig.add_trace(go.Scatter(x=bars, y=edit.measured_before[:, l], mode="lines+markers", name="before",
                                 line=dict(color="#9AA0B4", width=2), showlegend=c == 0), **where)
        fig.add_trace(go.Scatter(x=bars, y=edit.measured_after[:, l], mode="lines+markers", name="after",
                                 line=dict(color=COLORS[l % len(COLORS)], width=3), showlegend=c == 0), **where)
        if name in edit.curves:
            fig.add_trace(go.Scatter(x=bars, y=edit.curves[name], mode="lines", name="requested z",
                                     line=dict(color="#222", dash="dot"), showlegend=c == 0), secondary_y=True, **where)
        fig.update_xaxes(title_text="bar", **where)
    fig.update_layout(title=title, height=360, template="plotly_white", margin=dict(l=50, r=50, t=70, b=90),
                      legend=dict(orientation="h", y=-0.3))  # below the plots: clear of the titles on a phone
    return fig
