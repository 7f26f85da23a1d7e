"""receiver/routing.py: werkzeug's URL matching, without the reference cycle it leaves per request.

Each case is matched by werkzeug's own matcher and by StaticFirstMatcher over the same rules: the
same (rule, arguments) or the same exception (type, redirect target, allowed methods) for every
path, method and kind of connection, listed and generated.
"""

from __future__ import annotations

import gc
import json

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.routing.matcher import StateMachineMatcher
from werkzeug.test import EnvironBuilder

from receiver.app import CALLBACK_PATHS, NETEASE_PATHS, create_app
from receiver.routing import StaticFirstMap, StaticFirstMatcher

from .helpers import TOKEN, make_receiver, rules_yaml, sample
from .test_http import signed_query

ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def rules() -> list[Rule]:
    """The app's routes, plus the shapes werkzeug handles in its own way: converters, a static
    path that shadows a dynamic one, slashes, an alias, defaults, a websocket rule."""
    return [
        Rule("/", endpoint="root", methods=ANY),
        Rule("/callback", endpoint="callback", methods=ANY),
        Rule("/netease/callback", endpoint="netease", methods=ANY, defaults={"platform": "netease"}),
        Rule("/netease/copy", endpoint="copy", methods=ANY, defaults={"platform": "netease-copy"}),
        Rule("/healthz", endpoint="healthz", methods=["GET"]),
        Rule("/readyz", endpoint="readyz", methods=["GET"]),
        Rule("/records/", endpoint="records"),  # strict slashes: /records redirects
        Rule("/records/<int:id>", endpoint="record"),
        Rule("/records/latest", endpoint="latest", methods=["GET"]),  # static, beside the converter
        Rule("/loose", endpoint="loose", strict_slashes=False),
        Rule("/files/<path:name>", endpoint="file"),
        Rule("/old", endpoint="healthz", alias=True, methods=["GET"]),
        Rule("/ws", endpoint="ws", websocket=True),
        Rule("/ws", endpoint="ws-http", methods=["POST"]),
        Rule("/only-post", endpoint="only-post", methods=["POST"]),
        Rule("/only-post", endpoint="only-put", methods=["PUT"]),
    ]


def adapters(**map_options):
    stock, ours = Map(rules(), **map_options), StaticFirstMap(rules(), **map_options)
    assert type(stock._matcher) is StateMachineMatcher and type(ours._matcher) is StaticFirstMatcher
    return stock.bind("example.com", "/"), ours.bind("example.com", "/")


def outcome(adapter, path: str, method: str, websocket: bool = False):
    try:
        rule, args = adapter.match(path, method, return_rule=True, websocket=websocket)
    except HTTPException as exc:
        return (type(exc).__name__, getattr(exc, "new_url", None), sorted(getattr(exc, "valid_methods", None) or []))
    return ("match", rule.rule, rule.endpoint, sorted(rule.methods or []), args)


PATHS = ["/", "/callback", "/callback/", "//callback", "/callback//", "/netease/callback", "/netease//callback",
         "/netease/copy", "/netease", "/healthz", "/healthz/", "/readyz", "/records", "/records/", "/records/7",
         "/records/x", "/records/latest", "/records/latest/", "/loose", "/loose/", "/files/a/b", "/files/",
         "/old", "/ws", "/only-post", "/elsewhere", "", "/%63allback", "/CALLBACK", "/callback?x=1"]
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "PATCH", "DELETE", "TRACE", "BREW"]


@pytest.mark.parametrize("merge_slashes", [True, False])
@pytest.mark.parametrize("path", PATHS)
def test_every_listed_path_matches_as_werkzeug_matches_it(path, merge_slashes):
    stock, ours = adapters(merge_slashes=merge_slashes)
    for method in METHODS:
        for websocket in (False, True):
            assert outcome(ours, path, method, websocket) == outcome(stock, path, method, websocket), (path, method)


SEGMENTS = st.sampled_from(["", "callback", "netease", "copy", "healthz", "records", "latest", "7", "x", "loose",
                            "files", "old", "ws", "only-post", "CALLBACK", "%2F", "é"])


@settings(max_examples=400, deadline=None)
@given(st.lists(SEGMENTS, max_size=5), st.sampled_from(METHODS), st.booleans(), st.booleans())
def test_generated_paths_match_as_werkzeug_matches_them(segments, method, websocket, merge_slashes):
    stock, ours = adapters(merge_slashes=merge_slashes)
    path = "/" + "/".join(segments)
    assert outcome(ours, path, method, websocket) == outcome(stock, path, method, websocket)


def test_the_app_matches_with_it_and_its_routes_are_all_static():
    app = create_app(receiver=make_receiver(rules_yaml(), env={"IMHOOK_TOKEN": TOKEN}))
    assert type(app.url_map._matcher) is StaticFirstMatcher
    static = {rule.rule for rule in app.url_map.iter_rules() if not rule._converters}
    assert set(CALLBACK_PATHS) | set(NETEASE_PATHS) <= static


def cyclic_garbage_per_request(app, requests: int = 50) -> float:
    """Objects only the garbage collector could free, per callback through the WSGI app (called as
    a server calls it: werkzeug's test client makes cyclic garbage of its own)."""
    body = json.dumps(sample("C2C.CallbackBeforeSendMsg")).encode()

    def post():
        environ = EnvironBuilder(path="/callback", method="POST", data=body,
                                 query_string=signed_query("C2C.CallbackBeforeSendMsg")).get_environ()
        replies = []
        chunks = app(environ, lambda status, headers: replies.append(status))
        b"".join(chunks)
        chunks.close()
        assert replies == ["200 OK"]

    for _ in range(5):  # first-call caches (imports, compiled patterns) are not per-request garbage
        post()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(requests):
            post()
        gc.collect()
        found = len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return found / requests


def test_a_callback_leaves_no_cyclic_garbage():
    """The cycle the collector would have to find, per request, is gone; the measure itself finds
    werkzeug's (the same app with the stock matcher put back)."""
    app = create_app(receiver=make_receiver(rules_yaml(), env={"IMHOOK_TOKEN": TOKEN}))
    assert cyclic_garbage_per_request(app) == 0
    stock = Map()
    for rule in list(app.url_map.iter_rules()):
        stock.add(rule.empty())
    app.url_map = stock
    assert cyclic_garbage_per_request(app) >= 1


def test_a_plain_flask_app_keeps_werkzeugs_matcher():
    assert type(Flask("plain").url_map._matcher) is StateMachineMatcher
