"""rules/text/_wordsearch.c: the Searcher finds exactly the ahocorasick_rs automaton's hits.

The automaton (leftmost-longest) is the reference: the same keys, the same streams, the same
[(key, start, end)] list, for the word lists the engine builds (every option on), generated streams
made of key pieces and stray bytes, and streams made to run the walks long (where the Searcher
hands over to the automaton, whose answer it then returns).
"""

from __future__ import annotations

import os

import ahocorasick_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.text import kernel
from rules.text.words import WordMatcher, load_word_file

from . import test_words_corpus

_wordsearch = kernel._wordsearch
pytestmark = pytest.mark.skipif(_wordsearch is None and os.environ.get("CI") != "true",
                                reason="the word search extension is not built here (no compiler at install?)")
EVERY_OPTION = dict(pinyin=True, leet=True, confusables=True, fold_repeats=True)


def automaton(keys: list[bytes]):
    return ahocorasick_rs.BytesAhoCorasick(keys, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)


class Spy:
    """An automaton that counts how often the Searcher hands a stream over to it."""

    def __init__(self, keys: list[bytes]) -> None:
        self.real, self.calls = automaton(keys), 0

    def find_matches_as_indexes(self, data):
        self.calls += 1
        return self.real.find_matches_as_indexes(data)


@pytest.fixture(scope="module")
def corpus_keys() -> tuple[list[bytes], list[bytes]]:
    """(keys, streams): the corpus word list with every option, as the engine encodes them."""
    captured: list[list[bytes]] = []
    real = ahocorasick_rs.BytesAhoCorasick

    def capture(keys, **kwargs):
        captured.append(list(keys))
        return real(captured[-1], **kwargs)

    ahocorasick_rs.BytesAhoCorasick = capture
    try:
        matcher = WordMatcher.build(load_word_file(test_words_corpus.DATA / "words.txt"), **EVERY_OPTION)
    finally:
        ahocorasick_rs.BytesAhoCorasick = real
    texts = test_words_corpus.EVERYDAY + [text for text, _ in test_words_corpus.EVASIONS]
    matcher.find(texts[0])
    streams = [stream for stream in map(matcher._kernel.encode, texts) if stream is not None]
    return max(captured, key=len), streams


def test_the_engine_searches_with_the_searcher_when_built():
    matcher = WordMatcher.build(["傻逼", "诈骗"])
    assert type(matcher._automaton) is _wordsearch.Searcher
    assert [m.word for m in matcher.find("你是傻逼吗，这是诈骗")] == ["傻逼", "诈骗"]


def test_the_corpus_gives_the_automatons_hits(corpus_keys):
    keys, streams = corpus_keys
    searcher = _wordsearch.Searcher(keys, spy := Spy(keys))
    found = 0
    for stream in streams:
        hits = searcher.find_matches_as_indexes(stream)
        assert hits == spy.real.find_matches_as_indexes(stream)
        found += len(hits)
    assert found > 0 and spy.calls == 0  # hits were there to find; none went to the automaton


# Keys of 1 to 12 bytes, prefixes of each other, a duplicate (the first one wins): the Searcher looks
# keys of 8 bytes or more up by their first 8 (with the longest shorter key on the way), and shorter
# ones by their own filter.
SMALL_KEYS = [b"\x80\x01", b"\x80\x01\x81\x02", b"\x80\x01\x81\x02\x82\x03", b"\x81\x02", b"\x82",
              b"\x82\x03\x82\x03\x82\x03\x82\x04", b"ab", b"abc", b"abcd", b"abcde", b"b", b"bcd", b"ab",
              b"abcdefg", b"abcdefgh", b"abcdefghij", b"bcdefghijklm", b"abcdxfghi",
              b"\x80\x01\x81\x02\x82\x03\x83\x04\x84\x05"]
