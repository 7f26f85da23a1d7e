"""Structured JSON logs: one line per callback, and every imhook log record as JSON.

Message texts appear only with `server.log_text: true`; the query string (which carries `Sign`)
and tokens are never logged at all.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

CALLBACK_LOGGER = "imhook.callback"
_HANDLER_MARK = "_imhook_json_handler"
# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):
    """Write to whatever sys.stderr is at emit time (it may be replaced after set-up, e.g. by tests)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property always reads sys.stderr
        pass


def setup_logging(settings: dict, stream=None) -> None:
    """Send the `imhook` logger tree to stderr as JSON at the configured level (idempotent)."""
    logger = logging.getLogger("imhook")
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
    if not settings["enabled"]:
        logging.getLogger(CALLBACK_LOGGER).disabled = True
        return
    logging.getLogger(CALLBACK_LOGGER).disabled = not settings["callbacks"]
    handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)
    logger.setLevel(settings["level"].upper())


def callback_fields(outcome, *, log_text: bool = False) -> dict[str, Any]:
    """The fields of the one log line about a handled request (an Outcome from receiver.core)."""
    fields: dict[str, Any] = {
        "request_id": outcome.request.request_id,
        "command": outcome.command[:100],
        "app_id": outcome.callback.app_id if outcome.callback else str(outcome.request.query.get("SdkAppid", ""))[:32],
        "outcome": outcome.outcome_name,
        "rule": outcome.decision.verdict.rule if outcome.decision and outcome.decision.trace else "",
        "latency_ms": round(outcome.elapsed_ms, 3),
        "status": outcome.status,
        "remote_addr": outcome.request.remote_addr,
    }
    if outcome.error is not None:
        # Error messages name what was wrong, never the token or the expected Sign (signature.py).
        fields["error"] = outcome.error.message[:300]
    if outcome.decision is not None and outcome.decision.trace:
        fields["trace"] = [f"{s.rule}:{s.result}" for s in outcome.decision.trace]
        if log_text:
            fields["reason"] = outcome.decision.verdict.reason
    if log_text and outcome.callback is not None:
        fields["texts"] = [field.text for field in outcome.callback.event.text_fields()]
    return fields


def log_callback(outcome, *, log_text: bool = False) -> None:
    logger = logging.getLogger(CALLBACK_LOGGER)
    if logger.isEnabledFor(logging.INFO):
        logger.info("callback", extra=callback_fields(outcome, log_text=log_text))
