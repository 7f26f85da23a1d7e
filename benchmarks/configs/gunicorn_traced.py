"""imhook's gunicorn settings and hooks, plus heap sampling in every worker (benchmarks/heaptrace.py).

Only `soak.py --trace DIR` serves with this; production never loads it. Everything else is
receiver/gunicorn_conf.py's, so the traced server is the shipped one.
"""

from receiver.gunicorn_conf import *  # noqa: F401,F403 - every setting and hook, as shipped
from receiver.gunicorn_conf import post_worker_init as _shipped_post_worker_init


def post_worker_init(worker):
    _shipped_post_worker_init(worker)
    from benchmarks.heaptrace import start_sampling

    start_sampling()
