"""Benchmark baseline (a): the least a Flask callback receiver can do.

Parse the JSON body and answer the IM's OK envelope (PROTOCOL.md §2): no signature check, no
schema, no rules, no logging, no recording. imhook's figures are compared against this app served
by the same gunicorn settings, so the ratio is what imhook itself costs.

    gunicorn --config python:benchmarks.configs.gunicorn_bare benchmarks.bare_app:app
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

app = Flask("bare")
OK = json.dumps({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})


@app.post("/callback")
def callback() -> Response:
    json.loads(request.get_data(cache=False))  # the body is read and parsed, as imhook does
    return Response(OK, status=200, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status": "ok"}', status=200, mimetype="application/json")
