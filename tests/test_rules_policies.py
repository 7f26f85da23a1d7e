"""regex, friend_policy, group_policy and message_policy through the core: (body, rule, exact reply)."""

from __future__ import annotations

import pytest

from receiver.errors import ConfigError

from .helpers import handle, make_receiver, rules_yaml, sample

OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def refused(code: int = 1, info: str = "") -> dict:
    return {"ActionStatus": "OK", "ErrorCode": code, "ErrorInfo": info}


def text(t: str) -> dict:
    return {"MsgType": "TIMTextElem", "MsgContent": {"Text": t}}


def custom(data: str, desc: str = "") -> dict:
    return {"MsgType": "TIMCustomElem", "MsgContent": {"Data": data, "Desc": desc, "Ext": "", "Sound": ""}}


IMAGE = {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "u1", "ImageFormat": 1, "ImageInfoArray": []}}
FACE = {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1, "Data": "smile"}}
NEW_KIND = {"MsgType": "TIMNewElem", "MsgContent": {"Whatever": 1}}


def c2c(*elements: dict, sender: str = "jared") -> dict:
    return dict(sample("C2C.CallbackBeforeSendMsg"), From_Account=sender, MsgBody=list(elements))


def group_msg(*elements: dict, group_type: str = "Community") -> dict:
    return dict(sample("Group.CallbackBeforeSendMsg"), Type=group_type, MsgBody=list(elements))


def official_msg(*elements: dict) -> dict:
    return {"CallbackCommand": "OfficialAccount.CallbackBeforeSendMsg", "Official_Account": "news",
            "MsgBody": list(elements), "EventTime": 1670574414123}


def rewritten(*elements: dict, cloud: str | None = "your cloud custom data") -> dict:
    reply = dict(OK, MsgBody=list(elements))
    if cloud is not None:
        reply["CloudCustomData"] = cloud
    return reply


def friend_items(results: dict) -> dict:
    return dict(OK, ResultItem=[{"To_Account": to, "ResultCode": code, "ResultInfo": info}
                                for to, (code, info) in results.items()])


def relay(inner_text: str) -> dict:
    return {"MsgType": "TIMRelayElem", "MsgContent": {
        "Title": "chat", "MsgNum": 1, "CompatibleText": "", "AbstractList": [f"a: {inner_text}"],
        "MsgList": [{"From_Account": "a", "To_Account": "b", "MsgBody": [text(inner_text)]}]}}


def with_(name: str, **fields) -> dict:
    return dict(sample(name), **fields)


def reply_of(rule: str, body: dict) -> dict:
    receiver = make_receiver(rules_yaml(rule))
    try:
        return handle(receiver, body).reply
    finally:
        receiver.chain.close()


