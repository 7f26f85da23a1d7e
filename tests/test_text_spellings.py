"""rules.text.spellings: the vectorised pinyin keys equal the one-by-one reference."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.text.normalize import get_normalizer
from rules.text.spellings import add_pinyin_keys
from rules.text.variants import Transforms, pinyin_keys, syllables


class Pattern(NamedTuple):
    word: str
    category: str
    allowed: bool
    latin_only: bool


def reference(by_key: dict, plain_of: dict, normalizer) -> dict:
    """The first version: every spelling of every word made and normalised on its own."""
    result = dict(by_key)
    for word, category, allowed, _ in list(by_key.values()):
        for spelling in pinyin_keys(plain_of[word], every_run=allowed):
            key = normalizer.normalize(spelling)
            if key and key not in result:
                result[key] = Pattern(word, category, allowed, key.isascii() and key.isalnum())
    return result


NORMALISERS = [dict(),
               dict(fold_repeats=True),
               # a leet table that rewrites a letter of the syllables ("lv" for 绿)
               dict(transforms=Transforms(leet=(("0", "o"), ("v", "u")))),
               dict(fold_repeats=True, transforms=Transforms(homophones="tone", confusables=True)),
               dict(transforms=Transforms(homophones="any"))]
WORDS = ["诈骗", "代开发票", "绿色", "安安", "按难", "长长久久", "重庆", "〇一", "ß哈", "诈pian",
         "哈哈哈哈哈哈哈哈哈", "滚", "scam", "诈 骗", "𠀀诈骗", "中国人民银行"]
ALLOW = ["诈骗犯罪", "安全", "shanghai"]


def check(words: list[str], allow: list[str], options: dict) -> None:
    normalizer = get_normalizer(**options)
    base = get_normalizer(**{k: v for k, v in options.items() if k != "transforms"})
    by_key: dict = {}
    for text, allowed in [(w, False) for w in words] + [(a, True) for a in allow]:
        key = normalizer.normalize(text)
        if key and key not in by_key:
            by_key[key] = Pattern(text, "c", allowed, key.isascii() and key.isalnum())
    plain_of = {text: base.normalize(text) for text in words + allow}
    expected = reference(by_key, plain_of, normalizer)
    add_pinyin_keys(by_key, plain_of, normalizer, Pattern)
    assert list(by_key.items()) == list(expected.items())  # same keys, patterns and order


@pytest.mark.parametrize("options", NORMALISERS)
def test_the_shortcut_makes_the_reference_keys(options):
    check(WORDS, ALLOW, options)


_CHARS = "".join(sorted(syllables())[:3000:7]) + "诈骗安按难重长abc 1ß〇"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(_CHARS, min_size=1, max_size=9), min_size=1, max_size=12),
       st.sampled_from(range(len(NORMALISERS))))
def test_any_word_list_gets_the_reference_keys(words, which):
    check(words, words[:2], NORMALISERS[which])
