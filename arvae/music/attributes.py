"""The four musical attributes of AR-VAE (paper, Appendix A), for measures of tokens.

For a measure ``m_0 .. m_23`` (see :mod:`arvae.music.tokens`), with ``ONSET(m_t) = 1`` iff ``m_t`` is a
pitch token:

* rhythmic complexity ``r = sum_t ONSET(m_t) f_t / sum_t f_t`` with Toussaint's metrical weights
  :data:`RHYTHM_WEIGHTS` (Eq. 10);
* pitch range ``p = (max - min MIDI pitch of the measure's notes) / R`` (Eq. 11);
* note density ``d = sum_t ONSET(m_t) / 24`` (Eq. 12);
* contour ``c = sum of the differences between consecutive notes / R`` (Eq. 13);

with ``R = 26`` (:data:`PITCH_NORMALIZER`).

Semantics follow the authors' code (``ashispati/ar-vae``, ``BarDataset.get_pitch_range_in_measure`` and
``get_contour``), which deviates from a literal reading of Eqs. 11 and 13: the sums and extrema run
over the sequence of *note onsets* only (rest and continuation symbols are skipped rather than given
MIDI value 0), and both attributes are 0 for a measure with fewer than two notes. Consecutive
differences telescope, so the contour is ``(last note - first note) / R``. A note held over several
ticks counts once (continuations are not notes); re-articulated equal pitches count as notes.
"""
from __future__ import annotations

import numpy as np

from arvae.music.tokens import FIRST_PITCH_TOKEN, MEASURE_TICKS, VOCAB_SIZE, as_measures

ATTRIBUTE_NAMES = ("rhythmic_complexity", "pitch_range", "note_density", "contour")
PITCH_NORMALIZER = 26.0  # R in the paper, as in the authors' code
RHYTHM_WEIGHTS = np.array(
    [
        0.20, 1, 2, 0.5, 2, 1,
        0.67, 1, 2, 0.5, 2, 1,
        0.25, 1, 2, 0.5, 2, 1,
        0.67, 1, 2, 0.5, 2, 1,
    ],
    dtype=np.float64,
)
_RHYTHM_WEIGHTS_NORMALIZED = (RHYTHM_WEIGHTS / RHYTHM_WEIGHTS.sum()).astype(np.float32)


def _to_array(tokens) -> np.ndarray:
    if hasattr(tokens, "detach"):  # torch tensor
        tokens = tokens.detach().cpu().numpy()
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != MEASURE_TICKS:
        raise ValueError(f"expected tokens of shape (N, {MEASURE_TICKS}) or ({MEASURE_TICKS},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        arr = as_measures(arr)  # validates integral values
    if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
        raise ValueError(f"tokens outside the vocabulary 0..{VOCAB_SIZE - 1}")
    return arr


def measure(tokens) -> np.ndarray:
    """Attributes of measures: tokens ``(N, 24)`` (numpy or torch, any integer dtype) or one ``(24,)``
    measure -> float32 ``(N, 4)`` in :data:`ATTRIBUTE_NAMES` order. Vectorized over the batch."""
    arr = _to_array(tokens)
    n = arr.shape[0]
    out = np.zeros((n, len(ATTRIBUTE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    # pitch tokens are monotone in MIDI pitch, so work on tokens directly (differences are equal)
    values = arr.astype(np.int8, copy=False)
    onset = values >= FIRST_PITCH_TOKEN
    onset_f = onset.astype(np.float32)
    count = onset.sum(axis=1)

    out[:, 0] = onset_f @ _RHYTHM_WEIGHTS_NORMALIZED
    out[:, 2] = count / np.float32(MEASURE_TICKS)

    has_two = count >= 2
    # non-onsets become -1 for the max and 127 for the min (tokens are < 32)
    high = np.where(onset, values, np.int8(-1)).max(axis=1)
    low = np.where(onset, values, np.int8(127)).min(axis=1)
    out[:, 1] = np.where(has_two, high.astype(np.int32) - low, 0) / np.float32(PITCH_NORMALIZER)

    first_idx = onset.argmax(axis=1)
    last_idx = MEASURE_TICKS - 1 - onset[:, ::-1].argmax(axis=1)
    rows = np.arange(n)
    first = values[rows, first_idx]
    last = values[rows, last_idx]
    out[:, 3] = np.where(has_two, last.astype(np.int32) - first, 0) / np.float32(PITCH_NORMALIZER)
    return out


def measure_reference(tokens) -> np.ndarray:
    """Plain per-measure loop implementing the same definitions (for testing :func:`measure`)."""
    arr = _to_array(tokens)
    out = np.zeros((arr.shape[0], len(ATTRIBUTE_NAMES)), dtype=np.float32)
    for i, m in enumerate(arr):
        midi_notes = []
        weighted = 0.0
        for t, token in enumerate(m):
            if token >= FIRST_PITCH_TOKEN:
                midi_notes.append(int(token) - FIRST_PITCH_TOKEN + 55)
                weighted += RHYTHM_WEIGHTS[t]
        rc = weighted / RHYTHM_WEIGHTS.sum()
        density = len(midi_notes) / MEASURE_TICKS
        if len(midi_notes) < 2:
            pitch_range = contour = 0.0
        else:
            pitch_range = (max(midi_notes) - min(midi_notes)) / PITCH_NORMALIZER
            contour = sum(b - a for a, b in zip(midi_notes[:-1], midi_notes[1:])) / PITCH_NORMALIZER
        out[i] = (rc, pitch_range, density, contour)
    return out
