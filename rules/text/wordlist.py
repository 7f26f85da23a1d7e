"""Word list files: ``Word`` and :func:`load_word_file` (re-exported by ``rules.text.words``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Word", "load_word_file"]


@dataclass(frozen=True)
class Word:
    """A sensitive word and the category it is reported under."""

    text: str
    category: str = ""


def load_word_file(path: str | os.PathLike[str]) -> list[Word]:
    """Read ``word``, ``word<TAB>category`` or ``word,category`` lines; '#' starts a comment."""
    words: list[Word] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({exc.reason})") from None
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            separator = "\t" if "\t" in line else ","
            fields = [field.strip() for field in line.split(separator)]
            if len(fields) > 2:
                raise ValueError(f"{path}:{number}: expected 'word' or 'word{separator!r}category',"
                                 f" got {len(fields)} fields: {line!r}")
            if not fields[0]:
                raise ValueError(f"{path}:{number}: empty word: {line!r}")
            if len(fields) == 2 and not fields[1]:
                raise ValueError(f"{path}:{number}: empty category after separator: {line!r}")
            words.append(Word(fields[0], fields[1] if len(fields) == 2 else ""))
    return words
