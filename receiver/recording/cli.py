"""`imhook replay` and `imhook recordings export|import|import-samples|stats|prune|copy|...`.

Wherever a recordings database is named (--db, SOURCE, SRC, DST), a postgresql:// URL names the
PostgreSQL store (receiver/recording/pgstore.py); it is shown with its password masked.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import click

from ..cli_common import check_writable, checked_url, config_option
from ..errors import ImhookError
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


DB_HELP = ("Recordings database: a SQLite file or a postgresql:// URL [default: the config's recording.store, "
           "else recording.path].")
MIN_RATE = 0.01  # --rate: one request per 100 s; slower is a typo, and 1e-300 would sleep forever


def _recording_settings(config_file: str | None) -> dict:
    from ..config import load_config

    return load_config(config_file, require_app_id=False).recording


def _db_path(db: str | None, config_file: str | None = None) -> Path | str:
    """--db, else the config's store (--config, $IMHOOK_CONFIG or the bundled default): its
    PostgreSQL URL (recording.store, store_env, store_file), else recording.path."""
    from .locations import store_url
    from .pgstore import is_url

    if db:
        return db if is_url(db) else Path(db)
    settings = _recording_settings(config_file)
    return store_url(settings) or Path(settings["path"])


def _existing_db(db: str | None, config_file: str | None) -> Path | str:
    """The database to read; a missing one is named with where its path came from and what to do."""
    path = _db_path(db, config_file)
    if isinstance(path, str) or path.is_file():  # a URL: connecting says whether it is there
        return path
    if db:
        origin, fix = "--db", "check the path"
    else:
        from ..config import config_path

        config = config_file or config_path()
        origin = f"recording.path of {config}"
        fix = ("nothing has been recorded with this config yet (imhook serve records there), or pass "
               "--config FILE / --db FILE")
    what = "a folder, not a file" if path.is_dir() else "no such file"
    raise ImhookError(f"no recordings database at {path} ({origin}: {what}); {fix}")


def _progress(total: int, quiet: bool, desc: str):
    from tqdm import tqdm

    # On a terminal only: a CI log fills with carriage-return redraws otherwise.
    return tqdm(total=total, desc=desc, unit="cb", file=sys.stderr, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())


def _source_argument(ctx, param, value: str) -> str:
    """SOURCE: a postgresql:// URL, or a file that exists."""
    from .pgstore import is_url

    if is_url(value) or Path(value).is_file():
        return value
    raise click.BadParameter(f"{value!r} is neither a file nor a postgresql:// URL", ctx=ctx, param=param)


@click.command()
@click.argument("source", callback=_source_argument)
@config_option(alias="--rules",
               help="Config file with the rules to test (default: $IMHOOK_CONFIG, else the bundled default).")
@_filter_options
@click.option("--include-rejected", is_flag=True, help="Replay rejected requests too (skipped by default).")
@click.option("--url", default=None, callback=checked_url,
              help="Post each recording to this running receiver instead of replaying offline.")
@click.option("--token", default=None, help="With --url: sign with this token (default: $IMHOOK_TOKEN).")
@click.option("--app-id", default=None,
              help="With --url: SdkAppid to send (default: $IMHOOK_APP_ID, else as recorded).")
@click.option("--rate", type=click.FloatRange(min=MIN_RATE), default=None,
              help="With --url: at most this many requests per second.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="With --url: requests in flight at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="With --url: seconds per request.")
@click.option("--json", "json_out", default=None, metavar="FILE", help="Also write the result as JSON ('-': stdout).")
@click.option("--html", "html_out", metavar="FILE", default=None, help="Also write a self-contained HTML report.")
@click.option("--save", "save_to", metavar="FILE", default=None,
              help="Offline: write every replayed record with its new reply as JSON Lines (a new baseline).")
@click.option("--show", type=click.IntRange(0), default=20, show_default=True, help="Changed cases to print.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (it is also off when stderr is not a terminal).")
@click.option("--fail-on-change", is_flag=True, help="Exit with status 1 if any reply changed (for CI).")
def replay(source, config_file, commands, since, until, user, include_rejected, url, token, app_id, rate,
           concurrency, timeout, json_out, html_out, save_to, show, quiet, fail_on_change):
    """Replay recorded callbacks (SOURCE: a recordings .sqlite, a .jsonl file or a postgresql:// URL) and
    compare the replies.

    Exits 0 when the replay ran, 1 when a decision changed (with --fail-on-change), 2 on a usage or
    config error, 3 when nothing was tested (0 records selected, records errored, the receiver
    unreachable or turning every request away).
    """
    from . import replay as engine
    from .sources import open_source

    ctx = click.get_current_context()
    explicit_config = ctx.get_parameter_source("config_file") is click.core.ParameterSource.COMMANDLINE
    if url and (explicit_config or save_to):
        raise click.UsageError("--config/--rules and --save need offline replay; over HTTP the receiver's rules decide")
    for path, option in ((json_out, "--json"), (html_out, "--html"), (save_to, "--save")):
        check_writable(path, option)  # before the replay, not after it ran for minutes
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
            runner, concurrency = engine.OfflineReplay(engine.build_receiver(config_file), save=save), 1
        stack.callback(runner.close)
        bar = stack.enter_context(_progress(records.count(), quiet, "replay"))
        summary = engine.run(records, runner, include_rejected=include_rejected, concurrency=concurrency,
                             progress=bar.update)
    _write_outputs(summary, dict(source=str(records), target=runner.target, mode=runner.mode),
                   elapsed=time.perf_counter() - started, json_out=json_out, html_out=html_out, show=show)
    code, why = engine.exit_status(summary, runner, fail_on_change=fail_on_change,
                                   selection_hint=_selection_hint(commands, since, until, user))
    if why:
        click.echo(f"imhook: {why}", err=True)
    sys.exit(code)


