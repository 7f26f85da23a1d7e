"""Attach operations to the Flask app: /metrics, /readyz, observers, IP allow-list, the forwarder."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from flask import Flask, Response

from ..edge import loggable
from . import ipallow, logs
from .readiness import Readiness, chain_checks

log = logging.getLogger("imhook.ops")
# Other parts may add readiness checks here: app.extensions[READY_CHECKS][name] = callable that
# returns None when fine, else a short reason.
READY_CHECKS = "imhook.ready_checks"
# The callback view asks this first: a Response to send instead (the allow-list's 403), or None.
CALLBACK_GATE = "imhook.callback_gate"


def install(app: Flask, receiver) -> None:
    """Called by receiver.app.create_app for every app (i.e. once per gunicorn worker)."""
    config = receiver.config
    logs.setup_logging(config.logging)
    metrics = _metrics_module() if config.metrics["enabled"] else None
    checks = app.extensions.setdefault(READY_CHECKS, {})
    recorder = app.extensions.get("imhook.recorder")  # set by receiver.recording.web, if enabled
    if recorder is not None:
        # supervise(): restarts a dead writer, and says why when records have stopped draining.
        # With PostgreSQL (recording.store) no probe here: a database down shows as records not draining.
        checks.setdefault("recording", lambda: recorder.supervise() or (
            _sqlite_writable(recorder.path) if recorder.store_url is None else None))
    _install_allow_list(app, receiver, on_refuse=metrics.IP_REJECTED.inc if metrics else None)
    forwarder = _install_forwarding(app, receiver, checks, stats=metrics.ForwardStats() if metrics else None)
    if metrics is not None:
        _install_metrics(app, receiver, metrics, forwarder)
    receiver.observers.append(lambda outcome: logs.log_callback(
        outcome, log_text=receiver.config.server["log_text"]))
    readiness = Readiness()

    @app.get("/readyz")
    def readyz():
        from receiver.app import json_response

        report = readiness.run({**chain_checks(receiver.chain), **checks})
        return json_response(200 if report.ready else 503, report.to_json())


def _metrics_module():
    from . import metrics  # imported here, in the worker: see metrics.py on multiprocess mode

    return metrics


def _install_allow_list(app: Flask, receiver, on_refuse=None) -> None:
    try:
        ipallow.parse_networks(tuple(receiver.config.server["allow_ips"]))
    except ValueError as exc:
        from receiver.errors import ConfigError

        raise ConfigError(f"not an IP address or CIDR: {exc}", path="server.allow_ips") from None

    def allow_list(environ) -> Response | None:
        """The allow-list's answer to a callback request (403), or None to let it in. Called by
        the callback view itself (receiver/app.py), not as a before_request hook: the other
        endpoints are the operator's, and Flask's hook machinery cost every callback ~1 %."""
        server = receiver.config.server  # read per request: a reload may change it
        if not server["allow_ips"]:
            return None  # the common case first: no list, nothing to look up
        refused = ipallow.check(environ.get("REMOTE_ADDR") or "", environ.get("HTTP_X_FORWARDED_FOR"),
                                allow=tuple(server["allow_ips"]), trusted_proxies=server["trusted_proxies"])
        if refused is None:
            return None
        from receiver.app import json_response

        # The address may come from X-Forwarded-For, which the client writes: cut before it is logged.
        log.warning("callback refused by server.allow_ips", extra={"client": loggable(refused)})
        if on_refuse is not None:
            on_refuse()
        return json_response(403, receiver.platform.render_error(403, "client address not allowed"))

    app.extensions[CALLBACK_GATE] = allow_list


def _install_forwarding(app: Flask, receiver, checks: dict, stats=None):
    """Open the outbox and start its sender when targets are configured; None otherwise."""
    settings = receiver.config.forwarding
    if not settings["targets"]:
        return None
    from .forward.events import resolve_targets
    from .forward.observer import Enqueuer
    from .forward.outbox import Outbox
    from .forward.sender import RUNNING, Forwarder

    from .forward.pgoutbox import PgOutbox, outbox_url

    targets = resolve_targets(settings["targets"], os.environ)
    url = outbox_url(settings)
    if url is None:
        outbox = Outbox(_resolve(receiver.config.base_dir, settings["outbox"]))
        problem = lambda: _sqlite_writable(outbox.path)  # noqa: E731
    else:  # one outbox for every instance; this instance's spool holds what the database cannot take now
        spool = Outbox(_resolve(receiver.config.base_dir, settings["spool"]))
        outbox = PgOutbox(url, spool, lease_seconds=settings["lease_seconds"],
                          settle_seconds=settings["settle_seconds"], stats=stats)
        problem = outbox.problem
    forwarder = Forwarder(outbox, targets, settings, stats=stats).start()
    RUNNING.append(forwarder)
    receiver.observers.append(Enqueuer(outbox, targets, wake=forwarder.wake, stats=stats,
                                       before_commands=receiver.platform.before_commands))
    checks["outbox"] = lambda: forwarder.supervise() or problem()
    app.extensions["imhook.forwarder"] = forwarder
    return forwarder


def _install_metrics(app: Flask, receiver, metrics, forwarder) -> None:
    known = frozenset(receiver.platform.commands)
    # The recording part is always installed (receiver/parts.py); its counters are mirrored at
    # every flush of the metrics, not per request.
    from receiver import recording

    metrics.track_recording(recording.stats)

    def observe(outcome) -> None:
        metrics.observe(outcome, known)

    receiver.observers.append(observe)
    scraped = []
    if forwarder is not None:
        scraped.append(metrics.BacklogCollector(forwarder.outbox.backlog, forwarder.targets))

    @app.get("/metrics")
    def metrics_view():
        body, content_type = metrics.render(scraped)
        return Response(body, status=200, content_type=content_type)


def _sqlite_writable(path: Path) -> str | None:
    """Can a write transaction start on this SQLite file now? (own connection, nothing written)"""
    try:
        db = sqlite3.connect(path, timeout=1.0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"{path} not writable: {exc}"
    return None


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base_dir) / p