REGEX = [
    ("mask every match, other fields kept",
     "{use: regex, config: {patterns: [{pattern: 'red', action: mask}]}}",
     c2c(text("red packet, red!")), rewritten(text("*** packet, ***!"))),
    ("no match: plain allow", "{use: regex, config: {patterns: [{pattern: 'casino', action: refuse}]}}",
     c2c(text("red packet")), OK),
    ("replacement template with groups",
     r"{use: regex, config: {patterns: [{pattern: '(1\d{2})\d{4}(\d{4})', action: mask, replacement: '\1****\2'}]}}",
     c2c(text("call 13812345678")), rewritten(text("call 138****5678"))),
    ("flags by letter, mask_char",
     "{use: regex, config: {patterns: [{pattern: 'RED', flags: [i], action: mask, mask_char: '#'}]}}",
     c2c(text("Red packet")), rewritten(text("### packet"))),
    ("refuse with own code and info",
     "{use: regex, config: {patterns: [{pattern: 'https?://', action: refuse, code: 120100, info: no links}]}}",
     c2c(text("see http://x.io")), refused(120100, "no links")),
    ("a C2C code on a group message becomes the generic refusal, info kept",
     "{use: regex, config: {patterns: [{pattern: 'packet', action: refuse, code: 120100, info: nope}]}}",
     group_msg(text("red packet")), refused(1, "nope")),
    ("drop", "{use: regex, config: {patterns: [{pattern: 'packet', action: drop}]}}",
     c2c(text("red packet")), refused(2)),
    ("a refuse pattern wins over an earlier mask pattern",
     "{use: regex, config: {patterns: [{pattern: 'red', action: mask}, {pattern: 'packet', action: refuse}]}}",
     c2c(text("red packet")), refused(1)),
    ("mask patterns compose in order",
     "{use: regex, config: {patterns: [{pattern: 'red', action: mask, replacement: blue}, "
     "{pattern: 'blue', action: mask}]}}",
     c2c(text("red")), rewritten(text("****"))),
    ("nested relay texts are masked",
     "{use: regex, config: {patterns: [{pattern: 'secret', action: mask}]}}",
     c2c(text("fine"), relay("my secret")),
     rewritten(text("fine"), {"MsgType": "TIMRelayElem", "MsgContent": {
         "Title": "chat", "MsgNum": 1, "CompatibleText": "", "AbstractList": ["a: my ******"],
         "MsgList": [{"From_Account": "a", "To_Account": "b", "MsgBody": [text("my ******")]}]}})),
    ("kinds limits a pattern to some texts",
     "{use: regex, config: {patterns: [{pattern: 'x', action: mask, kinds: [custom.desc]}]}}",
     c2c(text("x"), custom("{}", "x")), rewritten(text("x"), custom("{}", "*"))),
    ("friend wording: mask refuses only that friend, with its code",
     "{use: regex, scope: {commands: [friend.add]}, config: {patterns: [{pattern: 'ID2', flags: [IGNORECASE], "
     "action: mask, code: 38100, info: bad wording}]}}",
     sample("Sns.CallbackPrevFriendAdd"), friend_items({"id1": (0, ""), "id2": (38100, "bad wording")})),
    ("friend texts are not looked at unless the scope names friend commands",
     "{use: regex, config: {patterns: [{pattern: 'id2', action: refuse}]}}",
     sample("Sns.CallbackPrevFriendAdd"), friend_items({"id1": (0, ""), "id2": (0, "")})),
    ("group name: mask is impossible, so it refuses",
     "{use: regex, scope: {commands: [group.create]}, config: {patterns: [{pattern: 'first', flags: [i], "
     "action: mask, code: 10120, info: bad name}]}}",
     sample("Group.CallbackBeforeCreateGroup"), refused(10120, "bad name")),
    ("topic name with drop: a drop refuses where nothing can be dropped",
     "{use: regex, scope: {commands: [topic.create]}, config: {patterns: [{pattern: 'Topic', action: drop}]}}",
     sample("Group.CallbackBeforeCreateTopic"), refused(1)),
]

FRIEND_ADD = sample("Sns.CallbackPrevFriendAdd")
FRIEND_RESPONSE = sample("Sns.CallbackPrevFriendResponse")
BOTH = {"id1": (38100, "no"), "id2": (38100, "no")}

