"""How notes and dialogues are written down in the wild: the one recogniser of SOAP headings
and of speaker tags. The dataset importer (review/datasets/imports/parsing.py) and the
automatic checks (generation/checks/) both read text through it, so a heading variant that
one of them understands, the other does too.

Headings seen in real notes: `**1. Subjective:**`, `### PLAN`, `S:`, `CHIEF COMPLAINT` on its
own line, `HPI: cough`, ACI-Bench's `ASSESSMENT AND PLAN`, `VITALS REVIEWED`, `RESULTS`.
Speaker tags: `[doctor]:`, `**Doctor:**`, `Patient:`, `[patient's mother]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.models.content import NOTE_FIELDS

# Heading (as written, lower case, without markup) -> the note fields it opens. A primary
# heading's inline text is the section's text; a secondary heading's whole line stays in
# the section (it labels a paragraph: "Medications: metformin").
PRIMARY_HEADINGS: dict[str, tuple[str, ...]] = {
    "subjective": ("subjective",),
    "objective": ("objective",),
    "assessment": ("assessment",),
    "plan": ("plan",),
    "assessment and plan": ("assessment", "plan"),
    "assessment & plan": ("assessment", "plan"),
    "assessment/plan": ("assessment", "plan"),
    "a/p": ("assessment", "plan"),
    "a&p": ("assessment", "plan"),
    "impression and plan": ("assessment", "plan"),
    "chief complaint": ("chief_complaint",),
    "cc": ("chief_complaint",),
    "history of present illness": ("history_of_present_illness",),
    "hpi": ("history_of_present_illness",),
    "review of systems": ("review_of_systems",),
    "ros": ("review_of_systems",),
}
SECONDARY_HEADINGS: dict[str, str] = {
    "past medical history": "subjective",
    "medical history": "subjective",
    "past history": "subjective",
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
    "vitals reviewed": "objective",
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
    "procedure": "plan",
    "patient education": "plan",
    "instructions": "plan",
}
NOTE_TITLES = frozenset(
    {"medical note", "soap note", "clinical note", "note", "progress note", "visit note", "clinic note"}
)
# The parts of a note that make up its Subjective section.
SUBJECTIVE_FIELDS = ("subjective", "chief_complaint", "history_of_present_illness", "review_of_systems")

_BULLET = re.compile(r"^(?:[-•]|\*(?!\*))\s{1,20}+")
_NUMBERING = re.compile(r"^(?:\d{1,2}|[IVX]{1,4})[.)]\s{0,20}+")
_SOAP_LETTERS = {"s": "subjective", "o": "objective", "a": "assessment", "p": "plan"}
# A heading line is short: a longer line is prose that starts with a heading-like word.
_MAX_HEADING_LINE = 200


@dataclass(frozen=True)
class NoteHeading:
    """A line that opens note sections: the fields, the text after its colon, and whether
    it is a primary heading (SOAP section or Subjective part) or a paragraph label."""

    fields: tuple[str, ...]
    inline: str
    primary: bool


def note_heading(line: str) -> NoteHeading | None:
    """The heading a line opens, or None. Accepts '**1. Subjective:**', '### PLAN', 'S:',
    '- **Chief Complaint:** cough', 'ASSESSMENT AND PLAN', 'VITALS REVIEWED'."""
    if len(line) > _MAX_HEADING_LINE:
        return None
    bare = _BULLET.sub("", line.strip()).replace("**", "").replace("__", "").strip("#*_ ")
    bare = _NUMBERING.sub("", bare)
    name, colon, rest = bare.partition(":")
    name, rest = name.strip(" -–*_").lower(), rest.strip(" *_")
    if name in PRIMARY_HEADINGS:
        return NoteHeading(PRIMARY_HEADINGS[name], rest, True)
    if name in _SOAP_LETTERS and colon:
        return NoteHeading((_SOAP_LETTERS[name],), rest, True)
    if name in SECONDARY_HEADINGS:
        return NoteHeading((SECONDARY_HEADINGS[name],), bare, False)
    return None


def is_note_title(line: str) -> bool:
    return line.strip().strip("#* :").lower() in NOTE_TITLES


@dataclass(frozen=True)
class NoteSection:
    """The text a heading opens, as character offsets into the note: [start, end)."""

    fields: tuple[str, ...]
    start: int
    end: int
    primary: bool


def note_sections(text: str) -> list[NoteSection]:
    """Every heading of the note with the span of text up to the next heading. A secondary
    heading's span belongs to the section of the primary heading it sits under (a
    "VITALS" paragraph under "SUBJECTIVE" is in Subjective: that is what misplacement
    checks look for), unless no primary heading opens its section: ACI-Bench writes
    "PHYSICAL EXAM" and "RESULTS" with no "OBJECTIVE" above them."""
    found: list[tuple[NoteHeading, int, int]] = []  # heading, line start, body start
    offset = 0
    for line in text.splitlines(keepends=True):
        heading = note_heading(line)
        if heading:
            found.append((heading, offset, offset + _body_offset(line, heading)))
        offset += len(line)
    opened = {_section_of(name) for heading, _, _ in found if heading.primary for name in heading.fields}
    kept = [entry for entry in found if entry[0].primary or _section_of(entry[0].fields[0]) not in opened]
    sections = []
    for index, (heading, _line_start, body_start) in enumerate(kept):
        end = kept[index + 1][1] if index + 1 < len(kept) else len(text)
        sections.append(NoteSection(heading.fields, body_start, end, heading.primary))
    return sections


def _section_of(name: str) -> str:
    return "subjective" if name in SUBJECTIVE_FIELDS else name


def _body_offset(line: str, heading: NoteHeading) -> int:
    """Where a heading line's own text starts: a primary heading's inline text, a secondary
    heading's whole line, or the next line."""
    if not heading.primary:
        return 0
    if heading.inline:
        return max(line.rfind(heading.inline), 0)  # markup inside the text: keep the whole line
    return len(line)


