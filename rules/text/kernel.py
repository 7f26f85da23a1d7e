"""Which path the word engine runs: the compiled kernel or the pure-Python one.

``rules/text/_wordkernel.c`` is built by ``pip install`` when a C compiler is there (an
optional extension, see setup.py); it does WordMatcher's per-message work in one call
(Kernel.find: the leet-symbol and tone-number scans, encoding the text, the search through
the matcher's ahocorasick_rs automaton, mapping hits back to the text, the whole-word check,
the overlay checks of variants.classify, the Match objects, and for a text with a leet
symbol at a letter the symbol pass's find and the merge) and masks (Kernel.mask).  Texts
with a tone number (the tone pass) or a char the table cannot do take the Python steps,
which call the kernel for the parts they share.  Without it, or with ``IMHOOK_WORDS_KERNEL=0`` in the environment, the same
steps run in Python and numpy with the same results, several times slower on texts with
hits (docs/performance.md).  Each WordMatcher picks its path when it is built, from
:data:`compiled` (tests set it to None to force the fallback).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .variants import _MAX_SYMBOL_LOOKS, classify, confusable_map, has_tone_number, symbol_at_letter

try:
    from . import _wordkernel
except ImportError:  # no compiler at install time: the pure-Python path runs
    _wordkernel = None
try:
    from . import _wordsearch
except ImportError:  # the same: the automaton searches alone
    _wordsearch = None

__all__ = ["compiled", "searcher", "make_kernel", "configure", "tone_scan", "symbol_scan", "describe"]

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


def searcher(keys: Sequence[bytes], automaton: Any) -> Any:
    """What searches the encoded stream: the compiled Searcher (rules/text/_wordsearch.c: the
    automaton's hits, found with far fewer memory reads; the automaton itself for a text made to
    slow it), or the automaton where it is not built or the kernel is switched off."""
    if _wordsearch is None or compiled is None:
        return automaton
    return _wordsearch.Searcher(keys, automaton)


def make_kernel(encoding: Any, patterns: Sequence[Any], automaton: Any, whole_word_latin: bool,
                longest: int, max_rescans: int) -> Any:
    """The kernel for one WordMatcher's parts, or None for the Python path."""
    if compiled is None or automaton is None:
        return None
    flags = bytes(int(p.allowed) | int(p.latin_only) << 1 for p in patterns)
    latin = sorted(int.from_bytes(code, "little") for code in encoding._latin_codes)
    return compiled.Kernel(encoding._table, encoding.width, encoding._fold, latin, flags,
                           automaton, longest, whole_word_latin, max_rescans)


def configure(kernel: Any, matcher: Any, match_type: type) -> None:
    """Hand a matcher's kernel what find and mask check hits with (once, on the first text).

    Not when the kernel is made: build() sets these parts on the matcher after making it.
    The kernel ignores every call after the first, so threads may race here harmlessly.
    """
    patterns, wanted = matcher._patterns, matcher._wanted
    base, transforms = matcher._check or (matcher._encoding._normalizer, None)

    def classify_hit(index: int, span: str, seen: str) -> str | None:
        word = patterns[index].word
        return classify(span, seen, wanted[word], word, transforms)

    pairs: list[int] = []
    for pattern in patterns:
        pair = sorted(map(ord, matcher._pairs.get(pattern.word, ())))
        pairs += (pair * 2)[:2] if pair else (0, 0)
    wanted_of = tuple(wanted.get(pattern.word) for pattern in patterns)
    leet = "".join(symbol for symbol, _ in transforms.leet) if transforms else ""
    confusable = sorted(ord(c) for c in confusable_map() if len(c) == 1) if (
        transforms and transforms.confusables) else []
    # Texts Kernel.find leaves to Python: a leet symbol at a letter (symbols are one char
    # each: variants.leet_table refuses others), a tone number.
    symbols = "".join(matcher._symbols) if matcher._symbol_pass is not None else ""
    # The symbol pass runs in the kernel too when it has one: find() then merges both.
    symbol_kernel = getattr(matcher._symbol_pass, "_kernel", None)
    if symbol_kernel is not None and not symbol_kernel.configured:
        configure(symbol_kernel, matcher._symbol_pass, match_type)
    kernel.configure(patterns, match_type, matcher._check is not None, base.codes,
                     base.fold_repeats, pairs, matcher._allowed, classify_hit,
                     base.normalize_short, wanted_of, leet, confusable, symbols,
                     _MAX_SYMBOL_LOOKS, matcher._tones, symbol_kernel)


def tone_scan(kernel: Any):
    """has_tone_number for a matcher: compiled if it has a kernel."""
    return has_tone_number if kernel is None else compiled.has_tone_number


def symbol_scan(kernel: Any, symbols: tuple[str, ...]):
    """symbol_at_letter(text) over these symbols: compiled if it has a kernel."""
    if kernel is None or not all(len(symbol) == 1 for symbol in symbols):
        return lambda text: symbol_at_letter(text, symbols)
    joined, scan = "".join(symbols), compiled.symbol_at_letter
    return lambda text: scan(text, joined, _MAX_SYMBOL_LOOKS)
