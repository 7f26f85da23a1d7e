"""Per-character text normalisation that sees through common evasions and keeps offsets.

Every original character maps to zero or more normalised characters *on its own*
(no context), so each normalised position can be traced back to exactly one
original character.  The steps for one character are:

1. NFKC (full-width, circled, mathematical styled letters, compatibility ideographs)
2. casefold
3. strip accents from Latin letters (``ü`` -> ``u``), so ``fück`` still reads ``fuck``
4. drop "noise" (punctuation, symbols incl. emoji, separators, control/format/zero-width,
   combining marks) when ``skip_noise``
5. Traditional -> Simplified Chinese, one character at a time, when ``traditional``

The hot path (:meth:`CharNormalizer.streams`) applies the precomputed result with
``str.translate`` over a list covering planes 0-1, which is several times faster than
calling ``unicodedata`` per character.  Offsets are only computed (:meth:`CharNormalizer.locate`)
for texts that actually contain a candidate match.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import unicodedata

__all__ = ["CharNormalizer", "OffsetMap", "get_normalizer", "normalize_char", "t2s_char_map",
           "is_latin_alnum"]

# Categories treated as noise between meaningful characters.  Mc (spacing marks) is kept
# because in Indic scripts it carries real letters.
_NOISE_CATEGORIES = frozenset(
    {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
     "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn", "Mn", "Me"}
)
# CJK blocks fed to OpenCC: Ext-A, URO, compatibility ideographs, Ext-B..Ext-F + supplement.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
_TABLE_SIZE = 0x20000
MARK = "\x00"  # stands in for a dropped char; NUL itself is always dropped
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
_BEYOND_TABLE = re.compile("[\U00020000-\U0010FFFF]")
# Deletes every char that equals the next one: keeps one char per run ("fuuuck" -> "fuck").
_REPEATS = re.compile(r"(.)(?=\1)", re.DOTALL)
# Per-character cache above this size stops growing, so hostile input cannot balloon memory.
_MAX_CACHED_CHARS = 200_000


@functools.cache
def t2s_char_map() -> dict[str, str]:
    """Return {traditional char: simplified char} from OpenCC's t2s data, single chars only."""
    import opencc  # imported lazily: only needed once, when the first table is built

    converter = opencc.OpenCC("t2s")
    mapping: dict[str, str] = {}
    for first, last in _CJK_RANGES:
        chars = [chr(cp) for cp in range(first, last + 1)]
        # One char per line keeps OpenCC from applying phrase rules, so the result is 1:1.
        converted = converter.convert("\n".join(chars)).split("\n")
        if len(converted) != len(chars):  # pragma: no cover - defensive, OpenCC keeps lines
            raise RuntimeError("OpenCC t2s changed the number of lines")
        for src, dst in zip(chars, converted):
            if dst != src and len(dst) == 1:
                mapping[src] = dst
    return mapping


def _latin_base(ch: str) -> str:
    """Return the unaccented base of a Latin letter (``é`` -> ``e``), else the char itself."""
    if ch.isascii() or not ch.isalpha() or not unicodedata.name(ch, "").startswith("LATIN "):
        return ch
    base = unicodedata.normalize("NFD", ch)[0]
    return base if base.isascii() else ch


def _normalize_once(ch: str, skip_noise: bool, t2s: dict[str, str] | None) -> str:
    out = []
    for c in unicodedata.normalize("NFKC", ch).casefold():
        category = unicodedata.category(c)
        if category == "Cs" or c == MARK:
            continue  # lone surrogates cannot be UTF-8 encoded; NUL is our deletion mark
        if skip_noise and category in _NOISE_CATEGORIES:
            continue
        c = _latin_base(c)
        if t2s is not None:
            c = t2s.get(c, c)
        out.append(c)
    return "".join(out)


def normalize_char(ch: str, *, skip_noise: bool = True, traditional: bool = True) -> str:
    """Normalise one character; the reference definition the fast paths must reproduce."""
    t2s = t2s_char_map() if traditional else None
    out = _normalize_once(ch, skip_noise, t2s)
    if out == ch or not out:
        return out  # already a fixed point (the case for most chars)
    # Iterate to a fixed point so normalising the output again changes nothing; the fast
    # path relies on that when it fixes up astral characters after the BMP pass.
    for _ in range(4):
        again = "".join(_normalize_once(c, skip_noise, t2s) for c in out)
        if again == out:
            break
        out = again
    return out


@functools.lru_cache(maxsize=16384)  # bounded: fed with chars from untrusted text
def is_latin_alnum(ch: str) -> bool:
    """True for a Latin letter or an ASCII digit (the chars that glue a Latin word)."""
    if ch.isascii():
        return ch.isalnum()
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN ")


class _CharCache(dict):
    """char -> normalised string for chars beyond the translate table, filled on sight."""

    def __init__(self, skip_noise: bool, traditional: bool) -> None:
        super().__init__()
        self._skip_noise = skip_noise
        self._traditional = traditional

    def __missing__(self, ch: str) -> str:
        out = normalize_char(ch, skip_noise=self._skip_noise, traditional=self._traditional)
        if len(self) < _MAX_CACHED_CHARS:
            self[ch] = out
        return out


def _make_astral_check():
    """Return a fast test for "does this str hold a code point above U+FFFF?"."""
    # CPython stores a str with 1, 2 or 4 bytes per char (PEP 393) and sys.getsizeof sees
    # that in O(1), far cheaper than scanning 200 chars.  A cached UTF-8 copy can only make
    # a str look bigger (a false "yes", which merely costs a regex scan), never smaller.
    # The layout is verified here; anything unexpected falls back to the scan.
    header = sys.getsizeof("\U00010000") - 8
    probes_ok = (
        sys.getsizeof("\U00010000" * 5) == header + 24
        and sys.getsizeof("\u0100" * 5) < header + 24
        and sys.getsizeof("\xe9" * 5) < header + 24
    )
    if probes_ok:
        getsizeof = sys.getsizeof
        return lambda text: getsizeof(text) - header >= 4 * (len(text) + 1)
    search = _ASTRAL.search
    return lambda text: search(text) is not None


