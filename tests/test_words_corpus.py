"""The second wave of evasions against two corpora kept in tests/data/words/.

With pinyin, leet and confusables all on, every everyday sentence must come back unchanged
and every evasion must be found as the word it disguises: with pinyin's default homophones
(same tone) all but those marked any_tone, with tone-blind homophones all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.text.words import WordMatcher, load_word_file

DATA = Path(__file__).parent / "data" / "words"
ALL_ON = dict(pinyin=True, leet=True, confusables=True, fold_repeats=True)
MODES = ("same_tone", "any_tone")


def _lines(name: str) -> list[str]:
    text = (DATA / name).read_text("utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


EVERYDAY = _lines("everyday.txt")
LINES = [line.split("\t") for line in _lines("evasions.txt")]
EVASIONS = [(fields[0], fields[1]) for fields in LINES]
ANY_TONE = {fields[0] for fields in LINES if fields[2:] == ["any_tone"]}


@pytest.fixture(scope="module", params=MODES)
def mode(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def matcher(mode) -> WordMatcher:
    allow = [word.text for word in load_word_file(DATA / "allow.txt")]
    return WordMatcher.build(load_word_file(DATA / "words.txt"), allow=allow,
                             homophones=mode, **ALL_ON)


def test_the_corpora_are_big_enough():
    assert len(EVERYDAY) >= 200 and len(EVASIONS) >= 100
    assert all(len(fields) == 2 or fields[2:] == ["any_tone"] for fields in LINES)
    assert 0 < len(ANY_TONE) < 5


@pytest.mark.parametrize("sentence", EVERYDAY)
def test_everyday_sentences_come_back_unchanged(matcher, sentence):
    assert matcher.find(sentence) == []


@pytest.mark.parametrize(("text", "word"), EVASIONS)
def test_evasions_are_caught(mode, matcher, text, word):
    found = matcher.find(text)
    if mode == "same_tone" and text in ANY_TONE:
        assert word not in [m.word for m in found]  # another tone: not a same-tone homophone
        return
    assert word in [m.word for m in found], found
    masked = matcher.mask(text, found)
    assert len(masked) == len(text)  # one mask char per original code point
    hit = next(m for m in found if m.word == word)
    # The span starts and ends on what the evasion wrote, marks after the last letter included.
    assert not text[hit.start].isspace() and (hit.end == len(text) or not
                                               _is_mark(text[hit.end]))


def _is_mark(ch: str) -> bool:
    import unicodedata
    return unicodedata.category(ch) in ("Mn", "Me")


@pytest.mark.parametrize("text", EVERYDAY[:40] + [t for t, _ in EVASIONS[:40]])
def test_all_options_off_keeps_the_first_wave_meaning(text):
    # The new options default off: with them off, a matcher finds what it found before.
    words = load_word_file(DATA / "words.txt")
    plain = WordMatcher.build(words, fold_repeats=True)
    found = plain.find(text)
    assert all(m.via == "" for m in found)
