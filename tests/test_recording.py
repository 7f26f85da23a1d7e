"""Recording: every callback lands in the SQLite store with its reply and decision, within bounds."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver import recording
from receiver.cli import main
from receiver.client import callback_query
from receiver.config import parse_config
from receiver.core import HttpRequest, Receiver
from receiver.errors import ConfigError
from receiver.recording.privacy import hash_id, hash_text
from receiver.recording.record import Record
from receiver.recording.store import Filters, Store, statement_sizes
from receiver.recording.writer import Recorder
from receiver.tencent.platform import TencentPlatform
from rules.loader import build_chain

from .helpers import APP_ID, TOKEN, request_samples, sample
from .test_recording_rules import rules_yaml

SALT_ENV = "IMHOOK_TEST_RECORDING_SALT"


class Clock:
    """A settable clock for the receiver: which minute a rejected request falls in."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_receiver(tmp_path: Path, *rules: dict, clock=time.time, env: dict | None = None, start: bool = True,
                  **recording) -> tuple[Receiver, Recorder]:
    """A real receiver and chain with a real recorder writing to tmp_path/rec.sqlite."""
    settings = {"path": str(tmp_path / "rec.sqlite"), **recording}
    section = "recording:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items())
    text = rules_yaml(*rules, recording=section)
    env = {"IMHOOK_TOKEN": TOKEN, **(env or {})}
    config = parse_config(text, "test.yaml", env)
    platform = TencentPlatform()
    receiver = Receiver(config, build_chain(config, platform=platform), platform=platform, clock=clock)
    recorder = Recorder.from_settings(config.recording, env, start=start, clock=clock)
    receiver.observers.append(recorder)
    return receiver, recorder


def signed(body: dict | bytes, *, now: float | None = None, token: str = TOKEN, app_id: str = APP_ID,
           command: str | None = None) -> HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    command = command or json.loads(raw)["CallbackCommand"]
    return HttpRequest("POST", callback_query(command, app_id, token=token, now=now), raw)


def message(text: str, user: str = "jared", **extra) -> dict:
    body = sample("C2C.CallbackBeforeSendMsg")
    body["MsgBody"][0]["MsgContent"]["Text"] = text
    del body["CloudCustomData"]  # a rewrite reply repeats it; keep expected replies short
    body.update(From_Account=user, **extra)
    return body


def stored(tmp_path: Path, filters: Filters = Filters()) -> list[Record]:
    store = Store(tmp_path / "rec.sqlite", create=False)
    try:
        return list(store.records(filters))
    finally:
        store.close()


def test_every_sample_is_recorded_with_the_reply_sent(tmp_path):
    receiver, recorder = make_receiver(tmp_path)
    sent = {}
    for name in request_samples():
        raw = json.dumps(sample(name)).encode()
        sent[raw] = receiver.handle(signed(raw))
    assert recorder.close()
    records = stored(tmp_path)
    assert len(records) == len(sent) == len(request_samples())
    for record in records:
        outcome = sent[record.body]
        assert (record.command, record.status, record.reply, record.outcome) == (
            outcome.command, 200, outcome.reply, outcome.outcome_name)
        assert record.received_at == outcome.received_at and not record.rejected
        assert record.query["RequestTime"] and "Sign" not in record.query
    assert {r.outcome for r in records} == {"allow", "notify"}
    assert recorder.stats()["written_total"] == len(sent)


