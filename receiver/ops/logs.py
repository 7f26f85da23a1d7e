"""Structured JSON logs: one line per callback, and every imhook log record as JSON.

Message texts appear only with `server.log_text: true`; the query string (which carries `Sign`)
and tokens are never logged at all.

The callback line is written for every request, so when logging is set up as `setup_logging` does
it (the JSON handler is the only one the line would reach) it skips logging's generic path: the line
is built directly and queued on the handler, and a background thread writes the queue at most
FLUSH_SECONDS later in one write (flusher.py). The queue is also written before any other record
of the handler, at worker exit and at exit. Configured otherwise (another handler on the way, e.g.
a root handler or pytest's log capture), the line goes through `Logger.info` as any record.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from collections import deque
from typing import Any

from ..jsonout import dumps
from .flusher import Flusher

CALLBACK_LOGGER = "imhook.callback"
_HANDLER_MARK = "_imhook_json_handler"
# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
FLUSH_SECONDS = 0.5  # the longest a callback line waits in the queue
WAKE_AT_LINES = 256  # queued lines that get written before FLUSH_SECONDS is up
# Beyond this many, a request writes the queue itself: a stuck stderr slows requests down, as it
# always did, instead of filling the memory.
MAX_QUEUED_LINES = 8192
# A request id longer than this is cut in the line. The web adapter already replaces an odd
# X-Request-Id and cuts a long one (receiver/app.py MAX_REQUEST_ID_CHARS); this bounds every other
# source (replays, a bare Receiver) too.
MAX_REQUEST_ID_CHARS = 64
_second_cache: tuple[int, str] = (-1, "")


def _second(second: int) -> str:
    """The record's time to the second, formatted once per second (strftime is the costly part)."""
    global _second_cache
    cached = _second_cache
    if cached[0] != second:
        cached = _second_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return cached[1]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": f"{_second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return dumps(line).decode("utf-8")


class JsonLinesHandler(logging.StreamHandler):
    """Writes records as JSON lines, plus the callback lines `log_callback` queued on it."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self.setFormatter(JsonFormatter())
        setattr(self, _HANDLER_MARK, True)
        self.queued: deque[bytes] = deque()  # append and popleft are thread-safe
        _QUEUES.add(self)

    def enqueue(self, line: bytes) -> None:
        """Queue one finished line (ending in a newline) for the background writer."""
        queued = self.queued
        queued.append(line)
        if len(queued) >= WAKE_AT_LINES:
            if len(queued) >= MAX_QUEUED_LINES:
                self.write_queued()
            else:
                _WRITER.wake()
        if not _WRITER.running:
            _WRITER.start()

    def write_queued(self) -> None:
        if self.queued:
            with self.lock:
                self._write_queued()

    def _write_queued(self) -> None:
        """Write the queue in one write (the caller holds the handler's lock)."""
        queued = self.queued
        lines = [queued.popleft() for _ in range(len(queued))]  # only this lock's holder takes
        if not lines:
            return
        try:
            stream = self.stream
            stream.write(b"".join(lines).decode("utf-8"))
            if hasattr(stream, "flush"):
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"name": CALLBACK_LOGGER, "levelno": logging.INFO,
                                                    "levelname": "INFO", "msg": f"{len(lines)} callback lines"}))

    def emit(self, record: logging.LogRecord) -> None:
        if self.queued:  # this process's lines stay in order: the callback lines queued before it
            self._write_queued()
        super().emit(record)

    def flush(self) -> None:
        with self.lock:
            self._write_queued()
            super().flush()


