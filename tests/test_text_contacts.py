"""Table tests for contact detection (rules.text.contacts)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

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
