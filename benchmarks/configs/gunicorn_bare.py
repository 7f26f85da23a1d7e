"""gunicorn settings for the bare baseline app: imhook's own values, without imhook's hooks.

Importing the values (not copying them) keeps every benchmarked server on the same worker class,
worker and thread counts, keep-alive, backlog, limits, listening sockets (`reuse_port`) and access
log (off, as shipped), whatever gunicorn_conf says: the ratio to this app then measures imhook, not
gunicorn's configuration (issue 16). The worker class is imhook's (receiver/worker.py): past
saturation it answers the bare app's callbacks too without running the app, with the same OK
envelope the app always sends, so the overload run compares like with like.
"""

from receiver import gunicorn_conf as _imhook

_SETTINGS = ("access_log_format", "accesslog", "backlog", "bind", "control_socket_disable", "graceful_timeout",
             "keepalive", "limit_request_field_size", "limit_request_fields", "limit_request_line", "loglevel",
             "max_requests", "reuse_port", "threads", "timeout", "worker_class", "worker_connections", "workers")
globals().update({name: getattr(_imhook, name) for name in _SETTINGS if hasattr(_imhook, name)})
# The one hook that is not imhook's own business: the heap frozen after the app is built.
post_worker_init = _imhook.post_worker_init
wsgi_app = "benchmarks.bare_app:app"
__all__ = [name for name in (*_SETTINGS, "post_worker_init", "wsgi_app") if name in globals()]