FRIENDS = [
    ("deny_requesters refuses every friend", "{use: friend_policy, config: {deny_requesters: [id], code: 38100, info: 'no'}}",
     FRIEND_ADD, friend_items(BOTH)),
    ("allow_requesters refuses the others", "{use: friend_policy, config: {allow_requesters: [vip], code: 38100, info: 'no'}}",
     FRIEND_ADD, friend_items(BOTH)),
    ("allowed requester passes", "{use: friend_policy, config: {allow_requesters: [id]}}",
     FRIEND_ADD, friend_items({"id1": (0, ""), "id2": (0, "")})),
    ("deny_targets refuses only that friend", "{use: friend_policy, config: {deny_targets: [id1]}}",
     FRIEND_ADD, friend_items({"id1": (38001, ""), "id2": (0, "")})),
    ("deny_sources glob", "{use: friend_policy, config: {deny_sources: ['AddSource_Type_Andr*'], code: 38100, info: 'no'}}",
     FRIEND_ADD, friend_items(BOTH)),
    ("allow_sources glob refuses other sources", "{use: friend_policy, config: {allow_sources: ['AddSource_Type_Web*']}}",
     FRIEND_ADD, friend_items({"id1": (38001, ""), "id2": (38001, "")})),
    ("deny_words: case-insensitive substring of the wording",
     "{use: friend_policy, config: {deny_words: ['IS ID2'], info: mind your words}}",
     FRIEND_ADD, friend_items({"id1": (0, ""), "id2": (38001, "mind your words")})),
    ("deny_response_actions glob, per friend", "{use: friend_policy, config: {deny_response_actions: ['Response_Action_Agree*']}}",
     FRIEND_RESPONSE, friend_items({"id1": (38001, ""), "id2": (0, "")})),
    ("deny_targets also applies to responses", "{use: friend_policy, config: {deny_targets: [id2], code: 38999}}",
     FRIEND_RESPONSE, friend_items({"id1": (0, ""), "id2": (38999, "")})),
]

CREATE = "Group.CallbackBeforeCreateGroup"
INVITE = "Group.CallbackBeforeInviteJoinGroup"
JOIN = "Group.CallbackBeforeApplyJoinGroup"
TOPIC = "Group.CallbackBeforeCreateTopic"
CREATE_WORDING, MAX_WORDING, NAME_WORDING, JOIN_WORDING, INVITE_WORDING = (
    "you may not create this type of group", "you already created the most groups of this type allowed",
    "the name contains a word that is not allowed", "you may not apply to join this group",
    "these users may not be invited")
# One config exercising every check: create (deny_users), max_created, name, join, invite.
EVERY_CHECK = ("create: {{Work: {{deny_users: [leckie]}}, '*': {{max_created: 123}}}}, deny_name_words: [firsttopic], "
               "join: [{{users: [jared]}}], invite: {{deny_invitees: [jared, leckie]}}{extra}")


def every_check(extra: str = "") -> str:
    return "{use: group_policy, config: {" + EVERY_CHECK.format(extra=extra) + "}}"


PER_CHECK_CODES = ", refusals: {create: {code: 10110, info: no such groups}, max_created: {code: 10111}, " \
                  "name: {info: rename it}, join: {code: 10113, info: not here}, invite: {code: 10114, info: not them}}"

GROUPS = [
    ("deny a type", "{use: group_policy, config: {create: {ChatRoom: {deny: true}}, code: 10150, info: 'no'}}",
     with_(CREATE, Type="ChatRoom"), refused(10150, "no")),
    ("other types pass", "{use: group_policy, config: {create: {ChatRoom: {deny: true}}}}", sample(CREATE), OK),
    ("allow_users per type", "{use: group_policy, config: {create: {Public: {allow_users: [boss]}}}}",
     sample(CREATE), refused(1, CREATE_WORDING)),
    ("deny_users through '*'", "{use: group_policy, config: {create: {'*': {deny_users: [leckie]}}}}",
     with_(CREATE, Type="Work"), refused(1, CREATE_WORDING)),
    ("max_created: refused once the user owns that many", "{use: group_policy, config: {create: {'*': {max_created: 123}}}}",
     sample(CREATE), refused(1, MAX_WORDING)),
    ("max_created: one more is fine", "{use: group_policy, config: {create: {'*': {max_created: 124}}}}",
     sample(CREATE), OK),
    ("a listed type overrides '*' option by option",
     "{use: group_policy, config: {create: {'*': {max_created: 5, deny_users: [x]}, Public: {max_created: 500}}}}",
     sample(CREATE), OK),
    ("words in group names", "{use: group_policy, config: {deny_name_words: [FIRST], info: bad name}}",
     sample(CREATE), refused(1, "bad name")),
    ("words in topic names", "{use: group_policy, config: {deny_name_words: [firsttopic]}}",
     sample("Group.CallbackBeforeCreateTopic"), refused(1, NAME_WORDING)),
    ("join refused for a listed user", "{use: group_policy, config: {join: [{users: [jared]}], code: 10101}}",
     sample(JOIN), refused(10101, JOIN_WORDING)),
    ("join: only the listed groups", "{use: group_policy, config: {join: [{users: [jared], group_ids: ['@TGS#other']}]}}",
     sample(JOIN), OK),
    ("join: only the listed types", "{use: group_policy, config: {join: [{users: [jared], group_types: [Public]}]}}",
     sample(JOIN), refused(1, JOIN_WORDING)),
    ("invite: refuse only the denied invitee", "{use: group_policy, config: {invite: {deny_invitees: [jared]}}}",
     sample(INVITE), dict(OK, RefusedMembers_Account=["jared"])),
    ("invite: every invitee refused refuses the invitation",
     "{use: group_policy, config: {invite: {deny_invitees: [jared, leckie]}, code: 10160, info: 'no'}}",
     sample(INVITE), refused(10160, "no")),
    ("invite: refuse the excess over max_invitees", "{use: group_policy, config: {invite: {max_invitees: 1}}}",
     sample(INVITE), dict(OK, RefusedMembers_Account=["leckie"])),
    ("invite: or refuse all", "{use: group_policy, config: {invite: {max_invitees: 1, over_max: refuse_all}}}",
     sample(INVITE), refused(1, INVITE_WORDING)),
    ("invite: denied invitees do not count towards the maximum",
     "{use: group_policy, config: {invite: {max_invitees: 1, deny_invitees: [jared]}}}",
     sample(INVITE), dict(OK, RefusedMembers_Account=["jared"])),
]

