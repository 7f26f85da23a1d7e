"""Test kit for broker targets: reach the real Redis and NATS, a TCP proxy to cut them off, readers.

The shared Redis and NATS servers are never stopped: a test points imhook at a `TcpProxy` on a
port it owns and stops the proxy to play a broker that is down. Every test uses scratch names
(`imhooktest-<hex>`) and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid

import pytest

REDIS_URL = os.environ.get("IMHOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NATS_URL = os.environ.get("IMHOOK_TEST_NATS_URL", "nats://127.0.0.1:4222")


def unreachable(what: str, detail: str) -> None:
    """Skip with the reason; under CI=true the service must be there, so fail instead."""
    message = f"no {what} ({detail}); start it (see .ci/run) or set IMHOOK_TEST_{what.upper()}_URL"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires {what}: {message}")
    pytest.skip(message)


def scratch() -> str:
    return f"imhooktest-{uuid.uuid4().hex[:12]}"


class TcpProxy:
    """Forward a loopback port to a broker; `stop()` refuses and cuts every connection, `start()`
    listens again on the same port."""

    def __init__(self, upstream: tuple[str, int], port: int):
        self.upstream, self.port = upstream, port
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                server = socket.create_connection(self.upstream, timeout=2)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close(), server.close()
                    return
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unreachable("Redis", f"{REDIS_URL}: {exc}")
    return client


def redis_entries(client, pattern: str) -> dict[str, list[dict[bytes, bytes]]]:
    """Every entry of the streams whose key matches, by stream, in stream order."""
    return {key.decode(): [fields for _, fields in client.xrange(key)] for key in client.scan_iter(pattern)}


def run(coroutine, timeout: float = 20):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def _nats_ping():
    import nats

    client = await nats.connect(NATS_URL, connect_timeout=1, allow_reconnect=False, max_reconnect_attempts=1)
    try:
        await client.jetstream().account_info()
    finally:
        await client.close()


def nats_reachable() -> None:
    try:
        run(_nats_ping(), timeout=5)
    except Exception as exc:  # refused, no JetStream, timeout: all mean "not here"
        unreachable("NATS", f"{NATS_URL} with JetStream: {type(exc).__name__} {exc}")


async def _messages(stream: str):
    import nats

    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        first, last = info.state.first_seq, info.state.last_seq
        return [await js.get_msg(stream, seq) for seq in range(first, last + 1)] if info.state.messages else []
    finally:
        await client.close()


def nats_messages(stream: str) -> list:
    """Every message of a JetStream stream, in stream order (subject, headers, data)."""
    return run(_messages(stream))


async def _delete(stream: str):
    import nats
    from nats.js.errors import NotFoundError

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    except NotFoundError:
        pass
    finally:
        await client.close()


def nats_delete(stream: str) -> None:
    run(_delete(stream))
