"""JSON Lines export/import, sample folders, and replay of corrupt or partial records."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main

from .helpers import SAMPLES, request_samples, sample
from .test_recording import make_receiver, message, signed
from .test_recording_rules import rules_yaml

RULES = ({"name": "no_apple", "word": "apple"},)


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def db(tmp_path) -> Path:
    """A recordings db written in-process: accepted, refused and rejected callbacks, one binary body."""
    receiver, recorder = make_receiver(tmp_path, *RULES, max_rejected_body_bytes=64)
    for name in request_samples():
        receiver.handle(signed(sample(name)))
    receiver.handle(signed(message("an apple", user="u-apple")))
    receiver.handle(signed(message("x" * 200), token="wrong"))  # rejected, body truncated
    receiver.handle(signed(b"\xff\xfe not utf-8", command="C2C.CallbackBeforeSendMsg"))  # rejected, binary
    recorder.close()
    return tmp_path / "rec.sqlite"


@pytest.fixture
def rules(tmp_path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_yaml(*RULES), encoding="utf-8")
    return str(path)


def lines_without_ids(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "id"} for line in path.read_text("utf-8").splitlines()]


def test_export_then_import_round_trips(db, tmp_path):
    first, second, copy = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "copy.sqlite"
    assert "exported 27 records" in cli("recordings", "export", str(first), "--db", str(db)).stderr
    assert "imported 27 records" in cli("recordings", "import", str(first), "--db", str(copy)).stdout
    cli("recordings", "export", str(second), "--db", str(copy))
    assert lines_without_ids(first) == lines_without_ids(second)
    binary = [r for r in lines_without_ids(first) if "body_base64" in r]
    assert len(binary) == 1 and binary[0]["rejected"] and "body" not in binary[0]


def test_importing_the_same_records_again_skips_them_and_says_so(db, tmp_path):
    export, copy = tmp_path / "a.jsonl", tmp_path / "copy.sqlite"
    cli("recordings", "export", str(export), "--db", str(db))
    first = cli("recordings", "import", str(export), "--db", str(copy)).stdout
    assert f"imported 27 records into {copy}, skipped 0 already present" in first
    second = cli("recordings", "import", str(export), "--db", str(copy)).stdout
    assert f"imported 0 records into {copy}, skipped 27 already present" in second
    # The same records with the keys of every line in another order, and one record more: only it is new.
    lines = export.read_text("utf-8").splitlines()
    reordered = [json.dumps(dict(reversed(list(json.loads(line).items()))), ensure_ascii=True) for line in lines]
    extra = dict(json.loads(lines[0]), received_at=1.5)
    export.write_text("\n".join([*reordered, json.dumps(extra)]) + "\n", "utf-8")
    third = cli("recordings", "import", str(export), "--db", str(copy)).stdout
    assert "imported 1 records" in third and "skipped 27 already present" in third
    assert cli("recordings", "stats", "--db", str(copy)).stdout.splitlines()[-1].split()[-1] == "28"


@pytest.mark.parametrize("args, count", [
    (["--no-rejected"], len(request_samples()) + 1),
    (["--command", "C2C.CallbackBeforeSendMsg"], 1 + 1 + 2),
    (["--command", "C2C.CallbackBeforeSendMsg", "--no-rejected"], 2),
    (["--user", "u-apple"], 1),
])
def test_export_filters(db, tmp_path, args, count):
    out = tmp_path / "out.jsonl"
    cli("recordings", "export", str(out), "--db", str(db), *args)
    assert len(out.read_text("utf-8").splitlines()) == count


def test_replaying_the_export_equals_replaying_the_db(db, tmp_path, rules):
    out = tmp_path / "out.jsonl"
    cli("recordings", "export", str(out), "--db", str(db))
    from_db = json.loads(cli("replay", str(db), "--rules", rules, "--json", "-").stdout)
    from_file = json.loads(cli("replay", str(out), "--rules", rules, "--json", "-").stdout)
    assert from_db["summary"] == from_file["summary"]
    assert from_db["summary"]["unchanged"] == len(request_samples()) + 1
    assert from_db["summary"]["skipped_rejected"] == 2


def test_corrupt_and_partial_lines_are_reported_and_the_run_goes_on(db, tmp_path, rules):
    good = json.loads(cli("recordings", "export", "-", "--db", str(db), "--user", "u-apple").stdout)
    truncated = {**good, "body": good["body"][:40]}
    lines = [
        json.dumps(good),
        '{"command": "C2C.CallbackBeforeSendMsg", "received_at": 1, "quer',
        json.dumps({k: v for k, v in good.items() if k != "body"}),
        json.dumps(truncated),
        "[1, 2]",
        json.dumps({**good, "reply": None}),
        "",
        json.dumps({**good, "outcome": "maybe"}),
        json.dumps(good),
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = json.loads(cli("replay", str(source), "--rules", rules, "--json", "-").stdout)
    assert data["summary"]["unchanged"] == 2 and data["summary"]["error"] == 6
    errors = {e["where"]: e["why"] for e in data["errors"]}
    assert list(errors) == ["mixed.jsonl:2", "mixed.jsonl:3", "mixed.jsonl:4", "mixed.jsonl:5", "mixed.jsonl:6",
                            "mixed.jsonl:8"]
    assert "not valid JSON" in errors["mixed.jsonl:2"]
    assert "body" in errors["mixed.jsonl:3"] and "missing" in errors["mixed.jsonl:3"]
    assert "truncated or corrupt" in errors["mixed.jsonl:4"]
    assert "expected a JSON object" in errors["mixed.jsonl:5"]
    assert "status and reply go together" in errors["mixed.jsonl:6"]
    assert "outcome" in errors["mixed.jsonl:8"]

    imported = cli("recordings", "import", str(source), "--db", str(tmp_path / "new.sqlite"))
    # The truncated body is well-formed as a record: it is imported, and replay reports it. The last
    # line repeats the first: the same record, present once.
    assert "imported 2 records" in imported.stdout and "skipped 1 already present" in imported.stdout
    assert "5 lines skipped" in imported.stderr
    assert "skipped mixed.jsonl:2: not valid JSON" in imported.stderr


def test_corrupt_rows_in_the_db_are_reported_by_id(db, rules):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE recordings SET trace = '[{broken' WHERE id = 3")
        conn.execute("UPDATE recordings SET body = NULL WHERE id = 5")
    data = json.loads(cli("replay", str(db), "--rules", rules, "--json", "-").stdout)
    assert {e["where"]: e["why"] for e in data["errors"]} == {
        "#3": "corrupt row: Expecting property name enclosed in double quotes: line 1 column 3 (char 2)",
        "#5": "corrupt row: the body is missing"}
    assert data["summary"]["unchanged"] == len(request_samples()) + 1 - 2


def test_a_truncated_rejected_record_is_an_error_when_replayed(db, rules):
    data = json.loads(cli("replay", str(db), "--rules", rules, "--include-rejected", "--json", "-").stdout)
    [error] = data["errors"]
    assert "truncated when recorded" in error["why"]


def test_import_samples_builds_a_test_set_replayed_as_new(tmp_path, rules):
    folder = tmp_path / "samples"
    folder.mkdir()
    for path in (SAMPLES / "tencent").glob("*.json"):
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.json").write_text("{nope", encoding="utf-8")
    db = tmp_path / "set.sqlite"
    result = cli("recordings", "import-samples", str(folder), "--db", str(db), "--app-id", "1400000000")
    assert f"imported {len(request_samples())} samples" in result.stdout
    assert "skipped broken.json: not a JSON object with a CallbackCommand" in result.stderr
    data = json.loads(cli("replay", str(db), "--rules", rules, "--json", "-", "--fail-on-change").stdout)
    assert data["summary"]["new"] == len(request_samples()) and data["summary"]["error"] == 0
    refused = [c for c in data["new"] if c["new"]["outcome"] == "refuse"]
    assert refused == []  # no sample mentions apples
    assert any(c["where"].endswith(" (C2C.CallbackBeforeSendMsg.json)") for c in data["new"])


def test_stats_counts_per_command_and_outcome(db):
    out = cli("recordings", "stats", "--db", str(db)).stdout
    assert "C2C.CallbackBeforeSendMsg" in out and "refuse" in out and "rejected" in out
    assert out.splitlines()[-1].split() == ["total", str(len(request_samples()) + 3)]


def test_a_missing_db_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["recordings", "stats", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "no recordings database at" in result.output


def test_save_writes_a_new_baseline_that_replays_unchanged(db, tmp_path, rules):
    other = tmp_path / "other.yaml"
    other.write_text(rules_yaml({"name": "no_pear", "word": "pear"}), encoding="utf-8")
    baseline = tmp_path / "baseline.jsonl"
    first = json.loads(cli("replay", str(db), "--rules", str(other), "--save", str(baseline), "--json", "-").stdout)
    assert first["summary"]["changed"] == 1  # u-apple's refusal is gone under the other rules
    saved = [json.loads(line) for line in baseline.read_text("utf-8").splitlines()]
    assert len(saved) == first["summary"]["total"] and all(r["id"] is None for r in saved)
    assert [r["outcome"] for r in saved if r["user"] == "u-apple"] == ["allow"]
    again = json.loads(cli("replay", str(baseline), "--rules", str(other), "--json", "-", "--fail-on-change").stdout)
    assert again["summary"]["unchanged"] == first["summary"]["total"] and again["summary"]["changed"] == 0
