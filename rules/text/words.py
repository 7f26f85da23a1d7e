"""Sensitive-word matching over normalised text with one Aho-Corasick automaton.

    matcher = WordMatcher.build(load_word_file("words.txt"), allow=["操作"])
    matches = matcher.find(text)            # offsets into the original text
    clean = matcher.mask(text, matches)     # "你是傻@逼" -> "你是***"

Build once (startup / reload), then share: ``find`` does no I/O and keeps no state.
"""

from __future__ import annotations

import functools
import itertools
import operator
import unicodedata
from typing import Any, Iterable, NamedTuple, Sequence

import ahocorasick_rs
import numpy as np

from . import kernel as _kernel
from .normalize import DROPPED, ESCAPE, CharNormalizer, OffsetMap, is_latin_alnum
from .variants import TONE_NUMBER, classify, is_cjk, merge_matches, without_tone_numbers
from .wordlist import Word, load_word_file

__all__ = ["Word", "Match", "WordMatcher", "load_word_file"]


class Match(NamedTuple):
    """A matched word; ``start``/``end`` index the ORIGINAL text, ``end`` exclusive."""

    start: int
    end: int
    word: str
    category: str
    via: str = ""  # the transformation that found it, e.g. "pinyin: zha pian → 诈骗"


class _Pattern(NamedTuple):
    word: str
    category: str
    allowed: bool  # allow-list entry: consumes its span but is never reported
    latin_only: bool  # subject to the whole-word check


# ---- compact byte encoding for the automaton --------------------------------------------
#
# The automaton walks bytes; UTF-8 spends 3 on every Chinese char.  A word list uses a few
# thousand distinct chars, so each gets its own fixed-width code (1 byte for lists of at
# most 252 distinct chars, 2 up to 16,127, 4 beyond) and every other char one of two
# shared codes: OTHER, or OTHER_LATIN for a Latin letter or digit, which the whole-word
# check must tell apart.  Matches stay the same: no word holds a shared code, so a run of
# other chars (folded into one code with fold_repeats; offsets still map back exactly)
# separates words just as the chars did.  A multi-byte code is a head byte 0x80-0xFE and
# trail bytes 0x01-0x7F, so a pattern (which starts with a head) only matches at a code
# boundary.  No code holds a 0 byte: a dropped char is all zero bytes, so deleting every 0
# byte drops exactly those chars (one bytes.translate, cheaper than numpy's nonzero and
# take).  No code holds 0xFF either, which marks ESCAPE: the text has a char only the
# per-char path can do.  Compared with searching the normalised str, the stream needs no
# decoding (nor the UTF-8 copy and byte-to-char table ahocorasick_rs makes of a str), hit
# offsets simply divide into positions, and mixed text is ~7% fewer bytes.
_OTHER, _OTHER_LATIN, _FIRST_WORD_CHAR = 0, 1, 2
_ESCAPE_BYTE = b"\xff"
_CODE_POINTS = 0x110000
_TRAILS = 0x7F  # values of a trail byte, 0x01-0x7F; head bytes (0x80-0xFE) have as many


@functools.lru_cache(maxsize=8)
def _latin_table(normalizer: CharNormalizer) -> np.ndarray:
    """Return, per slot of ``normalizer.codes``, whether it yields a Latin letter or digit."""
    codes = normalizer.codes
    produced = np.unique(codes[(codes != DROPPED) & (codes != ESCAPE)])
    latin = produced[[is_latin_alnum(chr(cp)) for cp in produced.tolist()]]
    flags = np.isin(codes, latin)
    flags.flags.writeable = False
    return flags


