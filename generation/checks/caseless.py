"""Case-insensitive matching without its cost, and with its results.

Python's re tries an IGNORECASE pattern at every position of the text, letter by letter; the
checks run dozens of such patterns on every version written (an import writes thousands).
Two exact shortcuts, both in one place:

- `may_contain`: a pattern whose every match holds one of a few words cannot match a text
  that holds none of them, and a substring test reads the text in C;
- `caseless`: the text lower-cased, in which a lower-case pattern without IGNORECASE matches
  where the IGNORECASE pattern matches in the text, at the same offsets.

Both rest on one fact of re and str.lower(): besides the ASCII letters, only these four
characters match an ASCII letter case-insensitively or lower-case to one (checked over every
code point in tests/generation/test_checks_equivalence.py). A text that holds one of them
takes the slow, plain road.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

FOLD_TO_ASCII = "\u0130\u0131\u017f\u212a"  # İ (dotted I), ı (dotless i), ſ (long s), K (Kelvin sign)


def _folds_to_ascii(text: str) -> bool:
    return not text.isascii() and any(char in text for char in FOLD_TO_ASCII)


@lru_cache(maxsize=32)
def _lower_case(text: str) -> str | None:
    """The text lower-cased, or None when a character of it folds into an ASCII letter."""
    return None if _folds_to_ascii(text) else text.lower()


def caseless(text: str) -> str | None:
    """The text in lower case when lowering keeps every offset and no character folds into an
    ASCII letter; else None (match the IGNORECASE pattern against the text itself)."""
    lowered = _lower_case(text)
    return lowered if lowered is not None and len(lowered) == len(text) else None


def may_contain(text: str, *needles: str) -> bool:
    """False only when none of the needles (lower case ASCII) is in the text in any case: a
    pattern whose every match holds one of them would find nothing."""
    lowered = _lower_case(text)
    return lowered is None or any(needle in lowered for needle in needles)


class CaselessPattern:
    """A case-insensitive pattern whose letters are written in lower case, run without IGNORECASE
    in the caseless text when there is one: the same matches at the same offsets, but a match's
    groups read the lower-cased text (use its spans, or groups that have no case)."""

    def __init__(self, source: str, flags: int = 0) -> None:
        self.pattern = re.compile(source, flags | re.IGNORECASE)
        self._lower_case = re.compile(source, flags)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        lowered = caseless(text)
        return self.pattern.finditer(text) if lowered is None else self._lower_case.finditer(lowered)

    def search(self, text: str) -> re.Match[str] | None:
        lowered = caseless(text)
        return self.pattern.search(text) if lowered is None else self._lower_case.search(lowered)
