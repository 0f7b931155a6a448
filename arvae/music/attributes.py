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
    """Validated tokens ``(N, 24)`` as int8 (every token fits: the vocabulary has 32)."""
    if hasattr(tokens, "detach"):  # torch tensor
        tokens = tokens.detach().cpu().numpy()
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != MEASURE_TICKS:
        raise ValueError(f"expected tokens of shape (N, {MEASURE_TICKS}) or ({MEASURE_TICKS},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        arr = as_measures(arr)  # validates integral values
    if arr.dtype.itemsize == 1:  # int8 / uint8: one unsigned pass catches negatives too
        small = arr.view(np.int8)
        valid = not small.size or int(small.view(np.uint8).max()) < VOCAB_SIZE
    else:
        valid = not arr.size or (int(arr.min()) >= 0 and int(arr.max()) < VOCAB_SIZE)
        small = arr.astype(np.int8) if valid else None
    if not valid:
        raise ValueError(f"tokens outside the vocabulary 0..{VOCAB_SIZE - 1}")
    return small


# per-byte lookup tables for 8 ticks' onsets packed into a byte (bit t = tick t of the byte's 8)
_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.float32)
_BYTE_ONSETS = _BYTE_BITS.sum(axis=1).astype(np.int32)
_BYTE_RHYTHM = np.stack([_BYTE_BITS @ _RHYTHM_WEIGHTS_NORMALIZED[8 * k:8 * k + 8] for k in range(MEASURE_TICKS // 8)])


def measure(tokens) -> np.ndarray:
    """Attributes of measures: tokens ``(N, 24)`` (numpy or torch, any integer dtype) or one ``(24,)``
    measure -> float32 ``(N, 4)`` in :data:`ATTRIBUTE_NAMES` order. Vectorized over the batch
    (several million measures/s); :func:`measure_reference` is the plain loop it must agree with.

    Pitch tokens (>= 2) are monotone in MIDI pitch, so differences are taken on tokens. The
    onsets of a measure are packed into three bytes, whose weighted and plain bit counts come
    from 256-entry tables; rest/hold tokens (0, 1) are below every pitch token, so the highest
    token of a measure is its highest note, and shifting tokens down by 2 with unsigned
    wrap-around puts them above every pitch for the lowest.
    """
    values = _to_array(tokens).view(np.uint8)
    n = values.shape[0]
    out = np.zeros((n, len(ATTRIBUTE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    onset = values >= FIRST_PITCH_TOKEN
    packed = np.packbits(onset, axis=1, bitorder="little")                  # (N, 3): ticks 0-7, 8-15, 16-23
    out[:, 0] = sum(_BYTE_RHYTHM[k][packed[:, k]] for k in range(packed.shape[1]))
    count = sum(_BYTE_ONSETS[packed[:, k]] for k in range(packed.shape[1]))
    out[:, 2] = count / np.float32(MEASURE_TICKS)

    has_two = count >= 2
    high = values.max(axis=1).astype(np.int16)
    low = (values - np.uint8(FIRST_PITCH_TOKEN)).min(axis=1).astype(np.int16) + FIRST_PITCH_TOKEN
    out[:, 1] = np.where(has_two, high - low, 0) / np.float32(PITCH_NORMALIZER)

    rows = np.arange(n)
    first = values[rows, onset.argmax(axis=1)].astype(np.int16)
    last = values[rows, MEASURE_TICKS - 1 - onset[:, ::-1].argmax(axis=1)].astype(np.int16)
    out[:, 3] = np.where(has_two, last - first, 0) / np.float32(PITCH_NORMALIZER)
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
