"""Pinyin spellings of a word list as extra automaton keys (WordMatcher.build, pinyin on).

Each Chinese word gets the keys of :func:`rules.text.variants.pinyin_keys`, normalised like
any key: whole in pinyin ("zhapian") and each char alone in pinyin ("zha骗", "诈pian").  A
100,000-word list makes ~280,000 of them, too many to make one by one in Python within the
build's time, so the common word takes a vectorised shortcut that gives the same keys: a
word of 2-8 Chinese chars that the normaliser maps one to one onto non-ASCII chars, with
nothing dropped or folded.  Its char-in-pinyin spellings are then the normalised word
with one char replaced by its normalised syllable (normalisation is per char, and a Latin
syllable next to a non-ASCII char cannot fold into it), gathered for all words at once
with numpy; its whole spellings go through the normaliser in one call.  Other words
(allow entries, mixed words, odd chars) take pinyin_keys one by one.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .normalize import ESCAPE, CharNormalizer
from .pinyin import MAX_PINYIN_CHARS, pinyin_keys, syllables

__all__ = ["add_pinyin_keys"]

def add_pinyin_keys(by_key: dict[str, Any], plain_of: dict[str, str],
                    normalizer: CharNormalizer, make: Callable[..., Any]) -> None:
    """Add each word's pinyin spellings to ``by_key`` (the first key of a spelling wins).

    ``by_key`` maps keys to patterns (word, category, allowed, latin_only); ``make``
    builds one.  Spellings come from the word without overlays (``plain_of``: each char
    keeps its own reading) and are normalised like any key, so leet reads their tone
    numbers as the text's do and fold_repeats folds them the same.  Fully in pinyin a word
    of Chinese chars is Latin (whole-word matching); partly, not.
    """
    patterns = list(by_key.values())
    if not patterns:
        return
    plains = [plain_of[pattern.word] for pattern in patterns]
    lengths = np.fromiter(map(len, plains), np.int64, len(plains))
    points = np.frombuffer("".join(plains).encode("utf-32-le", "surrogatepass"), np.uint32)
    table = _syllable_table(normalizer)
    ids = table.ids.take(points, mode="clip")
    mapped = normalizer.codes.take(points, mode="clip")
    owner = np.repeat(np.arange(len(plains)), lengths)
    # Chars that rule the shortcut out: no reading, no one-to-one non-ASCII output (0x80
    # and up; DROPPED is 0), or a syllable the normaliser reads as nothing.
    odd = (ids < 0) | (mapped < 0x80) | (mapped == ESCAPE) | ~table.usable[ids]
    if normalizer.fold_repeats:
        odd[1:] |= (mapped[1:] == mapped[:-1]) & (owner[1:] == owner[:-1])
    allowed = np.fromiter((pattern.allowed for pattern in patterns), bool, len(patterns))
    quick = ((np.bincount(owner[odd], minlength=len(plains)) == 0) & ~allowed
             & (lengths >= 2) & (lengths <= MAX_PINYIN_CHARS))
    # Fewer than 2 or more than MAX_PINYIN_CHARS chars with a reading: no spellings.
    readings = np.bincount(owner[ids >= 0], minlength=len(plains))
    none = ~quick & ((readings < 2) | (readings > MAX_PINYIN_CHARS))
    wholes, mixed = _quick_spellings(quick, lengths, ids, mapped, table)
    whole_keys = iter(normalizer.normalize_many(wholes))
    slow = [pinyin_keys(plain, every_run=pattern.allowed) if not skip else []
            for plain, pattern, fast, skip in zip(plains, patterns, quick.tolist(), none.tolist())
            if not fast]
    slow_keys = iter(normalizer.normalize_many([key for keys in slow for key in keys]))
    slow_counts = iter(map(len, slow))
    at = 0  # next of the mixed keys
    setdefault = by_key.setdefault
    for pattern, fast, size in zip(patterns, quick.tolist(), lengths.tolist()):
        word, category, allowed_entry, _ = pattern
        if not fast:
            for key in [next(slow_keys) for _ in range(next(slow_counts))]:
                if key and key not in by_key:
                    by_key[key] = make(word, category, allowed_entry,
                                       key.isascii() and key.isalnum())
            continue
        whole = next(whole_keys)
        if whole and whole not in by_key:
            by_key[whole] = make(word, category, allowed_entry,
                                 whole.isascii() and whole.isalnum())
        # These keys hold a Chinese char: not Latin, like (nearly always) the word itself,
        # whose pattern then serves (one tuple fewer a word).
        partly = pattern if not pattern[3] else make(word, category, allowed_entry, False)
        for key in mixed[at:at + size]:
            setdefault(key, partly)
        at += size


class _SyllableTable:
    """Per code point its syllable's id; per id the raw and the normalised syllable."""

    def __init__(self, normalizer: CharNormalizer) -> None:
        reading = syllables()
        names = sorted(set(reading.values()))
        number = {name: i for i, name in enumerate(names)}
        # One slot past the last char with a reading, -1: code points beyond clip onto it.
        self.ids = np.full(max(map(ord, reading)) + 2, -1, np.int32)
        for ch, name in reading.items():
            self.ids[ord(ch)] = number[name]
        normal = [normalizer.normalize(name) for name in names]
        # Indexed by id, with one more slot for id -1 (no reading).
        self.usable = np.array([bool(n) for n in normal] + [False])
        self.raw = _Strings(names)
        self.normal = _Strings(normal)


