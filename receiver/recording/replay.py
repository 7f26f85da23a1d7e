"""Replay recorded callbacks against the current (or given) rules and compare the replies.

Offline, each record goes through `Receiver.handle(..., trusted=True)`: the very path the server
runs, minus the app-id and Sign checks. Over HTTP, each record is re-signed and posted to a
running receiver. Either way the new reply is compared with the recorded one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ..client import describe_failure, hide_signature, post_callback, post_netease
from ..core import HttpRequest, Receiver
from ..errors import EXIT_CHANGED, EXIT_OK, EXIT_UNTESTED
from ..platforms import NETEASE_COPY, split_record_query
from ..signature import sign
from .record import Problem, Record
from .sent import describe_sent
from .summary import Case, Side, Summary

UNCHANGED, CHANGED, NEW, ERROR = "unchanged", "changed", "new", "error"
SIGN_PARAMS = ("Sign", "RequestTime")
# Replies that mean the receiver turned the request away before its rules ran (PROTOCOL.md §2).
REFUSALS = {401: "the receiver refused the signature; pass --token or set IMHOOK_TOKEN to its token",
            403: "the receiver serves another app; pass its SdkAppid with --app-id or IMHOOK_APP_ID"}


def build_receiver(rules_file: str | None = None, env: dict[str, str] | None = None) -> Receiver:
    """A receiver with the rules of `rules_file` (default: $IMHOOK_CONFIG, else the bundled one)."""
    from rules.loader import build_chain

    from ..config import load_config
    from ..platforms import Platforms

    config = load_config(rules_file, dict(os.environ if env is None else env), require_app_id=False)
    platform = Platforms()
    return Receiver(config, build_chain(config, platform=platform), platform=platform)


def compare(record: Record, new: Side) -> Case:
    """Classify one replayed record: unchanged, changed, or new (nothing recorded to compare)."""
    old = Side(record.status, record.reply, record.outcome, record.rule, record.reason) if record.has_reply else None
    if old is None:
        kind = NEW
    else:
        kind = UNCHANGED if (old.status, old.reply) == (new.status, new.reply) else CHANGED
    return Case(record.where, record.command, record.user, record.received_at, kind, old, new)


def check_replayable(record: Record) -> str | None:
    """Why a record cannot be replayed (None: it can)."""
    if record.body_truncated:
        return "the body was truncated when recorded (a rejected request over max_rejected_body_bytes)"
    if record.rejected:
        return None  # junk bodies are what rejected records are about: replay them as they are
    if not record.body.strip() and split_record_query(record.query)[0] == NETEASE_COPY:
        return None  # the NetEase console's address check: an empty body, answered 200
    try:
        body = json.loads(record.body)
    except (ValueError, RecursionError) as exc:
        return f"the body is not valid JSON, the record is truncated or corrupt ({exc})"
    if not isinstance(body, dict):
        return f"the body is a JSON {type(body).__name__}, not an object"
    return None


class OfflineReplay:
    """Replay through an in-process Receiver: the server's own code path."""

    mode = "offline"

    def __init__(self, receiver: Receiver, *, save: Callable[[Record], None] | None = None):
        self.receiver = receiver
        self.target = receiver.config.file
        self.save = save  # receives each record answered anew: a new baseline

    def __call__(self, record: Record) -> Case:
        platform, query = split_record_query(record.query)
        query = {**query}
        if not platform:
            query.setdefault("CallbackCommand", record.command)
            # A hand-made record may lack SdkAppid; the trusted path still wants one to be present.
            query.setdefault("SdkAppid", self.receiver.config.app_id or "0")
        outcome = self.receiver.handle(HttpRequest("POST", query, record.body, request_id=record.request_id,
                                                   platform=platform), trusted=True)
        verdict = outcome.decision.verdict if outcome.decision else None
        new = Side(outcome.status, outcome.reply, outcome.outcome_name, verdict.rule if verdict else "",
                   verdict.reason if verdict else (outcome.error.message if outcome.error else ""))
        if self.save:
            self.save(replace(record, status=new.status, reply=new.reply, outcome=new.outcome, rule=new.rule,
                              reason=new.reason, elapsed_ms=round(outcome.elapsed_ms, 3), id=None, origin="",
                              trace=[vars(step).copy() for step in outcome.decision.trace] if outcome.decision else []))
        return compare(record, new)

    def close(self) -> None:
        self.receiver.chain.close()


