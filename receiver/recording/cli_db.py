"""`imhook db upgrade`: the schema of the PostgreSQL recordings database (receiver/recording/pgschema.py)."""

from __future__ import annotations

import click

from ..cli_common import config_option
from ..errors import ImhookError


@click.group()
def db() -> None:
    """The PostgreSQL recordings database: its schema."""


@db.command("upgrade")
@config_option()
@click.option("--db", "url", default=None, metavar="URL",
              help="A postgresql:// URL: recording.store, store_env or store_file, else the forwarding outbox's "
                   "[default: the config's recording store, else its outbox URL].")
def db_upgrade_command(config_file, url):
    """Bring the PostgreSQL recordings database to this imhook's schema version (safe to run again)."""
    from ..config import load_config
    from . import pgschema
    from .locations import store_url
    from .pgstore import connect, is_url, mask

    if url is None:
        from ..ops.forward.pgoutbox import outbox_url

        config = load_config(config_file, require_app_id=False)
        # The recordings database, else the forwarding outbox's (one migration list for both).
        url = store_url(config.recording) or outbox_url(config.sections.get("forwarding") or {})
    if not is_url(url):
        raise click.UsageError("no PostgreSQL store: set recording.store (or $IMHOOK_RECORDING_DSN, or "
                               "recording.store_file) or forwarding.outbox (or $IMHOOK_OUTBOX_DSN) to a "
                               "postgresql:// URL, or pass --db URL; a SQLite recording upgrades itself")
    conn = connect(url)
    try:
        before = pgschema.applied_version(conn)
        conn.rollback()
        if before > pgschema.SCHEMA_VERSION:
            raise ImhookError(pgschema.problem(before, mask(url)))
        applied = pgschema.upgrade(conn)
    finally:
        conn.close()
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    click.echo(f"{mask(url)}: schema version {pgschema.SCHEMA_VERSION}"
               + (f" (was {before})" if applied else " (already up to date)"))
