"""Any text JSON can carry is stored, journaled, exported and forwarded; what the store still refuses
is quarantined and the writer goes on; a dead writer is restarted; a stalled pipeline is reported."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver import watchdog
from receiver.cli import main
from receiver.jsonout import storable
from receiver.ops.forward import events
from receiver.ops.forward.outbox import Outbox
from receiver.recording.journal import Journal, read_journal, recover
from receiver.recording.quarantine import Quarantine, path_for
from receiver.recording.record import Record, encode
from receiver.recording.sources import Source, export_jsonl, read_jsonl
from receiver.recording.store import Filters, Store
from receiver.recording.writer import Recorder

from .test_recording import make_receiver, message, signed, stored

COMMAND = "Group.CallbackAfterGroupInfoChanged"
ODD = {  # every kind of text a JSON body may carry, and one number no 64-bit type holds
    "lone surrogate": "\ud800eve",
    "low surrogate": "\udfffname",
    "nul": "a\x00b",
    "bidi and zero width": "\u202eevil\u200b\ufeff\u2066x",
    "million chars": "é" * 10**6,
    "2**70": 2**70,
}


def odd_record(value, i: int = 0) -> tuple[Record, bytes]:
    text = value if isinstance(value, str) else str(value)
    body = {"CallbackCommand": COMMAND, "GroupId": text, "Name": value, "Operator_Account": text}
    raw = json.dumps(body).encode()  # as the IM sends it: escapes, ASCII
    record = Record(received_at=1_700_000_000.0 + i, command=COMMAND, query={"SdkAppid": "1", "odd": text},
                    body=raw, status=200, reply={"Echo": value}, outcome="notify", rule=text, reason=text,
                    trace=[{"rule": "r", "value": value}], error=text, user=text, request_id=f"rid-{i}")
    return record, raw


@pytest.mark.parametrize("value", ODD.values(), ids=ODD.keys())
def test_odd_text_goes_through_store_journal_export_and_outbox(tmp_path, value):
    record, raw = odd_record(value)
    text = value if isinstance(value, str) else str(value)

    store = Store(tmp_path / "rec.sqlite")
    assert store.insert([record], ["k:1"]) == 1
    [back] = list(store.records())
    assert back.body == raw and json.loads(back.body) == json.loads(raw)  # replay parses the same callback
    assert back.reply == {"Echo": value} and back.trace == [{"rule": "r", "value": value}]  # JSON: exact
    assert back.user == back.rule == back.error == storable(text)  # TEXT: lone surrogates escaped
    assert back.query == {"SdkAppid": "1", "odd": text}
    assert [r.id for r in store.records(Filters(user=text))] == [back.id]  # --user finds it as given
    store.close()

    journal = Journal(tmp_path / "journal")
    with journal.lock:
        key = journal.append(encode(record))[1]
    [(read_key, read)] = list(read_journal(journal.current.path))
    assert read_key == key and read.body == raw and read.user == text and read.reply == {"Echo": value}
    journal.abandon()

    out = io.StringIO()
    assert export_jsonl(Source(tmp_path / "rec.sqlite", Filters()), out) == (1, [])
    out.getvalue().encode("utf-8")  # writable as UTF-8
    [exported] = list(read_jsonl(io.StringIO(out.getvalue()), "export.jsonl"))
    assert exported.body == raw and exported.reply == {"Echo": value}

    outbox = Outbox(tmp_path / "outbox.sqlite")
    parsed = json.loads(raw)
    assert outbox.add(["t"], dedupe=events.dedupe_key(COMMAND, parsed), conversation=events.conversation_key(parsed),
                      command=COMMAND, app_id="1", body=raw) == ["t"]
    [row] = outbox.heads(["t"], 10)
    assert row.body == raw and row.conversation == storable(f"group:{text}")
    assert outbox.add(["t"], dedupe=events.dedupe_key(COMMAND, json.loads(raw)),  # a repeat is a duplicate
                      conversation="x", command=COMMAND, app_id="1", body=raw) == []
    outbox.close()


def test_keys_of_bodies_without_lone_surrogates_are_unchanged():
    """Rows stored before the text policy keep their dedupe keys: a late duplicate is still one."""
    import hashlib

    body = {"GroupId": "@TGS#1", "Name": "名字"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert events.dedupe_key(COMMAND, body) == f"{COMMAND}|sha256={hashlib.sha256(canonical.encode()).hexdigest()}"


# --- the writer: quarantine, restart, stall --------------------------------------------------------


class PickyStore(Store):
    """A store that refuses any batch holding a record whose reason is "poison" (a row it cannot take)."""

    def insert(self, records, keys=None):
        records = list(records)
        if any(r.reason == "poison" for r in records):
            raise ValueError("this row cannot be stored")
        return super().insert(records, keys)


def picky(recorder: Recorder) -> Recorder:
    recorder.store.close()
    recorder.store = PickyStore(recorder.path)
    return recorder


def a_record(i: int, reason: str = "") -> Record:
    return Record(received_at=time.time(), command="C2C.CallbackAfterSendMsg", query={}, body=b'{"n": %d}' % i,
                  status=200, reply={"ErrorCode": 0}, reason=reason, request_id=f"rid-{i}")


def feed(recorder: Recorder, records: list[Record]) -> None:
    for record in records:
        recorder._journal_and_enqueue(record, encode(record))


def test_a_record_the_store_refuses_is_quarantined_counted_logged_and_the_writer_goes_on(tmp_path, caplog):
    recorder = picky(Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, start=False))
    feed(recorder, [a_record(1), a_record(2, "poison"), a_record(3)])
    recorder.start()
    with caplog.at_level(logging.ERROR, "imhook.recording"):
        assert wait_for(lambda: recorder.stats()["written_total"] == 2)
        feed(recorder, [a_record(4)])  # after it: still written
        assert wait_for(lambda: recorder.stats()["written_total"] == 3)
    assert recorder.close()
    assert sorted(json.loads(r.body)["n"] for r in stored(tmp_path)) == [1, 3, 4]
    assert recorder.stats()["quarantined_total"] == 1 and recorder.stats()["failed_total"] == 0
    [entry] = Quarantine(path_for(tmp_path / "rec.sqlite")).entries()
    assert entry.data["request_id"] == "rid-2" and "cannot be stored" in entry.data["error"]
    assert Record.from_json(entry.data["record"]).body == b'{"n": 2}'
    logged = [r.getMessage() for r in caplog.records if "quarantine" in r.getMessage()]
    assert len(logged) == 1 and "rid-2" in logged[0]


def test_the_quarantine_is_bounded_past_it_a_record_is_counted_as_lost(tmp_path):
    recorder = picky(Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, start=False, quarantine_max_bytes=600))
    feed(recorder, [a_record(1, "poison"), a_record(2, "poison"), a_record(3)])
    recorder.start()
    assert wait_for(lambda: recorder.stats()["written_total"] == 1)
    assert recorder.close()
    counts = recorder.stats()
    assert (counts["quarantined_total"], counts["failed_total"]) == (1, 1)  # just under, just over
    assert Path(path_for(tmp_path / "rec.sqlite")).stat().st_size <= 600


class Boom(BaseException):
    """Escapes every `except Exception`: what kills a thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_writer_thread_that_died_is_restarted_and_records_again(tmp_path, caplog):
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01)
    # This test restarts the writer itself: the process's watchdog, ticking once a second, could
    # restart it first, between its death and the check below (the next test covers the watchdog).
    watchdog.unwatch(recorder)
    real_turn = recorder._turn

    def dying_turn():
        recorder._turn = real_turn
        raise Boom()

    recorder._turn = dying_turn
    assert wait_for(lambda: not recorder._thread.is_alive())
    feed(recorder, [a_record(1)])
    assert recorder.health() == "the recording writer thread is dead"
    with caplog.at_level(logging.ERROR, "imhook.recording"):
        assert recorder.supervise() is None  # restarted at once: healthy again
    assert recorder.stats()["writer_restarts_total"] == 1
    assert any("restarted" in r.getMessage() for r in caplog.records)
    assert wait_for(lambda: recorder.stats()["written_total"] == 1)
    assert recorder.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_watchdog_restarts_a_dead_writer_without_being_asked(tmp_path):
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01)
    recorder._turn = lambda: (_ for _ in ()).throw(Boom())  # dies, and would die again: restarted each time
    assert wait_for(lambda: recorder.stats()["writer_restarts_total"] >= 1, timeout=3 * watchdog.INTERVAL_SECONDS)
    recorder._turn = Recorder._turn.__get__(recorder)
    assert recorder.close()


