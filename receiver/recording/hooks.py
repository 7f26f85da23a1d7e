"""gunicorn hooks (called by receiver/gunicorn_conf.py): drain the recorders when a worker exits."""

from __future__ import annotations

import logging

from . import writer

log = logging.getLogger("imhook.recording")


def migrate_before_workers(config, env=None) -> str | None:
    """Master, before any worker starts: bring a SQLite recordings file to this imhook's schema once.
    Else every worker tries at the same moment, and while one migrates a big file (schema 4 sorts
    its users, ~1 s a million rows) the others wait on its lock. Returns what it did, for the
    master's log (imhook's own loggers are set up in the workers); raises ConfigError as Store does."""
    import os
    import time

    from ..errors import ConfigError
    from .locations import store_url
    from .store import SCHEMA_VERSION, Store

    settings = config.sections.get("recording")
    if not settings or not settings["enabled"] or store_url(settings, os.environ if env is None else env):
        return None
    path = settings["path"]
    started = time.monotonic()
    try:
        store = Store(path)
    except ConfigError as exc:  # say which setting names the file (the default one's when unset)
        raise ConfigError(exc.detail, file=config.file, path="recording.path",
                          line=config.document.line_of(("recording", "path"))) from None
    store.close()
    if store.migrated_from is None:
        return None
    return (f"recording: {path} brought from schema {store.migrated_from} to {SCHEMA_VERSION} "
            f"in {time.monotonic() - started:.1f} s")


def post_fork(server, worker) -> None:
    # Only matters with a preloaded app: threads, SQLite connections and the journal's files are
    # the parent's, not the worker's.
    for recorder in list(writer.ACTIVE):
        recorder.after_fork()


def worker_exit(server, worker) -> None:
    """The worker has stopped taking requests: everything it answered gets written now."""
    for recorder in list(writer.ACTIVE):
        drained = recorder.close()
        counts = recorder.stats()
        log.info("recording: worker %s wrote %d records (%d overflowed, %d of them kept by the journal; "
                 "%d failed; %d recovered from dead workers' journals)%s", worker.pid, counts["written_total"],
                 counts["overflow_total"], counts["journal_spilled_total"], counts["failed_total"],
                 counts["journal_recovered_total"], "" if drained else "; the queue was NOT fully drained")
