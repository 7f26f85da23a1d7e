"""`imhook console`: the console alone, under gunicorn (already imhook's server), one worker.

One worker process with a few threads, the app built before it starts: the login limiter, the
one-replay-at-a-time lock and a per-start session secret are then one per console, and a config
or password problem ends the command with one line before anything listens. The console's traffic
is a few people's clicks; a replay's CPU is bounded by console.replay_max_seconds.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

THREADS = 4
SLACK_SECONDS = 30  # beyond the longest replay before gunicorn deems the worker stuck


class ConsoleServer(BaseApplication):
    def __init__(self, app, options: dict):
        self.application, self.options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def serve(app, bind: str, *, replay_seconds: float) -> None:
    ConsoleServer(app, {
        "bind": bind, "workers": 1, "worker_class": "gthread", "threads": THREADS,
        "timeout": int(replay_seconds + SLACK_SECONDS), "graceful_timeout": 10, "keepalive": 5,
        "accesslog": None,  # a search's query string holds what was searched for: not logged
        "control_socket_disable": True, "proc_name": "imhook-console",
    }).run()
