"""Chain semantics: config order, first refusal wins, rewrites compose, faults follow on_error."""

from __future__ import annotations

import time

import pytest

from .helpers import handle, make_receiver, rules_yaml, sample

K = "tests.rulekit"


def decide(*rules, extra="", body="C2C.CallbackBeforeSendMsg"):
    receiver = make_receiver(rules_yaml(*rules, extra=extra))
    outcome = handle(receiver, sample(body) if isinstance(body, str) else body)
    return outcome


def texts(reply):
    return [e["MsgContent"]["Text"] for e in reply["MsgBody"]]


# (rules in order, expected ErrorCode, expected deciding rule)
ORDER = [
    ([], 0, ""),
    ([f"{{use: '{K}:Decide', config: {{outcome: none}}}}"], 0, ""),
    ([f"{{use: '{K}:Decide', name: a, config: {{outcome: refuse}}}}",
      f"{{use: '{K}:Decide', name: b, config: {{outcome: drop}}}}"], 1, "a"),
    ([f"{{use: '{K}:Decide', name: a, config: {{outcome: drop}}}}",
      f"{{use: '{K}:Decide', name: b, config: {{outcome: refuse}}}}"], 2, "a"),
    ([f"{{use: '{K}:Decide', name: a, config: {{outcome: allow}}}}",
      f"{{use: '{K}:Decide', name: b, config: {{outcome: refuse, code: 120500, info: nope}}}}"], 120500, "b"),
    ([f"{{use: '{K}:Decide', name: a, enabled: false, config: {{outcome: refuse}}}}"], 0, ""),
    ([f"{{use: '{K}:Decide', name: a, scope: {{commands: [Group.CallbackBeforeSendMsg]}}, "
      "config: {outcome: refuse}}"], 0, ""),
    ([f"{{use: '{K}:Decide', name: a, scope: {{commands: [message.send]}}, config: {{outcome: refuse}}}}"], 1, "a"),
    ([f"{{use: '{K}:Decide', name: a, scope: {{users: [someone]}}, config: {{outcome: refuse}}}}"], 0, ""),
    ([f"{{use: '{K}:Decide', name: a, scope: {{except_users: [jared]}}, config: {{outcome: refuse}}}}"], 0, ""),
    ([f"{{use: '{K}:Decide', name: a, scope: {{users: [jared]}}, config: {{outcome: refuse}}}}"], 1, "a"),
]


@pytest.mark.parametrize("rules, code, rule", ORDER)
def test_rules_run_in_config_order_and_a_refusal_ends_the_chain(rules, code, rule):
    outcome = decide(*rules)
    assert outcome.reply["ErrorCode"] == code
    assert outcome.decision.verdict.rule == rule
    if code:  # nothing after the deciding rule ran
        assert outcome.decision.trace[-1].rule == rule


def test_rewrites_compose_in_order():
    outcome = decide(f"{{use: '{K}:Append', name: one, config: {{suffix: '-1'}}}}",
                     f"{{use: '{K}:Append', name: two, config: {{suffix: '-2'}}}}",
                     f"{{use: '{K}:Tag', config: {{value: tagged}}}}")
    assert texts(outcome.reply) == ["red packet-1-2"]
    assert outcome.reply["CloudCustomData"] == "tagged"
    assert outcome.decision.verdict.rule == "one,two,tests.rulekit:Tag"


