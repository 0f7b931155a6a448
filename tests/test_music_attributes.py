"""Tokens and the four musical attributes (paper, Appendix A)."""

import numpy as np
import pytest
import torch

from arvae.music import attributes as A
from arvae.music import tokens as T

C4, D4, E4, F4, G4 = (T.midi_to_token(m) for m in (60, 62, 64, 65, 67))
SUM_F = float(A.RHYTHM_WEIGHTS.sum())


def measure_of(events):
    """{tick: token} -> a (24,) measure, continuations elsewhere."""
    m = np.zeros(24, dtype=np.int64)
    for tick, token in events.items():
        m[tick] = token
    return m


def random_measures(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, T.VOCAB_SIZE, size=(n, 24))
    x[rng.random(x.shape) < rng.uniform(0.2, 0.9)] = T.CONTINUATION
    x[rng.random(x.shape) < 0.1] = T.REST
    x[: n // 10] = T.REST  # some all-rest measures
    x[n // 10: n // 5, 1:] = T.CONTINUATION  # some single-event measures
    return x


def test_vocabulary():
    assert (T.VOCAB_SIZE, T.MEASURE_TICKS, T.BEATS, T.TICKS_PER_BEAT) == (32, 24, 4, 6)
    assert (T.CONTINUATION, T.REST, T.PITCH_LOW, T.PITCH_HIGH) == (0, 1, 55, 84)
    assert T.TICK_OFFSETS == pytest.approx((0, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4))
    assert T.token_name(0) == "__" and T.token_name(1) == "rest"
    assert T.token_name(2) == "G3" and T.token_name(31) == "C6" and T.token_name(T.midi_to_token(73)) == "C#5"
    assert len(set(T.TOKEN_NAMES)) == 32
    midi = np.arange(55, 85)
    assert np.array_equal(T.token_to_midi(T.midi_to_token(midi)), midi)
    assert T.midi_to_token(60) == 7 and T.token_to_midi(7) == 60
    assert np.array_equal(T.token_to_midi(np.array([0, 1, 2])), [0, 0, 55])
    with pytest.raises(ValueError):
        T.midi_to_token(np.array([54, 60]))
    with pytest.raises(ValueError):
        T.token_name(32)
    # tick positions: beats of 0, 1/4, 1/3, 1/2, 2/3, 3/4
    assert T.TICK_POSITIONS[:7] == pytest.approx([0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0])


def test_canonicalize():
    m = np.array([[0, 0, 1, 0, 1, C4, 1, 1, 0, D4] + [0] * 13 + [1]])
    expected = np.array([[1, 0, 0, 0, 0, C4, 1, 0, 0, D4] + [0] * 13 + [1]])
    assert np.array_equal(T.canonicalize(m), expected)
    assert np.array_equal(T.canonicalize(expected), expected)


def test_the_attributes_of_a_measure_and_of_its_canonical_form_are_equal():
    """Decoded measures are canonicalized (``MeasureVAE.generate``): that must not move any attribute."""
    rng = np.random.default_rng(0)
    # rests and continuations dense enough that most measures have a rest after a rest
    raw = np.where(rng.random((2000, 24)) < 0.6, rng.integers(0, 2, (2000, 24)), rng.integers(0, T.VOCAB_SIZE, (2000, 24)))
    canonical = T.canonicalize(raw)
    assert (canonical != raw).any(axis=1).mean() > 0.5
    assert np.array_equal(A.measure(canonical), A.measure(raw))


def test_four_quarter_notes():
    m = measure_of({0: C4, 6: D4, 12: E4, 18: F4})
    rc, pitch_range, density, contour = A.measure(m)[0]
    assert A.measure(m).shape == (1, 4) and A.measure(m).dtype == np.float32
    assert rc == pytest.approx((0.2 + 0.67 + 0.25 + 0.67) / SUM_F)
    assert pitch_range == pytest.approx(5 / 26)
    assert density == pytest.approx(4 / 24)
    assert contour == pytest.approx(5 / 26)


def test_rest_and_silent_measures():
    assert np.array_equal(A.measure(np.full((2, 24), T.REST)), np.zeros((2, 4), np.float32))
    assert np.array_equal(A.measure(measure_of({0: T.REST})), np.zeros((1, 4), np.float32))
    assert np.array_equal(A.measure(np.zeros(24, dtype=np.int64)), np.zeros((1, 4), np.float32))


def test_single_note_and_onset_semantics():
    one = A.measure(measure_of({3: G4}))[0]
    assert one == pytest.approx([0.5 / SUM_F, 0, 1 / 24, 0])
    # off-beat onsets weigh more than on-beat ones
    assert A.measure(measure_of({2: C4}))[0, 0] > A.measure(measure_of({0: C4}))[0, 0]
    # contour and range over the note onsets only (rests and continuations are skipped)
    m = measure_of({0: C4, 6: T.REST, 9: G4, 12: T.REST, 20: E4})
    assert A.measure(m)[0] == pytest.approx([(0.2 + 0.5 + 2) / SUM_F, 7 / 26, 3 / 24, 4 / 26])
    descending = measure_of({0: E4, 6: D4, 12: C4})
    assert A.measure(descending)[0, 3] == pytest.approx(-4 / 26)
    repeated = measure_of({0: C4, 12: C4})
    assert A.measure(repeated)[0] == pytest.approx([(0.2 + 0.25) / SUM_F, 0, 2 / 24, 0])
    # every tick an onset: density 1, rhythmic complexity 1
    full = np.full(24, C4)
    assert A.measure(full)[0] == pytest.approx([1, 0, 1, 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_matches_reference(seed):
    x = random_measures(3000, seed)
    expected = A.measure_reference(x)
    np.testing.assert_allclose(A.measure(x), expected, atol=1e-6)
    np.testing.assert_allclose(A.measure(torch.from_numpy(x)), expected, atol=1e-6)
    np.testing.assert_allclose(A.measure(x.astype(np.int8)), expected, atol=1e-6)
    np.testing.assert_allclose(A.measure(x[5]), expected[5:6], atol=1e-6)


def test_vectorized_matches_reference_on_hand_made_measures():
    """Edge cases of the packed-onset / wrap-around tricks in ``measure``: onsets on the first and
    last tick of each packed byte, the lowest and highest pitch tokens, rests and holds only,
    every dtype the app and the data pipeline pass."""
    low, high = T.FIRST_PITCH_TOKEN, T.VOCAB_SIZE - 1
    measures = [
        measure_of({}),                                   # holds only
        np.full(24, T.REST),                              # rests only
        measure_of({0: low}),                             # one note
        measure_of({23: high}),                           # one note on the last tick
        measure_of({0: low, 23: high}),                   # full range, rising
        measure_of({0: high, 23: low}),                   # full range, falling
        measure_of({7: E4, 8: C4, 15: G4, 16: D4}),       # byte boundaries of the packed onsets
        measure_of({t: (low if t % 2 else high) for t in range(24)}),
        measure_of({3: C4, 4: T.REST, 9: C4, 10: T.CONTINUATION, 20: F4}),
        np.array([T.REST, C4] * 12),
        np.arange(24) % T.VOCAB_SIZE,
        np.arange(8, 32),
    ]
    x = np.stack(measures).astype(np.int64)
    expected = A.measure_reference(x)
    for variant in (x, x.astype(np.int8), x.astype(np.uint8), x.astype(np.int32), torch.from_numpy(x),
                    x.astype(np.float64)):
        np.testing.assert_allclose(A.measure(variant), expected, atol=1e-6)
    for i, m in enumerate(measures):  # one measure at a time, as the app measures a decoded one
        np.testing.assert_allclose(A.measure(m), expected[i:i + 1], atol=1e-6)
    with pytest.raises(ValueError):
        A.measure(np.full(24, -1, dtype=np.int8))
    with pytest.raises(ValueError):
        A.measure(np.full(24, 256 + 3, dtype=np.int64))  # would wrap to a valid int8 token


def test_input_validation_and_empty_batch():
    assert A.measure(np.zeros((0, 24), dtype=np.int64)).shape == (0, 4)
    with pytest.raises(ValueError):
        A.measure(np.full((1, 24), 32))
    with pytest.raises(ValueError):
        A.measure(np.zeros((2, 23), dtype=np.int64))
    assert A.ATTRIBUTE_NAMES == ("rhythmic_complexity", "pitch_range", "note_density", "contour")
