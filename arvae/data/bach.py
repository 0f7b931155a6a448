"""Bach chorales (music21's bundled corpus): measures of the soprano parts, 4 musical attributes."""
from __future__ import annotations

from arvae.data import music
from arvae.music import attributes, tokens
from arvae.music.extract import measures_from_stream

ATTRIBUTE_NAMES = attributes.ATTRIBUTE_NAMES
VOCAB_SIZE = tokens.VOCAB_SIZE
SOURCE = "music21 bundled Bach chorales (soprano parts)"


def _soprano(score):
    parts = list(score.parts)
    names = [f"{p.partName or ''} {p.id or ''}".lower() for p in parts]
    index = next((i for i, n in enumerate(names) if "soprano" in n), 0)
    return measures_from_stream(score, part=index)


def _pieces(max_items):
    from music21 import corpus

    filenames = list(corpus.chorales.Iterator(returnType="filename"))  # the 371 Riemenschneider chorales
    return music.take((music.Piece(f, lambda f=f: corpus.parse(f)) for f in filenames), max_items)


def corpus(max_items: int | None = None) -> music.MusicCorpus:
    import music21

    return music.load_corpus("bach", SOURCE, f"music21-chorales|{music21.__version__}", max_items,
                             lambda: music.parse_pieces("bach", SOURCE, _pieces(max_items), _soprano))


def load_split(split: str, data_dir=None, max_items: int | None = None):
    """``data_dir`` is unused (the chorales ship with music21); ``max_items`` caps the chorales parsed."""
    return music.make_split(corpus(max_items), split)


def load_pieces(split: str, data_dir=None, max_items: int | None = None) -> list[str]:
    """The chorale of every measure of ``split`` (for the held-out sample's menu)."""
    return music.piece_names(corpus(max_items), split)
