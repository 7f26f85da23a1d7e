"""Configuration: one YAML file plus environment variables (the environment wins).

Validated once at start-up with marshmallow; every error names the file, the YAML path and line.
Other parts of imhook (recording, forwarding, metrics) add their own section schema to SECTIONS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .errors import ConfigError
from .model import FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, GROUP_INVITE, GROUP_JOIN, MESSAGE_SEND, TOPIC_CREATE
from .yamlfile import YamlDocument, errors_to_config_error, load_yaml

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
# Marks a config field that names a file or folder: a relative value is resolved once, at load,
# against the config file's folder (the bundled default's against the working directory).
PATH = {"path": True}
NOT_TEXT = "not a UTF-8 text file; name the YAML config"
PATH_MAX_BYTES = 4096  # Linux's PATH_MAX: a longer path fails in open() with ENAMETOOLONG
NAME_MAX_BYTES = 255  # ... and NAME_MAX, for one name in it
APP_ID_DIGITS = 20  # an SdkAppid is a whole number (1400000000); 20 digits hold any 64-bit one
OUTCOMES = ("allow", "refuse", "drop")
SHED_AFTER_MS = 100.0  # server.shed_after_ms (why 100: docs/operations.md); also for an app without imhook
# server.shed_target_ms and shed_interval_ms: the standing-queue test (receiver/standing_queue.py;
# why these: docs/operations.md); also for an app without imhook.
SHED_TARGET_MS = 20.0
SHED_INTERVAL_MS = 50.0  # CoDel's 100 ms let the queue grow back on a fast host (docs/operations.md)
# server.shed_reply: what a shed before-callback is answered, per event kind (or `default`).
SHED_KINDS = (MESSAGE_SEND, FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, GROUP_JOIN, GROUP_INVITE, TOPIC_CREATE)
SHED_REPLIES = ("allow", "on_error")


class Section(Schema):
    class Meta:
        unknown = RAISE


class AuthSection(Section):
    token_env = fields.String(load_default="IMHOOK_TOKEN")
    token_file_env = fields.String(load_default="IMHOOK_TOKEN_FILE")
    token_file = fields.String(load_default=None, allow_none=True, metadata=PATH)
    window_seconds = fields.Float(load_default=60.0, validate=validate.Range(min=1))


class NeteaseSection(Section):
    """NetEase IM (PROTOCOL.md §8): on when an app key and a secret are set (docs/netease.md)."""

    app_key = fields.String(load_default=None, allow_none=True)
    app_key_env = fields.String(load_default="IMHOOK_NETEASE_APP_KEY")
    secret_env = fields.String(load_default="IMHOOK_NETEASE_APP_SECRET")
    secret_file_env = fields.String(load_default="IMHOOK_NETEASE_APP_SECRET_FILE")
    secret_file = fields.String(load_default=None, allow_none=True, metadata=PATH)
    # CurTime freshness; None: auth.window_seconds, the Tencent window.
    window_seconds = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=1))


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
    # Below the ceiling: once every callback for shed_interval_ms waited longer than shed_target_ms,
    # the worker's queue is standing (not a burst that drains), and while it stands a callback that
    # waited longer than the target is shed too (receiver/standing_queue.py). 0: the ceiling alone.
    shed_target_ms = fields.Float(load_default=SHED_TARGET_MS, validate=validate.Range(
        min=0, max=1900, error="must be 0 (shed only past server.shed_after_ms) or a wait in ms, at most 1900"))
    shed_interval_ms = fields.Float(load_default=SHED_INTERVAL_MS, validate=validate.Range(
        min=1, max=10000, error="must be how long in ms (1 to 10000) the queue must stay over "
                                "server.shed_target_ms before it counts as standing"))
    # allow: what the IM does itself when a callback times out; on_error: the chain.on_error outcome
    # rendered for the callback (parsed, no rule run), so overload cannot be used to skip the rules.
    shed_reply = fields.Dict(keys=fields.String(validate=validate.OneOf(("default",) + SHED_KINDS)),
                             values=fields.String(validate=validate.OneOf(SHED_REPLIES)),
                             load_default=lambda: {"default": "allow"})
    allow_ips = fields.List(fields.String(validate=_cidr), load_default=list)
    trusted_proxies = fields.Integer(load_default=0, validate=validate.Range(min=0))
    log_text = fields.Boolean(load_default=False)

    @validates_schema
    def _target_below_ceiling(self, data, **kwargs):
        # A target at or over the ceiling would never shed anything the ceiling does not: a setting
        # that silently does nothing is a mistake to report, not to accept.
        target, ceiling = data.get("shed_target_ms"), data.get("shed_after_ms")
        if target and ceiling and target >= ceiling:
            raise ValidationError(f"must be below server.shed_after_ms ({ceiling:g}), or 0 to shed only past "
                                  "that ceiling", "shed_target_ms")


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
    conversations = fields.List(fields.String(validate=validate.OneOf(("c2c", "group", "official", "chatroom"))),
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
    "netease": NeteaseSection,
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


def _single_app_id(value: Any) -> None:
    if not is_app_id(value):
        raise ValidationError(f"must be one SdkAppid, a whole number such as 1400000000 (got {_kind(value)})")


def is_app_id(value: Any) -> bool:
    """One SdkAppid: an int, or a string of digits (YAML may quote it); never a list, bool or float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 10 ** APP_ID_DIGITS
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= APP_ID_DIGITS