_has_astral = _make_astral_check()


@functools.lru_cache(maxsize=8)
def _tables(skip_noise: bool, traditional: bool) -> tuple[list[str], _CharCache]:
    # A list indexed by code point is faster for str.translate than a dict.  It covers
    # planes 0-1 (all of BMP plus emoji and styled maths letters); higher code points raise
    # IndexError, which translate treats as "leave unchanged", and the rare texts holding
    # them get a second pass.  Dropped chars become MARK so the result stays aligned 1:1
    # with the original; that alignment gives offsets almost for free when a word is hit.
    table = [normalize_char(chr(cp), skip_noise=skip_noise, traditional=traditional) or MARK
             for cp in range(_TABLE_SIZE)]
    return table, _CharCache(skip_noise, traditional)


class OffsetMap:
    """Maps positions of a (possibly folded) normalised stream back to the original text."""

    __slots__ = ("_starts", "_kept")

    def __init__(self, starts: list[int], kept: list[int] | None) -> None:
        self._starts = starts  # original index of each unfolded normalised char
        self._kept = kept  # unfolded index of the last char of each folded run, or None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) covering normalised [start, end), noise inside included."""
        starts, kept = self._starts, self._kept
        if kept is None:
            return starts[start], starts[end - 1] + 1
        # A folded char stands for a whole run: start at its first char, end after its last.
        return starts[kept[start - 1] + 1 if start else 0], starts[kept[end - 1]] + 1

    def adjacent(self, p: int) -> bool:
        """True if no original char was dropped between normalised chars p-1 and p."""
        starts, kept = self._starts, self._kept
        if kept is None:
            return starts[p] <= starts[p - 1] + 1
        return starts[kept[p - 1] + 1] <= starts[kept[p - 1]] + 1


class CharNormalizer:
    """Applies the per-character normalisation to whole texts, with or without offsets."""

    __slots__ = ("skip_noise", "traditional", "fold_repeats", "_table", "_chars", "_mark_beyond")

    def __init__(self, *, skip_noise: bool = True, traditional: bool = True,
                 fold_repeats: bool = False) -> None:
        self.skip_noise = skip_noise
        self.traditional = traditional
        self.fold_repeats = fold_repeats
        self._table, self._chars = _tables(skip_noise, traditional)
        chars = self._chars
        self._mark_beyond = lambda m: chars[m.group()] or MARK

    def streams(self, text: str) -> tuple[str, str, str]:
        """Return (marked, unfolded, normalised) streams of ``text``.

        ``marked`` has MARK where a char was dropped (aligned 1:1 with ``text`` unless a
        char expanded), ``unfolded`` drops the marks, ``normalised`` also folds repeats.
        """
        marked = text.translate(self._table)
        if not marked.isascii() and _has_astral(marked):
            # Chars beyond the table; kept plane-1 chars are fixed points, so no harm done.
            marked = _BEYOND_TABLE.sub(self._mark_beyond, marked)
        unfolded = marked.replace(MARK, "")
        return marked, unfolded, _REPEATS.sub("", unfolded) if self.fold_repeats else unfolded

    def normalize(self, text: str) -> str:
        """Return the normalised stream of ``text`` (same as joining per-char results)."""
        return self.streams(text)[2]

    def locate(self, text: str, marked: str, unfolded: str) -> OffsetMap:
        """Build the offset map for ``text`` from its :meth:`streams`."""
        if len(marked) == len(text):
            # Kept chars encode to a non-zero byte ("?" if not Latin-1), marks to 0, so
            # compress() yields the original index of every kept char, entirely in C.
            selectors = marked.encode("latin-1", "replace")
            starts = list(itertools.compress(range(len(text)), selectors))
        else:  # some char expanded to several (rare): do it by hand
            starts = self.offsets(text, fold=False)[0]
        kept = None
        if self.fold_repeats:
            folded_away = [m.start() for m in _REPEATS.finditer(unfolded)]
            if folded_away:
                keep = bytearray(b"\x01") * len(unfolded)
                for index in folded_away:
                    keep[index] = 0
                kept = list(itertools.compress(range(len(unfolded)), keep))
        return OffsetMap(starts, kept)

    def offsets(self, text: str, *, fold: bool | None = None) -> tuple[list[int], list[int]]:
        """Return (starts, ends): original span [starts[k], ends[k]) of normalised char k.

        A plain per-character loop: the reference that :meth:`locate` must agree with.
        """
        table, chars = self._table, self._chars
        fold = self.fold_repeats if fold is None else fold
        starts: list[int] = []
        ends: list[int] = []
        previous = ""
        for i, ch in enumerate(text):
            cp = ord(ch)
            out = table[cp] if cp < _TABLE_SIZE else chars[ch]
            for c in out.replace(MARK, ""):
                if fold and c == previous:
                    ends[-1] = i + 1  # the folded run now reaches this original char
                else:
                    starts.append(i)
                    ends.append(i + 1)
                    previous = c
        return starts, ends


@functools.lru_cache(maxsize=16)
def get_normalizer(*, skip_noise: bool = True, traditional: bool = True,
                   fold_repeats: bool = False) -> CharNormalizer:
    """Return a shared normaliser for these options (tables are built once per process)."""
    return CharNormalizer(skip_noise=skip_noise, traditional=traditional,
                          fold_repeats=fold_repeats)