def test_an_error_in_a_turn_is_logged_and_the_writer_goes_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("receiver.recording.writer.ERROR_PAUSE_SECONDS", 0.01)
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, start=False)
    calls = {"n": 0}
    real = recorder._prune_if_due

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        real()

    recorder._prune_if_due = flaky
    feed(recorder, [a_record(1)])
    with caplog.at_level(logging.ERROR, "imhook.recording"):
        recorder.start()
        assert wait_for(lambda: recorder.stats()["written_total"] == 1)
    assert recorder._thread.is_alive() and recorder.writer_errors_total == 1
    assert any("going on" in r.getMessage() for r in caplog.records)
    assert recorder.close()


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def test_a_pipeline_that_has_not_drained_for_stall_seconds_is_reported_until_it_drains(tmp_path):
    clock = Clock()
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, stall_seconds=5, clock=clock, start=False)
    record = a_record(1)
    record.received_at = clock.now
    feed(recorder, [record])
    assert recorder.health() is None  # not started: nothing to say
    recorder._thread = threading.Thread(target=lambda: None)  # "started", but its writer does nothing
    recorder._thread.start()
    recorder._stop.set()  # ... and is not dead either: it is closing
    clock.now += 4
    assert recorder.health() is None
    clock.now += 2
    reason = recorder.health()
    assert reason and "has not drained for 6 s" in reason and "stall_seconds" in reason
    assert recorder.stats()["undrained_seconds"] == 6
    recorder._stop.clear()
    recorder._thread = None
    recorder.start()
    assert wait_for(lambda: recorder.health() is None)
    assert recorder.stats()["undrained_seconds"] == 0
    assert recorder.close()


