"""Consistency of one case across its artefacts: the patient's name, age and sex agree between
scenario, note and dialogue, and a sex- or age-specific ICD-10-CM code fits the patient.

Which codes are sex- or age-specific is read from the code's chapter, block and description
(IcdCode): chapter 15 (pregnancy, childbirth) and female genital blocks are for women, the
male genital block and prostate or testis for men, chapter 16 (perinatal) for newborns,
"routine child health examination" for children."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from generation.checks.caseless import CaselessPattern, may_contain
from generation.checks.framework import CodeFacts, Finding, Span

FEMALE, MALE = "female", "male"
_AGE = CaselessPattern(
    r"\b(?P<age>\d{1,3}+)(?:[- ](?:year|yr)s?[- ]old\b|[- ]?(?:yo|y/o)\b|(?: years?)? of age\b)"
    r"|\bage[:\s]{1,3}+(?P<age2>\d{1,3}+)\b|\bi(?:'m| am) (?P<age3>\d{1,3}+)(?: years old)?\b"
)
_SEX_WORDS = {
    FEMALE: ("female", "woman", "girl", "lady", "she", "her", "mrs", "ms", "miss", "mother", "wife"),
    MALE: ("male", "man", "boy", "gentleman", "he", "his", "him", "mr", "father", "husband"),
}
# The lookahead lets re pass over the letters no sex word starts with at once.
_SEX_WORD_STARTS = "".join(sorted({word[0] for words in _SEX_WORDS.values() for word in words}))
_SEX_WORD = CaselessPattern(
    rf"(?=[{_SEX_WORD_STARTS}])\b({'|'.join(word for words in _SEX_WORDS.values() for word in words)})\b"
)
_EXPLICIT_SEX_WORDS = ("female", "male", "woman", "man", "girl", "boy", "gentleman", "lady")
_EXPLICIT_SEX = CaselessPattern(rf"\b({'|'.join(_EXPLICIT_SEX_WORDS)})\b")
# "Martha Collins is a 50-year-old", "Mr. Smith", "hi, martha".
_NAMED_PATIENT = re.compile(r"\b(?P<name>[A-Z][a-z]{1,20}+(?: [A-Z][a-z]{1,20}+)?) is an? \d{1,3}+[- ]year")
_TITLES = ("mr", "mrs", "ms", "miss")
_TITLE_WORD = CaselessPattern(rf"\b({'|'.join(_TITLES)})\b")
_TITLED = re.compile(rf"\b(?:{'|'.join(_TITLES)}) ?\.? {{0,2}}+(?P<name>[A-Za-z][a-z]{{1,20}}+)", re.IGNORECASE)
# A dictated visit names its patient: "next patient is martha collins", "dictating on donald".
# Each opens with a lookahead on the first letters of its words: re passes over the other letters at once.
_DICTATED = re.compile(
    r"(?=[pdst])\b(?:patient is|dictating on|seeing|this is) (?P<name>[a-z]{2,20}+(?: [a-z]{2,20}+)?) ?[,.]"
)
_GREETING = re.compile(
    r"(?=[hg])\b(?:hi|hello|hey|good (?:morning|afternoon|evening))[ ,]{1,3}+(?P<name>[A-Za-z][a-z]{1,20}+)\b"
)
_NOT_NAMES = frozenset(
    [
        "there",
        "doctor",
        "doc",
        "everyone",
        "again",
        "nice",
        "thanks",
        "thank",
        "how",
        "i",
        "it",
        "the",
        "sir",
        "maam",
        "ma'am",
        "dear",
        "friend",
        "yes",
        "so",
        "and",
        "well",
        "okay",
        "ok",
        "good",
        "great",
        "dr",
        "doctor",
        "a",
        "an",
        "the",
        "my",
        "your",
    ]
)


@dataclass(frozen=True)
class Mention:
    value: str
    span: Span


@dataclass(frozen=True)
class Demographics:
    names: list[Mention]
    age: Mention | None
    sex: Mention | None


@lru_cache(maxsize=32)
def demographics(text: str, *, conversation: bool = False) -> Demographics:
    """Read once per text (two checks read the note's); the result is shared: read only."""
    names = [Mention(m.group("name"), m.span("name")) for m in _NAMED_PATIENT.finditer(text)] if " is a" in text else []
    if may_contain(text, *_TITLES):
        names += [Mention(m.group("name"), m.span("name")) for m in _TITLED.finditer(text)]
    if conversation:
        names += [
            Mention(m.group("name"), m.span("name"))
            for pattern in (_GREETING, _DICTATED)
            for m in pattern.finditer(text)
            if m.group("name").split()[0].lower() not in _NOT_NAMES
        ]
    age_match = _AGE.search(text)
    age = None
    if age_match:
        group = next(name for name in ("age", "age2", "age3") if age_match.group(name))
        age = Mention(age_match.group(group), age_match.span(group))
    return Demographics(names=names, age=age, sex=_sex(text, conversation=conversation))


def _sex(text: str, *, conversation: bool) -> Mention | None:
    """An explicit word first ("50-year-old female"); a note's pronouns only when they all agree.
    A conversation's pronouns may be anyone's: only titles count there."""
    explicit = _EXPLICIT_SEX.search(text) if not conversation and may_contain(text, *_EXPLICIT_SEX_WORDS) else None
    if explicit:
        word = explicit.group(1).lower()
        return Mention(FEMALE if word in _SEX_WORDS[FEMALE] else MALE, explicit.span(1))
    if conversation:  # of the sex words, the titles
        found = _TITLE_WORD.finditer(text) if may_contain(text, *_TITLES) else iter(())
    else:
        found = _SEX_WORD.finditer(text)
    words = [(m.group(1).lower(), m.span(1)) for m in found]
    counts = {sex: [span for word, span in words if word in _SEX_WORDS[sex]] for sex in (FEMALE, MALE)}
    if counts[FEMALE] and not counts[MALE]:
        return Mention(FEMALE, counts[FEMALE][0])
    if counts[MALE] and not counts[FEMALE]:
        return Mention(MALE, counts[MALE][0])
    return None


def scenario_text(scenario: Mapping[str, Any]) -> str:
    variables = scenario.get("variables") or {}
    return "\n".join(str(value) for value in variables.values()) if isinstance(variables, Mapping) else ""


def _name_parts(names: list[Mention]) -> set[str]:
    return {part.lower() for mention in names for part in mention.value.split()}


def mismatch_findings(*, checked: str, own: Demographics, others: Mapping[str, Demographics]) -> list[Finding]:
    """Where the checked text disagrees with another artefact of the case."""
    findings = []
    for other_kind, other in others.items():
        if own.age and other.age and abs(int(own.age.value) - int(other.age.value)) > 1:
            message = f"Age {own.age.value} here, {other.age.value} in the {other_kind}"
            findings.append(Finding(message, (own.age.span,), {"field": "age", "other": other_kind}))
        if own.sex and other.sex and own.sex.value != other.sex.value:
            message = f"Patient is {own.sex.value} here, {other.sex.value} in the {other_kind}"
            findings.append(Finding(message, (own.sex.span,), {"field": "sex", "other": other_kind}))
        theirs, mine = _name_parts(other.names), _name_parts(own.names)
        if theirs and mine and not theirs & mine and not any(part in checked.lower() for part in theirs):
            shown = ", ".join(sorted({mention.value for mention in own.names}))
            message = f"Named {shown} here, {', '.join(sorted(theirs))} in the {other_kind}"
            spans = tuple(mention.span for mention in own.names)
            findings.append(Finding(message, spans, {"field": "name", "other": other_kind}))
    return findings


@dataclass(frozen=True)
class CodeRule:
    sex: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    reason: str = ""


_MALE_TERMS = re.compile(r"\b(?:prostat\w*|testi\w*|testes|scrot\w*|penis|penile|male erectile|seminal|epididym\w*)")
_FEMALE_TERMS = re.compile(
    r"\b(?:ovar\w*|uter\w*|endometri\w*|cervix uteri|vagin\w*|vulv\w*|menstrua\w*|menopaus\w*|pregnan\w*|"
    r"female infertility|fallopian|puerper\w*|lactation)"
)


def code_rule(code: CodeFacts) -> CodeRule | None:
    description = f"{code.description} {code.block_title}".lower()
    if code.chapter == "15" or code.code.upper().startswith("O"):
        return CodeRule(sex=FEMALE, min_age=10, max_age=60, reason="pregnancy and childbirth (chapter 15)")
    if code.chapter == "16" or code.code.upper().startswith("P"):
        return CodeRule(max_age=1, reason="a perinatal condition (chapter 16)")
    if "routine child health" in description or "newborn" in description:
        return CodeRule(max_age=17, reason="a child's examination")
    if "adult medical examination" in description:
        return CodeRule(min_age=18, reason="an adult's examination")
    if _MALE_TERMS.search(description) or code.block in {"N40-N53", "C60-C63"}:
        return CodeRule(sex=MALE, reason="male genital organs")
    if _FEMALE_TERMS.search(description) or code.block in {"N70-N77", "N80-N98", "C51-C58", "D25-D28"}:
        return CodeRule(sex=FEMALE, reason="female genital organs")
    return None


def code_findings(code: CodeFacts | None, patient: Demographics) -> list[Finding]:
    rule = code_rule(code) if code else None
    if code is None or rule is None:
        return []
    findings = []
    if rule.sex and patient.sex and patient.sex.value != rule.sex:
        message = f"{code.code} is {rule.reason}, for a {rule.sex} patient; this patient is {patient.sex.value}"
        findings.append(Finding(message, (patient.sex.span,), {"code": code.code, "field": "sex"}))
    if patient.age:
        age = int(patient.age.value)
        too_old = rule.max_age is not None and age > rule.max_age
        too_young = rule.min_age is not None and age < rule.min_age
        if too_old or too_young:
            message = f"{code.code} is {rule.reason}; this patient is {age}"
            findings.append(Finding(message, (patient.age.span,), {"code": code.code, "field": "age"}))
    return findings
