"""Whole melodies (issue 14): up to 32 measures encoded measure by measure, attribute *curves* over
the bars applied to each measure's code along the attribute's dim, decoded again. The models know
single measures (the paper's music VAEs encode one 4/4 bar), so a melody is edited bar by bar
with one batched encode and one batched decode.

A curve gives, per attribute, the position on its dim (-4..4, what the slider shows) for every
bar: ``[start, end]`` (linear from the first bar to the last) or one value per bar; an attribute
without a curve keeps each bar's encoded value."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from arvae import traversal
from arvae.control import finite_number
from arvae.explorer import SPAN, check_kind, parse_measures, pretty

MAX_MEASURES = 32


def check_melody(measures) -> np.ndarray:
    """Measures ``(M, 24)`` from JSON text or a list, 1 <= M <= 32."""
    arr = parse_measures(measures)
    if len(arr) > MAX_MEASURES:
        raise ValueError(f"a melody has at most {MAX_MEASURES} measures, got {len(arr)}; pick a shorter excerpt")
    return arr


def parse_curves(text, attribute_names, n_bars: int) -> dict[str, np.ndarray]:
    """Curves from JSON (``{"note_density": [-2, 2], "contour": [0, 1, ...]}``) -> attribute -> ``(n_bars,)``
    positions, clipped to +-4."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    try:
        raw = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        raise ValueError(f"the curves must be a JSON object such as {{\"note_density\": [-2, 2]}}, got "
                         f"{str(text)[:80]!r}") from None
    if not isinstance(raw, dict):
        raise ValueError("the curves must be a JSON object: attribute -> [start, end] or one value per bar")
    curves = {}
    for name, values in raw.items():
        if name not in attribute_names:
            raise ValueError(f"unknown attribute {name!r} in the curves; expected some of {list(attribute_names)}")
        values = [finite_number(v, f"the curve of {name}") for v in np.atleast_1d(np.asarray(values, dtype=object))]
        if len(values) == 2:
            curve = np.linspace(values[0], values[1], n_bars)
        elif len(values) == n_bars:
            curve = np.asarray(values)
        else:
            raise ValueError(f"the curve of {name} needs 2 values (start, end) or one per bar ({n_bars}), got {len(values)}")
        curves[name] = np.clip(curve, -SPAN, SPAN).astype(np.float32)
    return curves


@dataclass(frozen=True)
class MelodyEdit:
    """A melody before and after: ``original``/``edited`` tokens (M, 24), their codes (M, D), the
    attributes measured on both (M, L) and the requested positions (attribute -> (M,))."""

    original: np.ndarray
    edited: np.ndarray
    codes: np.ndarray
    edited_codes: np.ndarray
    measured_before: np.ndarray
    measured_after: np.ndarray
    curves: dict
    dims: list


def edit_melody(explorer, kind: str, measures, curves) -> MelodyEdit:
    """Encode every measure (posterior means, one batch), set each curve's dim bar by bar, decode."""
    kind = check_kind(kind)
    original = check_melody(measures)
    names = list(explorer.spec.attribute_names)
    curves = parse_curves(curves, names, len(original))
    dims, _ = explorer.attribute_dims(kind)
    shared = {dims[names.index(a)] for a in curves}
    if len(shared) < len(curves):
        raise ValueError("two of these curves drive the same latent dim in this model; give one curve per dim")
    codes = traversal.encode(explorer.model(kind), torch.from_numpy(original.astype(np.int64))).numpy()
    edited_codes = codes.copy()
    for name, curve in curves.items():
        edited_codes[:, dims[names.index(name)]] = curve
    edited = explorer.decode(kind, edited_codes)  # canonical tokens (MeasureVAE.generate)
    return MelodyEdit(original, edited, codes, edited_codes, explorer.measure(original), explorer.measure(edited),
                      curves, list(dims))


def curve_table(explorer, edit: MelodyEdit) -> str:
    """Markdown: per attribute with a curve, the requested positions and the attribute measured
    before and after at the first, middle and last bar, and how closely the measured values follow
    the curve (Spearman rho over the bars)."""
    from arvae.metrics import spearman_rows

    names = list(explorer.spec.attribute_names)
    if not edit.curves:
        return "No curve given: the melody is its reconstruction."
    bars = [0, len(edit.edited) // 2, len(edit.edited) - 1]
    rows = ["| attribute | dim | bar | requested z | before | after |", "|---|---|---|---|---|---|"]
    follow = []
    for name, curve in edit.curves.items():
        l = names.index(name)
        for b in bars:
            rows.append(f"| {pretty(name)} | z[{edit.dims[l]}] | {b + 1} | {curve[b]:+.2f} | "
                        f"{explorer.format_value(name, edit.measured_before[b, l])} | "
                        f"{explorer.format_value(name, edit.measured_after[b, l])} |")
        rho = float(spearman_rows(curve, edit.measured_after[:, l])[0])
        follow.append(f"{pretty(name)}: ρ = {rho:+.2f}")
    return "\n".join(rows) + "\n\nHow the measured attribute follows its curve over the bars (Spearman): " + \
        ", ".join(follow) + "."
