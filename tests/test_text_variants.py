"""The overlays of rules.text.variants: their data, their checks, hostile input."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.text.variants import (DEFAULT_LEET, MAX_PINYIN_CHARS, confusable_map,
                                 homophone_map, pinyin_keys, syllables)
from rules.text.words import WordMatcher

ALL_ON = dict(pinyin=True, homophones=True, leet=True, confusables=True)
WORDS = ["诈骗", "代开发票", "scam", "paypal", "hate", "ass"]
ALLOW = ["scampi", "class", "诈骗犯罪举报"]


@pytest.fixture(scope="module")
def matcher():
    return WordMatcher.build(WORDS, allow=ALLOW, **ALL_ON)


def test_reading_data_comes_from_pypinyin():
    reading = syllables()
    assert len(reading) > 20_000  # the library's table, not a hand-typed list
    assert reading["诈"] == reading["炸"] == "zha" and reading["绿"] == "lv"
    assert homophone_map()[ord("炸")] == homophone_map().get(ord("诈"), ord("诈"))


def test_confusables_come_from_the_unicode_data():
    conf = confusable_map()
    assert len(conf) > 300
    assert conf["р"] == "p" and conf["а"] == "a" and conf["ο"] == "o"  # Cyrillic, Greek
    assert all(len(v) == 1 and v.isascii() and v.islower() for v in conf.values())
    assert not any("\u4e00" <= k <= "\u9fff" for k in conf)


@pytest.mark.parametrize(("key", "expected"), [
    ("诈骗", ["zha骗", "zhapian", "诈pian"]),
    ("骗", []),                                         # one char: "pian" alone would hit text
    ("a诈骗b", ["azha骗b", "azhapianb", "a诈pianb"]),
])
def test_pinyin_keys(key, expected):
    assert sorted(pinyin_keys(key)) == sorted(expected)


def test_pinyin_keys_are_bounded():
    assert len(pinyin_keys("诈骗诈骗")) == 3  # whole, first char, last char: a fast build
    assert len(pinyin_keys("诈骗诈骗", every_run=True)) == 10  # allow entries: every run
    assert pinyin_keys("诈" * (MAX_PINYIN_CHARS + 1)) == []


@pytest.mark.parametrize(("text", "found"), [
    ("zha pian", ["诈骗"]),
    ("zhapianzi", []),                 # glued to more Latin letters: an English-ish word
    ("诈骗犯罪举报", []),               # allowed, as written...
    ("zhapian犯罪举报", []),            # ...and in pinyin...
    ("炸骗犯罪举报", []),               # ...and with a homophone
    ("sc4mpi", []), ("cl@ss", []), ("сlass", []),  # allowed, leet or Cyrillic
    ("1995 $4.55 3:0 7-1", []),       # numbers and prices are not leet
    ("455", []), ("4$$", []),
    ("@ss", ["ass"]),
    ("Η ζωή είναι ωραία", []), ("Расписание на завтра", []),
    ("naïve résumé café", []),
    ("炸片", []),                       # 2 chars, none kept: homophone-only needs one kept
    ("诈骗", ["诈骗"]),
])
def test_what_the_overlays_find(matcher, text, found):
    assert [m.word for m in matcher.find(text)] == found


@pytest.mark.parametrize("text", ["\ud800zha\ud800pian", "\x00$\x00cam", "zha\u0301\u0301pian",
                                  "s\u0336" * 50_000, "zhapian" * 100_000, "$" * 10**6])
def test_hostile_text(matcher, text):
    found = matcher.find(text)
    masked = matcher.mask(text, found)
    assert len(masked) == len(text)


def test_default_leet_table_reads_letters():
    assert all(len(k) == 1 and len(v) == 1 and v.isalpha() for k, v in DEFAULT_LEET.items())


def test_bad_leet_table_is_refused():
    with pytest.raises(ValueError, match="leet table"):
        WordMatcher.build(["x"], leet={"1": "11"})


_AROUND = "诈骗zhapin $c4m@sаοр\u0336\u0301 -.1"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(_AROUND)) | st.characters(), max_size=40))
def test_masks_only_whole_code_points_inside_the_text(matcher, text):
    found = matcher.find(text)
    position = 0
    for match in found:
        assert position <= match.start < match.end <= len(text)
        # the mask never leaves a combining mark hanging after the last masked char
        assert match.end == len(text) or not unicodedata.combining(text[match.end])
        position = match.end
    assert len(matcher.mask(text, found)) == len(text)