def note_field_texts(text: str) -> dict[str, str]:
    """The text of each note field (NOTE_FIELDS order), the parts under one field joined."""
    texts: dict[str, list[str]] = {}
    for section in note_sections(text):
        for name in section.fields:
            texts.setdefault(name, []).append(text[section.start : section.end].strip())
    return {name: "\n".join(texts[name]).strip() for name in NOTE_FIELDS if name in texts}


# --- speaker tags -----------------------------------------------------------------------
# Who may speak in a dialogue (lower case, as tagged). The generator's schema allows these,
# the importer recognises them, and the dialogue-form check flags anyone else.
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
SPEAKER_ALIASES = {"dr": "doctor", "physician": "doctor", "provider": "doctor", "clinician": "doctor"}
# The speakers a generator may use (aliases folded into their canonical name).
CANONICAL_SPEAKERS = tuple(dict.fromkeys(SPEAKER_ALIASES.get(name, name) for name in KNOWN_SPEAKERS))


def speaker_name(raw: str) -> str:
    """A speaker tag as we store it: lower case, aliases folded ("Physician" -> "doctor")."""
    speaker = raw.strip(" *:[]").lower()
    return SPEAKER_ALIASES.get(speaker, speaker)


def is_known_speaker(raw: str) -> bool:
    return raw.strip(" *:[]").lower() in KNOWN_SPEAKERS


# A speaker tag at the start of a line: `[doctor]:`, `**Doctor:**`, `Patient:`. A plain
# `Word:` is a tag only for a known speaker (else "Note: ..." would open a turn). Every
# repetition is bounded or possessive: the lines are text anyone can type.
_WS = r"[^\S\n]{0,20}+"
_SPEAKER_TAGS: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(rf"{_WS}\[(?P<speaker>[^\]\n]{{1,30}})\]{_WS}:?{_WS}"), False),
    (re.compile(rf"{_WS}\*\*(?P<speaker>[^*\n:]{{1,30}}+):?{_WS}\*\*{_WS}:?{_WS}"), False),
    (re.compile(rf"{_WS}(?P<speaker>[A-Za-z][A-Za-z' ]{{0,30}}+):{_WS}"), True),
)


def speaker_tag_at(line: str) -> tuple[str, int] | None:
    """(speaker as tagged, offset where the turn's text starts) when the line opens a turn."""
    for pattern, strict in _SPEAKER_TAGS:
        match = pattern.match(line)
        if not match:
            continue
        raw = match.group("speaker").strip()
        if raw and (not strict or is_known_speaker(raw)):
            return raw, match.end()
    return None