# --- journal recovery ------------------------------------------------------------------------------


def test_recovery_quarantines_a_bad_line_and_imports_the_rest(tmp_path):
    folder = tmp_path / "journal"
    folder.mkdir()
    good = [odd_record("\ud800eve", 1)[0], odd_record("fine", 2)[0]]
    lines = [b'{"key":"dead-1:1",' + encode(good[0])[1:],
             b'{"key":"dead-1:2","received_at":"not a time"}',  # unreadable
             b'{"key":"dead-1:3",' + b'[' * 100_000 + b'\n',  # deeper than the parser goes
             b'{"key":"dead-1:4",' + encode(good[1])[1:]]
    (folder / "99-dead-1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    store = Store(tmp_path / "rec.sqlite")
    quarantine = Quarantine(path_for(tmp_path / "rec.sqlite"))
    [result] = recover(folder, store, quarantine=quarantine).values()
    assert (result.lines, result.inserted, result.quarantined) == (2, 2, 2)
    assert sorted(r.user for r in store.records()) == ["\\ud800eve", "fine"]
    assert [e.data["where"] for e in quarantine.entries()] == ["99-dead-1.jsonl:2", "99-dead-1.jsonl:3"]
    assert not list(folder.iterdir())
    store.close()


# --- imhook recordings quarantine ------------------------------------------------------------------


def test_quarantine_command_lists_and_reimports(tmp_path):
    db = tmp_path / "rec.sqlite"
    recorder = picky(Recorder(db, flush_interval=0.01, start=False))
    feed(recorder, [a_record(1, "poison"), a_record(2)])
    recorder.start()
    assert wait_for(lambda: recorder.stats()["quarantined_total"] == 1)
    assert recorder.close()
    broken = Quarantine(path_for(db))
    broken.add_raw(b"{not json", "unreadable journal line", where="x.jsonl:7")

    listed = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    assert "2 quarantined" in listed.output and "rid-1" in listed.output and "x.jsonl:7" in listed.output

    imported = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(db), "--import"])
    assert imported.exit_code == 0, imported.output
    assert "1 records stored, 1 kept" in imported.output  # the raw line still cannot be read
    assert sorted(json.loads(r.body)["n"] for r in stored(tmp_path)) == [1, 2]
    assert [e.data["where"] for e in broken.entries()] == ["x.jsonl:7"]
    again = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(db), "--import"])
    assert "0 records stored, 1 kept" in again.output and len(stored(tmp_path)) == 2


