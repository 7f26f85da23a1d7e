"""The fuzz case list (every sample, every family of tests/fuzz_bodies.py) and the reply each is owed.

`generate` runs on a thread with a large stack: the oracle parses bodies nested 20,000 deep with the
standard library's recursive decoder, which the main thread's stack and recursion limit refuse.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from dataclasses import dataclass
from typing import Any

from . import fuzz_bodies as fb
from .fuzz_bodies import COMMAND, Case

MESSAGE_SAMPLES = ("C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg", "Group.CallbackBeforeSendMsg",
                   "Group.CallbackAfterSendMsg")
RELAY_DEPTHS = (50, 100, 150, 190, 199, 210, 250, 400, 1000, 2000)
# Per sample: how many cases of each tree mutation.
TREE_FAMILIES = ((fb.delete_field, 12), (fb.swap_type, 18), (fb.huge_string, 1), (fb.huge_number, 9),
                 (fb.lone_surrogate, 11), (fb.odd_characters, 7), (fb.stacked, 30))
BYTE_FAMILIES = ((fb.truncated, 10), (fb.invalid_utf8, 6))
QUERY_CASES = (  # (overrides of the signed query, statuses owed)
    ({"RequestTime": "9" * 400}, {401}), ({"RequestTime": "-" + "9" * 30}, {401}),
    ({"RequestTime": "1e10"}, {401}), ({"RequestTime": "nan"}, {401}), ({"RequestTime": "0x10"}, {401}),
    ({"RequestTime": ""}, {401}), ({"RequestTime": "١٧٠٠٠٠٠٠٠٠"}, {401}), ({"Sign": "0" * 64}, {401}),
    ({"Sign": "x" * 5000}, {401}), ({"SdkAppid": "1400000001"}, {403}), ({"SdkAppid": ""}, {403}),
)


@dataclass(frozen=True)
class Expect:
    """The statuses a reply may have; `on_error`: a 200 must be the chain's on_error reply."""

    statuses: frozenset[int]
    why: str
    on_error: bool = False


def expect(case: Case, *, max_body: int, limit: int, before: frozenset[str],
           unruled: frozenset[str] = frozenset()) -> Expect:
    """What the service owes `case` (the target behaviour of issue 11, see fuzz_bodies).

    `unruled`: Before* commands no rule of the chain acts on. An over-deep body of one is allowed like
    any callback no rule takes: on_error is what a failing rule decides (rules/chain.py Chain.undecided).
    """
    raw = case.body
    if len(raw) > max_body:
        return Expect(frozenset({413}), f"{len(raw)} bytes > max_body_bytes {max_body}")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return Expect(frozenset({400}), "not JSON")
    try:
        raw.decode("utf-8")
        strict = True
    except UnicodeDecodeError:  # surrogates encoded in UTF-8: Python's decoder lets them pass
        strict = False
    command = case.command
    matches = bool(command) and isinstance(value, dict) and value.get(COMMAND) == command
    if not isinstance(value, dict):
        normal = Expect(frozenset({400}), "not an object")
    elif not matches:
        normal = Expect(frozenset({400}), f"command {value.get(COMMAND)!r} in the body, {command!r} in the query")
    else:
        normal = Expect(frozenset({200} if strict else {200, 400}),
                        "a JSON object, command matches" + ("" if strict else " (UTF-8-encoded surrogates)"))
    depth = fb.json_depth(raw)
    if depth <= limit - fb.AMBIGUOUS_DEPTH:
        return normal
    if matches and command in unruled:
        deep = Expect(frozenset({200}), f"depth {depth} > limit {limit}, Before* no rule takes: allow")
    elif matches and command in before:
        deep = Expect(frozenset({200}), f"depth {depth} > limit {limit}, Before*: on_error", on_error=True)
    else:
        deep = Expect(frozenset({400}), f"depth {depth} > limit {limit}")
    if depth > limit + fb.AMBIGUOUS_DEPTH:
        return deep
    return Expect(normal.statuses | deep.statuses, f"depth {depth} at the limit {limit}: either")


def generate(samples: dict[str, dict], *, seed: int = fb.SEED, limit: int = fb.DEFAULT_DEPTH_LIMIT,
             max_body: int = 1 << 20, before: frozenset[str] = frozenset(),
             unruled: frozenset[str] = frozenset()) -> list[tuple[Case, Expect]]:
    """Every case with its Expect, the same list for the same seed."""
    return on_big_stack(lambda: _generate(samples, random.Random(seed), limit, max_body, before, unruled))


