"""A small grammar for one-line scenario sentences: tokens, patterns and a matcher.

A sentence such as `alice invites [dave, erin] to g1` is split into tokens (words, "quoted
strings", [lists] and (options)); a pattern such as `{actor:user} invites {users:users} to
{group:group}` names what each position must hold. Patterns are rows in tables (steps.py,
expectations.py), not if-chains, so adding a sentence is adding a row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from receiver.errors import ImhookError


class SentenceError(ImhookError):
    """A sentence does not parse; the scenario loader adds the file, step number and line."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "str", "list" or "opts"
    value: Any  # str, or a tuple of str for lists and options
    text: str


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<list>\[[^\]]*\])
    | (?P<opts>\([^)]*\))
    | (?P<word>[^\s"\[\]()]+)
    )""", re.X)


def tokenize(sentence: str) -> list[Token]:
    """Split a sentence into tokens; a quote or bracket left open is an error."""
    tokens: list[Token] = []
    position, end = 0, len(sentence.rstrip())
    while position < end:
        match = _TOKEN.match(sentence, position)
        if match is None or match.end() == position:
            rest = sentence[position:].strip()
            raise SentenceError(f"cannot read {rest[:30]!r}: a quote, [ or ( is not closed")
        kind = match.lastgroup
        text = match.group(kind)
        tokens.append(Token(kind, _token_value(kind, text), text))
        position = match.end()
    return tokens


def _token_value(kind: str, text: str) -> Any:
    if kind == "str":
        try:
            return json.loads(text)  # JSON escapes: \" \n \u00e9
        except ValueError:
            raise SentenceError(f"bad escape in string {text}") from None
    if kind in ("list", "opts"):
        return tuple(part.strip() for part in text[1:-1].split(",") if part.strip())
    return text


# --- patterns -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    words: tuple[str, ...]  # alternatives, e.g. ("her", "his", "their")


@dataclass(frozen=True)
class Slot:
    name: str
    kind: str  # user, users, group, str, num, opts, word, rest, or "choice"
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Optional_:
    parts: tuple


SLOT_KINDS = ("user", "users", "group", "str", "num", "opts", "word", "rest")
_PATTERN_PART = re.compile(r"\{[^}]+\}|\[|\]|[^\s\[\]{}]+")
_HUMAN = {"user": "USER", "users": "[USERS]", "group": "GROUP", "str": '"TEXT"', "num": "N",
          "opts": "(OPTIONS)", "word": "WORD", "rest": "..."}


@dataclass(frozen=True)
class Pattern:
    source: str
    parts: tuple

    @classmethod
    def compile(cls, source: str) -> "Pattern":
        stack: list[list] = [[]]
        for piece in _PATTERN_PART.findall(source):
            if piece == "[":
                stack.append([])
            elif piece == "]":
                inner = stack.pop()
                stack[-1].append(Optional_(tuple(inner)))
            elif piece.startswith("{"):
                stack[-1].append(_slot(piece[1:-1]))
            else:
                stack[-1].append(Literal(tuple(piece.split("|"))))
        if len(stack) != 1:
            raise ValueError(f"unbalanced [ ] in pattern {source!r}")
        return cls(source, tuple(stack[0]))

    @property
    def verb(self) -> str:
        """The first literal word: sentences are grouped by it in error messages."""
        for part in self.parts:
            if isinstance(part, Literal):
                return part.words[0]
        return ""

    def human(self) -> str:
        """The pattern as a reader would write it: `USER sends USER ["TEXT"]`."""
        return _render(self.parts)

    def match(self, tokens: list[Token]) -> dict[str, Any] | None:
        """Return the slot values if the whole token list matches, else None."""
        return _match(self.parts, 0, tokens, 0, {})


def _slot(spec: str) -> Slot:
    name, sep, kind = spec.partition(":")
    if not sep:
        name, _, alternatives = spec.partition("=")
        return Slot(name, "choice", tuple(alternatives.split("|")))
    if kind not in SLOT_KINDS:
        raise ValueError(f"unknown slot kind {kind!r} in {{{spec}}}")
    return Slot(name, kind)


def _render(parts: Iterable) -> str:
    out = []
    for part in parts:
        if isinstance(part, Literal):
            out.append("|".join(part.words))
        elif isinstance(part, Optional_):
            out.append(f"[{_render(part.parts)}]")
        elif part.kind == "choice":
            out.append("|".join(part.choices))
        else:
            out.append(_HUMAN[part.kind])
    return " ".join(out)


def _match(parts: tuple, p: int, tokens: list[Token], t: int, found: dict) -> dict | None:
    """Backtracking match of parts[p:] against tokens[t:]; small inputs, so plain recursion."""
    if p == len(parts):
        return found if t == len(tokens) else None
    part = parts[p]
    if isinstance(part, Optional_):
        with_it = _match(part.parts + parts[p + 1:], 0, tokens, t, dict(found))
        return with_it if with_it is not None else _match(parts, p + 1, tokens, t, found)
    if isinstance(part, Slot) and part.kind == "rest":
        if t == len(tokens):
            return None
        return _match(parts, p + 1, tokens, len(tokens), {**found, part.name: tokens[t:]}) \
            if p + 1 == len(parts) else None
    if t == len(tokens):
        return None
    value = _take(part, tokens[t])
    if value is _NO:
        return None
    if isinstance(part, Slot):
        found = {**found, part.name: value}
    return _match(parts, p + 1, tokens, t + 1, found)


_NO = object()


def _take(part, token: Token) -> Any:
    if isinstance(part, Literal):
        return True if token.kind == "word" and token.value.lower() in part.words else _NO
    kind = part.kind
    if kind == "choice":
        return token.value.lower() if token.kind == "word" and token.value.lower() in part.choices else _NO
    if kind in ("user", "group", "word"):
        return token.value if token.kind == "word" else _NO
    if kind == "users":
        if token.kind == "list":
            return token.value
        return (token.value,) if token.kind == "word" else _NO
    if kind == "str":
        return token.value if token.kind == "str" else _NO
    if kind == "opts":
        return token.value if token.kind == "opts" else _NO
    if kind == "num":
        return _number(token.value) if token.kind == "word" else _NO
    return _NO


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return _NO


def match_first(table: Iterable[tuple[Pattern, Any]], sentence: str, what: str) -> tuple[Any, dict]:
    """Find the first row whose pattern matches `sentence`; else raise naming the likely forms."""
    rows = list(table)
    tokens = tokenize(sentence)
    if not tokens:
        raise SentenceError(f"empty {what}")
    for pattern, target in rows:
        found = pattern.match(tokens)
        if found is not None:
            return target, found
    words = [tok.value.lower() for tok in tokens if tok.kind == "word"]
    near = [p for p, _ in rows if p.verb in words]
    forms = near or [p for p, _ in rows]
    listing = "\n    ".join(dict.fromkeys(p.human() for p in forms))
    hint = "did you mean" if near else f"a {what} has one of these forms"
    raise SentenceError(f"not a {what} I know: {sentence!r}; {hint}:\n    {listing}")


def parse_options(options: tuple[str, ...], allowed: dict[str, str]) -> dict[str, Any]:
    """Parse `(video, timeout 30, online only)` against {option: "flag" | "num"}."""
    out: dict[str, Any] = {}
    for option in options:
        words = option.split()
        for size in (2, 1):  # two-word flags first ("online only")
            name = " ".join(words[:size]).lower()
            if name in allowed and (allowed[name] == "flag") == (len(words) == size):
                break
        else:
            known = ", ".join(f"{k} N" if v == "num" else k for k, v in allowed.items())
            raise SentenceError(f"unknown option {option!r}; options here: {known or '(none)'}")
        if allowed[name] == "flag":
            out[name] = True
        else:
            value = _number(words[-1]) if len(words) == size + 1 else _NO
            if value is _NO:
                raise SentenceError(f"option {name!r} needs a number, e.g. ({name} 30)")
            out[name] = value
    return out
