"""Chinese readings from pypinyin: syllables, homophone classes, pinyin spellings, tone numbers.

The data behind the ``pinyin`` and ``homophones`` options of ``rules.text.variants`` (which
re-exports these names): each Chinese char's first, most common reading from pypinyin's
per-char data, loaded once per process on first use (only when pinyin is on).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

__all__ = ["MAX_PINYIN_CHARS", "is_cjk", "syllables", "toned_syllables", "homophone_map",
           "homophone_pairs", "pinyin_keys", "TONE_NUMBER", "has_tone_number",
           "without_tone_numbers"]

# Pinyin keys are made for words of 2 to this many Chinese characters: one-character
# words in pinyin ("pi", "ma") would hit ordinary Latin text, and long words would multiply keys.
MAX_PINYIN_CHARS = 8



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
