"""`imhook replay` and `imhook recordings export|import|import-samples|stats|prune`."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import click

from .store import Filters


def _filter_options(f):
    f = click.option("--user", default="", help="Only this account (as recorded: hashed if hash_user_ids).")(f)
    f = click.option("--until", default=None, help="Only records received before this time.")(f)
    f = click.option("--since", default=None,
                     help="Only records received at or after this time: epoch, ISO 8601, or 30m/2h/7d ago.")(f)
    return click.option("--command", "commands", multiple=True, help="Only this CallbackCommand (repeatable).")(f)


def _filters(commands, since, until, user, include_rejected: bool = True) -> Filters:
    from .sources import parse_time

    return Filters(commands=tuple(commands), since=parse_time(since) if since else None,
                   until=parse_time(until) if until else None, user=user, include_rejected=include_rejected)


def _db_path(db: str | None) -> Path:
    """--db, else recording.path of the config ($IMHOOK_CONFIG or the bundled default)."""
    if db:
        return Path(db)
    from ..config import load_config

    return Path(load_config(None, require_app_id=False).recording["path"])


def _progress(total: int, quiet: bool, desc: str):
    from tqdm import tqdm

    # On a terminal only: a CI log fills with carriage-return redraws otherwise.
    return tqdm(total=total, desc=desc, unit="cb", file=sys.stderr, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Config file with the rules to test (default: $IMHOOK_CONFIG, else the bundled default).")
@_filter_options
@click.option("--include-rejected", is_flag=True, help="Replay rejected requests too (skipped by default).")
@click.option("--url", default=None, help="Post each recording to this running receiver instead of replaying offline.")
@click.option("--token", default=None, help="With --url: sign with this token (default: $IMHOOK_TOKEN).")
@click.option("--app-id", default=None,
              help="With --url: SdkAppid to send (default: $IMHOOK_APP_ID, else as recorded).")
@click.option("--rate", type=float, default=None, help="With --url: at most this many requests per second.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="With --url: requests in flight at once.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="With --url: seconds per request.")
@click.option("--json", "json_out", default=None, metavar="FILE", help="Also write the result as JSON ('-': stdout).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write a self-contained HTML report.")
@click.option("--save", "save_to", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Offline: write every replayed record with its new reply as JSON Lines (a new baseline).")
@click.option("--show", type=click.IntRange(0), default=20, show_default=True, help="Changed cases to print.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (it is also off when stderr is not a terminal).")
@click.option("--fail-on-change", is_flag=True, help="Exit with status 1 if any reply changed (for CI).")
def replay(source, rules_file, commands, since, until, user, include_rejected, url, token, app_id, rate,
           concurrency, timeout, json_out, html_out, save_to, show, quiet, fail_on_change):
    """Replay recorded callbacks (SOURCE: a recordings .sqlite or a .jsonl file) and compare the replies."""
    from . import replay as engine
    from .sources import open_source

    if url and (rules_file or save_to):
        raise click.UsageError("--rules and --save need offline replay; over HTTP the receiver's rules decide")
    records = open_source(source, _filters(commands, since, until, user))
    started = time.perf_counter()
    with ExitStack() as stack:
        if url:
            runner = _http_runner(url, token, app_id, timeout, rate)
        else:
            save = None
            if save_to:
                from .record import dumps

                baseline = stack.enter_context(click.open_file(save_to, "w", encoding="utf-8"))
                save = lambda record: baseline.write(dumps(record) + "\n")  # noqa: E731
            runner, concurrency = engine.OfflineReplay(engine.build_receiver(rules_file), save=save), 1
        stack.callback(runner.close)
        bar = stack.enter_context(_progress(records.count(), quiet, "replay"))
        summary = engine.run(records, runner, include_rejected=include_rejected, concurrency=concurrency,
                             progress=bar.update)
    _write_outputs(summary, dict(source=str(source), target=runner.target, mode=runner.mode),
                   elapsed=time.perf_counter() - started, json_out=json_out, html_out=html_out, show=show)
    sys.exit(1 if fail_on_change and summary.counts["changed"] else 0)


def _http_runner(url, token, app_id, timeout, rate):
    from ..config import resolve_tokens
    from ..tencent.platform import TencentPlatform
    from .replay import HttpReplay

    auth = {"token_env": "IMHOOK_TOKEN", "token_file_env": "IMHOOK_TOKEN_FILE", "token_file": None}
    token = token or next(iter(resolve_tokens(auth, dict(os.environ), Path.cwd())), None)
    return HttpReplay(url, app_id=app_id or os.environ.get("IMHOOK_APP_ID"), token=token, timeout=timeout,
                      rate=rate, before_commands=TencentPlatform.before_commands)


def _write_outputs(summary, meta: dict, *, elapsed: float, json_out, html_out, show: int) -> None:
    from .report import render_json, render_text

    text_to = sys.stderr if json_out == "-" else sys.stdout  # `--json -` keeps stdout pure JSON
    click.echo(render_text(summary, show=show, **meta), file=text_to)
    rate = summary.total / elapsed if elapsed else 0
    click.echo(f"\n{summary.total} in {elapsed:.2f} s ({rate:,.0f}/s)", file=text_to)
    if json_out == "-":
        click.echo(render_json(summary, **meta))
    elif json_out:
        Path(json_out).write_text(render_json(summary, **meta) + "\n", encoding="utf-8")
    if html_out:
        from .html_report import render_html

        Path(html_out).write_text(render_html(summary, **meta), encoding="utf-8")


@click.group()
def recordings() -> None:
    """Export, import and inspect recorded callbacks."""


def _report_problems(problems, what: str) -> None:
    for problem in problems[:50]:
        click.echo(f"  skipped {problem.where}: {problem.why}", err=True)
    if len(problems) > 50:
        click.echo(f"  ... and {len(problems) - 50} more", err=True)
    if problems:
        click.echo(f"{len(problems)} {what} skipped", err=True)


@recordings.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
@_filter_options
@click.option("--rejected/--no-rejected", default=True, show_default=True, help="Include rejected requests.")
def export_command(file, db, commands, since, until, user, rejected):
    """Write recordings to FILE as JSON Lines ('-': stdout), one record per line."""
    from .sources import export_jsonl, open_source

    source = open_source(_db_path(db), _filters(commands, since, until, user, rejected))
    if not source.is_sqlite:
        raise click.UsageError(f"{source.path} is not a SQLite recordings database")
    with click.open_file(file, "w", encoding="utf-8") as out:
        written, problems = export_jsonl(source, out)
    _report_problems(problems, "corrupt records")
    click.echo(f"exported {written} records to {file}", err=True)


@recordings.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
def import_command(file, db):
    """Add the records of a JSON Lines FILE to the database."""
    from .sources import import_records, read_jsonl

    target = _db_path(db)
    with open(file, encoding="utf-8", errors="replace") as f:
        imported, problems = import_records(read_jsonl(f, Path(file).name), target)
    _report_problems(problems, "lines")
    click.echo(f"imported {imported} records into {target}")


@recordings.command("import-samples")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
@click.option("--app-id", default=None, help="SdkAppid to record them under (default: $IMHOOK_APP_ID, else 0).")
def import_samples_command(folder, db, app_id):
    """Add every callback body in FOLDER (*.json; *.response*.json ignored) as a record without a reply."""
    from .sources import import_records, sample_records

    target = _db_path(db)
    records = sample_records(folder, app_id=app_id or os.environ.get("IMHOOK_APP_ID") or "0")
    imported, problems = import_records(records, target)
    _report_problems(problems, "files")
    click.echo(f"imported {imported} samples into {target}")


@recordings.command("stats")
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
def stats_command(db):
    """Count records per command and outcome."""
    from .store import Store

    store = Store(_db_path(db), create=False)
    try:
        rows = store.summary()
    finally:
        store.close()
    width = max([len(r[0]) for r in rows] + [7])
    for command, outcome, count in rows:
        click.echo(f"{command:<{width}}  {outcome or '(no reply)':<12} {count:>9}")
    click.echo(f"{'total':<{width}}  {'':<12} {sum(r[2] for r in rows):>9}")


@recordings.command("prune")
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
@click.option("--days", type=click.FloatRange(min=0), required=True, help="Delete records older than this.")
def prune_command(db, days):
    """Delete old records now (the server also does it every hour, per recording.retention_days)."""
    from .store import Store

    store = Store(_db_path(db), create=False)
    try:
        deleted = store.delete_older_than(time.time() - days * 86400)
    finally:
        store.close()
    click.echo(f"deleted {deleted} records older than {days:g} days")


@recordings.command("hash-id")
@click.argument("account")
def hash_id_command(account):
    """Print ACCOUNT as recorded with hash_user_ids (for --user), using the configured salt."""
    from ..config import load_config
    from .privacy import Policy

    settings = {**load_config(None, require_app_id=False).recording, "hash_user_ids": True}
    click.echo(Policy.from_settings(settings, os.environ).user(account))


# --- imhook recordings quarantine (self-contained: receiver/recording/quarantine.py) -----------------


@recordings.command("quarantine")
@click.option("--db", default=None, help="Recordings database (default: recording.path of the config).")
@click.option("--outbox", "outbox_path", default=None, type=click.Path(dir_okay=False),
              help="Also the forwarding outbox: its quarantine file and its quarantined rows.")
@click.option("--import", "reimport", is_flag=True,
              help="Store (enqueue) what can be stored now; what still fails stays, with its new error.")
def quarantine_command(db, outbox_path, reimport):
    """List what the writer or the sender set aside (records the store refused, damaged journal lines,
    events the outbox could not take); with --import, store it now."""
    from .quarantine import Quarantine, path_for

    quarantine = Quarantine(path_for(_db_path(db)))
    if reimport:
        from .store import Store

        store = Store(_db_path(db))
        try:
            stored, kept = quarantine.reimport(lambda record, key: store.insert([record], [key]))
        finally:
            store.close()
        click.echo(f"{quarantine.path}: {stored} records stored, {len(kept)} kept")
        _echo_entries(kept)
    else:
        entries = quarantine.entries()
        click.echo(f"{quarantine.path}: {len(entries)} quarantined")
        _echo_entries(entries)
    if outbox_path:
        _outbox_quarantine(Path(outbox_path), reimport)


def _echo_entries(entries) -> None:
    for entry in entries:
        click.echo("  " + entry.summary)


def _outbox_quarantine(path: Path, reimport: bool) -> None:
    from ..ops.forward.observer import requeue
    from ..ops.forward.outbox import Outbox, quarantine_path
    from .quarantine import Quarantine

    if not path.exists():
        raise click.UsageError(f"no outbox at {path}")
    outbox, events = Outbox(path), Quarantine(quarantine_path(path))
    try:
        if reimport:
            stored, kept = events.reimport(lambda entry: requeue(outbox, entry), read=lambda data: (data,))
            released = outbox.release_quarantined()
            click.echo(f"{events.path}: {stored} events enqueued, {len(kept)} kept")
            _echo_entries(kept)
            click.echo(f"{path}: {released} quarantined rows pending again")
            return
        entries = events.entries()
        click.echo(f"{events.path}: {len(entries)} quarantined")
        _echo_entries(entries)
        rows = outbox.quarantined()
        click.echo(f"{path}: {len(rows)} quarantined rows")
        for row_id, target, command, error, _created in rows:
            click.echo(f"  row {row_id} {command} to {target}: {error}")
    finally:
        outbox.close()


def register(group: click.Group) -> None:
    group.add_command(replay)
    group.add_command(recordings)
