"""ABC text: splitting a file into tunes, reading their meters and titles, parsing one tune."""
from __future__ import annotations

import re
import warnings


_FIELD = re.compile(r"^[A-Za-z]:")


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


def abc_title(tune: str) -> str:
    match = re.search(r"^T:\s*(.*)$", tune, flags=re.M)
    return match.group(1).strip() if match else ""


def parse_abc(tune: str):
    """One ABC tune (text) -> music21 Score."""
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.parse(tune, format="abc")
