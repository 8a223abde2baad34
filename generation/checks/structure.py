"""SOAP structure of a note's text: every section present and more than a token, and content
in the section it belongs to. Headings are read by the one recogniser
(generation/models/note_format.py) in all their real variants."""

from __future__ import annotations

import re
from functools import lru_cache

from generation.checks.caseless import CaselessPattern
from generation.checks.facts import VITAL, quantities, quantity_matches
from generation.checks.framework import Finding, Span, merge_spans
from generation.models import SOAP_SECTIONS, SUBJECTIVE_FIELDS, NoteSection, note_sections

# A section with fewer words than this says nothing ("(none)", "N/A", "See above").
MIN_SECTION_WORDS = 2
_EMPTY_MARKERS = re.compile(r"^\W{0,5}+(?:none|n/?a|nil|see above|not applicable|tbd|-)?\W{0,5}+$", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9]++")

# Subjective is what the patient says: a measured vital sign or an examination finding there
# belongs in Objective.
_EXAM_FINDING = CaselessPattern(
    r"\b(?:on (?:physical )?exam(?:ination)?|auscultation|palpation|tender to palpation|"
    r"pitting edema|murmur|(?:lungs|heart) (?:are |is )?(?:clear|regular)|vital signs?|"
    r"(?:blood pressure|heart rate|pulse|temperature|respiratory rate|spo2|oxygen saturation) "
    r"(?:is|was|of)?[^\S\n]{0,3}+\d)",
)
# Objective is what was found: a test being ordered or a medicine prescribed belongs in Plan.
_NEW_ORDER = CaselessPattern(
    r"\b(?:will order|we will order|ordered|order(?:ing)? an?|will obtain|will start|start(?:ed|ing)? (?:on )?|"
    r"prescrib(?:e|ed|ing)|initiat(?:e|ed|ing)|will refer|referr(?:al|ed) to|schedule[ds]? (?:a|an|for)|"
    r"plan to|recommend(?:ed)? starting)\b",
)
# A plan says what happens next.
_ACTION = CaselessPattern(
    r"\b(?:start|started|continue|continued|stop|discontinue|increase|decrease|reduce|order|ordered|obtain|check|"
    r"recheck|repeat|refer|referral|follow[- ]?up|return|schedule|prescrib\w*|take|taking|apply|use|monitor|"
    r"advise[ds]?|recommend\w*|counsel\w*|educat\w*|encourage[ds]?|avoid|rest|ice|elevate|physical therapy|"
    r"surgery|injection|test|testing|labs?|x-ray|mri|ct|ultrasound|echocardiogram|consult\w*|"
    r"will|plan|mg|daily|twice|weeks?|months?|days?)\b",
)


@lru_cache(maxsize=16)
def _section_texts(text: str) -> dict[str, list[NoteSection]]:
    """Read once per text (four checks read a note's sections): shared, read only."""
    by_field: dict[str, list[NoteSection]] = {}
    for section in note_sections(text):
        for name in section.fields:
            key = "subjective" if name in SUBJECTIVE_FIELDS else name
            by_field.setdefault(key, []).append(section)
    return by_field


def _substance(text: str, sections: list[NoteSection]) -> str:
    return "\n".join(text[section.start : section.end].strip() for section in sections).strip()


def missing_section_findings(text: str) -> list[Finding]:
    by_field = _section_texts(text)
    missing = [heading.capitalize() for key, heading in SOAP_SECTIONS if key not in by_field]
    empty = [
        heading.capitalize()
        for key, heading in SOAP_SECTIONS
        if key in by_field and _EMPTY_MARKERS.match(_substance(text, by_field[key]))
    ]
    gone = missing + empty
    if not gone:
        return []
    spans = tuple(
        (section.start, max(section.end, section.start))
        for key, heading in SOAP_SECTIONS
        if heading.capitalize() in empty
        for section in by_field[key]
    )
    return [Finding(f"Missing or empty SOAP section: {', '.join(gone)}", spans, gone)]


def thin_section_findings(text: str) -> list[Finding]:
    findings = []
    for key, sections in _section_texts(text).items():
        body = _substance(text, sections)
        words = len(_WORD.findall(body))
        if 0 < words < MIN_SECTION_WORDS and not _EMPTY_MARKERS.match(body):
            spans = tuple((section.start, section.end) for section in sections)
            findings.append(Finding(f"{key.capitalize()} says almost nothing: {body[:40]!r}", spans, key))
    return findings


def _spans_in(text: str, sections: list[NoteSection], pattern: CaselessPattern) -> list[Span]:
    return [
        (section.start + match.start(), section.start + match.end())
        for section in sections
        for match in pattern.finditer(text[section.start : section.end])
    ]


def misplaced_findings(text: str) -> list[Finding]:
    by_field = _section_texts(text)
    findings = []
    subjective = [section for section in by_field.get("subjective", []) if "plan" not in section.fields]
    exam = _spans_in(text, subjective, _EXAM_FINDING)
    exam += [
        (section.start + fact.start, section.start + fact.end)
        for section in subjective
        for fact in quantities(text[section.start : section.end])
        if fact.category == VITAL
    ]
    if exam:
        spans = merge_spans(exam)
        shown = ", ".join(dict.fromkeys(text[start:end] for start, end in spans[:3]))
        findings.append(Finding(f"Vital signs or exam findings under Subjective: {shown}", spans, "objective"))
    objective = [section for section in by_field.get("objective", []) if "plan" not in section.fields]
    orders = _spans_in(text, objective, _NEW_ORDER)
    if orders:
        spans = merge_spans(orders)
        shown = ", ".join(dict.fromkeys(text[start:end] for start, end in spans[:3]))
        findings.append(Finding(f"New orders or prescriptions under Objective: {shown}", spans, "plan"))
    return findings


def plan_action_findings(text: str) -> list[Finding]:
    plan = _section_texts(text).get("plan", [])
    body = _substance(text, plan)
    if not plan or _EMPTY_MARKERS.match(body) or _ACTION.search(body) or next(quantity_matches(body), None):
        return []
    spans = tuple((section.start, section.end) for section in plan)
    return [Finding("The plan names no action (no test, medicine, referral or follow-up)", spans)]
