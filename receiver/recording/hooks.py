"""gunicorn hooks (called by receiver/gunicorn_conf.py): drain the recorders when a worker exits."""

from __future__ import annotations

import logging

from . import writer

log = logging.getLogger("imhook.recording")


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