# (check, body, reply with the defaults, with the old shared code/info, with refusals.<check>,
#  with refusals.<check> and shared code/info: the check's own win, the unset half falls back)
GROUP_CHECKS = [
    ("create", with_(CREATE, Type="Work"), refused(1, CREATE_WORDING), refused(10150, "no"),
     refused(10110, "no such groups"), refused(10110, "no such groups")),
    ("max_created", sample(CREATE), refused(1, MAX_WORDING), refused(10150, "no"),
     refused(10111, MAX_WORDING), refused(10111, "no")),
    ("name", sample(TOPIC), refused(1, NAME_WORDING), refused(10150, "no"),
     refused(1, "rename it"), refused(10150, "rename it")),
    ("join", sample(JOIN), refused(1, JOIN_WORDING), refused(10150, "no"),
     refused(10113, "not here"), refused(10113, "not here")),
    ("invite", sample(INVITE), refused(1, INVITE_WORDING), refused(10150, "no"),
     refused(10114, "not them"), refused(10114, "not them")),
]
GROUP_CHECK_CONFIGS = {"defaults": "", "shared": ", code: 10150, info: 'no'", "per check": PER_CHECK_CODES,
                       "both": PER_CHECK_CODES + ", code: 10150, info: 'no'"}


GROUP_CHECK_CASES = [(f"{check}, {config}", body, extra, reply) for check, body, *replies in GROUP_CHECKS
                     for (config, extra), reply in zip(GROUP_CHECK_CONFIGS.items(), replies, strict=True)]


@pytest.mark.parametrize("case, body, extra, expected", GROUP_CHECK_CASES, ids=[c[0] for c in GROUP_CHECK_CASES])
def test_group_policy_answers_each_check_with_its_own_code_and_wording(case, body, extra, expected):
    assert reply_of(every_check(extra), body) == expected

SIGNAL_INVITE = '{"businessID": 1, "inviteID": "i1", "inviter": "jared", "actionType": 1, "inviteeList": ["Jonh"]}'

