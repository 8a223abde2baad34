"""Note Polisher: every statement in its right SOAP section; adds and drops nothing."""

from __future__ import annotations

from typing import Any

from generation import rendering
from generation.agents.note_writer import note_schema
from generation.agents.prompting import Message, agent_messages, prompt_version_id
from generation.models import AgentName

AGENT = AgentName.NOTE_POLISHER
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.0

NotePolisherOutput = note_schema("NotePolisherOutput", lead_field="changes")


def build_messages(*, note: dict[str, Any]) -> list[Message]:
    return agent_messages(agent=AGENT, version=VERSION, context={"note": rendering.note_text(note)})
