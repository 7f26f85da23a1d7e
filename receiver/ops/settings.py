"""Config sections owned by receiver.ops: `metrics`, `logging`, `forwarding`.

Kept free of prometheus_client and requests on purpose: the gunicorn master imports this module
(through receiver.config) before it sets PROMETHEUS_MULTIPROC_DIR, and prometheus_client reads that
variable once, at import.
"""

from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class _Section(Schema):
    class Meta:
        unknown = RAISE


class MetricsSection(_Section):
    enabled = fields.Boolean(load_default=True)


class LoggingSection(_Section):
    enabled = fields.Boolean(load_default=True)
    level = fields.String(load_default="info", validate=validate.OneOf(LOG_LEVELS))
    callbacks = fields.Boolean(load_default=True)


class RetrySection(_Section):
    base_seconds = fields.Float(load_default=0.5, validate=validate.Range(min=0.01, max=3600))
    cap_seconds = fields.Float(load_default=60.0, validate=validate.Range(min=0.01, max=86400))
    max_attempts = fields.Integer(load_default=0, validate=validate.Range(min=0))

    @validates_schema
    def _cap_not_below_base(self, data, **kwargs):
        if data["cap_seconds"] < data["base_seconds"]:
            raise ValidationError("must not be smaller than base_seconds", "cap_seconds")


def _non_empty(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")


# Options of one kind of target only, and their defaults (filled after validation).
_KIND_OPTIONS = {
    "http": {"secret_env": None},
    "redis_stream": {"stream": "imhook.{command}", "maxlen": 100_000, "approximate": True,
                     "dedupe_ttl_seconds": 86_400},
    "nats": {"stream": "IMHOOK", "subject": "imhook.events.{command}", "create_stream": True,
             "duplicate_window_seconds": 600.0, "max_msgs": 1_000_000},
}
_URL_SOURCES = ("url", "url_env", "url_file")
_ENV_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="must be the name of an environment variable")


def _template(value: str) -> None:
    from .forward.brokerconf import template_problem

    problem = template_problem(value)
    if problem:
        raise ValidationError(problem)


class TargetSection(_Section):
    # http (POST), redis_stream (XADD) or nats (JetStream publish): receiver/ops/forward/brokers.py.
    kind = fields.String(load_default="http", validate=validate.OneOf(("http", "redis_stream", "nats")))
    # Exactly one of url, url_env (a variable holding it), url_file (a file holding it); the URL of a
    # broker may hold its password: prefer url_env or url_file, it is never logged.
    url = fields.String(load_default=None, validate=_non_empty)
    url_env = fields.String(load_default=None, validate=_ENV_NAME)
    url_file = fields.String(load_default=None, validate=_non_empty)
    name = fields.String(load_default=None, validate=validate.Regexp(
        r"^[A-Za-z0-9_.:-]{1,64}$", error="must be 1–64 letters, digits or _.:-"))
    # fnmatch globs over CallbackCommand, e.g. "C2C.CallbackAfter*"; only After*/notification
    # callbacks are ever forwarded, whatever the glob.
    commands = fields.List(fields.String(validate=_non_empty), load_default=lambda: ["*"],
                           validate=validate.Length(min=1, error="list at least one command or glob"))
    timeout_seconds = fields.Float(load_default=2.0, validate=validate.Range(min=0.1, max=60))
    secret_env = fields.String(load_default=None, validate=_ENV_NAME)
    # redis_stream: the key template; nats: the JetStream stream's name.
    stream = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    subject = fields.String(load_default=None, validate=[validate.Length(min=1, max=200), _template])
    maxlen = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**9))
    approximate = fields.Boolean(load_default=None)
    dedupe_ttl_seconds = fields.Integer(load_default=None, validate=validate.Range(min=0, max=30 * 86_400))
    create_stream = fields.Boolean(load_default=None)
    duplicate_window_seconds = fields.Float(load_default=None, validate=validate.Range(min=1, max=7 * 86_400))
    max_msgs = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10**12))

    @validates_schema
    def _options_of_kind(self, data, **kwargs):
        kind = data.get("kind", "http")
        for option, value in data.items():
            owners = [k for k, options in _KIND_OPTIONS.items() if option in options]
            if value is not None and owners and kind not in owners:
                raise ValidationError(f"is an option of kind {owners[0]} targets, not of kind {kind}", option)
        given = [source for source in _URL_SOURCES if data.get(source)]
        if len(given) != 1:
            raise ValidationError("give exactly one of url, url_env, url_file", given[1] if given else "url")
        if kind == "http" and not data.get("url"):
            raise ValidationError("an http target takes its URL from `url`", given[0])
        if kind == "http":
            try:
                validate.URL(schemes={"http", "https"}, require_tld=False)(data["url"])
            except ValidationError as exc:
                raise ValidationError(exc.messages, "url") from None
        if kind != "http" and data.get("url"):  # from url_env / url_file: checked when read (events.py)
            from .forward.brokerconf import url_problem

            problem = url_problem(kind, data["url"])
            if problem:
                raise ValidationError(f"the {kind} URL {problem}", "url")
        if data.get("stream") is not None:
            self._check_stream(kind, data["stream"])

    @staticmethod
    def _check_stream(kind: str, stream: str) -> None:
        if kind == "nats" and not re.match(r"^[A-Za-z0-9_-]{1,64}$", stream):
            raise ValidationError("a JetStream stream name: 1–64 letters, digits, _ or -", "stream")
        if kind == "redis_stream":
            try:
                _template(stream)
            except ValidationError as exc:
                raise ValidationError(exc.messages, "stream") from None

    @post_load
    def _kind_defaults(self, data, **kwargs):
        """Fill the options of the target's kind; leave out the others' and the URL sources not used."""
        mine = _KIND_OPTIONS[data["kind"]]
        for option in [o for options in _KIND_OPTIONS.values() for o in options if o not in mine]:
            data.pop(option, None)
        for source in ("url_env", "url_file"):
            if data.get(source) is None:
                data.pop(source, None)
        for option, default in mine.items():
            if data.get(option) is None:
                data[option] = default
        return data


