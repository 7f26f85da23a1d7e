"""The store options every rate-limited rule accepts, and the factory that builds the store."""

from __future__ import annotations

import os
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from receiver.errors import ConfigError

from .store import MemoryStore, Store

BACKENDS = ("memory", "redis")
REDIS_URL_ENV = "IMHOOK_REDIS_URL"


class StoreConfig(Schema):
    """backend, redis_url (or the variable named by redis_url_env), key prefix, timeouts, breaker."""

    class Meta:
        unknown = RAISE

    backend = fields.String(load_default="memory", validate=validate.OneOf(BACKENDS))
    redis_url = fields.String(load_default=None, allow_none=True)
    redis_url_env = fields.String(load_default=REDIS_URL_ENV)
    key_prefix = fields.String(load_default="imhook:rl:")
    connect_timeout_ms = fields.Float(load_default=50.0, validate=validate.Range(min=1, max=1000))
    read_timeout_ms = fields.Float(load_default=100.0, validate=validate.Range(min=1, max=1000))
    breaker_seconds = fields.Float(load_default=2.0, validate=validate.Range(min=0, max=600))

    @validates_schema
    def _redis_options_need_redis(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("backend") != "redis" and data.get("redis_url"):
            raise ValidationError("redis_url is set but backend is not `redis`", "backend")


def build_store(config: dict[str, Any], *, path: str = "") -> Store:
    """The store `config` asks for; a ConfigError (naming `path`.field) if it cannot be built."""
    if config.get("backend", "memory") == "memory":
        return MemoryStore()
    prefix = f"{path}." if path else ""
    url = config.get("redis_url") or os.environ.get(config.get("redis_url_env") or REDIS_URL_ENV, "")
    if not url:
        raise ConfigError(f"backend `redis` needs redis_url, or the URL in ${config['redis_url_env']}",
                          path=f"{prefix}redis_url")
    from .redis_store import RedisStore

    try:
        return RedisStore(
            url, prefix=config["key_prefix"], connect_timeout=config["connect_timeout_ms"] / 1000,
            read_timeout=config["read_timeout_ms"] / 1000, breaker_seconds=config["breaker_seconds"],
        )
    except ValueError as exc:  # redis-py's message for a malformed URL; it never echoes a password
        raise ConfigError(f"invalid redis_url: {exc}", path=f"{prefix}redis_url") from None