@pytest.mark.parametrize("action, text, outcome, reply_extra", [
    ("refuse", "an apple", "refuse", {"ErrorCode": 1, "ErrorInfo": "blocked"}),
    ("drop", "an apple", "drop", {"ErrorCode": 2}),
    ("mask", "an apple", "rewrite", {"MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "an *****"}}]}),
    ("refuse", "a pear", "allow", {}),
])
def test_the_deciding_rule_reason_and_trace_are_recorded(tmp_path, action, text, outcome, reply_extra):
    receiver, recorder = make_receiver(tmp_path, {"name": "no_apple", "word": "apple", "action": action})
    receiver.handle(signed(message(text)))
    recorder.close()
    [record] = stored(tmp_path)
    assert record.outcome == outcome
    assert record.reply == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **reply_extra}
    assert [step["rule"] for step in record.trace] == ["no_apple"]
    if outcome != "allow":
        assert (record.rule, record.reason) == ("no_apple", "contains 'apple'")
        assert record.trace[0]["result"] == outcome


@pytest.mark.parametrize("request_, status, error", [
    (lambda: signed(message("hi"), token="wrong-token"), 401, "Sign does not match"),
    (lambda: signed(message("hi"), app_id="42"), 403, "SdkAppid does not match"),
    (lambda: signed(b"{not json", command="C2C.CallbackBeforeSendMsg"), 400, "not valid JSON"),
    # A body that drifts from its schema is answered now (issue 11); one of another command is not.
    (lambda: signed({"CallbackCommand": "Group.CallbackBeforeSendMsg"}, command="C2C.CallbackBeforeSendMsg"),
     400, "does not match"),
    (lambda: HttpRequest("GET", {}, b""), 405, "method GET not allowed"),
], ids=["bad-sign", "wrong-app", "bad-json", "bad-body", "get"])
def test_rejected_requests_are_recorded_and_flagged(tmp_path, request_, status, error):
    receiver, recorder = make_receiver(tmp_path)
    request = request_()
    receiver.handle(request)
    recorder.close()
    [record] = stored(tmp_path)
    assert (record.rejected, record.outcome, record.status) == (True, "rejected", status)
    assert error in record.error and record.reply["ActionStatus"] == "FAIL"
    assert record.body == request.body


def test_rejected_requests_are_bounded_per_minute_accepted_ones_are_not(tmp_path, caplog):
    clock = Clock(60 * 1_000_000)
    receiver, recorder = make_receiver(tmp_path, clock=clock, max_rejected_per_minute=3)
    for i in range(5):
        receiver.handle(signed(message(f"bad {i}"), token="wrong"))
        receiver.handle(signed(message(f"good {i}"), now=clock.now))
    clock.now += 60  # the next minute has a fresh allowance
    with caplog.at_level(logging.WARNING, "imhook.recording"):
        for i in range(2):
            receiver.handle(signed(message(f"late bad {i}"), token="wrong"))
    recorder.close()
    records = stored(tmp_path)
    assert sum(r.rejected for r in records) == 3 + 2
    assert sum(not r.rejected for r in records) == 5
    assert recorder.stats()["rejected_skipped_total"] == 2
    assert "2 rejected requests over the limit of 3/minute were not recorded" in caplog.text


def test_a_rejected_body_is_truncated_to_the_cap_an_accepted_one_is_not(tmp_path):
    receiver, recorder = make_receiver(tmp_path, max_rejected_body_bytes=16)
    big = message("x" * 500)
    receiver.handle(signed(big, token="wrong"))
    receiver.handle(signed(big))
    recorder.close()
    rejected, accepted = sorted(stored(tmp_path), key=lambda r: not r.rejected)
    assert rejected.body == json.dumps(big).encode()[:16] and rejected.body_truncated
    assert accepted.body == json.dumps(big).encode() and not accepted.body_truncated


@pytest.mark.parametrize("keep_sign", [False, True])
def test_sign_is_kept_only_if_configured(tmp_path, keep_sign):
    receiver, recorder = make_receiver(tmp_path, keep_sign=keep_sign)
    request = signed(message("hi"))
    receiver.handle(request)
    recorder.close()
    [record] = stored(tmp_path)
    assert ("Sign" in record.query) is keep_sign
    assert record.query == {k: v for k, v in request.query.items() if keep_sign or k != "Sign"}


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("rec.sqlite"))


