"""sensitive_words and contact_info as rules: what each event gets, through the core."""

from __future__ import annotations

import json

import pytest

from receiver.errors import ConfigError

from .helpers import handle, make_receiver, rules_yaml, sample


def c2c(*texts, custom=None):
    body = sample("C2C.CallbackBeforeSendMsg")
    body["MsgBody"] = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": t}} for t in texts]
    body["CloudCustomData"] = custom
    if custom is None:
        del body["CloudCustomData"]
    return body


def reply(rule, body):
    return handle(make_receiver(rules_yaml(rule)), body).reply


WORDS = "use: sensitive_words, config: {words: ['傻逼', 'fuck', 'spam:ads'], allow: ['fuckin-a']"

# (rule entry, texts sent, expected reply)
MESSAGES = [
    ("{" + WORDS + "}}", ["hello"], {"ErrorCode": 0}),
    ("{" + WORDS + "}}", ["你傻@逼", "ＦＵＣＫ you", "classic"],
     {"ErrorCode": 0, "MsgBody": ["你***", "**** you", "classic"]}),
    ("{" + WORDS + ", replacement: '[censored]'}}", ["a Fuck b"],
     {"ErrorCode": 0, "MsgBody": ["a [censored] b"]}),
    ("{" + WORDS + ", mask_char: '#'}}", ["這個傻逼"], {"ErrorCode": 0, "MsgBody": ["這個##"]}),
    ("{" + WORDS + ", action: refuse, code: 120100, info: mind your words}}", ["傻 逼"],
     {"ErrorCode": 120100, "ErrorInfo": "mind your words"}),
    ("{" + WORDS + ", action: drop}}", ["f u c k"], {"ErrorCode": 2}),
    ("{" + WORDS + ", categories: {ads: refuse}}}", ["buy spam now"], {"ErrorCode": 1}),
    ("{" + WORDS + ", categories: {ads: refuse}}}", ["fuck"], {"ErrorCode": 0, "MsgBody": ["****"]}),
    ("{" + WORDS + ", action: tag}}", ["傻逼"], {"ErrorCode": 0, "CloudCustomData": {"imhook_flags": {
        "rule": "sensitive_words", "matches": ["傻逼"]}}}),
    ("{use: contact_info, config: {}}", ["call 13800138000 or mail a@b.com"],
     {"ErrorCode": 0, "MsgBody": ["call *********** or mail *******"]}),
    ("{use: contact_info, config: {kinds: [url], allow_domains: [example.com]}}",
     ["see https://docs.example.com/x and http://evil.io/y"],
     {"ErrorCode": 0, "MsgBody": ["see https://docs.example.com/x and ****************"]}),
    ("{use: contact_info, config: {action: refuse, kinds: [digits]}}", ["加我QQ 一二三四五六七八"], {"ErrorCode": 1}),
]


@pytest.mark.parametrize("rule, texts, expected", MESSAGES)
def test_message_decisions(rule, texts, expected):
    got = reply(rule, c2c(*texts))
    assert got["ErrorCode"] == expected["ErrorCode"]
    if "ErrorInfo" in expected:
        assert got["ErrorInfo"] == expected["ErrorInfo"]
    if "MsgBody" in expected:
        assert [e["MsgContent"]["Text"] for e in got["MsgBody"]] == expected["MsgBody"]
    elif "CloudCustomData" in expected:
        assert json.loads(got["CloudCustomData"]) == expected["CloudCustomData"]
    else:
        assert "MsgBody" not in got


def test_other_elements_and_nested_relays_are_kept_byte_for_byte():
    image = {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "u", "ImageFormat": 1, "ImageInfoArray": []}}
    relay = {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "聊天记录", "MsgNum": 1, "AbstractList": ["a: 傻逼"],
                                                        "MsgList": [{"From_Account": "a", "MsgBody": [
                                                            {"MsgType": "TIMTextElem",
                                                             "MsgContent": {"Text": "傻逼 ok"}}]}]}}
    body = c2c("fine")
    body["MsgBody"] += [image, relay]
    got = reply("{" + WORDS + "}}", body)
    assert got["MsgBody"][0] == body["MsgBody"][0]
    assert got["MsgBody"][1] == image
    content = got["MsgBody"][2]["MsgContent"]
    assert content["AbstractList"] == ["a: **"]
    assert content["MsgList"][0]["MsgBody"][0]["MsgContent"]["Text"] == "** ok"
    assert content["Title"] == "聊天记录"


