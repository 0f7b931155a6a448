"""Folk tunes (Scottish and Irish, ABC): measures of the melodies, 4 musical attributes.

Default source: music21's bundled ABC collections; with ``data_dir``, a folk-rnn style ABC text
file (tunes separated by blank lines) or a folder of ``.abc`` files. Tunes whose ``M:`` fields name
no 4/4 or 2/2 meter are left out before parsing.
"""
from __future__ import annotations

import logging
from pathlib import Path

from arvae.data import music
from arvae.music import attributes, tokens
from arvae.music.abc import abc_meters, parse_abc, split_abc_tunes
from arvae.music.extract import ACCEPTED_METERS, measures_from_stream

log = logging.getLogger(__name__)

ATTRIBUTE_NAMES = attributes.ATTRIBUTE_NAMES
VOCAB_SIZE = tokens.VOCAB_SIZE
COLLECTIONS = ("ryansMammoth", "oneills1850", "airdsAirs")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")


def _pieces(files: list[tuple[str, Path]], max_items):
    pieces, tunes_total = [], 0
    for label, path in files:
        for k, tune in enumerate(split_abc_tunes(_read(path))):
            tunes_total += 1
            meters = abc_meters(tune)
            if meters and not meters & set(ACCEPTED_METERS):
                continue  # 6/8, 3/4, 2/4, ...: nothing to take
            pieces.append(music.Piece(f"{label}#{k + 1}", lambda tune=tune: parse_abc(tune)))
    stats = {"tunes_in_source": tunes_total, "tunes_4/4_or_2/2": len(pieces)}
    return music.take(pieces, max_items), stats


def corpus(data_dir=None, max_items: int | None = None) -> music.MusicCorpus:
    """The ABC files of ``data_dir`` (one file, or a folder of ``*.abc``), else music21's bundled
    collections: also when ``data_dir`` is a folder without ABC files (as dSprites falls back to
    its renderer), so that one ``--data-dir`` for ``--dataset all`` (the MNIST folder) serves."""
    folder = Path(data_dir).expanduser() if data_dir is not None else None
    if folder is not None and folder.is_dir() and not any(folder.glob("*.abc")):
        log.info("no ABC file in %s: using music21's bundled folk collections", data_dir)
        data_dir = None
    if data_dir is None:
        import music21
        from music21 import corpus as m21corpus

        files = [(f"{c}/{Path(p).stem}", Path(p)) for c in COLLECTIONS for p in sorted(m21corpus.getWork(c))]
        source = f"music21 bundled folk ABC collections ({', '.join(COLLECTIONS)})"
        key = f"music21-abc|{','.join(COLLECTIONS)}|{music21.__version__}"
    else:
        root = Path(data_dir).expanduser().resolve()
        paths = sorted(root.glob("*.abc")) if root.is_dir() else [root]
        if not paths or not all(p.is_file() for p in paths):
            raise FileNotFoundError(f"no ABC file at {root}")
        files = [(p.stem, p) for p in paths]
        source = f"folk-rnn style ABC data {root}"
        key = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)

    def make():
        pieces, stats = _pieces(files, max_items)
        return music.parse_pieces("folk", source, pieces, measures_from_stream, stats=stats)

    return music.load_corpus("folk", source, key, max_items, make)


def load_split(split: str, data_dir=None, max_items: int | None = None):
    """``max_items`` caps the tunes parsed (after leaving out tunes in other meters)."""
    return music.make_split(corpus(data_dir, max_items), split)


def load_pieces(split: str, data_dir=None, max_items: int | None = None) -> list[str]:
    """The tune of every measure of ``split`` (for the held-out sample's menu)."""
    return music.piece_names(corpus(data_dir, max_items), split)
