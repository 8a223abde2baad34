"""Dialogue Polisher: chatter and transitions; every fact of the polished note spoken."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from generation import rendering
from generation.agents.dialogue_generator import DEFAULT_TURN_BOUNDS, turns_field
from generation.agents.prompting import Message, agent_messages, prompt_version_id
from generation.models import AgentName

AGENT = AgentName.DIALOGUE_POLISHER
VERSION = 2  # v2: told which of the note's facts the dialogue does not say yet
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.5


class DialoguePolisherOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    missing_facts: list[str]
    turns: turns_field(DEFAULT_TURN_BOUNDS)  # type: ignore[valid-type]


def build_messages(
    *, polished_note: dict[str, Any], dialogue: dict[str, Any], coverage_misses: list[str] | None = None
) -> list[Message]:
    """`coverage_misses`: the note's facts the automatic coverage check finds unsaid."""
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        context={
            "note": rendering.note_text(polished_note),
            "dialogue": rendering.dialogue_text(dialogue),
            "misses": coverage_misses or [],
        },
    )
