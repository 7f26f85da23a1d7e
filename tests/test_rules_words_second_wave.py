"""sensitive_words with pinyin, leet and confusables: every text it scans, the trace, config."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.errors import ConfigError

from .helpers import handle, make_receiver, rules_yaml, sample
from .test_rules_text import c2c, reply

ALL_ON = ("use: sensitive_words, config: {words: ['诈骗', scam, paypal], allow: [scampi, 炸片], "
          "pinyin: true, leet: true, confusables: true")


def texts(got) -> list[str]:
    return [e["MsgContent"]["Text"] for e in got["MsgBody"]]


@pytest.mark.parametrize(("sent", "expected"), [
    (["zha pian", "诈pian", "炸骗"], ["********", "*****", "**"]),
    (["$cam", "sc4m", "раураl"], ["****", "****", "******"]),
    (["s̶c̶a̶m̶ ok"], ["******** ok"]),
    (["scampi", "sc4mpi", "炸片", "shanghai piano 2024"], None),  # allowed / ordinary: untouched
])
def test_text_elements(sent, expected):
    got = reply("{" + ALL_ON + "}}", c2c(*sent))
    assert got["ErrorCode"] == 0
    assert ("MsgBody" not in got) if expected is None else texts(got) == expected


def test_options_off_by_default_keep_the_first_wave():
    got = reply("{use: sensitive_words, config: {words: ['诈骗', scam]}}", c2c("zhapian sc4m 炸骗"))
    assert got["ErrorCode"] == 0 and "MsgBody" not in got


def test_custom_desc_and_relays_at_depth():
    inner = {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "t", "MsgNum": 1, "AbstractList": ["a: zhapian"],
                                                        "MsgList": [{"From_Account": "a", "MsgBody": [
                                                            {"MsgType": "TIMTextElem",
                                                             "MsgContent": {"Text": "k $cam"}}]}]}}
    outer = {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "t", "MsgNum": 1, "AbstractList": [],
                                                        "MsgList": [{"From_Account": "b", "MsgBody": [inner]}]}}
    custom = {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "d", "Desc": "pаypal", "Ext": "", "Sound": ""}}
    body = c2c("fine")
    body["MsgBody"] += [custom, outer]
    got = reply("{" + ALL_ON + "}}", body)
    assert got["MsgBody"][1]["MsgContent"]["Desc"] == "******"
    deep = got["MsgBody"][2]["MsgContent"]["MsgList"][0]["MsgBody"][0]["MsgContent"]
    assert deep["AbstractList"] == ["a: *******"]
    assert deep["MsgList"][0]["MsgBody"][0]["MsgContent"]["Text"] == "k ****"


def test_group_names_and_friend_wordings_when_scoped():
    group = sample("Group.CallbackBeforeCreateGroup")
    group["Name"] = "zha-pian俱乐部"
    assert reply("{" + ALL_ON + ", code: 10110}, scope: {commands: [group.create]}}", group)["ErrorCode"] == 10110
    friend = sample("Sns.CallbackPrevFriendAdd")
    friend["FriendItem"][1]["AddWording"] = "p4ypal 转账"
    got = reply("{" + ALL_ON + ", code: 38200}, scope: {commands: [Sns.CallbackPrevFriendAdd]}}", friend)
    assert [i["ResultCode"] for i in got["ResultItem"]] == [0, 38200]


def test_the_reason_says_which_transformation_found_it():
    outcome = handle(make_receiver(rules_yaml("{" + ALL_ON + "}}")), c2c("小心 ZHA-PIAN", "p4ypal $cam"))
    reason = outcome.decision.verdict.reason
    assert "pinyin: ZHA-PIAN → 诈骗" in reason and "leet: p4ypal → paypal" in reason
    assert "leet: $cam → scam" in reason
    plain = handle(make_receiver(rules_yaml("{" + ALL_ON + "}}")), c2c("诈骗"))
    assert "via" not in plain.decision.verdict.reason


def test_the_reason_names_tone_numbers_homophones_and_a_middle_char_as_pinyin():
    rule = "{use: sensitive_words, config: {words: ['诈骗', '代开发票'], pinyin: true, leet: true}}"
    reason = handle(make_receiver(rules_yaml(rule)), c2c("zha4 pian4", "炸骗", "代kai发票")
                    ).decision.verdict.reason
    # tone numbers are pinyin, not leet, even with leet on
    assert "pinyin: zha4 pian4 → 诈骗" in reason and "leet" not in reason
    assert "homophone: 炸骗 → 诈骗" in reason and "pinyin: 代kai发票 → 代开发票" in reason


def test_imhook_explain_shows_the_transformation(tmp_path):
    (tmp_path / "rules.yaml").write_text("app_id: 1400000000\nrecording: {enabled: false}\nrules:\n"
                                         "  - {" + ALL_ON + "}}\n", encoding="utf-8")
    (tmp_path / "body.json").write_text(json.dumps(c2c("这是 zha pian")), encoding="utf-8")
    result = CliRunner().invoke(main, ["explain", "--json", "--rules", str(tmp_path / "rules.yaml"),
                                       str(tmp_path / "body.json")], catch_exceptions=False)
    trace = json.loads(result.output)["trace"]
    assert any("pinyin: zha pian → 诈骗" in json.dumps(step, ensure_ascii=False) for step in trace)


@pytest.mark.parametrize(("table", "sent", "expected"), [
    ("{'1': l}", "pay1al k1ll", ["pay1al ****"]),      # 1 now reads l, not i (k1ll -> klll)
    ("{'1': l}", "pa4pal", None),                        # the default table is replaced whole
])
def test_leet_table_overrides_the_default(table, sent, expected):
    rule = ("{use: sensitive_words, config: {words: [paypal, kill, klll], leet: true, "
            f"leet_table: {table}}}}}")
    got = reply(rule, c2c(sent))
    assert ("MsgBody" not in got) if expected is None else texts(got) == expected


@pytest.mark.parametrize(("options", "sent", "expected"), [
    ("pinyin: true", ["炸骗 zha4pian4", "沙逼"], ["** *********", None]),        # same tone only
    ("pinyin: {homophones: any_tone}", ["沙逼"], ["**"]),
    ("pinyin: {homophones: off}", ["炸骗", "zha pian"], [None, "********"]),
    ("pinyin: {}", ["炸骗"], ["**"]),                                          # default: same_tone
    ("homophones: true", ["沙逼", "zhapian"], ["**", None]),  # the first version's switch, unchanged
])
def test_pinyin_homophone_modes(options, sent, expected):
    got = reply("{use: sensitive_words, config: {words: ['诈骗', '傻逼'], " + options + "}}", c2c(*sent))
    assert got["ErrorCode"] == 0
    if all(e is None for e in expected):
        assert "MsgBody" not in got
    else:
        assert texts(got) == [s if e is None else e for s, e in zip(sent, expected)]


@pytest.mark.parametrize(("option", "where"), [
    ("leet_table: {'12': a}", "leet_table"),
    ("leet_table: {'1': '9'}", "leet_table"),
    ("pinyin: maybe", "pinyin"),
    ("pinyin: {homophones: sometimes}", "pinyin"),
    ("pinyin: {tones: true}", "pinyin"),
])
def test_bad_options_name_the_place(option, where):
    with pytest.raises(ConfigError) as info:
        make_receiver(rules_yaml("{use: sensitive_words, config: {words: [x], " + option + "}}"))
    assert where in str(info.value) and "\n" not in str(info.value)