# --- through the receiver ----------------------------------------------------------------------------


def test_a_callback_with_a_lone_surrogate_account_is_recorded_and_so_are_those_after_it(tmp_path):
    receiver, recorder = make_receiver(tmp_path, flush_interval_seconds=0.01)
    raw = json.dumps(message("hi", user="\ud800eve")).encode()
    assert b"\\ud800eve" in raw
    assert receiver.handle(signed(raw)).status == 200
    for i in range(3):
        assert receiver.handle(signed(message(f"after {i}"))).status == 200
    assert wait_for(lambda: recorder.stats()["written_total"] == 4)
    assert recorder._thread.is_alive() and recorder.close()
    records = stored(tmp_path)
    assert [r.user for r in records] == ["\\ud800eve", "jared", "jared", "jared"]
    assert records[0].body == raw


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_with_texts_and_ids_hashed_a_lone_surrogate_is_recorded_too(tmp_path):
    receiver, recorder = make_receiver(tmp_path, flush_interval_seconds=0.01, store_text=False, hash_user_ids=True,
                                       user_id_salt_env="SALT", env={"SALT": "pepper"})
    raw = json.dumps(message("\udfffname", user="\ud800eve")).encode()
    assert receiver.handle(signed(raw)).status == 200
    assert wait_for(lambda: recorder.stats()["written_total"] == 1)
    assert recorder.close() and recorder.stats()["failed_total"] == 0
    [record] = stored(tmp_path)
    assert record.user.startswith("uid:") and b"udfffname" not in record.body and b"sha256:" in record.body


def test_journals_of_dead_workers_that_cannot_be_imported_count_as_undrained(tmp_path, monkeypatch):
    clock = Clock()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the import")

    monkeypatch.setattr("receiver.recording.writer.recover", broken)
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, stall_seconds=5, clock=clock)
    assert wait_for(lambda: recorder._recover_failing_since is not None)
    assert recorder._thread.is_alive() and recorder.health() is None
    clock.now += 6
    assert "has not drained for 6 s" in recorder.health()
    monkeypatch.undo()
    recorder._recover()
    assert recorder.health() is None
    assert recorder.close()


def test_a_reimport_keeps_what_was_appended_while_it_ran(tmp_path):
    quarantine = Quarantine(tmp_path / "q.jsonl")
    quarantine.add_record(a_record(1), "refused", where="writer")
    taken = []

    def store_one(record, key):
        quarantine.add_record(a_record(2), "refused meanwhile", where="writer")  # another worker, now
        taken.append(record.request_id)

    assert quarantine.reimport(store_one) == (1, [])
    assert taken == ["rid-1"]
    assert [e.data["request_id"] for e in quarantine.entries()] == ["rid-2"]


def test_a_batch_a_bug_fails_on_is_stored_from_the_journal_not_lost(tmp_path, monkeypatch):
    monkeypatch.setattr("receiver.recording.writer.ERROR_PAUSE_SECONDS", 0.01)
    recorder = Recorder(tmp_path / "rec.sqlite", flush_interval=0.01, rotate_seconds=0.05, start=False)
    real, calls = recorder._write_batch, []

    def buggy(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("a bug in writing")
        real(batch)

    recorder._write_batch = buggy
    feed(recorder, [a_record(1), a_record(2)])
    recorder.start()
    assert wait_for(lambda: recorder.stats()["written_total"] == 2)  # from the journal, at rotation
    feed(recorder, [a_record(3)])
    assert wait_for(lambda: recorder.stats()["written_total"] == 3)
    assert recorder.close() and recorder.stats()["failed_total"] == 0
    assert sorted(json.loads(r.body)["n"] for r in stored(tmp_path)) == [1, 2, 3]
