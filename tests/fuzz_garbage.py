"""Garbage requests for the flood in tests/test_fuzz_gunicorn.py: not JSON, binary, markup, huge headers
within the head limits and over them, bad signatures, wrong methods. Each with the statuses it is owed."""

from __future__ import annotations

import json
import random
import string
import time

from .fuzz_storm import Shot
from .helpers import APP_ID, TOKEN, sample
from receiver.signature import sign

from receiver.worker import MAX_HEAD_BYTES  # noqa: E402  (the whole head; 8190 bytes a line, 100 lines)

HEADER_VALUE = 4000
HEADER_COUNT = 5  # with the 8 KB cookie, just under MAX_HEAD_BYTES: the app answers (400, recorded)
OVER_HEAD_COUNT = MAX_HEAD_BYTES // HEADER_VALUE + 1  # over it: the worker answers 431 (counted, not recorded)
MARKUP = (b"<html><body>hello</body></html>", b'<?xml version="1.0"?><CallbackCommand/>', b"a=1&b=2&c=%ff",
          b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n", b"null", b"[]", b"\"\"",
          b"{", b"}", b"{\"CallbackCommand\":", b"\xef\xbb\xbf", b"\x00" * 64)


def _binary(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))


def _text(rng: random.Random) -> bytes:
    alphabet = string.printable + "好ü\u202e\u200b"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 2000))).encode()


def _huge_headers(rng: random.Random, count: int = HEADER_COUNT) -> dict[str, str]:
    headers = {f"X-Fuzz-{i}": "".join(rng.choices(string.ascii_letters, k=HEADER_VALUE)) for i in range(count)}
    headers["Cookie"] = "c=" + "x" * 8000
    return headers


def garbage_shots(rng: random.Random, count: int, commands: list[str]) -> list[tuple[Shot, frozenset[int]]]:
    """`count` garbage requests, each with the statuses owed, the same for the same rng state."""
    good_body = json.dumps(sample("C2C.CallbackBeforeSendMsg")).encode()
    stale = str(int(time.time()) - 3600)
    kinds = ("binary", "text", "markup", "empty", "huge_headers", "over_head", "unsigned", "bad_sign", "stale", "wrong_app",
             "method", "root_path")
    shots = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        command = rng.choice(commands)
        rid = f"flood-{n}-{kind}"
        owed = {400}
        shot = Shot(rid, _binary(rng), command)
        if kind == "text":
            shot = Shot(rid, _text(rng), command)
        elif kind == "markup":
            body = rng.choice(MARKUP)
            content_type = "multipart/form-data; boundary=x" if body.startswith(b"--x") else rng.choice(
                ["text/html", "application/xml", "application/x-www-form-urlencoded", "application/json"])
            shot = Shot(rid, body, command, headers={"Content-Type": content_type})
        elif kind == "empty":
            shot = Shot(rid, b"", command)
        elif kind == "huge_headers":
            shot = Shot(rid, _binary(rng), command, headers=_huge_headers(rng))
        elif kind == "over_head":
            shot, owed = Shot(rid, _binary(rng), command, headers=_huge_headers(rng, OVER_HEAD_COUNT)), {431}
        elif kind == "unsigned":
            shot, owed = Shot(rid, good_body, "C2C.CallbackBeforeSendMsg", signed=False), {401}
        elif kind == "bad_sign":
            wrong = {"Sign": "%064x" % rng.getrandbits(256)}
            shot, owed = Shot(rid, good_body, "C2C.CallbackBeforeSendMsg", query=wrong), {401}
        elif kind == "stale":
            shot, owed = Shot(rid, good_body, "C2C.CallbackBeforeSendMsg",
                              query={"RequestTime": stale, "Sign": sign(TOKEN, stale)}), {401}
        elif kind == "wrong_app":
            shot, owed = Shot(rid, _binary(rng), command, query={"SdkAppid": str(int(APP_ID) + 1)}), {403}
        elif kind == "method":
            shot, owed = Shot(rid, _binary(rng), command, method=rng.choice(["GET", "PUT", "DELETE", "PATCH"])), {405}
        elif kind == "root_path":
            shot = Shot(rid, _text(rng), command, path="/")
        shots.append((shot, frozenset(owed)))
    return shots
