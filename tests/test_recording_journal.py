"""The recording journal: what a worker answered survives its death (SIGKILL) and is stored once."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from receiver.config import parse_config
from receiver.errors import ConfigError
from receiver.recording.journal import Journal, read_journal, recover
from receiver.recording.record import Record, encode
from receiver.recording.store import Store

from .test_recording import make_receiver, message, signed, stored
from .test_recording_rules import rules_yaml

N = 12


def a_record(i: int, body: bytes | None = None) -> Record:
    return Record(received_at=1_700_000_000.0 + i, command="C2C.CallbackAfterSendMsg", query={"n": str(i)},
                  body=body if body is not None else json.dumps({"Text": f"hello #{i}"}).encode(),
                  status=200, reply={"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}, outcome="notify",
                  trace=[{"rule": "r", "result": "allow"}], request_id=f"rid-{i}")


def texts(tmp_path: Path) -> list[str]:
    return sorted(json.loads(r.body)["MsgBody"][0]["MsgContent"]["Text"] for r in stored(tmp_path))


def keys(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM recordings ORDER BY id")]


def journal_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the journal file ------------------------------------------------------------------------------


@pytest.mark.parametrize("record", [
    a_record(1),
    a_record(2, body="ünïcode 文字".encode()),
    a_record(3, body=b"\xff\xfe not utf-8"),
    Record(received_at=1.0, command="", query={}, body=b"{trunc", status=400, reply={"ErrorCode": 1},
           outcome="rejected", rejected=True, error="not valid JSON", body_truncated=True),
], ids=["json", "unicode", "binary", "rejected"])
def test_a_journal_line_reads_back_as_the_record_with_its_key(tmp_path, record):
    journal = Journal(tmp_path / "j")
    with journal.lock:
        seq, key = journal.append(encode(record))
    [(read_key, read)] = list(read_journal(journal.current.path))
    assert (read_key, read) == (key, record)
    assert key == f"{journal.token}:{seq}" and journal.token.startswith(f"{os.getpid()}-")
    journal.abandon()


def test_a_rotated_file_is_deleted_once_the_writer_is_past_it_after_storing_what_spilled(tmp_path):
    store, journal = Store(tmp_path / "rec.sqlite"), Journal(tmp_path / "j")
    records = [a_record(i) for i in range(3)]
    with journal.lock:
        written = [journal.append(encode(r)) for r in records]
        for seq, _ in written[:2]:
            journal.queued(seq)
        journal.spilled(written[2][0])  # the queue was full: only the journal has it
    first = journal.current.path
    journal.rotate()
    assert journal.current.path != first and journal.retired[0].path == first

    assert journal.retire(store, processed=1) == 0  # the writer has not stored #2 yet: keep the file
    assert first.exists() and store.count() == 0
    store.insert(records[:2], [key for _, key in written[:2]])  # what the writer does with the queue
    assert journal.retire(store, processed=2) == 1
    assert not first.exists() and journal.retired == []
    assert sorted(r.request_id for r in store.records()) == ["rid-0", "rid-1", "rid-2"]
    journal.close(store, processed=2)
    assert journal_files(tmp_path / "j") == []
    store.close()


def test_a_truncated_last_line_is_skipped_and_logged(tmp_path, caplog):
    folder = tmp_path / "j"
    journal = Journal(folder)
    with journal.lock:
        for i in range(3):
            journal.append(encode(a_record(i)))
    path = journal.current.path
    journal.abandon()  # as if its process had died: unlocked, lines kept
    line = path.read_bytes().splitlines(keepends=True)[0]
    with open(path, "ab") as f:
        f.write(line[: len(line) // 2])  # killed in the middle of a write
    store = Store(tmp_path / "rec.sqlite")
    with caplog.at_level(logging.WARNING, "imhook.recording"):
        [result] = recover(folder, store).values()
    assert (result.lines, result.inserted, store.count()) == (3, 3, 3)
    assert [p.why for p in result.problems] == ["truncated: the process died while writing it"]
    assert f"{path.name}:4: truncated" in caplog.text
    assert not path.exists()
    store.close()


def test_importing_a_journal_again_adds_nothing(tmp_path):
    folder = tmp_path / "j"
    journal = Journal(folder)
    with journal.lock:
        for i in range(N):
            journal.append(encode(a_record(i)))
    path = journal.current.path
    journal.abandon()
    copy = path.read_bytes()
    store = Store(tmp_path / "rec.sqlite")
    assert [r.inserted for r in recover(folder, store).values()] == [N]
    path.write_bytes(copy)  # the same lines once more (a recovery that died before deleting)
    assert [(r.lines, r.inserted) for r in recover(folder, store).values()] == [(N, 0)]
    assert store.count() == N and len(set(keys(tmp_path / "rec.sqlite"))) == N
    store.close()


# --- the recorder ------------------------------------------------------------------------------------


def test_every_record_is_stored_once_with_its_key_and_the_journal_goes_away(tmp_path):
    receiver, recorder = make_receiver(tmp_path)
    folder = tmp_path / "rec.sqlite.journal"
    assert journal_files(folder) == [recorder.journal.current.path.name]
    for i in range(N):
        receiver.handle(signed(message(f"m{i}")))
    assert len(recorder.journal.current.path.read_bytes().splitlines()) == N  # before the reply returned
    assert recorder.close()
    assert texts(tmp_path) == sorted(f"m{i}" for i in range(N))
    stored_keys = keys(tmp_path / "rec.sqlite")
    assert len(set(stored_keys)) == N and all(k.startswith(recorder.journal.token + ":") for k in stored_keys)
    assert not folder.exists()  # the default folder is removed once empty
    assert recorder.stats()["written_total"] == N


def test_a_full_queue_spills_into_the_journal_and_nothing_is_lost(tmp_path, caplog):
    receiver, recorder = make_receiver(tmp_path, start=False, queue_size=3)
    with caplog.at_level(logging.WARNING, "imhook.recording"):
        for i in range(5):
            receiver.handle(signed(message(f"m{i}")))
    counts = recorder.stats()
    assert (counts["overflow_total"], counts["journal_spilled_total"], counts["queue_depth"]) == (2, 2, 3)
    assert "recording queue full (3 places): 1 callbacks kept in the journal" in caplog.text
    recorder.start()
    assert recorder.close()
    assert texts(tmp_path) == [f"m{i}" for i in range(5)]
    assert recorder.stats()["written_total"] == 5 and recorder.stats()["failed_total"] == 0


def test_a_journal_that_cannot_be_written_falls_back_to_the_queue(tmp_path, caplog):
    receiver, recorder = make_receiver(tmp_path)
    journal_fd = recorder.journal.current.fd
    recorder.journal.current.fd = read_only = os.open(os.devnull, os.O_RDONLY)  # every write fails
    with caplog.at_level(logging.ERROR, "imhook.recording"):
        for i in range(3):
            receiver.handle(signed(message(f"m{i}")))
    recorder.journal.current.fd = journal_fd
    os.close(read_only)
    assert recorder.close()
    assert texts(tmp_path) == ["m0", "m1", "m2"]
    assert "cannot append to the journal" in caplog.text and "queued in memory only" in caplog.text


def test_without_the_journal_nothing_is_written_beside_the_database(tmp_path):
    receiver, recorder = make_receiver(tmp_path, journal=False)
    receiver.handle(signed(message("hi")))
    assert recorder.journal is None and not (tmp_path / "rec.sqlite.journal").exists()
    recorder.close()
    assert texts(tmp_path) == ["hi"] and keys(tmp_path / "rec.sqlite") == [None]


def _answer_then_wait(folder: str, count: int, options: dict, wait_stored: bool, ready) -> None:
    """In a child process: answer `count` callbacks, tell the parent, then wait to be killed."""
    tmp_path = Path(folder)
    receiver, recorder = make_receiver(tmp_path, **options)
    for i in range(count):
        receiver.handle(signed(message(f"dead {i}")))
    if wait_stored:
        while recorder.stats()["written_total"] < count:
            time.sleep(0.01)
    ready.set()
    signal.pause()


@pytest.mark.parametrize("options, wait_stored, recovered", [
    ({"start": False}, False, N),  # the writer never ran: only the journal has them
    ({"flush_interval_seconds": 60}, False, N),  # the writer holds them, waiting for a fuller batch
    ({"flush_interval_seconds": 0.01}, True, 0),  # all stored already: the journal adds none twice
], ids=["writer-not-started", "writer-waiting", "all-stored"])
def test_what_a_killed_process_answered_is_recovered_by_the_next_recorder(tmp_path, options, wait_stored, recovered):
    context = multiprocessing.get_context("spawn")  # a clean process, as a gunicorn worker is
    ready = context.Event()
    child = context.Process(target=_answer_then_wait, args=(str(tmp_path), N, options, wait_stored, ready))
    child.start()
    try:
        assert ready.wait(60), "the child process did not answer its callbacks"
        folder = tmp_path / "rec.sqlite.journal"
        [name] = journal_files(folder)
        assert name.startswith(f"{child.pid}-")
        store = Store(tmp_path / "rec.sqlite")
        assert recover(folder, store) == {}  # its owner lives: its lock keeps everyone out
        store.close()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert len(stored(tmp_path)) == N - recovered

    _, recorder = make_receiver(tmp_path)  # a new worker: its writer imports the dead one's journal
    assert recorder.close()
    assert texts(tmp_path) == sorted(f"dead {i}" for i in range(N))
    assert recorder.stats()["journal_recovered_total"] == recovered
    assert not folder.exists()


def test_a_forked_child_journals_to_its_own_file_and_its_death_loses_nothing(tmp_path):
    """What gunicorn's post_fork does for a preloaded app: the child never writes to the parent's file."""
    receiver, recorder = make_receiver(tmp_path, flush_interval_seconds=60)
    parent_file = recorder.journal.current.path
    pid = os.fork()
    if pid == 0:  # the child: answer, then die without any cleanup
        try:
            recorder.after_fork()
            assert recorder.journal.current.path != parent_file
            for i in range(3):
                receiver.handle(signed(message(f"child {i}")))
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    receiver.handle(signed(message("parent")))
    assert parent_file.read_bytes().count(b"\n") == 1  # only the parent's own record
    store = Store(tmp_path / "rec.sqlite")
    assert [r.lines for r in recover(parent_file.parent, store).values()] == [3]  # the child's; ours is locked
    store.close()
    assert recorder.close()
    assert texts(tmp_path) == ["child 0", "child 1", "child 2", "parent"]


# --- store and settings ------------------------------------------------------------------------------


def test_a_version_1_database_gets_the_key_column_and_keeps_its_rows(tmp_path):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:  # the schema imhook wrote before the journal
        conn.executescript("""
            CREATE TABLE recordings (id INTEGER PRIMARY KEY, received_at REAL NOT NULL, command TEXT NOT NULL,
                user TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '', rule TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '', status INTEGER, rejected INTEGER NOT NULL DEFAULT 0,
                elapsed_ms REAL NOT NULL DEFAULT 0, query TEXT NOT NULL, body BLOB,
                body_truncated INTEGER NOT NULL DEFAULT 0, reply TEXT, trace TEXT NOT NULL DEFAULT '[]',
                error TEXT NOT NULL DEFAULT '', request_id TEXT NOT NULL DEFAULT '',
                source TEXT NOT NULL DEFAULT 'live', redacted TEXT NOT NULL DEFAULT '');
            INSERT INTO recordings (received_at, command, query, body)
                VALUES (1.0, 'C2C.CallbackAfterSendMsg', '{}', X'7B7D');
            PRAGMA user_version = 1;
        """)
    reader = Store(db, create=False)  # reading needs no migration
    assert [r.command for r in reader.records()] == ["C2C.CallbackAfterSendMsg"]
    reader.close()
    store = Store(db)
    assert store.insert([a_record(1), a_record(1)], ["k:1", "k:1"]) == 1
    assert store.insert([a_record(2), a_record(3)]) == 2  # no key: always added
    assert store.count() == 4 and keys(db) == [None, "k:1", None, None]
    store.close()


@pytest.mark.parametrize("section, message_part", [
    ("recording: {journal: maybe}", "recording.journal"),
    ("recording: {journal_dir: ''}", "recording.journal_dir"),
    ("recording: {journal_dir: [a]}", "recording.journal_dir"),
])
def test_journal_options_are_validated(section, message_part):
    with pytest.raises(ConfigError) as info:
        parse_config(f"app_id: 1\n{section}\n", "bad.yaml", {})
    assert message_part in str(info.value) and "bad.yaml:2" in str(info.value)


def test_the_journal_folder_can_be_set_and_must_be_usable(tmp_path):
    config = parse_config(rules_yaml(), "x.yaml", {})
    assert (config.recording["journal"], config.recording["journal_dir"]) == (True, None)
    receiver, recorder = make_receiver(tmp_path, journal_dir=str(tmp_path / "journals"))
    assert recorder.journal.current.path.parent == tmp_path / "journals"
    recorder.close()
    assert (tmp_path / "journals").is_dir()  # a folder the operator chose is left in place
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot open the recording journal in"):
        make_receiver(tmp_path, journal_dir=str(tmp_path / "file" / "journals"))
