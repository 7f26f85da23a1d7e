"""The second wave of evasions: pinyin and homophones, leetspeak, look-alike letters.

Each is a per-character *overlay* on the normalisation table of ``rules.text.normalize``
(built once per process and option set, so a message costs nothing more to normalise):

- ``homophones`` (part of the ``pinyin`` option): every Chinese character maps to one
  canonical character per reading (``炸`` and ``诈`` both read ``zhà``), from pypinyin's
  per-character reading data (its first, most common reading).  ``"tone"`` (the default
  with ``pinyin``) keeps tones apart, ``"any"`` ignores them (``沙`` shā for ``傻`` shǎ): on a
  list of thousands of two-character words tone-blind classes make about five times as many
  near-hits to check (benchmarks/words.py), and more false positives (``读博`` dú bó reads
  like ``赌博`` dǔ bó only without tones).  Words and texts go through the same table, so
  ``炸骗`` finds ``诈骗``.  Pinyin spellings are extra automaton keys made at build time
  (:func:`pinyin_keys`).  The reading data and what is made of it are in
  ``rules.text.pinyin``; this module re-exports its names.
- ``leet``: digits and symbols read as letters (:data:`DEFAULT_LEET`, overridable).
- ``confusables``: letters of other scripts that look like a Latin letter map to it, from
  Unicode's confusables data (UTS #39) as shipped by the ``confusable_homoglyphs`` package.

Every overlay also finds things that are not evasions (a year read as letters, a Russian
word whose letters look Latin, an everyday phrase that sounds like a listed word), so a hit
that needed one is *checked* against its original text by :func:`classify`, which also says
which transformation found it (for ``imhook explain``).  Only hits are checked: texts
without one pay nothing.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from importlib import resources
from typing import NamedTuple

import numpy as np

from .pinyin import (MAX_PINYIN_CHARS, TONE_NUMBER, has_tone_number, homophone_map,
                     homophone_pairs, is_cjk, pinyin_keys, syllables, toned_syllables,
                     without_tone_numbers)

__all__ = ["DEFAULT_LEET", "Transforms", "apply_overlay", "pinyin_keys", "classify",
           "homophone_map", "syllables", "toned_syllables", "confusable_map", "is_cjk",
           "leet_table", "homophone_mode", "homophone_pairs", "TONE_NUMBER", "has_tone_number",
           "without_tone_numbers", "symbol_leet", "symbol_at_letter", "merge_matches",
           "MAX_PINYIN_CHARS"]

# What leet writers put for a letter.  One reading per symbol: "1" could be i or l, and
# reads i here (override with ``leet_table``).  Symbols that are noise without leet ("@",
# "$") are searched in a second pass over texts that contain one (see WordMatcher).
DEFAULT_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                "@": "a", "$": "s"}


class Transforms(NamedTuple):
    """Which overlays a normaliser applies (hashable: it keys the table cache)."""

    homophones: str = ""  # "", "tone" (same reading and tone) or "any" (tones ignored)
    leet: tuple[tuple[str, str], ...] = ()
    confusables: bool = False
    # Chars left out of the homophone classes (see homophone_pairs).
    keep: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.homophones or self.leet or self.confusables)


# Spellings of the homophone modes: the config's words, build()'s and the legacy boolean.
_HOMOPHONE_MODES = {"same_tone": "tone", "tone": "tone", "any_tone": "any", "any": "any",
                    "off": "", "": ""}


def homophone_mode(homophones: bool | str | None, pinyin: bool) -> str:
    """Return the Transforms.homophones mode of build()'s options.

    None: homophones of the same tone when ``pinyin`` is on (the issue puts homophones under
    pinyin), none otherwise; True is the first version's ``homophones: true`` (tones ignored).
    """
    if homophones is None:
        return "tone" if pinyin else ""
    if isinstance(homophones, bool):
        return "any" if homophones else ""
    try:
        return _HOMOPHONE_MODES[homophones]
    except KeyError:
        raise ValueError(f"homophones: {homophones!r}: expected same_tone, any_tone or off"
                         ) from None


def leet_table(leet: bool | dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Return the (symbol, letter) pairs of a ``leet`` option: True for DEFAULT_LEET."""
    table = dict(DEFAULT_LEET) if leet is True else dict(leet or {})
    for source, target in table.items():
        if len(source) != 1 or len(target) != 1 or not target.isascii() or not target.isalpha():
            raise ValueError(f"leet table: {source!r} -> {target!r}: expected one char to one"
                             " ASCII letter")
    return tuple(sorted((s, t.lower()) for s, t in table.items()))


@functools.cache
def confusable_map() -> dict[str, str]:
    """Return {letter of another script: ASCII letter it looks like} from UTS #39 data.

    Only letters (not symbols or digits) whose confusable is a single ASCII letter: the
    trick is spelling a Latin word with Cyrillic, Greek, Armenian... letters.
    """
    data = json.loads(resources.files("confusable_homoglyphs")
                      .joinpath("confusables.json").read_text("utf-8"))
    mapping: dict[str, str] = {}

    def add(source: str, target: str) -> None:
        if (len(source) == 1 and not source.isascii() and unicodedata.category(source)[0] == "L"
                and not is_cjk(source) and len(target) == 1 and target.isascii()
                and target.isalpha()):
            mapping.setdefault(source, target.lower())

    for source, entries in data.items():
        for entry in entries:
            add(source, entry["c"])
            if len(source) == 1 and source.isascii():
                add(entry["c"], source)
    return mapping