class RateLimiter:
    """Space calls evenly at `rate` per second across threads (None: no limit)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class HttpReplay:
    """Re-post each record to a running receiver, re-signed with a fresh RequestTime."""

    mode = "http"

    def __init__(self, url: str, *, app_id: str | None, token: str | None, timeout: float = 5.0,
                 rate: float | None = None, before_commands: Iterable[str] = (),
                 netease_key: str | None = None, netease_secret: str | None = None):
        self.target = hide_signature(url)
        self.url, self.app_id, self.token, self.timeout = url, app_id, token, timeout
        # NetEase records go to the same receiver's NetEase paths, signed with these.
        self.netease_key, self.netease_secret = netease_key, netease_secret
        self.limiter = RateLimiter(rate)
        self.before_commands = frozenset(before_commands)
        self._local = threading.local()
        # Replies that are no callback answer (401, 403, 5xx, not JSON) where the recording had one:
        # when every reply is one, the receiver's rules were never tested (exit_status).
        self.turned_away: Counter = Counter()
        self.answered = 0
        self._count_lock = threading.Lock()

    def _session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def query_for(self, record: Record) -> dict[str, str]:
        query = {k: v for k, v in record.query.items() if k not in SIGN_PARAMS}
        query["CallbackCommand"] = query.get("CallbackCommand") or record.command
        if self.app_id:
            query["SdkAppid"] = self.app_id
        if self.token:
            request_time = str(int(time.time()))
            query["RequestTime"], query["Sign"] = request_time, sign(self.token, request_time)
        return query

    def __call__(self, record: Record) -> Case:
        platform = split_record_query(record.query)[0]
        if platform:
            return self._netease(record, platform)
        query = self.query_for(record)
        return self._post(record, self.url, lambda: post_callback(
            self.url, record.body, app_id=query.get("SdkAppid", ""), query=query, session=self._session(),
            timeout=self.timeout), lambda result: classify_reply(record.command, result.status, result.reply,
                                                                 self.before_commands))

    def _netease(self, record: Record, platform: str) -> Case:
        """Re-post a NetEase record to the receiver's NetEase path, signed anew (headers, not query)."""
        if not self.netease_key:
            return error_case(record, "a NetEase record needs the AppKey: set IMHOOK_NETEASE_APP_KEY "
                                      "(and IMHOOK_NETEASE_APP_SECRET) to what the receiver checks")
        url = netease_url(self.url, platform)
        return self._post(record, url, lambda: post_netease(
            url, record.body, app_key=self.netease_key, secret=self.netease_secret, session=self._session(),
            timeout=self.timeout), lambda result: classify_netease_reply(platform, result.status, result.reply))

    def _post(self, record: Record, url: str, post, classify) -> Case:
        """Send one record (at the rate limit), count the reply, compare it with the recorded one."""
        self.limiter.wait()
        try:
            result = post()
        except requests.RequestException as exc:
            return error_case(record, f"HTTP request failed: {describe_failure(exc, url, self.timeout)}")
        with self._count_lock:
            self.answered += 1
            if not result.ok and result.status != record.status:
                self.turned_away[result.status] += 1
        # Over HTTP only the reply is seen: the outcome is read back from it, the rule is unknown.
        return compare(record, Side(result.status, result.reply, classify(result), None, None))

    def close(self) -> None:
        pass


def netease_url(url: str, platform: str) -> str:
    """The NetEase path of the receiver `url` names (its Tencent callback URL, or a NetEase one)."""
    parts = urlsplit(url)
    path = "/netease/copy" if platform == NETEASE_COPY else "/netease/callback"
    base = parts.path.rsplit("/netease/", 1)[0] if "/netease/" in parts.path else parts.path
    base = base[:-len("/callback")] if base.endswith("/callback") else base.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, base + path, "", ""))


def classify_netease_reply(platform: str, status: int, reply: Any) -> str:
    """The outcome a NetEase reply expresses: errCode 0 lets it through (rewritten with a
    modifyResponse), errCode 1 refuses with responseCode, or drops silently with 200."""
    if status != 200 or not isinstance(reply, dict):
        return "rejected"
    if platform == NETEASE_COPY:
        return "notify"
    if str(reply.get("errCode", 0)) == "1":
        return "drop" if str(reply.get("responseCode")) == "200" else "refuse"
    return "rewrite" if reply.get("modifyResponse") else "allow"


