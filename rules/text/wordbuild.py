"""Compiling a word list into a WordMatcher (``WordMatcher.build`` calls :func:`build_matcher`).

Build once per config load: normalise the words and allow-list, add the pinyin spellings
as extra keys, encode the keys compactly (``SearchEncoding``) and fill one Aho-Corasick
automaton.  Kept apart from ``rules.text.words``, whose per-message path (find, mask) runs
on every callback, while this runs at startup and reload.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from typing import Iterable, Iterator

import ahocorasick_rs
import numpy as np

from . import kernel as _kernel
from .normalize import DROPPED, get_normalizer, is_latin_alnum
from .pinyin import homophone_pairs
from .spellings import add_pinyin_keys
from .variants import Transforms, homophone_mode, leet_table, symbol_leet
from .words import SearchEncoding, Word, WordMatcher, _Pattern

__all__ = ["build_matcher"]

# Two Chinese chars (rules.text.pinyin.is_cjk's ranges): one regex call per two-char word
# of a 100,000-word list, not two calls of is_cjk.
_TWO_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]{2}")


def build_matcher(cls: type[WordMatcher], words: Iterable[Word | str], **options) -> WordMatcher:
    """Build a ``cls`` matcher: the options are ``WordMatcher.build``'s."""
    with _collector_paused():
        return _build(cls, words, **options)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a build runs.

    A 100,000-word build makes a few hundred thousand tuples (patterns, pairs), none in a
    reference cycle; every 700 of them start a collection, and now and then one of those
    walks every object the process holds: a sixth to over a third of the build's time in
    a process that holds much (benchmarks/RESULTS.md, "Build time, third pass").
    Reference counting still frees everything; the collector resumes afterwards.  Only
    resumed if it was running: a caller that paused it keeps it paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(cls: type[WordMatcher], words: Iterable[Word | str], *,
           allow: Iterable[str] = (), whole_word_latin: bool = True,
           fold_repeats: bool = False, skip_noise: bool = True, traditional: bool = True,
           pinyin: bool = False, homophones: bool | str | None = None,
           leet: bool | dict[str, str] = False, confusables: bool = False,
           _latin_symbols: tuple[tuple[str, str], ...] = ()) -> WordMatcher:
    """``_latin_symbols`` builds the symbol pass: the Latin words only, with those leet
    symbols that are noise without leet read as letters."""
    options = dict(skip_noise=skip_noise, traditional=traditional, fold_repeats=fold_repeats)
    leet_pairs = leet_table(leet)
    transforms = Transforms(homophone_mode(homophones, pinyin), leet_pairs, confusables)
    base = get_normalizer(**options)
    symbols = symbol_leet(leet_pairs, base.codes, DROPPED)
    # Symbols that are noise stay noise in the main pass ("傻@逼" still reads 傻逼); a
    # second pass reads them as letters, for Latin words only.
    transforms = transforms._replace(leet=tuple(p for p in leet_pairs if p not in symbols)
                                     + _latin_symbols)
    words = [Word(word) if isinstance(word, str) else word for word in words]
    allow = list(allow)
    texts = [word.text for word in words] + allow
    # Normalised without overlays: for the checks, the pinyin spellings and ``keep``.
    plain = base.normalize_many(texts) if transforms or pinyin else []
    if transforms.homophones:
        transforms = transforms._replace(
            keep=homophone_pairs(plain, transforms.homophones, fold_repeats))
    normalizer = get_normalizer(**options, transforms=transforms)
    normalised = normalizer.normalize_many(texts)
    latin_words = _latin_words(normalised)
    by_key: dict[str, _Pattern] = {}
    for word, key, latin in zip(words, normalised, latin_words):
        if _latin_symbols and not latin:
            continue
        if key and key not in by_key:  # first spelling/category of a duplicate wins
            by_key[key] = _Pattern(word.text, word.category, False, latin)
    for text, key, latin in zip(allow, normalised[len(words):], latin_words[len(words):]):
        if not key:
            continue
        # An allow entry beats a sensitive word that normalises the same, unless only
        # an overlay made them the same (an allowed homophone of a listed word).
        other = by_key.get(key)
        if other is None or other.allowed or not transforms or (
                base.normalize(other.word) == base.normalize(text)):
            by_key[key] = _Pattern(text, "", True, latin)
    plain_of = dict(zip(texts, plain))
    listed = list(by_key.values())  # the words themselves; pinyin keys repeat them
    if pinyin:
        add_pinyin_keys(by_key, plain_of, normalizer, _Pattern)
    keys = list(by_key)
    encoding = SearchEncoding(normalizer, keys)
    encoded, order, longest = _in_byte_order(encoding, keys)
    automaton = None
    if encoded:
        automaton = _kernel.searcher(encoded, ahocorasick_rs.BytesAhoCorasick(
            encoded, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST))
    values = list(by_key.values())
    matcher = cls(automaton, list(map(values.__getitem__, order)), encoding, whole_word_latin,
                  longest)
    matcher._tones = pinyin and not _latin_symbols
    if transforms or pinyin:
        matcher._check = (base, transforms)
        matcher._allowed = frozenset(filter(None, map(base.normalize_short, allow)))
        matcher._wanted = {p.word: plain_of[p.word] for p in listed if not p.allowed}
        if transforms.homophones:
            matcher._pairs = {word: frozenset(wanted) for word, wanted in matcher._wanted.items()
                              if len(wanted) == 2 and _TWO_CJK.fullmatch(wanted)}
    if symbols and not _latin_symbols:
        matcher._symbols = tuple(s for s, _ in symbols)
        matcher._symbol_scan = _kernel.symbol_scan(matcher._kernel, matcher._symbols)
        matcher._symbol_pass = _build(
            cls, words, allow=allow, whole_word_latin=whole_word_latin, confusables=confusables,
            leet=dict(p for p in leet_pairs if p not in symbols), **options,
            homophones=transforms.homophones or "off",
            _latin_symbols=symbols)
    return matcher