def _selection_hint(commands, since, until, user) -> str:
    """What may have selected nothing: a command name imhook does not know, or the filters used."""
    from ..platforms import Platforms

    unknown = [c for c in commands if c not in Platforms().commands]
    if unknown:
        return (f"; {', '.join(map(repr, unknown))} is not a known CallbackCommand (names look like "
                "C2C.CallbackBeforeSendMsg)")
    used = [name for name, value in (("--command", commands), ("--since", since), ("--until", until),
                                     ("--user", user)) if value]
    return f"; check {', '.join(used)}" if used else "; the source holds no records"


def _http_runner(url, token, app_id, timeout, rate):
    from ..config import is_app_id, resolve_tokens
    from ..tencent.platform import TencentPlatform
    from .replay import HttpReplay

    app_id = app_id or os.environ.get("IMHOOK_APP_ID")
    if app_id and not is_app_id(app_id):
        raise click.UsageError(f"--app-id / $IMHOOK_APP_ID {app_id!r} is not an SdkAppid (a whole number)")

    auth = {"token_env": "IMHOOK_TOKEN", "token_file_env": "IMHOOK_TOKEN_FILE", "token_file": None}
    token = token or next(iter(resolve_tokens(auth, dict(os.environ))), None)
    # NetEase records are re-signed with the receiver's NetEase AppKey and the first of its secrets.
    secret = next(iter((os.environ.get("IMHOOK_NETEASE_APP_SECRET") or "").split(",")), "").strip() or None
    return HttpReplay(url, app_id=app_id, token=token, timeout=timeout,
                      rate=rate, before_commands=TencentPlatform.before_commands,
                      netease_key=os.environ.get("IMHOOK_NETEASE_APP_KEY") or None, netease_secret=secret)


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
@click.argument("file")
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
@_filter_options
@click.option("--rejected/--no-rejected", default=True, show_default=True, help="Include rejected requests.")
def export_command(file, db, config_file, commands, since, until, user, rejected):
    """Write recordings to FILE as JSON Lines ('-': stdout), one record per line."""
    from .sources import export_jsonl, open_source

    check_writable(file, "FILE")
    source = open_source(_existing_db(db, config_file), _filters(commands, since, until, user, rejected))
    if not source.is_store:
        raise click.UsageError(f"{source.path} is not a SQLite recordings database (nor a postgresql:// URL)")
    with click.open_file(file, "w", encoding="utf-8") as out:
        written, problems = export_jsonl(source, out)
    _report_problems(problems, "corrupt records")
    click.echo(f"exported {written} records to {file}", err=True)


@recordings.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
def import_command(file, db, config_file):
    """Add the records of a JSON Lines FILE to the database; records already there are skipped.

    A record is already there when one with the same content (everything but its id) was imported
    before, so importing a file twice adds its records once.
    """
    from .sources import import_records, read_jsonl

    target = _db_path(db, config_file)
    with open(file, encoding="utf-8", errors="replace") as f:
        result = import_records(read_jsonl(f, Path(file).name), target)
    _report_problems(result.problems, "lines")
    click.echo(f"imported {result.imported} records into {_shown(target)}, skipped {result.skipped} already present")


@recordings.command("import-samples")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
@click.option("--app-id", default=None, help="SdkAppid to record them under (default: $IMHOOK_APP_ID, else 0).")
def import_samples_command(folder, db, config_file, app_id):
    """Add every callback body in FOLDER (*.json; *.response*.json ignored) as a record without a reply."""
    from .sources import import_records, sample_records

    target = _db_path(db, config_file)
    records = sample_records(folder, app_id=app_id or os.environ.get("IMHOOK_APP_ID") or "0")
    result = import_records(records, target)
    _report_problems(result.problems, "files")
    click.echo(f"imported {result.imported} samples into {_shown(target)}")


