"""Shared fixtures. Redis tests skip with a reason when no Redis runs, but fail under CI=true."""

from __future__ import annotations

import os

import pytest

from .helpers import redis_url, start_server


@pytest.fixture
def serve(tmp_path):
    """Start gunicorn-served imhook with a config text; stopped after the test."""
    servers = []

    def _serve(config_text: str, **kwargs):
        server = start_server(tmp_path, config_text, **kwargs)
        servers.append(server)
        return server

    yield _serve
    for server in servers:
        server.stop()


@pytest.fixture
def redis_client():
    """A real Redis client on a scratch database, flushed before and after."""
    import redis

    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"no Redis at {redis_url()} ({exc}); start redis-server or set IMHOOK_TEST_REDIS_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires Redis: {message}")
        pytest.skip(message)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
