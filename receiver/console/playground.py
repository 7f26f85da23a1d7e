"""The playground: rules edited in the page, tried on one callback or replayed over recent records.

The text is a YAML document with `rules:` (and optionally `chain:`), read by the same parser and
rule loader as the config file (receiver/config.py, rules/loader.py), so a mistake reads as
`imhook check` reports it: `playground.yaml:LINE: rules[0].config.x: what is wrong`. A chain is
built per run, used and closed: nothing reaches the running rules. Two things would otherwise leak
out of the page and are turned off: a `rate_limit` with a shared backend (Redis) counts in memory
here, so trying a rule does not spend the live counters; and the replay is bounded
(console.replay_max_records, replay_max_seconds), one at a time per process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config import Config, parse_config
from ..errors import ConfigError, ImhookError
from ..yamlfile import load_yaml

FILE_NAME = "playground.yaml"
ALLOWED_KEYS = ("rules", "chain")
MAX_TEXT_CHARS = 200_000
_REPLAY_LOCK = threading.Lock()


@dataclass
class Tried:
    """The decision of the edited rules on one callback."""

    status: int
    outcome: str
    rule: str
    reason: str
    reply: Any
    trace: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def rules_section(config_text: str) -> str:
    """The `chain:` and `rules:` parts of a config file's text, comments kept, to start editing from."""
    try:
        node = yaml.compose(config_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return "rules: []\n"
    if not isinstance(node, yaml.MappingNode):
        return "rules: []\n"
    lines = config_text.splitlines(keepends=True)
    keys = [(k.value, k.start_mark.line) for k, _ in node.value]
    pieces = []
    for i, (name, start) in enumerate(keys):
        if name in ALLOWED_KEYS:
            end = keys[i + 1][1] if i + 1 < len(keys) else len(lines)
            pieces.append("".join(lines[start:end]).rstrip() + "\n")
    return "\n".join(pieces) or "rules: []\n"


def build(text: str, running: Config) -> tuple[Any, list[str]]:
    """(a Receiver with the edited rules, notes); ConfigError naming playground.yaml, line and path."""
    from rules.loader import build_chain

    from ..core import Receiver
    from ..platforms import Platforms

    if len(text) > MAX_TEXT_CHARS:
        raise ConfigError(f"the rules are {len(text):,} characters; the playground takes at most {MAX_TEXT_CHARS:,}",
                          file=FILE_NAME)
    doc = load_yaml(text, FILE_NAME)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise doc.error((), "the playground takes a YAML mapping with rules: (and chain:), as in the config file")
    for key in doc.data or {}:
        if key not in ALLOWED_KEYS:
            raise doc.error((key,), f"the playground takes rules: and chain: only; {key}: belongs in the config file")
    config = parse_config(text, FILE_NAME, {**os.environ, "IMHOOK_APP_ID": running.app_id or "0"},
                          base_dir=running.base_dir, require_app_id=False)
    config.sections["recording"] = {**config.sections.get("recording", {}), "enabled": False}
    notes = []
    for index, item in enumerate(config.rules):
        backend = item.get("config", {}).get("backend")
        if backend not in (None, "memory"):
            item["config"]["backend"] = "memory"
            item["config"].pop("redis_url", None)  # only valid with the redis backend
            notes.append(f"rules[{index}] ({item.get('name') or item['use']}): backend {backend} counts in memory "
                         "here, so the live counters are not touched")
    platform = Platforms()
    return Receiver(config, build_chain(config, platform=platform), platform=platform), notes


def callback_query(body: Any, command: str, app_id: str) -> tuple[dict[str, str], str]:
    """(query, platform) to hand a pasted body to the trusted path, as `imhook explain` does."""
    from ..platforms import body_platform

    which = body_platform(body)
    if which:
        return {}, which
    command = command or (body.get("CallbackCommand") if isinstance(body, dict) else "") or ""
    if not isinstance(command, str) or not command:
        raise ImhookError("the callback has no CallbackCommand: add it to the body or choose the command")
    return {"SdkAppid": app_id or "0", "CallbackCommand": command}, ""


def try_callback(text: str, raw: bytes, command: str, running: Config) -> Tried:
    receiver, notes = build(text, running)  # the rules' mistakes first: they are what is being edited
    try:
        return _try(receiver, notes, raw, command, running.app_id)
    finally:
        receiver.chain.close()


def _try(receiver, notes: list[str], raw: bytes, command: str, app_id: str) -> Tried:
    from ..core import HttpRequest

    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ImhookError("the callback is not JSON: paste a callback body (a JSON object)") from None
    if not isinstance(body, dict):
        raise ImhookError(f"the callback is a JSON {type(body).__name__}, not an object")
    query, which = callback_query(body, command, app_id)
    outcome = receiver.handle(HttpRequest("POST", query, raw, platform=which), trusted=True)
    verdict = outcome.decision.verdict if outcome.decision else None
    return Tried(outcome.status, outcome.outcome_name, verdict.rule if verdict else "",
                 verdict.reason if verdict else (outcome.error.message if outcome.error else ""), outcome.reply,
                 [vars(step).copy() for step in outcome.decision.trace] if outcome.decision else [], notes)


@dataclass
class Replayed:
    html: str
    total: int
    changed: int
    stopped: str  # "" or why it stopped early
    notes: list[str]


def _until(items: Iterable, deadline: float, stopped: list[str], limit_seconds: float) -> Iterator:
    for item in items:
        if time.monotonic() > deadline:
            stopped.append(f"stopped after {limit_seconds:g} s (console.replay_max_seconds)")
            return
        yield item


def replay(text: str, running: Config, reader, *, hours: float, settings: dict, where: str) -> Replayed:
    """Replay the newest records of the last `hours` (bounded) against the edited rules."""
    from ..recording import replay as engine
    from ..recording.html_report import render_html

    if not _REPLAY_LOCK.acquire(blocking=False):
        raise ImhookError("another replay is running in this console; try again when it is done")
    try:
        receiver, notes = build(text, running)
        runner = engine.OfflineReplay(receiver)
        runner.target = "the rules in the playground"
        try:
            limit = settings["replay_max_records"]
            records = reader.newest(time.time() - hours * 3600, limit=limit)
            stopped: list[str] = []
            if len(records) >= limit:
                stopped.append(f"the newest {limit:,} records only (console.replay_max_records)")
            deadline = time.monotonic() + settings["replay_max_seconds"]
            summary = engine.run(_until(records, deadline, stopped, settings["replay_max_seconds"]), runner)
        finally:
            runner.close()
        html = render_html(summary, source=f"{where}, last {hours:g} h", target=runner.target, mode="offline")
        return Replayed(html, summary.total, summary.counts["changed"], "; ".join(stopped), notes)
    finally:
        _REPLAY_LOCK.release()

