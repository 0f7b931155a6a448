"""The corpus pipeline shared by the two music datasets (:mod:`arvae.data.bach`, :mod:`arvae.data.folk`).

pieces (music21 scores) -> monophonic line -> 24-tick measures (:func:`arvae.music.extract.measures_from_stream`:
4/4 bars on the tick grid, no empty bars) -> pitches moved into MIDI 55..84 by octaves (bars that
cannot be are dropped) -> cached as ``.npz`` with the piece of every measure -> split by piece
(:func:`arvae.data.base.split_groups`, 0.8/0.1/0.1, seed 0) -> train split augmented with every
transposition that keeps each piece inside the corpus's pitch range -> attributes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from arvae.data.base import AttributeDataset, cache_dir, check_split, save_npz_atomic, split_groups
from arvae.music import attributes
from arvae.music.extract import ExtractedMeasures, fit_pitch_range, grid_to_tokens
from arvae.music.tokens import FIRST_PITCH_TOKEN, MEASURE_TICKS, PITCH_HIGH, PITCH_LOW, token_to_midi

CACHE_VERSION = 2
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0
log = logging.getLogger(__name__)


@dataclass
class Piece:
    """One piece of a corpus: a name and a function that parses it (into a music21 stream)."""

    name: str
    load: Callable[[], object]


@dataclass
class MusicCorpus:
    """Parsed measures of a corpus, before augmentation (this is what is cached)."""

    name: str
    source: str  # readable description of where the pieces come from
    tokens: np.ndarray  # int64 (M, 24)
    piece_ids: np.ndarray  # int64 (M,), index into piece_names
    piece_names: list[str]
    stats: dict

    @property
    def num_pieces(self) -> int:
        return len(self.piece_names)

    def pitch_bounds(self) -> tuple[int, int]:
        """Lowest and highest MIDI pitch of the corpus."""
        notes = self.tokens[self.tokens >= FIRST_PITCH_TOKEN]
        if notes.size == 0:
            return PITCH_LOW, PITCH_HIGH
        return int(token_to_midi(notes.min())), int(token_to_midi(notes.max()))

    def split_indices(self) -> dict[str, np.ndarray]:
        """Measure indices of each split; all measures of a piece land in the same split."""
        return split_groups(self.piece_ids, fractions=SPLIT_FRACTIONS, seed=SPLIT_SEED)


def parse_pieces(name: str, source: str, pieces: Sequence[Piece],
                 extract: Callable[[object], ExtractedMeasures], *, stats: dict | None = None) -> MusicCorpus:
    """Parse pieces into a :class:`MusicCorpus` (tqdm progress bar). A piece that fails to parse or
    convert is skipped and counted in ``stats["pieces_failed"]``."""
    from tqdm.auto import tqdm

    stats = dict(stats or {})
    token_rows, id_rows, names = [], [], []
    skipped: Counter = Counter()
    skipped_meters: Counter = Counter()
    failed, without_measures, duplicates, total_bars = 0, 0, 0, 0
    seen: set[bytes] = set()
    bars_dropped, pieces_shifted, bars_shifted = 0, 0, 0
    failures: list[str] = []
    for piece in tqdm(pieces, desc=f"parsing {name}", unit="piece", dynamic_ncols=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extracted = extract(piece.load())
            fit = fit_pitch_range(extracted.grid, PITCH_LOW, PITCH_HIGH, drop_unfittable=True)
            tokens = grid_to_tokens(fit.grid)
        except Exception as error:  # music21 raises a zoo of exception types on odd input
            failed += 1
            if len(failures) < 20:
                failures.append(f"{piece.name}: {type(error).__name__}: {error}"[:300])
            continue
        total_bars += extracted.total_bars
        skipped.update(extracted.skipped)
        skipped_meters.update(extracted.skipped_meters)
        bars_dropped += fit.bars_dropped
        bars_shifted += fit.bars_shifted
        pieces_shifted += int(fit.piece_shift != 0)
        if len(tokens) == 0:
            without_measures += 1
            continue
        digest = hashlib.sha1(tokens.astype(np.int8).tobytes()).digest()
        if digest in seen:  # the same piece twice in the collection(s): keep one, so splits cannot share it
            duplicates += 1
            continue
        seen.add(digest)
        token_rows.append(tokens)
        id_rows.append(np.full(len(tokens), len(names), dtype=np.int64))
        names.append(piece.name)
    tokens = np.concatenate(token_rows) if token_rows else np.zeros((0, MEASURE_TICKS), dtype=np.int64)
    piece_ids = np.concatenate(id_rows) if id_rows else np.zeros(0, dtype=np.int64)
    stats.update(
        pieces_given=len(pieces),
        pieces_failed=failed,
        pieces_without_measures=without_measures,
        pieces_duplicate=duplicates,
        pieces_used=len(names),
        bars_total=total_bars,
        measures=int(len(tokens)),
        bars_skipped={k: int(v) for k, v in skipped.items()},
        bars_skipped_meters={k: int(v) for k, v in skipped_meters.most_common(12)},
        bars_out_of_range_dropped=bars_dropped,
        bars_moved_by_octaves=bars_shifted,
        pieces_moved_by_octaves=pieces_shifted,
        failures=failures,
    )
    if failed:
        log.warning("%s: %d of %d pieces failed to parse and were skipped", name, failed, len(pieces))
    return MusicCorpus(name, source, tokens, piece_ids, names, stats)


_MEMORY: dict[str, MusicCorpus] = {}


def _cache_path(name: str, source_key: str, max_items: int | None):
    digest = hashlib.sha1(f"{CACHE_VERSION}|{source_key}|{max_items}".encode()).hexdigest()[:12]
    suffix = "all" if max_items is None else f"max{max_items}"
    return cache_dir() / f"{name}-{suffix}-{digest}.npz"


def load_corpus(name: str, source: str, source_key: str, max_items: int | None,
                make: Callable[[], MusicCorpus]) -> MusicCorpus:
    """The corpus from the npz cache (keyed by dataset name, source and max_items), else ``make()``
    and cache it. Kept in memory for the process, so the three splits parse once."""
    path = _cache_path(name, source_key, max_items)
    key = str(path)
    if key in _MEMORY:
        return _MEMORY[key]
    corpus = None
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                corpus = MusicCorpus(
                    name=name,
                    source=str(data["source"]),
                    tokens=data["tokens"].astype(np.int64),
                    piece_ids=data["piece_ids"].astype(np.int64),
                    piece_names=[str(s) for s in data["piece_names"]],
                    stats=json.loads(str(data["stats"])),
                )
        except Exception as error:  # a damaged cache is rebuilt
            log.warning("ignoring unreadable cache %s (%s)", path, error)
            corpus = None
    if corpus is None:
        corpus = make()
        save_npz_atomic(
            path,
            tokens=corpus.tokens.astype(np.int8),
            piece_ids=corpus.piece_ids.astype(np.int32),
            piece_names=np.array(corpus.piece_names, dtype=str),
            source=np.array(corpus.source),
            stats=np.array(json.dumps(corpus.stats)),
        )
    _MEMORY[key] = corpus
    return corpus


def transpositions(tokens: np.ndarray, piece_ids: np.ndarray, low: int, high: int):
    """Every transposition (in semitones, 0 included) of every piece that keeps the piece inside
    ``low..high``. Returns (tokens, piece_ids, transpositions per piece on average)."""
    if len(tokens) == 0:
        return tokens, piece_ids, 0.0
    pitches = token_to_midi(tokens)
    notes = tokens >= FIRST_PITCH_TOKEN
    row_min = np.where(notes, pitches, 10_000).min(axis=1)
    row_max = np.where(notes, pitches, -10_000).max(axis=1)
    pieces, inverse = np.unique(piece_ids, return_inverse=True)
    piece_min = np.full(len(pieces), 10_000)
    piece_max = np.full(len(pieces), -10_000)
    np.minimum.at(piece_min, inverse, row_min)
    np.maximum.at(piece_max, inverse, row_max)
    shift_lo = np.minimum(low - piece_min, 0)  # a piece already outside keeps at least shift 0
    shift_hi = np.maximum(high - piece_max, 0)
    per_piece = shift_hi - shift_lo + 1
    lo_m, hi_m = shift_lo[inverse], shift_hi[inverse]
    out_tokens, out_ids = [], []
    for shift in range(int(shift_lo.min()), int(shift_hi.max()) + 1):
        sel = (lo_m <= shift) & (shift <= hi_m)
        if not sel.any():
            continue
        shifted = tokens[sel].copy()
        shifted[shifted >= FIRST_PITCH_TOKEN] += shift
        out_tokens.append(shifted)
        out_ids.append(piece_ids[sel])
    return np.concatenate(out_tokens), np.concatenate(out_ids), float(per_piece.mean())


def make_split(corpus: MusicCorpus, split: str, *, augment: bool = True) -> AttributeDataset:
    """The measures of one split as an :class:`AttributeDataset` (train: transposed, see module doc)."""
    check_split(split)
    index = corpus.split_indices()[split]
    tokens = corpus.tokens[index]
    ids = corpus.piece_ids[index]
    low, high = corpus.pitch_bounds()
    source = (f"{corpus.source}: {corpus.num_pieces:,} pieces -> {len(corpus.tokens):,} measures"
              f"{_failed_note(corpus)}; split {split} (by piece, {SPLIT_FRACTIONS}, seed {SPLIT_SEED}): "
              f"{len(np.unique(ids)):,} pieces, {len(tokens):,} measures")
    if split == "train" and augment:
        tokens, ids, per_piece = transpositions(tokens, ids, low, high)
        source += (f"; {per_piece:.1f} transpositions per piece on average (all keeping the piece within "
                   f"MIDI {low}-{high}) -> {len(tokens):,} measures")
    tokens = np.ascontiguousarray(tokens, dtype=np.int64)
    attrs = attributes.measure(tokens) if len(tokens) else np.zeros((0, len(attributes.ATTRIBUTE_NAMES)), np.float32)
    return AttributeDataset(
        inputs=torch.from_numpy(tokens),
        attributes=torch.from_numpy(attrs),
        attribute_names=attributes.ATTRIBUTE_NAMES,
        source=source,
    )


def piece_names(corpus: MusicCorpus, split: str) -> list[str]:
    """The piece of every measure of ``split`` (as :func:`make_split` orders them, before any
    augmentation), shortened to its last two path parts: what the held-out sample shows in menus."""
    index = corpus.split_indices()[check_split(split)]
    return ["/".join(str(corpus.piece_names[i]).replace("\\", "/").rsplit("/", 2)[-2:]) for i in corpus.piece_ids[index]]


def _failed_note(corpus: MusicCorpus) -> str:
    failed = corpus.stats.get("pieces_failed", 0)
    return f" ({failed} failed to parse)" if failed else ""


def summary(corpus: MusicCorpus) -> dict:
    """Sizes of a corpus and its splits (for reports)."""
    splits = corpus.split_indices()
    low, high = corpus.pitch_bounds()
    out = {
        "pieces": corpus.num_pieces,
        "measures": int(len(corpus.tokens)),
        "pitch_range": (low, high),
        **{f"{s}_pieces": int(len(np.unique(corpus.piece_ids[i]))) for s, i in splits.items()},
        **{f"{s}_measures": int(len(i)) for s, i in splits.items()},
    }
    out.update({k: v for k, v in corpus.stats.items() if k != "failures"})
    return out


def take(pieces: Iterable[Piece], max_items: int | None) -> list[Piece]:
    """The first ``max_items`` pieces (all when None)."""
    pieces = list(pieces)
    return pieces if max_items is None else pieces[: max(int(max_items), 0)]
