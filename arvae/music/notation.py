"""Notation of token measures as SVG, engraved by verovio from their MusicXML."""
from __future__ import annotations

import functools
import threading

from arvae.music.export import musicxml_string
from arvae.music.tokens import as_measures


_VEROVIO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _verovio_toolkit():
    import verovio

    if hasattr(verovio, "enableLog") and hasattr(verovio, "LOG_OFF"):
        verovio.enableLog(verovio.LOG_OFF)
    return verovio.toolkit()


def notation_svg(tokens, width: int | None = None, scale: int | None = None) -> str:
    """Notation of measures ``(M, 24)`` as SVG, engraved by verovio from
    :func:`arvae.music.export.musicxml_string`. Long sequences wrap onto several systems (one SVG)."""
    arr = as_measures(tokens)
    scale = scale or (60 if len(arr) <= 2 else 45)
    width = width or min(2400, 420 + 380 * len(arr))
    xml = musicxml_string(arr)
    with _VEROVIO_LOCK:
        tk = _verovio_toolkit()
        tk.setOptions({
            "pageWidth": int(width), "scale": int(scale), "adjustPageHeight": True, "adjustPageWidth": True, "breaks": "auto",
            "pageMarginTop": 20, "pageMarginBottom": 20, "pageMarginLeft": 20, "pageMarginRight": 20,
            "header": "none", "footer": "none", "svgRemoveXlink": True,
        })
        if not tk.loadData(xml):
            raise ValueError("verovio could not read the MusicXML of these measures")
        pages = [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]
    return pages[0] if len(pages) == 1 else "".join(f'<div class="arvae-page">{p}</div>' for p in pages)
