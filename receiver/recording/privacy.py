"""What a recording keeps: the Sign, message texts and account ids only as configured.

Texts and ids are found by key anywhere in a JSON value, so the same walk serves the request
body, the reply (a rewritten MsgBody, RefusedMembers_Account) and bodies that failed validation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .. import jsonout
from ..errors import ConfigError

# Keys whose string values are person-written text (PROTOCOL.md §4–5): element texts and custom
# payloads, CloudCustomData, group/topic names and notices, friend request wording and remarks,
# group custom field values.
TEXT_KEYS = frozenset({
    "Text", "Desc", "Data", "Ext", "FileName", "Title", "CompatibleText", "AbstractList",
    "CloudCustomData", "Name", "GroupName", "Introduction", "Notification", "FaceUrl",
    "AddWording", "Remark", "ApplyMsg", "Value",
})
SIGN_PARAMS = ("Sign",)


@dataclass(frozen=True)
class Policy:
    keep_sign: bool = False
    store_text: bool = True
    salt: bytes | None = None  # set: account ids are replaced by a keyed hash

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], env: Mapping[str, str]) -> "Policy":
        salt = None
        if settings["hash_user_ids"]:
            name = settings["user_id_salt_env"]
            if not env.get(name):
                raise ConfigError(f"recording.hash_user_ids is on but ${name} is empty; set it to a secret "
                                  "salt (the same in every worker, so an account always hashes alike)")
            salt = env[name].encode()
        return cls(keep_sign=settings["keep_sign"], store_text=settings["store_text"], salt=salt)

    # Worked out once: the recorder asks both for every callback (a frozen dataclass still lets
    # cached_property fill the instance's __dict__).
    @cached_property
    def redacted(self) -> tuple[str, ...]:
        return (() if self.store_text else ("text",)) + (("user_ids",) if self.salt else ())

    @cached_property
    def rewrites_json(self) -> bool:
        return bool(self.redacted)

    def query(self, query: Mapping[str, str]) -> dict[str, str]:
        kept = dict(query)  # a copy and a pop: a fifth of a comprehension's cost, on every callback
        if not self.keep_sign:
            for name in SIGN_PARAMS:
                kept.pop(name, None)
        return kept

    def user(self, account: str) -> str:
        return hash_id(account, self.salt) if self.salt and account else account

    def value(self, value: Any) -> Any:
        """Return a copy of a JSON value with texts and ids hashed as configured."""
        if not self.rewrites_json:
            return value
        return _walk(value, self, key="")

    def body(self, raw: bytes) -> bytes:
        """The body to store. A body that is not JSON cannot be searched for texts: only its hash."""
        if not self.rewrites_json:
            return raw
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return f'"{hash_text(raw.decode("utf-8", "replace"))}"'.encode()
        return jsonout.dumps(self.value(data))


def hash_text(text: str) -> str:
    # storable_bytes: a lone surrogate hashes as its \udXXX escape (receiver/jsonout.py), not a crash.
    return "sha256:" + hashlib.sha256(jsonout.storable_bytes(text)).hexdigest()


def hash_id(account: str, salt: bytes) -> str:
    # Keyed, so ids cannot be recovered by hashing a list of known accounts without the salt.
    return "uid:" + hmac.new(salt, jsonout.storable_bytes(account), hashlib.sha256).hexdigest()[:32]


def _walk(value: Any, policy: Policy, key: str) -> Any:
    """Copy a JSON value with texts and ids hashed, iteratively: the sender chooses the depth
    (merge-forward messages nest), so a recursive walk would fail on a body the parser accepted."""
    root: list[Any] = [None]
    stack: list[tuple[Any, str, Any, Any]] = [(value, key, root, 0)]  # (value, its key, parent, slot)
    while stack:
        item, item_key, parent, slot = stack.pop()
        if isinstance(item, dict):
            copy: Any = {}
            parent[slot] = copy
            for k, v in item.items():
                copy[k] = None
                stack.append((v, str(k), copy, k))
        elif isinstance(item, list):
            copy = [None] * len(item)
            parent[slot] = copy
            stack.extend((v, item_key, copy, i) for i, v in enumerate(item))
        else:
            parent[slot] = _leaf(item, policy, item_key)
    return root[0]


def _leaf(value: Any, policy: Policy, key: str) -> Any:
    if isinstance(value, str) and value:
        if not policy.store_text and key in TEXT_KEYS:
            return hash_text(value)
        if policy.salt and key.endswith("_Account"):
            return hash_id(value, policy.salt)
    return value
