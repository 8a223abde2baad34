"""Fact coverage in both directions: every clinical fact of the note is said in the dialogue
(in any usual form, keeping its polarity), and what the dialogue says of medicines, doses,
tests and referrals is in the note.

Spoken forms: text2num turns spelled-out numbers into digits ("one hundred forty-eight over
ninety" -> "148 over 90"); the lexicon gives abbreviations and lay synonyms; rapidfuzz
forgives small typos in names ("lisinoprill"). A symptom's polarity in a conversation comes
from negation in its own sentence or, for a question, from the answer that follows
("Any chest pain?" "No.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress

from rapidfuzz import fuzz, process
from text_to_num import alpha2digit

from generation.checks.facts import (
    DOSE,
    FORMS,
    MEDICATION,
    POLAR_CATEGORIES,
    Fact,
    is_negated,
    normalise_number,
    note_facts,
    quantity_matches,
    term_mentions,
    token_table,
    token_words,
)
from generation.checks.framework import Finding
from generation.checks.lexicon import DOSE_UNITS, UNITS
from generation.models import speaker_tag_at

_FUZZY_MIN_LENGTH = 5
_FUZZY_CUTOFF = 86
# Answers that settle a question's polarity.
_NO_ANSWERS = ("no", "nope", "nah", "not really", "never", "i don't", "i do not", "not that i")
_YES_ANSWERS = ("yes", "yeah", "yep", "yup", "i do", "i have", "uh-huh", "mm-hmm", "a little", "sometimes", "kind of")
_SPOKEN_NUMBER_WORDS = {"couple": "2", "once": "1", "twice": "2", "half": "0.5", "dozen": "12"}
_DOSE_UNIT_WORDS = frozenset(word for word, unit in UNITS.items() if unit in DOSE_UNITS)
# Small numbers are said in too many ways ("a week", "next month") to require them.
_ALWAYS_SPOKEN = frozenset({"0", "1"})
# The categories of the dialogue's facts that the note must hold ("note omits").
OMISSION_CATEGORIES = frozenset({MEDICATION, "lab", "imaging", "referral"})
# Said in passing in most visits, written as the specific tests in the note.
_GENERIC_TERMS = frozenset({"blood work"})


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    start: int  # offset of the turn's text in the dialogue


def dialogue_turns(text: str) -> list[Turn]:
    """The turns of a dialogue text with the offset of each turn's words (tags left out).
    Lines without a tag continue the turn before; text before the first tag is an untagged turn."""
    return list(_turns_of(text))


@lru_cache(maxsize=16)
def _turns_of(text: str) -> tuple[Turn, ...]:
    """Read once per text: four checks and the coverage index read a dialogue's turns."""
    opened: list[tuple[str, int]] = []  # speaker, offset of the turn's text
    offset = 0
    for line in text.splitlines(keepends=True):
        tag = speaker_tag_at(line)
        if tag is not None:
            opened.append((tag[0].lower(), offset + tag[1]))
        elif not opened and line.strip():
            opened.append(("", offset))
        offset += len(line)
    turns = []
    for index, (speaker, start) in enumerate(opened):
        end = opened[index + 1][1] if index + 1 < len(opened) else len(text)
        if index + 1 < len(opened):  # up to the next tag's line, not into it
            end = text.rfind("\n", start, end) + 1 or end
        turns.append(Turn(speaker, text[start:end].rstrip(), start))
    return tuple(turns)


def _words_said(lowered: str, lowered_words: list[str] | None = None) -> tuple[str, list[str]]:
    """A lower-case text with its spelled-out numbers as digits, and its words: those of the
    digits form, then the ones said differently ("type two diabetes" is both).
    `lowered_words`: token_words(lowered), when the caller has them already."""
    said_differently = token_words(lowered) if lowered_words is None else lowered_words
    digits = _spoken_digits(lowered, said_differently)
    if digits == lowered:
        return digits, said_differently
    return digits, token_words(digits) + said_differently


class Wording:
    """Which words a text uses, indexed once: enough to tell whether it names a term."""

    def __init__(self, said: Iterable[str]) -> None:
        self.spoken = " " + " ".join(said) + " "
        self.said_words = set(self.spoken.split())  # what stands between two spaces of `spoken`
        self.words: dict[int, set[str]] = {}
        for word in self.said_words:
            self.words.setdefault(len(word), set()).add(word)
        self._words_by_near_length: dict[int, list[str]] = {}

    def says_term(self, category: str, name: str) -> bool:
        forms = FORMS.get((category, name), (name,))
        if any(form in self.said_words if " " not in form else f" {form} " in self.spoken for form in forms):
            return True
        return any(self._says_nearly(form) for form in forms if len(form) >= _FUZZY_MIN_LENGTH and " " not in form)

    def _says_nearly(self, form: str) -> bool:
        candidates = self._words_near_length(len(form))
        return process.extractOne(form, candidates, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF) is not None

    def _words_near_length(self, length: int) -> list[str]:
        """The words at most two letters longer or shorter (gathered once per length)."""
        if length not in self._words_by_near_length:
            near = [word for size in range(length - 2, length + 3) for word in self.words.get(size, ())]
            self._words_by_near_length[length] = near
        return self._words_by_near_length[length]


