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

Optionally, runs of the same normalised character then fold into one (``fold_repeats``).

The hot path (:meth:`CharNormalizer.compress`) is vectorised with numpy: the text becomes
an array of code points, one lookup in a table covering planes 0-1 normalises every char,
then dropped chars and repeats are compressed out.  That is a fixed ~10 numpy calls per
text (~5 µs for 200 chars) where ``str.translate`` with a per-code-point table costs ~30 ns
a char for non-ASCII text.  The indices that survive are the offset map, built only for
texts with a hit.  Chars with no single-char answer (expansions like ``ß`` -> ``ss``,
code points past plane 1) send their text down a per-character path instead.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

from .variants import Transforms, apply_overlay

__all__ = ["CharNormalizer", "OffsetMap", "get_normalizer", "DROPPED", "ESCAPE",
           "normalize_char", "t2s_char_map", "is_latin_alnum"]

# Categories treated as noise between meaningful characters.  Mc (spacing marks) is kept
# because in Indic scripts it carries real letters.
_NOISE_CATEGORIES = frozenset(
    {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
     "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn", "Mn", "Me"}
)
# CJK blocks fed to OpenCC: Ext-A, URO, compatibility ideographs, Ext-B..Ext-F + supplement.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
# The vectorised table covers planes 0-1 (all of BMP plus emoji and styled maths letters).
_TABLE_SIZE = 0x20000
# Table value for "no single-char answer": the char expands to several chars or lies beyond
# the table.  It is above U+10FFFF, so decoding a stream that holds it fails, which is how
# the hot path notices (at no cost when absent) and hands the text to the per-char path.
ESCAPE = 0xFFFFFFFF
# Dropped chars are 0 in the table; NUL itself is always dropped, so 0 is free for that.
DROPPED = 0
# Per-character cache above this size stops growing, so hostile input cannot balloon memory.
_MAX_CACHED_CHARS = 200_000
# Texts up to this many chars normalise faster char by char than through numpy.
_SHORT = 48


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
        if category == "Cs" or c == "\x00":
            continue  # lone surrogates cannot be UTF-8 encoded; NUL is never meaningful
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
    # Iterate to a fixed point so normalising the output again changes nothing (a word
    # normalised twice, once at build time and once inside a text, must read the same).
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
    """char -> normalised string, filled on sight; for the per-char path only."""

    def __init__(self, table: list[str], skip_noise: bool, traditional: bool) -> None:
        super().__init__()
        self._table = table
        self._skip_noise = skip_noise
        self._traditional = traditional

    def __missing__(self, ch: str) -> str:
        cp = ord(ch)
        if cp < _TABLE_SIZE:
            return self._table[cp]
        out = normalize_char(ch, skip_noise=self._skip_noise, traditional=self._traditional)
        if len(self) < _MAX_CACHED_CHARS:
            self[ch] = out
        return out


@functools.lru_cache(maxsize=8)
def _base_strings(skip_noise: bool, traditional: bool) -> tuple[str, ...]:
    return tuple(normalize_char(chr(cp), skip_noise=skip_noise, traditional=traditional)
                 for cp in range(_TABLE_SIZE))


@functools.lru_cache(maxsize=16)
def _tables(skip_noise: bool, traditional: bool,
            transforms: Transforms = Transforms()) -> tuple[np.ndarray, _CharCache]:
    """Return (code table for the hot path, char -> string lookup for the per-char path)."""
    strings = list(_base_strings(skip_noise, traditional))
    codes = np.fromiter(
        (ord(out) if len(out) == 1 else DROPPED if not out else ESCAPE for out in strings),
        dtype=np.uint32, count=_TABLE_SIZE)
    if transforms:
        # Overlays map single-char outputs onward (see rules.text.variants); chars past
        # the table (planes 2+) are left as the base normalisation reads them.
        apply_overlay(codes, strings, transforms, DROPPED)
    # One extra slot: lookups clip code points past the table onto it, so they escape too.
    codes = np.append(codes, np.uint32(ESCAPE))
    codes.flags.writeable = False
    return codes, _CharCache(strings, skip_noise, traditional)