MESSAGES = [
    ("deny a kind everywhere", "{use: message_policy, config: {default: {deny: [image]}, info: no images}}",
     c2c(text("hi"), IMAGE), refused(1, "no images")),
    ("allow list passes what it names", "{use: message_policy, config: {c2c: {allow: [text, image]}}}",
     c2c(text("hi"), IMAGE), OK),
    ("allow list refuses the rest", "{use: message_policy, config: {c2c: {allow: [text]}, code: 120200}}",
     c2c(text("hi"), FACE), refused(120200)),
    ("per conversation: c2c policy does not touch groups", "{use: message_policy, config: {c2c: {allow: [text]}}}",
     group_msg(FACE), OK),
    ("per group type overrides the group policy",
     "{use: message_policy, config: {group: {allow: [text, face]}, group_types: {AVChatRoom: {allow: [text]}}}}",
     group_msg(FACE, group_type="AVChatRoom"), refused(1)),
    ("group policy for other types",
     "{use: message_policy, config: {group: {allow: [text, face]}, group_types: {AVChatRoom: {allow: [text]}}}}",
     group_msg(FACE, group_type="Public"), OK),
    ("official messages", "{use: message_policy, config: {official: {deny: [custom]}}}",
     official_msg(custom("{}")), refused(1)),
    ("max_text_length", "{use: message_policy, config: {default: {max_text_length: 5}}}",
     c2c(text("123"), text("456")), refused(1)),
    ("max_text_length: at the limit passes", "{use: message_policy, config: {default: {max_text_length: 6}}}",
     c2c(text("123"), text("456")), OK),
    ("max_text_length per group type, dropped",
     "{use: message_policy, config: {default: {max_text_length: 100}, group_types: {Community: {max_text_length: 3}}, "
     "action: drop}}",
     group_msg(text("four")), refused(2)),
    ("kinds from default kept when a specific block only sets the length",
     "{use: message_policy, config: {default: {deny: [face]}, c2c: {max_text_length: 100}}}",
     c2c(FACE), refused(1)),
    ("signaling allowed without other custom payloads: a call passes",
     "{use: message_policy, config: {default: {allow: [text, signaling]}}}", c2c(custom(SIGNAL_INVITE)), OK),
    ("signaling allowed without other custom payloads: other custom refused",
     "{use: message_policy, config: {default: {allow: [text, signaling]}}}", c2c(custom('{"businessID": 2}')),
     refused(1)),
    ("deny custom denies signaling too", "{use: message_policy, config: {default: {deny: [custom]}}}",
     c2c(custom(SIGNAL_INVITE)), refused(1)),
    ("unknown kinds, all or by name", "{use: message_policy, config: {default: {deny: [unknown]}}}",
     c2c(NEW_KIND), refused(1)),
    ("unknown:<MsgType> names one", "{use: message_policy, config: {default: {deny: ['unknown:TIMOtherElem']}}}",
     c2c(NEW_KIND), OK),
]


@pytest.mark.parametrize("case, rule, body, expected", REGEX + FRIENDS + GROUPS + MESSAGES,
                         ids=[c[0] for c in REGEX + FRIENDS + GROUPS + MESSAGES])
def test_policy_replies(case, rule, body, expected):
    assert reply_of(rule, body) == expected


def test_decisions_are_attributed_in_the_trace():
    receiver = make_receiver(rules_yaml("{use: group_policy, name: groups, config: {invite: {deny_invitees: [jared]}}}"))
    outcome = handle(receiver, sample(INVITE))
    receiver.chain.close()
    assert outcome.decision.verdict.rule == "groups"
    assert [(s.rule, s.result, s.reason) for s in outcome.decision.trace] == [
        ("groups", "refuse_some", "jared may not be invited")]


