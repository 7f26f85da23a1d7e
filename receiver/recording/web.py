"""Attach the recorder to a serving receiver (called by receiver/app.py for each worker)."""

from __future__ import annotations

import atexit
import logging

from .writer import Recorder

log = logging.getLogger("imhook.recording")


def install(app, receiver) -> Recorder | None:
    """Record every callback `receiver` handles, if `recording.enabled`.

    The recording section is read once here: a config reload changes rules, not where or how
    callbacks are recorded (that needs a restart).
    """
    settings = receiver.config.sections.get("recording")
    if not settings or not settings["enabled"]:
        return None
    recorder = Recorder.from_settings(settings)
    receiver.observers.append(recorder)
    app.extensions["imhook.recorder"] = recorder
    # gunicorn's worker_exit hook drains first; atexit covers other servers (flask run, tests).
    atexit.register(recorder.close)
    where = recorder.where if recorder.store_url else recorder.path.resolve()  # a URL's password masked
    if recorder.journal is not None:
        log.info("recording callbacks to %s (journal in %s)", where, recorder.journal_dir.resolve())
    else:
        log.info("recording callbacks to %s (no journal: a killed worker loses what it had queued)", where)
    return recorder
