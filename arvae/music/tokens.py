"""The measure representation of MeasureVAE (Pati et al. 2019), shared by both music datasets.

A measure is one bar of 4/4 as 24 tokens: 4 beats x 6 ticks. The ticks of a beat sit at
:data:`TICK_OFFSETS` (in quarter notes) -- the union of the sixteenth-note and the triplet grid,
so the ticks are *not* evenly spaced (a tick lasts 1/4, 1/12, 1/6, 1/6, 1/12 or 1/4 of a beat).

Vocabulary (one for both datasets):

* ``CONTINUATION`` (0, ``"__"``): the previous note or rest goes on;
* ``REST`` (1, ``"rest"``): a rest starts;
* ``2 + (midi - PITCH_LOW)``: a note of that MIDI pitch starts, for ``PITCH_LOW <= midi <= PITCH_HIGH``.

Measures are self-contained: a note tied over the bar line is re-articulated at tick 0, and a
leading continuation (which a model may produce) is read as a rest. The *canonical* form of a
measure (what :func:`canonicalize` returns and what the importers produce) additionally merges
consecutive rests into one rest token followed by continuations.
"""
from __future__ import annotations

import numpy as np

BEATS = 4
TICKS_PER_BEAT = 6
MEASURE_TICKS = BEATS * TICKS_PER_BEAT  # 24
TICK_OFFSETS = (0.0, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4)  # within a beat, in quarter notes
# the same grid in twelfths of a quarter note (exact integers)
TICK_TWELFTHS = (0, 3, 4, 6, 8, 9)
MEASURE_TWELFTHS = BEATS * 12

CONTINUATION = 0
REST = 1
PITCH_LOW = 55  # G3
PITCH_HIGH = 84  # C6
NUM_PITCHES = PITCH_HIGH - PITCH_LOW + 1  # 30
FIRST_PITCH_TOKEN = 2
VOCAB_SIZE = FIRST_PITCH_TOKEN + NUM_PITCHES  # 32

CONTINUATION_NAME = "__"
REST_NAME = "rest"
_PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# position of every tick of a measure, in twelfths of a quarter note (0 .. 45), plus the bar end (48)
TICK_POSITIONS_TWELFTHS = np.array(
    [beat * 12 + TICK_TWELFTHS[k] for beat in range(BEATS) for k in range(TICKS_PER_BEAT)] + [MEASURE_TWELFTHS],
    dtype=np.int64,
)
# the same in quarter notes (float), without the bar end: shape (24,)
TICK_POSITIONS = TICK_POSITIONS_TWELFTHS[:-1] / 12.0
# twelfth-of-a-quarter residue within a beat -> tick index within the beat (-1: off the grid)
_TWELFTH_TO_TICK = np.full(12, -1, dtype=np.int64)
_TWELFTH_TO_TICK[list(TICK_TWELFTHS)] = np.arange(TICKS_PER_BEAT)


def midi_name(midi: int) -> str:
    """``60 -> "C4"``, ``73 -> "C#5"`` (sharps, music21's octave numbering)."""
    midi = int(midi)
    return f"{_PITCH_CLASS_NAMES[midi % 12]}{midi // 12 - 1}"


def token_name(token: int) -> str:
    """``0 -> "__"``, ``1 -> "rest"``, pitch tokens -> note name with octave, e.g. ``"C#5"``."""
    token = int(token)
    if token == CONTINUATION:
        return CONTINUATION_NAME
    if token == REST:
        return REST_NAME
    if FIRST_PITCH_TOKEN <= token < VOCAB_SIZE:
        return midi_name(token - FIRST_PITCH_TOKEN + PITCH_LOW)
    raise ValueError(f"token {token} is outside the vocabulary (0..{VOCAB_SIZE - 1})")