class SearchEncoding:
    """Normalises and encodes text compactly for one word list (see the comment above).

    ``width`` is the bytes per char of every encoded stream.  The table costs 2 bytes a
    code point of planes 0-1 (256 KiB) for a typical list.
    """

    __slots__ = ("_normalizer", "_chars", "width", "_table", "_dtype", "_fold", "_latin_codes")

    def __init__(self, normalizer: CharNormalizer, keys: list[str]) -> None:
        self._normalizer = normalizer
        self._chars = np.unique(np.frombuffer("".join(keys).encode("utf-32-le"), np.uint32))
        count = _FIRST_WORD_CHAR + len(self._chars)
        self.width = 1 if count <= 0xFE else 2 if count <= _TRAILS * _TRAILS else 4
        codes = normalizer.codes
        table = self._pack(self._indices(codes, _latin_table(normalizer)))
        table[codes == DROPPED] = 0  # the only code with 0 bytes: encode() deletes them
        table[codes == ESCAPE] = np.iinfo(table.dtype).max  # every byte 0xFF
        # Cover every code point (2-4 MiB): take() then needs no clipping, which costs more
        # per char than the lookup.  Past plane 1 every char escapes to the per-char path.
        table = np.concatenate([table[:-1], np.full(_CODE_POINTS - len(table) + 1, table[-1])])
        table.flags.writeable = False
        self._dtype = table.dtype  # of one code, for folding
        self._fold = normalizer.fold_repeats
        self._table = table
        latin = [_OTHER_LATIN] + [_FIRST_WORD_CHAR + i for i, cp in enumerate(self._chars.tolist())
                                  if is_latin_alnum(chr(cp))]
        packed = self._pack(np.array(latin, np.int64))
        self._latin_codes = frozenset(packed[i:i + 1].tobytes() for i in range(len(packed)))

    def _indices(self, points: np.ndarray, latin: np.ndarray) -> np.ndarray:
        """Return the code index of each code point (``latin`` says which shared one)."""
        chars = self._chars
        slot = np.searchsorted(chars, points).clip(max=max(len(chars) - 1, 0))
        known = chars[slot] == points if len(chars) else np.zeros(len(points), bool)
        return np.where(known, slot + _FIRST_WORD_CHAR, np.where(latin, _OTHER_LATIN, _OTHER))

    def _pack(self, indices: np.ndarray) -> np.ndarray:
        """Return the codes of these indices as little-endian ints of ``width`` bytes."""
        indices = indices.astype(np.uint32)
        if self.width == 1:
            return (indices + 1).astype(np.uint8)  # 1..0xFE: 0 is "dropped"
        # Little-endian: the head is the low byte; trails hold base-127 digits, plus 1.
        head, digits = 0x80 + indices // _TRAILS ** (self.width - 1), []
        for place in range(self.width - 1):
            digits.append((1 + indices // _TRAILS ** place % _TRAILS) << 8 * (place + 1))
        return functools.reduce(operator.or_, digits, head).astype(
            np.uint16 if self.width == 2 else np.uint32)

    def encode_keys(self, keys: list[str]) -> list[bytes]:
        """Encode the normalised words (all of whose chars have their own code)."""
        data = self.encode_joined(keys)
        ends = np.cumsum(np.fromiter(map(len, keys), np.int64, len(keys)) * self.width).tolist()
        return [data[start:end] for start, end in zip([0] + ends, ends)]

    def encode_joined(self, keys: list[str]) -> bytes:
        """:meth:`encode_keys`, the codes of all the keys one after another in one bytes."""
        points = np.frombuffer("".join(keys).encode("utf-32-le"), np.uint32)
        if not len(points):
            return b""
        # Every char is one of _chars: a table over their range is one take, where
        # _indices searches (a 100,000-word build with pinyin encodes 2.2 million chars).
        codes = np.zeros(int(self._chars[-1]) + 1, np.uint32)
        codes[self._chars] = np.arange(_FIRST_WORD_CHAR, _FIRST_WORD_CHAR + len(self._chars))
        return self._pack(codes.take(points)).tobytes()

    def encode(self, text: str) -> tuple[bytes, OffsetMap | np.ndarray, np.ndarray | None]:
        """Normalise and encode ``text`` (the hot path: a handful of vectorised steps).

        Returns (data, mapped, differs) to hand to :meth:`offset_map` if the text has hits;
        a text that took the per-char path returns its OffsetMap in place of mapped.  Like
        CharNormalizer.compress, but dropping by bytes (see the comment above), and leaving
        the offsets, which only texts with a hit need, to offset_map.
        """
        # numpy stores a str as UCS-4, so this is its code points without an encode step
        # (a lone surrogate included: the table drops it).  "" comes out as one NUL: dropped.
        # "wrap" never wraps (the table covers every code point) and is the cheapest mode.
        mapped = self._table.take(np.frombuffer(np.array(text), np.uint32), mode="wrap")
        data = mapped.tobytes().translate(None, b"\0")
        differs = None
        if self._fold:
            values = np.frombuffer(data, self._dtype)
            rest = values[1:]
            differs = rest != values[:-1]  # a char stays if it differs from the one before it
            data = data[:self.width] + rest[differs].tobytes()
        if _ESCAPE_BYTE in data:  # an expanding or beyond-table char (rare)
            normalised, offsets = self._normalizer.per_char(text)
            points = np.frombuffer(normalised.encode("utf-32-le"), np.uint32)
            latin = np.array([is_latin_alnum(c) for c in normalised], bool)
            return self._pack(self._indices(points, latin)).tobytes(), offsets, None
        return data, mapped, differs

    def offset_map(self, mapped: OffsetMap | np.ndarray, differs: np.ndarray | None) -> OffsetMap:
        """Map codes of :meth:`encode`'s stream back to the text (texts with hits only)."""
        if isinstance(mapped, OffsetMap):
            return mapped
        return self._normalizer.offset_map(mapped.nonzero()[0], differs)

    def latin_at(self, data: bytes, offset: int) -> bool:
        """True if the code at byte ``offset`` stands for a Latin letter or digit."""
        return data[offset:offset + self.width] in self._latin_codes


class WordMatcher:
    """Finds and masks sensitive words; immutable and safe to share between threads."""

    __slots__ = ("_automaton", "_patterns", "_encoding", "_whole_word_latin", "_longest",
                 "word_count", "_check", "_symbols", "_symbol_pass", "_allowed", "_wanted",
                 "_pairs", "_tones", "_kernel", "_tone_scan", "_symbol_scan")

    def __init__(self, automaton: Any | None,  # kernel.searcher: a Searcher or the ahocorasick_rs automaton
                 patterns: Sequence[_Pattern], encoding: SearchEncoding,
                 whole_word_latin: bool, longest: int) -> None:
        # Use WordMatcher.build(); this constructor takes already-prepared parts.
        self._automaton = automaton
        self._patterns = tuple(patterns)
        self._encoding = encoding
        self._whole_word_latin = whole_word_latin
        self._longest = longest  # longest encoded pattern in bytes, bounds the re-check window
        # The listed words, not the keys: pinyin spellings repeat their word's pattern (a
        # 100,000-word list with pinyin has ~384,000). A set of the words, built in C.
        self.word_count = len(set(map(_WORD, itertools.filterfalse(_ALLOWED, self._patterns))))
        self._check = None  # with overlays: (plain normaliser, transforms) to check hits by
        self._symbols: tuple[str, ...] = ()  # leet symbols that are noise without leet
        self._symbol_pass: WordMatcher | None = None  # Latin words with those read as letters
        self._allowed: frozenset[str] = frozenset()  # allow entries, normalised without overlays
        self._wanted: dict[str, str] = {}  # with overlays: word -> word normalised without them
        # With homophones: the chars of each two-char Chinese word (normalised without
        # overlays); a hit on one that kept neither char is dropped without classify.
        self._pairs: dict[str, frozenset[str]] = {}
        self._tones = False  # pinyin: texts with tone numbers get a pass without them
        # The compiled hot path (rules.text.kernel), or None: the Python one, same results.
        self._kernel = _kernel.make_kernel(encoding, self._patterns, automaton, whole_word_latin,
                                           longest, _MAX_RESCANS)
        self._tone_scan = _kernel.tone_scan(self._kernel)
        self._symbol_scan = None

    @classmethod
    def build(cls, words: Iterable[Word], *, allow: Iterable[str] = (),
              whole_word_latin: bool = True, fold_repeats: bool = False,
              skip_noise: bool = True, traditional: bool = True, pinyin: bool = False,
              homophones: bool | str | None = None, leet: bool | dict[str, str] = False,
              confusables: bool = False) -> "WordMatcher":
        """Normalise the words and allow-list once and compile them into one automaton.

        ``pinyin`` (extra keys), ``homophones``, ``leet`` (True for DEFAULT_LEET, or a table)
        and ``confusables`` (overlays) are the options of ``rules.text.variants``; hits
        that needed one are checked.  ``homophones``: None for the default (same-tone
        homophones with ``pinyin``, none without), "same_tone", "any_tone", "off", or the
        first version's boolean (True: tones ignored).  The work is in
        ``rules.text.wordbuild``.
        """
        # Imported here: wordbuild builds on this module's SearchEncoding and _Pattern.
        from .wordbuild import build_matcher

        return build_matcher(cls, words, allow=allow, whole_word_latin=whole_word_latin,
                             fold_repeats=fold_repeats, skip_noise=skip_noise,
                             traditional=traditional, pinyin=pinyin, homophones=homophones,
                             leet=leet, confusables=confusables)

    def __len__(self) -> int:
        return self.word_count

    def explain(self, span: str, word: str) -> str:
        """Which transformation finds ``word`` in ``span`` ("" if none was needed)."""
        if self._check is None:
            return ""
        plain, transforms = self._check
        if self._symbol_pass is not None:  # a span may be the symbol pass's find ("$cam")
            transforms = self._symbol_pass._check[1]
        return classify(span, plain.normalize_short(span), plain.normalize_short(word), word,
                        transforms) or ""

    def find(self, text: str) -> list[Match]:
        """Return non-overlapping leftmost-longest matches, in order, as original offsets."""
        kernel = self._kernel
        if kernel is not None:
            if not kernel.configured:
                _kernel.configure(kernel, self, Match)
            found = kernel.find(text)  # the steps below in one call, for most texts
            if found is not None:
                return found
        found = self._find(text)
        if self._tones and self._tone_scan(text):
            return merge_matches(found, self._find_toned(text)) if found else self._find_toned(text)
        return found

    def _find_toned(self, text: str) -> list[Match]:
        """Chinese words in pinyin with tone numbers ("zha4pian4"): found without them.

        A pass over the text without its tone numbers, only for texts that have one (a
        digit right after a letter), so no word needs a tone-numbered key: that would add
        a long key a word to the automaton and its build.  Only Chinese words count here: a
        Latin word found with a digit taken out ("k1ll") is leet's business.
        """
        stripped, kept = without_tone_numbers(text)
        found = []
        for match in self._find(stripped):
            if not any(map(is_cjk, match.word)):
                continue
            start, end = kept.item(match.start), kept.item(match.end - 1) + 1
            if end < len(text) and TONE_NUMBER.match(text, end):
                end += 1  # the last syllable's tone number, and marks over it
                while end < len(text) and unicodedata.category(text[end]) in _MARKS:
                    end += 1
            span = text[start:end]
            found.append(match._replace(start=start, end=end,
                                        via=self.explain(span, match.word) if match.via else ""))
        return found

    def _find(self, text: str) -> list[Match]:
        if not text or self._automaton is None:
            return []
        kernel = self._kernel
        data = kernel.encode(text) if kernel is not None else None
        mapped = differs = None
        if data is None:  # no kernel, or a char only the per-char path can do (rare)
            kernel = None
            data, mapped, differs = self._encoding.encode(text)
        hits = self._automaton.find_matches_as_indexes(data)
        if self._symbol_pass is not None and self._symbol_scan(text):
            extra = self._symbol_pass.find(text)
            if extra:
                found = self._resolve(text, data, hits, kernel, mapped, differs) if hits else []
                return merge_matches(found, extra)
        if not hits:
            return []  # the common case: offsets are never computed
        return self._resolve(text, data, hits, kernel, mapped, differs)

    def _resolve(self, text: str, data: bytes, hits: list[tuple[int, int, int]], kernel,
                 mapped: OffsetMap | np.ndarray | None, differs: np.ndarray | None) -> list[Match]:
        """Hits of the automaton as matches: placed, whole-word checked, overlays checked."""
        if kernel is not None:
            if not kernel.configured:
                _kernel.configure(kernel, self, Match)
            return kernel.matches(text, data, hits)  # the loop below, compiled
        candidates = self._candidates(text, data, hits, self._encoding.offset_map(mapped, differs))
        patterns = self._patterns
        found: list[Match] = []
        for index, first, last in candidates:
            word, category, _, _ = patterns[index]
            via = ""
            if self._check is not None and text[first:last] != word:
                span = text[first:last]
                seen = self._check[0].normalize_short(span)
                pair = self._pairs.get(word)
                if pair is not None and len(seen) == 2 and pair.isdisjoint(seen) and all(
                        map(is_cjk, seen)):
                    continue  # two homophones for a two-char word: classify says no, faster
                if seen in self._allowed:
                    continue  # an allowed word that an overlay made look like a listed one
                via = classify(span, seen, self._wanted[word], word, self._check[1])
                if via is None:
                    continue  # an overlay's false positive (see variants.classify)
            found.append(Match(first, last, word, category, via))
        return found


    def _candidates(self, text: str, data: bytes, hits: list[tuple[int, int, int]],
                    offsets: OffsetMap) -> list[tuple[int, int, int]]:
        """(pattern, first, last) of each hit that stands: Kernel.resolve in Python."""
        # Hits are byte offsets into the encoded stream, ``width`` bytes a char; offsets
        # maps char positions back to the original text.
        width = self._encoding.width
        patterns = self._patterns
        check_latin = self._whole_word_latin
        candidates: list[tuple[int, int, int]] = []
        base = 0
        rescans = 0
        while True:
            restart = -1
            for index, start, end in hits:
                _, _, allowed, latin_only = patterns[index]
                if allowed:
                    continue
                start = (start + base) // width
                end = (end + base) // width
                if check_latin and latin_only and self._glued(data, offsets, start, end):
                    # A rejected hit may hide a word starting inside it (e.g. "sb" rejected
                    # in "asb站" hides "b站").  Only if a short look finds one, search again
                    # from its second char on; the cap keeps hostile text linear.
                    if rescans < _MAX_RESCANS and self._hides_another(data, offsets, start, end):
                        rescans += 1
                        restart = (start + 1) * width
                        break
                    continue
                first, last = offsets.span(start, end)
                # Combining marks after the last matched char belong to it ("m̶"): mask them.
                while last < len(text) and unicodedata.category(text[last]) in _MARKS:
                    last += 1
                candidates.append((index, first, last))
            if restart < 0:
                return candidates
            base = restart
            hits = self._automaton.find_matches_as_indexes(data[base:])

    def _glued(self, data: bytes, offsets: OffsetMap, start: int, end: int) -> bool:
        """True if a Latin hit touches another Latin letter/digit with nothing dropped between."""
        encoding = self._encoding
        width = encoding.width
        if start > 0 and encoding.latin_at(data, (start - 1) * width) and offsets.adjacent(start):
            return True
        return (end * width < len(data) and encoding.latin_at(data, end * width)
                and offsets.adjacent(end))

    def _hides_another(self, data: bytes, offsets: OffsetMap, start: int, end: int) -> bool:
        """True if a pattern that could stand starts inside chars [start+1, end).

        One that could not is left out: a Latin-only pattern right after a Latin letter of
        the rejected hit, with nothing dropped between, would be glued too.  In English
        text pinyin keys hide inside one another everywhere ("change": chang, hang...),
        and each hidden one would cost a search of the rest of the text.
        """
        width = self._encoding.width
        inside = (end - start - 1) * width
        window = data[(start + 1) * width:end * width + self._longest]
        for index, at, _ in self._automaton.find_matches_as_indexes(window):
            if at >= inside:
                return False
            # The rejected hit is all Latin, so the char before this one is a Latin letter.
            if not (self._patterns[index].latin_only and offsets.adjacent(start + 1 + at // width)):
                return True
        return False

    def mask(self, text: str, matches: Iterable[Match], *, char: str = "*",
             replacement: str | None = None) -> str:
        """Replace each matched span: char per original char, or the span by ``replacement``."""
        if replacement is None and len(char) != 1:
            raise ValueError("mask char must be exactly one character")
        if self._kernel is not None and type(matches) is list and len(char) == 1:
            masked = self._kernel.mask(text, matches, char, replacement)
            if masked is not None:  # None: matches it does not know; the loop below does them
                return masked
        pieces: list[str] = []
        position = 0
        for match in sorted(matches, key=_START_END):
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
_START_END = operator.attrgetter("start", "end")
_ALLOWED = operator.itemgetter(2)  # _Pattern.allowed
_WORD = operator.itemgetter(0)  # _Pattern.word
# Marks that attach to the char before them: a mask covers them with it.
_MARKS = ("Mn", "Me")