def _kind(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'mapping'}; the service answers one app"
    return repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."


def _config_schema() -> Schema:
    attrs: dict[str, Any] = {
        "app_id": fields.Raw(load_default=None, allow_none=True, validate=_single_app_id),
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
    netease_app_key: str = ""  # empty: NetEase IM is off, its paths answer 404
    netease_secrets: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> dict[str, Any]:
        # A section no property names (see _expose_sections): found the slow way.
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def __repr__(self) -> str:  # never show tokens
        return (f"Config(file={self.file!r}, app_id={self.app_id!r}, tokens=<{len(self.tokens)} hidden>, "
                f"netease_app_key={self.netease_app_key!r}, netease_secrets=<{len(self.netease_secrets)} hidden>)")


def _section_property(name: str) -> property:
    def section(self: Config) -> dict[str, Any]:
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(name) from None

    return property(section, doc=f"The `{name}:` section (read from `sections` each time: it may be replaced).")


def _expose_sections(names) -> None:
    """`config.server` and the like as properties: through __getattr__ each read first failed the
    normal lookup, an AttributeError made and dropped (~1.4 µs), and the reply path reads sections
    several times per callback."""
    for name in names:
        if name not in vars(Config) and name not in Config.__dataclass_fields__:
            setattr(Config, name, _section_property(name))


_expose_sections(SECTIONS)  # gathered above, parts' sections included


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
    except UnicodeDecodeError:
        raise ConfigError(NOT_TEXT, file=str(path)) from None
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
    if env.get("IMHOOK_APP_ID") and not is_app_id(env["IMHOOK_APP_ID"]):
        raise ConfigError(f"IMHOOK_APP_ID must be one SdkAppid, a whole number such as 1400000000 "
                          f"(got {_kind(env['IMHOOK_APP_ID'])})")
    sections = {name: loaded[name] for name in SECTIONS}
    netease_only = bool(env.get(sections["netease"]["app_key_env"]) or sections["netease"]["app_key"])
    if app_id in (None, "") and require_app_id and not netease_only:
        raise doc.error(("app_id",), "no app id: set app_id in the config or IMHOOK_APP_ID in the environment")
    base_dir = Path(base_dir or Path.cwd()).absolute()
    resolve_paths(sections, data_dir(file, base_dir), doc)
    netease = sections["netease"]
    app_key = env.get(netease["app_key_env"]) or netease["app_key"] or ""
    secrets = resolve_tokens({"token_env": netease["secret_env"], "token_file_env": netease["secret_file_env"],
                              "token_file": netease["secret_file"]}, env, what="NetEase secret")
    if app_key and not secrets:
        raise doc.error(("netease",), f"a NetEase app key is set but no secret: set {netease['secret_env']} or "
                                      f"{netease['secret_file_env']} (a NetEase callback cannot be checked without)")
    if netease["window_seconds"] is None:
        netease["window_seconds"] = sections["auth"]["window_seconds"]
    return Config(
        file=file, app_id="" if app_id is None else str(app_id), tokens=resolve_tokens(sections["auth"], env),
        sections=sections, rules=loaded["rules"], document=doc, base_dir=base_dir,
        netease_app_key=app_key, netease_secrets=secrets if app_key else (),
    )


def data_dir(file: str | Path, base_dir: Path) -> Path:
    """The folder relative paths of a config file resolve against: the file's own folder.

    The bundled default is the exception: it lives inside the installed package, so what it makes
    (the recording, the outbox) goes to the working directory, where `imhook recordings` looks too.
    """
    try:
        bundled = Path(file).resolve() == DEFAULT_CONFIG.resolve()
    except (OSError, RuntimeError, ValueError):
        bundled = False
    return Path.cwd() if bundled else base_dir


def resolve_paths(sections: dict[str, dict[str, Any]], folder: Path, doc: YamlDocument | None = None) -> None:
    """Make every relative path field (marked with PATH) of every section absolute, in place."""
    for name, schema in SECTIONS.items():
        values = sections.get(name) or {}
        for key, field_ in schema._declared_fields.items():
            value = values.get(key)
            if not (field_.metadata.get("path") and isinstance(value, str) and value):
                continue
            if value.startswith(("postgresql://", "postgres://")):
                continue  # forwarding.outbox may name a database instead of a file
            problem = path_problem(value)
            if problem:
                raise (doc.error((name, key), problem) if doc else ConfigError(problem, path=f"{name}.{key}"))
            values[key] = str(folder / value) if not Path(value).is_absolute() else value


def path_problem(value: str) -> str | None:
    """Why `value` cannot name a file on this system (None: it can), said before anything opens it."""
    if "\0" in value:
        return "a path cannot hold a NUL character"
    try:
        encoded = os.fsencode(value)
    except UnicodeEncodeError:
        return "a path cannot hold a lone surrogate (not a character the file system can store)"
    if len(encoded) > PATH_MAX_BYTES:
        return f"a path of {len(encoded)} bytes is longer than the {PATH_MAX_BYTES} the system allows"
    if any(len(part) > NAME_MAX_BYTES for part in encoded.split(b"/")):
        return f"a file or folder name in the path is longer than the {NAME_MAX_BYTES} bytes the system allows"
    return None


def output_paths(config: Config) -> list[tuple[tuple, Path, bool]]:
    """The files and folders `serve` will write: (YAML path, path, is a folder), parts that are on only."""
    out: list[tuple[tuple, Path, bool]] = []
    recording = config.sections.get("recording") or {}
    if recording.get("enabled"):
        out.append((("recording", "path"), Path(recording["path"]), False))
        if recording.get("journal") and recording.get("journal_dir"):
            out.append((("recording", "journal_dir"), Path(recording["journal_dir"]), True))
    forwarding = config.sections.get("forwarding") or {}
    if forwarding.get("targets"):
        from .ops.forward.pgoutbox import outbox_url

        shared = outbox_url(forwarding) is not None  # PostgreSQL: the spool is the file written here
        key = "spool" if shared else "outbox"
        out.append((("forwarding", key), Path(forwarding[key]), False))
    return out


def check_output_paths(config: Config) -> None:
    """Refuse a config whose output files cannot be created here, before any worker starts.

    Nothing is created: the nearest existing folder must be writable (the recorder and the outbox
    create the missing folders below it). Run by the gunicorn master and by `imhook check`.
    """
    for where, path, is_folder in output_paths(config):
        problem = _unwritable(path, is_folder)
        if problem:
            raise config.document.error(where, f"{path} {problem}; fix {'.'.join(where)} or the permissions")


def _unwritable(path: Path, is_folder: bool) -> str | None:
    if path.exists():
        if path.is_dir() != is_folder:
            return "is a folder, not a file" if path.is_dir() else "is a file, not a folder"
        return None if os.access(path, os.W_OK) else "is not writable"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be created: the folder {ancestor} is not writable"
    return None


def resolve_tokens(auth: dict[str, Any], env: dict[str, str], base_dir: Path | None = None, *,
                   what: str = "token") -> tuple[str, ...]:
    """Tokens from $IMHOOK_TOKEN (comma-separated), else the file named by $IMHOOK_TOKEN_FILE.

    Several tokens are accepted at once so a token can be rotated without downtime. A relative
    `auth.token_file` was resolved against the config's folder at load; a relative file named in
    the environment is read from the working directory, as any path typed in a shell is.
    """
    raw = env.get(auth["token_env"], "")
    file = env.get(auth["token_file_env"]) or auth["token_file"]
    if not raw and file:
        token_path = Path(file) if Path(file).is_absolute() else (base_dir or Path.cwd()) / file
        try:
            raw = token_path.read_text(encoding="utf-8")
        except OSError as exc:
            # Name the file, never its content.
            raise ConfigError(f"cannot read {what} file {token_path}: {exc.strerror}") from None
    return tuple(t.strip() for t in raw.replace("\n", ",").split(",") if t.strip())
