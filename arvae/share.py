"""Shareable state (issue 14): the view of a tab as a URL query, ``?tab=mnist&model=arvae&z=[...]``,
and back, checked as strictly as every other input."""
from __future__ import annotations

from urllib.parse import urlencode

from arvae.explorer import check_kind, format_z, parse_z


def share_query(key: str, kind: str, z) -> str:
    """The query string (with its ``?``) that reopens dataset ``key`` with model ``kind`` at code ``z``."""
    return "?" + urlencode({"tab": key, "model": check_kind(kind), "z": format_z(z).replace(" ", "")})


def parse_share_query(params, explorers: dict):
    """``(key, kind, z)`` from the query parameters of a link (a mapping), or None when the link
    names no tab; a ``ValueError`` naming what is wrong otherwise. Without ``z`` the tab opens as usual
    (``z`` None)."""
    key = (params.get("tab") or "").strip()
    if not key:
        return None
    if key not in explorers or not explorers[key].available:
        raise ValueError(f"the link names an unknown or unavailable tab {key!r}; "
                         f"available: {[k for k, e in explorers.items() if e.available]}")
    explorer = explorers[key]
    kind = check_kind((params.get("model") or "arvae").strip())
    if kind not in explorer.kinds:
        raise ValueError(f"the link asks for the {kind} model, which {explorer.spec.display_name} does not have")
    z = params.get("z")
    return key, kind, None if z is None or not z.strip() else parse_z(z, explorer.latent_dim)
