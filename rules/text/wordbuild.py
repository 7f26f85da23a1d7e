"""Compiling a word list into a WordMatcher (``WordMatcher.build`` calls :func:`build_matcher`).

Build once per config load: normalise the words and allow-list, add the pinyin spellings
as extra keys, encode the keys compactly (``SearchEncoding``) and fill one Aho-Corasick
automaton.  Kept apart from ``rules.text.words``, whose per-message path (find, mask) runs
on every callback, while this runs at startup and reload.
"""

from __future__ import annotations

from typing import Iterable

import ahocorasick_rs
import numpy as np

from .normalize import DROPPED, get_normalizer, is_latin_alnum
from .pinyin import homophone_pairs, is_cjk
from .spellings import add_pinyin_keys
from .variants import Transforms, homophone_mode, leet_table, symbol_leet
from .words import SearchEncoding, Word, WordMatcher, _Pattern

__all__ = ["build_matcher"]


def build_matcher(cls: type[WordMatcher], words: Iterable[Word | str], *,
                  allow: Iterable[str] = (), whole_word_latin: bool = True,
                  fold_repeats: bool = False, skip_noise: bool = True, traditional: bool = True,
                  pinyin: bool = False, homophones: bool | str | None = None,
                  leet: bool | dict[str, str] = False, confusables: bool = False,
                  _latin_symbols: tuple[tuple[str, str], ...] = ()) -> WordMatcher:
    """Build a ``cls`` matcher: the options are ``WordMatcher.build``'s.

    ``_latin_symbols`` builds the symbol pass: the Latin words only, with those leet
    symbols that are noise without leet read as letters.
    """
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
    by_key: dict[str, _Pattern] = {}
    for word, key in zip(words, normalised):
        if _latin_symbols and not _is_latin_word(key):
            continue
        if key and key not in by_key:  # first spelling/category of a duplicate wins
            by_key[key] = _Pattern(word.text, word.category, False, _is_latin_word(key))
    for text, key in zip(allow, normalised[len(words):]):
        if not key:
            continue
        # An allow entry beats a sensitive word that normalises the same, unless only
        # an overlay made them the same (an allowed homophone of a listed word).
        other = by_key.get(key)
        if other is None or other.allowed or not transforms or (
                base.normalize(other.word) == base.normalize(text)):
            by_key[key] = _Pattern(text, "", True, _is_latin_word(key))
    plain_of = dict(zip(texts, plain))
    listed = list(by_key.values())  # the words themselves; pinyin keys repeat them
    if pinyin:
        add_pinyin_keys(by_key, plain_of, normalizer, _Pattern)
    keys = list(by_key)
    encoding = SearchEncoding(normalizer, keys)
    encoded = encoding.encode_keys(keys)
    # Keys in byte order build the automaton ~1.5x faster (its trie is filled in order;
    # 384,000 keys for 100,000 words with pinyin).  Order changes no match: two distinct
    # keys never match the same span, so leftmost-longest has no ties to break.
    # numpy sorts them as fixed-width bytes, padded with 0s, which no code holds.
    order = np.argsort(np.array(encoded, f"S{max(map(len, encoded), default=1)}"),
                       kind="stable").tolist()
    encoded = [encoded[i] for i in order]
    values = list(by_key.values())
    automaton = None
    if encoded:
        automaton = ahocorasick_rs.BytesAhoCorasick(
            encoded, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)
    longest = max(map(len, encoded), default=0)
    matcher = cls(automaton, [values[i] for i in order], encoding, whole_word_latin, longest)
    matcher._tones = pinyin and not _latin_symbols
    if transforms or pinyin:
        matcher._check = (base, transforms)
        matcher._allowed = frozenset(filter(None, map(base.normalize_short, allow)))
        matcher._wanted = {p.word: plain_of[p.word] for p in listed if not p.allowed}
        if transforms.homophones:
            matcher._pairs = {word: frozenset(wanted) for word, wanted in matcher._wanted.items()
                              if len(wanted) == 2 and all(map(is_cjk, wanted))}
    if symbols and not _latin_symbols:
        matcher._symbols = tuple(s for s, _ in symbols)
        matcher._symbol_pass = build_matcher(
            cls, words, allow=allow, whole_word_latin=whole_word_latin, confusables=confusables,
            leet=dict(p for p in leet_pairs if p not in symbols), **options,
            homophones=transforms.homophones or "off",
            _latin_symbols=symbols)
    return matcher


def _is_latin_word(key: str) -> bool:
    if key.isascii():
        return key.isalnum()
    if is_cjk(key[0]):
        return False  # the common case in a Chinese list, without a call per char
    return all(is_latin_alnum(c) for c in key)
