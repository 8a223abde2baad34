"""The one rendering path: structured content -> the text that reviewers read and
the dataset exports. Notes get stable headings; dialogues get `[speaker]: text` lines.

Content shapes (stored in ArtefactVersion.content):
- note:     {"chief_complaint"?, "history_of_present_illness"?, "review_of_systems"?,
             "subjective", "objective", "assessment", "plan"}  (all strings)
- dialogue: {"turns": [{"speaker": "doctor" | "patient" | other participant, "text": str}, ...]}
- scenario: {"role": str, "variables": {variable_key: str}, ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generation.models.content import SOAP_SECTIONS, SUBJECTIVE_PARTS


def _clean(value: Any) -> str:
    return str(value or "").strip()


def note_text(content: Mapping[str, Any]) -> str:
    blocks: list[str] = []
    for key, heading in SOAP_SECTIONS:
        paragraphs: list[str] = []
        if key == "subjective":
            paragraphs += [
                f"{label}: {_clean(content.get(part))}" for part, label in SUBJECTIVE_PARTS if _clean(content.get(part))
            ]
        if body := _clean(content.get(key)):
            paragraphs.append(body)
        blocks.append(f"{heading}:\n" + ("\n".join(paragraphs) if paragraphs else "(none)"))
    return "\n\n".join(blocks)


def speaker_tag(speaker: str) -> str:
    return "[" + (_clean(speaker).lower() or "unknown") + "]"


def dialogue_text(content: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{speaker_tag(turn.get('speaker', ''))}: {_clean(turn.get('text'))}" for turn in content.get("turns", [])
    )


def scenario_text(content: Mapping[str, Any], *, variable_names: Mapping[str, str] | None = None) -> str:
    names = variable_names or {}
    lines = [f"Physician role: {_clean(content.get('role'))}"] if content.get("role") else []
    for key, value in (content.get("variables") or {}).items():
        lines.append(f"{names.get(key, key.replace('_', ' ').capitalize())}: {_clean(value)}")
    return "\n".join(lines)


def render(kind: str, content: Mapping[str, Any]) -> str:
    """Text for any artefact kind; imported versions keep their original text instead."""
    if kind == "note":
        return note_text(content)
    if kind == "dialogue":
        return dialogue_text(content)
    if kind == "scenario":
        return scenario_text(content)
    raise ValueError(f"unknown artefact kind {kind!r}")
