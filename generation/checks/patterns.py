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

from generation.checks.framework import Finding, merge_spans

# Whitespace between a label and its value ("DOB:   ..."): a bounded, possessive gap.
_GAP = r"\s{0,20}+"

# --- placeholders --------------------------------------------------------------------
_PLACEHOLDER_WORDS = r"name|date|age|address|phone|number|clinic|hospital|location|city|dob|mrn|doctor|patient"
_PLACEHOLDER_PATTERNS = (
    # No "[" inside: in "[[[[…" every bracket would start a 30-character search of its own.
    re.compile(rf"\[[^\[\]\n]{{0,30}}\b(?:{_PLACEHOLDER_WORDS})\b[^\[\]\n]{{0,30}}\]", re.IGNORECASE),
    re.compile(rf"<{_GAP}(?:[\w' ]{{0,20}}\b)?(?:{_PLACEHOLDER_WORDS})\b[\w' ]{{0,20}}>", re.IGNORECASE),
    re.compile(rf"\{{\{{?{_GAP}\w++{_GAP}\}}?\}}"),
    re.compile(r"(?<![\w-])X{2,}+(?:[-/]X++)*(?![\w-])"),
    re.compile(r"_{3,}"),
)
# A dialogue line's own speaker tag ("[doctor]:") is not a placeholder. Its indentation is
# read within its line: `^\s*` re-read all the following blank lines from each of them.
_SPEAKER_TAG_AT_START = re.compile(rf"^[^\S\n]{{0,20}}+\[[^\]\n]{{1,30}}\]{_GAP}:?", re.MULTILINE)

# --- PHI-like strings ----------------------------------------------------------------
_PHI_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # RFC 5321 lengths (local part 64, label 63): a start inside "a.a.a…" reads at most that far.
    ("email", re.compile(r"\b[\w.+-]{1,64}+@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("phone", re.compile(r"(?:\(\d{3}\)\s?|\b\d{3}[-.\s])\d{3}[-.]\d{4}\b")),
    (
        "mrn",
        re.compile(
            rf"\b(?:MRN|medical record (?:number|no\.?)|record #){_GAP}(?:[:#]{_GAP})?[A-Z]?\d{{5,}}+\b", re.IGNORECASE
        ),
    ),
    (
        "street_address",
        re.compile(
            r"\b\d{1,5}\s{1,20}+(?:[A-Z][a-z]++\s{1,20}+){1,3}"
            r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl)\b\.?"
        ),
    ),
    (
        "date_of_birth",
        re.compile(
            rf"\b(?:DOB|D\.O\.B\.|date of birth|born on|born){_GAP}(?:[:\-]{_GAP})?"
            r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|[A-Z][a-z]++\.? \d{1,2},? \d{4}"
            r"|\d{1,2} [A-Z][a-z]++ \d{4}|\d{4}-\d{2}-\d{2})",
            re.IGNORECASE,
        ),
    ),
)


def placeholder_findings(text: str, *, dialogue: bool = False) -> list[Finding]:
    """A dialogue line's own speaker tag ("[doctor]:") is not a placeholder."""
    tags = [(match.start(), match.end()) for match in _SPEAKER_TAG_AT_START.finditer(text)] if dialogue else []
    spans = [
        (match.start(), match.end())
        for pattern in _PLACEHOLDER_PATTERNS
        for match in pattern.finditer(text)
        if not any(start <= match.start() < end for start, end in tags)
    ]
    if not spans:
        return []
    merged = merge_spans(spans)
    found = list(dict.fromkeys(text[start:end] for start, end in merged))
    return [Finding(f"Placeholder text left in: {', '.join(found[:5])}", merged, found)]


def phi_like_findings(text: str) -> list[Finding]:
    findings = []
    for kind, pattern in _PHI_PATTERNS:
        matches = list(pattern.finditer(text))
        if matches:
            found = list(dict.fromkeys(match.group(0) for match in matches))
            spans = merge_spans([(match.start(), match.end()) for match in matches])
            label = kind.replace("_", " ")
            findings.append(Finding(f"Looks like PHI ({label}): {', '.join(found[:3])}", spans, {kind: found}))
    return findings
