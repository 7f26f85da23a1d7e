"""Table tests for the sensitive-word engine (rules.text.words / rules.text.normalize)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from rules.text.normalize import get_normalizer, normalize_char
from rules.text.words import Match, SearchEncoding, Word, WordMatcher, load_word_file

ABUSE = [Word("fuck", "abuse"), Word("傻逼", "abuse"), Word("ass", "abuse")]

# (words, build options, input, expected masked output)
MASK_CASES = [
    # letter case, width and styled letters
    (ABUSE, {}, "What the FUCK!", "What the ****!"),
    (ABUSE, {}, "ｆｕｃｋ off", "**** off"),
    (ABUSE, {}, "ＦＵＣＫ", "****"),
    (ABUSE, {}, "Ⓕⓤⓒⓚ you", "**** you"),
    (ABUSE, {}, "ⓕⓤⓒⓚ", "****"),
    (ABUSE, {}, "𝐟𝐮𝐜𝐤 it", "**** it"),  # mathematical bold (astral code points)
    (ABUSE, {}, "𝓯𝓾𝓬𝓴", "****"),  # mathematical bold script
    (ABUSE, {}, "𝕗𝕦𝕔𝕜", "****"),  # double-struck
    (ABUSE, {}, "fück", "****"),  # accent on a Latin letter
    # Traditional <-> Simplified, in both directions
    (["这个"], {}, "這個人", "**人"),
    (["這個"], {}, "这个人", "**人"),
    (["头发"], {}, "頭髮很長", "**很長"),
    (["这个"], {"traditional": False}, "這個人", "這個人"),
    # noise between characters
    (ABUSE, {}, "傻@逼", "***"),
    (ABUSE, {}, "你是傻 逼吗", "你是***吗"),
    (ABUSE, {}, "你是傻\u3000逼吗", "你是***吗"),
    (ABUSE, {}, "f.u.c.k off", "******* off"),
    (ABUSE, {}, "f u c k you", "******* you"),
    (ABUSE, {}, "fu\u200bck", "*****"),  # zero-width space
    (ABUSE, {}, "f\u0336u\u0336c\u0336k\u0336", "********"),  # combining strike-through, the last mark too
    (ABUSE, {}, "傻😀逼", "***"),
    (ABUSE, {"skip_noise": False}, "傻@逼", "傻@逼"),
    (ABUSE, {"skip_noise": False}, "FUCK", "****"),
    # repeated letters
    (ABUSE, {}, "fuuuuck", "fuuuuck"),
    (ABUSE, {"fold_repeats": True}, "fuuuuck", "*******"),
    (ABUSE, {"fold_repeats": True}, "ffuucckk!", "********!"),
    (ABUSE, {"fold_repeats": True}, "傻傻逼逼", "****"),
    # whole-word Latin vs CJK anywhere
    (ABUSE, {}, "first class act", "first class act"),
    (ABUSE, {}, "kiss my ass.", "kiss my ***."),
    (ABUSE, {}, "ASS!", "***!"),
    (ABUSE, {}, "a.s.s", "*****"),
    (ABUSE, {"whole_word_latin": False}, "first class act", "first cl*** act"),
    (ABUSE, {}, "motherfucker", "motherfucker"),
    (ABUSE, {}, "你傻逼吧", "你**吧"),
    (ABUSE, {}, "abc傻逼xyz", "abc**xyz"),
    (ABUSE, {}, "fuck傻逼", "******"),
    (["sb", "b站"], {}, "asb站", "as**"),  # a rejected Latin hit must not hide "b站"
    (["64"], {}, "1964年", "1964年"),
    (["64"], {}, "六4 and 64!", "六4 and **!"),
    # allow-list: longer harmless words win over the sensitive word inside them
    (["操"], {"allow": ["操作", "体操"]}, "请操作一下", "请操作一下"),
    (["操"], {"allow": ["操作", "体操"]}, "體操比賽", "體操比賽"),
    (["操"], {"allow": ["操作", "体操"]}, "操你，操作", "*你，操作"),
    (["cock"], {"allow": ["cocktail"], "whole_word_latin": False}, "cocktail cock", "cocktail ****"),
    (["傻逼"], {"allow": ["傻逼"]}, "傻逼", "傻逼"),  # an allow entry beats the same word
    # leftmost-longest and several matches
    (ABUSE, {}, "fuck 傻逼 and ass", "**** ** and ***"),
    # words written in odd forms still normalise
    (["ＦＵＣＫ"], {}, "fuck", "****"),
    (["F.U.C.K"], {}, "fuck", "****"),
    # surrogate-heavy text around a match stays untouched
    (ABUSE, {}, "👍🏽 傻逼 👨‍👩‍👧 ok 🇨🇳", "👍🏽 ** 👨‍👩‍👧 ok 🇨🇳"),
    (ABUSE, {}, "𠀀𠀁傻逼𠀂", "𠀀𠀁**𠀂"),
    # chars outside the word list share a code in the search encoding; that must not
    # change what matches or where
    (["ass"], {}, "øass", "øass"),  # a Latin letter the list never uses still glues
    (["ass"], {}, "łass ass", "łass ***"),
    (["ass"], {}, "你ass", "你***"),
    (["傻逼"], {"fold_repeats": True}, "你好好傻傻逼吗吗", "你好好***吗吗"),
    (["傻逼"], {"fold_repeats": True}, "好好", "好好"),
    (["ab"], {"fold_repeats": True}, "xyab", "xyab"),  # x, y share a code, still glue
    (["ab"], {"fold_repeats": True, "whole_word_latin": False}, "xyab", "xy**"),
    # chars that expand or lie beyond the vectorised table take the per-char path
    (["strasse"], {}, "Die Straße!", "Die ******!"),
    (["tm"], {}, "foo ™ bar", "foo * bar"),
    (["傻逼"], {}, "𠀀傻逼ß", "𠀀**ß"),
    # nothing to find
    (ABUSE, {}, "", ""),
    (ABUSE, {}, "今天天气不错 hello world", "今天天气不错 hello world"),
    ([], {}, "fuck", "fuck"),
]


@pytest.mark.parametrize(("words", "options", "text", "expected"), MASK_CASES)
def test_mask_table(words, options, text, expected):
    matcher = WordMatcher.build(words, **options)
    assert matcher.mask(text, matcher.find(text)) == expected


# (input, expected matches as (start, end, word, category))
FIND_CASES = [
    ("傻@逼", [(0, 3, "傻逼", "abuse")]),
    ("x FUCK y ass", [(2, 6, "fuck", "abuse"), (9, 12, "ass", "abuse")]),
    ("😀ｆｕｃｋ", [(1, 5, "fuck", "abuse")]),
    ("", []),
]


def test_leftmost_longest_prefers_the_longer_word():
    matcher = WordMatcher.build(["傻", "傻逼"])
    assert [(m.start, m.end, m.word) for m in matcher.find("傻逼傻")] == [(0, 2, "傻逼"), (2, 3, "傻")]


@pytest.mark.parametrize(("text", "expected"), FIND_CASES)
def test_find_offsets_and_metadata(text, expected):
    matcher = WordMatcher.build(ABUSE)
    assert [(m.start, m.end, m.word, m.category) for m in matcher.find(text)] == expected


@pytest.mark.parametrize(
    ("text", "replacement", "expected"),
    [
        ("你是傻@逼吗", "[censored]", "你是[censored]吗"),
        ("fuck 傻逼", "", " "),
        ("fuck 傻逼", "♥", "♥ ♥"),
    ],
)
def test_mask_replacement(text, replacement, expected):
    matcher = WordMatcher.build(ABUSE)
    assert matcher.mask(text, matcher.find(text), replacement=replacement) == expected


def test_mask_custom_char_and_rejects_long_char():
    matcher = WordMatcher.build(ABUSE)
    assert matcher.mask("傻@逼", matcher.find("傻@逼"), char="#") == "###"
    with pytest.raises(ValueError):
        matcher.mask("傻逼", matcher.find("傻逼"), char="**")


def test_mask_accepts_unsorted_and_overlapping_matches():
    matcher = WordMatcher.build(ABUSE)
    text = "abcdefgh"
    matches = [Match(5, 7, "x", ""), Match(1, 3, "x", ""), Match(2, 4, "x", "")]
    assert matcher.mask(text, matches) == "a***e**h"


def test_duplicate_words_keep_first_category():
    matcher = WordMatcher.build([Word("Fuck", "first"), Word("ＦＵＣＫ", "second")])
    assert len(matcher) == 1
    assert [(m.word, m.category) for m in matcher.find("fuck")] == [("Fuck", "first")]


def test_the_word_count_counts_listed_words_not_their_pinyin_keys():
    matcher = WordMatcher.build([Word("诈骗", "fraud"), Word("scam")], allow=["骗子"], pinyin=True)
    assert len(matcher) == 2
    assert matcher.find("zha pian")[0].word == "诈骗"  # the pinyin keys are there all the same


def test_build_accepts_plain_strings_and_skips_words_that_normalise_to_nothing():
    matcher = WordMatcher.build(["傻逼", "@@@", " "])
    assert len(matcher) == 1
    assert matcher.find("@@@") == []


def test_build_is_fast_for_thousands_of_words():
    words = [Word(f"词{i:05d}x", "c") for i in range(5000)]
    get_normalizer()  # tables are per process; measure only the word work
    started = time.perf_counter()
    matcher = WordMatcher.build(words)
    assert time.perf_counter() - started < 1.0
    assert [m.word for m in matcher.find("前面词04999x后面")] == ["词04999x"]


def test_rejected_latin_hits_stay_linear_on_hostile_text():
    matcher = WordMatcher.build(["ass", "ssa", "b站"])
    # Every "ass" here is glued (rejected) and hides a glued "ssa" that a full re-search
    # would also reject: without the cap this costs thousands of whole-text searches.
    text = "classa " * 4000 + "asb站 kiss my ass"
    started = time.perf_counter()
    found = matcher.find(text)
    assert time.perf_counter() - started < 0.5
    assert [m.word for m in found] == ["b站", "ass"]
    assert text[found[-1].start:found[-1].end] == "ass" and found[-1].end == len(text)


# ---- normalisation properties ------------------------------------------------------------

_TRICKY = "這個傻逼ＡＢＣⓕ𝐟ﬁßİΣς½…\u200b\u0301\U000E0061 ,.!@😀👍🏽\ufa6c\U00020000\U0002F800\ud800aAa"
_texts = st.text(alphabet=st.sampled_from(list(_TRICKY)) | st.characters(), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_texts, st.booleans(), st.booleans(), st.booleans())
def test_fast_normalize_equals_per_char_reference(text, skip_noise, traditional, fold):
    normalizer = get_normalizer(skip_noise=skip_noise, traditional=traditional, fold_repeats=fold)
    reference = "".join(normalize_char(c, skip_noise=skip_noise, traditional=traditional)
                        for c in text)
    if fold:
        folded = [c for i, c in enumerate(reference) if i == 0 or reference[i - 1] != c]
        reference = "".join(folded)
    assert normalizer.normalize(text) == reference
    starts, ends = normalizer.offsets(text)
    assert len(starts) == len(ends) == len(reference)
    assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends))
    assert starts == sorted(starts)
    # The vectorised offset map used on the hot path agrees with the per-char loop.
    normalised, located = normalizer.locate(text)
    assert normalised == reference
    assert [located.span(p, p + 1) for p in range(len(reference))] == list(zip(starts, ends))
    assert [located.adjacent(p) for p in range(1, len(reference))] == [
        starts[p] <= ends[p - 1] for p in range(1, len(reference))]


@settings(max_examples=200, deadline=None)
@given(st.lists(_texts, max_size=8), st.booleans(), st.booleans(), st.booleans())
def test_normalize_many_equals_one_by_one(texts, skip_noise, traditional, fold):
    normalizer = get_normalizer(skip_noise=skip_noise, traditional=traditional, fold_repeats=fold)
    assert normalizer.normalize_many(texts) == [normalizer.normalize(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.sampled_from(["傻@逼", "ＦＵＣＫ", "f u c k", "這個"]),
       st.text(max_size=30))
def test_mask_only_touches_matched_spans(prefix, word_form, suffix):
    matcher = WordMatcher.build(["傻逼", "fuck", "这个"])
    text = f"{prefix} {word_form} {suffix}"
    matches = matcher.find(text)
    assert matches, "the planted word must be found"
    masked = matcher.mask(text, matches)
    assert len(masked) == len(text)
    inside = {i for m in matches for i in range(m.start, m.end)}
    for i, (before, after) in enumerate(zip(text, masked)):
        assert after == ("*" if i in inside else before)


def _word_list(distinct_chars: int) -> list[str]:
    """Two-char words over this many distinct chars (ones normalisation keeps as they are)."""
    chars = [c for c in map(chr, range(0x4E00, 0xA000)) if normalize_char(c) == c]
    return [chars[i] + chars[i + 1] for i in range(0, distinct_chars, 2)]


# Lists using few, hundreds and tens of thousands of distinct chars: one per code width of
# the search encoding.  The two wide ones start with "一丁".
@pytest.mark.parametrize(("distinct_chars", "width"), [(0, 1), (600, 2), (17000, 4)])
def test_every_code_width_finds_the_same(distinct_chars, width):
    words = _word_list(distinct_chars) + ["傻逼", "fuck"]
    normalizer = get_normalizer(fold_repeats=True)
    assert SearchEncoding(normalizer, [normalizer.normalize(w) for w in words]).width == width
    matcher = WordMatcher.build(words, fold_repeats=True)
    text = "你是傻@逼吗? F.U.C.K 一丁 ＦＵＵＣＫ 这个fuck"
    found = [text[m.start:m.end] for m in matcher.find(text)]
    planted = ["傻@逼", "F.U.C.K", "一丁", "ＦＵＵＣＫ", "fuck"]
    assert found == ([p for p in planted if p != "一丁"] if width == 1 else planted)


def _reference_normalize(text: str, *, fold_repeats: bool, traditional: bool) -> str:
    norm = "".join(normalize_char(c, traditional=traditional) for c in text)
    if fold_repeats:
        norm = "".join(c for i, c in enumerate(norm) if i == 0 or norm[i - 1] != c)
    return norm


def _reference_find(words: list[str], text: str, **options) -> list[tuple[int, int, str]]:
    """Leftmost-longest, non-overlapping, over the per-char reference normalisation."""
    keys: dict[str, str] = {}
    for word in words:
        keys.setdefault(_reference_normalize(word, **options), word)
    keys.pop("", None)
    starts, ends = get_normalizer(**options).offsets(text)
    norm = _reference_normalize(text, **options)
    found, position = [], 0
    while position < len(norm):
        length = max((len(k) for k in keys if norm.startswith(k, position)), default=0)
        if not length:
            position += 1
            continue
        found.append((starts[position], ends[position + length - 1],
                      keys[norm[position:position + length]]))
        position += length
    return found


_PLANTED = ["傻逼", "这个", "fuck", "ab", "b站", "傻傻"]
_AROUND = "傻逼這個这个fuckＦＵＣＫabb站ß™øx你好 .@😀\u200b\U00020000\u0301"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(_AROUND)) | st.characters(), max_size=40),
       st.booleans(), st.booleans())
def test_find_equals_reference_search(text, fold, traditional):
    options = {"fold_repeats": fold, "traditional": traditional}
    matcher = WordMatcher.build(_PLANTED, whole_word_latin=False, **options)
    assert ([(m.start, m.end, m.word) for m in matcher.find(text)]
            == _reference_find(_PLANTED, text, **options))


# ---- word files ----------------------------------------------------------------------------

def test_load_word_file_reads_categories_comments_and_bom(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\ufeff# abuse words\n傻逼\tabuse\n\n  fuck , abuse \n赌博\n   # indented comment\n",
                    encoding="utf-8")
    assert load_word_file(path) == [Word("傻逼", "abuse"), Word("fuck", "abuse"), Word("赌博", "")]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("ok\n\n\ta\tb\tc\n", 3, "fields"),
        ("ok\n,abuse\n", 2, "empty word"),
        ("# c\nword,\n", 2, "empty category"),
        ("ok\n\xff\xfe\n", 2, "UTF-8"),
    ],
)
def test_load_word_file_bad_line_names_file_and_line(tmp_path, content, line, reason):
    path = tmp_path / "bad.txt"
    path.write_bytes(content.encode("latin-1") if "\xff" in content else content.encode())
    with pytest.raises(ValueError) as excinfo:
        load_word_file(path)
    message = str(excinfo.value)
    assert f"{path}:{line}:" in message
    assert reason in message
