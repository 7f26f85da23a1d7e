"""The replay report: what was sent beside the old and new replies, semantic diffs, three formats."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from receiver.core import HttpRequest
from receiver.recording import replay as engine
from receiver.recording.changes import STATUS_PATH, reply_changes, value_changes
from receiver.recording.html_report import ABSENT, render_html
from receiver.recording.privacy import Policy, hash_text
from receiver.recording.record import Record
from receiver.recording.report import render_json, render_text, show_value
from receiver.recording.sent import MAX_SHOWN_CHARS, MAX_SHOWN_ITEMS, describe_sent

from .helpers import APP_ID, make_receiver, rules_yaml, sample

META = dict(source="rec.sqlite", target="new.yaml", mode="offline")
C2C = "C2C.CallbackBeforeSendMsg"
NO_RULES = rules_yaml()


def c2c(*texts: str, relay: str | None = None) -> dict:
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": t}} for t in texts]
    if relay is not None:
        body.append({"MsgType": "TIMRelayElem", "MsgContent": {
            "Title": "chat history", "MsgNum": 1, "CompatibleText": "", "AbstractList": [f"bob: {relay}"],
            "MsgList": [{"From_Account": "bob", "To_Account": "jared",
                         "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": relay}}]}]}})
    return dict(sample(C2C), MsgBody=body)


def record(name: str, body: dict, old_rules: str, *, redact: bool = False) -> Record:
    """`body` answered by `old_rules` and recorded as the server records it (texts hashed if `redact`)."""
    raw = json.dumps(body).encode("utf-8")
    query = {"SdkAppid": APP_ID, "CallbackCommand": body["CallbackCommand"]}
    receiver = make_receiver(old_rules)
    try:
        outcome = receiver.handle(HttpRequest("POST", query, raw), trusted=True)
    finally:
        receiver.chain.close()
    verdict = outcome.decision.verdict
    if redact:  # decided on the text, stored with its hash (as the recorder does)
        raw = Policy(store_text=False).body(raw)
    return Record(received_at=1_700_000_000.0, command=body["CallbackCommand"], query=query, body=raw,
                  status=outcome.status, reply=outcome.reply, outcome=outcome.outcome_name, rule=verdict.rule,
                  reason=verdict.reason, request_id=name, redacted=("text",) if redact else ())


def replayed(records: list[Record], new_rules: str):
    receiver = make_receiver(new_rules)
    runner = engine.OfflineReplay(receiver)
    try:
        return engine.run(records, runner)
    finally:
        runner.close()


MASK_RED = rules_yaml("{use: regex, name: mask_red, config: {patterns: [{pattern: red, action: mask}]}}")
REFUSE_CASINO = rules_yaml("{use: regex, name: no_casino, config: {patterns: [{pattern: casino, action: refuse, "
                           "code: 120100, info: no gambling}]}}")
FRIENDS = rules_yaml("{use: friend_policy, name: friends, config: {deny_targets: [id2], code: 38100, "
                     "info: not accepted}}")
INVITES = rules_yaml("{use: group_policy, name: groups, config: {invite: {deny_invitees: [jared]}}}")
MASKED = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "*** packet"}}, {"MsgType": "TIMRelayElem", "MsgContent": {
    "Title": "chat history", "MsgNum": 1, "CompatibleText": "", "AbstractList": ["bob: a *** car"],
    "MsgList": [{"From_Account": "bob", "To_Account": "jared",
                 "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "a *** car"}}]}]}}]

# (name, body, rules recorded with, rules replayed with, was → now,
#  lines the callback must show, the reply changes as (path, change, old, new), text lines of those changes)
REPORTS = [
    ("rewrite to allow", c2c("red packet", relay="a red car"), MASK_RED, NO_RULES, ("rewrite", "allow"),
     ["sent: message.send from jared to Jonh (c2c), elements: text, relay",
      '  text: "red packet"', '  relay.title: "chat history"', '  relay.abstract: "bob: a red car"',
      '  forwarded text: "a red car"'],
     [("CloudCustomData", "removed", "your cloud custom data", None), ("MsgBody", "removed", MASKED, None)],
     ['- CloudCustomData: "your cloud custom data"', "- MsgBody: " + show_value(MASKED)]),
    ("refuse to allow", c2c("cheap casino chips"), REFUSE_CASINO, NO_RULES, ("refuse", "allow"),
     ["sent: message.send from jared to Jonh (c2c), elements: text", '  text: "cheap casino chips"'],
     [("ErrorCode", "changed", 120100, 0), ("ErrorInfo", "changed", "no gambling", "")],
     ["ErrorCode: 120100 → 0", 'ErrorInfo: "no gambling" → ""']),
    ("friend request", sample("Sns.CallbackPrevFriendAdd"), NO_RULES, FRIENDS, ("allow", "refuse_some"),
     ["sent: friend.add from id", '  friend id1: source AddSource_Type_Android, wording "this is id1!"',
      '  friend id2: source AddSource_Type_Android, wording "this is id2!"'],
     [("ResultItem[1].ResultCode", "changed", 0, 38100), ("ResultItem[1].ResultInfo", "changed", "", "not accepted")],
     ["ResultItem[1].ResultCode: 0 → 38100", 'ResultItem[1].ResultInfo: "" → "not accepted"']),
    ("group invite", sample("Group.CallbackBeforeInviteJoinGroup"), NO_RULES, INVITES, ("allow", "refuse_some"),
     ["sent: group.invite from leckie to @TGS#2J4SZEAEL (Public)", "  invitees: jared, leckie"],
     [("RefusedMembers_Account", "added", None, ["jared"])],
     ['+ RefusedMembers_Account: ["jared"]']),
    ("text not kept", c2c("cheap casino chips"), REFUSE_CASINO, NO_RULES, ("refuse", "allow"),
     ["sent: message.send from jared to Jonh (c2c), elements: text",
      f"  text: (not kept, recorded as {hash_text('cheap casino chips')[:19]}…)",
      "  (texts were not kept: recording.store_text was off; their sha256 hashes are shown)"],
     [("ErrorCode", "changed", 120100, 0), ("ErrorInfo", "changed", "no gambling", "")],
     ["ErrorCode: 120100 → 0", 'ErrorInfo: "no gambling" → ""']),
]


@pytest.fixture(scope="module")
def report():
    """One replay of every REPORTS case, rendered as text, JSON and HTML."""
    by_rules: dict[str, list[Record]] = {}
    for name, body, old, new, *_ in REPORTS:
        by_rules.setdefault(new, []).append(record(name, body, old, redact=name == "text not kept"))
    cases = [case for new, records in by_rules.items() for case in replayed(records, new).changed]
    summary = engine.Summary()
    for case in cases:
        summary.add(case)
    return (summary, render_text(summary, show=100, **META), json.loads(render_json(summary, **META)),
            render_html(summary, **META))


@pytest.mark.parametrize("name, body, old, new, transition, sent_lines, changes, change_lines", REPORTS,
                         ids=[r[0] for r in REPORTS])
def test_a_changed_case_shows_what_was_sent_and_only_what_changed(report, name, body, old, new, transition,
                                                                  sent_lines, changes, change_lines):
    _, text, data, _ = report
    [case] = [c for c in data["changed"] if c["where"] == name]
    assert (case["old"]["outcome"], case["new"]["outcome"]) == transition
    assert [(c["path"], c["change"], c.get("old"), c.get("new")) for c in case["changes"]] == changes
    block = text_block(text, name)
    assert block[1:1 + len(sent_lines)] == [f"    {line}" for line in sent_lines]  # right under the header
    assert block[1 + len(sent_lines)].startswith("    was: ")  # then the decisions: nothing else was sent
    assert block[block.index("    reply changes:") + 1:] == [f"      {line}" for line in change_lines]


def test_text_json_and_html_carry_the_same_records_callbacks_and_changes(report):
    summary, text, data, html = report
    pages = {case.where: case for case in parse_html(html)}
    assert [c["where"] for c in data["changed"]] == list(pages) == [c.where for c in summary.changed]
    assert sorted(pages) == sorted(r[0] for r in REPORTS)
    for case in data["changed"]:
        page, block = pages[case["where"]], text_block(text, case["where"])
        sent = [line.strip() for line in block[1:block.index(next(x for x in block if x.startswith("    was: ")))]]
        assert sent[0] == page.sent_head and sent[1:] == page.sent_items  # the callback, alike
        assert page.changes == [(c["path"], show_value(c["old"]) if "old" in c else ABSENT,
                                 show_value(c["new"]) if "new" in c else ABSENT) for c in case["changes"]]
        assert len(block) - block.index("    reply changes:") - 1 == len(case["changes"])
        assert case["sent"]["action"] in sent[0] and case["sent"]["from"] in sent[0]
        assert f"was: {case['old']['outcome']}" in "\n".join(block) and page.was.startswith(
            f"was: {case['old']['outcome']}")


def text_block(text: str, where: str) -> list[str]:
    """The lines of the text report about one case: its header and the indented lines under it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {where}  "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return lines[start:end]


