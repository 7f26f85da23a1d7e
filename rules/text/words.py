"""Sensitive-word matching over normalised text with one Aho-Corasick automaton.

    matcher = WordMatcher.build(load_word_file("words.txt"), allow=["操作"])
    matches = matcher.find(text)            # offsets into the original text
    clean = matcher.mask(text, matches)     # "你是傻@逼" -> "你是***"

Build once (startup / reload), then share: ``find`` does no I/O and keeps no state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import ahocorasick_rs

from .normalize import CharNormalizer, OffsetMap, get_normalizer, is_latin_alnum

__all__ = ["Word", "Match", "WordMatcher", "load_word_file"]


@dataclass(frozen=True)
class Word:
    """A sensitive word and the category it is reported under."""

    text: str
    category: str = ""


@dataclass(frozen=True)
class Match:
    """A matched word; ``start``/``end`` index the ORIGINAL text, ``end`` exclusive."""

    start: int
    end: int
    word: str
    category: str


class _Pattern(NamedTuple):
    word: str
    category: str
    allowed: bool  # allow-list entry: consumes its span but is never reported
    latin_only: bool  # subject to the whole-word check


class WordMatcher:
    """Finds and masks sensitive words; immutable and safe to share between threads."""

    __slots__ = ("_automaton", "_patterns", "_normalizer", "_whole_word_latin", "_longest",
                 "word_count")

    def __init__(self, automaton: ahocorasick_rs.AhoCorasick | None, patterns: Sequence[_Pattern],
                 normalizer: CharNormalizer, whole_word_latin: bool, longest: int) -> None:
        # Use WordMatcher.build(); this constructor takes already-prepared parts.
        self._automaton = automaton
        self._patterns = tuple(patterns)
        self._normalizer = normalizer
        self._whole_word_latin = whole_word_latin
        self._longest = longest  # longest normalised pattern, bounds the re-check window
        self.word_count = sum(not p.allowed for p in self._patterns)

    @classmethod
    def build(cls, words: Iterable[Word], *, allow: Iterable[str] = (),
              whole_word_latin: bool = True, fold_repeats: bool = False,
              skip_noise: bool = True, traditional: bool = True) -> "WordMatcher":
        """Normalise the words and allow-list once and compile them into one automaton."""
        normalizer = get_normalizer(skip_noise=skip_noise, traditional=traditional,
                                    fold_repeats=fold_repeats)
        by_key: dict[str, _Pattern] = {}
        for word in words:
            if isinstance(word, str):
                word = Word(word)
            key = normalizer.normalize(word.text)
            if key and key not in by_key:  # first spelling/category of a duplicate wins
                by_key[key] = _Pattern(word.text, word.category, False, _is_latin_word(key))
        for text in allow:
            key = normalizer.normalize(text)
            if key:  # an allow entry beats a sensitive word that normalises the same
                by_key[key] = _Pattern(text, "", True, _is_latin_word(key))
        automaton = None
        if by_key:
            automaton = ahocorasick_rs.AhoCorasick(
                list(by_key), matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)
        longest = max(map(len, by_key), default=0)
        return cls(automaton, list(by_key.values()), normalizer, whole_word_latin, longest)

    def __len__(self) -> int:
        return self.word_count

    def find(self, text: str) -> list[Match]:
        """Return non-overlapping leftmost-longest matches, in order, as original offsets."""
        if not text or self._automaton is None:
            return []
        marked, unfolded, norm = self._normalizer.streams(text)
        hits = self._automaton.find_matches_as_indexes(norm)
        if not hits:
            return []  # the common case: offsets are never computed
        return self._resolve(text, marked, unfolded, norm, hits)

    def _resolve(self, text: str, marked: str, unfolded: str, norm: str,
                 hits: list[tuple[int, int, int]]) -> list[Match]:
        offsets = self._normalizer.locate(text, marked, unfolded)
        patterns = self._patterns
        check_latin = self._whole_word_latin
        found: list[Match] = []
        base = 0
        rescans = 0
        while True:
            restart = -1
            for index, start, end in hits:
                word, category, allowed, latin_only = patterns[index]
                if allowed:
                    continue
                start += base
                end += base
                if check_latin and latin_only and _glued(norm, offsets, start, end):
                    # A rejected hit may hide a word starting inside it (e.g. "sb" rejected
                    # in "asb站" hides "b站").  Only if a short look finds one, search again
                    # from just after its start; the cap keeps hostile text linear.
                    if rescans < _MAX_RESCANS and self._hides_another(norm, start, end):
                        rescans += 1
                        restart = start + 1
                        break
                    continue
                found.append(Match(*offsets.span(start, end), word, category))
            if restart < 0:
                return found
            base = restart
            hits = self._automaton.find_matches_as_indexes(norm[base:])

    def _hides_another(self, norm: str, start: int, end: int) -> bool:
        """True if some pattern starts inside norm[start+1:end] (any fits in the window)."""
        window = norm[start + 1:end - 1 + self._longest]
        hidden = self._automaton.find_matches_as_indexes(window)
        return bool(hidden) and hidden[0][1] < end - start - 1

    def mask(self, text: str, matches: Iterable[Match], *, char: str = "*",
             replacement: str | None = None) -> str:
        """Replace each matched span: char per original char, or the span by ``replacement``."""
        if replacement is None and len(char) != 1:
            raise ValueError("mask char must be exactly one character")
        pieces: list[str] = []
        position = 0
        for match in sorted(matches, key=lambda m: (m.start, m.end)):
            start = max(match.start, position)  # tolerate overlapping caller-made matches
            if match.end <= start:
                continue
            pieces.append(text[position:start])
            if replacement is None:
                pieces.append(char * (match.end - start))
            elif start == match.start:
                pieces.append(replacement)
            position = match.end
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)


# Full re-searches per text after a rejected Latin hit; beyond this, hidden words are missed.
_MAX_RESCANS = 16


def _is_latin_word(key: str) -> bool:
    return all(is_latin_alnum(c) for c in key)


def _glued(norm: str, offsets: OffsetMap, start: int, end: int) -> bool:
    """True when a Latin hit touches another Latin letter/digit with nothing dropped between."""
    if start > 0 and is_latin_alnum(norm[start - 1]) and offsets.adjacent(start):
        return True
    return end < len(norm) and is_latin_alnum(norm[end]) and offsets.adjacent(end)


def load_word_file(path: str | os.PathLike[str]) -> list[Word]:
    """Read ``word``, ``word<TAB>category`` or ``word,category`` lines; '#' starts a comment."""
    words: list[Word] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({exc.reason})") from None
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            separator = "\t" if "\t" in line else ","
            fields = [field.strip() for field in line.split(separator)]
            if len(fields) > 2:
                raise ValueError(f"{path}:{number}: expected 'word' or 'word{separator!r}category',"
                                 f" got {len(fields)} fields: {line!r}")
            if not fields[0]:
                raise ValueError(f"{path}:{number}: empty word: {line!r}")
            if len(fields) == 2 and not fields[1]:
                raise ValueError(f"{path}:{number}: empty category after separator: {line!r}")
            words.append(Word(fields[0], fields[1] if len(fields) == 2 else ""))
    return words
