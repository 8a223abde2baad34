"""Clinical facts in a text, with their character spans: quantities with units, vital signs,
medications with their doses, labs, imaging, procedures, diagnoses, symptoms (with polarity),
referrals and follow-up intervals. Headings and template words are never facts: a fact is a
vocabulary entry (generation/checks/lexicon.py), a medicine name, or a number that carries a
unit or sits beside a vital sign, a lab or a follow-up.

Every pattern here follows the linear-time rules of generation/checks/patterns.py.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from itertools import accumulate, compress
from typing import NamedTuple

from generation.checks.lexicon import (
    DOSE_UNITS,
    DRUG_SUFFIXES,
    DRUGS,
    FOLLOW_UP_WORDS,
    INTERVAL_UNITS,
    TERMS,
    UNITS,
    VITAL_NAMES,
)
from generation.models import note_heading

# A word, with inner hyphens or apostrophes ("x-ray", "a-fib", "patient's").
TOKEN = re.compile(r"[A-Za-z0-9]++(?:['-][A-Za-z0-9]++)*+")
# The same tokens, kept by split with the text between them: their offsets add up in C.
_TOKEN_SPLIT = re.compile(f"({TOKEN.pattern})")
_NUMBER = r"\d{1,7}+(?:,\d{3})*+(?:\.\d{1,3}+)?"
_UNIT_WORDS = "|".join(sorted((re.escape(unit) for unit in UNITS), key=len, reverse=True))
# 148/90, 148 over 90, 40 mg, 45%, 98.6 degrees, 2 weeks. Not a date (12/03/2020) nor an age.
QUANTITY = re.compile(
    rf"(?<![\w.,/])(?P<first>{_NUMBER})"
    rf"(?:[^\S\n]{{0,3}}+(?:/|over)[^\S\n]{{0,3}}+(?P<second>{_NUMBER})(?![\d/]))?"
    rf"(?:[^\S\n]{{0,3}}+(?P<unit>{_UNIT_WORDS})(?![A-Za-z]))?",
    re.IGNORECASE,
)
_DIGIT_RUN = re.compile(r"\d+")


def quantity_matches(text: str) -> Iterator[re.Match[str]]:
    """QUANTITY.finditer(text), tried only where a run of digits starts: a match starts with a
    digit after no word character, so nowhere else; re finds the runs in C."""
    end = 0
    for run in _DIGIT_RUN.finditer(text):
        if run.start() >= end and (match := QUANTITY.match(text, run.start())):
            end = match.end()
            yield match


_NEGATIONS = frozenset({"no", "not", "denies", "denied", "deny", "denying", "without", "never", "negative", "nor"})
_NEGATION_PHRASES = ("free of", "absence of", "ruled out", "rule out", "no evidence of", "don't have", "do not have")
_NEGATION_PHRASE = re.compile("|".join(re.escape(phrase) for phrase in _NEGATION_PHRASES))
# ConText terminators: a negation's scope ends at them ("no fever but a cough").
_TERMINATORS = frozenset({"but", "however", "although", "though", "except", "aside", "which", "still"})
_TRIGGERS = _NEGATIONS | _TERMINATORS
MEDICATION = "medication"
QUANTITY_KIND = "quantity"
VITAL = "vital"
FOLLOW_UP = "follow-up"
DOSE = "dose"
# Categories whose polarity is kept: "denies chest pain" is not the fact "chest pain".
POLAR_CATEGORIES = frozenset({"symptom", "diagnosis"})


def _phrase_index() -> dict[str, tuple[str, str]]:
    index: dict[str, tuple[str, str]] = {}
    for category, entries in TERMS.items():
        for canonical, forms in entries.items():
            for form in (canonical, *forms):
                index.setdefault(form, (category, canonical))
    for canonical, forms in DRUGS.items():
        for form in (canonical, *forms):
            index[form] = (MEDICATION, canonical)
    return index


PHRASES = _phrase_index()
# Every form of each canonical term: what a dialogue may say for it.
FORMS: dict[tuple[str, str], tuple[str, ...]] = {}
for _form, _key in PHRASES.items():
    FORMS[_key] = (*FORMS.get(_key, ()), _form)
MAX_PHRASE_WORDS = max(len(form.split()) for form in PHRASES)
# A text is read once, and only where a word can start a form. First word -> (the words of
# each longer form, its entry), longest first; a one-word form -> its entry (most are one word:
# a dictionary lookup settles them).
_LONGER_FORMS: dict[str, list[tuple[list[str], tuple[str, str]]]] = {}
_ONE_WORD_FORMS: dict[str, tuple[str, str]] = {}
for _form, _entry in sorted(PHRASES.items(), key=lambda item: -len(item[0].split())):
    _words = _form.split()
    if len(_words) > 1:
        _LONGER_FORMS.setdefault(_words[0], []).append((_words, _entry))
    else:
        _ONE_WORD_FORMS.setdefault(_words[0], _entry)
_FIRST_WORDS = frozenset(_LONGER_FORMS) | frozenset(_ONE_WORD_FORMS)


@dataclass(frozen=True)
class Fact:
    category: str
    name: str  # canonical term, or the quantity as written
    start: int
    end: int
    numbers: tuple[str, ...] = ()
    negated: bool = False

    @property
    def label(self) -> str:
        return f"{'no ' if self.negated else ''}{self.name} ({self.category})"


def normalise_number(raw: str) -> str:
    value = raw.replace(",", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value.lstrip("0") or "0"


class TokenTable(NamedTuple):
    """The lower-case words of a text, where each starts and ends, and whether they are the
    words of the text lower-cased as a whole (`token_words(text.lower())`)."""

    words: list[str]
    starts: list[int]
    ends: list[int]
    of_lowered_text: bool


@lru_cache(maxsize=64)
def token_table(text: str) -> TokenTable:
    """Read once per text (the note's terms and its wording read it): shared, read only."""
    lowered = text.lower()
    of_lowered_text = len(lowered) == len(text)  # offsets hold: lower the text once
    parts = _TOKEN_SPLIT.split(lowered if of_lowered_text else text)  # between, token, ..., after
    offsets = list(accumulate(map(len, parts)))
    words = parts[1::2] if of_lowered_text else [word.lower() for word in parts[1::2]]
    return TokenTable(words, offsets[0::2][: len(words)], offsets[1::2], of_lowered_text)


def tokens(text: str) -> list[tuple[str, int, int]]:
    table = token_table(text)
    return list(zip(table.words, table.starts, table.ends, strict=True))


def token_words(text: str) -> list[str]:
    """The words of `tokens(text)` without their offsets (found in one pass, not one match at a time)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return TOKEN.findall(lowered)
    return [word.lower() for word in TOKEN.findall(text)]


def is_drug_word(word: str) -> bool:
    return len(word) >= 6 and word.endswith(DRUG_SUFFIXES)


# How far around a term its sentence is read: a negation or a unit further away is not its own,
# and a text without full stops is not re-read from every term (linear time).
_SENTENCE_WINDOW = 200


_SENTENCE_MARK = re.compile(r"[.;!?\n]")


@lru_cache(maxsize=64)
def _sentence_marks(text: str) -> list[int]:
    """Where the text's sentences end, found once per text: shared, read only."""
    return [match.start() for match in _SENTENCE_MARK.finditer(text)]


def _sentence_start(text: str, position: int) -> int:
    """After the last sentence mark before `position`, at most _SENTENCE_WINDOW back."""
    window_start = max(0, position - _SENTENCE_WINDOW)
    marks = _sentence_marks(text)
    last = bisect_left(marks, position) - 1
    return marks[last] + 1 if last >= 0 and marks[last] >= window_start else window_start


def is_negated(text: str, start: int) -> bool:
    """ConText-style: a negation trigger earlier in the same sentence, with no terminator
    between it and the term."""
    before = text[_sentence_start(text, start) : start].lower()
    words = TOKEN.findall(before)  # token_words(before): it is lower case already
    if "n't" in before or not _TRIGGERS.isdisjoint(words):
        for word in reversed(words):
            if word in _TERMINATORS:
                return False
            if word in _NEGATIONS or word.endswith("n't"):
                return True
    return _NEGATION_PHRASE.search(before) is not None


def _term_at(words: list[str], index: int) -> tuple[tuple[str, str], int] | None:
    """The vocabulary entry (or medicine name) whose longest form starts at the word, and its size in words."""
    word = words[index]
    for form, entry in _LONGER_FORMS.get(word, ()):
        if words[index : index + len(form)] == form:
            return entry, len(form)
    if word in _ONE_WORD_FORMS:
        return _ONE_WORD_FORMS[word], 1
    if is_drug_word(word):
        return (MEDICATION, word), 1
    return None


def _term_starts(words: list[str]) -> Iterator[int]:
    """The positions of the words that can start a term: the others are passed over at once
    (the sets and the scan run in C; only the words that start no form are tried as medicines)."""
    distinct = set(words)
    starting = distinct & _FIRST_WORDS
    starting.update(filter(is_drug_word, distinct - starting))
    return compress(range(len(words)), map(starting.__contains__, words))


def term_mentions(text: str, table: TokenTable | None = None) -> Iterator[Fact]:
    """Vocabulary terms and medicine names, longest form first, with their polarity. `table`:
    the text's token_table, when the caller has it already."""
    words, starts, ends, _lowered = table or token_table(text)
    free_from = 0  # the words before it belong to the last term found
    for index in _term_starts(words):
        found = _term_at(words, index) if index >= free_from else None
        if found is None:
            continue
        (category, canonical), size = found
        start, end = starts[index], ends[index + size - 1]
        negated = category in POLAR_CATEGORIES and is_negated(text, start)
        yield Fact(category, canonical, start, end, negated=negated)
        free_from = index + size


# A number is a vital sign or a measure when its name is among the few characters before it.
_NEAR_CHARS = 30
_VITAL_NEAR = re.compile(r"\b(?:" + "|".join(re.escape(name) for name in VITAL_NAMES) + r")\b")
_MEASURE_NEAR = re.compile(r"a1c|level|count|score|fraction|saturation|grade")


def _context_kind(text: str, start: int, unit: str) -> str | None:
    """What a number is, from its unit and the words before it in its sentence."""
    canonical_unit = UNITS.get(unit.lower(), "") if unit else ""
    if canonical_unit in DOSE_UNITS:
        return DOSE
    if canonical_unit in INTERVAL_UNITS:
        before = text[_sentence_start(text, start) : start].lower()
        return FOLLOW_UP if any(word in before for word in FOLLOW_UP_WORDS) else QUANTITY_KIND
    if canonical_unit:
        return QUANTITY_KIND
    near = text[max(0, start - _NEAR_CHARS) : start].lower()
    if _VITAL_NEAR.search(near):
        return VITAL
    if _MEASURE_NEAR.search(near):
        return QUANTITY_KIND
    return None


def quantities(text: str) -> Iterator[Fact]:
    for match in quantity_matches(text):
        first, second, unit = match.group("first"), match.group("second"), match.group("unit") or ""
        after = text[match.end() : match.end() + 5]
        if after.startswith(("-year", "-month", "-week", "-day")) or (second is None and after.startswith("/")):
            continue  # an age ("50-year-old") or a date
        if second and len(second) == 4 and not unit:
            continue  # a month and year: 03/2021
        kind = _context_kind(text, match.start(), unit) or (QUANTITY_KIND if second else None)
        if kind is None:
            continue
        numbers = tuple(normalise_number(n) for n in (first, second) if n)
        yield Fact(kind, match.group(0).strip(), match.start(), match.end(), numbers=numbers)


def _is_heading_line(text: str, line_start: int) -> bool:
    line_end = text.find("\n", line_start)
    heading = note_heading(text[line_start : line_end if line_end >= 0 else len(text)])
    return heading is not None and not heading.inline


# "• Medical Treatment: ..." or "Surgical History: ...": a short label before a colon at the
# start of a line names a part of the note, it states no fact.
_LINE_LABEL = re.compile(r"^[^\S\n]{0,20}+(?:[-•*][^\S\n]{0,5}+)?[A-Za-z][A-Za-z /&'-]{0,40}+:", re.MULTILINE)


class _Wording:
    """Where a note states no fact: its heading lines and line labels, each read once (a long
    note has hundreds of mentions; reading every label again for each was quadratic)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.labels = [(match.start(), match.end()) for match in _LINE_LABEL.finditer(text)]
        self.label_starts = [start for start, _end in self.labels]
        self.heading_line = cache(partial(_is_heading_line, text))  # by the line's start

    def states_no_fact(self, position: int) -> bool:
        if self.heading_line(self.text.rfind("\n", 0, position) + 1):
            return True
        # Labels do not overlap: only the last one starting at or before `position` can hold it.
        index = bisect_right(self.label_starts, position) - 1
        return index >= 0 and position < self.labels[index][1]


def note_facts(text: str) -> list[Fact]:
    """The facts of a note, in reading order, one per mention of a distinct fact."""
    found: dict[tuple[str, str, bool], Fact] = {}
    wording = _Wording(text)
    for fact in [*term_mentions(text), *quantities(text)]:
        if wording.states_no_fact(fact.start):
            continue
        key = (fact.category, fact.name.lower() if not fact.numbers else "/".join(fact.numbers), fact.negated)
        found.setdefault(key, fact)
    return sorted(found.values(), key=lambda fact: fact.start)