class PageCase:
    def __init__(self) -> None:
        self.where, self.sent_head, self.sent_items, self.changes, self.was = "", "", [], [], ""


class CasesParser(HTMLParser):
    """Reads each <details> of the page: where, the sent headline and items, the change rows, was/now."""

    def __init__(self) -> None:
        super().__init__()
        self.cases: list[PageCase] = []
        self.capture: str | None = None
        self.buffer = ""
        self.row: list[str] = []
        self.in_case = False  # the summary tables before the cases are not read

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "details":
            self.cases.append(PageCase())
            self.in_case = True
        elif not self.in_case:
            return
        elif tag == "ul" and self.capture == "head":
            self._finish()
        else:
            what = {("summary", ""): "where", ("div", "sent"): "head", ("li", ""): "item", ("td", "del"): "cell",
                    ("td", ""): "cell", ("td", "add"): "cell", ("td", "absent"): "cell", ("p", "was"): "was"}.get((tag, cls))
            if what:
                self.capture, self.buffer = what, ""

    def handle_endtag(self, tag):
        if tag == "details":
            self.in_case = False
        elif tag in ("summary", "div", "li", "td", "p") and self.capture:
            self._finish()

    def handle_data(self, data):
        if self.capture:
            self.buffer += data

    def _finish(self) -> None:
        case, text, what = self.cases[-1], self.buffer, self.capture
        self.capture = None
        if what == "where":
            case.where = text.split(" · ")[0]
        elif what == "head":
            case.sent_head = text.strip()
        elif what == "item":
            case.sent_items.append(text)
        elif what == "was":
            case.was = text
        elif what == "cell":
            self.row.append(text)
            if len(self.row) == 3:
                case.changes.append(tuple(self.row))
                self.row = []