def classify_reply(command: str, status: int, reply: Any, before_commands: frozenset[str]) -> str:
    """The outcome a Tencent reply expresses (PROTOCOL.md §3)."""
    if status != 200 or not isinstance(reply, dict):
        return "rejected"
    if command not in before_commands:
        return "notify"
    items = reply.get("ResultItem")
    if isinstance(items, list) and items:
        refused = [i for i in items if isinstance(i, dict) and i.get("ResultCode")]
        return "allow" if not refused else "refuse" if len(refused) == len(items) else "refuse_some"
    code = reply.get("ErrorCode")
    if code == 2 and command.endswith("CallbackBeforeSendMsg"):
        return "drop"
    if code:
        return "refuse"
    if reply.get("RefusedMembers_Account"):
        return "refuse_some"
    if "MsgBody" in reply or "CloudCustomData" in reply:
        return "rewrite"
    return "allow"


def error_case(item: Record | Problem, why: str) -> Case:
    if isinstance(item, Problem):
        return Case(item.where, "", "", 0.0, ERROR, error=item.why)
    return Case(item.where, item.command, item.user, item.received_at, ERROR, error=why)


def run(items: Iterable[Record | Problem], replay: Callable[[Record], Case], *, include_rejected: bool = False,
        concurrency: int = 1, progress: Callable[[int], Any] | None = None) -> Summary:
    """Replay every item into a Summary; a bad record is reported and the run goes on."""
    summary = Summary()
    for case in _cases(items, replay, summary, include_rejected, concurrency):
        if case is None:
            summary.skipped_rejected += 1
        else:
            summary.add(case)
        if progress:
            progress(1)
    return summary


def _cases(items, replay, summary: Summary, include_rejected: bool, concurrency: int) -> Iterator[Case | None]:
    def one(item: Record | Problem) -> Case | None:
        if isinstance(item, Problem):
            return error_case(item, item.why)
        if item.rejected and not include_rejected:
            return None
        why = check_replayable(item)
        if why:
            return error_case(item, why)
        try:
            case = replay(item)
        except Exception as exc:  # one bad record must not end the run; it is reported
            return error_case(item, f"replay failed: {type(exc).__name__}: {hide_signature(str(exc))}")
        if case.kind in (CHANGED, NEW):  # the report shows what was sent beside the replies
            case.sent = describe_sent(item)
        return case

    def note(item) -> None:
        if isinstance(item, Record) and item.redacted:
            summary.redacted += 1

    if concurrency <= 1:
        for item in items:
            note(item)
            yield one(item)
        return
    # Keep a bounded window in flight so a huge source is streamed, and results stay in order.
    with ThreadPoolExecutor(concurrency, thread_name_prefix="imhook-replay") as pool:
        window: deque = deque()
        for item in items:
            note(item)
            window.append(pool.submit(one, item))
            if len(window) >= concurrency * 4:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def exit_status(summary: Summary, replay: Callable[[Record], Case], *, fail_on_change: bool,
                selection_hint: str = "") -> tuple[int, str]:
    """The exit code of a replay and the one line that explains it ("" when all is well).

    3 (nothing tested, or the target failed) wins over 1 (decisions changed): a change seen in a run
    where records errored or the receiver turned requests away says nothing about the rules.
    """
    total = summary.total
    if total == 0:
        if summary.skipped_rejected:
            return EXIT_UNTESTED, (f"nothing replayed: all {summary.skipped_rejected} selected records are "
                                   "rejected requests; pass --include-rejected to replay them")
        return EXIT_UNTESTED, f"nothing replayed: 0 records selected{selection_hint}"
    errors = summary.counts["error"]
    if errors == total:
        return EXIT_UNTESTED, f"no record could be replayed; the first: {summary.errors[0].error}"
    if errors:
        return EXIT_UNTESTED, (f"{errors} of {total} records could not be replayed (see Errors above); "
                               "the rules were not tested on them")
    turned_away = getattr(replay, "turned_away", None)
    if turned_away and sum(turned_away.values()) == getattr(replay, "answered", 0):
        status, _ = turned_away.most_common(1)[0]
        why = REFUSALS.get(status) or ("the receiver failed; see its log" if status >= 500 else
                                       "not a JSON object, which the IM counts as no reply" if status == 200 else
                                       "not an answer the IM accepts")
        shown = f"HTTP {status}" if len(turned_away) == 1 else f"no usable reply (HTTP {', '.join(map(str, turned_away))})"
        return EXIT_UNTESTED, f"every reply was {shown}: {why}"
    if fail_on_change and summary.counts["changed"]:
        return EXIT_CHANGED, f"{summary.counts['changed']} of {total} decisions changed (--fail-on-change)"
    return EXIT_OK, ""