def test_store_text_false_keeps_only_hashes_of_texts(tmp_path):
    receiver, recorder = make_receiver(tmp_path, {"name": "mask", "word": "apple", "action": "mask"},
                                       store_text=False)
    receiver.handle(signed(message("my apple pie", CloudCustomData="secret custom data")))
    recorder.close()
    [record] = stored(tmp_path)
    body = json.loads(record.body)
    assert body["MsgBody"][0]["MsgContent"]["Text"] == hash_text("my apple pie")
    assert body["CloudCustomData"] == hash_text("secret custom data")
    assert record.reply["MsgBody"][0]["MsgContent"]["Text"] == hash_text("my ***** pie")
    assert body["From_Account"] == "jared" and record.redacted == ("text",)
    data = _all_bytes(tmp_path)
    assert b"apple pie" not in data and b"secret custom" not in data and b"***** pie" not in data


def test_hash_user_ids_replaces_accounts_with_a_salted_hash(tmp_path):
    env = {SALT_ENV: "pepper"}
    receiver, recorder = make_receiver(tmp_path, env=env, hash_user_ids=True, user_id_salt_env=SALT_ENV)
    receiver.handle(signed(message("hello", user="alice")))
    receiver.handle(signed(sample("Group.CallbackBeforeInviteJoinGroup")))
    recorder.close()
    message_record, invite = stored(tmp_path)
    alice = hash_id("alice", b"pepper")
    assert message_record.user == alice and json.loads(message_record.body)["From_Account"] == alice
    assert json.loads(message_record.body)["To_Account"] == hash_id("Jonh", b"pepper")
    members = [m["Member_Account"] for m in json.loads(invite.body)["DestinationMembers"]]
    assert members and all(m.startswith("uid:") for m in members)
    assert alice != hash_id("alice", b"other salt")
    assert b"alice" not in _all_bytes(tmp_path)
    assert [r.id for r in stored(tmp_path, Filters(user=alice))] == [message_record.id]


def test_hash_user_ids_without_a_salt_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=f"hash_user_ids is on but \\${SALT_ENV} is empty"):
        make_receiver(tmp_path, hash_user_ids=True, user_id_salt_env=SALT_ENV)


@pytest.mark.parametrize("section, message_part", [
    ("recording: {colour: red}", "recording.colour"),
    ("recording: {queue_size: 0}", "recording.queue_size"),
    ("recording: {keep_sign: maybe}", "recording.keep_sign"),
    ("recording: {retention_days: -1}", "recording.retention_days"),
    ("recording: {path: ''}", "recording.path"),
])
def test_recording_options_are_validated(section, message_part):
    with pytest.raises(ConfigError) as info:
        parse_config(f"app_id: 1\n{section}\n", "bad.yaml", {})
    assert message_part in str(info.value) and "bad.yaml:2" in str(info.value)


def test_recording_is_on_by_default():
    config = parse_config("app_id: 1\n", "x.yaml", {})
    # A relative path resolves against the config file's folder (here: no folder, the working directory).
    assert config.recording["enabled"] is True and config.recording["path"] == str(Path.cwd() / "imhook-recordings.sqlite")
    assert (config.recording["keep_sign"], config.recording["store_text"], config.recording["hash_user_ids"]) == (
        False, True, False)


def test_queue_overflow_is_counted_and_logged_never_blocks(tmp_path, caplog):
    # Without the journal an overflow is lost (with it, see test_recording_journal.py).
    receiver, recorder = make_receiver(tmp_path, start=False, queue_size=3, journal=False)
    with caplog.at_level(logging.WARNING, "imhook.recording"):
        for i in range(5):
            receiver.handle(signed(message(f"m{i}")))
    assert recorder.stats()["overflow_total"] == 2 and recorder.stats()["queue_depth"] == 3
    assert "recording queue full (3 places)" in caplog.text
    recorder.start()
    assert recording.stats()["overflow_total"] >= 2  # the process-wide counters include this recorder
    recorder.close()
    assert recorder.stats()["written_total"] == 3 and len(stored(tmp_path)) == 3


