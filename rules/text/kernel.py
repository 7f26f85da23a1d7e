"""Which path the word engine runs: the compiled kernel or the pure-Python one.

``rules/text/_wordkernel.c`` is built by ``pip install`` when a C compiler is there (an
optional extension, see setup.py); it does WordMatcher's per-message work (encoding the
text, mapping hits back to it, the whole-word check, the tone-number and leet-symbol scans)
in one pass each.  Without it, or with ``IMHOOK_WORDS_KERNEL=0`` in the environment, the same
steps run in Python and numpy with the same results, several times slower on texts with
hits (docs/performance.md).  Each WordMatcher picks its path when it is built, from
:data:`compiled` (tests set it to None to force the fallback).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .variants import _MAX_SYMBOL_LOOKS, has_tone_number, symbol_at_letter

try:
    from . import _wordkernel
except ImportError:  # no compiler at install time: the pure-Python path runs
    _wordkernel = None

__all__ = ["compiled", "make_kernel", "tone_scan", "symbol_scan", "describe"]

# The extension module, or None when it is missing or switched off.
compiled: Any = None if os.environ.get("IMHOOK_WORDS_KERNEL", "1") == "0" else _wordkernel


def describe() -> str:
    """One line for the operator's log: which path the word engine runs, and why."""
    if compiled is not None:
        return "sensitive words: compiled kernel in use"
    if _wordkernel is not None:
        return "sensitive words: compiled kernel switched off (IMHOOK_WORDS_KERNEL=0), pure-Python path"
    return ("sensitive words: compiled kernel not built (no C compiler at install?), pure-Python"
            " path: same results, fewer messages/s (docs/performance.md)")


def make_kernel(encoding: Any, patterns: Sequence[Any], automaton: Any, whole_word_latin: bool,
                longest: int, max_rescans: int) -> Any:
    """The kernel for one WordMatcher's parts, or None for the Python path."""
    if compiled is None or automaton is None:
        return None
    flags = bytes(int(p.allowed) | int(p.latin_only) << 1 for p in patterns)
    latin = sorted(int.from_bytes(code, "little") for code in encoding._latin_codes)
    return compiled.Kernel(encoding._table, encoding.width, encoding._fold, latin, flags,
                           automaton, longest, whole_word_latin, max_rescans)


def tone_scan(kernel: Any):
    """has_tone_number for a matcher: compiled if it has a kernel."""
    return has_tone_number if kernel is None else compiled.has_tone_number


def symbol_scan(kernel: Any, symbols: tuple[str, ...]):
    """symbol_at_letter(text) over these symbols: compiled if it has a kernel."""
    if kernel is None or not all(len(symbol) == 1 for symbol in symbols):
        return lambda text: symbol_at_letter(text, symbols)
    joined, scan = "".join(symbols), compiled.symbol_at_letter
    return lambda text: scan(text, joined, _MAX_SYMBOL_LOOKS)
