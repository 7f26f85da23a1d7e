"""Benchmark the sensitive-word engine against raw ahocorasick_rs on the same texts.

    python benchmarks/words.py [--rounds N] [--smoke] [--strict] [--breakdown] [--tree DIR]

Generates (seeded, so every run sees the same data) a mixed Chinese/English word list and
200-character chat messages, some carrying listed words plainly or disguised (full-width,
Traditional, noise between letters, repeated letters, pinyin, leet, Cyrillic look-alikes).
Then, in --rounds alternating rounds (the order of the runs reverses every round, so a
disturbance on the shared machine falls on all of them alike), it times the raw automaton
(a str scan, no normalisation) and WordMatcher.find (+ mask where a word was found) with the
first-wave normalisation (case, width, Traditional, noise, repeats) and with each second-wave
option alone and together.  It reports per run the median and range of messages/s, the ratio
to raw (paired: computed per round), and each option's cost in µs per message over the first
wave (paired too); then how long a 100,000-word list takes to build (also with pinyin on).
--breakdown adds where the time of find+mask goes, step by step.  --tree DIR imports rules/
from another checkout (before/after pairs: run both, alternately).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
from pathlib import Path

_TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1] else None
sys.path.insert(0, _TREE or str(Path(__file__).resolve().parent.parent))

import ahocorasick_rs  # noqa: E402

from rules.text.contacts import ContactFinder  # noqa: E402
from rules.text.normalize import get_normalizer, t2s_char_map  # noqa: E402
from rules.text.words import SearchEncoding, Word, WordMatcher  # noqa: E402

TARGET_MSGS_PER_S = 60_000  # issue 15: every option on
TARGET_RATIO = 0.7  # issue 16: the word engine against raw ahocorasick_rs
TARGET_BUILD_100K_S = 2.0
TARGET_BUILD_100K_PINYIN_S = 3.0
FIRST_WAVE = "first wave"
RAW_FRESH = "raw, a fresh str each call"
EVERY = "every option"
# The second-wave options on top of the first wave, each alone and all together (issue 15).
# `pinyin` brings homophones of the same tone; the rows below it split that cost.
OPTIONS = {FIRST_WAVE: {},
           "confusables": {"confusables": True},
           "leet": {"leet": True},
           "pinyin, homophones off": {"pinyin": True, "homophones": "off"},
           "pinyin": {"pinyin": True},
           "pinyin, any-tone homophones": {"pinyin": True, "homophones": "any_tone"},
           EVERY: {"pinyin": True, "leet": True, "confusables": True},
           "every option, any-tone homophones": {"pinyin": True, "homophones": "any_tone",
                                                 "leet": True, "confusables": True}}
MESSAGE_CHARS = 200
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ENGLISH = ("the and you this that have with for not are but what all were when we there can "
           "your which their said will each about how up out them then she many some so these "
           "would other into has more her two like him see time could no make than first been "
           "its who now people my made over did down only way find use may water long little "
           "very after words called just where most know get through back much before go good "
           "new write our used me man too any day same right look think also around another "
           "came come work three word must because does part even place well such here take "
           "why things help put years different away again off went old number great tell men "
           "say small every found still between name should home big give air line set own "
           "under read last never us left end along while might next sound below saw something "
           "thought both few those always looked show large often together asked house world "
           "going want school important until form food keep children feet land side without "
           "boy once animals life enough took sometimes four head above kind began almost live "
           "page got earth need far hand high year mother light parts country father let night "
           "following picture being study second eyes soon times story boys since white days "
           "ever paper hard near sentence better best across during today others however sure "
           "means knew try told young miles sun ways thing whole hear example heard several "
           "change answer room sea against top turned learn point city play toward five using "
           "himself usually money seen car morning class ok lol haha").split()
NOISE = list(" .,!?@#*_-~，。！？、…😀👍")


def make_data(seed: int, n_words: int, n_messages: int) -> tuple[list[Word], list[str]]:
    """Return a word list and messages; ~1 in 6 messages plants a word, mostly disguised."""
    rng = random.Random(seed)
    # Simplified/shared ideographs only: mainland chat is typed in Simplified, Traditional
    # shows up as a disguise (and in the separate Traditional-script run).
    traditional = t2s_char_map()
    candidates = [chr(cp) for cp in range(0x4E00, 0x4E00 + 8000) if chr(cp) not in traditional]
    cjk_pool = rng.sample(candidates, 3500)
    words: list[Word] = []
    seen: set[str] = set()
    while len(words) < n_words:
        if rng.random() < 0.7:
            text = "".join(rng.choices(cjk_pool, k=rng.choices((2, 3, 4), (2, 5, 3))[0]))
        else:
            text = "".join(rng.choices(LETTERS, k=rng.randint(5, 10)))
        if text not in seen:
            seen.add(text)
            words.append(Word(text, rng.choice(("abuse", "ads", "politics", "gambling"))))
    messages = []
    for _ in range(n_messages):
        parts: list[str] = []
        size = 0
        planted = rng.random() < 1 / 6
        while size < MESSAGE_CHARS:
            roll = rng.random()
            if planted and roll < 0.05:
                piece = _disguise(rng, rng.choice(words).text)
            elif roll < 0.35:
                piece = rng.choice(ENGLISH) + " "
            elif roll < 0.42:
                piece = rng.choice(NOISE)
            else:
                piece = "".join(rng.choices(cjk_pool, k=rng.randint(1, 6)))
            parts.append(piece)
            size += len(piece)
        messages.append("".join(parts)[:MESSAGE_CHARS])
    return words, messages


def to_traditional(text: str) -> str:
    """Write every char that has a Traditional form in that form (char by char)."""
    return text.translate(_simplified_to_traditional())


@functools.cache
def _simplified_to_traditional() -> dict[int, str]:
    table: dict[int, str] = {}
    for trad, simp in sorted(t2s_char_map().items()):
        if len(trad.encode("utf-16-le")) == 2:  # BMP forms only, as people actually type
            table.setdefault(ord(simp), trad)
    return table


_LEET_BACK = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}
_CYRILLIC = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у"}


def _disguise(rng: random.Random, word: str) -> str:
    trick = rng.randrange(8)
    if trick == 5 and not word.isascii():  # pinyin
        from rules.text.variants import syllables
        return " ".join(syllables().get(c, c) for c in word)
    if trick == 6 and word.isascii():  # leet
        return "".join(_LEET_BACK.get(c, c) for c in word)
    if trick == 7 and word.isascii():  # one Cyrillic look-alike
        spots = [i for i, c in enumerate(word) if c in _CYRILLIC]
        if spots:
            i = rng.choice(spots)
            return word[:i] + _CYRILLIC[word[i]] + word[i + 1:]
    if trick == 0:  # full-width letters
        return "".join(chr(ord(c) + 0xFEE0) if c.isascii() else c for c in word)
    if trick == 1:  # noise between every char
        return rng.choice("@.* ").join(word)
    if trick == 2 and word.isascii():  # stretched letters
        return "".join(c * rng.randint(1, 3) for c in word)
    if trick == 3:
        return to_traditional(word)
    return f" {word} "


def throughput(func, messages: list[str], seconds: float, rounds: int = 3) -> float:
    """Return calls per CPU-second of func over the messages, best of `rounds` rounds."""
    best = 0.0
    for _ in range(rounds):
        done = 0
        started = _cpu()
        deadline = started + seconds / rounds
        while True:
            for text in messages:
                func(text)
            done += len(messages)
            now = _cpu()
            if now >= deadline:
                break
        best = max(best, done / (now - started))
    return best


def one_pass(func, messages: list[str], passes: int) -> float:
    """Return messages per CPU-second of ``passes`` passes of func over the messages.

    CPU time (not wall time): other processes on the shared machine then only slow a pass
    through the caches and the cores' sharing, which the alternation spreads over all runs.
    """
    started = _cpu()
    for _ in range(passes):
        for text in messages:
            func(text)
    return passes * len(messages) / (_cpu() - started)


_cpu = time.process_time


def breakdown(words: list[Word], messages: list[str], seconds: float) -> list[tuple[str, float]]:
    """Return (step, µs per message) for find+mask with all normalisation on.

    Rebuilds the matcher's parts from public pieces so each step can be timed alone;
    steps on messages with / without a hit are weighted by how many messages have one.
    """
    matcher = WordMatcher.build(words, fold_repeats=True)
    normalizer = get_normalizer(fold_repeats=True)
    keys = list(dict.fromkeys(filter(None, normalizer.normalize_many([w.text for w in words]))))
    encoding = SearchEncoding(normalizer, keys)
    automaton = ahocorasick_rs.BytesAhoCorasick(
        encoding.encode_keys(keys), matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)
    with_hit = [t for t in messages if matcher.find(t)]
    without = [t for t in messages if not matcher.find(t)]
    share = len(with_hit) / len(messages)
    streams = [encoding.encode(t)[0] for t in messages]
    found = [(t, matcher.find(t)) for t in with_hit]
    each = seconds / 6

    def us(func, items) -> float:
        return 1e6 / throughput(func, items, each)

    encode_us = us(encoding.encode, messages)
    search_us = us(automaton.find_matches_as_indexes, streams)
    plain_us, hit_us = us(matcher.find, without), us(matcher.find, with_hit)
    mask_us = us(lambda pair: matcher.mask(*pair), found)
    return [("normalise + encode (numpy), all messages", encode_us),
            ("search the encoded stream, alone (warm cache)", search_us),
            ("find, message without a hit", plain_us),
            ("  of which search + call overhead in context", plain_us - encode_us),
            ("find, message with a hit", hit_us),
            ("  of which offsets, checks, Match (over no hit)", hit_us - plain_us),
            ("mask, message with a hit", mask_us),
            (f"=> find+mask average ({share:.0%} with a hit)",
             (1 - share) * plain_us + share * (hit_us + mask_us))]


def kernel_breakdown(words: list[Word], messages: list[str], seconds: float) -> list[tuple[str, float]]:
    """Return (step, µs per message, averaged over all messages) of every option's find+mask
    on the compiled kernel; [] where this checkout has none or it is not built."""
    matcher = WordMatcher.build(words, fold_repeats=True, **OPTIONS[EVERY])
    kernel = getattr(matcher, "_kernel", None)
    if kernel is None or not hasattr(kernel, "find"):
        return []
    matcher.find(messages[0])  # configures the kernel
    automaton = matcher._automaton
    streams = [kernel.encode(t) for t in messages]
    in_c = [t for t in messages if kernel.find(t) is not None]
    triples = [(t, d, automaton.find_matches_as_indexes(d)) for t, d in zip(messages, streams)
               if d is not None]
    triples = [x for x in triples if x[2]]
    found = [(t, f) for t in messages if (f := matcher.find(t))]
    scale = 1 / len(messages)  # each step's µs over the messages it runs on, per message of all
    each = seconds / 7

    def us(func, items) -> float:
        return 1e6 / throughput(func, items, each) * len(items) * scale if items else 0.0

    def find_and_mask(text: str) -> str:
        hits = matcher.find(text)
        return matcher.mask(text, hits) if hits else text

    return [("encode (C)", us(kernel.encode, messages)),
            (f"search the encoded stream ({type(automaton).__name__})", us(automaton.find_matches_as_indexes,
                                                             [d for d in streams if d is not None])),
            (f"resolve + check hits (C, {len(triples) / len(messages):.0%} of messages)",
             us(lambda x: kernel.matches(*x), triples)),
            (f"Kernel.find, one call ({len(in_c) / len(messages):.0%} of messages; rest: second passes)",
             us(kernel.find, in_c)),
            ("WordMatcher.find", us(matcher.find, messages)),
            (f"mask (C, {len(found) / len(messages):.0%} of messages)", us(lambda p: matcher.mask(*p), found)),
            ("=> find + mask", us(find_and_mask, messages))]


def _runs_for_this_tree() -> dict[str, dict]:
    """OPTIONS as this checkout's WordMatcher.build spells them (--tree: older checkouts).

    Before issue 15's second part, ``homophones`` was a boolean (True: tones ignored) and
    ``pinyin`` brought no homophones, so the same-tone rows do not exist there.
    """
    try:
        from rules.text.variants import homophone_mode  # noqa: F401
    except ImportError:
        runs = {}
        for name, options in OPTIONS.items():
            mode = options.get("homophones")
            if options.get("pinyin") and mode is None:
                continue  # same-tone homophones: not in this checkout
            runs[name] = {k: v for k, v in options.items() if k != "homophones"}
            if mode == "any_tone":
                runs[name]["homophones"] = True
        return runs
    return OPTIONS


def _which_path() -> str:
    """Which path this checkout's word engine runs (compiled kernel or pure Python)."""
    try:
        from rules.text import kernel
    except ImportError:
        return "sensitive words: pure-Python path (this checkout has no compiled kernel)"
    return kernel.describe()


