"""Hostile callback bodies for tests/test_fuzz_gunicorn.py, made from every sample, and the oracle
that says which reply each one is owed. Pure: no server, no I/O; one seed makes the same cases.

Each body is a real sample mutated in one of the ways an attacker (or a drifting IM) would try:
field deletions, type swaps, 10^6-character strings, numbers JSON allows and 64 bits do not, lone
surrogates written as JSON escapes, NUL, bidi and zero-width characters, deep nesting (merge-forward
`TIMRelayElem` chains and plain arrays/objects), truncation, invalid UTF-8, duplicate keys and a
wrong or missing CallbackCommand. Text that `json.dumps` cannot write (a lone-surrogate escape, the
literal 1e400) goes into the tree as a `Raw` value, spliced into the serialised text afterwards.

The oracle is the target behaviour of issue 11: 413 over `server.max_body_bytes`; 400 only for a body
that is not JSON, not an object, or whose CallbackCommand is missing or not the query's; a body
nested deeper than the service's JSON depth limit gets 200 with the chain's on_error reply for a
Before* command, 400 otherwise; any other object gets 200, whatever its fields hold.
"""

from __future__ import annotations

import ast
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20261206
HUGE = 10**6  # characters in a "huge" string
DEFAULT_DEPTH_LIMIT = 1000  # used when receiver/ names no JSON depth limit (see depth_limit())
AMBIGUOUS_DEPTH = 2  # depths this close to the limit may count either way (is the top object level 1?)
NUMBERS = (str(2**70), str(-2**70), str(2**64), str(2**63), "1e400", "-1e400", "1e-400", "-0", "-0.0",
           "3.14159265358979323846264338327950288", "1" + "0" * 5000)
SURROGATES = (r"\ud800", r"\udfff", r"a\ud800b", r"\udfff\ud800", r"\ud83d", r"\ud800\ud800", r"x\udbff")
ODD_CHARACTERS = ("\x00", "a\x00b", "\u202e", "\u2066x\u2069", "\u200b", "bad\u200bword", "\u200d\u200c",
                  "\ufeff", "\u061c", "\u202a\u202b\u202c\u202d", "\u2028\u2029", "\x7f\x1b[2J")
INVALID_UTF8 = (b"\xff", b"\xfe", b"\xc3\x28", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf",
                b"\x80", b"\xf8\x88\x80\x80\x80")
COMMAND = "CallbackCommand"
UNKNOWN_COMMAND = "Fuzz.CallbackNobodyKnows"


@dataclass(frozen=True)
class Raw:
    """JSON text put into the body as it is (json.dumps would escape or refuse it)."""

    text: str


@dataclass(frozen=True)
class Case:
    """One request: the query's CallbackCommand (None: left out), the body, and how it was made."""

    index: int
    family: str
    detail: str
    command: str | None
    body: bytes
    chunked: bool = False  # sent with Transfer-Encoding: chunked (no Content-Length)
    query: dict[str, str] = field(default_factory=dict)  # overrides of the signed query


# --- serialising ------------------------------------------------------------------------------------


def dumps(tree: Any) -> bytes:
    """UTF-8 JSON of `tree`, with every Raw value (or key) spliced in as it is."""
    raws: list[str] = []

    def swap(value):
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"\x01RAW{len(raws) - 1}\x01"
        if isinstance(value, dict):
            return {swap(k) if isinstance(k, Raw) else k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(tree), ensure_ascii=False)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0001RAW{i}\\u0001"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


def copy(tree: Any) -> Any:
    return json.loads(json.dumps(tree))


