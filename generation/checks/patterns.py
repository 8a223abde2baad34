"""Placeholders and PHI-like strings in any text, with their spans.

The checks run on text anyone can type, inside the version write, so every pattern runs in
linear time: a repetition that could re-read a long run is bounded (`{0,20}`) or possessive
(`*+`, `++`: never backtracked into), no two neighbouring repetitions can match the same
characters, and no long run is re-read from many match starts.
tests/generation/test_checks_linear_time.py holds the inputs that made earlier patterns
backtrack for seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from generation.checks.caseless import may_contain
from generation.checks.framework import Finding, merge_spans

# Whether a text can hold a match of a pattern: a test in C on the whole text, done before the
# pattern's scan, which tries every position. Each says what every match of its pattern holds.
Hint = Callable[[str], bool]


def holds(*needles: str) -> Hint:
    return lambda text: any(needle in text for needle in needles)


def holds_any_case(*needles: str) -> Hint:
    return lambda text: may_contain(text, *needles)


def finds(*patterns: re.Pattern[str]) -> Hint:
    """For patterns that start with a literal, which re finds as fast as a substring."""
    return lambda text: any(pattern.search(text) for pattern in patterns)


# Whitespace between a label and its value ("DOB:   ..."): a bounded, possessive gap.
_GAP = r"\s{0,20}+"

# --- placeholders --------------------------------------------------------------------
_PLACEHOLDER_WORDS = r"name|date|age|address|phone|number|clinic|hospital|location|city|dob|mrn|doctor|patient"
_PLACEHOLDER_PATTERNS: tuple[tuple[re.Pattern[str], Hint], ...] = (
    # No "[" inside: in "[[[[…" every bracket would start a 30-character search of its own.
    (
        re.compile(rf"\[[^\[\]\n]{{0,30}}\b(?:{_PLACEHOLDER_WORDS})\b[^\[\]\n]{{0,30}}\]", re.IGNORECASE),
        holds("["),
    ),
    (
        re.compile(rf"<{_GAP}(?:[\w' ]{{0,20}}\b)?(?:{_PLACEHOLDER_WORDS})\b[\w' ]{{0,20}}>", re.IGNORECASE),
        holds("<"),
    ),
    (re.compile(rf"\{{\{{?{_GAP}\w++{_GAP}\}}?\}}"), holds("{")),
    (re.compile(r"(?<![\w-])X{2,}+(?:[-/]X++)*(?![\w-])"), holds("XX")),
    (re.compile(r"_{3,}"), holds("___")),
)
# A dialogue line's own speaker tag ("[doctor]:") is not a placeholder. Its indentation is
# read within its line: `^\s*` re-read all the following blank lines from each of them.
_SPEAKER_TAG_AT_START = re.compile(rf"^[^\S\n]{{0,20}}+\[[^\]\n]{{1,30}}\]{_GAP}:?", re.MULTILINE)

# --- PHI-like strings ----------------------------------------------------------------
_STREET_KINDS = "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
_BIRTH_LABELS = ("dob", "d.o.b.", "date of birth", "born on", "born")
_PHI_PATTERNS: tuple[tuple[str, re.Pattern[str], Hint], ...] = (
    # RFC 5321 lengths (local part 64, label 63): a start inside "a.a.a…" reads at most that far.
    ("email", re.compile(r"\b[\w.+-]{1,64}+@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b"), holds("@")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), finds(re.compile(r"-\d{2}-"))),
    (
        "phone",
        re.compile(r"(?:\(\d{3}\)\s?|\b\d{3}[-.\s])\d{3}[-.]\d{4}\b"),
        finds(re.compile(r"-\d{4}"), re.compile(r"\.\d{4}")),
    ),
    (
        "mrn",
        re.compile(
            rf"\b(?:MRN|medical record (?:number|no\.?)|record #){_GAP}(?:[:#]{_GAP})?[A-Z]?\d{{5,}}+\b", re.IGNORECASE
        ),
        holds_any_case("mrn", "record"),
    ),
    (
        "street_address",
        re.compile(rf"\b\d{{1,5}}\s{{1,20}}+(?:[A-Z][a-z]++\s{{1,20}}+){{1,3}}(?:{_STREET_KINDS})\b\.?"),
        holds(*_STREET_KINDS.split("|")),
    ),
    (
        "date_of_birth",
        re.compile(
            rf"\b(?:{'|'.join(re.escape(label) for label in _BIRTH_LABELS)}){_GAP}(?:[:\-]{_GAP})?"
            r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|[A-Z][a-z]++\.? \d{1,2},? \d{4}"
            r"|\d{1,2} [A-Z][a-z]++ \d{4}|\d{4}-\d{2}-\d{2})",
            re.IGNORECASE,
        ),
        holds_any_case(*_BIRTH_LABELS),
    ),
)


def placeholder_findings(text: str, *, dialogue: bool = False) -> list[Finding]:
    """A dialogue line's own speaker tag ("[doctor]:") is not a placeholder."""
    found = [
        (match.start(), match.end())
        for pattern, could_match in _PLACEHOLDER_PATTERNS
        if could_match(text)
        for match in pattern.finditer(text)
    ]
    tags = (
        [(match.start(), match.end()) for match in _SPEAKER_TAG_AT_START.finditer(text)] if dialogue and found else []
    )
    spans = [
        (start, end) for start, end in found if not any(tag_start <= start < tag_end for tag_start, tag_end in tags)
    ]
    if not spans:
        return []
    merged = merge_spans(spans)
    found_texts = list(dict.fromkeys(text[start:end] for start, end in merged))
    return [Finding(f"Placeholder text left in: {', '.join(found_texts[:5])}", merged, found_texts)]


def phi_like_findings(text: str) -> list[Finding]:
    findings = []
    for kind, pattern, could_match in _PHI_PATTERNS:
        matches = list(pattern.finditer(text)) if could_match(text) else []
        if matches:
            found = list(dict.fromkeys(match.group(0) for match in matches))
            spans = merge_spans([(match.start(), match.end()) for match in matches])
            label = kind.replace("_", " ")
            findings.append(Finding(f"Looks like PHI ({label}): {', '.join(found[:3])}", spans, {kind: found}))
    return findings
