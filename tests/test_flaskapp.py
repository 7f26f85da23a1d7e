"""receiver/flaskapp.py and StaticFirstMap.bind_to_environ: Flask's and werkzeug's behaviour, cheaper.

Every shortcut is compared with the stock step: the same URL adapter for a table of servers and
requests (asked twice, so the second comes from what the map remembered), and the same hooks and
signals run, in the same order, with or without hooks registered.
"""

from __future__ import annotations

import io
import warnings

import pytest
from flask import (Flask, after_this_request, appcontext_popped, appcontext_pushed, appcontext_tearing_down,
                   got_request_exception, request, request_finished, request_started, request_tearing_down)
from werkzeug.exceptions import BadHost
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from receiver.flaskapp import MAX_SYNC_ENTRIES, ImhookFlask
from receiver.routing import MAX_BOUND_SERVERS, StaticFirstMap


def environ(path: str = "/callback", **changes) -> dict:
    env = EnvironBuilder(path="/", method="POST", query_string="SdkAppid=1&Sign=ab").get_environ()
    env["PATH_INFO"] = path
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


SERVERS = {
    "usual": {},
    "host with port": {"HTTP_HOST": "Example.COM:8080"},
    "standard port": {"HTTP_HOST": "example.com:80"},
    "unicode host": {"HTTP_HOST": "例子.测试"},
    "ipv6": {"HTTP_HOST": "[::1]:8080"},
    "no host header": {"HTTP_HOST": None, "SERVER_NAME": "10.0.0.1", "SERVER_PORT": "8000"},
    "unix socket": {"HTTP_HOST": None, "SERVER_NAME": "/run/imhook.sock", "SERVER_PORT": ""},
    "no host at all": {"HTTP_HOST": None, "SERVER_NAME": None},
    "odd host characters": {"HTTP_HOST": "exa mple.com"},
    "https": {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com:443"},
    "websocket upgrade": {"HTTP_CONNECTION": "keep-alive, Upgrade", "HTTP_UPGRADE": "websocket"},
    "script name": {"SCRIPT_NAME": "/imhook"},
    "script name with slash": {"SCRIPT_NAME": "/imhook/"},
}
REQUESTS = {
    "callback": {},
    "root": {"PATH_INFO": "/"},
    "empty path": {"PATH_INFO": ""},
    "no path": {"PATH_INFO": None},
    "latin-1 path": {"PATH_INFO": "/caf\xc3\xa9"},
    "bad utf-8 path": {"PATH_INFO": "/\xff\xfe"},
    "no query": {"QUERY_STRING": None},
    "odd query": {"QUERY_STRING": "a=%ZZ&\xe9"},
    "get": {"REQUEST_METHOD": "GET"},
}


def adapter_state(adapter) -> dict:
    state = dict(vars(adapter))
    state.pop("map")
    return state


@pytest.mark.parametrize("flask_arguments", [{"server_name": None, "subdomain": ""},
                                             {"server_name": "example.com", "subdomain": ""},
                                             {"server_name": "example.com", "subdomain": None},
                                             {"server_name": None, "subdomain": None}])
@pytest.mark.parametrize("server", SERVERS)
def test_the_adapter_is_werkzeugs_first_time_and_every_time(server, flask_arguments):
    stock, ours = Map([Rule("/callback", endpoint="c")]), StaticFirstMap([Rule("/callback", endpoint="c")])
    for name, changes in [*REQUESTS.items(), *REQUESTS.items()]:  # the second pass from what it remembers
        env = environ(**{**SERVERS[server], **changes})
        expected, expected_warnings = bound(stock, env, flask_arguments)
        got, got_warnings = bound(ours, env, flask_arguments)
        assert (got, got_warnings) == (expected, expected_warnings), name
    # Flask's own calls (a subdomain given) were answered from what it remembered the second time.
    assert bool(ours._bound) is (flask_arguments["subdomain"] is not None)


def bound(url_map, env, arguments) -> tuple[dict, list[str]]:
    """The adapter's state, and what werkzeug warned about (a host that is not the server's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = adapter_state(url_map.bind_to_environ(env, **arguments))
    return state, [str(warning.message) for warning in caught]


def test_a_bad_host_is_werkzeugs_bad_host_every_time_and_is_not_remembered():
    ours = StaticFirstMap([Rule("/callback", endpoint="c")])
    for _ in range(2):
        with pytest.raises(BadHost):
            Map().bind_to_environ(environ(HTTP_HOST="a" * 70 + ".com"), subdomain="")
        with pytest.raises(BadHost):
            ours.bind_to_environ(environ(HTTP_HOST="a" * 70 + ".com"), subdomain="")
    assert ours._bound == {}


def test_what_it_remembers_is_bounded_whatever_hosts_arrive():
    ours = StaticFirstMap([Rule("/callback", endpoint="c")])
    for number in range(5 * MAX_BOUND_SERVERS):
        adapter = ours.bind_to_environ(environ(HTTP_HOST=f"host{number}.example"), subdomain="")
        assert adapter.server_name == f"host{number}.example"
        assert len(ours._bound) <= MAX_BOUND_SERVERS


def make_app(cls, calls: list, *, hooks: bool):
    app = cls("hooks")

    @app.post("/callback")
    def callback():
        calls.append("view")
        if hooks:
            @after_this_request
            def once(response):
                calls.append("after_this_request")
                return response
        return {"ok": request.path}

    if hooks:
        app.url_value_preprocessor(lambda endpoint, values: calls.append("url_value_preprocessor"))
        app.before_request(lambda: calls.append("before_request"))

        @app.after_request
        def after(response):
            calls.append("after_request")
            response.headers["X-After"] = "1"
            return response

        app.teardown_request(lambda exc: calls.append(f"teardown_request {exc!r}"))
        app.teardown_appcontext(lambda exc: calls.append(f"teardown_appcontext {exc!r}"))
    return app


@pytest.mark.parametrize("hooks", [False, True])
def test_hooks_and_signals_run_as_flask_runs_them(hooks):
    results = {}
    for cls in (Flask, ImhookFlask):
        calls: list[str] = []

        def on_signal(sender, exc, signal_name, calls=calls):
            calls.append(f"{signal_name} {exc!r}")

        request_tearing_down.connect(on_request := lambda s, exc: on_signal(s, exc, "request_tearing_down"))
        appcontext_tearing_down.connect(on_app := lambda s, exc: on_signal(s, exc, "appcontext_tearing_down"))
        try:
            response = make_app(cls, calls, hooks=hooks).test_client().post("/callback")
        finally:
            request_tearing_down.disconnect(on_request)
            appcontext_tearing_down.disconnect(on_app)
        results[cls] = (response.status_code, response.get_json(), response.headers.get("X-After"), calls)
    assert results[ImhookFlask] == results[Flask]
    assert ("after_request" in results[Flask][3]) is hooks
    assert "request_tearing_down None" in results[Flask][3]


def test_an_error_reaches_the_teardowns_as_it_does_in_flask():
    results = {}
    for cls in (Flask, ImhookFlask):
        calls: list[str] = []
        app = cls("errors")

        @app.post("/callback")
        def callback():
            raise ValueError("boom")

        request_tearing_down.connect(on := lambda s, exc: calls.append(f"request_tearing_down {exc!r}"))
        try:
            response = app.test_client().post("/callback")
        finally:
            request_tearing_down.disconnect(on)
        results[cls] = (response.status_code, calls)
    assert results[ImhookFlask] == results[Flask] == (500, ["request_tearing_down ValueError('boom')"])


SIGNALS = (request_started, request_finished, request_tearing_down, appcontext_pushed, appcontext_popped,
           appcontext_tearing_down, got_request_exception)


@pytest.mark.parametrize("fail", [False, True])
def test_every_signal_reaches_a_connected_receiver_as_in_flask(fail):
    results = {}
    for cls in (Flask, ImhookFlask):
        calls: list[str] = []
        app = cls("signals")

        @app.post("/callback")
        def callback():
            if fail:
                raise ValueError("boom")
            return {"host": request.host}

        receivers = [(signal, lambda sender, signal=signal, **extra: calls.append(
            f"{signal.name} {sorted(extra)} {extra.get('exc')!r}")) for signal in SIGNALS]
        for signal, receiver in receivers:
            signal.connect(receiver)
        try:
            response = app.test_client().post("/callback", headers={"Host": "Example.com:8080"})
        finally:
            for signal, receiver in receivers:
                signal.disconnect(receiver)
        results[cls] = (response.status_code, response.get_data(), calls)
    assert results[ImhookFlask] == results[Flask]
    assert len(results[Flask][2]) == (7 if fail else 6)


def test_without_receivers_no_signal_is_sent_and_the_reply_is_flasks(monkeypatch):
    sent = []
    for signal in SIGNALS:
        monkeypatch.setattr(signal, "send", lambda *a, signal=signal, **k: sent.append(signal.name) or [])
    app = make_app(ImhookFlask, [], hooks=False)
    response = app.test_client().post("/callback")
    assert (response.status_code, response.get_json()) == (200, {"ok": "/callback"})
    assert sent == []


def test_trusted_hosts_are_still_checked_and_the_host_is_the_same():
    for cls in (Flask, ImhookFlask):
        app = cls("hosts")
        app.post("/callback")(lambda: {"host": request.host})
        client = app.test_client()
        assert client.post("/callback", headers={"Host": "Example.com:8080"}).get_json() == {
            "host": "Example.com:8080"}
        app.config["TRUSTED_HOSTS"] = ["good.example"]
        assert client.post("/callback", headers={"Host": "evil.example"}).status_code == 400
        assert client.post("/callback", headers={"Host": "good.example"}).get_json() == {"host": "good.example"}


def test_a_plain_view_is_asked_about_once_and_the_answers_kept_are_bounded(monkeypatch):
    app = ImhookFlask("sync")
    asked = []
    original = Flask.ensure_sync
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, func: asked.append(func) or original(self, func))
    app.post("/callback")(lambda: {"ok": True})
    client = app.test_client()
    for _ in range(3):
        assert client.post("/callback").get_json() == {"ok": True}
    assert len(asked) == 1
    for number in range(3 * MAX_SYNC_ENTRIES):
        func = eval(f"lambda: {number}")  # a new function each time
        assert app.ensure_sync(func) is func
        assert len(app._sync_of) <= MAX_SYNC_ENTRIES


def test_an_async_view_is_flasks_business():
    results = {}
    for cls in (Flask, ImhookFlask):
        app = cls("async")

        @app.post("/callback")
        async def callback():
            return {"ok": True}

        try:
            response = app.test_client().post("/callback")
            results[cls] = (response.status_code, response.get_data())
        except RuntimeError as exc:  # Flask without its async extra says so
            results[cls] = str(exc)
    assert results[ImhookFlask] == results[Flask]
    assert app._sync_of == {} or all(key is value for key, value in app._sync_of.items())


def test_closing_the_request_still_closes_uploaded_files():
    closed = []
    for cls in (Flask, ImhookFlask):
        app = cls("files")

        @app.post("/upload")
        def upload():
            stream = request.files["f"].stream
            original = stream.close
            stream.close = lambda: closed.append(cls.__name__) or original()
            return {"name": request.files["f"].filename}

        response = app.test_client().post("/upload", data={"f": (io.BytesIO(b"x"), "a.txt")},
                                          content_type="multipart/form-data")
        assert response.get_json() == {"name": "a.txt"}
    assert closed == ["Flask", "ImhookFlask"]


@pytest.mark.parametrize("method, path", [("POST", "/callback"), ("OPTIONS", "/callback"), ("GET", "/callback"),
                                          ("POST", "/nope"), ("POST", "/callback/"), ("POST", "/item/7"),
                                          ("OPTIONS", "/item/7"), ("POST", "/item/x")])
def test_dispatch_answers_as_flask_does(method, path):
    results = {}
    for cls in (Flask, ImhookFlask):
        app = cls("dispatch")
        app.add_url_rule("/callback", "callback", lambda: {"view": "callback"}, methods=["POST"])
        app.add_url_rule("/item/<int:number>", "item", lambda number: {"view": "item", "number": number},
                         methods=["POST"])
        response = app.test_client().open(path, method=method)
        results[cls] = (response.status_code, response.get_data(), response.headers.get("Allow"),
                        response.headers.get("Location"))
    assert results[ImhookFlask] == results[Flask]
