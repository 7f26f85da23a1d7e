"""`imhook recordings quarantine --outbox FILE|URL`: what the forwarding side set aside.

A SQLite outbox (or an instance's spool, forwarding.spool) has two kinds: events the outbox could
not take (`<outbox>.quarantine.jsonl`) and rows its sender set aside (status `quarantined`). A
PostgreSQL outbox has the second kind, for every instance; the first stays in each instance's spool
folder (`--outbox <spool>`).
"""

from __future__ import annotations

from pathlib import Path

import click

from ...recording.pgstore import is_url, mask
from ...recording.quarantine import Quarantine
from . import pgoutbox
from .observer import requeue
from .outbox import Outbox, quarantine_path


def outbox_quarantine(spec: str, reimport: bool) -> None:
    """A SQLite outbox (or an instance's spool): its quarantine file and rows. A PostgreSQL outbox
    (a URL): the rows every instance's senders set aside."""
    if is_url(spec):
        rows = [] if reimport else pgoutbox.quarantined_rows(spec)
        released = pgoutbox.release_quarantined(spec) if reimport else None
        _echo_rows(mask(spec), rows, released)
        return
    path = Path(spec)
    if not path.exists():
        raise click.UsageError(f"no outbox at {path}")
    outbox, events = Outbox(path), Quarantine(quarantine_path(path))
    try:
        if reimport:
            stored, kept = events.reimport(lambda entry: requeue(outbox, entry), read=lambda data: (data,))
            click.echo(f"{events.path}: {stored} events enqueued, {len(kept)} kept")
            _echo_entries(kept)
            _echo_rows(str(path), [], outbox.release_quarantined())
            return
        entries = events.entries()
        click.echo(f"{events.path}: {len(entries)} quarantined")
        _echo_entries(entries)
        _echo_rows(str(path), outbox.quarantined(), None)
    finally:
        outbox.close()


def _echo_rows(where: str, rows, released: int | None) -> None:
    if released is not None:
        click.echo(f"{where}: {released} quarantined rows pending again")
        return
    click.echo(f"{where}: {len(rows)} quarantined rows")
    for row_id, target, command, error, _created in rows:
        click.echo(f"  row {row_id} {command} to {target}: {error}")


def _echo_entries(entries) -> None:
    for entry in entries:
        click.echo("  " + entry.summary)