def _old_and_new(tmp_path: Path, now: float) -> None:
    store = Store(tmp_path / "rec.sqlite")
    old = Record(received_at=now - 10 * 86400, command="C2C.CallbackAfterSendMsg", query={}, body=b"{}",
                 status=200, reply={}, outcome="notify")
    store.insert([old, Record(**{**vars(old), "received_at": now - 3600})])
    store.close()


def test_retention_deletes_records_older_than_retention_days(tmp_path):
    clock = Clock()
    _old_and_new(tmp_path, clock.now)
    _, recorder = make_receiver(tmp_path, clock=clock, retention_days=7)
    recorder.close()
    assert [r.received_at for r in stored(tmp_path)] == [clock.now - 3600]


@pytest.mark.parametrize("days, said, left", [
    ("7", "deleted 1 records older than 7 days", 1),
    ("0.5", "deleted 1 records older than 0.5 days", 1),
    ("0.01", "deleted 2 records older than 0.01 days", 0),
    # 0 means what retention_days: 0 means: keep everything.
    ("0", "--days 0 keeps everything (as recording.retention_days: 0 does): nothing deleted; 2 records", 2),
])
def test_prune_command_deletes_old_records_and_says_what_it_did(tmp_path, days, said, left):
    _old_and_new(tmp_path, time.time())
    result = CliRunner().invoke(main, ["recordings", "prune", "--db", str(tmp_path / "rec.sqlite"), "--days", days])
    assert result.exit_code == 0, result.output
    assert said in result.output and len(stored(tmp_path)) == left
    if days != "0":
        assert f"; {left} remain" in result.output


def test_prune_help_says_that_0_keeps_everything():
    result = CliRunner().invoke(main, ["recordings", "prune", "--help"])
    assert "0 keeps everything" in " ".join(result.output.split())


def test_retention_zero_keeps_everything(tmp_path):
    clock = Clock()
    _old_and_new(tmp_path, clock.now)
    _, recorder = make_receiver(tmp_path, clock=clock, retention_days=0)
    recorder.close()
    assert len(stored(tmp_path)) == 2


