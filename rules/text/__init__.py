"""Pure-Python text matching: sensitive words and contact details (no I/O, no Flask)."""

from .contacts import ContactFinder, ContactMatch
from .words import Match, Word, WordMatcher, load_word_file

__all__ = ["ContactFinder", "ContactMatch", "Match", "Word", "WordMatcher", "load_word_file"]
