"""Experiment only: imhook with every rule treated as `blocking`, so each before-callback is decided
on the chain's thread pool under `chain.deadline_ms`.

Chains made only of rules that do bounded CPU work (`blocking = False`: the built-in policy and text
rules, `rate_limit` with the memory backend) are decided in the request thread. One rule that may
block (a `regex` rule, a Redis-backed rate limit, a third-party rule) sends the whole chain through
the pool. Served with this module, configs/production.yaml pays that hop, so the difference from the
same config served normally is what the hop costs under load.

    gunicorn --config python:receiver.gunicorn_conf benchmarks.configs.pooled_chain:app
"""

from __future__ import annotations

from rules.chain import Chain

_original_init = Chain.__init__


def _init_pooled(self, *args, **kwargs) -> None:
    _original_init(self, *args, **kwargs)
    for entry in self.entries:
        entry.rule.blocking = True


Chain.__init__ = _init_pooled

from receiver.app import create_app  # noqa: E402  (after the patch: the app builds its chain now)

app = create_app()
