"""Expectation sentences (`bob receives "***"`) and how each is checked after its step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .grammar import Pattern, SentenceError, match_first
from .report import EVENT_KINDS, CheckResult, StepReport
from .steps import Names
from .world import C2C, GROUP, World

Outcome = tuple[bool, str]  # (passed, what was seen instead)
Check = Callable[[StepReport, World], Outcome]

OPS = ("send", "add", "respond", "delete", "create", "join", "approve", "decline", "invite", "leave", "kick",
       "recall", "read", "login", "call", "accept", "reject", "cancel", "timeout")


@dataclass(frozen=True)
class Expectation:
    text: str
    check: Check
    line: int | None = None

    def evaluate(self, step: StepReport, world: World) -> CheckResult:
        ok, detail = self.check(step, world)
        return CheckResult(self.text, ok, detail, self.line)


def _seen(step: StepReport, user: str, kind: str) -> str:
    events = step.events_of(user, kind)
    return f"{user} saw " + "; ".join(e.summary or e.kind for e in events) if events else f"{user} saw no {kind}"


def _received(v, names: Names) -> Check:
    user = names.user(v["user"])
    text = v.get("text")

    def check(step: StepReport, world: World) -> Outcome:
        texts = [e.detail.get("text", "") for e in step.events_of(user, "new message")]
        ok = bool(texts) if text is None else text in texts
        return ok, _seen(step, user, "new message")
    return check


def _received_count(v, names: Names) -> Check:
    user, count = names.user(v["user"]), v["count"]

    def check(step, world):
        got = len(step.events_of(user, "new message"))
        return got == count, f"{user} received {got}"
    return check


def _received_nothing(v, names: Names) -> Check:
    user = names.user(v["user"])

    def check(step, world):
        got = step.events_of(user, "new message") + step.events_of(user, "invitation")
        return not got, f"{user} got " + "; ".join(e.line() for e in got)
    return check


def _updated(v, names: Names) -> Check:
    user, text, negated = names.user(v["user"]), v.get("text"), bool(v.get("neg"))

    def check(step, world):
        texts = [e.detail.get("text", "") for e in step.events_of(user, "message updated")]
        found = bool(texts) if text is None else text in texts
        return found != negated, _seen(step, user, "message updated")
    return check


def _completion(outcome: str):
    def build(v, names: Names) -> Check:
        user, op, code, info = names.user(v["user"]), v.get("op"), v.get("code"), v.get("info")

        def check(step, world):
            events = [e for e in step.events_of(user) if e.kind in ("failed", "succeeded")
                      and op in (None, e.detail.get("op"))]
            matching = [e for e in events if e.kind == outcome and code in (None, e.detail.get("code"))
                        and info in (None, e.detail.get("info"))]
            seen = "; ".join(e.line() for e in events) or "nothing"
            return bool(matching), f"{user}: {seen}"
        return check
    return build


def _invitation(v, names: Names) -> Check:
    user, negated = names.user(v["user"]), v["neg"] == "no"

    def check(step, world):
        got = bool(step.events_of(user, "invitation"))
        return got != negated, _seen(step, user, "invitation")
    return check


def _sees(v, names: Names) -> Check:
    user, negated, device = names.user(v["user"]), bool(v.get("neg")), v.get("device")
    phrase = " ".join(str(t.value) for t in v["phrase"]).lower()
    if phrase not in EVENT_KINDS:
        raise SentenceError(f"no event called {phrase!r}; events: {', '.join(EVENT_KINDS)}")

    def check(step, world):
        # `on DEVICE`: only events raised on that device (NetEase recalls notify per device).
        events = [e for e in step.events_of(user, phrase)
                  if device is None or str(e.detail.get("device", "")).upper() == device.upper()]
        seen = _seen(step, user, phrase)
        return bool(events) != negated, seen
    return check


def _friends(v, names: Names) -> Check:
    return _friendship(names.user(v["user"]), names.user(v["other"]), bool(v.get("neg")), False)


def _mutual(v, names: Names) -> Check:
    return _friendship(names.user(v["user"]), names.user(v["other"]), bool(v.get("neg")), True)


def _friendship(user: str, other: str, negated: bool, mutual: bool) -> Check:
    def check(step, world):
        a = other in world.users[user].friends
        b = user in world.users[other].friends
        found = (a and b) if mutual else a
        return found != negated, f"{user}'s friends: {sorted(world.users[user].friends)}, " \
                                 f"{other}'s friends: {sorted(world.users[other].friends)}"
    return check


def _members(v, names: Names) -> Check:
    alias, users, how = names.group(v["group"]), names.user_list(v["users"]), v["how"]

    def check(step, world):
        members = world.groups[alias].members if alias in world.groups else []
        ok = {"include": all(u in members for u in users), "exclude": not any(u in members for u in users),
              "are": sorted(members) == sorted(users)}[how]
        return ok, f"{alias} members: {members}" if alias in world.groups else f"{alias} was never created"
    return check


def _unread(v, names: Names) -> Check:
    user, count = names.user(v["user"]), v["count"]
    kind, peer = ((C2C, names.user(v["peer"])) if v.get("peer") else
                  (GROUP, names.group(v["group"])) if v.get("group") else (None, None))

    def check(step, world):
        got = world.unread_count(user, kind, peer)
        return got == count, f"{user} has {got} unread"
    return check


def _presence(v, names: Names) -> Check:
    user, state = names.user(v["user"]), v["state"]

    def check(step, world):
        online = world.online(user)
        return online == (state == "online"), f"{user} is {'online' if online else 'offline'}"
    return check


def _pending(v, names: Names) -> Check:
    user, negated = names.user(v["user"]), v["neg"] == "no"

    def check(step, world):
        got = any(i.pending(user) and user in i.received for i in world.invitations)
        return got != negated, f"{user} {'has' if got else 'has no'} pending invitation"
    return check


def _callback(v, names: Names) -> Check:
    command, negated = v["command"], bool(v.get("neg"))

    def check(step, world):
        sent = [x.command for x in step.exchanges]
        return (command in sent) != negated, f"sent: {', '.join(sent) or 'nothing'}"
    return check


def _warning(v, names: Names) -> Check:
    negated = v["neg"] == "no"

    def check(step, world):
        return bool(step.warnings) != negated, "; ".join(step.warnings) or "no warnings"
    return check


U = "{user:user}"
_OPS = "|".join(OPS)
EXPECT_TABLE = [(Pattern.compile(source), builder) for source, builder in [
    (U + " receives nothing", _received_nothing),
    (U + " receives a|an message", _received),
    (U + " receives {count:num} message|messages", _received_count),
    (U + " receives {text:str}", _received),
    (U + " gets {neg=no|an|a} invitation", _invitation),
    (U + " sees [{neg=no}] message updated [to {text:str}]", _updated),
    (U + " sees [{neg=no}] {phrase:rest}", _sees),
    (U + " on {device:word} sees [{neg=no}] {phrase:rest}", _sees),
    (U + " [{op=" + _OPS + "}] fails [{code:num}] [with {info:str}]", _completion("failed")),
    (U + " [{op=" + _OPS + "}] succeeds", _completion("succeeded")),
    (U + " is [{neg=not}] friends with {other:user}", _friends),
    (U + " and {other:user} are [{neg=not}] friends", _mutual),
    ("{group:group} members {how=include|exclude|are} {users:users}", _members),
    (U + " has {count:num} unread [from {peer:user}]", _unread),
    (U + " has {count:num} unread in {group:group}", _unread),
    (U + " is {state=online|offline}", _presence),
    (U + " has {neg=no|an|a} pending invitation", _pending),
    ("callback {command:word} is [{neg=not}] sent", _callback),
    ("{neg=no|a} warning [is reported]", _warning),
]]


def parse_expectation(sentence: str, names: Names, line: int | None = None) -> Expectation:
    builder, values = match_first(EXPECT_TABLE, sentence, "expectation")
    return Expectation(sentence, builder(values, names), line)