def _span(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--pass-seconds", type=float, default=0.3,
                        help="CPU seconds per run per round (default 0.3)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, finishes in seconds")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each step of find+mask (µs per message)")
    parser.add_argument("--tree", help="import rules/ from this checkout (before/after pairs)")
    args = parser.parse_args(argv)
    n_words, n_messages, n_build, rounds = 20_000, 2_000, 100_000, args.rounds
    if args.smoke:
        n_words, n_messages, n_build, rounds = 2_000, 200, 5_000, 2
        args.pass_seconds = 0.01

    started = _cpu()
    get_normalizer(skip_noise=True, traditional=True, fold_repeats=True)
    table_s = _cpu() - started  # one-off per process: OpenCC data + 128K-entry table

    runs = _runs_for_this_tree()
    build_words, _ = make_data(seed=7, n_words=n_build, n_messages=0)
    started = _cpu()
    WordMatcher.build(build_words, fold_repeats=True)
    build_s = _cpu() - started
    for options in runs.values():  # the overlay tables and reading data, built once
        WordMatcher.build(build_words[:10], fold_repeats=True, **options)
    started = _cpu()
    WordMatcher.build(build_words, fold_repeats=True, pinyin=True)
    build_pinyin_s = _cpu() - started

    words, messages = make_data(seed=42, n_words=n_words, n_messages=n_messages)
    started = _cpu()
    matchers = {name: WordMatcher.build(words, fold_repeats=True, **options)
                for name, options in runs.items()}
    build_small_s = (_cpu() - started) / len(matchers)
    raw = ahocorasick_rs.AhoCorasick([w.text for w in words],
                                     matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST)

    def find_and_mask(m: WordMatcher):
        def run(text: str) -> str:
            found = m.find(text)
            return m.mask(text, found) if found else text
        return run

    # What is timed: raw (the baseline), each matcher's find+mask, and find alone for the
    # two the ratio targets name.  Each round runs them all, in reversed order every other.
    funcs = {"raw": raw.find_matches_as_indexes,
             # Real traffic brings a new str each time: its UTF-8 form, which ahocorasick_rs
             # scans, is not cached on it yet (the row above reuses the cached one).
             RAW_FRESH: lambda text: raw.find_matches_as_indexes(text + " ")}
    funcs |= {name: find_and_mask(m) for name, m in matchers.items()}
    for name in (FIRST_WAVE, EVERY):
        if name in matchers:
            funcs[f"{name}, find only"] = matchers[name].find
    # Passes per run so one run takes about --pass-seconds (the first pass also warms up).
    passes = {name: max(1, round(args.pass_seconds * one_pass(func, messages, 1) / len(messages)))
              for name, func in funcs.items()}
    rates: dict[str, list[float]] = {name: [] for name in funcs}
    order = list(funcs)
    for index in range(rounds):
        for name in order if index % 2 == 0 else reversed(order):
            rates[name].append(one_pass(funcs[name], messages, passes[name]))

    def paired(name: str, how) -> list[float]:
        return [how(rate, base) for rate, base in zip(rates[name], rates["raw"])]

    hit_rate = sum(bool(matchers[FIRST_WAVE].find(t)) for t in messages) / len(messages)
    chars = sum(map(len, messages)) / len(messages)
    print(f"words {n_words:,}  messages {n_messages:,} x {chars:.0f} chars  "
          f"messages with a hit {hit_rate:.0%}{'  (SMOKE: sizes reduced)' if args.smoke else ''}"
          f"{'  tree ' + args.tree if args.tree else ''}")
    print(_which_path())
    print(f"({rounds} alternating rounds; msg/s per CPU-second, median (min-max); ratio and "
          "cost paired per round)")
    print(f"{'run (find+mask unless said)':<44}{'msg/s':>28}{'vs raw':>20}{'µs/msg over first wave':>28}")
    first = rates.get(FIRST_WAVE)
    for name in funcs:
        ratio = _span(paired(name, lambda r, b: r / b), ".2f")
        cost = "" if name in ("raw", RAW_FRESH, FIRST_WAVE) or first is None or "find only" in name else _span(
            [1e6 / r - 1e6 / f for r, f in zip(rates[name], first)], ".2f")
        print(f"{name:<44}{_span(rates[name], ',.0f'):>28}{ratio:>20}{cost:>28}".rstrip())
    for name in (f"{FIRST_WAVE}, find only", f"{EVERY}, find only"):
        if name in rates:
            fresh = [r / b for r, b in zip(rates[name], rates[RAW_FRESH])]
            print(f"{name + ' vs ' + RAW_FRESH:<72}{_span(fresh, '.2f'):>20}")
    for label, seconds_taken in (("table init (once per process)", table_s),
                                 (f"build {n_words:,} words (mean of the runs)", build_small_s),
                                 (f"build {n_build:,} words", build_s),
                                 (f"build {n_build:,} words, pinyin on", build_pinyin_s)):
        print(f"{label:<44}{seconds_taken:>10.3f} s")

    if args.breakdown:
        print("where find+mask time goes (µs per message, best of 3 rounds each):")
        for label, micros in breakdown(words, messages, 3.0):
            print(f"  {label:<50}{micros:>8.2f}")
        steps = kernel_breakdown(words, messages, 3.0)
        if steps:
            print("every option on the compiled kernel (µs per message, averaged over all messages):")
            for label, micros in steps:
                print(f"  {label:<76}{micros:>8.2f}")

    def median(name: str) -> float:
        return statistics.median(rates[name]) if name in rates else 0.0

    def ratio(name: str) -> float:
        return statistics.median(paired(name, lambda r, b: r / b)) if name in rates else 0.0

    # Which issue asks what: issue 15 the every-option rate; issue 16 the ratio with the production
    # config's normalisations (the first wave: its 0.49x was measured on that config); the ratio
    # with every option on is no issue's target, kept as the next thing to reach.
    checks = [(f"(15) {EVERY} >= {TARGET_MSGS_PER_S:,} msg/s (find+mask)", median(EVERY) >= TARGET_MSGS_PER_S),
              (f"(16) {FIRST_WAVE}, find only >= {TARGET_RATIO} x raw",
               ratio(f"{FIRST_WAVE}, find only") >= TARGET_RATIO),
              (f"(stretch) {EVERY}, find only >= {TARGET_RATIO} x raw", ratio(f"{EVERY}, find only") >= TARGET_RATIO),
              (f"build {n_build:,} words < {TARGET_BUILD_100K_S:g} s (incl. table init)",
               build_s + table_s < TARGET_BUILD_100K_S),
              (f"build {n_build:,} words, pinyin on < {TARGET_BUILD_100K_PINYIN_S:g} s",
               build_pinyin_s < TARGET_BUILD_100K_PINYIN_S)]
    for label, ok in checks:
        print(f"target {label:<56} {'PASS' if ok else 'MISS'}")
    return 1 if args.strict and not all(ok for label, ok in checks if not label.startswith("(stretch)")) else 0


if __name__ == "__main__":
    sys.exit(main())
