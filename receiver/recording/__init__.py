"""Recording of every callback the service answers, and replay of recordings against new rules.

Light on purpose: the web adapter, gunicorn hooks and CLI import the submodules they need.
"""

from __future__ import annotations


def stats() -> dict[str, int]:
    """Counters of this process's recorders: queue_depth, overflow_total, written_total, ..."""
    from .writer import stats as _stats

    return _stats()