def _in_byte_order(encoding: SearchEncoding,
                   keys: list[str]) -> tuple[list[bytes], list[int], int]:
    """The encoded keys in byte order, the index in ``keys`` of each, the longest's bytes.

    Keys in byte order build the automaton ~1.5x faster (its trie is filled in order;
    384,000 keys for 100,000 words with pinyin).  Order changes no match: two distinct
    keys never match the same span, so leftmost-longest has no ties to break.  numpy sorts
    them as fixed-width bytes, padded with 0s, which no code holds, from one bytes of all
    the codes: one bytes object a key is made, in sorted order, and none besides.
    """
    if not keys:
        return [], [], 0
    data = encoding.encode_joined(keys)
    sizes = np.fromiter(map(len, keys), np.int64, len(keys)) * encoding.width
    ends = np.cumsum(sizes)
    starts = ends - sizes
    widest = int(sizes.max())
    padded = np.zeros(len(keys) * widest, np.uint8)
    index = np.int32 if len(padded) < 2**31 else np.int64  # half the memory, nearly always
    padded[np.repeat((np.arange(len(keys)) * widest - starts).astype(index), sizes)
           + np.arange(len(data), dtype=index)] = np.frombuffer(data, np.uint8)
    order = np.argsort(padded.view(f"S{widest}"), kind="stable")
    encoded = list(map(data.__getitem__, map(slice, starts[order].tolist(), ends[order].tolist())))
    return encoded, order.tolist(), widest


def _latin_words(keys: list[str]) -> list[bool]:
    """Whether each key is all Latin letters and digits (subject to the whole-word check).

    For the whole list at once: each distinct char is looked at once, not once a key.
    """
    points = np.frombuffer("".join(keys).encode("utf-32-le", "surrogatepass"), np.uint32)
    distinct, char_at = np.unique(points, return_inverse=True)
    latin = np.fromiter((is_latin_alnum(chr(cp)) for cp in distinct.tolist()), bool, len(distinct))
    owner = np.repeat(np.arange(len(keys)), np.fromiter(map(len, keys), np.int64, len(keys)))
    others = np.bincount(owner[~latin[char_at]], minlength=len(keys))
    lengths = np.bincount(owner, minlength=len(keys))
    return ((others == 0) & (lengths > 0)).tolist()  # an empty key is no word
