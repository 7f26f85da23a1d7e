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
  (:func:`pinyin_keys`).
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
import re
import unicodedata
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT_LEET", "Transforms", "apply_overlay", "pinyin_keys", "classify",
           "homophone_map", "syllables", "toned_syllables", "confusable_map", "is_cjk",
           "leet_table", "homophone_mode", "homophone_pairs", "TONE_NUMBER", "has_tone_number",
           "without_tone_numbers", "symbol_leet", "symbol_at_letter", "merge_matches"]

# What leet writers put for a letter.  One reading per symbol: "1" could be i or l, and
# reads i here (override with ``leet_table``).  Symbols that are noise without leet ("@",
# "$") are searched in a second pass over texts that contain one (see WordMatcher).
DEFAULT_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                "@": "a", "$": "s"}
# Pinyin keys are made for words of 2 to this many Chinese characters: one-character
# words in pinyin ("pi", "ma") would hit ordinary Latin text, and long words would multiply keys.
MAX_PINYIN_CHARS = 8


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


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F


@functools.lru_cache(maxsize=4096)  # ~1,500 distinct toned readings
def _toneless(reading: str) -> str:
    # "lǜ" -> "lv": pypinyin's own toneless spelling, which keeps ü apart from u.
    decomposed = unicodedata.normalize("NFD", reading).replace("u\u0308", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.cache
def _first_readings() -> dict[str, str]:
    from pypinyin.pinyin_dict import pinyin_dict  # lazily: only when pinyin is on

    return {chr(cp): readings.split(",")[0] for cp, readings in pinyin_dict.items()}


@functools.cache
def syllables() -> dict[str, str]:
    """Return {Chinese char: toneless pinyin of its first (most common) reading}."""
    return {ch: _toneless(reading) for ch, reading in _first_readings().items()}


_TONE_MARKS = {"\u0304": "1", "\u0301": "2", "\u030c": "3", "\u0300": "4"}


@functools.lru_cache(maxsize=4096)
def _tone_number(reading: str) -> str:
    # "zhà" -> "zha4", "lǜ" -> "lv4", "ma" (neutral tone) -> "ma": pypinyin's TONE3 style.
    decomposed = unicodedata.normalize("NFD", reading)
    tone = next((_TONE_MARKS[c] for c in decomposed if c in _TONE_MARKS), "")
    return _toneless(reading) + tone


@functools.cache
def toned_syllables() -> dict[str, str]:
    """Return {Chinese char: its first reading with a tone number, ``zha4``}."""
    return {ch: _tone_number(reading) for ch, reading in _first_readings().items()}


@functools.cache
def homophone_map(mode: str = "any") -> dict[int, int]:
    """Return {code point: canonical code point of its class}; identities left out.

    A class is every char whose first reading is the same: with its tone (``mode="tone"``)
    or without (``"any"``).  Polyphonic chars are classed by their first (most common)
    reading only, in words and texts alike, so a word stays consistent with itself.
    """
    reading = toned_syllables() if mode == "tone" else syllables()
    canon: dict[str, int] = {}
    for ch, syllable in sorted(reading.items(), key=lambda item: ord(item[0])):
        canon.setdefault(syllable, ord(ch))  # lowest code point: a common URO char
    return {ord(ch): canon[s] for ch, s in reading.items() if canon[s] != ord(ch)}


@functools.cache
def _canon_syllable() -> dict[str, tuple[str]]:
    """{char: (toneless pinyin,)} for pinyin_keys."""
    return {ch: (syllable,) for ch, syllable in syllables().items()}


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


def homophone_pairs(keys: list[str], mode: str, folding: bool) -> frozenset[str]:
    """Chars of these (normalised) keys to leave out of the homophone classes.

    A one-char key's class code would hit every char of its class, and a one-char word is
    never believed matched by a homophone (see classify): its char is matched as written.
    With ``folding``, two neighbours that differ but read the same would fold into one
    class code (a two-char word as one char): both are matched as written.  The cost: other
    words lose homophones at these chars.
    """
    keep = {key for key in keys if len(key) == 1 and is_cjk(key)}
    if folding:
        # Vectorised over all keys at once: a 100,000-word build must stay fast.
        joined = "".join(keys)
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        classes = _class_array(mode).take(points, mode="clip")
        owner = np.repeat(np.arange(len(keys)), [len(key) for key in keys])
        same = ((classes[1:] == classes[:-1]) & (points[1:] != points[:-1])
                & (owner[1:] == owner[:-1]) & (classes[1:] != 0))
        for at in same.nonzero()[0].tolist():
            keep.update(joined[at:at + 2])
    return frozenset(keep)


@functools.cache
def _class_array(mode: str) -> np.ndarray:
    """Class (representative code point) of each code point up to plane 2; 0: no reading."""
    classes = np.zeros(0x30001, np.uint32)  # the last slot: past plane 2, clipped onto it
    for ch in syllables():
        if ord(ch) < 0x30000:
            classes[ord(ch)] = ord(ch)
    for cp, to in homophone_map(mode).items():
        if cp < 0x30000:
            classes[cp] = to
    return classes


def symbol_leet(leet: tuple[tuple[str, str], ...], base_codes: np.ndarray,
                drop_value: int) -> tuple[tuple[str, str], ...]:
    """The leet entries whose symbol is noise without leet ("@", "$"): the second pass."""
    return tuple((s, t) for s, t in leet if ord(s) < len(base_codes)
                 and base_codes[ord(s)] == drop_value)


def pinyin_keys(key: str, every_run: bool = False) -> list[str]:
    """Return the extra spellings of a word in pinyin: whole, and partly.

    ``key`` is the word normalised without overlays (so each char has its own reading);
    the caller normalises the spellings like any key.  "诈骗" gives "zhapian", "zha骗" and
    "诈pian"; a longer word also each other single char in pinyin ("代kai发票").  That is
    n + 1 keys for n chars, which keeps a 100,000-word build fast (every mix of chars and
    pinyin would be 2^n).  Tone numbers need no key of their own (see WordMatcher: texts
    with a digit after a letter get a pass without them).  ``every_run`` (allow entries:
    few, often long) gives every run of chars in pinyin.
    """
    reading = _canon_syllable()
    if not every_run and 2 <= len(key) <= MAX_PINYIN_CHARS:
        try:  # the common case, a word of Chinese chars only: the build's hot loop
            plain = [reading[c][0] for c in key]
        except KeyError:
            pass
        else:
            return ["".join(plain)] + [key[:i] + plain[i] + key[i + 1:] for i in range(len(key))]
    spelled = [reading.get(c) for c in key]
    cjk = [i for i, s in enumerate(spelled) if s is not None]
    if not 2 <= len(cjk) <= MAX_PINYIN_CHARS:
        return []
    if every_run:
        runs = [(cjk[a], cjk[b - 1] + 1) for a in range(len(cjk)) for b in range(a + 1, len(cjk) + 1)]
    else:
        runs = [(cjk[0], cjk[-1] + 1)] + [(i, i + 1) for i in cjk]
    return list(dict.fromkeys("".join(s[0] if s is not None and a <= i < b else c
                                      for i, (c, s) in enumerate(zip(key, spelled)))
                              for a, b in runs))


# A tone number: a digit 1-5 right after an ASCII letter ("zha4pian4", "sha3 bi1").
TONE_NUMBER = re.compile(r"(?<=[A-Za-z])[1-5]")
# Most texts have no such digit at all.  A lookbehind is tried at every position (slow on
# every message); a plain class is scanned for by the regex engine's fast prefix loop.
_TONE_DIGIT = re.compile(r"[1-5]")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def has_tone_number(text: str) -> bool:
    """True if ``text`` has a tone number (what TONE_NUMBER finds), cheaply."""
    found = _TONE_DIGIT.search(text, 1)
    while found is not None:
        at = found.start()
        if text[at - 1] in _LETTERS:
            return True
        found = _TONE_DIGIT.search(text, at + 1)
    return False


def without_tone_numbers(text: str) -> tuple[str, np.ndarray]:
    """Return ``text`` without its tone numbers and the original index of each char kept."""
    dropped = [m.start() for m in TONE_NUMBER.finditer(text)]
    return TONE_NUMBER.sub("", text), np.delete(np.arange(len(text)), dropped)


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
