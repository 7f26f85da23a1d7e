"""Configuration: one YAML file plus environment variables (the environment wins).

Validated once at start-up with marshmallow; every error names the file, the YAML path and line.
Other parts of imhook (recording, forwarding, metrics) add their own section schema to SECTIONS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .errors import ConfigError
from .model import FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, GROUP_INVITE, GROUP_JOIN, MESSAGE_SEND, TOPIC_CREATE
from .yamlfile import YamlDocument, errors_to_config_error, load_yaml

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
OUTCOMES = ("allow", "refuse", "drop")
SHED_AFTER_MS = 500.0  # server.shed_after_ms; also what the worker uses for an app without imhook
# server.shed_reply: what a shed before-callback is answered, per event kind (or `default`).
SHED_KINDS = (MESSAGE_SEND, FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, GROUP_JOIN, GROUP_INVITE, TOPIC_CREATE)
SHED_REPLIES = ("allow", "on_error")


class Section(Schema):
    class Meta:
        unknown = RAISE


class AuthSection(Section):
    token_env = fields.String(load_default="IMHOOK_TOKEN")
    token_file_env = fields.String(load_default="IMHOOK_TOKEN_FILE")
    token_file = fields.String(load_default=None, allow_none=True)
    window_seconds = fields.Float(load_default=60.0, validate=validate.Range(min=1))


def _cidr(value: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") from None


class ServerSection(Section):
    max_body_bytes = fields.Integer(load_default=1 << 20, validate=validate.Range(min=1024))
    # A callback that waited this long in a worker's queue is answered at once with the fail-open
    # reply, without the rules (receiver/worker.py): past 2 s the IM lets it through anyway
    # (PROTOCOL.md §2), and answering sooner keeps the queue short for the rest. 0: never.
    shed_after_ms = fields.Float(load_default=SHED_AFTER_MS, validate=validate.Range(
        min=0, max=1900, error="must be 0 (never shed) or a wait in ms under the IM's 2000 ms budget, at most 1900"))
    # allow: what the IM does itself when a callback times out; on_error: the chain.on_error outcome
    # rendered for the callback (parsed, no rule run), so overload cannot be used to skip the rules.
    shed_reply = fields.Dict(keys=fields.String(validate=validate.OneOf(("default",) + SHED_KINDS)),
                             values=fields.String(validate=validate.OneOf(SHED_REPLIES)),
                             load_default=lambda: {"default": "allow"})
    allow_ips = fields.List(fields.String(validate=_cidr), load_default=list)
    trusted_proxies = fields.Integer(load_default=0, validate=validate.Range(min=0))
    log_text = fields.Boolean(load_default=False)


class ChainSection(Section):
    deadline_ms = fields.Float(load_default=1500.0, validate=validate.Range(min=1, max=1900))
    on_error = fields.String(load_default="allow", validate=validate.OneOf(OUTCOMES))
    rule_budget_ms = fields.Float(load_default=200.0, validate=validate.Range(min=0.1))
    threads = fields.Integer(load_default=8, validate=validate.Range(min=1, max=256))


class ReloadSection(Section):
    watch = fields.Boolean(load_default=False)
    interval_seconds = fields.Float(load_default=2.0, validate=validate.Range(min=0.1))


class ScopeSection(Section):
    commands = fields.List(fields.String(), load_default=list)
    group_types = fields.List(fields.String(), load_default=list)
    conversations = fields.List(fields.String(validate=validate.OneOf(("c2c", "group", "official"))),
                                load_default=list)
    users = fields.List(fields.String(), load_default=list)
    except_users = fields.List(fields.String(), load_default=list)


class RuleEntry(Section):
    use = fields.String(required=True)
    name = fields.String(load_default=None)
    enabled = fields.Boolean(load_default=True)
    scope = fields.Nested(ScopeSection, load_default=dict)
    on_error = fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))
    budget_ms = fields.Float(load_default=None, validate=validate.Range(min=0.1))
    config = fields.Dict(keys=fields.String(), load_default=dict)


SECTIONS: dict[str, type[Schema]] = {
    "auth": AuthSection,
    "server": ServerSection,
    "chain": ChainSection,
    "reload": ReloadSection,
}


def _gather_sections() -> None:
    """Add the sections of imhook's parts (recording, operations) so one pass validates all."""
    from . import parts

    for module in parts.modules("settings"):
        SECTIONS.update(module.SECTIONS)


