"""The overlays of rules.text.variants: their data, their checks, hostile input."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.text.variants import (DEFAULT_LEET, MAX_PINYIN_CHARS, TONE_NUMBER, confusable_map,
                                 has_tone_number, homophone_map, pinyin_keys, syllables,
                                 toned_syllables)
from rules.text.words import WordMatcher

ALL_ON = dict(pinyin=True, leet=True, confusables=True)  # pinyin brings same-tone homophones
WORDS = ["诈骗", "代开发票", "scam", "paypal", "hate", "ass", "傻逼"]
ALLOW = ["scampi", "class", "诈骗犯罪举报"]


@pytest.fixture(scope="module")
def matcher():
    return WordMatcher.build(WORDS, allow=ALLOW, **ALL_ON)


def test_reading_data_comes_from_pypinyin():
    reading = syllables()
    assert len(reading) > 20_000  # the library's table, not a hand-typed list
    assert reading["诈"] == reading["炸"] == "zha" and reading["绿"] == "lv"
    assert homophone_map()[ord("炸")] == homophone_map().get(ord("诈"), ord("诈"))
    toned = toned_syllables()
    assert toned["诈"] == toned["炸"] == "zha4" and toned["绿"] == "lv4" and toned["吗"] == "ma"
    # Same tone: one class; another tone (shā, shǎ): one class only when tones are ignored.
    same = homophone_map("tone")
    assert same.get(ord("炸"), ord("炸")) == same.get(ord("诈"), ord("诈"))
    assert same.get(ord("沙"), ord("沙")) != same.get(ord("傻"), ord("傻"))
    anyt = homophone_map("any")
    assert anyt.get(ord("沙"), ord("沙")) == anyt.get(ord("傻"), ord("傻"))


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
    # whole, and each single char in pinyin, the middle ones included
    ("代开发票", ["daikaifapiao", "dai开发票", "代kai发票", "代开fa票", "代开发piao"]),
    ("吗呢", ["mane", "ma呢", "吗ne"]),                 # neutral tones: no number to add
])
def test_pinyin_keys(key, expected):
    assert sorted(pinyin_keys(key)) == sorted(expected)


def test_pinyin_keys_are_bounded():
    assert len(pinyin_keys("诈骗诈骗")) == 5  # whole, each char: n + 1, a fast build
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
    ("zha4pian4", ["诈骗"]), ("Zha4-Pian4", ["诈骗"]), ("zha4 pian4 ok", ["诈骗"]),  # tone numbers
    ("dai开发票", ["代开发票"]), ("代kai发票", ["代开发票"]), ("代开fa票", ["代开发票"]),
    ("带开发票", ["代开发票"]),         # a homophone of the same tone (dài)
    ("沙逼", []),                       # another tone (shā for shǎ): only with any_tone
    ("zha4pian4s", []),                # glued to a letter: not a whole word
    ("zhapian4", ["诈骗"]), ("dai4 kai1 fa1 piao4", ["代开发票"]),
])
def test_what_the_overlays_find(matcher, text, found):
    assert [m.word for m in matcher.find(text)] == found


@pytest.mark.parametrize("text", ["\ud800zha\ud800pian", "\x00$\x00cam", "zha\u0301\u0301pian",
                                  "s\u0336" * 50_000, "zhapian" * 100_000, "$" * 10**6])
def test_hostile_text(matcher, text):
    found = matcher.find(text)
    masked = matcher.mask(text, found)
    assert len(masked) == len(text)


@pytest.mark.parametrize(("homophones", "text", "found"), [
    ("any_tone", "沙逼 傻比", ["傻逼", "傻逼"]),   # tones ignored: shā, bǐ for shǎ, bī
    ("same_tone", "沙逼 傻比", []),
    ("off", "炸骗 带开发票", []),                  # spellings only
    ("off", "zhapian", ["诈骗"]),
    (True, "沙逼", ["傻逼"]),                     # the first version's boolean: tones ignored
])
def test_homophone_modes(homophones, text, found):
    matcher = WordMatcher.build(WORDS, pinyin=homophones != True, homophones=homophones)  # noqa: E712
    assert [m.word for m in matcher.find(text)] == found


def test_neighbours_that_read_the_same_do_not_fold_into_one():
    # 世事: shì shì.  As class codes, fold_repeats would make it one char, hit by every shì.
    matcher = WordMatcher.build(["世事", "诈骗"], pinyin=True, fold_repeats=True)
    assert [m.word for m in matcher.find("世事 是 事实")] == ["世事"]
    assert [m.word for m in matcher.find("炸骗")] == ["诈骗"]  # other words keep homophones


def test_a_one_char_word_is_matched_as_written():
    # Its homophones would hit everywhere and are never believed; the price: other words
    # lose homophones at that char (诈片 is no longer 诈骗 while 骗 is listed alone).
    matcher = WordMatcher.build(["骗", "诈骗"], pinyin=True)
    assert [m.word for m in matcher.find("片 骗")] == ["骗"]
    assert [m.word for m in matcher.find("炸骗 诈片")] == ["诈骗"]


def test_pinyin_keys_fold_like_the_text():
    # fold_repeats folds a key's doubled letters as it folds the text's ("shanggang").
    matcher = WordMatcher.build(["上港"], pinyin=True, fold_repeats=True)
    assert [m.word for m in matcher.find("shanggang")] == ["上港"]


@pytest.mark.parametrize(("text", "span"), [
    ("说zha4pian4了", "zha4pian4"), ("ZHA4-PIAN4!", "ZHA4-PIAN4"), ("zha4pian4\u0301 x", "zha4pian4\u0301"),
    ("zha4pian4 and zhapian", "zha4pian4"),
])
def test_tone_numbers_are_masked_with_the_word(text, span):
    matcher = WordMatcher.build(["诈骗", "kill", "hate"], pinyin=True)
    found = matcher.find(text)
    assert text[found[0].start:found[0].end] == span and found[0].via == f"pinyin: {span.strip()} → 诈骗"
    assert len(found) == text.count("zha") + text.count("ZHA")
    assert matcher.find("k1ll h4te") == []  # a Latin word with a digit taken out: not without leet


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ19 5０ü\n")), max_size=12))
def test_the_quick_tone_number_check_agrees_with_the_pattern(text):
    assert has_tone_number(text) == bool(TONE_NUMBER.search(text))


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
