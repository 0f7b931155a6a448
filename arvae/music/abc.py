"""ABC text: splitting a file into tunes, reading their meters and titles, parsing one tune."""
from __future__ import annotations

import functools
import re
import types
import warnings


_FIELD = re.compile(r"^[A-Za-z]:")
_NOTE_LETTER = re.compile(r"[A-Ga-gz]")


def split_abc_tunes(text: str) -> list[str]:
    """Split an ABC file (or a folk-rnn style text file) into tunes. Tunes are separated by blank
    lines (ABC standard); a leading block without a ``K:`` field is a file header and is prepended to
    every tune; tunes without an ``X:`` field get one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b.strip("\n") for b in re.split(r"\n[ \t]*\n", text)]
    header = ""
    tunes = []
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        has_key = any(ln.startswith("K:") for ln in lines)
        if not has_key:
            if not tunes and not header and any(_FIELD.match(ln) and not ln.startswith("X:") for ln in lines):
                header = "\n".join(ln for ln in lines if _FIELD.match(ln))
            continue
        body = "\n".join(lines)
        if not any(ln.startswith("X:") for ln in lines):
            body = "X:1\n" + body
        if header:
            # the X: line must come first; file header fields follow it
            first, _, rest = body.partition("\n")
            body = f"{first}\n{header}\n{rest}"
        tunes.append(body)
    return tunes


_METER_NAMES = {"C": "4/4", "C|": "2/2"}


def abc_meters(tune: str) -> set[str]:
    """Meters named by a tune's ``M:`` fields (header and inline ``[M:...]``), normalized (C -> 4/4)."""
    found = re.findall(r"^M:\s*([^\n%]*)", tune, flags=re.M) + re.findall(r"\[M:\s*([^\]]*)\]", tune)
    meters = set()
    for value in found:
        value = value.strip().replace(" ", "")
        meters.add(_METER_NAMES.get(value, value))
    return meters


def abc_size(tune: str) -> tuple[int, int]:
    """Upper bounds of a tune's bars and notes, counted in its music lines before it is parsed: the
    bar-line characters (``|``) and the note and rest letters (``A``-``G``, ``a``-``g``, ``z``)."""
    music = "\n".join(line for line in tune.split("\n") if not _FIELD.match(line))
    return music.count("|"), len(_NOTE_LETTER.findall(music))


def abc_title(tune: str) -> str:
    match = re.search(r"^T:\s*(.*)$", tune, flags=re.M)
    return match.group(1).strip() if match else ""


@functools.cache
def _read_abc_without_beams() -> None:
    """music21 beams every part it reads from ABC, in time quadratic in the bars (17 of 19 s of CPU
    for a 400-bar tune); beams are engraving, which nothing reads from an imported tune. Its ABC
    translator (only) builds parts whose ``makeBeams`` does nothing, once per process."""
    from music21 import stream
    from music21.abcFormat import translate

    class BeamlessPart(stream.Part):
        def makeBeams(self, *, inPlace=False, **options):
            return None if inPlace else self

    translate.stream = types.SimpleNamespace(**{**vars(stream), "Part": BeamlessPart})


def parse_abc(tune: str):
    """One ABC tune (text) -> music21 Score (without beams)."""
    from music21 import converter

    _read_abc_without_beams()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.parse(tune, format="abc")
