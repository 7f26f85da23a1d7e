"""Sliding-window rate-limit counters: in process memory or in Redis, behind one small interface.

Used by the `rate_limit` and `signaling_policy` rules. Importing this package does not import redis;
the Redis backend loads it when a rule asks for it.
"""

from .config import StoreConfig, build_store  # noqa: F401
from .store import Hit, MemoryStore, Result, Store, StoreUnavailable  # noqa: F401