def owed(case: Case, **kwargs) -> Expect:
    """`expect` for one case, however deep its body."""
    return on_big_stack(lambda: expect(case, **kwargs))


def on_big_stack(function):
    """Run `function` on a thread whose stack and recursion limit take JSON nested 100,000 deep."""
    result: list = []
    old_limit, old_stack, old_digits = sys.getrecursionlimit(), threading.stack_size(), sys.get_int_max_str_digits()
    sys.setrecursionlimit(200_000)
    sys.set_int_max_str_digits(0)  # JSON has no limit on digits: a 5,000-digit integer is a JSON number
    threading.stack_size(512 << 20)
    try:
        thread = threading.Thread(target=lambda: result.append(function()), name="fuzz-big-stack")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
        sys.set_int_max_str_digits(old_digits)
    if not result:
        raise RuntimeError("failed on the big-stack thread (see its traceback above)")
    return result[0]


def _generate(samples, rng: random.Random, limit: int, max_body: int, before,
              unruled) -> list[tuple[Case, Expect]]:
    cases: list[Case] = []
    commands = sorted(samples) + [fb.UNKNOWN_COMMAND]
    deep_depths = sorted({max(10, limit // 5), limit // 2, limit - 50, limit + 50, limit + 500, 2 * limit,
                          5 * limit, 20 * limit})

    def add(family: str, detail: str, command: str | None, body: bytes, **kw) -> None:
        cases.append(Case(len(cases), family, detail, command, body, **kw))

    for number, (name, sample) in enumerate(sorted(samples.items())):
        own = sample.get(COMMAND)
        for mutation, count in TREE_FAMILIES:
            for _ in range(count):
                tree = fb.copy(sample)
                detail = mutation(rng, tree)
                add(mutation.__name__, f"{name}: {detail}", own, fb.dumps(tree))
        if number % 3 == 0:
            tree = fb.copy(sample)
            add("over_limit", f"{name}: {fb.over_limit(rng, tree)}", own, fb.dumps(tree))
        for depth in rng.sample(deep_depths, 4):
            tree = fb.copy(sample)
            add("deep_plain", f"{name}: {fb.deep_plain(rng, tree, depth)}", own, fb.dumps(tree))
        raw = fb.dumps(sample)
        for mutation, count in BYTE_FAMILIES:
            for _ in range(count):
                body, detail = mutation(rng, raw)
                add(mutation.__name__, f"{name}: {detail}", own, body)
        for _ in range(4):
            body, detail = fb.duplicate_key(rng, raw, sample)
            add("duplicate_key", f"{name}: {detail}", own, body)
        for _ in range(8):
            tree = fb.copy(sample)
            query, detail = fb.command_mutation(rng, tree, commands)
            add("command", f"{name}: {detail}", query, fb.dumps(tree))
        for _ in range(2):
            value, detail = fb.not_an_object(rng, fb.copy(sample))
            add("not_an_object", f"{name}: {detail}", own, fb.dumps(value))
        add("chunked", f"{name}: as it is, chunked", own, raw, chunked=True)
        if number % 4 == 0:
            tree = fb.copy(sample)
            add("chunked_over_limit", f"{name}: {fb.over_limit(rng, tree)}, chunked", own, fb.dumps(tree),
                chunked=True)
        if name in MESSAGE_SAMPLES:
            for depth in RELAY_DEPTHS:
                tree = fb.copy(sample)
                tree["MsgBody"] = fb.relay_chain(depth, text="badword relay")
                add("relay_depth", f"{name}: TIMRelayElem nested {depth} deep in MsgBody", own, fb.dumps(tree))
    deep_array = fb.dumps(fb.nested_arrays(5 * limit))
    add("deep_plain", "top level: an array nested 5 x limit deep", "C2C.CallbackAfterSendMsg", deep_array)
    expected = [(case, expect(case, max_body=max_body, limit=limit, before=before, unruled=unruled))
                for case in cases]
    sample_name = sorted(samples)[0]
    for overrides, statuses in QUERY_CASES:
        case = Case(len(expected), "query", f"{sample_name} with {overrides!r}"[:120],
                    samples[sample_name][COMMAND], fb.dumps(samples[sample_name]), query=overrides)
        expected.append((case, Expect(frozenset(statuses), f"query {sorted(overrides)}")))
    return expected


def summary(cases: list[tuple[Case, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case, _ in cases:
        counts[case.family] = counts.get(case.family, 0) + 1
    return dict(sorted(counts.items()))