# (config text, where the error must point: "file:line", field path, words of the message)
CONFIG_ERRORS = [
    ("""rules:
  - use: regex
    config:
      patterns:
        - pattern: ok
          action: mask
        - pattern: 'broken('
          action: refuse
""", "test.yaml:7", "rules[0].config.patterns[1].pattern", "patterns[1]: invalid regular expression"),
    ("""rules:
  - use: regex
    config:
      patterns:
        - {pattern: 'x', action: mask, replacement: '\\2'}
""", "test.yaml:5", "rules[0].config.patterns[0].replacement", "invalid replacement"),
    ("""rules:
  - use: regex
    config:
      patterns:
        - pattern: 'x'
          action: refuse
          code: 5
""", "test.yaml:7", "rules[0].config.patterns[0].code", "outside the refusal codes"),
    ("""rules:
  - use: regex
    config:
      patterns:
        - {pattern: 'a*', action: mask}
""", "test.yaml:5", "rules[0].config.patterns[0].pattern", "matches the empty string"),
    ("""rules:
  - use: friend_policy
    config:
      deny_targets: [a]
      action: drop
""", "test.yaml:5", "rules[0].config.action", "only possible on message sends"),
    ("""rules:
  - use: friend_policy
    config:
      code: 120100
""", "test.yaml:4", "rules[0].config.code", "38000–39000"),
    ("""rules:
  - use: friend_policy
    config:
      deny_requester: [a]
""", "test.yaml:4", "rules[0].config.deny_requester", "unknown key"),
    ("""rules:
  - use: group_policy
    config:
      invite: {over_max: refuse_some}
""", "test.yaml:4", "rules[0].config.invite.over_max", "Must be one of"),
    ("""rules:
  - use: group_policy
    config:
      code: 38001
""", "test.yaml:4", "rules[0].config.code", "10100–10200"),
    ("""rules:
  - use: message_policy
    config:
      c2c:
        allow: [text, picture]
""", "test.yaml:5", "rules[0].config.c2c.allow", "unknown element kind 'picture'"),
    ("""rules:
  - use: message_policy
    config:
      default: {allow: [text], deny: [image]}
""", "test.yaml:4", "rules[0].config.default.deny", "not both"),
    ("""rules:
  - use: message_policy
    config:
      group_types:
        AVChatRoom:
          allow: [txt]
""", "test.yaml:6", "rules[0].config.group_types.AVChatRoom.allow", "unknown element kind 'txt'"),
    ("""rules:
  - use: group_policy
    config:
      create:
        Public:
          max_creatd: 3
""", "test.yaml:6", "rules[0].config.create.Public.max_creatd", "unknown key"),
    ("""rules:
  - use: group_policy
    config:
      code: 10150
      refusals:
        create: {info: nope}
        join:
          info: not here
          code: 38001
""", "test.yaml:9", "rules[0].config.refusals.join.code", "10100–10200"),
    ("""rules:
  - use: group_policy
    config:
      refusals:
        creat: {code: 10110}
""", "test.yaml:5", "rules[0].config.refusals.creat", "unknown key"),
    ("""rules:
  - use: group_policy
    config:
      refusals:
        invite: {code: '10110'}
""", "test.yaml:5", "rules[0].config.refusals.invite.code", "integer"),
]


@pytest.mark.parametrize("text, where, field, what", CONFIG_ERRORS, ids=[e[2] for e in CONFIG_ERRORS])
def test_config_errors_name_file_line_and_field(text, where, field, what):
    with pytest.raises(ConfigError) as info:
        make_receiver(text)
    message = str(info.value)
    assert message.startswith(f"{where}: {field}: "), message
    assert what in message, message


def test_message_policy_remembers_each_kinds_answer_and_still_answers_alike():
    """Policy.refused_kinds remembers permits() per kind (bounded): the answers, their order and
    their dedup are those of asking permits() for every kind."""
    from rules.builtin.message_policy import _MAX_KINDS_CACHED, Policy

    policy = Policy([{"allow": ["text", "face", "custom", "unknown"], "deny": ["file"], "max_text_length": None}])
    kinds = ("text", "file", "image", "signaling", "unknown:x", "file", "image", "custom", "video", "text")
    expected = [k for k in dict.fromkeys(kinds) if not policy.permits(k)]
    assert policy.refused_kinds(kinds) == expected == ["file", "image", "video"]
    assert policy.refused_kinds(kinds) == expected  # the second time from what it remembered
    wire = tuple(f"unknown:{i}" for i in range(3 * _MAX_KINDS_CACHED)) + ("image",)
    assert policy.refused_kinds(wire) == ["image"] and len(policy._permitted) <= _MAX_KINDS_CACHED
