"""Table tests for contact detection (rules.text.contacts)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from rules.text import contacts
from rules.text.contacts import ContactFinder, ContactMatch, normalize_contacts

# (finder options, input, expected [(matched original substring, kind)])
CASES = [
    # phones
    ({}, "call 13800138000 now", [("13800138000", "phone")]),
    ({}, "电话：13912345678。", [("13912345678", "phone")]),
    ({}, "+86 138 0013 8000", [("+86 138 0013 8000", "phone")]),
    ({}, "+86-13800138000", [("+86-13800138000", "phone")]),
    ({}, "(+86)13800138000", [("(+86)13800138000", "phone")]),
    ({}, "008613800138000", [("008613800138000", "phone")]),
    ({}, "1 3 8-0013-8000", [("1 3 8-0013-8000", "phone")]),
    ({}, "138.0013.8000", [("138.0013.8000", "phone")]),
    ({}, "+1 (415) 555-2671", [("+1 (415) 555-2671", "phone")]),
    ({}, "ring +44 20 7946 0958 pls", [("+44 20 7946 0958", "phone")]),
    ({}, "tel 010-62345678", [("010-62345678", "phone")]),
    # other ways of writing digits
    ({}, "１３８００１３８０００", [("１３８００１３８０００", "phone")]),
    ({}, "①③⑧００１３８０００", [("①③⑧００１３８０００", "phone")]),
    ({}, "一三八零零一三八零零零", [("一三八零零一三八零零零", "phone")]),
    ({}, "壹叁捌〇〇壹叁捌〇〇〇", [("壹叁捌〇〇壹叁捌〇〇〇", "phone")]),
    ({}, "加我幺三八 零零幺三 八零零零", [("幺三八 零零幺三 八零零零", "phone")]),
    ({}, "138\u200b0013\u200b8000", [("138\u200b0013\u200b8000", "phone")]),
    # e-mail
    ({}, "mail foo.bar+x@gmail.com ok", [("foo.bar+x@gmail.com", "email")]),
    ({}, "邮箱12345678@qq.com谢谢", [("12345678@qq.com", "email")]),
    ({}, "ＡＢＣ＠ＱＱ．ＣＯＭ", [("ＡＢＣ＠ＱＱ．ＣＯＭ", "email")]),
    ({}, "Bob.Smith_@Example.CN", [("Bob.Smith_@Example.CN", "email")]),
    # URLs
    ({}, "see https://evil.example.org/x?a=1, ok", [("https://evil.example.org/x?a=1", "url")]),
    ({}, "http://1.2.3.4:8080/p", [("http://1.2.3.4:8080/p", "url")]),
    ({}, "visit www.baidu.com。", [("www.baidu.com", "url")]),
    ({}, "上 baidu.com 看看", [("baidu.com", "url")]),
    ({}, "上baidu点com看看", [("baidu点com", "url")]),
    ({}, "www。evil。cn", [("www。evil。cn", "url")]),
    ({}, "t.me/somebody", [("t.me/somebody", "url")]),
    ({}, "BIT.LY/abc", [("BIT.LY/abc", "url")]),
    # allowed domains and their subdomains
    ({"allow_domains": ["example.com"]}, "docs.example.com and https://www.example.com/a", []),
    ({"allow_domains": ["example.com"]}, "help@example.com", []),
    ({"allow_domains": ["example.com"]}, "notexample.com", [("notexample.com", "url")]),
    ({"allow_domains": ["example.com"]}, "example.com.evil.cn", [("example.com.evil.cn", "url")]),
    ({"allow_domains": ["example.com"]}, "https://example.com/order/12345678", []),
    # QQ numbers and WeChat ids
    ({}, "QQ 12345678", [("12345678", "digits")]),
    ({}, "扣扣：１２３４５６７８９", [("１２３４５６７８９", "digits")]),
    ({}, "q 1234-5678", [("1234-5678", "digits")]),
    ({}, "vx: abc_12345", [("abc_12345", "digits")]),
    ({}, "加我微信：wxid_abc123", [("wxid_abc123", "digits")]),
    ({}, "WeChat ID Tom_2024x please", [("Tom_2024x", "digits")]),
    ({"min_digits": 8}, "QQ 1234567", []),
    ({"min_digits": 8}, "QQ 12345678", [("12345678", "digits")]),
    ({"min_digits": 3}, "房间 1234", [("1234", "digits")]),
    ({}, "房间 1234", []),
    # kinds filter
    ({"kinds": ["email"]}, "13800138000 a@b.cn", [("a@b.cn", "email")]),
    ({"kinds": ["phone"]}, "QQ 12345678 13800138000", [("13800138000", "phone")]),
    # several at once, in order
    ({}, "a@b.cn 13800138000 x.com", [("a@b.cn", "email"), ("13800138000", "phone"),
                                        ("x.com", "url")]),
    # ordinary text must stay clean
    ({}, "I have 3 apples", []),
    ({}, "2024年", []),
    ({}, "2024年1月15日见", []),
    ({}, "meeting on 2024-01-15 at 10:30", []),
    ({}, "价格 99.50 元，共 3 件", []),
    ({}, "这次花了12000元，房价 35000 元/平", []),
    ({}, "raised 250000 dollars, 40000 km", []),
    ({}, "U.S. and e.g. file.py node.js", []),
    ({}, "vx is short for vertex", []),
    ({}, "add me on wechat please", []),
    ({}, "vx: abcdefg", [("abcdefg", "digits")]),
    ({}, "微信号 abcdefg", [("abcdefg", "digits")]),
    ({}, "一五一十地说", []),
    ({}, "", []),
]


@pytest.mark.parametrize(("options", "text", "expected"), CASES)
def test_contact_table(options, text, expected):
    found = ContactFinder(**options).find(text)
    assert [(text[m.start:m.end], m.kind) for m in found] == expected


def test_match_objects_carry_original_offsets():
    text = "😀😀 call ①③⑧００１３８０００"
    assert ContactFinder().find(text) == [ContactMatch(8, 19, "phone")]


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown contact kinds"):
        ContactFinder(kinds=["fax"])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("1３①一壹 -.@a.com这x")) | st.characters(), max_size=60))
def test_results_are_sorted_non_overlapping_and_in_bounds(text):
    assert len(normalize_contacts(text)) == len(text)
    found = ContactFinder().find(text)
    previous_end = 0
    for m in found:
        assert previous_end <= m.start < m.end <= len(text)
        previous_end = m.end


@pytest.mark.parametrize("text", ["1 " * 6000, "a." * 6000, "x@" + "a-" * 6000, "www." + "a." * 6000,
                                  ("a" * 60 + ".") * 200, "vx:" * 4000, "一二三" * 4000])
def test_hostile_input_stays_fast(text):
    started = time.perf_counter()
    ContactFinder().find(text)
    assert time.perf_counter() - started < 0.5


# ---- the fast paths decide exactly as the plain definitions did ---------------------------------
#
# The detectors as first written, with the look-behind in front (see contacts._not_after), and the
# hints; the module's versions must find the same spans, and the gate on the raw text must let
# through every text on whose stream some hint matches.
_SEP = r"[\s\-.·•_~—–\U000E0000-\U000E007F]{0,2}"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?[.。点])+"
_TLDS = contacts._TLDS
_TAIL = r"(?:[/?#:][!-~]*[A-Za-z0-9/#=_~\-])?"
REFERENCE_DETECTORS = [  # (regex, flags), in ContactFinder()._detectors order
    (r"(?<![0-9])(?:(?:\+|00)[\s\-]*86[\s\-]*|\(\+?86\)[\s\-]*)?1" + _SEP + r"[3-9](?:" + _SEP
     + r"[0-9]){9}(?![0-9])", re.ASCII),
    (r"(?<![0-9A-Za-z])\+[1-9][0-9]{0,2}(?:[\s\-.()]{0,3}[0-9]){6,14}(?![0-9])", re.ASCII),
    (r"(?<![0-9])(?:0[1-9][0-9]{1,2}|\(0[1-9][0-9]{1,2}\))[\s\-]?[2-9][0-9]{2,3}[\s\-]?[0-9]{4}(?![0-9])",
     re.ASCII),
    (r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
     r"[A-Za-z]{2,24}(?![A-Za-z0-9\-])", re.ASCII),
    (r"(?<![A-Za-z0-9])(?:https?|ftp)://[!-~]*[A-Za-z0-9/#=_~\-]", re.ASCII),
    (r"(?<![A-Za-z0-9.\-])www[.。点]" + _HOST + r"[A-Za-z]{2,24}(?![A-Za-z0-9\-])" + _TAIL, re.ASCII),
    (r"(?<![A-Za-z0-9@._\-])" + _HOST + r"(?:" + _TLDS + r")(?![A-Za-z0-9\-])" + _TAIL, re.ASCII),
    (r"(?<![0-9])[0-9](?:" + _SEP + r"[0-9]){4,}(?![0-9])" + contacts._NOT_A_QUANTITY, re.ASCII),
    (r"(?<![A-Za-z])(?:微信|威信|薇信|维信|徽信|微xin|wei\s?xin|we\s?chat|vchat|vx|wx|v信|加v|加微)\s*"
     r"(?:(?:号|id)?\s*[:=]\s*|(?:号|id)\s*|(?=[A-Za-z][A-Za-z0-9_\-]*[0-9_\-]))([A-Za-z][A-Za-z0-9_\-]{5,19})"
     r"(?![A-Za-z0-9_\-])", 0),
]
REFERENCE_HINTS = [
    r"@(?<=[a-z0-9._%+\-]@)[a-z0-9]", r"://", r"[.。点](?<=[a-z0-9][.。点])[a-z]", r"[0-9](?:" + _SEP + r"[0-9]){4}",
    r"微信|威信|薇信|维信|徽信|微xin|wei\s?xin|we\s?chat|vchat|vx|wx|v信|加v|加微",
]
# Pieces that make contact-like text likely: markers, digits in every disguise, separators.
_PIECES = (list("0123456789+-().:@/ 　。点,_x") + ["１", "①", "一", "三", "八", "零", "〇", "幺", "壹", "٣", "𝟏",
           "\u200b", "\U000E0020", "\n", "＠", "．", "：", "／", "Ｗ", "ｘ", "Ⓦ", "ｖ", "微信", "加v", "wei", "xin",
           "We", "chat", "vx", "wx", "号", "id", "=", "元", "km", "www", ".com", "。cn", "点com", "http", "s://",
           "ftp", "a.b", "qq", "abc", "x1_", "Tom", "86", "0086", "(+86)", "138", "0013", "8000", "2024",
           "-01-", "15", "é", "你好", "的", "😀", "13800138000", "1 3 8-0013-8000", "+1 (415) 555-2671",
           "010-62345678", "(0755) 8888 8888", "foo.bar+x@gmail.com", "a@b.cn", "https://evil.io/x?a=1",
           "http://1.2.3.4:8080/p", "www.baidu.com", "baidu点com", "t.me/x", "x-y.example.com", "12345678"])
CONTACTISH = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join) | st.text(max_size=40)


@settings(max_examples=1500, deadline=None)
@given(CONTACTISH)
def test_detectors_find_what_their_plain_definitions_find(text):
    norm = normalize_contacts(text)
    finder = ContactFinder()
    assert len(finder._detectors) == len(REFERENCE_DETECTORS)
    for (_, _, pattern, group), (reference, flags) in zip(finder._detectors, REFERENCE_DETECTORS):
        expected = [m.span(group) for m in re.finditer(reference, norm, flags)]
        assert [m.span(group) for m in pattern.finditer(norm)] == expected, reference


@settings(max_examples=1500, deadline=None)
@given(CONTACTISH)
def test_the_gate_lets_through_every_text_a_hint_matches(text):
    assert [h.pattern for h in contacts._HINTS.values()] == REFERENCE_HINTS
    if any(h.search(normalize_contacts(text)) for h in contacts._HINTS.values()):
        assert contacts._gate().search(text)


@settings(max_examples=1000, deadline=None)
@given(CONTACTISH, st.sampled_from([{}, {"allow_domains": ["example.com"]}, {"kinds": ["email", "url"]},
                                    {"min_digits": 7}]))
def test_the_gate_changes_no_result(text, options):
    gated = ContactFinder(**options)
    ungated = ContactFinder(**options)
    ungated._gate = None
    assert gated._gate is not None
    assert gated.find(text) == ungated.find(text)


def test_no_gate_when_a_detector_has_no_hint():
    assert ContactFinder(min_digits=3)._gate is None  # short digit runs: no hint to stand for


def test_no_whitespace_beyond_the_bmp():
    # The gate builds its whitespace classes from the BMP; \s in the hints must find nothing more.
    assert not any(chr(cp).isspace() for cp in range(0x10000, 0x110000))
