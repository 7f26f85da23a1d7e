"""How an IM reads an HTTP answer to a callback, whichever IM it is: on time, HTTP 200, a JSON object."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from receiver.client import PostResult

from .report import Exchange


def read_answer(exchange: Exchange, budget: float, post: Callable[[], PostResult]) -> Exchange:
    """Call `post` and note on `exchange` whether its answer counts as a reply.

    Only HTTP 200 with a JSON object within `budget` seconds counts; anything else leaves the
    IM's default to apply, and says why in the exchange's warnings.
    """
    started = time.perf_counter()
    try:
        result = post()
    except requests.Timeout:
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.warnings.append(f"no reply within {budget:g} s: a late reply counts as none")
        return exchange
    except requests.RequestException as exc:
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.warnings.append(f"no answer ({type(exc).__name__}): the receiver is unreachable")
        return exchange
    exchange.status, exchange.reply, exchange.elapsed_ms = result.status, result.reply, result.elapsed_ms
    if result.elapsed_ms > budget * 1000:
        exchange.warnings.append(f"the reply took {result.elapsed_ms:.0f} ms, over the IM's "
                                 f"{budget:g} s: it counts as no reply")
    elif result.status != 200:
        exchange.warnings.append(f"HTTP {result.status}: only HTTP 200 with JSON counts as a reply")
    elif not result.ok:
        exchange.warnings.append("the reply is not a JSON object: it counts as no reply")
    else:
        exchange.answered = True
    return exchange