def parse_html(html: str) -> list[PageCase]:
    parser = CasesParser()
    parser.feed(html)
    return parser.cases


# (name, old reply, new reply, the changes as (path, change, old, new))
DIFFS = [
    ("key order is not a change", {"ErrorCode": 0, "ErrorInfo": "", "ActionStatus": "OK"},
     {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}, []),
    ("an unchanged ErrorInfo is not shown", {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": ""},
     {"ErrorInfo": "", "ErrorCode": 0, "ActionStatus": "OK"}, [("ErrorCode", "changed", 1, 0)]),
    ("a field added and one removed", {"ErrorCode": 0, "RefusedMembers_Account": ["a"]},
     {"ErrorCode": 0, "MsgBody": []},
     [("MsgBody", "added", None, []), ("RefusedMembers_Account", "removed", ["a"], None)]),
    ("nested list change: one item's field", {"ResultItem": [{"To_Account": "a", "ResultCode": 0},
                                                             {"To_Account": "b", "ResultCode": 0}]},
     {"ResultItem": [{"ResultCode": 0, "To_Account": "a"}, {"ResultCode": 38001, "To_Account": "b"}]},
     [("ResultItem[1].ResultCode", "changed", 0, 38001)]),
    ("nested list grows", {"MsgBody": [{"MsgType": "TIMTextElem"}]},
     {"MsgBody": [{"MsgType": "TIMTextElem"}, {"MsgType": "TIMFaceElem"}]},
     [("MsgBody[1]", "added", None, {"MsgType": "TIMFaceElem"})]),
    ("a list of plain values is one value", {"RefusedMembers_Account": ["a", "b"]},
     {"RefusedMembers_Account": ["b"]}, [("RefusedMembers_Account", "changed", ["a", "b"], ["b"])]),
    ("true is not 1", {"x": True}, {"x": 1}, [("x", "changed", True, 1)]),
    ("an object becomes a list", {"x": {"a": 1}}, {"x": [1]}, [("x", "changed", {"a": 1}, [1])]),
    ("a key that is not a name is quoted", {"a.b": 1, "中文": 1}, {"a.b": 2, "中文": 2},
     [('["a.b"]', "changed", 1, 2), ('["中文"]', "changed", 1, 2)]),
    ("the whole reply", {"a": 1}, None, [("(the whole reply)", "changed", {"a": 1}, None)]),
]


@pytest.mark.parametrize("name, old, new, expected", DIFFS, ids=[d[0] for d in DIFFS])
def test_reply_changes_are_semantic(name, old, new, expected):
    assert [(c.path, c.kind, c.old, c.new) for c in value_changes(old, new)] == expected


def test_a_status_change_comes_first():
    changes = reply_changes(200, {"ErrorCode": 0}, 500, {"ErrorCode": 1})
    assert [(c.path, c.old, c.new) for c in changes] == [(STATUS_PATH, 200, 500), ("ErrorCode", 0, 1)]


def test_a_reply_nested_deeper_than_python_recurses_is_compared():
    old, new = {"v": 1}, {"v": 2}
    for _ in range(100_000):
        old, new = {"k": old}, {"k": new}
    [change] = value_changes(old, new)
    assert change.path == "k" + ".k" * 99_999 + ".v" and (change.old, change.new) == (1, 2)


# --- hostile texts in the callback ------------------------------------------------------------------------


def sent_of(body: dict | bytes, command: str = C2C, redacted: tuple = ()) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return describe_sent(Record(received_at=1.0, command=command, query={}, body=raw, redacted=redacted))


@pytest.mark.parametrize("text, shown", [
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # no terminal escapes reach the reader
    ("a\nb\tc\x00", "a\\nb\\tc\\x00"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("bidi \u202e txet", "bidi \\u202e txet"),
    ("中文 emoji 😀", "中文 emoji 😀"),
])
def test_texts_are_shown_with_control_characters_escaped(text, shown):
    [shown_text] = sent_of(c2c(text))["texts"]
    assert shown_text["text"] == shown
    summary = replayed([record("hostile", c2c(text, "casino"), REFUSE_CASINO)], NO_RULES)
    assert summary.counts["changed"] == 1
    for page in (render_text(summary, **META), render_json(summary, **META), render_html(summary, **META)):
        page.encode("utf-8")  # the report can be written as UTF-8
        assert shown in page.replace("\\\\", "\\") and (text == shown or text not in page)


@pytest.mark.parametrize("length, cut", [(MAX_SHOWN_CHARS, False), (MAX_SHOWN_CHARS + 1, True), (10**6, True)])
def test_a_long_text_is_cut_at_the_limit_and_its_length_said(length, cut):
    [text] = sent_of(c2c("x" * length))["texts"]
    assert text["length"] == length and len(text["text"]) == min(length, MAX_SHOWN_CHARS)
    summary = engine.Summary()
    case = engine.Case("w", C2C, "jared", 1.0, "new", new=engine.Side(200, {}, "allow"),
                       sent=sent_of(c2c("x" * length)))
    summary.add(case)
    assert (f"({length} characters)" in render_text(summary, **META)) == cut


@pytest.mark.parametrize("count, omitted", [(MAX_SHOWN_ITEMS, None), (MAX_SHOWN_ITEMS + 1, 1), (5000, 4980)])
def test_long_lists_are_cut_at_the_limit_and_the_rest_counted(count, omitted):
    invite = dict(sample("Group.CallbackBeforeInviteJoinGroup"),
                  DestinationMembers=[{"Member_Account": f"u{i}"} for i in range(count)])
    sent = sent_of(invite, "Group.CallbackBeforeInviteJoinGroup")
    assert len(sent["invitees"]) == MAX_SHOWN_ITEMS and sent.get("omitted", {}).get("invitees") == omitted
    message = sent_of(c2c(*[f"t{i}" for i in range(count)]))
    assert len(message["texts"]) == len(message["elements"]) == MAX_SHOWN_ITEMS
    assert message.get("omitted", {}) == ({"texts": omitted, "elements": omitted} if omitted else {})


@pytest.mark.parametrize("query", [{}, {"SdkAppid": ""}, {"SdkAppid": "other", "CallbackCommand": ""}])
def test_a_rejected_record_without_app_id_or_command_is_still_described(query):
    body = json.dumps(c2c("hi")).encode()
    sent = describe_sent(Record(received_at=1.0, command=C2C, query=query, body=body, rejected=True))
    assert [t["text"] for t in sent["texts"]] == ["hi"]


@pytest.mark.parametrize("body, why", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"CallbackCommand": "C2C.CallbackBeforeSendMsg", "MsgBody": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "nests deeper than"),
])
def test_a_body_that_cannot_be_read_says_why_instead_of_failing(body, why):
    # A field of the wrong type is schema drift, kept and described (receiver/tencent/drift.py); only
    # what the platform rejects outright is unreadable here.
    sent = sent_of(body)
    assert set(sent) == {"error"} and why in sent["error"]