def text_wording(text: str) -> Wording:
    table = token_table(text)
    return Wording([" ".join(_words_said(text.lower(), table.words if table.of_lowered_text else None)[1])])


class Speech(Wording):
    """What a dialogue says, indexed once: its words (spelled-out numbers as digits), the
    numbers said, the numbers said beside a dose, and the polarity of every mention of a
    symptom or diagnosis."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self.numbers: set[str] = set()
        self.dose_numbers: set[str] = set()
        self.polarity: dict[str, set[bool | None]] = {}
        self.mentions: list[tuple[Turn, Fact]] = []
        super().__init__([self._index_turn(index, turn) for index, turn in enumerate(turns)])

    def _index_turn(self, index: int, turn: Turn) -> str:
        table = token_table(turn.text)  # read once: for its words and for its terms
        digits, words = _words_said(turn.text.lower(), table.words if table.of_lowered_text else None)
        said = set(words)
        numbers = _numbers_in(digits) | {value for word, value in _SPOKEN_NUMBER_WORDS.items() if word in said}
        self.numbers |= numbers
        has_dose = False
        for mention in term_mentions(turn.text, table):
            self.mentions.append((turn, mention))
            has_dose = has_dose or mention.category == MEDICATION
            if mention.category in POLAR_CATEGORIES:
                self.polarity.setdefault(mention.name, set()).add(self._mention_polarity(index, turn, mention))
        if has_dose or not _DOSE_UNIT_WORDS.isdisjoint(said):
            self.dose_numbers |= numbers
        return " ".join(words)

    def _mention_polarity(self, index: int, turn: Turn, mention: Fact) -> bool | None:
        """True when the mention is negated, False when affirmed, None when a question
        nobody answered plainly."""
        if turn.text.find("?", mention.end) >= 0 and index + 1 < len(self.turns):
            answer = self.turns[index + 1].text.strip().lower()
            if answer.startswith(_NO_ANSWERS):
                return True
            if answer.startswith(_YES_ANSWERS):
                return False
            return None
        return mention.negated  # term_mentions read its sentence for a negation

    def says_with_polarity(self, name: str, negated: bool) -> bool:
        said = self.polarity.get(name, set())
        return not said or negated in said or None in said

    def says_numbers(self, numbers: Iterable[str], *, dose: bool) -> bool:
        pool = self.dose_numbers if dose else self.numbers
        return all(number in pool or number in _ALWAYS_SPOKEN for number in numbers)


@lru_cache(maxsize=16)
def dialogue_speech(dialogue_text: str) -> Speech:
    """A dialogue's Speech, indexed once per text: a note edit checks the note again beside the
    same dialogue. Read only, never changed."""
    return Speech(dialogue_turns(dialogue_text))


_SMALL_NUMBERS = {
    word: str(value)
    for value, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    )
}
# The lookahead lets re pass over the letters no number word starts with at once.
_SMALL_NUMBER = re.compile(
    rf"\b(?=[{''.join(sorted({word[0] for word in _SMALL_NUMBERS}))}])(?:{'|'.join(_SMALL_NUMBERS)})\b"
)
_HALF_A = re.compile(r"\b(?:a half|half an?)\b")
_AND_A_HALF = re.compile(r"(\d{1,6}+) and (?:a )?half")


# The words text2num reads as numbers (its English vocabulary: cardinals, ordinals, "o",
# "nought"), which it also reads with trailing s's. A text none of whose runs of letters is one
# of them holds no number for it (nor for _SMALL_NUMBER, whose words are among them).
_TEXT2NUM_WORDS = frozenset({
    "zero", "o", "nought", "one", "first", "oneth", "two", "second", "three", "third", "four", "fourth", "five",
    "fifth", "six", "sixth", "seven", "seventh", "eight", "eighth", "nine", "ninth", "ten", "tenth", "eleven",
    "eleventh", "twelve", "twelfth", "thirteen", "thirteenth", "fourteen", "fourteenth", "fifteen", "fifteenth",
    "sixteen", "sixteenth", "seventeen", "seventeenth", "eighteen", "eighteenth", "nineteen", "nineteenth", "twenty",
    "twentieth", "thirty", "thirtieth", "fourty", "forty", "fortieth", "fourtieth", "fifty", "fiftieth", "sixty",
    "sixteeth", "seventy", "seventieth", "eighty", "eightieth", "ninety", "ninetieth", "hundred", "hundredth",
    "thousand", "thousandth", "million", "millionth", "billion", "billionth",
})  # fmt: skip
_LETTER_RUN = re.compile("[a-z]+")


def _may_name_a_number(words: list[str]) -> bool:
    """Whether a run of letters in the words (a text's lower-case tokens) is, trailing s's
    aside, a number word for text2num. Every letter of a text is in one of its tokens; most
    tokens are one run of letters, so a set settles them in C."""
    distinct = set(words)
    if not distinct.isdisjoint(_TEXT2NUM_WORDS):
        return True
    runs = [run for word in distinct if word.endswith("s") or not word.isalpha() for run in _LETTER_RUN.findall(word)]
    return any(run.rstrip("s") in _TEXT2NUM_WORDS for run in runs)


def _spoken_digits(text: str, words: list[str]) -> str:
    """Spelled-out numbers as digits; "one forty-eight" (148) the way a blood pressure is said.
    `words`: the text's token_words, to pass over a text that names no number at once."""
    converted = _numbers_as_digits(text) if _may_name_a_number(words) else text
    if "half" not in converted:  # what both halves below say
        return converted
    converted = _HALF_A.sub("0.5", converted)
    return _AND_A_HALF.sub(lambda match: f"{match.group(1)}.5", converted)


def _numbers_as_digits(text: str) -> str:
    converted: str = alpha2digit(text, "en")
    # text2num leaves a lone small number as a word ("in two weeks").
    return _SMALL_NUMBER.sub(lambda match: _SMALL_NUMBERS[match.group(0)], converted)


def _numbers_in(text: str) -> set[str]:
    numbers: set[str] = set()
    for match in quantity_matches(text):
        numbers.update(normalise_number(number) for number in match.group("first", "second") if number)
    words = text.split()
    digit_words = list(map(str.isdigit, words))
    for index in compress(range(len(words) - 1), digit_words):  # "1 48" said for 148
        left, right = words[index], words[index + 1]
        if digit_words[index + 1] and len(right) == 2 and len(left) == 1:
            numbers.add(left + right)
    return numbers


SPOKEN, UNSAID, CONTRADICTED = "spoken", "unsaid", "contradicted"


def fact_status(fact: Fact, speech: Speech) -> str:
    if fact.numbers:
        return SPOKEN if speech.says_numbers(fact.numbers, dose=fact.category == DOSE) else UNSAID
    if not speech.says_term(fact.category, fact.name):
        return UNSAID
    if fact.category in POLAR_CATEGORIES and not speech.says_with_polarity(fact.name, fact.negated):
        return CONTRADICTED
    return SPOKEN


@dataclass(frozen=True)
class Coverage:
    facts: list[Fact]
    unspoken: list[Fact]
    contradicted: list[Fact]  # said with the opposite polarity
    omitted: list[Fact]  # dialogue facts the note lacks (spans into the dialogue)

    @property
    def score(self) -> float | None:
        if not self.facts:
            return None
        return round(1 - (len(self.unspoken) + len(self.contradicted)) / len(self.facts), 3)


def _omitted_from_note(note_text: str, speech: Speech) -> list[Fact]:
    candidates = [
        (turn, mention)
        for turn, mention in speech.mentions
        if mention.category in OMISSION_CATEGORIES
        and mention.name not in _GENERIC_TERMS
        and not is_negated(turn.text, mention.start)
    ]
    if not candidates:
        return []
    note = text_wording(note_text)
    omitted: dict[str, Fact] = {}
    for turn, mention in candidates:
        if mention.name not in omitted and not note.says_term(mention.category, mention.name):
            omitted[mention.name] = Fact(
                mention.category, mention.name, turn.start + mention.start, turn.start + mention.end
            )
    return list(omitted.values())


def coverage(*, note_text: str, dialogue_text: str) -> Coverage:
    speech = dialogue_speech(dialogue_text)
    facts = note_facts(note_text)
    status = {fact: fact_status(fact, speech) for fact in facts}
    return Coverage(
        facts=facts,
        unspoken=[fact for fact in facts if status[fact] == UNSAID],
        contradicted=[fact for fact in facts if status[fact] == CONTRADICTED],
        omitted=_omitted_from_note(note_text, speech),
    )


def fact_findings(facts: list[Fact], message: str) -> list[Finding]:
    """One finding per note fact, its span in the note."""
    return [Finding(f"{message}: {fact.label}", ((fact.start, fact.end),), fact.label, "note") for fact in facts]


def omitted_findings(result: Coverage) -> list[Finding]:
    return [
        Finding(f"The note omits: {fact.name} ({fact.category})", ((fact.start, fact.end),), fact.name)
        for fact in result.omitted
    ]
