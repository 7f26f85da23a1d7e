"""JSON out, fast, and the one text policy for everything imhook writes down.

Replies, journal lines, log lines and recording rows are encoded on every callback; orjson does it
5-10x faster than `json.dumps`. It refuses what JSON itself cannot carry exactly (integers beyond
64 bits, which a callback body may in principle hold, and non-string keys): those values go through
the standard library, so nothing that encoded before fails now. Input is still parsed with `json`:
orjson would read a >64-bit integer as a float, silently changing the callback.

**Text policy** (docs/recording.md, "What any text becomes"). JSON admits a lone surrogate
(`"\\ud800"`, U+D800-U+DFFF outside a pair); UTF-8, SQLite TEXT, a log file and an HTTP body
cannot hold one. Wherever imhook writes text down (recording store, journal, quarantine, outbox
keys, exports, log lines) a lone surrogate is written as the six characters `\\udXXX`:

- inside JSON (`dumps`) that is exactly the escape it came in as, so parsing the output gives back
  the same string: nothing is lost;
- in a plain text column or key (`storable`) it is the same six characters, readable and
  searchable, but no longer told apart from someone who typed a backslash, `u`, `d`...;
  these values (user, rule, reason, dedupe key) are derived from the raw body, which is always
  kept and forwarded byte for byte, so replay still rebuilds the exact callback.

Every other character (NUL, bidi controls, zero-width characters, astral planes) is stored as it
is: UTF-8 and SQLite hold them; JSON escapes the control characters. Long strings and integers
beyond 64 bits are written whole (the standard library's encoder for the latter).
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
    try:  # `dumps` inlined: the recording store calls this three times per row
        return orjson.dumps(value, default=str, option=_OPTIONS).decode("utf-8")
    except TypeError:
        return dumps(value).decode("utf-8")


def storable(text: str) -> str:
    """`text` with each lone surrogate written as its `\\udXXX` escape, so UTF-8 can hold it.

    The same string back when there is none (the common case costs one encode, no copy kept).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_bytes(text: str) -> bytes:
    """`text` as UTF-8, lone surrogates as their `\\udXXX` escape (see `storable`)."""
    return text.encode("utf-8", "backslashreplace")