class StderrHandler(JsonLinesHandler):
    """Write to whatever sys.stderr is at write time (it may be replaced after set-up, e.g. by tests)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property always reads sys.stderr
        pass


def _write_all_queues() -> None:
    for handler in list(_QUEUES):
        handler.write_queued()


def _forget_parents_lines() -> None:
    for handler in list(_QUEUES):  # the parent writes them; a forked child would write them again
        handler.queued.clear()


_QUEUES: weakref.WeakSet[JsonLinesHandler] = weakref.WeakSet()
os.register_at_fork(after_in_child=_forget_parents_lines)
_WRITER = Flusher("callback-log", FLUSH_SECONDS, _write_all_queues)
_DIRECT_HANDLERS = (JsonLinesHandler, StderrHandler)  # exactly these: a subclass may emit otherwise
_CALLBACK_LOG = logging.getLogger(CALLBACK_LOGGER)
_INFO = logging.getLevelName(logging.INFO).lower()
_IMHOOK_LOG = logging.getLogger("imhook")


def setup_logging(settings: dict, stream=None) -> None:
    """Send the `imhook` logger tree to stderr as JSON at the configured level (idempotent)."""
    logger = logging.getLogger("imhook")
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        handler.flush()  # its queued callback lines
        logger.removeHandler(handler)
    if not settings["enabled"]:
        logging.getLogger(CALLBACK_LOGGER).disabled = True
        return
    logging.getLogger(CALLBACK_LOGGER).disabled = not settings["callbacks"]
    logger.addHandler(JsonLinesHandler(stream) if stream is not None else StderrHandler())
    logger.setLevel(settings["level"].upper())


def callback_fields(outcome, *, log_text: bool = False) -> dict[str, Any]:
    """The fields of the one log line about a handled request (an Outcome from receiver.core)."""
    fields: dict[str, Any] = {}
    _add_callback_fields(fields, outcome, log_text)
    return fields


def _add_callback_fields(line: dict[str, Any], outcome, log_text: bool) -> None:
    request, callback, decision = outcome.request, outcome.callback, outcome.decision
    traced = decision is not None and decision.trace
    line["request_id"] = request.request_id[:MAX_REQUEST_ID_CHARS]  # the app checked it already
    line["command"] = outcome.command[:100]
    line["app_id"] = callback.app_id if callback else str(request.query.get("SdkAppid", ""))[:32]
    line["outcome"] = outcome.outcome_name
    line["rule"] = decision.verdict.rule if traced else ""
    line["latency_ms"] = round(outcome.elapsed_ms, 3)
    line["status"] = outcome.status
    line["remote_addr"] = request.remote_addr
    if outcome.error is not None:
        # Error messages name what was wrong, never the token or the expected Sign (signature.py).
        line["error"] = outcome.error.message[:300]
    if traced:
        line["trace"] = [f"{s.rule}:{s.result}" for s in decision.trace]
        if log_text:
            line["reason"] = decision.verdict.reason
    if log_text and callback is not None:
        line["texts"] = [field.text for field in callback.event.text_fields()]


def log_callback(outcome, *, log_text: bool = False) -> None:
    logger = _CALLBACK_LOG
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _direct_handler()
    if handler is None:
        logger.info("callback", extra=callback_fields(outcome, log_text=log_text))
        return
    now = time.time()
    second = int(now)
    # As JsonFormatter writes a record's time ("%03d" truncates as LogRecord's msecs does).
    line: dict[str, Any] = {"ts": _second(second) + ".%03dZ" % ((now - second) * 1000), "level": _INFO,
                            "logger": CALLBACK_LOGGER, "msg": "callback"}
    _add_callback_fields(line, outcome, log_text)
    handler.enqueue(dumps(line) + b"\n")


def _direct_handler() -> JsonLinesHandler | None:
    """The JSON handler when it is the only one a callback record would reach, unfiltered: then
    `log_callback` may write the line straight to it. None for any other set-up."""
    logger = _CALLBACK_LOG
    if logger.handlers or logger.filters or not logger.propagate or logger.parent is not _IMHOOK_LOG:
        return None
    handlers = _IMHOOK_LOG.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (handler.__class__ not in _DIRECT_HANDLERS or handler.filters or handler.level > logging.INFO
            or handler.formatter.__class__ is not JsonFormatter):
        return None
    ancestor = _IMHOOK_LOG
    while ancestor.propagate and ancestor.parent is not None:
        ancestor = ancestor.parent
        if ancestor.handlers:
            return None
    return handler


def flush() -> None:
    """Write the queued callback lines now (tests; exit is covered by flusher.flush_all)."""
    _write_all_queues()
