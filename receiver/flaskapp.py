"""imhook's Flask class: Flask's own request handling, less the steps that have nothing to do.

Every callback goes through Flask's request handling, and several of its steps walk lists of
hooks that imhook never registers (before/after/teardown functions, URL value preprocessors),
send signals nobody listens to, or rebuild per request what depends only on the server (the URL
adapter's host, scheme and script name) or on the view (whether it is a coroutine). Each step
below is Flask's own as long as any such hook, receiver or setting exists, and otherwise does
exactly what Flask's does with nothing registered, at a fraction of the cost: ~1 µs each of a
callback's ~20 µs of Flask handling (benchmarks/RESULTS.md, issue 16, steps 11 and 12). A signal
with a receiver connected is sent as Flask sends it. tests/test_flaskapp.py compares each step
with Flask's, with and without hooks and receivers.

Written against Flask 3.1 (pyproject pins it): each override repeats Flask's method with the
shortcut added, so a new Flask minor version must be read against this module before the pin moves.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from flask import Flask, Response
from flask.ctx import AppContext
from flask.globals import _cv_app, _cv_request, request_ctx
from flask.sansio.scaffold import _sentinel
from flask.signals import (appcontext_popped, appcontext_pushed, appcontext_tearing_down, request_finished,
                           request_started, request_tearing_down)
from flask.wrappers import Request

from .routing import StaticFirstMap

# ensure_sync's answers kept per function: views, handlers and receivers are a fixed set, but a
# bound method is a new object per lookup, so the table is bounded all the same.
MAX_SYNC_ENTRIES = 256


class ImhookRequest(Request):
    """Flask's Request; closing it looks for uploaded files only when the form was parsed."""

    def close(self) -> None:
        # werkzeug's close() walks `files` when it was made; imhook never parses a form, so it
        # never was (iter_multi_items over nothing was ~1 µs a callback).
        if "files" in self.__dict__:
            super().close()


class ImhookAppContext(AppContext):
    """Flask's AppContext; pushing and popping send their signals only to connected receivers."""

    def push(self) -> None:
        self._cv_tokens.append(_cv_app.set(self))
        if appcontext_pushed.receivers:
            appcontext_pushed.send(self.app, _async_wrapper=self.app.ensure_sync)

    def pop(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        if appcontext_popped.receivers:
            super().pop(exc)
            return
        try:
            if len(self._cv_tokens) == 1:
                if exc is _sentinel:
                    exc = sys.exc_info()[1]
                self.app.do_teardown_appcontext(exc)
        finally:
            ctx = _cv_app.get()
            _cv_app.reset(self._cv_tokens.pop())
        if ctx is not self:
            raise AssertionError(f"Popped wrong app context. ({ctx!r} instead of {self!r})")


class ImhookFlask(Flask):
    """Flask with StaticFirstMap as its URL map and the no-hook shortcuts described above."""

    url_map_class = StaticFirstMap
    request_class = ImhookRequest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_of: dict[Callable, Callable] = {}

    def app_context(self) -> AppContext:
        return ImhookAppContext(self)

    def create_url_adapter(self, request: Request | None):
        if request is None or self.config["TRUSTED_HOSTS"] is not None:
            return super().create_url_adapter(request)
        # Flask sets request.host here only to check it against TRUSTED_HOSTS before routing; with
        # none set, get_host cannot fail, and Request.host works out the same value if it is read.
        subdomain = None
        server_name = self.config["SERVER_NAME"]
        if self.url_map.host_matching:
            server_name = None
        elif not self.subdomain_matching:
            subdomain = self.url_map.default_subdomain or ""
        return self.url_map.bind_to_environ(request.environ, server_name=server_name, subdomain=subdomain)

    def ensure_sync(self, func: Callable) -> Callable:
        # Flask asks inspect.iscoroutinefunction for every request's view (~1 µs); the answer for a
        # plain function never changes.
        try:
            found = self._sync_of.get(func)
        except TypeError:  # unhashable: ask Flask each time
            return super().ensure_sync(func)
        if found is None:
            found = super().ensure_sync(func)
            if found is func:  # only plain functions: an async wrapper stays Flask's business
                if len(self._sync_of) >= MAX_SYNC_ENTRIES:
                    self._sync_of.clear()
                self._sync_of[func] = func
        return found

    def full_dispatch_request(self) -> Response:
        if request_started.receivers:
            return super().full_dispatch_request()
        self._got_first_request = True
        try:
            rv = self.preprocess_request()
            if rv is None:
                rv = self.dispatch_request()
        except Exception as e:
            rv = self.handle_user_exception(e)
        return self.finalize_request(rv)

    def dispatch_request(self):
        # Flask's, reading the request context once instead of through the `request_ctx` proxy.
        req = _cv_request.get().request
        if req.routing_exception is not None:
            self.raise_routing_exception(req)
        rule = req.url_rule
        if getattr(rule, "provide_automatic_options", False) and req.method == "OPTIONS":
            return self.make_default_options_response()
        return self.ensure_sync(self.view_functions[rule.endpoint])(**req.view_args)

    def finalize_request(self, rv, from_error_handler: bool = False) -> Response:
        if request_finished.receivers:
            return super().finalize_request(rv, from_error_handler)
        response = self.make_response(rv)
        try:
            response = self.process_response(response)
        except Exception:
            if not from_error_handler:
                raise
            self.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def preprocess_request(self):
        if self.url_value_preprocessors or self.before_request_funcs:
            return super().preprocess_request()
        return None  # what Flask's loops return when there is nothing to run

    def process_response(self, response: Response) -> Response:
        ctx = request_ctx._get_current_object()
        if (self.after_request_funcs or ctx._after_request_functions
                or not self.session_interface.is_null_session(ctx.session)):
            return super().process_response(response)
        return response

    def do_teardown_request(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        if self.teardown_request_funcs or exc is _sentinel:
            super().do_teardown_request(exc)
            return
        if request_tearing_down.receivers:
            request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)

    def do_teardown_appcontext(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        if self.teardown_appcontext_funcs or exc is _sentinel:
            super().do_teardown_appcontext(exc)
            return
        if appcontext_tearing_down.receivers:
            appcontext_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)