def slots(tree: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value below the top, walked with a stack."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            found.append((node, key))
            if isinstance(value, (dict, list)):
                stack.append(value)
    return found


def string_slots(tree: Any) -> list[tuple[Any, Any]]:
    return [(c, k) for c, k in slots(tree) if isinstance(c[k], str)] or slots(tree)


# --- deep nesting -------------------------------------------------------------------------------------


def nested_arrays(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


def nested_objects(depth: int) -> Raw:
    return Raw('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1))


def relay_chain(depth: int, text: str = "deep") -> Raw:
    """A MsgBody of `depth` merge-forward messages, each forwarding the next (five JSON levels each)."""
    inner = json.dumps([{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])
    head = ('[{"MsgType":"TIMRelayElem","MsgContent":{"Title":"fwd","MsgNum":1,"CompatibleText":"fwd",'
            '"AbstractList":["a: b"],"MsgList":[{"From_Account":"a","To_Account":"b","MsgSeq":1,'
            '"MsgRandom":2,"MsgTimeStamp":1700000000,"MsgBody":')
    return Raw(head * depth + inner + "}]}}]" * depth)


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects (the top object is level 1); strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def depth_limit(root: Path) -> tuple[int, str]:
    """The service's JSON depth limit: a module-level int constant in receiver/ named for JSON or
    nesting depth (MAX_JSON_DEPTH, JSON_NESTING_LIMIT...; not a relay or queue depth), else
    DEFAULT_DEPTH_LIMIT. Returns (limit, where it was found)."""
    for path in sorted((root / "receiver").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
                node.target if isinstance(node, ast.AnnAssign) else None)
            if isinstance(target, ast.Name) and _names_json_depth(target.id.upper()):
                value = _constant_int(node.value)
                if value is not None:
                    return value, f"{path.relative_to(root)}:{target.id}"
    return DEFAULT_DEPTH_LIMIT, f"none found in receiver/, assumed {DEFAULT_DEPTH_LIMIT}"


def _names_json_depth(name: str) -> bool:
    if not ("DEPTH" in name or "NESTING" in name) or any(w in name for w in ("RELAY", "QUEUE", "RECORDING")):
        return False
    return any(word in name for word in ("JSON", "NEST", "BODY", "MAX", "LIMIT"))


def _constant_int(node) -> int | None:
    """An int literal or arithmetic on literals (1 << 10, 2 ** 9, 1_000), else None."""
    allowed = (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
    if node is None or not all(isinstance(n, allowed) for n in ast.walk(ast.Expression(node))):
        return None
    value = eval(compile(ast.Expression(node), "<constant>", "eval"), {"__builtins__": {}})
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the mutations ------------------------------------------------------------------------------------
# Each takes (rng, tree) and returns a description; it changes the tree in place.

Mutation = Callable[[random.Random, Any], str]


def delete_field(rng: random.Random, tree: Any) -> str:
    container, key = rng.choice(slots(tree))
    del container[key]
    return f"deleted {key!r}"


def swapped(rng: random.Random, value: Any) -> Any:
    if isinstance(value, bool):
        return rng.choice([str(value).lower(), int(value), None])
    if isinstance(value, int):
        return rng.choice([str(value), float(value), [value], None, {"value": value}])
    if isinstance(value, str):
        return rng.choice([int(value) if value.isdigit() else rng.choice([0, -1, 7]), [value], {value: value},
                           None, True, 1.5])
    if isinstance(value, list):
        return rng.choice([{str(i): v for i, v in enumerate(value)}, None, "list", 0, [[value]]])
    if isinstance(value, dict):
        return rng.choice([list(value.values()), None, "object", 0, [value]])
    return rng.choice(["", 0, [], {}])


def swap_type(rng: random.Random, tree: Any) -> str:
    container, key = rng.choice(slots(tree))
    old = container[key]
    container[key] = swapped(rng, old)
    return f"{key!r}: {type(old).__name__} -> {type(container[key]).__name__}"


def huge_string(rng: random.Random, tree: Any) -> str:
    container, key = rng.choice(string_slots(tree))
    kind = rng.choice(["ascii", "ascii", "words", "key", "list", "object"])
    if kind == "ascii":
        container[key] = "a" * HUGE
    elif kind == "words":
        container[key] = "badword " * (HUGE // 8)
    elif kind == "key":
        container[key] = {"k" * HUGE: 1}
    elif kind == "list":
        container[key] = Raw("[" + ",".join(["0"] * (HUGE // 5)) + "]")
    else:
        container[key] = {f"k{i}": i for i in range(HUGE // 20)}
    return f"{key!r}: huge {kind}"


def over_limit(rng: random.Random, tree: Any) -> str:
    """A 10^6-character string that takes 3 or 6 bytes each: over the 1 MiB body limit."""
    container, key = rng.choice(string_slots(tree))
    if rng.random() < 0.5:
        container[key] = "好" * HUGE
        return f"{key!r}: 10^6 CJK characters"
    container[key] = Raw('"' + "\\u200b" * HUGE + '"')
    return f"{key!r}: 10^6 escaped zero-width spaces"


def huge_number(rng: random.Random, tree: Any) -> str:
    container, key = rng.choice(slots(tree))
    number = rng.choice(NUMBERS)
    container[key] = Raw(number)
    return f"{key!r} = {number[:30]}{'...' if len(number) > 30 else ''}"


def lone_surrogate(rng: random.Random, tree: Any) -> str:
    escape = rng.choice(SURROGATES)
    if rng.random() < 0.2:  # as a key
        container, key = rng.choice([(c, k) for c, k in slots(tree) if isinstance(c[k], dict)] or [(tree, None)])
        target = container[key] if key is not None else tree
        target[Raw(f'"{escape}"')] = "surrogate key"
        return f"key {escape} added"
    container, key = rng.choice(string_slots(tree))
    prefix = container[key] if isinstance(container[key], str) else ""
    container[key] = Raw(json.dumps(prefix[:20])[:-1] + escape + '"')
    return f"{key!r} with {escape}"


def odd_characters(rng: random.Random, tree: Any) -> str:
    container, key = rng.choice(string_slots(tree))
    odd = rng.choice(ODD_CHARACTERS)
    value = container[key] if isinstance(container[key], str) else ""
    cut = rng.randint(0, len(value))
    container[key] = value[:cut] + odd + value[cut:]
    return f"{key!r} with {odd!r}"


def deep_plain(rng: random.Random, tree: Any, depth: int) -> str:
    nest = rng.choice([nested_arrays, nested_objects])
    where = rng.choice(["new", "replace"])
    if where == "new":
        tree["FuzzDeep"] = nest(depth)
        return f"FuzzDeep: {nest.__name__}({depth})"
    candidates = [(c, k) for c, k in slots(tree) if k != COMMAND]
    container, key = rng.choice(candidates) if candidates else (tree, "FuzzDeep")
    container[key] = nest(depth)
    return f"{key!r}: {nest.__name__}({depth})"


STACKABLE: tuple[Mutation, ...] = (delete_field, swap_type, huge_number, lone_surrogate, odd_characters)


def stacked(rng: random.Random, tree: Any) -> str:
    done = []
    for mutation in rng.sample(STACKABLE, rng.randint(2, 4)):
        if not slots(tree):
            break
        done.append(mutation(rng, tree))
    return "; ".join(done)


# --- byte-level mutations -----------------------------------------------------------------------------


def truncated(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    cut = rng.randrange(0, len(raw))
    return raw[:cut], f"cut at byte {cut} of {len(raw)}"


def invalid_utf8(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    bad = rng.choice(INVALID_UTF8 + (b"\x00",))  # a raw NUL is not allowed in JSON text either
    quotes = [i for i, b in enumerate(raw) if b == 0x22]
    at = rng.choice(quotes) + 1 if quotes and rng.random() < 0.7 else rng.randrange(0, len(raw) + 1)
    return raw[:at] + bad + raw[at:], f"{bad!r} at byte {at}"


def duplicate_key(rng: random.Random, raw: bytes, tree: dict) -> tuple[bytes, str]:
    key = rng.choice(sorted(tree))
    value = rng.choice([tree[key], swapped(rng, tree[key])]) if key != COMMAND else tree[key]
    pair = json.dumps({key: value}, ensure_ascii=False)[1:-1].encode()
    if rng.random() < 0.5:  # first: the original (later) value wins in most parsers
        return b"{" + pair + b"," + raw[1:], f"{key!r} twice, duplicate first"
    return raw[:-1] + b"," + pair + b"}", f"{key!r} twice, duplicate last"


# --- the command ----------------------------------------------------------------------------------------


def command_mutation(rng: random.Random, tree: dict, commands: list[str]) -> tuple[str | None, str]:
    """Change CallbackCommand in the body and/or the query; returns (query command, description)."""
    own = tree.get(COMMAND)
    other = rng.choice([c for c in commands if c != own])
    kind = rng.choice(["delete", "other", "number", "null", "case", "space", "list", "query missing",
                       "both other", "both unknown", "query other"])
    query: str | None = own
    if kind == "delete":
        del tree[COMMAND]
    elif kind == "other":
        tree[COMMAND] = other
    elif kind == "number":
        tree[COMMAND] = 42
    elif kind == "null":
        tree[COMMAND] = None
    elif kind == "case":
        tree[COMMAND] = own.lower()
    elif kind == "space":
        tree[COMMAND] = own + " "
    elif kind == "list":
        tree[COMMAND] = [own]
    elif kind == "query missing":
        query = None
    elif kind == "both other":
        tree[COMMAND] = query = other
    elif kind == "both unknown":
        tree[COMMAND] = query = UNKNOWN_COMMAND
    else:
        query = other
    return query, f"command: {kind}" + (f" ({other})" if "other" in kind else "")


def not_an_object(rng: random.Random, tree: dict) -> tuple[Any, str]:
    kind = rng.choice(["array", "string", "number", "null", "true", "empty array"])
    value = {"array": [tree], "string": json.dumps(tree), "number": 42, "null": None, "true": True,
             "empty array": []}[kind]
    return value, f"top level is {kind}"
