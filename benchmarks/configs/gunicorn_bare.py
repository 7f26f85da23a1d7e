"""gunicorn settings for the bare baseline app: imhook's own values, without imhook's hooks.

Importing the values (not copying them) keeps the three benchmarked servers on the same worker
class, worker and thread counts, keep-alive, backlog and access log, whatever gunicorn_conf says.
The worker class is imhook's (receiver/worker.py): past saturation it answers the bare app's
callbacks too without running the app, with the same OK envelope the app always sends, so the
overload run compares like with like.
"""

from receiver.gunicorn_conf import (access_log_format, accesslog, backlog, bind, graceful_timeout,  # noqa: F401
                                    keepalive, limit_request_line, loglevel, max_requests, threads, timeout,
                                    worker_class, workers)

__all__ = ["access_log_format", "accesslog", "backlog", "bind", "graceful_timeout", "keepalive",
           "limit_request_line", "loglevel", "max_requests", "threads", "timeout", "worker_class", "workers",
           "wsgi_app"]
wsgi_app = "benchmarks.bare_app:app"
