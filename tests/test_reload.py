"""`reload.watch`: a changed file swaps the rules in place; a bad one keeps the old rules."""

from __future__ import annotations

import json

from receiver.app import create_app
from receiver.client import callback_query

from .helpers import APP_ID, sample

CONFIG = """app_id: {app_id}
recording: {{enabled: false}}
reload: {{watch: true, interval_seconds: 60}}
rules:
  - use: sensitive_words
    config: {{words: [{word}]}}
"""


def masked(client, text):
    body = sample("C2C.CallbackBeforeSendMsg")
    body["MsgBody"][0]["MsgContent"]["Text"] = text
    reply = client.post("/callback", query_string=callback_query("C2C.CallbackBeforeSendMsg", APP_ID),
                        data=json.dumps(body)).get_json()
    return reply["MsgBody"][0]["MsgContent"]["Text"] if "MsgBody" in reply else text


def test_watch_swaps_rules_and_keeps_them_on_a_bad_file(tmp_path, caplog):
    path = tmp_path / "imhook.yaml"
    path.write_text(CONFIG.format(app_id=APP_ID, word="apple"))
    app = create_app(path)
    watcher = app.extensions["imhook.watcher"]
    client = app.test_client()
    try:
        assert masked(client, "apple pie") == "***** pie"
        path.write_text(CONFIG.format(app_id=APP_ID, word="pie"))
        assert watcher.check_now()
        assert masked(client, "apple pie") == "apple ***"
        path.write_text(CONFIG.format(app_id=APP_ID, word="pie") + "  - use: no_such_rule\n")
        assert not watcher.check_now()
        assert "config change rejected, the previous rules keep running" in caplog.text
        assert "unknown rule 'no_such_rule'" in caplog.text
        assert masked(client, "apple pie") == "apple ***"
    finally:
        watcher.stop()