@recordings.command("stats")
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
def stats_command(db, config_file):
    """Count records per command and outcome."""
    from .sources import open_store

    store = open_store(_existing_db(db, config_file))
    try:
        rows = store.summary()
    finally:
        store.close()
    width = max([len(r[0]) for r in rows] + [7])
    for command, outcome, count in rows:
        click.echo(f"{command:<{width}}  {outcome or '(no reply)':<12} {count:>9}")
    click.echo(f"{'total':<{width}}  {'':<12} {sum(r[2] for r in rows):>9}")


@recordings.command("prune")
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
@click.option("--days", type=click.FloatRange(min=0), required=True,
              help="Delete records older than this many days; 0 keeps everything, as retention_days: 0 does.")
def prune_command(db, config_file, days):
    """Delete old records now (the server also does it every hour, per recording.retention_days).

    --days 0 deletes nothing: it means "keep everything", as recording.retention_days: 0 does.
    """
    from .report import when
    from .sources import open_store

    path = _existing_db(db, config_file)
    store = open_store(path)
    path = _shown(path)
    try:
        if not days:  # the same meaning as retention_days: 0, so one number never means both
            click.echo(f"--days 0 keeps everything (as recording.retention_days: 0 does): nothing deleted; "
                       f"{store.count()} records in {path}")
            return
        cutoff = time.time() - days * 86400
        deleted = store.delete_older_than(cutoff)
        remaining = store.count()
    finally:
        store.close()
    click.echo(f"deleted {deleted} records older than {days:g} days (received before {when(cutoff)}) "
               f"from {path}; {remaining} remain")


@recordings.command("hash-id")
@click.argument("account")
@config_option()
def hash_id_command(account, config_file):
    """Print ACCOUNT as recorded with hash_user_ids (for --user), using the configured salt."""
    from ..config import load_config
    from .privacy import Policy

    settings = {**load_config(config_file, require_app_id=False).recording, "hash_user_ids": True}
    click.echo(Policy.from_settings(settings, os.environ).user(account))


# --- imhook recordings quarantine (self-contained: receiver/recording/quarantine.py) -----------------


@recordings.command("quarantine")
@click.option("--db", default=None, metavar="FILE", help=DB_HELP)
@config_option()
@click.option("--outbox", "outbox_path", default=None, metavar="FILE|URL",
              help="Also the forwarding outbox: a SQLite outbox or spool file (its quarantine file and quarantined "
                   "rows), or a postgresql:// URL (the rows every instance's senders set aside).")
@click.option("--import", "reimport", is_flag=True,
              help="Store (enqueue) what can be stored now; what still fails stays, with its new error.")
def quarantine_command(db, config_file, outbox_path, reimport):
    """List what the writer or the sender set aside (records the store refused, damaged journal lines,
    events the outbox could not take); with --import, store it now."""
    from .quarantine import Quarantine

    quarantine = Quarantine(_quarantine_path(db, config_file))
    if reimport and quarantine.path.exists():
        from .sources import open_store

        store = open_store(_existing_db(db, config_file), create=True)
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
        from ..ops.forward.quarantine_cli import outbox_quarantine

        outbox_quarantine(outbox_path, reimport)


def _quarantine_path(db: str | None, config_file: str | None) -> Path:
    """Beside the SQLite file; with PostgreSQL beside the journal folder of the config."""
    from .locations import journal_dir, quarantine_path
    from .pgstore import is_url

    spec = _db_path(db, config_file)
    if not is_url(str(spec)):
        return quarantine_path(spec, None, None)
    settings = _recording_settings(config_file)
    return quarantine_path(settings["path"], str(spec), journal_dir(settings, str(spec)))


def _shown(spec) -> str:
    from .sources import describe

    return describe(spec)


def _echo_entries(entries) -> None:
    for entry in entries:
        click.echo("  " + entry.summary)


@recordings.command("copy")
@click.argument("src")
@click.argument("dst")
@_filter_options
def copy_command(src, dst, commands, since, until, user):
    """Copy records from SRC to DST: each a SQLite file, a .jsonl file or a postgresql:// URL.

    Into a database, records already there (same content) are skipped, so copying twice stores
    them once; a .jsonl DST is written anew. Filters are applied in SRC's database.
    """
    from .pgstore import is_url
    from .sources import copy_records, describe, open_source

    if not is_url(dst):
        check_writable(dst, "DST")
    if not is_url(src) and not Path(src).is_file():
        raise click.UsageError(f"SRC {src}: no such file (give a SQLite file, a .jsonl file or a postgresql:// URL)")
    source = open_source(src, _filters(commands, since, until, user))
    result = copy_records(source, dst)
    _report_problems(result.problems, "records")
    click.echo(f"copied {result.imported} records from {describe(src)} to {describe(dst)}"
               + (f", skipped {result.skipped} already present" if result.skipped else ""))


def register(group: click.Group) -> None:
    group.add_command(replay)
    group.add_command(recordings)
    from .cli_db import db

    group.add_command(db)
