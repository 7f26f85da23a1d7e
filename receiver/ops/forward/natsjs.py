"""Delivery to NATS JetStream: publish with `Nats-Msg-Id`, success only on the stream's ack.

nats-py is asyncio-only, and the sender is threads: one event loop runs in one background thread
per process (made on first use, so a gunicorn worker makes its own after the fork), and the
sender's threads submit each publish to it with `run_coroutine_threadsafe` and wait at most the
target's timeout. The connection does not reconnect by itself (`allow_reconnect=False`): a
publish on a lost connection fails, and the next attempt, when the outbox's backoff says, connects
anew. So a NATS that is down looks like an HTTP downstream that is down: failed attempts, counted
and logged, retried in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import TimeoutError as FutureTimeout

import nats
from nats.errors import Error as NatsError
from nats.errors import ConnectionClosedError, MaxPayloadError, NoServersError, StaleConnectionError
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from . import events
from .brokerconf import redact, render, stream_subjects
from .events import Target
from .outbox import Row
from .sender import Result

log = logging.getLogger("imhook.forward")
MSG_ID_HEADER = "Nats-Msg-Id"  # JetStream drops a second message with the same id inside its duplicate window


class _Loop:
    """One asyncio loop in one daemon thread for this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child has no such thread
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="imhook-nats", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine, timeout: float):
        """Run a coroutine on the loop; raise TimeoutError (and cancel it) past `timeout`."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.get())
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError from None


LOOP = _Loop()
# Counted as kind "connect" in imhook_forward_failures_total, like an HTTP downstream refusing.
_CONNECT_ERRORS = (OSError, NoServersError, ConnectionClosedError, StaleConnectionError)


def header_value(text: str) -> str:
    """Printable ASCII only: nats-py writes header values as they are, so a CR or LF in a command
    would start a header of the sender's choosing. Anything else goes as its Python escape."""
    return text.encode("unicode_escape").decode("ascii")


def headers(row: Row) -> dict[str, str]:
    """The message headers: the dedupe id, and what the HTTP headers carry."""
    event = events.event_id(row.dedupe)
    return {MSG_ID_HEADER: event, events.EVENT_ID_HEADER: event, events.COMMAND_HEADER: header_value(row.command),
            events.APP_ID_HEADER: header_value(row.app_id), events.ATTEMPT_HEADER: str(row.attempts + 1)}


class NatsDeliverer:
    """Publish one row to the subject its target's template names, on one connection per target."""

    def __init__(self, target: Target):
        self.options = target.broker
        self.where = f"{target.name} ({redact(self.options.url)})"
        self.timeout = target.timeout
        self._client = None
        self._js = None
        self._connecting: asyncio.Lock | None = None  # made on the loop, where it is used

    def __call__(self, target: Target, row: Row) -> Result:
        subject = render(self.options.subject, row.command, row.conversation, row.app_id)
        try:
            LOOP.run(self._publish(subject, row), self.timeout * 2 + 1)
        except (TimeoutError, asyncio.TimeoutError):
            return Result(False, error=f"no ack from NATS {self.where} within {self.timeout:g} s", kind="timeout")
        except MaxPayloadError:
            return Result(False, permanent=True, kind="too_large",
                          error=f"the event ({len(row.body)} bytes) exceeds the max_payload of NATS {self.where}")
        except (OSError, NatsError) as exc:
            kind = "connect" if isinstance(exc, _CONNECT_ERRORS) else "nats_error"
            return Result(False, error=f"NATS {self.where}: {type(exc).__name__} {str(exc)[:200]}", kind=kind)
        return Result(True)

    async def _publish(self, subject: str, row: Row) -> None:
        js = await self._connected()
        try:
            await js.publish(subject, row.body, timeout=self.timeout, stream=self.options.stream,
                             headers=headers(row))
        except (OSError, NatsError, asyncio.TimeoutError):
            if self._client is not None and not self._client.is_connected:
                await self._drop()
            raise

    async def _connected(self):
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._client is not None and self._client.is_connected:
                return self._js
            await self._drop()
            client = await asyncio.wait_for(nats.connect(
                self.options.url, name="imhook-forwarder", connect_timeout=self.timeout, allow_reconnect=False,
                max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=self._on_error), self.timeout + 1)
            js = client.jetstream(timeout=self.timeout)
            try:
                await self._ensure_stream(js)
            except BaseException:
                await client.close()
                raise
            self._client, self._js = client, js
            log.info("forwarding: connected to NATS %s", self.where)
            return js

    async def _ensure_stream(self, js) -> None:
        """Create the stream when it is missing (and create_stream is on); an existing one is left as is."""
        options = self.options
        try:
            await js.stream_info(options.stream)
            return
        except NotFoundError:
            if not options.create_stream:
                raise
        await js.add_stream(StreamConfig(
            name=options.stream, subjects=[stream_subjects(options.subject)],
            duplicate_window=options.duplicate_window_seconds, max_msgs=options.max_msgs))
        log.info("forwarding: created JetStream stream %s for %s", options.stream, stream_subjects(options.subject))

    async def _drop(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception:  # closing a broken connection: nothing more to save
                pass

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports each failed connect here too; the failed attempt itself is logged by the sender.
        log.debug("forwarding: NATS %s: %s", self.where, type(exc).__name__)