def test_a_refusal_after_a_rewrite_discards_the_rewrite():
    outcome = decide(f"{{use: '{K}:Append', config: {{suffix: '-1'}}}}",
                     f"{{use: '{K}:Decide', config: {{outcome: refuse}}}}")
    assert outcome.reply == {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": ""}


def test_partial_refusals_accumulate():
    outcome = decide(f"{{use: '{K}:RefuseInvitees', name: a, config: {{accounts: [jared]}}}}",
                     f"{{use: '{K}:RefuseInvitees', name: b, config: {{accounts: [leckie, jared]}}}}",
                     body="Group.CallbackBeforeInviteJoinGroup")
    assert outcome.reply["RefusedMembers_Account"] == ["jared", "leckie"]
    friends = decide(f"{{use: '{K}:RefuseFriends', config: {{accounts: [id2], code: 38500}}}}",
                     body="Sns.CallbackPrevFriendAdd")
    assert [(i["To_Account"], i["ResultCode"]) for i in friends.reply["ResultItem"]] == [("id1", 0), ("id2", 38500)]


FAULTS = [
    (f"{{use: '{K}:Raise', name: bad}}", "raised RuntimeError: boom"),
    (f"{{use: '{K}:Nonsense', name: bad}}", "returned str"),
    (f"{{use: '{K}:Sleep', name: bad, budget_ms: 5, config: {{seconds: 0.05}}}}", "overran its budget"),
    (f"{{use: '{K}:Append', name: bad, scope: {{commands: [group.create]}}, config: {{suffix: x}}}}", None),
]


@pytest.mark.parametrize("rule, fault", FAULTS)
@pytest.mark.parametrize("on_error, code", [("allow", 0), ("refuse", 1), ("drop", 2)])
def test_a_faulty_rule_gets_on_error_and_is_logged_by_name(rule, fault, on_error, code, caplog):
    outcome = decide(rule, extra=f"chain: {{on_error: {on_error}}}")
    if fault is None:  # out of scope: never ran
        assert outcome.reply["ErrorCode"] == 0
        return
    assert outcome.reply["ErrorCode"] == code
    step = outcome.decision.trace[0]
    assert step.rule == "bad" and step.result == "error" and fault in step.reason
    assert any("bad" in r.getMessage() and fault in r.getMessage() for r in caplog.records)


def test_rule_on_error_overrides_the_chain_default():
    outcome = decide(f"{{use: '{K}:Raise', on_error: refuse}}", extra="chain: {on_error: allow}")
    assert outcome.reply["ErrorCode"] == 1


def test_a_hanging_rule_cannot_hold_the_reply_past_the_deadline():
    started = time.perf_counter()
    outcome = decide(f"{{use: '{K}:Sleep', config: {{seconds: 3}}}}",
                     extra="chain: {deadline_ms: 100, on_error: allow}")
    waited = time.perf_counter() - started
    assert outcome.reply["ErrorCode"] == 0
    assert outcome.decision.trace[-1].result == "timeout"
    assert waited < 2.0  # the IM's budget; the deadline itself is 0.1 s


def test_after_callbacks_never_run_rules():
    outcome = decide(f"{{use: '{K}:Raise'}}", body="C2C.CallbackAfterSendMsg")
    assert outcome.decision.trace == ()
    assert outcome.reply == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def test_a_rule_failing_on_every_request_is_logged_once_per_interval(caplog):
    receiver = make_receiver(rules_yaml(f"{{use: '{K}:Raise', name: flaky}}"))
    for _ in range(5):
        assert handle(receiver, sample("C2C.CallbackBeforeSendMsg")).reply["ErrorCode"] == 0
    lines = [r.getMessage() for r in caplog.records if "flaky" in r.getMessage()]
    assert len(lines) == 1
    entry = receiver.chain.entries[0]
    assert entry._suppressed == 4
    entry._last_logged -= 60  # the interval has passed: the next failure reports the count
    handle(receiver, sample("C2C.CallbackBeforeSendMsg"))
    assert "(4 more since the last report)" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("blocking, inline", [(False, True), (True, False)])
def test_only_chains_with_a_blocking_rule_pay_for_the_thread_hop(blocking, inline):
    import threading

    from .rulekit import WhereRun

    WhereRun.seen.clear()
    decide(f"{{use: '{K}:WhereRun', config: {{blocking: {str(blocking).lower()}}}}}")
    assert (WhereRun.seen == [threading.current_thread().name]) is inline


# ---- the per-callback shortcuts decide as the plain definitions do -----------------------------

def test_trace_steps_made_the_fast_way_are_ordinary_trace_steps():
    import dataclasses

    from rules.chain import TraceStep, _trace_step

    fast, plain = _trace_step("r", "allow", "why", 1.5), TraceStep("r", "allow", "why", 1.5)
    assert (fast, hash(fast), vars(fast), repr(fast)) == (plain, hash(plain), vars(plain), repr(plain))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.rule = "other"


def test_the_entries_run_are_exactly_those_that_apply():
    from .helpers import request_samples

    receiver = make_receiver(rules_yaml(
        f"{{use: '{K}:Decide', name: anything, config: {{outcome: none}}}}",
        "{use: sensitive_words, config: {words: [x]}}",
        "{use: sensitive_words, name: wide, scope: {commands: [Sns.CallbackPrevFriendAdd, "
        "Group.CallbackBeforeCreateGroup]}, config: {words: [x]}}",
        "{use: contact_info, scope: {users: [jared], except_users: [bob]}, config: {}}",
        "{use: message_policy, scope: {group_types: [Public]}, config: {default: {deny: [file]}}}",
        "{use: friend_policy, config: {deny_requesters: [nobody]}}",
        f"{{use: '{K}:Decide', name: groups, scope: {{conversations: [group]}}, config: {{outcome: none}}}}",
    ))
    chain = receiver.chain

    def plainly_applies(entry, callback):  # ChainEntry.applies_to before it was precomputed
        rule, scope = entry.rule, entry.scope
        allowed = (rule.supports or rule.actions) if scope.commands else rule.actions
        return (not allowed or callback.action in allowed) and scope.covers(callback)

    seen = set()
    for name in request_samples():
        callback = handle(receiver, sample(name)).callback
        if callback is None:
            continue
        expected = [e for e in chain.entries if plainly_applies(e, callback)]
        assert [e for e in chain.entries if e.applies_to(callback)] == expected, name
        assert [e for e in chain._candidates(callback.event.action)
                if e._everywhere or e.scope.covers(callback)] == expected, name
        seen.add(len(expected))
    assert len(seen) > 2  # the samples do tell the entries apart


@pytest.mark.parametrize("scope, blocking_elsewhere, expected", [
    # (scope of the one message rule, a blocking rule of another action too, what decide answers)
    ("{}", False, "sensitive_words:no_opinion"),  # in scope: run inline
    ("{users: [nobody]}", False, "no rule applies"),  # out of scope: the inline path finds no rule
    ("{}", True, "sensitive_words:no_opinion"),  # a blocking rule for friend adds: messages still inline
    ("{users: [nobody]}", True, "no rule applies"),
])
def test_the_inline_shortcut_decides_as_the_scope_checks_did(scope, blocking_elsewhere, expected):
    import threading

    from .rulekit import WhereRun

    rules = [f"{{use: sensitive_words, scope: {scope}, config: {{words: [casino]}}}}"]
    if blocking_elsewhere:
        rules.append(f"{{use: '{K}:WhereRun', scope: {{commands: [Sns.CallbackPrevFriendAdd]}}, "
                     "config: {blocking: true}}")
    receiver = make_receiver(rules_yaml(*rules))
    WhereRun.seen.clear()
    outcome = handle(receiver, sample("C2C.CallbackBeforeSendMsg"))
    decision = outcome.decision
    steps = [f"{s.rule}:{s.result}" for s in decision.trace]
    assert (steps[0] if steps else decision.verdict.reason) == expected
    assert decision.verdict.outcome == "allow" and WhereRun.seen == []
    # The shortcut is taken when no candidate of the action may block; a blocking rule that takes
    # any action (scoped by command only) keeps the scope checks, with the same answer.
    assert (outcome.callback.event.action in receiver.chain._inline) is not blocking_elsewhere
    friend = handle(receiver, sample("Sns.CallbackPrevFriendAdd")).decision
    if blocking_elsewhere:  # the blocking rule's own action still takes the pool
        assert WhereRun.seen and WhereRun.seen != [threading.current_thread().name], friend