def apply_overlay(codes: np.ndarray, strings: list[str], transforms: Transforms,
                  drop_value: int) -> None:
    """Rewrite the base table in place: each overlay maps a char's normalised output on."""
    size = len(strings)

    def put(cp: int, out: str) -> None:
        codes[cp] = ord(out)
        strings[cp] = out

    if transforms.confusables:
        conf = confusable_map()
        # What normalisation made of a char first, then the raw letter, which wins (upper-
        # case Cyrillic Н looks like H, its lower case does not).
        sources = np.array(sorted(map(ord, conf)), np.uint32)
        for cp in np.isin(codes[:size], sources).nonzero()[0].tolist():
            put(cp, conf[strings[cp]])
        for source, target in conf.items():
            if ord(source) < size and codes[ord(source)] != drop_value:
                put(ord(source), target)
    for source, target in transforms.leet:
        cp = ord(source)
        if cp < size:  # WordMatcher keeps noise symbols out of the main pass's table
            put(cp, target)
    if transforms.homophones:
        canon = _without(homophone_map(transforms.homophones), transforms.keep)
        lookup = np.arange(0x30000, dtype=np.uint32)
        for cp, to in canon.items():
            if cp < len(lookup):
                lookup[cp] = to
        inside = codes < len(lookup)
        changed = inside.copy()
        changed[inside] = lookup[codes[inside]] != codes[inside]
        for cp in changed[:size].nonzero()[0].tolist():
            put(cp, chr(lookup[codes[cp]]))


def _without(canon: dict[int, int], keep: frozenset[str]) -> dict[int, int]:
    """The homophone classes with the ``keep`` chars each in a class of its own."""
    if not keep:
        return canon
    kept = {ord(c) for c in keep}
    members: dict[int, list[int]] = {}
    for cp, to in canon.items():
        if cp not in kept:
            members.setdefault(to, []).append(cp)
    result: dict[int, int] = {}
    for rep, group in members.items():
        if rep in kept:  # a kept char that represented its class: the next one does
            rep = min(group)
        result.update((cp, rep) for cp in group if cp != rep)
    return result


def symbol_leet(leet: tuple[tuple[str, str], ...], base_codes: np.ndarray,
                drop_value: int) -> tuple[tuple[str, str], ...]:
    """The leet entries whose symbol is noise without leet ("@", "$"): the second pass."""
    return tuple((s, t) for s, t in leet if ord(s) < len(base_codes)
                 and base_codes[ord(s)] == drop_value)


def classify(span: str, seen: str, wanted: str, word: str, transforms: Transforms) -> str | None:
    """Say which transformation finds ``word`` in ``span``; None if the hit is not believed.

    ``seen`` and ``wanted`` are ``span`` and ``word`` normalised without overlays.
    Returns "" for a match that needed none.  Rules (each costs a little recall for a lot
    fewer false positives): leet and confusables need a real Latin letter in the span (a
    year or a price is not leet, a wholly Cyrillic word is Russian, not disguise); a
    homophone-only match needs a word of 2+ Chinese characters and one of them kept as
    written (or in pinyin), unless the word has 3+.
    """
    if seen == wanted:
        return ""
    kinds: list[str] = []
    latin = [c for c in seen if c.isascii() and c.isalpha()]
    leet_sources = {s for s, _ in transforms.leet}
    # Digits read for a Chinese word are pinyin's tone numbers ("zha4pian4"), not leet.
    latin_word = any(c.isascii() and c.isalpha() for c in wanted)
    if latin_word and any(c in leet_sources and c not in wanted and c not in word
                          for c in set(span) | set(seen)):
        if not latin:
            return None  # digits and symbols alone: a number, a price, not a word
        kinds.append("leet")
    if transforms.confusables:
        conf = confusable_map()
        if any(c in conf for c in set(span) | set(seen)):
            if not latin:
                return None  # one script throughout: real Cyrillic or Greek text
            kinds.append("confusables")
    word_cjk = [c for c in wanted if is_cjk(c)]
    if word_cjk and latin:
        kinds.append("pinyin")
    span_cjk = [c for c in seen if is_cjk(c)]
    if span_cjk and any(c not in wanted for c in span_cjk):
        kept = set(span_cjk) & set(word_cjk) or latin  # a char as written, or in pinyin
        if len(word_cjk) < 2 or (len(word_cjk) < 3 and not kept):
            return None
        kinds.append("homophone")
    if not kinds:
        return ""  # differences the base normalisation already reads through
    return f"{'+'.join(kinds)}: {' '.join(span.split())} → {word}"


# Leet symbols looked at per text before the symbol pass simply runs.
_MAX_SYMBOL_LOOKS = 32


def symbol_at_letter(text: str, symbols: tuple[str, ...]) -> bool:
    """True if one of these symbols touches an ASCII letter or digit ("$cam", "h@te").

    str.find per symbol: most texts hold none, and a regex scanning for "letter next to
    symbol" would start at every letter.
    """
    looked = 0
    for symbol in symbols:
        at = text.find(symbol)
        while at >= 0:
            if (at and text[at - 1].isascii() and text[at - 1].isalnum()) or (
                    at + 1 < len(text) and text[at + 1].isascii() and text[at + 1].isalnum()):
                return True
            looked += 1
            if looked > _MAX_SYMBOL_LOOKS:
                return True  # a text full of symbols: one more pass beats a long Python loop
            at = text.find(symbol, at + 1)
    return False


def merge_matches(first: list, second: list) -> list:
    """Both passes' matches in order; where they overlap, the earlier (then longer) wins."""
    merged: list = []
    for match in sorted(first + second, key=lambda m: (m.start, -m.end)):
        if not merged or match.start >= merged[-1].end:
            merged.append(match)
    return merged