_gather_sections()


def _config_schema() -> Schema:
    attrs: dict[str, Any] = {
        "app_id": fields.Raw(load_default=None, allow_none=True),
        "platform": fields.String(load_default="tencent", validate=validate.OneOf(("tencent",))),
        "rules": fields.List(fields.Nested(RuleEntry), load_default=list),
    }
    for name, schema in SECTIONS.items():
        attrs[name] = fields.Nested(schema, load_default=lambda s=schema: s().load({}))
    return Section.from_dict(attrs, name="ImhookConfig")()


@dataclass
class Config:
    """The validated configuration, secrets resolved from the environment."""

    file: str
    app_id: str
    tokens: tuple[str, ...]
    sections: dict[str, dict[str, Any]]
    rules: list[dict[str, Any]]
    document: YamlDocument
    base_dir: Path = field(default_factory=Path.cwd)

    def __getattr__(self, name: str) -> dict[str, Any]:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def __repr__(self) -> str:  # never show tokens
        return f"Config(file={self.file!r}, app_id={self.app_id!r}, tokens=<{len(self.tokens)} hidden>)"


def config_path(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env["IMHOOK_CONFIG"]) if env.get("IMHOOK_CONFIG") else DEFAULT_CONFIG


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None, *,
                require_app_id: bool = True) -> Config:
    """Read, validate and resolve a config file (default: $IMHOOK_CONFIG, else the bundled one)."""
    env = dict(os.environ if env is None else env)
    path = Path(path) if path else config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", file=str(path)) from None
    return parse_config(text, str(path), env, base_dir=path.parent, require_app_id=require_app_id)


def parse_config(text: str, file: str, env: dict[str, str], base_dir: Path | None = None, *,
                 require_app_id: bool = True) -> Config:
    doc = load_yaml(text, file)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise doc.error((), "the config file must be a YAML mapping at the top level")
    try:
        loaded = _config_schema().load(doc.data)
    except ValidationError as exc:
        raise errors_to_config_error(doc, exc.messages) from None
    app_id = env.get("IMHOOK_APP_ID") or loaded["app_id"]
    if app_id in (None, "") and require_app_id:
        raise doc.error(("app_id",), "no app id: set app_id in the config or IMHOOK_APP_ID in the environment")
    sections = {name: loaded[name] for name in SECTIONS}
    return Config(
        file=file, app_id="" if app_id is None else str(app_id), tokens=resolve_tokens(sections["auth"], env, base_dir or Path.cwd()),
        sections=sections, rules=loaded["rules"], document=doc, base_dir=base_dir or Path.cwd(),
    )


def resolve_tokens(auth: dict[str, Any], env: dict[str, str], base_dir: Path) -> tuple[str, ...]:
    """Tokens from $IMHOOK_TOKEN (comma-separated), else the file named by $IMHOOK_TOKEN_FILE.

    Several tokens are accepted at once so a token can be rotated without downtime.
    """
    raw = env.get(auth["token_env"], "")
    file = env.get(auth["token_file_env"]) or auth["token_file"]
    if not raw and file:
        token_path = Path(file) if Path(file).is_absolute() else base_dir / file
        try:
            raw = token_path.read_text(encoding="utf-8")
        except OSError as exc:
            # Name the file, never its content.
            raise ConfigError(f"cannot read token file {token_path}: {exc.strerror}") from None
    return tuple(t.strip() for t in raw.replace("\n", ",").split(",") if t.strip())
