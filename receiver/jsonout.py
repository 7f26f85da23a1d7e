"""JSON out, fast: orjson where it can, the standard library where orjson refuses.

Replies, journal lines, log lines and recording rows are encoded on every callback; orjson does it
5-10x faster than `json.dumps`. It refuses what JSON itself cannot carry exactly (integers beyond
64 bits, which a callback body may in principle hold, and non-string keys): those values go through
the standard library, so nothing that encoded before fails now. Input is still parsed with `json`:
orjson would read a >64-bit integer as a float, silently changing the callback.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# datetimes and dataclasses come out as str() gives them, as json.dumps(default=str) wrote them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is); values JSON has no type for become str()."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except TypeError:  # an integer beyond 64 bits, a non-string key, a lone surrogate
        # A lone surrogate (json.loads accepts "\ud800" in a callback body) cannot be UTF-8:
        # backslashreplace writes it back as the JSON escape it came in as.
        return _fallback(value).encode("utf-8", "backslashreplace")


def dumps_str(value: Any) -> str:
    return dumps(value).decode("utf-8")
