"""The word engine's compiled kernel (rules/text/_wordkernel.c) against its Python fallback.

Both paths must give the same matches (offsets, word, category, ``via``) and masks for any
str: the existing word-engine tables are run through both, then generated hostile text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.text import kernel
from rules.text.words import Word, WordMatcher, load_word_file

from . import test_text_variants, test_text_words, test_words_corpus

pytestmark = pytest.mark.skipif(kernel.compiled is None and os.environ.get("CI") != "true",
                                reason="the C kernel is not built here (no compiler at install?)")
ROOT = Path(__file__).resolve().parent.parent
EVERY_OPTION = dict(pinyin=True, leet=True, confusables=True, fold_repeats=True)


def build_both(words, **options) -> tuple[WordMatcher, WordMatcher]:
    """(compiled, pure-Python) matchers of the same words and options."""
    compiled = WordMatcher.build(words, **options)
    saved, kernel.compiled = kernel.compiled, None
    try:
        python = WordMatcher.build(words, **options)
    finally:
        kernel.compiled = saved
    # (no words: no automaton, nothing for a kernel to do)
    assert compiled._kernel is not None or compiled._automaton is None, "compiled path not in use"
    assert python._kernel is None
    return compiled, python


def assert_same(compiled: WordMatcher, python: WordMatcher, text: str) -> list:
    found = compiled.find(text)
    assert found == python.find(text), text
    assert compiled.mask(text, found) == python.mask(text, found)
    assert compiled.mask(text, found, replacement="[✂]") == python.mask(text, found, replacement="[✂]")
    assert compiled.mask(text, found, char="🙈") == python.mask(text, found, char="🙈")
    return found


def test_ci_runs_the_compiled_kernel():
    # .ci/run installs with a compiler: a silent fallback to Python there would be a slowdown
    # nobody sees.  Off CI this holds wherever the extension was built.
    assert kernel.compiled is not None, kernel.describe()
    assert WordMatcher.build(["傻逼"])._kernel is not None
    assert kernel.describe() == "sensitive words: compiled kernel in use"


@pytest.mark.parametrize(("words", "options", "text", "expected"), test_text_words.MASK_CASES)
def test_mask_table_on_both_paths(words, options, text, expected):
    compiled, python = build_both(words, **options)
    found = assert_same(compiled, python, text)
    assert compiled.mask(text, found) == expected


@pytest.mark.parametrize(("text", "expected"), test_text_words.FIND_CASES)
def test_find_table_on_both_paths(text, expected):
    compiled, python = build_both(test_text_words.ABUSE)
    assert [tuple(m[:4]) for m in assert_same(compiled, python, text)] == expected


_OVERLAY_CASES = test_text_variants.test_what_the_overlays_find.pytestmark[0].args[1]
_HOSTILE = test_text_variants.test_hostile_text.pytestmark[0].args[1]


@pytest.fixture(scope="module")
def overlays() -> tuple[WordMatcher, WordMatcher]:
    return build_both(test_text_variants.WORDS, allow=test_text_variants.ALLOW,
                      **test_text_variants.ALL_ON)


@pytest.mark.parametrize(("text", "found"), _OVERLAY_CASES)
def test_overlay_table_on_both_paths(overlays, text, found):
    assert [m.word for m in assert_same(*overlays, text)] == found


@pytest.mark.parametrize("text", _HOSTILE)
def test_hostile_texts_on_both_paths(overlays, text):
    assert_same(*overlays, text)


@pytest.fixture(scope="module", params=test_words_corpus.MODES)
def corpus(request) -> tuple[WordMatcher, WordMatcher]:
    data = test_words_corpus.DATA
    allow = [word.text for word in load_word_file(data / "allow.txt")]
    return build_both(load_word_file(data / "words.txt"), allow=allow, homophones=request.param,
                      **test_words_corpus.ALL_ON)


def test_corpora_on_both_paths(corpus):
    texts = test_words_corpus.EVERYDAY + [text for text, _ in test_words_corpus.EVASIONS]
    found = [assert_same(*corpus, text) for text in texts]
    everyday = len(test_words_corpus.EVERYDAY)
    assert not any(found[:everyday])
    missed = sum(not hit for hit in found[everyday:])  # same-tone misses the any_tone ones
    assert missed <= len(test_words_corpus.ANY_TONE)


# Hostile text: the words' own chars and disguises among lone surrogates, NUL, combining
# marks, astral chars (styled letters, emoji, CJK Ext-B), expanding chars (ß, ﬁ), leet symbols.
_WORDS = ["诈骗", "代开发票", "scam", "paypal", "hate", "ass", "傻逼", "sb", "b站", "ab"]
_ALPHABET = st.sampled_from(list("诈炸骗片代带开发票傻沙逼scampiythe@$0134 .-_asbABzhn站")
                            + ["\ud800", "\udfff", "\x00", "\u0301", "\u0336", "\u20dd",
                               "𝐬", "𝓪", "😀", "\U00020000", "ß", "ﬁ", "ｓ", "а", "с", "ѕ", "ο", "р", "аѕѕ",
                               "\u200b", "\u3000", "４", "zha4", "pian4", "dai", "kai1"])
_TEXTS = st.lists(_ALPHABET, max_size=60).map("".join)


@pytest.fixture(scope="module")
def hostile() -> dict[str, tuple[WordMatcher, WordMatcher]]:
    return {"every option": build_both(_WORDS, allow=["scampi", "诈骗犯罪举报"], **EVERY_OPTION),
            "any tone": build_both(_WORDS, homophones="any_tone", **EVERY_OPTION),
            "no folding": build_both(_WORDS, pinyin=True, leet=True, confusables=True),
            "first wave": build_both(_WORDS, fold_repeats=True),
            "no whole-word check": build_both(_WORDS, whole_word_latin=False, leet=True)}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXTS)
def test_both_paths_agree_on_generated_hostile_text(hostile, text):
    for compiled, python in hostile.values():
        assert_same(compiled, python, text)


# Which texts Kernel.find does in one call (the symbol pass and its merge included) and
# which it leaves to Python's steps (None): a tone number (with pinyin: the tone pass), a
# char the table cannot do (an expanding one: the per-char path).
_WHO_FINDS = [
    ("plain 诈骗 and scam", "kernel"),
    ("$cam and 炸骗", "kernel"),  # a leet symbol at a letter: the symbol pass, in C
    ("h@te, a$$ and 5cam, sha bi", "kernel"),
    ("@ " * 40 + "scam 诈骗", "kernel"),  # more symbols than it looks at: the pass runs
    ("$cam then zha4 pian4", "tone"),  # after the symbol: the scan must look on
    ("zha4pian4 $cam", "tone"),
    ("ﬁ$cam", "escape"),
    ("", "kernel"),
]


@pytest.mark.parametrize(("text", "who"), _WHO_FINDS)
def test_which_texts_the_kernel_finds_in_one_call(hostile, text, who):
    for name, (compiled, python) in hostile.items():
        found = assert_same(compiled, python, text)
        python_steps = who == "escape" or (who == "tone" and compiled._tones)
        assert (compiled._kernel.find(text) is None) == python_steps, name
        if not python_steps:
            assert compiled._kernel.find(text) == found


def test_both_paths_agree_on_huge_text(hostile):
    compiled, python = hostile["every option"]
    for text in ("zha pian 炸骗 $cam " * 20_000, "s\u0336b" * 100_000, "\ud800" * 10**6,
                 "诈" * 300_000 + "骗", "ab" * 100_000 + "站"):
        assert_same(compiled, python, text)


def test_the_kernel_refuses_bad_input_with_exceptions():
    matcher = WordMatcher.build(["傻逼", "scam"], leet=True)
    kernel_ = matcher._kernel
    data = kernel_.encode("傻逼")
    with pytest.raises(TypeError):
        kernel_.encode(b"bytes")
    with pytest.raises(IndexError):
        kernel_.resolve("傻逼", data, [(99, 0, len(data))])  # no such pattern
    with pytest.raises(IndexError):
        kernel_.resolve("傻逼", data, [(0, 0, len(data) + 8)])  # past the text
    with pytest.raises(ValueError):
        kernel_.resolve("傻逼傻逼", data, [])  # data of another text
    with pytest.raises(TypeError):
        kernel_.resolve("傻逼", data, [(0, 0)])
    with pytest.raises(RuntimeError):
        kernel_.matches("傻逼", data, [])  # not configured before its first hit
    assert matcher.find("傻逼") and kernel_.configured


def test_the_fallback_runs_when_switched_off_and_says_so():
    code = ("from rules.text import kernel; from rules.text.words import WordMatcher;"
            "m = WordMatcher.build(['傻逼'], pinyin=True); assert m._kernel is None;"
            "print(kernel.describe()); print(m.mask('傻@逼 sha bi', m.find('傻@逼 sha bi')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "IMHOOK_WORDS_KERNEL": "0"}, check=True).stdout
    assert out.splitlines() == [
        "sensitive words: compiled kernel switched off (IMHOOK_WORDS_KERNEL=0), pure-Python path",
        "*** ******"]


def test_words_as_word_objects_keep_their_category_on_both_paths():
    compiled, python = build_both([Word("诈骗", "fraud"), Word("scam", "fraud")], pinyin=True, leet=True)
    found = assert_same(compiled, python, "zha pian, 5cam and 炸骗")
    assert [(m.word, m.category) for m in found] == [("诈骗", "fraud"), ("scam", "fraud"), ("诈骗", "fraud")]


@pytest.mark.parametrize("built", [True, False])
def test_startup_warns_once_when_the_kernel_is_missing(monkeypatch, caplog, built):
    from rules.builtin import sensitive_words

    from .test_rules_text import c2c, reply
    if not built:
        monkeypatch.setattr(kernel, "compiled", None)
    sensitive_words._warn_without_kernel.cache_clear()
    caplog.set_level("WARNING", logger="imhook.rules")
    for _ in range(2):  # a second rule (or reload) says nothing more
        reply("{use: sensitive_words, config: {words: ['傻逼'], pinyin: true}}", c2c("傻@逼"))
    warnings = [r.getMessage() for r in caplog.records if "compiled kernel" in r.getMessage()]
    assert warnings == ([] if built else [kernel.describe()])
    assert not built or kernel.describe() == "sensitive words: compiled kernel in use"
    sensitive_words._warn_without_kernel.cache_clear()


def test_the_benchmark_says_which_path_and_where_the_kernel_spends():
    script = ROOT / "benchmarks" / "words.py"
    out = subprocess.run([sys.executable, str(script), "--smoke", "--breakdown"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "sensitive words: compiled kernel in use" in out
    section = out.split("every option on the compiled kernel")[1].splitlines()[1:]
    steps = [line for line in section if line.startswith("  ")]
    labels = [line.rsplit(None, 1)[0].strip() for line in steps]
    assert labels[0] == "encode (C)" and labels[-1] == "=> find + mask", out
    assert all(float(line.rsplit(None, 1)[1]) >= 0 for line in steps)


def test_a_configure_refused_for_bad_parts_keeps_nothing_and_the_next_one_works():
    if kernel.compiled is None:
        pytest.skip("the compiled kernel is not built here")
    from rules.text.words import Match

    matcher = WordMatcher.build([Word("scam"), Word("诈骗")], confusables=True)

    class Capture:  # what kernel.configure hands the real kernel
        configured = False

        def configure(self, *args):
            self.args = list(args)

    capture = Capture()
    kernel.configure(capture, matcher, Match)
    real, good = matcher._kernel, capture.args
    assert not real.configured
    short_pairs = good.copy()
    short_pairs[5] = good[5][:-1]
    not_codes = good.copy()
    not_codes[11] = ["x"]
    wrong_width = good.copy()
    wrong_width[3] = b"\x00" * 16
    for bad, error in ((short_pairs, ValueError), (not_codes, TypeError), (wrong_width, ValueError)):
        with pytest.raises(error):
            real.configure(*bad)
        assert not real.configured
    real.configure(*good)
    assert real.configured
    assert [m.word for m in matcher.find("a scаm and 诈骗")] == ["scam", "诈骗"]