def test_the_second_text_rule_scans_the_text_the_first_one_masked():
    # Both rules list the message's texts through one remembered list: a rewrite must renew it.
    receiver = make_receiver(rules_yaml("{" + WORDS + "}}", "{use: contact_info}"))
    first = handle(receiver, c2c("fuck 13800138000", "ok"))
    assert [e["MsgContent"]["Text"] for e in first.reply["MsgBody"]] == ["**** ***********", "ok"]
    assert first.decision.verdict.rule == "sensitive_words,contact_info"
    again = handle(receiver, c2c("call 13800138000"))  # a new message: nothing remembered applies
    assert [e["MsgContent"]["Text"] for e in again.reply["MsgBody"]] == ["call ***********"]


def test_tag_leaves_a_non_json_custom_data_alone():
    got = reply("{" + WORDS + ", action: tag}}", c2c("傻逼", custom="plain text"))
    assert got["ErrorCode"] == 0 and got.get("CloudCustomData", "plain text") == "plain text"


def test_friend_wording_refuses_only_that_friend_when_scoped():
    body = sample("Sns.CallbackPrevFriendAdd")
    body["FriendItem"][1]["AddWording"] = "加我 13800138000"
    unscoped = reply("{use: contact_info}", body)
    assert [i["ResultCode"] for i in unscoped["ResultItem"]] == [0, 0]
    scoped = reply("{use: contact_info, scope: {commands: [Sns.CallbackPrevFriendAdd]}, "
                   "config: {code: 38200, info: no numbers}}", body)
    assert scoped["ErrorCode"] == 0
    assert scoped["ResultItem"] == [{"To_Account": "id1", "ResultCode": 0, "ResultInfo": ""},
                                    {"To_Account": "id2", "ResultCode": 38200, "ResultInfo": "no numbers"}]


def test_group_names_are_refused_when_scoped():
    body = sample("Group.CallbackBeforeCreateGroup")
    body["Name"] = "傻逼俱乐部"
    assert reply("{" + WORDS + "}}", body)["ErrorCode"] == 0
    scoped = reply("{" + WORDS + ", code: 10110}, scope: {commands: [group.create]}}", body)
    assert scoped == {"ActionStatus": "OK", "ErrorCode": 10110, "ErrorInfo": ""}


def test_word_files_with_categories_relative_to_the_config(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "w.txt").write_text("# comment\nbadword\tabuse\n赌博,gambling\n", encoding="utf-8")
    from receiver.config import parse_config
    from receiver.tencent.platform import TencentPlatform
    from rules.loader import build_chain

    text = rules_yaml("{use: sensitive_words, config: {words_files: [lists/w.txt], categories: "
                      "{gambling: refuse}}}")
    config = parse_config(text, str(tmp_path / "c.yaml"), {"IMHOOK_APP_ID": "1"}, base_dir=tmp_path)
    chain = build_chain(config, platform=TencentPlatform())
    from receiver.core import Receiver

    receiver = Receiver(config, chain)
    q = {"SdkAppid": "1", "CallbackCommand": "C2C.CallbackBeforeSendMsg"}
    from receiver.core import HttpRequest

    def send(text):
        return receiver.handle(HttpRequest("POST", q, json.dumps(c2c(text)).encode())).reply

    assert send("a BadWord b")["MsgBody"][0]["MsgContent"]["Text"] == "a ******* b"
    assert send("来赌博")["ErrorCode"] == 1


BAD_CONFIGS = [
    ("{use: sensitive_words, config: {}}", "rules[0].config.words", "no words"),
    ("{use: sensitive_words, config: {words: [x], action: shout}}", "rules[0].config.action", "Must be one of"),
    ("{use: sensitive_words, config: {words: [x], words_file: nope.txt}}", "rules[0].config.words_file",
     "cannot read word list"),
    ("{use: sensitive_words, config: {words: [x], code: 999}}", "rules[0].config.code", "outside"),
    ("{use: sensitive_words, config: {words: [x], mask_char: '**'}}", "rules[0].config.mask_char", "Length"),
    ("{use: contact_info, config: {kinds: [fax]}}", "rules[0].config.kinds[0]", "Must be one of"),
]


@pytest.mark.parametrize("rule, where, what", BAD_CONFIGS)
def test_bad_rule_config_names_the_place(rule, where, what):
    with pytest.raises(ConfigError) as info:
        make_receiver(rules_yaml(rule))
    assert "test.yaml:4" in str(info.value) and where in str(info.value) and what in str(info.value)
