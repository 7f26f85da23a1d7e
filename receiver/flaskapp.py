"""imhook's Flask class: Flask's own request handling, less the steps that have nothing to do.

Every callback goes through Flask's request handling, and several of its steps walk lists of
hooks that imhook never registers (before/after/teardown functions, URL value preprocessors) or
rebuild per request what depends only on the server (the URL adapter's host, scheme and script
name). Each step below is Flask's own as long as any such hook or setting exists, and otherwise
does exactly what Flask's does with nothing registered, at a fraction of the cost: ~1 µs each of
a callback's ~20 µs of Flask handling (benchmarks/RESULTS.md, issue 16, step 11). Signals are
always sent: a receiver connected to one runs as it would. tests/test_flaskapp.py compares each
step with Flask's, with and without hooks.
"""

from __future__ import annotations

from flask import Flask, Response
from flask.globals import request_ctx
from flask.sansio.scaffold import _sentinel
from flask.signals import appcontext_tearing_down, request_tearing_down

from .routing import StaticFirstMap


class ImhookFlask(Flask):
    """Flask with StaticFirstMap as its URL map and the no-hook shortcuts described above."""

    url_map_class = StaticFirstMap

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
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)

    def do_teardown_appcontext(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        if self.teardown_appcontext_funcs or exc is _sentinel:
            super().do_teardown_appcontext(exc)
            return
        appcontext_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)

