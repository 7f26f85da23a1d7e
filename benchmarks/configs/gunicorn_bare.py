"""gunicorn settings for the bare baseline app: imhook's own values, without imhook's hooks.

Importing the values (not copying them) keeps the three benchmarked servers on the same worker
class, worker and thread counts, keep-alive, backlog and access log, whatever gunicorn_conf says.
"""

from receiver.gunicorn_conf import (access_log_format, accesslog, backlog, bind, graceful_timeout,  # noqa: F401
                                    keepalive, limit_request_line, loglevel, max_requests, threads, timeout,
                                    worker_class, workers)

__all__ = ["access_log_format", "accesslog", "backlog", "bind", "graceful_timeout", "keepalive",
           "limit_request_line", "loglevel", "max_requests", "threads", "timeout", "worker_class", "workers",
           "wsgi_app"]
wsgi_app = "benchmarks.bare_app:app"
