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

The hot path (:meth:`CharNormalizer.normalize`) applies the precomputed result with
``str.translate`` over a 65,536-entry list, which is several times faster than calling
``unicodedata`` per character.  Offsets are only computed (:meth:`CharNormalizer.offsets`)
for texts that actually contain a candidate match.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["CharNormalizer", "get_normalizer", "normalize_char", "t2s_char_map", "is_latin_alnum"]

# Categories treated as noise between meaningful characters.  Mc (spacing marks) is kept
# because in Indic scripts it carries real letters.
_NOISE_CATEGORIES = frozenset(
    {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
     "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn", "Mn", "Me"}
)
# CJK blocks fed to OpenCC: Ext-A, URO, compatibility ideographs, Ext-B..Ext-F + supplement.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
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


@functools.cache
def _latin_base(ch: str) -> str:
    """Return the unaccented base of a Latin letter (``é`` -> ``e``), else the char itself."""
    if ch.isascii() or not unicodedata.name(ch, "").startswith("LATIN "):
        return ch
    base = unicodedata.normalize("NFD", ch)[0]
    return base if base.isascii() else ch


def _normalize_once(ch: str, skip_noise: bool, t2s: dict[str, str] | None) -> str:
    out = []
    for c in unicodedata.normalize("NFKC", ch).casefold():
        category = unicodedata.category(c)
        if category == "Cs":
            continue  # lone surrogates can never match and cannot be UTF-8 encoded
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
    # Iterate to a fixed point so normalising the output again changes nothing; the fast
    # path relies on that when it fixes up astral characters after the BMP pass.
    for _ in range(4):
        again = "".join(_normalize_once(c, skip_noise, t2s) for c in out)
        if again == out:
            break
        out = again
    return out


@functools.cache
def is_latin_alnum(ch: str) -> bool:
    """True for a Latin letter or an ASCII digit (the chars that glue a Latin word)."""
    if ch.isascii():
        return ch.isalnum()
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN ")


class _CharCache(dict):
    """char -> normalised string, filled on first sight; str.translate/lookup friendly."""

    def __init__(self, skip_noise: bool, traditional: bool) -> None:
        super().__init__()
        self._skip_noise = skip_noise
        self._traditional = traditional

    def __missing__(self, ch: str) -> str:
        out = normalize_char(ch, skip_noise=self._skip_noise, traditional=self._traditional)
        if len(self) < _MAX_CACHED_CHARS:
            self[ch] = out
        return out


@functools.lru_cache(maxsize=8)
def _tables(skip_noise: bool, traditional: bool) -> tuple[list[str], _CharCache]:
    chars = _CharCache(skip_noise, traditional)
    # A list indexed by code point is faster for str.translate than a dict; astral code
    # points raise IndexError there, which translate treats as "leave unchanged".
    bmp = [chars[chr(cp)] for cp in range(0x10000)]
    return bmp, chars


class CharNormalizer:
    """Applies the per-character normalisation to whole texts, with or without offsets."""

    __slots__ = ("skip_noise", "traditional", "fold_repeats", "_bmp", "_chars", "_astral_repl")

    def __init__(self, *, skip_noise: bool = True, traditional: bool = True,
                 fold_repeats: bool = False) -> None:
        self.skip_noise = skip_noise
        self.traditional = traditional
        self.fold_repeats = fold_repeats
        self._bmp, self._chars = _tables(skip_noise, traditional)
        chars = self._chars
        self._astral_repl = lambda m: chars[m.group()]

    def normalize(self, text: str) -> str:
        """Return the normalised stream of ``text`` (same as joining per-char results)."""
        norm = text.translate(self._bmp)
        if not text.isascii():
            norm = _ASTRAL.sub(self._astral_repl, norm)
        if self.fold_repeats:
            norm = _REPEATS.sub("", norm)
        return norm

    def offsets(self, text: str) -> tuple[list[int], list[int]]:
        """Return (starts, ends): original span [starts[k], ends[k]) of normalised char k."""
        chars = self._chars
        starts: list[int] = []
        ends: list[int] = []
        if not self.fold_repeats:
            for i, ch in enumerate(text):
                n = len(chars[ch])
                if n == 1:
                    starts.append(i)
                    ends.append(i + 1)
                elif n:
                    starts.extend([i] * n)
                    ends.extend([i + 1] * n)
            return starts, ends
        previous = ""
        for i, ch in enumerate(text):
            for c in chars[ch]:
                if c == previous:
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
