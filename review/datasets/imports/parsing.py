"""Turning free-text notes and dialogues from other datasets into our content shapes
(see generation/rendering.py), tolerating the heading and speaker-tag styles found in
the wild. What cannot be parsed is reported as an `unparsed` flag; the original text
is always kept verbatim beside the parsed content."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from generation.rendering import NOTE_FIELDS, SOAP_SECTIONS

UNPARSED = "unparsed"
_SOAP_KEYS = {key for key, _ in SOAP_SECTIONS}

# Heading (as written, lowercased) -> our note field. A primary heading's inline text
# is the section's text; a secondary heading's whole line stays in the section.
_PRIMARY_HEADINGS = {
    "subjective": "subjective",
    "objective": "objective",
    "assessment": "assessment",
    "plan": "plan",
    "assessment and plan": "assessment",
    "assessment & plan": "assessment",
    "chief complaint": "chief_complaint",
    "cc": "chief_complaint",
    "history of present illness": "history_of_present_illness",
    "hpi": "history_of_present_illness",
    "review of systems": "review_of_systems",
    "ros": "review_of_systems",
}
_SECONDARY_HEADINGS = {
    "past medical history": "subjective",
    "medical history": "subjective",
    "medications": "subjective",
    "current medications": "subjective",
    "allergies": "subjective",
    "social history": "subjective",
    "family history": "subjective",
    "surgical history": "subjective",
    "physical exam": "objective",
    "physical examination": "objective",
    "exam": "objective",
    "examination": "objective",
    "vital signs": "objective",
    "vitals": "objective",
    "labs": "objective",
    "results": "objective",
    "diagnostic tests": "objective",
    "investigations": "objective",
    "diagnosis": "assessment",
    "impression": "assessment",
    "differential diagnosis": "assessment",
    "follow-up": "plan",
    "follow up": "plan",
    "treatment": "plan",
    "patient education": "plan",
    "instructions": "plan",
}
_TITLES = {"medical note", "soap note", "clinical note", "note", "progress note", "visit note", "clinic note"}
_BULLET = re.compile(r"^(?:[-•]|\*(?!\*))\s+")
_NUMBERING = re.compile(r"^(?:\d{1,2}|[IVX]{1,4})[.)]\s*")
_MARKDOWN_ONLY = re.compile(r"^[\s#*_=\-–]*$")
_SOAP_LETTERS = {"s": "subjective", "o": "objective", "a": "assessment", "p": "plan"}

KNOWN_SPEAKERS = (
    "doctor",
    "patient",
    "physician",
    "provider",
    "clinician",
    "dr",
    "nurse",
    "mother",
    "father",
    "parent",
    "caregiver",
    "wife",
    "husband",
    "son",
    "daughter",
    "guardian",
    "partner",
    "interpreter",
    "family member",
    "patient's mother",
    "patient's father",
    "patient's wife",
    "patient's husband",
    "patient's daughter",
    "patient's son",
    "sister",
    "brother",
    "friend",
)
_SPEAKER_ALIASES = {"dr": "doctor", "physician": "doctor", "provider": "doctor", "clinician": "doctor"}
_BRACKET_TAG = re.compile(r"^\s*\[(?P<speaker>[^\]\n]{1,30})\]\s*:?\s*(?P<text>.*)$")
_BOLD_TAG = re.compile(r"^\s*\*\*(?P<speaker>[^*\n]{1,30}?)\s*:?\s*\*\*\s*:?\s*(?P<text>.*)$")
_PLAIN_TAG = re.compile(r"^\s*(?P<speaker>[A-Za-z][A-Za-z' ]{0,30}?)\s*:\s*(?P<text>.*)$")
_INLINE_TAG = re.compile(r"\s+(?=\[(?:" + "|".join(re.escape(s) for s in KNOWN_SPEAKERS) + r")\]\s*:?)", re.IGNORECASE)


def unparsed_flag(message: str, detail: Any = None) -> dict[str, Any]:
    return {"code": UNPARSED, "message": message, "detail": detail}


@dataclass
class Parsed:
    content: dict[str, Any]
    flags: list[dict[str, Any]] = field(default_factory=list)


def _heading(line: str) -> tuple[str, str, bool] | None:
    """(field, inline text, is_primary) when the line opens a note section.

    Accepts '**1. Subjective:**', '### PLAN', 'S:', '- **Chief Complaint:** cough', ...
    """
    bare = _BULLET.sub("", line.strip()).replace("**", "").replace("__", "").strip("#*_ ")
    bare = _NUMBERING.sub("", bare)
    name, _colon, rest = bare.partition(":")
    name, rest = name.strip(" -–*_").lower(), rest.strip(" *_")
    if name in _PRIMARY_HEADINGS:
        return _PRIMARY_HEADINGS[name], rest, True
    if name in _SOAP_LETTERS and _colon:
        return _SOAP_LETTERS[name], rest, True
    if name in _SECONDARY_HEADINGS:
        return _SECONDARY_HEADINGS[name], bare, False
    return None


def note_parse(text: str) -> Parsed:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    preamble: list[str] = []
    for line in text.splitlines():
        if _MARKDOWN_ONLY.match(line):
            continue
        heading = _heading(line)
        if heading:
            current, inline, _primary = heading
            sections.setdefault(current, [])
            if inline:
                sections[current].append(inline)
            continue
        stripped = line.strip()
        if current is None:
            if stripped.strip("#* :").lower() not in _TITLES:
                preamble.append(stripped)
            continue
        sections[current].append(stripped)
    content = {name: "\n".join(lines).strip() for name, lines in sections.items()}
    content = {name: content.get(name, "") for name in NOTE_FIELDS if name in content or name in _SOAP_KEYS}
    flags = []
    if not sections:
        flags.append(unparsed_flag("No SOAP headings were found; the note is kept as text only."))
    elif preamble:
        flags.append(unparsed_flag("Text before the first heading was not placed in a section.", preamble[:5]))
    return Parsed(content=content, flags=flags)


def _speaker(raw: str, *, strict: bool) -> str | None:
    speaker = raw.strip(" *:").lower()
    if strict and speaker not in KNOWN_SPEAKERS:
        return None
    return _SPEAKER_ALIASES.get(speaker, speaker) or None


def _turn_start(line: str) -> tuple[str, str] | None:
    for pattern, strict in ((_BRACKET_TAG, False), (_BOLD_TAG, False), (_PLAIN_TAG, True)):
        match = pattern.match(line)
        if match and (speaker := _speaker(match.group("speaker"), strict=strict)):
            return speaker, match.group("text").strip()
    return None


def dialogue_parse(text: str) -> Parsed:
    turns: list[dict[str, str]] = []
    before_first: list[str] = []
    for line in _INLINE_TAG.sub("\n", text).splitlines():
        if _MARKDOWN_ONLY.match(line):
            continue
        start = _turn_start(line)
        if start:
            turns.append({"speaker": start[0], "text": start[1]})
        elif turns:
            turns[-1]["text"] = f"{turns[-1]['text']} {line.strip()}".strip()
        elif line.strip().strip("#* :").lower() not in {"dialogue", "conversation", "transcript"}:
            before_first.append(line.strip())
    flags = []
    if not turns:
        flags.append(unparsed_flag("No speaker tags were found; the dialogue is kept as text only."))
    elif before_first:
        flags.append(unparsed_flag("Text before the first speaker tag was not placed in a turn.", before_first[:5]))
    return Parsed(content={"turns": turns}, flags=flags)
