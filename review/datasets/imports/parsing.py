"""Turning free-text notes and dialogues from other datasets into our content shapes
(see generation/rendering.py), tolerating the heading and speaker-tag styles found in
the wild. What cannot be parsed is reported as an `unparsed` flag; the original text
is always kept verbatim beside the parsed content."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from generation.models import (
    KNOWN_SPEAKERS,
    NOTE_FIELDS,
    SOAP_SECTIONS,
    is_note_title,
    note_heading,
    speaker_name,
    speaker_tag_at,
)

UNPARSED = "unparsed"
_SOAP_KEYS = {key for key, _ in SOAP_SECTIONS}

_MARKDOWN_ONLY = re.compile(r"^[\s#*_=\-–]*$")

_INLINE_TAG = re.compile(r"\s+(?=\[(?:" + "|".join(re.escape(s) for s in KNOWN_SPEAKERS) + r")\]\s*:?)", re.IGNORECASE)


def unparsed_flag(message: str, detail: Any = None) -> dict[str, Any]:
    return {"code": UNPARSED, "message": message, "detail": detail}


@dataclass
class Parsed:
    content: dict[str, Any]
    flags: list[dict[str, Any]] = field(default_factory=list)


def note_parse(text: str) -> Parsed:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    preamble: list[str] = []
    for line in text.splitlines():
        if _MARKDOWN_ONLY.match(line):
            continue
        heading = note_heading(line)
        if heading:
            # A combined "Assessment and Plan" is kept whole under Assessment; the checks
            # read the text and count it as both.
            current, inline = heading.fields[0], heading.inline
            sections.setdefault(current, [])
            if inline:
                sections[current].append(inline)
            continue
        stripped = line.strip()
        if current is None:
            if not is_note_title(stripped):
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


def _turn_start(line: str) -> tuple[str, str] | None:
    tag = speaker_tag_at(line)
    if tag and (speaker := speaker_name(tag[0])):
        return speaker, line[tag[1] :].strip()
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