class _Strings:
    """A list of strings as one code-point array with each one's start and length."""

    def __init__(self, strings: list[str]) -> None:
        self.codes = np.frombuffer("".join(strings).encode("utf-32-le"), np.uint32)
        self.lengths = np.fromiter(map(len, strings), np.int64, len(strings))
        self.starts = np.cumsum(self.lengths) - self.lengths


@functools.lru_cache(maxsize=8)
def _syllable_table(normalizer: CharNormalizer) -> _SyllableTable:
    return _SyllableTable(normalizer)


def _quick_spellings(quick: np.ndarray, lengths: np.ndarray, ids: np.ndarray,
                     mapped: np.ndarray, table: _SyllableTable) -> tuple[list[str], list[str]]:
    """The shortcut words' whole spellings (raw) and char-in-pinyin keys (normalised).

    The keys come word by word, char i of each word in pinyin in the i-th key.
    """
    sizes = lengths[quick]
    if not len(sizes):
        return [], []
    starts = (np.cumsum(lengths) - lengths)[quick]
    chars = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
    word_ids = ids[chars]  # each shortcut word's syllable ids, words one after another
    whole_text = _gather(table.raw.codes, table.raw.starts[word_ids],
                         table.raw.lengths[word_ids])
    whole_ends = np.cumsum(np.add.reduceat(table.raw.lengths[word_ids],
                                           np.cumsum(sizes) - sizes)).tolist()
    wholes = [whole_text[a:b] for a, b in zip([0] + whole_ends, whole_ends)]
    # Mixed keys: key i of a word of n chars is n tokens, token j the mapped char j, or
    # for j == i the normalised syllable of char i.
    squares = sizes * sizes
    token_word = np.repeat(np.arange(len(sizes)), squares)
    local = np.arange(squares.sum()) - np.repeat(np.cumsum(squares) - squares, squares)
    n = sizes[token_word]
    char = starts[token_word] + local % n  # index into ids / mapped
    syllable = local // n == local % n
    syllable_id = ids[char]
    source = np.concatenate([mapped, table.normal.codes])
    token_start = np.where(syllable, len(mapped) + table.normal.starts[syllable_id], char)
    token_length = np.where(syllable, table.normal.lengths[syllable_id], 1)
    text = _gather(source, token_start, token_length)
    key_ends = np.cumsum(np.add.reduceat(token_length, _key_token_starts(sizes))).tolist()
    return wholes, [text[a:b] for a, b in zip([0] + key_ends, key_ends)]


def _key_token_starts(sizes: np.ndarray) -> np.ndarray:
    """Index of each key's first token: every word of n chars has n keys of n tokens."""
    per_key = np.repeat(sizes, sizes)  # tokens in each key
    return np.cumsum(per_key) - per_key


def _gather(source: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> str:
    """The pieces source[start:start + length], one after another, as one str."""
    total = int(lengths.sum())
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return source[offsets + np.arange(total)].astype(np.uint32).tobytes().decode("utf-32-le")