LEASE_SECONDS = 30.0  # default of forwarding.lease_seconds
LEASE_MAX_SECONDS = 3600.0


class ForwardingSection(_Section):
    targets = fields.List(fields.Nested(TargetSection), load_default=list)
    # A SQLite file, relative to the config file's folder (the "path" mark: receiver/config.py
    # resolves it), or a postgresql:// URL: one outbox shared by every instance (pgoutbox.py). The
    # URL, with its password, may instead come from the variable named by outbox_env, or the first
    # line of outbox_file; the environment wins, then the file, then `outbox`.
    outbox = fields.String(load_default="imhook-outbox.sqlite3", validate=_non_empty, metadata={"path": True})
    outbox_env = fields.String(load_default="IMHOOK_OUTBOX_DSN", validate=validate.Regexp(
        r"^[A-Za-z_][A-Za-z0-9_]*$", error="must be the name of an environment variable"))
    outbox_file = fields.String(load_default=None, allow_none=True, validate=_non_empty, metadata={"path": True})
    # With PostgreSQL: each instance's SQLite file where events wait while the database cannot take
    # them (down, or slower than the reply may wait); the sender moves them on when it is back.
    spool = fields.String(load_default="imhook-outbox-spool.sqlite3", validate=_non_empty, metadata={"path": True})
    # With PostgreSQL: a sender claims an event for this long; if its instance dies, another
    # instance's sender takes the event after it. Longer than every target's timeout_seconds.
    lease_seconds = fields.Float(load_default=LEASE_SECONDS, validate=validate.Range(min=1, max=LEASE_MAX_SECONDS))
    # With PostgreSQL: an event is sent this long after it was received at the earliest, so that an
    # earlier event of its conversation still in another instance's spool (the database just back)
    # can take its place in line. 0: send at once, order across instances only while all are healthy.
    settle_seconds = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=60))
    concurrency = fields.Integer(load_default=4, validate=validate.Range(min=1, max=64))
    poll_seconds = fields.Float(load_default=0.5, validate=validate.Range(min=0.05, max=60))
    keep_delivered_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))
    # The sender making no progress (no round begun, no row finished) this long is replaced by a
    # new thread and /readyz says why (receiver/ops/forward/sender.py). Above the longest
    # timeout_seconds of a target. A downstream that is down is not a stall: see the backlog gauges.
    stall_seconds = fields.Float(load_default=120.0, validate=validate.Range(min=1, max=86400))
    retry = fields.Nested(RetrySection, load_default=lambda: RetrySection().load({}))

    @validates_schema
    def _lease_outlasts_a_delivery(self, data, **kwargs):
        longest = max((t["timeout_seconds"] for t in data.get("targets", [])), default=0.0)
        if "lease_seconds" in data and data["lease_seconds"] <= longest:
            raise ValidationError(f"must be longer than the longest target timeout_seconds ({longest:g}): a "
                                  "sender must be able to finish a delivery before its claim lapses", "lease_seconds")

    @validates_schema
    def _unique_names(self, data, **kwargs):
        from .forward.events import target_name

        seen: dict[str, int] = {}
        for index, target in enumerate(data.get("targets", [])):
            name = target_name(target)
            if name in seen:
                raise ValidationError(
                    {index: {"name": [f"target name {name!r} is already used by targets[{seen[name]}]; "
                                      "give one of them a distinct `name`"]}}, "targets")
            seen[name] = index


SECTIONS: dict[str, type[Schema]] = {
    "metrics": MetricsSection,
    "logging": LoggingSection,
    "forwarding": ForwardingSection,
}