STREAMS = [b"", b"\x80", b"\x80\x01", b"\x80\x01\x81", b"\x80\x01\x81\x02\x82\x03\x82", b"xxabcdexx", b"abab",
           b"\x82\x03\x82\x03\x82\x03\x82\x03\x82\x04", b"zzzzb", b"bcdabcd", b"\x00" * 9, b"\xff" * 3 + b"ab",
           b"abcdefghi", b"abcdefghijk", b"xabcdefgx", b"abcdefghabcdefgh", b"abcdxfghabcdxfghi", b"bcdefghijkl",
           b"\x80\x01\x81\x02\x82\x03\x83\x04\x84", b"\x80\x01\x81\x02\x82\x03\x83\x04\x84\x05\x80\x01"]


# The engine hands its keys over in byte order, which the Searcher builds from in one pass; any
# other order takes the general way. Both must give the automaton's hits.
KEY_ORDERS = {"as listed": SMALL_KEYS, "in byte order": sorted(SMALL_KEYS)}


@pytest.mark.parametrize("order", KEY_ORDERS)
@pytest.mark.parametrize("stream", STREAMS)
def test_a_table_of_streams_gives_the_automatons_hits(stream, order):
    keys = KEY_ORDERS[order]
    assert _wordsearch.Searcher(keys, automaton(keys)).find_matches_as_indexes(stream) == \
        automaton(keys).find_matches_as_indexes(stream)


@pytest.mark.parametrize("order", KEY_ORDERS)
def test_both_builds_make_the_same_trie(order):
    sizes = _wordsearch.Searcher(KEY_ORDERS[order], None).sizes()
    assert sizes == _wordsearch.Searcher(SMALL_KEYS, None).sizes()


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SMALL_KEYS).flatmap(lambda key: st.integers(1, len(key)).map(
    lambda n: key[:n])), st.binary(max_size=2)), max_size=40).map(b"".join))
def test_generated_streams_give_the_automatons_hits(stream):
    for keys in KEY_ORDERS.values():
        assert _wordsearch.Searcher(keys, automaton(keys)).find_matches_as_indexes(stream) == \
            automaton(keys).find_matches_as_indexes(stream)


@pytest.mark.parametrize("data_type", [bytes, bytearray, memoryview])
def test_any_buffer_is_searched_as_bytes(data_type):
    searcher = _wordsearch.Searcher(SMALL_KEYS, automaton(SMALL_KEYS))
    assert searcher.find_matches_as_indexes(data_type(b"xxabcdexx")) == [(9, 2, 7)]
    with pytest.raises(TypeError):
        searcher.find_matches_as_indexes("abcd")


def test_a_stream_made_to_run_the_walks_long_goes_to_the_automaton():
    # Every position begins a long walk that ends one byte short of the only key: quadratic for a
    # walk from each position, linear for the automaton, which then answers.
    key = b"\x80\x01" * 200 + b"\x81\x02"
    keys = [key, b"\x80\x01\x80\x01"]
    spy = Spy(keys)
    searcher = _wordsearch.Searcher(keys, spy)
    stream = b"\x80\x01" * 5000 + b"\x81\x02"
    assert searcher.find_matches_as_indexes(stream) == spy.real.find_matches_as_indexes(stream)
    assert spy.calls == 1
    ordinary = b"\x80\x01\x80\x01zz" * 100  # short walks: no hand-over
    assert searcher.find_matches_as_indexes(ordinary) == spy.real.find_matches_as_indexes(ordinary)
    assert spy.calls == 1


def test_bad_keys_are_refused_with_an_exception():
    for keys in ([b""], ["ab"], [None], 7):
        with pytest.raises((ValueError, TypeError)):
            _wordsearch.Searcher(keys, automaton([b"x"]))
    assert _wordsearch.Searcher([], None).find_matches_as_indexes(b"abc") == []


def test_it_says_what_it_holds():
    sizes = _wordsearch.Searcher(SMALL_KEYS, automaton(SMALL_KEYS)).sizes()
    assert sizes["keys"] == len(SMALL_KEYS) and sizes["nodes"] > 10 and sizes["bytes"] > 16 * 1024
    assert sizes["jumps"] == 5  # the distinct first 8 bytes of the keys of 8 bytes or more
