"""Detection of contact details (phones, e-mail, URLs, QQ/WeChat ids) in chat text.

Text is first mapped character by character onto a normalised stream: full-width and
circled digits, Chinese numerals (一二三 / 壹贰叁) and other Unicode decimal digits become
ASCII digits, full-width letters and punctuation become ASCII, Latin capitals lower-case.  Every character maps to
exactly ONE character, so the index map back to the original text is the identity and a
regex span on the stream is directly a span of the original.  Separators between digits
("1 3 8-0013-8000") are allowed by the regexes themselves and end up inside the span.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

__all__ = ["ContactMatch", "ContactFinder", "KINDS"]

KINDS = ("phone", "email", "url", "digits")

_CHINESE_DIGITS = dict(zip("〇零一二三四五六七八九", "00123456789"))
_CHINESE_DIGITS.update(zip("壹贰叁肆伍陆柒捌玖", "123456789"))
_CHINESE_DIGITS.update({"貳": "2", "參": "3", "陸": "6", "幺": "1"})

# Between two digits of one number: up to two of these (spaces, dashes, dots, bullets, and
# the invisible plane-14 tag chars that lie beyond the translate table).
_SEP = r"[\s\-.·•_~—–\U000E0000-\U000E007F]{0,2}"
# Dots people use to dodge URL filters: ASCII, ideographic full stop, and the word 点.
_DOT = r"[.。点]"
# Common TLDs; short ones that are also everyday words (in, is, at, to, us, am...) are left
# out on purpose, so "U.S." or "log.in" in normal prose are not taken for links.
_TLDS = ("com|net|org|cn|io|cc|tv|me|info|biz|xyz|top|vip|club|site|online|shop|store|app|"
         "dev|co|ly|gl|gg|link|live|ink|fun|wang|ren|pro|asia|mobi|name|hk|tw|jp|kr|uk|ru|de|"
         "fr|eu|ca|au|sg|tk|ml|cf|ga|gq|pw|ws|la|im")
_URL_TAIL = r"(?:[/?#:][!-~]*[A-Za-z0-9/#=_~\-])?"  # path/query; never ends on punctuation
_LABEL_REST = r"(?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?" + _DOT  # a host label after its first char
_HOST = r"(?:[A-Za-z0-9]" + _LABEL_REST + r")+"


def _not_after(chars: str, first: str) -> str:
    """`first` (one char) not preceded by any of `chars` (a class body): (?<![chars])first.

    Written with the look-behind after the char, as first(?<![chars]first), which means the
    same: a pattern that starts with an assertion is tried at every position of the text,
    while one that starts with a char lets the regex engine skip ahead to that char (2-5x
    faster on chat text).  Every detector below starts this way.
    """
    return f"{first}(?<![{chars}]{first})"


# kind -> ((hint, regex), ...); the regex only runs when the hint finds its marker.
_PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "email": (
        ("email", _not_after(r"A-Za-z0-9._%+\-", "[A-Za-z0-9]") + r"[A-Za-z0-9._%+\-]*@"
         r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"),
    ),
    "url": (
        ("scheme", r"(?:" + _not_after("A-Za-z0-9", "h") + r"ttps?|" + _not_after("A-Za-z0-9", "f")
         + r"tp)://[!-~]*[A-Za-z0-9/#=_~\-]"),
        ("dot", _not_after(r"A-Za-z0-9.\-", "w") + "ww" + _DOT + _HOST
         + r"[A-Za-z]{2,24}(?![A-Za-z0-9\-])" + _URL_TAIL),
        # _HOST with its first label spelled out, so that the pattern starts with a char.
        ("dot", _not_after(r"A-Za-z0-9@._\-", "[A-Za-z0-9]") + _LABEL_REST
         + r"(?:[A-Za-z0-9]" + _LABEL_REST + r")*(?:" + _TLDS + r")(?![A-Za-z0-9\-])" + _URL_TAIL),
    ),
    "phone": (
        # Chinese mobile, optionally with +86 / 0086 / (+86) in front.
        ("digits", r"(?:" + _not_after("0-9", r"\+") + r"[\s\-]*86[\s\-]*1|"
         + _not_after("0-9", "0") + r"0[\s\-]*86[\s\-]*1|"
         + _not_after("0-9", r"\(") + r"\+?86\)[\s\-]*1|" + _not_after("0-9", "1") + ")"
         + _SEP + r"[3-9](?:" + _SEP + r"[0-9]){9}(?![0-9])"),
        # Any +CC international number, grouping with spaces, dashes, dots or brackets.
        ("digits", _not_after("0-9A-Za-z", r"\+") + r"[1-9][0-9]{0,2}(?:[\s\-.()]{0,3}[0-9]){6,14}"
         r"(?![0-9])"),
        # Chinese landline with area code: 010-12345678, (0755) 8888 8888.
        ("digits", r"(?:" + _not_after("0-9", "0") + r"[1-9][0-9]{1,2}|" + _not_after("0-9", r"\(")
         + r"0[1-9][0-9]{1,2}\))[\s\-]?[2-9][0-9]{2,3}[\s\-]?[0-9]{4}(?![0-9])"),
    ),
}
# A WeChat id (letter then 5-19 letters/digits/_/-) is only recognisable after a keyword.
# Without a ":"/"号"/"id" marker the id must hold a digit, "_" or "-", so "vx please"
# (an ordinary English word after the keyword) is not taken for an id.
_WECHAT_WORDS = r"微信|威信|薇信|维信|徽信|微xin|wei\s?xin|we\s?chat|vchat|vx|wx|v信|加v|加微"
_WECHAT = (r"(?:" + "|".join(_not_after("A-Za-z", word[0]) + word[1:] for word in _WECHAT_WORDS.split("|"))
           + r")\s*(?:(?:号|id)?\s*[:=]\s*|(?:号|id)\s*|(?=[A-Za-z][A-Za-z0-9_\-]*[0-9_\-]))"
           r"([A-Za-z][A-Za-z0-9_\-]{5,19})(?![A-Za-z0-9_\-])")
# Cheap single scans that let a text skip the detectors that cannot possibly match it
# (most chat has a "." or "一" somewhere, but rarely "x.y" or five digits in a row).
# Each starts with a literal or a small set, which the regex engine skips to quickly.
_HINTS = {
    "email": re.compile(r"@(?<=[a-z0-9._%+\-]@)[a-z0-9]"),
    "scheme": re.compile(r"://"),
    "dot": re.compile(r"[.。点](?<=[a-z0-9][.。点])[a-z]"),
    "digits": re.compile(r"[0-9](?:" + _SEP + r"[0-9]){4}"),
    "wechat": re.compile(_WECHAT_WORDS),
}
# Dates are the common long digit run in ordinary chat; they are not contact numbers.
_DATE = re.compile(r"(?:19|20)[0-9]{2}([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12][0-9]|3[01])")
# A number followed by a unit or currency is an amount, not a QQ number ("花了12000元").
_NOT_A_QUANTITY = (r"(?!\s?(?:元|块|万|亿|千|百|年|岁|%|个|人|次|分|秒|米|斤|克|公里|平|件|台|"
                   r"km|kg|rmb|usd|yuan|dollars?))")
# Overlaps are resolved leftmost-longest; on a tie the earlier kind here wins.
_PRIORITY = {"email": 0, "url": 1, "phone": 2, "digits": 3}


@dataclass(frozen=True)
class ContactMatch:
    """A contact detail found in the ORIGINAL text; ``end`` is exclusive."""

    start: int
    end: int
    kind: str  # "phone", "email", "url" or "digits" (QQ numbers and WeChat ids)


def _contact_char(ch: str) -> str:
    if ch in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) != 1:
        folded = ch  # keep 1:1 (e.g. ⑩ -> "10" would shift every later offset)
    if folded in _CHINESE_DIGITS:  # e.g. circled ㊀
        return _CHINESE_DIGITS[folded]
    if "A" <= folded <= "Z":
        return folded.lower()  # lets every regex skip IGNORECASE, which is much slower
    digit = unicodedata.decimal(folded, None)
    if digit is not None:
        return str(digit)
    if unicodedata.category(folded) == "Cf":
        return " "  # zero-width chars act like a separator
    return folded


@functools.cache
def _contact_table() -> list[str]:
    # A list indexed by code point (planes 0-1, so maths digits like 𝟏 are covered) is the
    # fastest str.translate table; chars beyond it raise IndexError and stay as they are.
    return [_contact_char(chr(cp)) for cp in range(0x20000)]


def normalize_contacts(text: str) -> str:
    """Return the 1:1 normalised stream used for contact detection (same length as text)."""
    return text.translate(_contact_table())


# ---- the gate: most chat has no contact detail, and can be told so without normalising ----
#
# Normalising (str.translate, ~16 ns a char for non-ASCII text) and the five hints cost ~7 µs for
# 200 chars, yet fewer than 1 text in 10 passes any hint.  The gate is one regex over the RAW
# text that matches whenever some hint would match the stream: each stream char in it becomes
# the class of every char the table maps onto it.  It may match more often than the hints (it
# checks fewer chars around the marker, and every char past U+FFFF counts as anything: sre tests
# non-BMP ranges one by one, and maths digits and letters come in dozens of small blocks), which
# only costs the full check; it must never match less.  Each branch names the hint it covers.
_GATE_BRANCHES = {
    # "@" with a letter or digit after it
    "email": "(?<={at}){alnum}",
    # "://"
    "scheme": "(?<={colon}){slash}{slash}",
    # a letter or digit, a dot, a letter
    "dot": "(?<={alnum}{dot}){lower}",
    # five digits with up to two separators between each two
    "digits": "(?<={digit})(?:{sep}{{0,2}}{digit}){{4}}",
    # the first two chars of every keyword (three for "we", a common English word)
    "wechat": "(?<={wechat_cjk}){wechat_cjk_next}|(?<={w})(?:{e}(?:{i}|{space}?{c})|{x})|(?<={v}){v_next}",
}
# The stream chars behind each name above; the gate's first char is any of _GATE_FIRST.
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_GATE_CHARS = {
    "at": "@", "colon": ":", "slash": "/", "dot": ".。点", "lower": _LOWER, "digit": "0123456789",
    "alnum": _LOWER + "0123456789", "sep": "-.·•_~—–", "space": "",  # + whitespace, below
    "wechat_cjk": "微威薇维徽加", "wechat_cjk_next": "信xv微",
    "w": "w", "e": "e", "i": "i", "c": "c", "x": "x", "v": "v", "v_next": "cx信",
}
_GATE_FIRST = "@:.。点0123456789微威薇维徽加wv"


@functools.cache
def _gate() -> re.Pattern[str]:
    """Compile the gate (see above) from the contact table: once per process, ~20 ms."""
    # \s in the hints is Unicode whitespace (they are compiled without re.ASCII); all of it
    # lies in the BMP.
    whitespace = "".join(chr(cp) for cp in range(0x10000) if chr(cp).isspace())
    wanted = {name: chars + whitespace if name in ("sep", "space") else chars
              for name, chars in _GATE_CHARS.items()}
    wanted["first"] = _GATE_FIRST
    every = set("".join(wanted.values()))
    sources: dict[str, list[int]] = {}  # stream char -> BMP code points mapped onto it
    for cp, out in enumerate(_contact_table()[:0x10000]):
        if out in every:
            sources.setdefault(out, []).append(cp)
    classes = {name: _char_class(sorted({cp for ch in chars for cp in sources.get(ch, ())}))
               for name, chars in wanted.items()}
    branches = "|".join(branch.format_map(classes) for branch in _GATE_BRANCHES.values())
    return re.compile(classes["first"] + "(?:" + branches + ")")


def _char_class(points: list[int]) -> str:
    """A regex class of these BMP code points (as ranges) and of every char beyond the BMP."""
    parts = []
    start = previous = None
    for cp in points + [None]:
        if start is not None and cp == previous + 1:
            previous = cp
            continue
        if start is not None:
            parts.append(f"\\u{start:04x}" if start == previous else f"\\u{start:04x}-\\u{previous:04x}")
        start = previous = cp
    return "[" + "".join(parts) + "\\U00010000-\\U0010ffff]"


class ContactFinder:
    """Finds phone numbers, e-mail addresses, URLs and QQ/WeChat ids; thread-safe."""

    def __init__(self, *, kinds: Iterable[str] = KINDS, allow_domains: Iterable[str] = (),
                 min_digits: int = 5) -> None:
        self.kinds = frozenset(kinds)
        unknown = self.kinds - set(KINDS)
        if unknown:
            raise ValueError(f"unknown contact kinds: {sorted(unknown)}; expected {KINDS}")
        if min_digits < 2:
            raise ValueError("min_digits must be at least 2")
        self.allow_domains = tuple(d.strip().lower().strip(".") for d in allow_domains if d.strip())
        self.min_digits = min_digits
        flags = re.ASCII  # the stream is already lower-case ASCII where it matters
        # (kind, hint name, regex, group reported)
        self._detectors: list[tuple[str, str, re.Pattern[str], int]] = []
        for kind in KINDS:
            if kind in self.kinds and kind in _PATTERNS:
                self._detectors.extend((kind, hint, re.compile(pattern, flags), 0)
                                       for hint, pattern in _PATTERNS[kind])
        if "digits" in self.kinds:
            run = (_not_after("0-9", "[0-9]") + r"(?:" + _SEP + r"[0-9]){%d,}(?![0-9])" % (min_digits - 1)
                   + _NOT_A_QUANTITY)
            # Shorter runs than the hint's five digits must not be skipped by it.
            hint = "digits" if min_digits >= 5 else "any"
            self._detectors.append(("digits", hint, re.compile(run, flags), 0))
            # \s in the keyword pattern must also see CJK spaces, so no re.ASCII there.
            self._detectors.append(("digits", "wechat", re.compile(_WECHAT), 1))
        _contact_table()  # build the translate table now, not on the first message
        # No gate when a detector runs without a hint ("any": digit runs shorter than five).
        covered = all(hint in _GATE_BRANCHES for _, hint, _, _ in self._detectors)
        self._gate = _gate() if covered else None

    def find(self, text: str) -> list[ContactMatch]:
        """Return sorted, non-overlapping contact matches with offsets into ``text``."""
        if not text or (self._gate is not None and self._gate.search(text) is None):
            return []  # no hint could match: the common case, decided on the raw text
        norm = normalize_contacts(text)
        # (start, end, kind, reportable) candidates from every detector.
        candidates: list[tuple[int, int, str, bool]] = []
        hinted: dict[str, bool] = {"any": True}
        for kind, hint, pattern, group in self._detectors:
            if hint not in hinted:
                hinted[hint] = _HINTS[hint].search(norm) is not None
            if not hinted[hint]:
                continue
            for m in pattern.finditer(norm):
                matched = m.group(group)
                if kind == "digits" and not group and _DATE.fullmatch(matched):
                    continue
                reportable = not self._allowed(kind, matched)
                candidates.append((m.start(group), m.end(group), kind, reportable))
        if not candidates:
            return []
        candidates.sort(key=lambda c: (c[0], c[0] - c[1], _PRIORITY[c[2]]))
        found: list[ContactMatch] = []
        covered = 0
        for start, end, kind, reportable in candidates:
            if start < covered:
                continue
            covered = end  # an allowed link still occupies its span, hiding digits inside it
            if reportable:
                found.append(ContactMatch(start, end, kind))
        return found

    def _allowed(self, kind: str, matched: str) -> bool:
        if not self.allow_domains or kind not in ("url", "email"):
            return False
        host = _host_of(kind, matched)
        return any(host == d or host.endswith("." + d) for d in self.allow_domains)


def _host_of(kind: str, matched: str) -> str:
    if kind == "email":
        host = matched.rpartition("@")[2]
    else:
        host = matched.split("://", 1)[1] if "://" in matched else matched
        host = re.split(r"[/?#:]", host, maxsplit=1)[0].rpartition("@")[2]
    return host.replace("。", ".").replace("点", ".").lower().strip(".")