TOKEN_NAMES = tuple(token_name(i) for i in range(VOCAB_SIZE))


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def midi_to_token(midi):
    """Vectorized MIDI pitch -> pitch token. Raises ``ValueError`` for pitches outside the range."""
    midi = _as_numpy(midi).astype(np.int64)
    if midi.size and (midi.min() < PITCH_LOW or midi.max() > PITCH_HIGH):
        raise ValueError(f"MIDI pitch outside {PITCH_LOW}..{PITCH_HIGH}: {midi.min()}..{midi.max()}")
    out = midi - PITCH_LOW + FIRST_PITCH_TOKEN
    return out if out.ndim else int(out)


def token_to_midi(tokens):
    """Vectorized token -> MIDI pitch; 0 for the continuation and rest tokens (as in the paper)."""
    tokens = _as_numpy(tokens).astype(np.int64)
    out = np.where(tokens >= FIRST_PITCH_TOKEN, tokens - FIRST_PITCH_TOKEN + PITCH_LOW, 0)
    return out if out.ndim else int(out)


def is_onset(tokens) -> np.ndarray:
    """Boolean mask of note onsets (pitch tokens)."""
    return _as_numpy(tokens) >= FIRST_PITCH_TOKEN


def as_measures(tokens) -> np.ndarray:
    """Validate and return tokens as an int64 array ``(M, 24)`` (a single ``(24,)`` measure -> ``(1, 24)``)."""
    arr = _as_numpy(tokens)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != MEASURE_TICKS:
        raise ValueError(f"expected tokens of shape (M, {MEASURE_TICKS}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if arr.size and not np.all(np.mod(arr, 1) == 0):
            raise ValueError("tokens must be integers")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
        raise ValueError(f"tokens outside the vocabulary 0..{VOCAB_SIZE - 1}")
    return arr


def canonicalize(tokens) -> np.ndarray:
    """Canonical form of measures ``(M, 24)``: a leading continuation becomes a rest, and a rest that
    follows a rest (with only continuations between) becomes a continuation. Notes are unchanged."""
    arr = as_measures(tokens).copy()
    arr[:, 0] = np.where(arr[:, 0] == CONTINUATION, REST, arr[:, 0])
    in_rest = arr[:, 0] == REST  # is the sounding event a rest?
    for t in range(1, MEASURE_TICKS):
        col = arr[:, t]
        redundant = (col == REST) & in_rest
        arr[redundant, t] = CONTINUATION
        in_rest = np.where(col == CONTINUATION, in_rest, col == REST)
    return arr


def positions_to_ticks(twelfths) -> np.ndarray:
    """Positions within a measure in twelfths of a quarter (integers 0..48) -> tick index (0..24),
    -1 where the position is not on the tick grid. 48 (the bar end) maps to 24."""
    twelfths = np.asarray(twelfths, dtype=np.int64)
    beat, residue = np.divmod(twelfths, 12)
    tick = beat * TICKS_PER_BEAT + _TWELFTH_TO_TICK[residue]
    return np.where(_TWELFTH_TO_TICK[residue] >= 0, tick, -1)


def nearest_ticks(quarters) -> np.ndarray:
    """Positions within a measure in quarter notes (float, 0..4) -> index of the nearest tick
    position (0..24, 24 being the bar end)."""
    q = np.asarray(quarters, dtype=np.float64) * 12.0
    grid = TICK_POSITIONS_TWELFTHS.astype(np.float64)
    idx = np.clip(np.searchsorted(grid, q), 1, len(grid) - 1)
    left, right = grid[idx - 1], grid[idx]
    return np.where(q - left <= right - q, idx - 1, idx)


def measures_to_string(tokens) -> str:
    """Human-readable rendering, one measure per line, beats separated by ``|``."""
    arr = as_measures(tokens)
    lines = []
    for m in arr:
        beats = [" ".join(TOKEN_NAMES[t] for t in m[b * TICKS_PER_BEAT:(b + 1) * TICKS_PER_BEAT]) for b in range(BEATS)]
        lines.append(" | ".join(beats))
    return "\n".join(lines)
