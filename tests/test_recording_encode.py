"""A record's JSON form (journal lines, exports) is the same whichever way to_json builds it."""

from __future__ import annotations

import dataclasses

import pytest

from receiver.recording.privacy import Policy
from receiver.recording.record import FORMAT_VERSION, Record, encode


def picked(record: Record) -> dict:
    """to_json as it was written first: the fields one by one, in their order."""
    data = {f.name: getattr(record, f.name) for f in dataclasses.fields(Record) if f.name not in ("body", "origin")}
    data["v"] = FORMAT_VERSION
    data["redacted"] = list(record.redacted)
    try:
        data["body"] = record.body.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        data["body_base64"] = base64.b64encode(record.body).decode("ascii")
    return data


RECORDS = [
    Record(received_at=1.5, command="C2C.CallbackBeforeSendMsg", query={"SdkAppid": "1"}, body='{"a": "é"}'.encode(),
           status=200, reply={"ActionStatus": "OK"}, outcome="rewrite", rule="words", reason="masked",
           trace=[{"rule": "words", "result": "rewrite", "reason": "", "elapsed_ms": 0.1}], elapsed_ms=0.25,
           user="alice", request_id="r1", redacted=("text",), origin="x.jsonl:3"),
    Record(received_at=2.0, command="?", query={}, body=b"\xff\xfe not utf-8", rejected=True, error="bad"),
    dataclasses.replace(Record(received_at=3.0, command="c", query={}, body=b"{}"), id=7),
]


@pytest.mark.parametrize("record", RECORDS)
def test_to_json_is_the_fields_in_order(record):
    data = record.to_json()
    assert list(data.items()) == list(picked(record).items())  # same keys, same order, same values
    assert "origin" not in data


def test_a_record_with_an_extra_attribute_still_writes_only_its_fields():
    record = dataclasses.replace(RECORDS[0])
    record.note = "set by someone"  # not a field: never part of the JSON form
    assert list(record.to_json().items()) == list(picked(record).items())
    assert encode(record) == encode(RECORDS[0])


@pytest.mark.parametrize("store_text,salt,expected", [
    (True, None, ()), (False, None, ("text",)), (True, b"s", ("user_ids",)), (False, b"s", ("text", "user_ids"))])
def test_policy_redacted(store_text, salt, expected):
    policy = Policy(store_text=store_text, salt=salt)
    assert policy.redacted == expected and policy.redacted == expected  # asked twice: the cached value
    assert policy.rewrites_json is bool(expected)
    assert policy == Policy(store_text=store_text, salt=salt)


def outcomes():
    """Outcomes of the sample callbacks through a real Receiver: decided, rewritten, rejected, NetEase."""
    from .helpers import handle, handle_netease, make_receiver_all, request_samples, rules_yaml, sample

    receiver = make_receiver_all(rules_yaml('{use: sensitive_words, config: {words: [badword], action: mask}}'))
    found = [handle(receiver, sample(name)) for name in request_samples()]
    found.append(handle(receiver, b"not json", query={"SdkAppid": "1", "CallbackCommand": "X"}))
    found.append(handle_netease(receiver, {"eventType": "1", "fromAccount": "a", "to": "b", "body": "badword"}))
    return found


def test_a_record_from_an_outcome_is_the_one_records_init_makes():
    from receiver.recording.capture import record_from_outcome

    for policy in (Policy(), Policy(store_text=False, salt=b"salt")):
        for outcome in outcomes():
            record = record_from_outcome(outcome, policy, max_rejected_body=16)
            made = Record(**{f.name: getattr(record, f.name) for f in dataclasses.fields(Record)})
            assert list(vars(record).items()) == list(vars(made).items())
            assert encode(record) == encode(made)