class OffsetMap:
    """Maps positions of the normalised stream back to the original text."""

    __slots__ = ("_kept", "_breaks")

    def __init__(self, kept: np.ndarray, breaks: np.ndarray | None) -> None:
        # Arrays read with .item() at the few positions a hit needs: cheaper than tolist().
        self._kept = kept  # original index of each normalised char before folding
        # Folding: the kept chars where a run of repeats ends and another starts next
        # (so folded char p is kept chars breaks[p-1]+1 .. breaks[p]); None: no folding.
        self._breaks = breaks

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) covering normalised [start, end), noise inside included."""
        kept, breaks = self._kept, self._breaks
        if breaks is None:
            return kept.item(start), kept.item(end - 1) + 1
        first = breaks.item(start - 1) + 1 if start else 0
        last = breaks.item(end - 1) if end <= len(breaks) else len(kept) - 1
        return kept.item(first), kept.item(last) + 1

    def adjacent(self, p: int) -> bool:
        """True if no original char was dropped between normalised chars p-1 and p."""
        first = p if self._breaks is None else self._breaks.item(p - 1) + 1
        return self._kept.item(first) <= self._kept.item(first - 1) + 1


class CharNormalizer:
    """Applies the per-character normalisation to whole texts, with or without offsets."""

    __slots__ = ("skip_noise", "traditional", "fold_repeats", "transforms", "_codes", "_chars")

    def __init__(self, *, skip_noise: bool = True, traditional: bool = True,
                 fold_repeats: bool = False, transforms: Transforms = Transforms()) -> None:
        self.skip_noise = skip_noise
        self.traditional = traditional
        self.fold_repeats = fold_repeats
        self.transforms = transforms
        self._codes, self._chars = _tables(skip_noise, traditional, transforms)

    @property
    def codes(self) -> np.ndarray:
        """Read-only table: normalised code point of each code point, DROPPED or ESCAPE."""
        return self._codes

    def compress(self, text: str, table: np.ndarray) -> tuple[bytes, np.ndarray,
                                                              np.ndarray | None]:
        """Look every char of ``text`` up in ``table``, drop the 0s, fold repeats if asked.

        ``table`` is :attr:`codes` or a table derived from it one-to-one (the search
        encoding in ``rules.text.words``), so drops and folds fall on the same chars.
        Returns (stream, kept, differs): the bytes of the values left after dropping and
        folding, and for :meth:`offset_map` the original index of every char kept and,
        when folding, whether each kept char differs from the next.  No offsets are
        computed here: most texts never need them.
        """
        # numpy stores a str as UCS-4, so this is its code points without an encode step
        # (a lone surrogate included: the table drops it).  "" comes out as one NUL: dropped.
        points = np.frombuffer(np.array(text), np.uint32)
        mapped = table.take(points, mode="clip")
        kept = mapped.nonzero()[0]
        values = mapped[kept]
        if not self.fold_repeats:
            return values.tobytes(), kept, None
        rest = values[1:]
        differs = rest != values[:-1]  # a char stays if it differs from the one before it
        return values[:1].tobytes() + rest[differs].tobytes(), kept, differs

    def normalize(self, text: str) -> str:
        """Return the normalised stream of ``text`` (same as joining per-char results)."""
        try:
            return self.compress(text, self._codes)[0].decode("utf-32-le")
        except UnicodeDecodeError:  # an ESCAPE: expanding or beyond-table char (rare)
            return self.per_char(text)[0]

    def normalize_short(self, text: str) -> str:
        """:meth:`normalize` for a word-sized text: per char, cheaper than numpy's set-up."""
        if len(text) > _SHORT:
            return self.normalize(text)
        chars = self._chars
        out = "".join([chars[c] for c in text])
        if self.fold_repeats and out:
            out = "".join([c for i, c in enumerate(out) if not i or c != out[i - 1]])
        return out

    def normalize_many(self, texts: list[str]) -> list[str]:
        """Return :meth:`normalize` of each text, all in one vectorised pass (word lists)."""
        owner = np.repeat(np.arange(len(texts)), [len(text) for text in texts])
        points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), np.uint32)
        mapped = self._codes.take(points, mode="clip")
        kept = mapped.nonzero()[0]
        values, owner = mapped[kept], owner[kept]
        if self.fold_repeats and len(values) > 1:
            stay = np.ones(len(values), bool)  # repeats fold only within one text
            stay[1:] = (values[1:] != values[:-1]) | (owner[1:] != owner[:-1])
            values, owner = values[stay], owner[stay]
        escaped = np.unique(owner[values == ESCAPE])  # these texts go the per-char way
        if len(escaped):
            others = ~np.isin(owner, escaped)
            values, owner = values[others], owner[others]
        joined = values.tobytes().decode("utf-32-le")
        ends = np.cumsum(np.bincount(owner, minlength=len(texts))).tolist()
        normalised = [joined[start:end] for start, end in zip([0] + ends, ends)]
        for index in escaped.tolist():
            normalised[index] = self.per_char(texts[index])[0]
        return normalised

    def locate(self, text: str) -> tuple[str, OffsetMap]:
        """Return the normalised stream of ``text`` and its offset map."""
        stream, kept, differs = self.compress(text, self._codes)
        try:
            return stream.decode("utf-32-le"), self.offset_map(kept, differs)
        except UnicodeDecodeError:
            return self.per_char(text)

    @staticmethod
    def offset_map(kept: np.ndarray, differs: np.ndarray | None) -> OffsetMap:
        """Build the offset map from what :meth:`compress` returned (texts with hits only)."""
        return OffsetMap(kept, None if differs is None else differs.nonzero()[0])

    def per_char(self, text: str) -> tuple[str, OffsetMap]:
        """:meth:`locate` one char at a time: for chars that expand or lie beyond the table."""
        chars = self._chars
        unfolded: list[str] = []
        kept: list[int] = []
        for i, ch in enumerate(text):
            for c in chars[ch]:
                unfolded.append(c)
                kept.append(i)
        if not self.fold_repeats:
            return "".join(unfolded), OffsetMap(np.array(kept, np.intp), None)
        breaks = [k for k in range(len(unfolded) - 1) if unfolded[k] != unfolded[k + 1]]
        folded = "".join(c for k, c in enumerate(unfolded) if k == 0 or c != unfolded[k - 1])
        return folded, OffsetMap(np.array(kept, np.intp), np.array(breaks, np.intp))

    def offsets(self, text: str, *, fold: bool | None = None) -> tuple[list[int], list[int]]:
        """Return (starts, ends): original span [starts[k], ends[k]) of normalised char k.

        A plain per-character loop: the reference that :meth:`locate` must agree with.
        """
        chars = self._chars
        fold = self.fold_repeats if fold is None else fold
        starts: list[int] = []
        ends: list[int] = []
        previous = ""
        for i, ch in enumerate(text):
            for c in chars[ch]:
                if fold and c == previous:
                    ends[-1] = i + 1  # the folded run now reaches this original char
                else:
                    starts.append(i)
                    ends.append(i + 1)
                    previous = c
        return starts, ends


@functools.lru_cache(maxsize=16)
def get_normalizer(*, skip_noise: bool = True, traditional: bool = True,
                   fold_repeats: bool = False,
                   transforms: Transforms = Transforms()) -> CharNormalizer:
    """Return a shared normaliser for these options (tables are built once per process)."""
    return CharNormalizer(skip_noise=skip_noise, traditional=traditional,
                          fold_repeats=fold_repeats, transforms=transforms)