def test_a_bad_database_path_stops_start_up(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot open recordings database"):
        make_receiver(tmp_path, path=str(tmp_path / "file" / "rec.sqlite"))


def test_hash_id_command_prints_the_stored_form(monkeypatch):
    monkeypatch.setenv("IMHOOK_RECORDING_SALT", "pepper")
    monkeypatch.delenv("IMHOOK_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["recordings", "hash-id", "alice"])
    assert result.exit_code == 0 and result.output.strip() == hash_id("alice", b"pepper")


def test_the_app_records_through_its_observer_only_when_enabled(tmp_path, monkeypatch):
    from receiver.app import create_app

    monkeypatch.setenv("IMHOOK_APP_ID", APP_ID)
    monkeypatch.setenv("IMHOOK_TOKEN", TOKEN)
    config = tmp_path / "imhook.yaml"
    config.write_text(rules_yaml(recording=f"recording: {{path: {json.dumps(str(tmp_path / 'rec.sqlite'))}}}\n"))
    app = create_app(config)
    recorder = app.extensions["imhook.recorder"]
    reply = app.test_client().post("/callback", query_string=callback_query("C2C.CallbackBeforeSendMsg", APP_ID,
                                                                             token=TOKEN), json=message("hi"))
    assert reply.status_code == 200
    recorder.close()
    [record] = stored(tmp_path)
    assert record.reply == reply.get_json() and record.request_id  # the app's generated request id

    config.write_text(rules_yaml(recording="recording: {enabled: false}\n"))
    assert "imhook.recorder" not in create_app(config).extensions


def test_a_forked_child_records_with_its_own_writer(tmp_path):
    """What gunicorn's post_fork hook does for a preloaded app: the parent's thread is not in the child."""
    receiver, recorder = make_receiver(tmp_path)
    pid = os.fork()
    if pid == 0:  # the child: record one callback, drain, report by exit status
        ok = False
        try:
            recorder.after_fork()
            receiver.handle(signed(message("from the child")))
            ok = recorder.close()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    receiver.handle(signed(message("from the parent")))
    recorder.close()
    assert os.waitstatus_to_exitcode(status) == 0
    texts = sorted(json.loads(r.body)["MsgBody"][0]["MsgContent"]["Text"] for r in stored(tmp_path))
    assert texts == ["from the child", "from the parent"]


def test_privacy_walk_redacts_at_any_depth_the_parser_accepts():
    """A body nested as deep as json.loads allows is redacted, not lost to a RecursionError."""
    from receiver.recording.privacy import Policy

    policy = Policy(store_text=False, salt=b"salt")
    depth = 250  # 500 JSON levels: within MAX_JSON_DEPTH, and past what a recursive walk survived
    raw = '{"MsgBody":' + '[{"Text":"secret","From_Account":"bob","Inner":' * depth + "null" + "}]" * depth + "}"
    stored = json.loads(policy.body(raw.encode()))
    node, seen = stored["MsgBody"], 0
    while node is not None:
        assert node[0]["Text"] == hash_text("secret")
        assert node[0]["From_Account"] == hash_id("bob", b"salt")
        node, seen = node[0]["Inner"], seen + 1
    assert seen == depth
    assert "secret" not in json.dumps(stored)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 63, 64, 65, 100, 127, 128, 200, 201, 1000])
def test_a_batch_is_cut_into_inserts_of_a_few_fixed_sizes(count):
    # The sqlite3 module keeps each prepared statement (~2.2 KB per row of an INSERT): one statement
    # per batch size grew a worker's heap by ~13 MB over a long soak as rare sizes turned up.
    sizes = statement_sizes(count)
    assert sum(sizes) == count
    assert set(sizes) <= {64, 32, 16, 8, 4, 2, 1}
    assert sizes == sorted(sizes, reverse=True)


def test_batches_of_every_size_are_stored_whole_through_seven_statements(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    statements: set[str] = set()
    store.conn.set_trace_callback(lambda sql: statements.add(sql.partition(" VALUES ")[0]
                                                            + f" x{sql.count('(') - 1}"
                                                            if sql.startswith("INSERT") else ""))
    template = Record(received_at=time.time(), command="C2C.CallbackBeforeSendMsg", query={}, body=b"{}")
    stored = 0
    for count in range(1, 131):
        stored += store.insert([template] * count, keys=[f"k:{count}:{i}" for i in range(count)])
    assert stored == sum(range(1, 131)) == store.count()
    assert len({sql for sql in statements if sql.startswith("INSERT")}) == 7


@pytest.mark.parametrize("existing_page_size, page_size, checkpoint_pages", [
    (None, 16384, 2500),  # a new file: 16 KB pages (issue 16 step 17), the same ~40 MB of WAL
    (4096, 4096, 10_000),  # a file made before keeps its pages
])
def test_a_new_file_gets_16_kb_pages_an_existing_one_keeps_its_own(tmp_path, existing_page_size, page_size,
                                                                    checkpoint_pages):
    path = tmp_path / "r.sqlite"
    if existing_page_size is not None:  # a file whose page size was fixed before (an older imhook's)
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA page_size = {existing_page_size}")
            conn.execute("VACUUM")
    store = Store(path)
    template = Record(received_at=time.time(), command="C2C.CallbackBeforeSendMsg", query={}, body=b"{}")
    assert store.insert([template] * 3, keys=["a", "b", "c"]) == 3
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == page_size
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == checkpoint_pages
    store.close()
    assert Store(path, create=False).count() == 3
