"""Scenario files: YAML validated with marshmallow, step sentences read by the grammar.

Every error names the file, the step number and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from receiver.errors import ConfigError
from receiver.yamlfile import YamlDocument, errors_to_config_error, load_yaml
from .context import Settings
from .expectations import Expectation, parse_expectation
from .grammar import SentenceError
from .platforms import PLATFORMS, TENCENT, check_steps, default_device
from .steps import GROUP_TYPES, Check, Names, StepExtras, parse_step
from .world import DEFAULT_JOIN


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class UserSchema(_Strict):
    platform = fields.String(load_default=None)  # default: Android (Tencent), AOS (NetEase)
    devices = fields.List(fields.String(), load_default=None, validate=validate.Length(min=1))
    online = fields.Boolean(load_default=True)
    add_friend = fields.String(load_default="confirm", validate=validate.OneOf(("any", "confirm", "deny")))


class GroupSchema(_Strict):
    type = fields.String(load_default=None, validate=validate.OneOf(GROUP_TYPES))  # Tencent: required
    owner = fields.String(required=True)
    members = fields.List(fields.String(), load_default=list)
    admins = fields.List(fields.String(), load_default=list)
    name = fields.String(load_default=None)
    id = fields.String(load_default=None)
    join = fields.String(load_default=None, validate=validate.OneOf(("free", "approve", "disabled")))


class SettingsSchema(_Strict):
    budget_seconds = fields.Float(load_default=2.0, validate=validate.Range(min=0.05, max=30))
    on_failure = fields.String(load_default="deliver", validate=validate.OneOf(("deliver", "refuse")))
    login_policy = fields.String(load_default="per_platform", validate=validate.OneOf(("per_platform", "single")))
    seed = fields.Integer(load_default=0)
    recall_window_seconds = fields.Float(load_default=120, validate=validate.Range(min=0, max=7 * 24 * 3600))


class StepSchema(_Strict):
    do = fields.String(load_default=None)
    expect = fields.Raw(load_default=None)
    elements = fields.List(fields.Dict(), load_default=None)
    cloud_custom_data = fields.String(load_default=None)
    online_only = fields.Boolean(load_default=None)
    data = fields.Raw(load_default=None)
    attach = fields.String(load_default=None)  # NetEase sends
    ext = fields.String(load_default=None)  # NetEase sends

    @validates_schema
    def _shapes(self, data, **kwargs):
        expect = data.get("expect")
        if expect is not None and not (isinstance(expect, str) or (
                isinstance(expect, list) and all(isinstance(e, str) for e in expect))):
            raise ValidationError("a sentence or a list of sentences", "expect")
        if data.get("do") is None and not expect:
            raise ValidationError("a step needs `do:` (a sentence), `expect:`, or both", "do")
        if data.get("data") is not None and not isinstance(data["data"], (str, dict)):
            raise ValidationError("a string, or a mapping (sent as JSON)", "data")


class ScenarioSchema(_Strict):
    name = fields.String(load_default=None)
    platform = fields.String(load_default=TENCENT, validate=validate.OneOf(PLATFORMS))
    description = fields.String(load_default="")
    receiver_config = fields.String(load_default=None)
    users = fields.Raw(required=True)
    friends = fields.List(fields.List(fields.String(), validate=validate.Length(equal=2)), load_default=list)
    groups = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)  # GroupSchema each
    settings = fields.Nested(SettingsSchema, load_default=lambda: SettingsSchema().load({}))
    steps = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1))


@dataclass(frozen=True)
class UserDecl:
    name: str
    platform: str = "Android"
    online: bool = True
    add_friend: str = "confirm"
    devices: tuple[str, ...] = ()  # every device online at the start (default: just `platform`)


@dataclass(frozen=True)
class GroupDecl:
    alias: str
    type: str
    owner: str
    members: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    name: str = ""
    group_id: str = ""
    join: str = ""


@dataclass(frozen=True)
class Step:
    number: int  # 1-based
    sentence: str
    action: Any
    expectations: tuple[Expectation, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class Scenario:
    file: str
    name: str
    users: tuple[UserDecl, ...]
    steps: tuple[Step, ...]
    friends: tuple[tuple[str, str], ...] = ()
    groups: tuple[GroupDecl, ...] = ()
    settings: Settings = field(default_factory=Settings)
    description: str = ""
    receiver_config: Path | None = None  # the imhook config this scenario expects, if it names one
    platform: str = TENCENT  # the IM played: tencent or netease


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; raise ConfigError naming file, step and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file; name a YAML scenario", file=str(path)) from None
    return parse_scenario(text, str(path), base_dir=path.parent)


def parse_scenario(text: str, file: str = "<scenario>", *, base_dir: Path | None = None) -> Scenario:
    try:
        doc = load_yaml(text, file)
    except ConfigError as exc:
        # The usual cause: a sentence holding "[", ": " or " #" inside a YAML flow list [a, b].
        raise ConfigError(f"{exc.detail} (quote a sentence that holds [ ], ': ' or ' #', or write "
                          "the list one `- item` per line)", file=exc.file, line=exc.line) from None
    if not isinstance(doc.data, dict):
        raise doc.error((), "a scenario is a YAML mapping with `users` and `steps`")
    try:
        data = ScenarioSchema().load(doc.data)
    except ValidationError as exc:
        raise errors_to_config_error(doc, exc.messages) from None
    platform = data["platform"]
    users = _users(doc, data["users"], platform)
    names = Names({u.name for u in users})
    friends = tuple(tuple(_known(doc, names, ("friends", i, j), u) for j, u in enumerate(pair))
                    for i, pair in enumerate(data["friends"]))
    groups = tuple(_group(doc, names, alias, spec, platform) for alias, spec in data["groups"].items())
    names.groups.update(g.alias for g in groups)
    steps = tuple(_step(doc, names, i, raw) for i, raw in enumerate(data["steps"]))
    for step, problem in check_steps(platform, steps):
        raise ConfigError(problem, file=doc.file, path=f"step {step.number}", line=step.line)
    config = data["receiver_config"]
    return Scenario(
        file=file, name=data["name"] or Path(file).stem, users=users, steps=steps, friends=friends,
        groups=groups, settings=Settings(**data["settings"]), description=data["description"],
        receiver_config=((base_dir or Path.cwd()) / config) if config else None, platform=platform,
    )


def _users(doc: YamlDocument, raw: Any, platform: str) -> tuple[UserDecl, ...]:
    if isinstance(raw, list) and all(isinstance(u, str) for u in raw):
        raw = {name: None for name in raw}
    if not isinstance(raw, dict) or not raw:
        raise doc.error(("users",), "a list of user names, or a mapping of names to options")
    users = []
    for name, options in raw.items():
        try:
            loaded = UserSchema().load(options or {})
        except ValidationError as exc:
            raise errors_to_config_error(doc, exc.messages, ("users", name)) from None
        try:
            devices = tuple(default_device(platform, d) for d in loaded.pop("devices") or ())
            loaded["platform"] = default_device(platform, loaded["platform"] or (devices[0] if devices else None))
        except SentenceError as exc:
            raise doc.error(("users", name), exc.message) from None
        users.append(UserDecl(str(name), devices=devices or (loaded["platform"],), **loaded))
    return tuple(users)


def _known(doc: YamlDocument, names: Names, path: tuple, user: str) -> str:
    try:
        return names.user(user)
    except SentenceError as exc:
        raise doc.error(path, exc.message) from None


def _group(doc: YamlDocument, names: Names, alias: str, raw: Any, platform: str) -> GroupDecl:
    path = ("groups", alias)
    if not isinstance(raw, dict):
        raise doc.error(path, f"a mapping with {', '.join(GroupSchema().fields)}")
    try:
        spec = GroupSchema().load(raw)
    except ValidationError as exc:
        raise errors_to_config_error(doc, exc.messages, path) from None
    if spec["type"] is None:
        if platform == TENCENT:
            raise doc.error(path + ("type",), f"a Tencent group needs a type: one of {', '.join(GROUP_TYPES)}")
        spec["type"] = "Private"  # a NetEase team: anyone may join only by invitation, as Private
    owner = _known(doc, names, path + ("owner",), spec["owner"])
    members = tuple(_known(doc, names, path + ("members", i), u) for i, u in enumerate(spec["members"]))
    admins = tuple(_known(doc, names, path + ("admins", i), u) for i, u in enumerate(spec["admins"]))
    return GroupDecl(alias, spec["type"], owner, members, admins, spec["name"] or alias, spec["id"] or alias,
                     spec["join"] or DEFAULT_JOIN[spec["type"]])


def _step(doc: YamlDocument, names: Names, index: int, raw: Any) -> Step:
    path = ("steps", index)
    where = dict(file=doc.file, path=f"step {index + 1}", line=doc.line_of(path))
    if isinstance(raw, str):
        spec: dict[str, Any] = {"do": raw, "expect": None}
    elif isinstance(raw, dict):
        try:
            spec = StepSchema().load(raw)
        except ValidationError as exc:
            error = errors_to_config_error(doc, exc.messages, path)
            key = error.path.removeprefix(f"steps[{index}]").lstrip(".")
            detail = f"{key}: {error.detail}" if key else error.detail
            if "unknown key" in detail:
                detail += f"; a step takes {', '.join(StepSchema().fields)}"
            raise ConfigError(detail, **{**where, "line": error.line}) from None
    else:
        raise ConfigError("a step is a sentence, or a mapping with `do:` and optional `expect:` (a sentence "
                          "holding `: ` or ` #` must be quoted)", **where)
    extras = StepExtras(
        elements=tuple(_element(e, where) for e in spec["elements"]) if spec.get("elements") else None,
        cloud_custom_data=spec.get("cloud_custom_data"), online_only=spec.get("online_only"),
        attach=spec.get("attach"), ext=spec.get("ext"),
        data=json.dumps(spec["data"], separators=(",", ":")) if isinstance(spec.get("data"), dict)
        else spec.get("data"),
    )
    try:
        action = parse_step(spec["do"], names, extras) if spec["do"] is not None else Check()
    except SentenceError as exc:
        raise ConfigError(exc.message, **where) from None
    expect = spec.get("expect") or []
    sentences = [expect] if isinstance(expect, str) else expect
    expectations = []
    for j, sentence in enumerate(sentences):
        line = doc.line_of(path + ("expect", j)) if isinstance(expect, list) else doc.line_of(path + ("expect",))
        try:
            expectations.append(parse_expectation(sentence, names, line))
        except SentenceError as exc:
            raise ConfigError(exc.message, file=doc.file, path=f"step {index + 1}, expectation {j + 1}",
                              line=line) from None
    return Step(index + 1, spec["do"] or "(check)", action, tuple(expectations), where["line"])


_SHORT_ELEMENTS = {"text": ("TIMTextElem", "Text"), "custom": ("TIMCustomElem", "Data")}


def _element(raw: dict, where: dict) -> dict:
    """An element as written on the wire, or `{text: "hi"}` / `{custom: "data"}` / `{TIMxxxElem: {...}}`."""
    if "MsgType" in raw:
        return {"MsgType": raw["MsgType"], "MsgContent": raw.get("MsgContent", {})}
    if len(raw) == 1:
        (key, value), = raw.items()
        if key in _SHORT_ELEMENTS and isinstance(value, str):
            msg_type, content_key = _SHORT_ELEMENTS[key]
            return {"MsgType": msg_type, "MsgContent": {content_key: value}}
        if key.startswith("TIM") and isinstance(value, dict):
            return {"MsgType": key, "MsgContent": value}
    raise ConfigError(f"element {raw!r}: write {{MsgType: ..., MsgContent: {{...}}}}, {{TIMTextElem: "
                      "{Text: ...}}, {text: \"...\"} or {custom: \"...\"}", **where)
