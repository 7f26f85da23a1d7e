"""rules.text.wordbuild's whole-list shortcuts agree with their one-by-one definitions."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.text.normalize import is_latin_alnum
from rules.text.pinyin import is_cjk
from rules.text.wordbuild import _TWO_CJK, _collector_paused, _latin_words

# The edges of is_cjk's ranges, and chars either side of them.
EDGES = [0x33FF, 0x3400, 0x9FFF, 0xA000, 0xF8FF, 0xF900, 0xFAFF, 0xFB00, 0x1FFFF, 0x20000,
         0x2FA1F, 0x2FA20, ord("a"), ord("诈")]


@pytest.mark.parametrize("first", EDGES)
@pytest.mark.parametrize("second", EDGES)
def test_two_cjk_is_two_is_cjk_chars(first, second):
    pair = chr(first) + chr(second)
    assert bool(_TWO_CJK.fullmatch(pair)) == (is_cjk(pair[0]) and is_cjk(pair[1]))


def one_by_one(key: str) -> bool:
    return bool(key) and all(is_latin_alnum(c) for c in key)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text("abZ09é诈ßЖ _-\u0301ａ", max_size=6), max_size=20))
def test_latin_words_for_the_whole_list_equal_one_by_one(keys):
    assert _latin_words(keys) == [one_by_one(key) for key in keys]


def test_the_collector_is_paused_during_a_build_and_resumed_after_even_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with _collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a bad word list")
    assert gc.isenabled()


def test_a_paused_collector_stays_paused():
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller paused it: not ours to resume
    finally:
        gc.enable()
