"""`sensitive_words`: find words through the usual evasions; mask, refuse, drop or tag."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from marshmallow import ValidationError, fields, validate

from receiver.errors import ConfigError
from rules.text import kernel
from rules.text.words import Word, WordMatcher, load_word_file

from .textscan import ACTIONS, Span, TextScanConfig, TextScanRule

log = logging.getLogger("imhook.rules")

HOMOPHONE_MODES = ("same_tone", "any_tone", "off")


class PinyinOption(fields.Field):
    """`pinyin: true` (spellings and same-tone homophones) or `pinyin: {homophones: MODE}`.

    Returns None (off) or the homophone mode to build with: same_tone, any_tone or off.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return "same_tone" if value else None
        if not isinstance(value, dict):
            raise ValidationError("expected true, false or {homophones: same_tone | any_tone | off}")
        unknown = [k for k in value if k != "homophones"]
        if unknown:
            raise ValidationError(f"unknown key {str(unknown[0])[:40]!r}; the only one is homophones")
        mode = value.get("homophones", "same_tone")
        mode = {True: "same_tone", False: "off"}.get(mode, mode) if isinstance(mode, bool) else mode
        if mode not in HOMOPHONE_MODES:
            raise ValidationError(f"homophones: {str(mode)[:40]!r}: expected {', '.join(HOMOPHONE_MODES)}")
        return mode


class SensitiveWordsConfig(TextScanConfig):
    words = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    words_file = fields.String(load_default=None, allow_none=True)
    words_files = fields.List(fields.String(), load_default=list)
    allow = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    allow_files = fields.List(fields.String(), load_default=list)
    categories = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(ACTIONS)),
                             load_default=dict)
    whole_word_latin = fields.Boolean(load_default=True)
    fold_repeats = fields.Boolean(load_default=False)
    skip_noise = fields.Boolean(load_default=True)
    traditional = fields.Boolean(load_default=True)
    pinyin = PinyinOption(load_default=None, allow_none=True)
    # The first version's separate switch, kept so old configs mean what they meant:
    # homophones with tones ignored (the same as `pinyin: {homophones: any_tone}`, without
    # the pinyin spellings unless `pinyin` is on too).
    homophones = fields.Boolean(load_default=False)
    leet = fields.Boolean(load_default=False)
    leet_table = fields.Dict(keys=fields.String(validate=validate.Length(equal=1)),
                             values=fields.String(validate=validate.Regexp("^[A-Za-z]$")),
                             load_default=None, allow_none=True)
    confusables = fields.Boolean(load_default=False)


# Stronger actions win when words of several categories match one message.
SEVERITY = {"tag": 0, "mask": 1, "drop": 2, "refuse": 3}


class SensitiveWords(TextScanRule):
    """Words inline or from files (`word` or `word<TAB>category` per line), matched by one automaton."""

    Config = SensitiveWordsConfig

    def __init__(self, config: dict[str, Any], *, name: str, context):
        super().__init__(config, name=name, context=context)
        words = [self._word(w) for w in config["words"]]
        files = ([config["words_file"]] if config["words_file"] else []) + config["words_files"]
        for i, path in enumerate(files):
            words += self._read(path, "words_file" if i == 0 and config["words_file"] else "words_files")
        allow = list(config["allow"])
        for path in config["allow_files"]:
            allow += [w.text for w in self._read(path, "allow_files")]
        if not words:
            raise ConfigError("no words: give `words`, `words_file` or `words_files`", path="words")
        self.matcher = WordMatcher.build(
            words, allow=allow, whole_word_latin=config["whole_word_latin"],
            fold_repeats=config["fold_repeats"], skip_noise=config["skip_noise"],
            traditional=config["traditional"], pinyin=config["pinyin"] is not None,
            homophones="any_tone" if config["homophones"] else config["pinyin"] or "off",
            leet=(config["leet_table"] or True) if config["leet"] else False,
            confusables=config["confusables"])
        self.file_count = len(files)
        _warn_without_kernel()

    @staticmethod
    def _word(entry: str) -> Word:
        # Inline entries may carry a category as "word:category" (files use a tab or comma).
        text, _, category = entry.partition(":") if ":" in entry[1:] else (entry, "", "")
        return Word(text, category)

    def _read(self, path: str, key: str) -> list[Word]:
        resolved = self.context.resolve(path)
        try:
            return load_word_file(resolved)
        except OSError as exc:
            raise ConfigError(f"cannot read word list {resolved}: {exc.strerror}", path=key) from None
        except ValueError as exc:
            raise ConfigError(str(exc), path=key) from None

    def find(self, text: str) -> list[Span]:
        hits = self.matcher.find(text)
        return [Span(hit.start, hit.end, hit.word, hit.category) for hit in hits] if hits else hits

    def describe_hits(self, hits) -> str:
        # Say which transformation found each disguised word ("pinyin: zha pian → 诈骗").
        vias = list(dict.fromkeys(via for f, spans in hits for s in spans
                                  if (via := self.matcher.explain(f.text[s.start:s.end], s.label))))
        found = super().describe_hits(hits)
        more = f" and {len(vias) - 3} more" if len(vias) > 3 else ""
        return f"{found} (via {'; '.join(vias[:3])}{more})" if vias else found

    def action_for(self, spans: Iterable[Span]) -> str:
        overrides = self.config["categories"]
        actions = [overrides.get(s.category, self.config["action"]) for s in spans]
        return max(actions, key=SEVERITY.__getitem__)

    def describe(self) -> str:
        c = self.config
        return (f"{len(self.matcher)} words from {self.file_count} file(s) and inline, action={c['action']}"
                f", allow-list {len(c['allow'])}+{len(c['allow_files'])} file(s), whole_word_latin="
                f"{c['whole_word_latin']}, fold_repeats={c['fold_repeats']}, traditional={c['traditional']}")


@functools.cache  # once per process: at startup, when the first rule is built
def _warn_without_kernel() -> None:
    """Tell the operator when the word engine runs its slower pure-Python path."""
    if kernel.compiled is None:
        log.warning(kernel.describe())
