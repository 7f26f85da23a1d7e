"""Experiment only (a proposal, not part of imhook): a gthread worker that sheds load.

A request that waited in the worker's queue longer than $IMHOOK_SHED_AFTER_MS (default 50 ms) is
answered at once with the OK envelope, without running the app: for a before-callback that is "let
it through", what the IM itself does when a callback times out or fails (PROTOCOL.md §2), only
2 s sooner. The answer costs gunicorn's parsing and one write, a fraction of a full imhook reply, so
the worker keeps up with far more than its saturation rate and every reply leaves in time.

    gunicorn --config python:receiver.gunicorn_conf \
        --worker-class benchmarks.configs.shedding_worker.SheddingWorker
"""

from __future__ import annotations

import os
import time

from gunicorn.workers.gthread import ThreadWorker

SHED_AFTER = float(os.environ.get("IMHOOK_SHED_AFTER_MS", "50")) / 1000
BODY = b'{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}'
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
SHED_PATHS = ("/", "/callback")


class SheddingWorker(ThreadWorker):
    """gthread, plus: note when a connection's request was queued; answer stale ones at once."""

    shed = 0

    def enqueue_req(self, conn) -> None:
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        waited = time.monotonic() - getattr(conn, "queued_at", time.monotonic())
        if waited > SHED_AFTER and req.path in SHED_PATHS:
            SheddingWorker.shed += 1
            conn.sock.sendall(REPLY)  # gthread drains the unread body before reusing the connection
            return True
        return super().handle_request(req, conn)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.log.warning("shedding worker %s: %d requests answered without the app", self.pid,
                             SheddingWorker.shed)
